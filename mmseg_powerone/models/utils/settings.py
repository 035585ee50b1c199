"""The segmentor's settings, checked when it is built, each error with
its fix: the layers and ``topk``, the map settings its adapter is built
with, ``compile``, ``train_cfg`` (one-shot tuning) and ``test_cfg``
(inference)."""
from typing import List, Optional

import torch

from .maps import ITM_REDUCE_MODES
from .postprocess import PRED_GRIDS
from .slide import check_window_batch

MAP_MODES = ('attention', 'gradcam')
TUNE_EMBEDDINGS = ('all', 'class_tokens')
TEST_MODES = ('whole', 'slide')


def check_topk(topk, num_layers=None, what: str = 'topk') -> int:
    """``topk`` checked: a positive integer, at most ``num_layers`` when
    that is known. The one check behind the segmentor's ``topk``, the
    InfoScore hook's and the ranking's."""
    if isinstance(topk, bool) or not isinstance(topk, int) or topk < 1 or \
            (num_layers is not None and topk > num_layers):
        where = (f'this VLM has {num_layers} attention layers; choose topk '
                 f'in [1, {num_layers}].' if num_layers is not None else
                 "it must be a positive integer or None (the model's topk).")
        raise ValueError(f'{what}={topk!r}: {where}')
    return topk


def check_layers(layers, num_layers: int) -> List[int]:
    """Attention layer indices (an int or a sequence), each in
    [0, num_layers), none repeated."""
    if isinstance(layers, int):
        layers = [layers]
    layers = list(layers)
    if not layers:
        raise ValueError('`layers` is empty; give at least one attention '
                         f'layer index in [0, {num_layers - 1}].')
    for l in layers:
        if isinstance(l, bool) or not isinstance(l, int) or \
                not 0 <= l < num_layers:
            raise ValueError(
                f'Layer index {l!r} is out of range: this VLM has '
                f'{num_layers} attention layers, indexed 0..{num_layers - 1}.')
    if len(set(layers)) != len(layers):
        raise ValueError(f'`layers` {layers} repeats an index.')
    return layers


def check_map_settings(itm_reduce: str, map_mode: str) -> None:
    """The map settings an adapter is built with."""
    if itm_reduce not in ITM_REDUCE_MODES:
        raise ValueError(f'itm_reduce={itm_reduce!r} is not supported; '
                         f'use one of {ITM_REDUCE_MODES}.')
    if map_mode not in MAP_MODES:
        raise ValueError(f'map_mode={map_mode!r} is not supported; use '
                         f'one of {MAP_MODES}.')


def check_gradcam_head(head, map_mode: str, num_heads: int):
    """``gradcam_head``: None (average the heads) or, with GradCAM maps, a
    head index of the VLM's attention layers."""
    if head is not None and (
            map_mode != 'gradcam' or isinstance(head, bool)
            or not isinstance(head, int) or not 0 <= head < num_heads):
        raise ValueError(
            f'gradcam_head={head!r}: needs map_mode=\'gradcam\' and a head '
            f'index in [0, {num_heads - 1}], or None to average the heads.')
    return head


def as_config(cfg):
    """A ConfigDict (attribute access) of a dict."""
    from mmengine.config import ConfigDict
    return cfg if isinstance(cfg, ConfigDict) else ConfigDict(cfg)


def check_train_cfg(train_cfg):
    """``model.train_cfg`` with its defaults, checked; None when the
    model is training-free."""
    if not train_cfg:
        return None
    cfg = as_config(dict(tune_embeddings='all', background_weight=0.5))
    unknown = set(train_cfg) - set(cfg)
    if unknown:
        raise ValueError(f'model.train_cfg has unknown keys {sorted(unknown)}; '
                         f'it takes {sorted(cfg)}.')
    cfg.update(train_cfg)
    if cfg.tune_embeddings not in TUNE_EMBEDDINGS:
        raise ValueError(f'train_cfg.tune_embeddings={cfg.tune_embeddings!r}; '
                         f'use one of {TUNE_EMBEDDINGS}.')
    w = cfg.background_weight
    if isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0:
        raise ValueError(f'train_cfg.background_weight={w!r} must be a '
                         'non-negative number (reference: 0.5).')
    return cfg


def check_compile(value) -> Optional[dict]:
    """The segmentor's ``compile`` setting as ``torch.compile`` keywords
    (None: nothing compiled), checked by torch itself on a trivial function
    so that bad options fail at build, before any module is touched."""
    if value is None or value is False:
        return None
    options = {} if value is True else value
    if not isinstance(options, dict):
        raise ValueError(
            f'compile={value!r}: give True or a dict of torch.compile '
            "keywords, e.g. dict(mode='reduce-overhead') on CUDA.")
    try:
        torch.compile(lambda x: x, **options)
    except Exception as e:  # TypeError, RuntimeError, InvalidBackend, ...
        raise ValueError(f'compile={dict(options)!r} is not accepted by '
                         f'torch.compile: {e}') from e
    return dict(options)


def check_test_cfg(test_cfg):
    """``model.test_cfg`` with its default mode ('whole'), checked."""
    cfg = as_config(test_cfg or dict(mode='whole'))
    mode = cfg.get('mode', 'whole')
    if mode not in TEST_MODES:
        raise ValueError(f"test_cfg.mode={mode!r}; use 'whole' or 'slide'.")
    if cfg.get('pred_grid', 'original') not in PRED_GRIDS:
        raise ValueError(
            f"test_cfg.pred_grid={cfg.pred_grid!r}; use 'original' (back to "
            "each image's original size, as mmseg) or 'input' (the "
            "network's input grid, the reference code's evaluation).")
    check_window_batch(cfg.get('window_batch', 'auto'))
    return cfg
