"""Checks and steps around the segmentor's predictions: labels against the
class list and the scoring grid, mmseg's un-padding and un-flipping, the
slide-inference window sizes."""
import warnings
from typing import List, Tuple

import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from torch import Tensor

from .maps import upsampled_argmax

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
