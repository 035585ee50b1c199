"""COCO-Object: the 80 COCO thing classes plus background, the benchmark
open-vocabulary segmentation papers report and mmseg lacks.

Layout (mmseg's COCO-Stuff164k layout; ``tools/convert_coco_object.py``
writes the label maps)::

    data/coco_object/
        images/val2017/000000000139.jpg
        annotations/val2017/000000000139_instanceTrainIds.png

Label maps: 0 background, 1..80 the thing classes in COCO category-id
order, 255 ignored. The same classes in the same order as the COCO-2014
label maps of the reference code's one-shot protocol (DIaM's
``val_contain_crowd``), whose "IMAGE LABEL" lists ``ann_file`` also reads.
"""
from mmseg.datasets import BaseSegDataset, COCOStuffDataset
from mmseg.registry import DATASETS

from .pair_list import PairListMixin

SEG_MAP_SUFFIX = '_instanceTrainIds.png'
IGNORE_INDEX = 255


@DATASETS.register_module()
class COCOObjectDataset(PairListMixin, BaseSegDataset):
    """COCO-Object (81 classes: background + the 80 COCO things)."""

    METAINFO = dict(
        classes=('background', ) + tuple(COCOStuffDataset.METAINFO['classes'][:80]),
        palette=[[0, 0, 0]] + [list(p) for p in
                               COCOStuffDataset.METAINFO['palette'][:80]])

    def __init__(self,
                 img_suffix: str = '.jpg',
                 seg_map_suffix: str = SEG_MAP_SUFFIX,
                 reduce_zero_label: bool = False,
                 **kwargs) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=reduce_zero_label, **kwargs)
