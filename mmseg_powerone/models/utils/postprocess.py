"""Checks and steps around the segmentor's predictions: labels against the
class list and the scoring grid, mmseg's un-padding and un-flipping, and
the arg-max of class maps too large to upsample whole (in strips)."""
import warnings
from typing import List

import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from torch import Tensor


PRED_GRIDS = ('original', 'input')
# Above this many elements (C x H x W at the original size) seg_logits stay
# at the network's resolution and the arg-max runs in strips: 1 GiB float32.
MAX_LOGITS_NUMEL = 1 << 28
IGNORE_INDEX = 255


def check_labels(label: Tensor, num_classes: int, meta: dict) -> None:
    """Refuse label values that are neither a class index nor the ignore
    index: they mean the dataset and ``class_names`` disagree (mmseg's
    IoUMetric would silently drop them, the loss would crash)."""
    bad = (label >= num_classes) & (label != IGNORE_INDEX) | (label < 0)
    if bool(bad.any()):
        values = torch.unique(label[bad]).tolist()
        raise ValueError(
            f'Label map {meta.get("seg_map_path", "")!s} holds values '
            f'{values[:10]} outside the {num_classes} classes '
            f'(0..{num_classes - 1}) and the ignore index {IGNORE_INDEX}: the '
            'dataset does not match model.class_names. Use the class-name '
            "file of this dataset, or map those values to 255 (the dataset's "
            'label_map / reduce_zero_label).')


def check_label_grid(sample, size, grid: str) -> None:
    """The label must lie on the grid the predictions are scored on: the
    network's padded input grid (``pred_grid='input'``) or the original
    image (``'original'``); otherwise IoU would compare other pixels."""
    if 'gt_sem_seg' not in sample:
        return
    label = tuple(sample.gt_sem_seg.data.shape[-2:])
    if label == tuple(size):
        return
    where = sample.metainfo.get('img_path', 'this image')
    if grid == 'input':
        raise ValueError(
            f"test_cfg.pred_grid='input' keeps predictions on the network's "
            f'{tuple(size)} input grid, but the label of {where} is {label}: '
            'load the labels before the resize (LoadAnnotations before '
            "ResizeLongestEdgePad in the test pipeline), or use "
            "pred_grid='original'.")
    raise ValueError(
        f"test_cfg.pred_grid='original' scores at the original size "
        f'{tuple(size)}, but the label of {where} is {label}: it went through '
        'the resize. Load the labels after the resize (LoadAnnotations after '
        'Resize / ResizeLongestEdgePad in the test pipeline), or score on the '
        "input grid with test_cfg.pred_grid='input'.")


def unpad_and_unflip(logits: Tensor, meta: dict) -> Tensor:
    """[C, H, W] network output without padding and with test-time
    flipping undone, as mmseg's post-processing does. Padding is the
    pipeline's (``img_padding_size``, e.g. ResizeLongestEdgePad) plus the
    data preprocessor's batch padding (``padding_size``); both sit at the
    bottom and right of the pipeline's, so they add up."""
    pads = [a + b for a, b in zip(meta.get('img_padding_size', [0] * 4),
                                  meta.get('padding_size', [0] * 4))]
    left, right, top, bottom = pads
    H, W = logits.shape[1:]
    logits = logits[:, top:H - bottom, left:W - right]
    if meta.get('flip'):
        dim = 2 if meta.get('flip_direction') == 'horizontal' else 1
        logits = logits.flip(dims=(dim, ))
    return logits


