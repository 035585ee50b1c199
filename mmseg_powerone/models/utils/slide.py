"""Slide-window inference, as mmseg's ``EncoderDecoder.slide_inference``
places and averages its crops, with several windows per pass."""
from typing import List, Tuple

import torch
from torch import Tensor


def slide_pair(value, name):
    """``test_cfg.stride`` / ``crop_size`` of slide inference as (h, w)."""
    if value is None:
        raise ValueError(f"test_cfg.mode='slide' needs test_cfg.{name}, e.g. "
                         f'{name}=(512, 512).')
    if isinstance(value, int):
        return value, value
    h, w = value
    if h < 1 or w < 1:
        raise ValueError(f'test_cfg.{name} must be positive, got {value}.')
    return int(h), int(w)


def slide_windows(H: int, W: int, test_cfg) -> List[Tuple[int, int, int, int]]:
    """(y1, y2, x1, x2) of every crop of slide inference over an H x W
    input, as mmseg's EncoderDecoder places them (crops larger than the
    image shrink to it, so all windows have one size)."""
    h_stride, w_stride = slide_pair(test_cfg.get('stride'), 'stride')
    h_crop, w_crop = slide_pair(test_cfg.get('crop_size'), 'crop_size')
    h_grids = max(H - h_crop + h_stride - 1, 0) // h_stride + 1
    w_grids = max(W - w_crop + w_stride - 1, 0) // w_stride + 1
    windows = []
    for hi in range(h_grids):
        for wi in range(w_grids):
            y2 = min(hi * h_stride + h_crop, H)
            x2 = min(wi * w_stride + w_crop, W)
            windows.append((max(y2 - h_crop, 0), y2, max(x2 - w_crop, 0), x2))
    return windows


WINDOW_BATCH_BYTES = 512 << 20


def windows_per_pass(window_batch, num_windows: int, batch: int,
                     num_classes: int, crop_hw) -> int:
    """How many slide windows go through one pass. An integer is taken as
    is (capped at ``num_windows``); 'auto' takes as many as keep one fp32
    class-probability map of the pass ([windows x batch, C, h, w]) within
    512 MiB, at least one (VOC21 at 512 x 512 crops: 24 windows; COCO-Stuff's
    171 classes: 2), so memory stays near mmseg's one-by-one loop where the
    class maps are large."""
    if window_batch == 'auto':
        per_window = batch * num_classes * crop_hw[0] * crop_hw[1] * 4
        window_batch = max(1, WINDOW_BATCH_BYTES // per_window)
    return min(window_batch, num_windows)


def check_window_batch(value):
    if value != 'auto' and (not isinstance(value, int)
                            or isinstance(value, bool) or value < 1):
        raise ValueError(
            f'test_cfg.window_batch={value!r}: give the number of slide '
            "windows per pass (a positive integer; 1 runs them one by one, "
            "as mmseg) or 'auto' (the default: as many as keep a pass's "
            'class maps within 512 MiB).')
    return value


def slide_inference(encode, inputs: Tensor, num_classes: int,
                    test_cfg) -> Tensor:
    """Average the class probabilities ``encode(crops)`` of overlapping
    crops of ``inputs`` [B, 3, H, W] into [B, C, H, W], as mmseg's
    EncoderDecoder does. Unlike mmseg's loop, several windows go through
    ``encode`` as one batch (:func:`windows_per_pass` of
    ``test_cfg.window_batch``): the same probabilities in fewer, larger
    passes."""
    B, _, H, W = inputs.shape
    probs = inputs.new_zeros((B, num_classes, H, W))
    count = inputs.new_zeros((B, 1, H, W))
    windows = slide_windows(H, W, test_cfg)
    top, bottom, left, right = windows[0]  # every window has this size
    per_pass = windows_per_pass(
        check_window_batch(test_cfg.get('window_batch', 'auto')),
        len(windows), B, num_classes, (bottom - top, right - left))
    for s in range(0, len(windows), per_pass):
        group = windows[s:s + per_pass]
        crops = torch.cat([inputs[:, :, y1:y2, x1:x2]
                           for y1, y2, x1, x2 in group])  # [n*B, 3, h, w]
        out = encode(crops)  # [n*B, C, h, w], window-major
        for j, (y1, y2, x1, x2) in enumerate(group):
            probs[:, :, y1:y2, x1:x2] += out[j * B:(j + 1) * B]
            count[:, :, y1:y2, x1:x2] += 1
    return probs / count
