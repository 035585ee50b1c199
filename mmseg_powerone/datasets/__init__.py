from .coco_object import COCOObjectDataset
from .example_list import ExampleListDataset, ImageMaskFolderDataset
from .oneshot import OneShotDataset
from .pair_list import PairListMixin, PascalVOCListDataset
from .pseudo_label import PseudoLabelDataset
from .shapes import SyntheticShapesDataset
from .transforms import ResizeLongestEdgePad

__all__ = ['COCOObjectDataset', 'ExampleListDataset', 'ImageMaskFolderDataset',
           'OneShotDataset', 'PairListMixin', 'PascalVOCListDataset', 'PseudoLabelDataset', 'ResizeLongestEdgePad',
           'SyntheticShapesDataset']
