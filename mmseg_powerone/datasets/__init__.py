from .coco_object import COCOObjectDataset
from .oneshot import OneShotDataset
from .pair_list import PairListMixin, PascalVOCListDataset
from .shapes import SyntheticShapesDataset
from .transforms import ResizeLongestEdgePad

__all__ = ['COCOObjectDataset', 'OneShotDataset', 'PairListMixin',
           'PascalVOCListDataset', 'ResizeLongestEdgePad',
           'SyntheticShapesDataset']
