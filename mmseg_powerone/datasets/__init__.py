from .shapes import SyntheticShapesDataset

__all__ = ['SyntheticShapesDataset']
