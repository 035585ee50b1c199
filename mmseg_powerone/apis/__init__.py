from .inferencer import PowerOneInferencer

__all__ = ['PowerOneInferencer']
