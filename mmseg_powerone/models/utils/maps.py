"""Map building of the method (docs/en/method.md, steps 3-6): pure functions
shared by every adapter, the segmentor, InfoScore and visualisation."""
from typing import Sequence

import torch
import torch.nn.functional as F


def prompt_softmax_itm(attn: torch.Tensor, itm: torch.Tensor) -> torch.Tensor:
    """Steps 3-4: softmax over prompts at each patch, times each prompt's ITM
    match probability.

    Args:
        attn: reduced attention scores ``A_l[p, j]``, [B, L, P, N].
        itm: ITM match probabilities ``s_p``, [B, P].
    Returns:
        [B, L, P, N]
    """
    return attn.softmax(dim=2) * itm[:, None, :, None]


def group_prompts(maps: torch.Tensor, class_index: Sequence[int],
                  num_classes: int, has_background: bool = True,
                  group_background: bool = True) -> torch.Tensor:
    """Step 5: prompts to classes. Background (class 0, if
    ``has_background``) sums its prompts, every other class takes the max
    over its prompts. ``group_background=False`` keeps the background
    prompts as separate entries in front of classes 1..C-1 (InfoScore's
    marginal, as in the reference code).

    Args:
        maps: per-prompt maps, [B, L, P, N].
        class_index: the class of each prompt, length P.
        num_classes: C; every class must own at least one prompt.
    Returns:
        [B, L, C, N], or [B, L, P_bg + C - 1, N] without grouping
    """
    idx = torch.as_tensor(class_index, device=maps.device)
    bg = (idx == 0) if has_background else torch.zeros_like(idx, dtype=torch.bool)
    B, L, _, N = maps.shape
    fg_idx = idx[~bg].view(1, 1, -1, 1).expand(B, L, -1, N)
    fg_map = maps.new_zeros(B, L, num_classes, N).scatter_reduce(
        2, fg_idx, maps[:, :, ~bg], reduce='amax', include_self=False)
    if not has_background:
        return fg_map
    bg_map = maps[:, :, bg]  # [B, L, P_bg, N]
    if group_background:
        bg_map = bg_map.sum(dim=2, keepdim=True)  # [B, L, 1, N]
    return torch.cat([bg_map, fg_map[:, :, 1:]], dim=2)


def normalize_classes(maps: torch.Tensor, dim: int = 1, eps: float = 1e-12,
                      inplace: bool = False) -> torch.Tensor:
    """Divide by the sum over classes so each pixel holds a distribution
    (``inplace``: into ``maps`` itself)."""
    total = maps.sum(dim=dim, keepdim=True).clamp_min(eps)
    return maps.div_(total) if inplace else maps / total


def ensemble_probs(maps: torch.Tensor, size, align_corners: bool) -> torch.Tensor:
    """Top-K ensemble: mean over layers, bilinear upsampling to ``size``,
    normalisation over classes.

    Args:
        maps: per-layer class maps, [B, L, C, h, w].
        size: (H, W) of the output.
    Returns:
        class probabilities, [B, C, H, W]
    """
    mean = maps.mean(dim=1)  # [B, C, h, w]
    up = F.interpolate(mean, size=tuple(size), mode='bilinear',
                       align_corners=align_corners)  # [B, C, H, W]
    # at inference in place: the same values without a second full-size
    # copy (0.8 GB at 200 classes, 4 images of 512 x 512); training's
    # autograd needs ``up`` as it is
    return normalize_classes(up, dim=1, inplace=not up.requires_grad)


def reduce_attention(scores: torch.Tensor, token_mask: torch.Tensor,
                     drop_first: bool = True) -> torch.Tensor:
    """Steps 1-2: reduce text-to-image attention scores as they are produced.

    Max over heads, drop the image [CLS] column (``drop_first``), zero the
    rows of padding tokens, sum over text tokens.

    Args:
        scores: [..., P, H, T, N] pre-softmax, scaled scores (image [CLS]
            first); leading dimensions (e.g. images) are kept.
        token_mask: [P, T], 1 for real tokens, 0 for padding.
    Returns:
        [..., P, N - 1] if ``drop_first`` else [..., P, N]
    """
    red = scores.amax(dim=-3)  # [..., P, T, N]
    if drop_first:
        red = red[..., 1:]
    red = red * token_mask[:, :, None].to(red.dtype)
    return red.sum(dim=-2)


def gradcam_attention(probs: torch.Tensor, grads: torch.Tensor,
                      name_mask: torch.Tensor, head=None,
                      drop_first: bool = True) -> torch.Tensor:
    """"gradcam" mode (PnP-OVSS): post-softmax attention times its positive
    gradient of the ITM match logit, averaged over heads (or one ``head``),
    averaged over the class-name token rows, image [CLS] column dropped
    (``drop_first``).

    Args:
        probs: post-softmax text-to-image attention, [..., P, H, T, N];
            leading dimensions (e.g. images) are kept.
        grads: d(ITM match logit) / d(probs), the same shape.
        name_mask: [P, T], 1 on the tokens of the class name.
    Returns:
        [..., P, N - 1] (``drop_first``) or [..., P, N], non-negative
    """
    cam = probs * grads.clamp(min=0)  # [..., P, H, T, N]
    cam = cam.mean(dim=-3) if head is None else cam[..., head, :, :]  # [..., P, T, N]
    rows = name_mask.to(cam.dtype)
    rows = rows / rows.sum(dim=1, keepdim=True).clamp(min=1)  # [P, T]
    cam = (cam * rows[:, :, None]).sum(dim=-2)  # [..., P, N]
    return cam[..., 1:] if drop_first else cam


ITM_REDUCE_MODES = ('max', 'max_real', 'first')


def reduce_itm(match_prob: torch.Tensor, token_mask: torch.Tensor,
               mode: str) -> torch.Tensor:
    """ITM score per prompt from per-token match probabilities.

    * 'max': the max over every token position, padding included, as the
      reference code computes it. Padding positions carry outputs too (they
      attend to the real tokens and the image), so the score depends on how
      far a prompt is padded: adapters pad every prompt to the longest prompt
      of the whole set, so prompt chunking never changes it.
    * 'max_real': the max over the real (non-padding) tokens only.
    * 'first': the first token, as standard BLIP/ALBEF ITM reads it.

    Args:
        match_prob: [P, T] softmax(ITM logits)[match] at every token.
        token_mask: [P, T], 1 on real tokens.
    Returns:
        [P]
    """
    if mode == 'first':
        return match_prob[:, 0]
    if mode == 'max':
        return match_prob.amax(dim=1)
    if mode == 'max_real':
        masked = match_prob.masked_fill(token_mask == 0, float('-inf'))
        return masked.amax(dim=1)
    raise ValueError(f'itm_reduce={mode!r} is not supported; use one of '
                     f'{ITM_REDUCE_MODES}.')
