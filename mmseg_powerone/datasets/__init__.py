from .coco_object import COCOObjectDataset
from .oneshot import OneShotDataset
from .shapes import SyntheticShapesDataset

__all__ = ['COCOObjectDataset', 'OneShotDataset', 'SyntheticShapesDataset']
