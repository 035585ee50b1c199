"""mmseg's visualiser with pictures a person can read at any image size."""
import warnings
from typing import Optional

import numpy as np
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.registry import VISUALIZERS
from mmseg.structures import SegDataSample
from mmseg.visualization import SegLocalVisualizer


@VISUALIZERS.register_module()
class PowerOneSegVisualizer(SegLocalVisualizer):
    """``SegLocalVisualizer`` (ground truth | prediction, class names on the
    regions) that first enlarges images whose shorter side is under
    ``min_size`` pixels (nearest-neighbour, labels alike), so a 64 x 64
    image gives a 512 x 512 panel with readable names instead of a 128 x 64
    strip. Larger images are drawn as they are. Class names outside ASCII
    (which cv2 draws as "???") are drawn as numbers, listed once in a
    warning.

    Args:
        min_size: shorter side, in pixels, small images are enlarged to.
        Other arguments: ``SegLocalVisualizer``'s.
    """

    def __init__(self, name: str = 'visualizer', min_size: int = 512,
                 **kwargs):
        super().__init__(name=name, **kwargs)
        self.min_size = min_size

    def add_datasample(self, name: str, image: np.ndarray,
                       data_sample: Optional[SegDataSample] = None,
                       *args, **kwargs) -> None:
        h, w = image.shape[:2]
        factor = int(np.ceil(self.min_size / max(1, min(h, w))))
        if factor > 1:
            image = np.repeat(np.repeat(image, factor, 0), factor, 1)
            if data_sample is not None:
                data_sample = _enlarged(data_sample, factor)
        meta = self.dataset_meta or {}
        classes = meta.get('classes')
        if not classes or all(str(c).isascii() for c in classes):
            super().add_datasample(name, image, data_sample, *args, **kwargs)
            return
        # cv2 draws only ASCII: number the classes and say once which is which
        if getattr(self, '_numbered', None) != tuple(classes):
            self._numbered = tuple(classes)
            warnings.warn('Class names outside ASCII are drawn as numbers: '
                          + ', '.join(f'#{i} = {c}'
                                      for i, c in enumerate(classes)))
        self.dataset_meta = dict(meta, classes=tuple(
            f'#{i}' for i in range(len(classes))))
        try:
            super().add_datasample(name, image, data_sample, *args, **kwargs)
        finally:
            self.dataset_meta = meta


def _enlarged(sample: SegDataSample, factor: int) -> SegDataSample:
    """A copy whose label maps are ``factor`` times larger (nearest)."""
    out = sample.clone()
    for key in ('gt_sem_seg', 'pred_sem_seg'):
        if key in sample:
            data = sample.get(key).data  # [1, H, W]
            big = F.interpolate(data[None].float(), scale_factor=factor,
                                mode='nearest')[0].to(data.dtype)
            out.set_data({key: PixelData(data=big)})
    return out
