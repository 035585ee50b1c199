from .export import export_checkpoint
from .inferencer import PowerOneInferencer

__all__ = ['PowerOneInferencer', 'export_checkpoint']
