"""Image lists of the "IMAGE LABEL" form (one pair of paths per line), the
format of the paper's reference code and of the few-shot segmentation
benchmarks it borrows its splits from (PFENet, DIaM)::

    JPEGImages/2007_000033.jpg SegmentationClassAug/2007_000033.png

mmseg's ``ann_file`` holds one file stem per line instead; datasets with
:class:`PairListMixin` read either, so a config can point ``ann_file`` at
such a list unchanged.
"""
import os.path as osp
from typing import List

from mmengine.fileio import list_from_file
from mmseg.datasets import PascalVOCDataset
from mmseg.registry import DATASETS


class PairListMixin:
    """Read ``ann_file`` as "IMAGE LABEL" pairs (paths relative to
    ``data_root``) when its lines have two fields; mmseg's one-stem-per-line
    lists are read as mmseg reads them."""

    def load_data_list(self) -> List[dict]:
        if not self.ann_file or not osp.isfile(self.ann_file):
            return super().load_data_list()
        lines = [l for l in list_from_file(self.ann_file,
                                           backend_args=self.backend_args)
                 if l.strip()]
        if not lines or len(lines[0].split()) != 2:
            return super().load_data_list()
        data_list = []
        for n, line in enumerate(lines, start=1):
            fields = line.split()
            if len(fields) != 2:
                raise ValueError(
                    f'{self.ann_file}, line {n}: {line.strip()!r} is not an '
                    '"IMAGE LABEL" pair like the lines above it. Fix the '
                    'line, or give one file stem per line (mmseg\'s format).')
            img, seg = (osp.join(self.data_root, f) for f in fields)
            data_list.append(dict(
                img_path=img, seg_map_path=seg, label_map=self.label_map,
                reduce_zero_label=self.reduce_zero_label, seg_fields=[]))
        return data_list


@DATASETS.register_module()
class PascalVOCListDataset(PairListMixin, PascalVOCDataset):
    """mmseg's PASCAL VOC dataset (21 classes) that also reads "IMAGE
    LABEL" lists, e.g. the reference code's ``lists/pascal/val.txt`` over
    ``JPEGImages`` and ``SegmentationClassAug``."""