def to_predictions(seg_logits: Tensor, data_samples: List, test_cfg,
                   align_corners: bool, warned: set) -> List:
    """mmseg's post-processing of class probabilities ``seg_logits``
    [B, C, H, W] into ``data_samples``: padding removed, flip undone, back
    to ``ori_shape``, arg-max; any ground truth checked against the class
    list and the scoring grid first. Originals whose full-size class map
    would exceed ``test_cfg.max_logits_numel`` get the arg-max in strips and
    ``seg_logits`` at the network's resolution (said once: ``warned``).

    With ``test_cfg.pred_grid='input'`` predictions stay on the grid the
    network saw, padding included (the reference code's evaluation: labels
    go through the same resize and padding, the padding is ignored as
    255)."""
    C = seg_logits.shape[1]
    limit = test_cfg.get('max_logits_numel', MAX_LOGITS_NUMEL)
    on_input_grid = test_cfg.get('pred_grid', 'original') == 'input'
    for i, sample in enumerate(data_samples):
        if 'gt_sem_seg' in sample:
            check_labels(sample.gt_sem_seg.data, C, sample.metainfo)
        if on_input_grid:
            logits = seg_logits[i]  # [C, H, W] padded input grid
            check_label_grid(sample, logits.shape[1:], 'input')
            sample.set_data(dict(
                seg_logits=PixelData(data=logits),
                pred_sem_seg=PixelData(data=logits.argmax(0, True))))
            continue
        logits = unpad_and_unflip(seg_logits[i], sample.metainfo)
        H, W = sample.metainfo['ori_shape'][:2]
        check_label_grid(sample, (H, W), 'original')
        if C * H * W <= limit:
            logits = F.interpolate(logits[None], size=(H, W), mode='bilinear',
                                   align_corners=align_corners)[0]
            sample.set_data(dict(
                seg_logits=PixelData(data=logits),
                pred_sem_seg=PixelData(data=logits.argmax(0, True))))
            continue
        pred = upsampled_argmax(logits, (H, W), align_corners)
        if 'large' not in warned:
            warned.add('large')
            warnings.warn(
                f'Image of {H} x {W} with {C} classes: pred_sem_seg is at '
                'full size, seg_logits stay at the network resolution '
                f'{tuple(logits.shape[1:])} (C x H x W exceeds '
                f'test_cfg.max_logits_numel={limit}).')
        sample.set_data(dict(seg_logits=PixelData(data=logits),
                             pred_sem_seg=PixelData(data=pred)))
    return data_samples


def _bilinear_taps(out_size: int, in_size: int, align_corners: bool):
    """Source indices and weights of 1-D bilinear resizing, computed as
    ``F.interpolate`` computes them (float32 scale, clamped at the edges)."""
    dst = torch.arange(out_size, dtype=torch.float32)
    if align_corners:
        scale = (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
        src = dst * torch.tensor(scale, dtype=torch.float32)
    else:
        scale = torch.tensor(in_size / out_size, dtype=torch.float32)
        src = ((dst + 0.5) * scale - 0.5).clamp(min=0)
    lo = src.long().clamp(max=in_size - 1)
    hi = (lo + 1).clamp(max=in_size - 1)
    return lo, hi, (src - lo.float()).clamp(0, 1)


def upsampled_argmax(logits: torch.Tensor, size, align_corners: bool,
                     max_bytes: int = 64 << 20) -> torch.Tensor:
    """``interpolate(logits, size, 'bilinear').argmax(0)`` computed in row
    strips, so that memory grows with ``H x W`` and not ``C x H x W``: a
    full-resolution class map of an 8k x 8k image never exists.

    Args:
        logits: [C, h, w]
        size: output (H, W)
    Returns:
        [1, H, W] int64
    """
    C, h, w = logits.shape
    H, W = (int(s) for s in size)
    r_lo, r_hi, r_w = _bilinear_taps(H, h, align_corners)
    c_lo, c_hi, c_w = _bilinear_taps(W, w, align_corners)
    dev = logits.device
    c_lo, c_hi, c_w = c_lo.to(dev), c_hi.to(dev), c_w.to(dev)
    rows = max(1, max_bytes // (4 * C * max(W, w)))
    out = torch.empty((1, H, W), dtype=torch.long, device=dev)
    for y0 in range(0, H, rows):
        y1 = min(H, y0 + rows)
        wy = r_w[y0:y1].to(dev)[None, :, None]  # [1, S, 1]
        strip = logits[:, r_lo[y0:y1]] * (1 - wy) \
            + logits[:, r_hi[y0:y1]] * wy  # [C, S, w]
        strip = strip[:, :, c_lo] * (1 - c_w) + strip[:, :, c_hi] * c_w
        out[0, y0:y1] = strip.argmax(0)  # [S, W]
    return out
