"""A dataset of listed (image, label map) pairs: what ``adapt`` trains on."""
import json
from typing import List

from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS


@DATASETS.register_module()
class ExampleListDataset(BaseSegDataset):
    """Images and label maps listed in a JSON file (``ann_file``): a list of
    ``{"img_path": ..., "seg_map_path": ...}``, absolute paths. What
    :meth:`PowerOneInferencer.adapt` trains on."""

    def load_data_list(self) -> List[dict]:
        with open(self.ann_file, encoding='utf-8') as f:
            items = json.load(f)
        return [dict(img_path=item['img_path'],
                     seg_map_path=item['seg_map_path'],
                     label_map=self.label_map,
                     reduce_zero_label=self.reduce_zero_label, seg_fields=[])
                for item in items]
