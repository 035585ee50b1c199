"""The paper's test-time geometry as an mmseg transform."""
from typing import Tuple

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

# What PackSegInputs must carry for the segmentor to find the padding.
PACK_META_KEYS = ('img_path', 'seg_map_path', 'ori_shape', 'img_shape',
                  'pad_shape', 'scale_factor', 'flip', 'flip_direction',
                  'reduce_zero_label', 'img_padding_size')


def longest_edge_size(h: int, w: int, size: int,
                      size_divisor: int) -> Tuple[int, int]:
    """(new_h, new_w): the longer side scaled to ``size``, the shorter by
    the same ratio and truncated, then both floored to a multiple of
    ``size_divisor`` (the reference code's rule; a 500 x 375 photo becomes
    512 x 384, a 333 x 500 one 336 x 512)."""
    if h >= w:
        new_h, new_w = size, int(w * (size / h))
    else:
        new_h, new_w = int(h * (size / w)), size
    return (new_h // size_divisor * size_divisor,
            new_w // size_divisor * size_divisor)


@TRANSFORMS.register_module()
class ResizeLongestEdgePad(BaseTransform):
    """Resize so the longer side is ``size`` (aspect ratio kept, both sides
    floored to a multiple of ``size_divisor``), then pad at the bottom and
    right to ``size x size``: the preprocessing of the paper's reference
    code. The image is resized in float32 (bilinear) and padded with
    ``pad_val`` (0: black, before the data preprocessor normalises it, so
    the padding goes through the VLM like image content); every label map
    in ``seg_fields`` is resized nearest-neighbour and padded with
    ``seg_pad_val`` (255: ignored by the loss and by ``IoUMetric``).

    Put it after ``LoadAnnotations`` to evaluate on this grid (the model's
    ``test_cfg.pred_grid='input'``); with labels loaded after it and the
    default ``pred_grid='original'``, predictions go back to the original
    size through ``img_padding_size``, which ``PackSegInputs`` must list in
    its ``meta_keys`` (:data:`PACK_META_KEYS`).

    Required keys: img. Modified keys: img, img_shape, gt_seg_map (and any
    other ``seg_fields``). Added keys: scale_factor, pad_shape,
    img_padding_size ([left, right, top, bottom]).

    Args:
        size: side of the square output.
        size_divisor: both resized sides are floored to a multiple of it.
        pad_val: image padding value (per channel if a sequence).
        seg_pad_val: label padding value.
    """

    def __init__(self, size: int = 512, size_divisor: int = 8,
                 pad_val=0, seg_pad_val: int = 255):
        if not isinstance(size, int) or not isinstance(size_divisor, int) \
                or size < 1 or size_divisor < 1 or size % size_divisor:
            raise ValueError(
                f'ResizeLongestEdgePad: size={size!r}, size_divisor='
                f'{size_divisor!r}; both must be positive integers and size '
                'a multiple of size_divisor (reference: 512 and 8).')
        self.size = size
        self.size_divisor = size_divisor
        self.pad_val = pad_val
        self.seg_pad_val = seg_pad_val

    def _pad(self, array: np.ndarray, value) -> np.ndarray:
        """[h, w(, C)] -> [size, size(, C)], content top-left."""
        out = np.empty((self.size, self.size) + array.shape[2:], array.dtype)
        out[...] = value
        out[:array.shape[0], :array.shape[1]] = array
        return out

    def transform(self, results: dict) -> dict:
        img = results['img']
        h, w = img.shape[:2]
        new_h, new_w = longest_edge_size(h, w, self.size, self.size_divisor)
        if new_h < 1 or new_w < 1:
            raise ValueError(
                f'ResizeLongestEdgePad: image {results.get("img_path", "")} '
                f'of {h} x {w} has a side under {self.size_divisor} pixels '
                f'once its longer side is {self.size}; it cannot be resized '
                'this way (crop or drop it).')
        resized = cv2.resize(img.astype(np.float32), (new_w, new_h),
                             interpolation=cv2.INTER_LINEAR)
        if resized.ndim < img.ndim:  # cv2 drops a single channel axis
            resized = resized[..., None]
        results['img'] = self._pad(resized, self.pad_val)
        results['img_shape'] = (self.size, self.size)
        results['pad_shape'] = (self.size, self.size)
        results['scale_factor'] = (new_w / w, new_h / h)
        results['img_padding_size'] = [0, self.size - new_w,
                                       0, self.size - new_h]
        for key in results.get('seg_fields', []):
            label = results[key]
            if label.shape[:2] != (h, w):
                raise ValueError(
                    f'ResizeLongestEdgePad: {key} of '
                    f'{results.get("seg_map_path", "")} is '
                    f'{label.shape[0]} x {label.shape[1]} but its image is '
                    f'{h} x {w}; they must be the same size.')
            label = cv2.resize(label, (new_w, new_h),
                               interpolation=cv2.INTER_NEAREST)
            results[key] = self._pad(label, self.seg_pad_val)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(size={self.size}, size_divisor='
                f'{self.size_divisor}, pad_val={self.pad_val}, '
                f'seg_pad_val={self.seg_pad_val})')
