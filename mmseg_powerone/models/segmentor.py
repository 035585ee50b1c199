"""Open-vocabulary segmentation from a VLM's text-to-image attention."""
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmseg.models.segmentors import BaseSegmentor
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig, SampleList
from torch import Tensor

from ..class_names import DEFAULT_TEMPLATES, build_prompts
from .maps import (ITM_REDUCE_MODES, ensemble_probs, group_prompts,
                   prompt_softmax_itm)

MAP_MODES = ('attention', )


@MODELS.register_module()
class VLMAttentionSegmentor(BaseSegmentor):
    """Segment images with the text-to-image attention of a VLM.

    1. The adapter (``vlm``) encodes the image once and runs every prompt
       (class name x template) through its text side, returning per-layer
       reduced attention ``A_l[p, j]`` and ITM match scores ``s_p``.
    2. :meth:`layer_maps` turns them into per-layer class maps: softmax over
       prompts, times ITM, prompts grouped into classes.
    3. :meth:`encode_decode` averages the selected ``layers``, upsamples and
       normalises over classes: these are ``seg_logits``.
    4. :meth:`predict` runs whole or slide inference and mmseg's
       post-processing (back to the original size, argmax).

    .. code:: text

        predict(): inference() -> whole_inference() / slide_inference()
                     -> encode_decode() -> layer_maps() -> vlm()
                   postprocess_result()

    Args:
        vlm: adapter config (e.g. ``dict(type='BLIPAdapter', pretrained=...)``).
        class_names: class-name file (one class per line, synonyms
            comma-separated, background first) or a list of names.
        prompt_templates: templates with one ``{}`` for the class name.
        multi_prompt: use every synonym of the object classes (background
            always uses all of its synonyms).
        layers: attention layers (0-based) whose maps are averaged, or
            'infoscore': the top-``topk`` layers by InfoScore, chosen on
            unlabeled images by ``InfoScoreHook`` before testing/training.
        topk: how many layers InfoScore selects.
        itm_reduce: 'max' (reference code) or 'first' (standard BLIP ITM).
        itm_reweight: multiply each prompt's map by its ITM score (the
            method); False gives the ablation without it.
        map_mode: 'attention' (the paper's maps, forward only).
        align_corners: used when upsampling maps and results; True as in the
            reference code.
        data_preprocessor: e.g. ``SegDataPreProcessor`` with the VLM's
            mean/std.
        test_cfg: ``dict(mode='whole')`` or ``dict(mode='slide',
            crop_size=(h, w), stride=(h, w))``.
        train_cfg, pretrained: accepted for mmseg tools that inject them.
    """

    def __init__(self,
                 vlm: ConfigType,
                 class_names: Union[str, Sequence],
                 prompt_templates: Sequence[str] = DEFAULT_TEMPLATES,
                 multi_prompt: bool = False,
                 layers: Union[Sequence[int], str, None] = None,
                 topk: int = 2,
                 itm_reduce: str = 'max',
                 itm_reweight: bool = True,
                 map_mode: str = 'attention',
                 align_corners: bool = True,
                 data_preprocessor: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 pretrained: Optional[str] = None,
                 init_cfg: OptMultiConfig = None):
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if itm_reduce not in ITM_REDUCE_MODES:
            raise ValueError(f'itm_reduce={itm_reduce!r} is not supported; '
                             f'use one of {ITM_REDUCE_MODES}.')
        if map_mode not in MAP_MODES:
            raise ValueError(f'map_mode={map_mode!r} is not supported; use '
                             f'one of {MAP_MODES}.')
        self.vlm = MODELS.build(vlm)
        self.prompts = build_prompts(class_names, prompt_templates,
                                     multi_prompt)
        self.prompt_templates = list(prompt_templates)
        self.multi_prompt = multi_prompt
        self.itm_reduce = itm_reduce
        self.itm_reweight = itm_reweight
        self.map_mode = map_mode
        self.align_corners = align_corners
        n = self.vlm.num_layers
        if isinstance(topk, bool) or not isinstance(topk, int) \
                or not 1 <= topk <= n:
            raise ValueError(f'topk={topk!r}: this VLM has {n} attention '
                             f'layers; choose topk in [1, {n}].')
        self.topk = topk
        self.infoscore = None  # InfoScore result, once layers are ranked
        if layers == 'infoscore':
            self.layer_selection = 'infoscore'
            self.layers = None  # set by InfoScoreHook (or checkpoint meta)
        elif isinstance(layers, str):
            raise ValueError(f"layers={layers!r}: give a list of layer "
                             "indices or 'infoscore'.")
        else:
            self.layer_selection = 'fixed'
            self.layers = self._check_layers(
                list(range(n)) if layers is None else layers)
        self.test_cfg = _as_config(test_cfg or dict(mode='whole'))
        self.train_cfg = train_cfg
        self._tokens = None
        # Checkpoints of this model leave out the frozen pretrained VLM
        # weights: they come from ``vlm.pretrained`` when the model is built.
        self.register_state_dict_post_hook(_drop_pretrained_vlm_state)
        self.register_load_state_dict_post_hook(_ignore_missing_vlm_state)

    # ------------------------------------------------------------- helpers
    @property
    def class_names(self) -> List[str]:
        return self.prompts.class_names

    @property
    def num_classes(self) -> int:
        return self.prompts.num_classes

    @property
    def out_channels(self) -> int:
        return self.num_classes

    def _check_layers(self, layers) -> List[int]:
        n = self.vlm.num_layers
        if isinstance(layers, int):
            layers = [layers]
        layers = list(layers)
        if not layers:
            raise ValueError('`layers` is empty; give at least one attention '
                             f'layer index in [0, {n - 1}].')
        for l in layers:
            if isinstance(l, bool) or not isinstance(l, int) or not 0 <= l < n:
                raise ValueError(
                    f'Layer index {l!r} is out of range: this VLM has {n} '
                    f'attention layers, indexed 0..{n - 1}.')
        if len(set(layers)) != len(layers):
            raise ValueError(f'`layers` {layers} repeats an index.')
        return layers

    def set_layers(self, layers: Sequence[int], infoscore: Optional[dict] = None):
        """Use these layers from now on (e.g. InfoScore's top-k)."""
        self.layers = self._check_layers(layers)
        if infoscore is not None:
            self.infoscore = infoscore

    def prompt_tokens(self) -> Dict[str, Tensor]:
        """The tokenised prompts (computed once)."""
        if self._tokens is None:
            self._tokens = self.vlm.prompt_batch(self.prompts)
        return self._tokens

    # ------------------------------------------------------------- method
    def extract_feat(self, inputs: Tensor):
        """Image tokens of the VLM, [B, 1 + h*w, D], and the grid (h, w)."""
        return self.vlm.encode_image(inputs)

    def layer_maps(self, inputs: Tensor,
                   layers: Optional[Sequence[int]] = None) -> Dict[str, Tensor]:
        """Per-layer class maps (DESIGN.md section 1, steps 1-5).

        Args:
            inputs: preprocessed images, [B, 3, H, W].
            layers: attention layers; defaults to the configured ``layers``.
        Returns:
            dict(maps=[B, len(layers), C, h, w], itm=[B, P]); ``maps`` are
            softmax-over-prompts times ITM (if ``itm_reweight``), grouped
            into classes, before
            upsampling and ensembling.
        """
        if layers is None:
            if self.layers is None:
                raise RuntimeError(
                    "layers='infoscore' but no layers have been selected: add "
                    "custom_hooks=[dict(type='InfoScoreHook')] to the config "
                    '(tools/train.py and tools/test.py then rank the layers '
                    'first), load a checkpoint that stores them, or set '
                    'model.layers to a list of indices.')
            layers = self.layers
        else:
            layers = self._check_layers(layers)
        out = self.vlm(inputs, self.prompt_tokens(), layers,
                       itm_reduce=self.itm_reduce)
        h, w = out['grid']
        weight = out['itm'] if self.itm_reweight else torch.ones_like(out['itm'])
        maps = prompt_softmax_itm(out['attn'], weight)  # [B, L, P, h*w]
        maps = group_prompts(maps, self.prompts.class_index,
                             self.num_classes)  # [B, L, C, h*w]
        B, L, C, _ = maps.shape
        return dict(maps=maps.view(B, L, C, h, w), itm=out['itm'])

    def encode_decode(self, inputs: Tensor,
                      batch_img_metas: Optional[List[dict]] = None) -> Tensor:
        """Class probabilities [B, C, H, W] of the configured layers'
        ensemble at the input size."""
        H, W = inputs.shape[2:]
        p = self.vlm.patch_size
        pad_h, pad_w = (-H) % p, (-W) % p
        if pad_h or pad_w:  # the grid must cover the image exactly
            inputs = F.pad(inputs, (0, pad_w, 0, pad_h))
        maps = self.layer_maps(inputs)['maps']
        probs = ensemble_probs(maps, inputs.shape[2:], self.align_corners)
        return probs[:, :, :H, :W]

    # ------------------------------------------------------------- mmseg API
    def predict(self, inputs: Tensor,
                data_samples: Optional[SampleList] = None) -> SampleList:
        """Segment a batch; ``seg_logits`` hold class probabilities."""
        if data_samples is not None:
            batch_img_metas = [s.metainfo for s in data_samples]
        else:
            batch_img_metas = [
                dict(ori_shape=inputs.shape[2:], img_shape=inputs.shape[2:],
                     pad_shape=inputs.shape[2:], padding_size=[0, 0, 0, 0])
            ] * inputs.shape[0]
        with torch.no_grad():
            seg_logits = self.inference(inputs, batch_img_metas)
        return self.postprocess_result(seg_logits, data_samples)

    def _forward(self, inputs: Tensor,
                 data_samples: Optional[SampleList] = None) -> Tensor:
        """Tensor mode: class probabilities at the input size."""
        return self.encode_decode(inputs)

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        raise NotImplementedError(
            'VLMAttentionSegmentor has no training step yet: one-shot '
            'fine-tuning is not implemented in this version. Use tools/test.py '
            'for the training-free method.')

    def inference(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        mode = self.test_cfg.get('mode', 'whole')
        if mode == 'whole':
            return self.encode_decode(inputs, batch_img_metas)
        if mode == 'slide':
            return self.slide_inference(inputs, batch_img_metas)
        raise ValueError(f"test_cfg.mode={mode!r}; use 'whole' or 'slide'.")

    def slide_inference(self, inputs: Tensor,
                        batch_img_metas: List[dict]) -> Tensor:
        """Average overlapping crops' class probabilities, as mmseg's
        EncoderDecoder does (crops larger than the image shrink to it)."""
        h_stride, w_stride = _pair(self.test_cfg.get('stride'), 'stride')
        h_crop, w_crop = _pair(self.test_cfg.get('crop_size'), 'crop_size')
        B, _, H, W = inputs.shape
        h_grids = max(H - h_crop + h_stride - 1, 0) // h_stride + 1
        w_grids = max(W - w_crop + w_stride - 1, 0) // w_stride + 1
        probs = inputs.new_zeros((B, self.num_classes, H, W))
        count = inputs.new_zeros((B, 1, H, W))
        for hi in range(h_grids):
            for wi in range(w_grids):
                y2 = min(hi * h_stride + h_crop, H)
                x2 = min(wi * w_stride + w_crop, W)
                y1, x1 = max(y2 - h_crop, 0), max(x2 - w_crop, 0)
                crop = self.encode_decode(inputs[:, :, y1:y2, x1:x2])
                probs[:, :, y1:y2, x1:x2] += crop
                count[:, :, y1:y2, x1:x2] += 1
        return probs / count


def _as_config(cfg):
    from mmengine.config import ConfigDict
    return cfg if isinstance(cfg, ConfigDict) else ConfigDict(cfg)


def _pair(value, name):
    if value is None:
        raise ValueError(f"test_cfg.mode='slide' needs test_cfg.{name}, e.g. "
                         f'{name}=(512, 512).')
    if isinstance(value, int):
        return value, value
    h, w = value
    if h < 1 or w < 1:
        raise ValueError(f'test_cfg.{name} must be positive, got {value}.')
    return int(h), int(w)


def _frozen_vlm_keys(module, prefix=''):
    """State-dict keys of the VLM's frozen pretrained weights: checkpoints
    leave them out, they are rebuilt from ``vlm.pretrained``."""
    return {f'{prefix}vlm.{k}' for k in module.vlm.state_dict().keys()}


def _drop_pretrained_vlm_state(module, state_dict, prefix, local_metadata):
    for key in _frozen_vlm_keys(module, prefix):
        state_dict.pop(key, None)


def _ignore_missing_vlm_state(module, incompatible_keys):
    # Keys are relative to the segmentor (mmengine strips wrapper prefixes).
    frozen = _frozen_vlm_keys(module)
    missing = incompatible_keys.missing_keys
    missing[:] = [k for k in missing if k not in frozen]
