from .coco_object import COCOObjectDataset
from .example_list import ExampleListDataset
from .oneshot import OneShotDataset
from .pair_list import PairListMixin, PascalVOCListDataset
from .pseudo_label import PseudoLabelDataset
from .shapes import SyntheticShapesDataset
from .transforms import ResizeLongestEdgePad

__all__ = ['COCOObjectDataset', 'ExampleListDataset', 'OneShotDataset', 'PairListMixin',
           'PascalVOCListDataset', 'PseudoLabelDataset', 'ResizeLongestEdgePad',
           'SyntheticShapesDataset']
