from .oneshot import OneShotDataset
from .shapes import SyntheticShapesDataset

__all__ = ['OneShotDataset', 'SyntheticShapesDataset']
