"""mmseg dataset class of the embedded synthetic world."""
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from ..shapes.world import CLASSES, PALETTE


@DATASETS.register_module()
class SyntheticShapesDataset(BaseSegDataset):
    """Shapes on textured backgrounds (``tools/make_shapes.py``): background
    plus six shape classes, PNG images and label maps in mmseg layout."""

    METAINFO = dict(classes=CLASSES, palette=PALETTE)

    def __init__(self, img_suffix='.png', seg_map_suffix='.png',
                 reduce_zero_label=False, **kwargs):
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=reduce_zero_label, **kwargs)
