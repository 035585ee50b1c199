"""Open-vocabulary segmentation from a VLM's text-to-image attention."""
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.model import is_model_wrapper
from mmseg.models.segmentors import BaseSegmentor
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig, SampleList
from torch import Tensor

from ...class_names import (DEFAULT_TEMPLATES, PromptSet, build_prompts,
                            class_palette)
from ..utils.maps import ensemble_probs, group_prompts, prompt_softmax_itm
from ..utils.postprocess import IGNORE_INDEX, check_labels, to_predictions
from ..utils.settings import (check_compile, check_gradcam_head,
                              check_layers, check_map_settings,
                              check_test_cfg, check_topk, check_train_cfg)
from ..utils.slide import slide_inference
from ..utils.tuned_state import (EXTRA_STATE_VERSION, apply_checkpoint_info,
                                 check_loaded_keys, decode_info,
                                 drop_pretrained_vlm_state, encode_info)

# The one-shot loss takes log(max(p, LOSS_EPS)), as the reference code: a
# larger floor would cut the gradient of every pixel below it.
LOSS_EPS = 1e-12


@MODELS.register_module()
class VLMAttentionSegmentor(BaseSegmentor):
    """Segment images with the text-to-image attention of a VLM.

    1. The adapter (``vlm``, built with the map settings ``itm_reduce``,
       ``map_mode``, ``gradcam_head``) encodes the image once and runs every
       prompt (class name x template) through its text side, returning
       per-layer reduced attention ``A_l[p, j]`` and ITM match scores
       ``s_p``; a call takes images, prompts and layers only.
    2. :meth:`layer_maps` turns them into per-layer class maps: softmax over
       prompts, times ITM, prompts grouped into classes.
    3. :meth:`encode_decode` averages the selected ``layers``, upsamples and
       normalises over classes: these are ``seg_logits``.
    4. :meth:`predict` runs whole or slide inference and mmseg's
       post-processing (back to the original size, argmax).

    .. code:: text

        predict(): inference() -> encode_decode()             (mode='whole')
                               -> slide_inference()           (mode='slide')
                                    -> encode_decode() per batch of crops
                   encode_decode() -> layer_maps() -> vlm(images, prompts, layers)
                   postprocess_result() -> to_predictions()
        loss():    encode_decode() -> NLL against the one-shot labels

    Args:
        vlm: adapter config (e.g. ``dict(type='BLIPAdapter', pretrained=...)``).
        class_names: class-name file (one class per line, synonyms
            comma-separated, background first) or a list of names.
        prompt_templates: templates with one ``{}`` for the class name.
        multi_prompt: use every synonym of the object classes (background
            always uses all of its synonyms).
        has_background: the first class is the background (VOC21,
            Context60, COCO-Object); False for benchmarks without one
            (VOC20, Context59, COCO-Stuff, ADE20K, Cityscapes).
        layers: attention layers (0-based) whose maps are averaged, or
            'infoscore': the top-``topk`` layers by InfoScore, chosen on
            unlabeled images by ``InfoScoreHook`` before testing/training.
        topk: how many layers InfoScore selects.
        itm_reduce: how a prompt's per-token ITM becomes its score: 'max'
            over every position, padding included, prompts padded to the
            longest of the set (the reference code's rule), 'max_real' over
            the real tokens only, or 'first' (standard BLIP/ALBEF ITM).
        itm_reweight: multiply each prompt's map by its ITM score (the
            method); False gives the ablation without it.
        map_mode: 'attention' (the paper's maps, forward only) or 'gradcam'
            (PnP-OVSS: post-softmax attention times its positive gradient of
            the ITM match logit, one backward pass; training-free only).
        gradcam_head: with 'gradcam', one attention head's map (None
            averages the heads).
        align_corners: used when upsampling maps and results; True as in the
            reference code.
        crf: optional refinement of the test-time probabilities, e.g.
            ``dict(type='ConvCRF', filter_size=15, blur=4, iters=20)`` (the
            reference's); not applied to the training loss.
        compile: ``torch.compile`` the adapter's fixed-shape modules (its
            ``compile_targets``: the image encoder, per-layer text pieces),
            in place: True, or a dict of ``torch.compile`` keywords, e.g.
            ``dict(mode='reduce-overhead')`` (CUDA graphs) on a GPU. The
            first batch of each new shape compiles; checkpoints and
            parameter names are unchanged. None (default): eager.
        data_preprocessor: e.g. ``SegDataPreProcessor`` with the VLM's
            mean/std.
        test_cfg: ``dict(mode='whole')`` or ``dict(mode='slide',
            crop_size=(h, w), stride=(h, w), window_batch='auto')``
            (crops per pass: batched windows give mmseg's averaged
            probabilities in fewer passes; 'auto' as many as keep a pass's
            class maps within 512 MiB, 1 one by one); ``max_logits_numel``
            (default 2**28): for originals with more class-map elements
            than this, ``seg_logits`` keep the network's resolution and
            ``pred_sem_seg`` is computed in strips (bounded memory);
            ``pred_grid``: 'original' (default, as mmseg: predictions go
            back to each image's original size) or 'input' (they stay on
            the padded grid the network saw, where the labels must be too:
            the reference code's evaluation, see ResizeLongestEdgePad).
        train_cfg: one-shot fine-tuning, e.g. ``dict(tune_embeddings='all',
            background_weight=0.5)``; None (training-free) has no
            :meth:`loss`. ``tune_embeddings``: 'all' trains the word-embedding
            table, 'class_tokens' only offsets of the class-name tokens'
            rows. The selected layers' text-to-image attention always trains.
            ``background_weight``: NLL weight of class 0 (with
            ``has_background``).
        pretrained: accepted for mmseg tools that inject it.
    """

    def __init__(self,
                 vlm: ConfigType,
                 class_names: Union[str, Sequence],
                 prompt_templates: Sequence[str] = DEFAULT_TEMPLATES,
                 multi_prompt: bool = False,
                 has_background: bool = True,
                 layers: Union[Sequence[int], str, None] = None,
                 topk: int = 2,
                 itm_reduce: str = 'max',
                 itm_reweight: bool = True,
                 map_mode: str = 'attention',
                 gradcam_head: Optional[int] = None,
                 align_corners: bool = True,
                 crf: OptConfigType = None,
                 compile: Union[bool, dict, None] = None,
                 data_preprocessor: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 pretrained: Optional[str] = None,
                 init_cfg: OptMultiConfig = None):
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        # every setting is checked before the VLM loads
        check_map_settings(itm_reduce, map_mode)
        self.train_cfg = check_train_cfg(train_cfg)
        if self.train_cfg and map_mode != 'attention':
            raise ValueError(
                f"map_mode={map_mode!r} is for training-free comparison; "
                "one-shot fine-tuning (model.train_cfg) uses "
                "map_mode='attention'.")
        self.test_cfg = check_test_cfg(test_cfg)
        compile_options = check_compile(compile)
        self.vlm = MODELS.build(dict(vlm, itm_reduce=itm_reduce,
                                     map_mode=map_mode,
                                     gradcam_head=gradcam_head))
        check_gradcam_head(gradcam_head, map_mode, self.adapter.num_heads)
        if compile_options is not None:
            self.adapter.compile_modules(**compile_options)
        self.prompts = build_prompts(class_names, prompt_templates,
                                     multi_prompt, has_background)
        # what mmseg's APIs and visualiser read (init_model sets it from a
        # checkpoint's meta; ours starts as the model's own classes)
        self.dataset_meta = self.class_meta()
        self.prompt_templates = list(prompt_templates)
        self.multi_prompt = multi_prompt
        self.has_background = has_background
        self.itm_reweight = itm_reweight
        self.align_corners = align_corners
        self.crf = MODELS.build(crf) if crf else None
        self._init_layers(layers, topk)
        self.tuned_params: List[str] = []  # names in ``vlm``, once tuning began
        self._tuning_started = False
        self._warned = set()  # warnings given once per model
        self._tokens = None
        self._ranking_prompts = None  # built on first use
        self._ranking_tokens = None
        if self.train_cfg:
            self._prepare_tuning()
        # Checkpoints of this model leave out the frozen pretrained VLM
        # weights: they come from ``vlm.pretrained`` when the model is built.
        self.register_state_dict_post_hook(drop_pretrained_vlm_state)
        self.register_load_state_dict_post_hook(check_loaded_keys)

    def _init_layers(self, layers, topk) -> None:
        """``layers``: indices (fixed), None (all) or 'infoscore' (chosen
        by InfoScoreHook or read from a checkpoint, top ``topk``)."""
        n = self.adapter.num_layers
        self.topk = check_topk(topk, n)
        self.infoscore = None  # InfoScore result, once layers are ranked
        if layers == 'infoscore':
            self.layer_selection = 'infoscore'
            self.layers = None
        elif isinstance(layers, str):
            raise ValueError(f"layers={layers!r}: give a list of layer "
                             "indices or 'infoscore'.")
        else:
            self.layer_selection = 'fixed'
            self.layers = check_layers(
                list(range(n)) if layers is None else layers, n)

    def _prepare_tuning(self) -> None:
        """Make every parameter that one-shot tuning may train require grad
        now, so the optimiser (built before InfoScore picks the layers)
        holds them; training starts by freezing the unselected ones
        (:meth:`start_tuning`)."""
        if self.train_cfg.tune_embeddings == 'class_tokens':
            self.adapter.add_token_offsets(
                [name for names in self.prompts.classes for name in names])
        for p in self._tuning_candidates().values():
            p.requires_grad_(True)

    # ------------------------------------------------------------- helpers
    @property
    def adapter(self):
        """The VLM adapter, unwrapped when distributed training has put it
        in DDP (``self.vlm(...)`` still runs through the wrapper)."""
        return self.vlm.module if is_model_wrapper(self.vlm) else self.vlm

    @property
    def itm_reduce(self) -> str:
        """How a prompt's per-token ITM becomes its score (the adapter's)."""
        return self.adapter.itm_reduce

    @property
    def map_mode(self) -> str:
        """'attention' or 'gradcam' (the adapter's)."""
        return self.adapter.map_mode

    @property
    def gradcam_head(self) -> Optional[int]:
        """GradCAM's one head, or None for the mean (the adapter's)."""
        return self.adapter.gradcam_head

    @property
    def class_names(self) -> List[str]:
        return self.prompts.class_names

    @property
    def num_classes(self) -> int:
        return self.prompts.num_classes

    @property
    def out_channels(self) -> int:
        return self.num_classes

    def class_meta(self) -> dict:
        """``dataset_meta`` of the model's classes: their display names and
        a palette (background black)."""
        return dict(classes=tuple(self.class_names),
                    palette=class_palette(self.num_classes))

    def _tuning_candidates(self) -> Dict[str, torch.nn.Parameter]:
        layers = self.layers if self.layers is not None \
            else range(self.adapter.num_layers)
        return self.adapter.tunable_parameters(
            layers, self.train_cfg.tune_embeddings)

    def start_tuning(self) -> None:
        """Train the selected layers' attention and the embeddings; freeze
        every other parameter (done once, when training begins, because
        InfoScore picks the layers only then)."""
        if self.layers is None:
            raise RuntimeError(
                "layers='infoscore' but no layers have been selected before "
                "training: add custom_hooks=[dict(type='InfoScoreHook')] to "
                'the config or set model.layers to a list of indices.')
        tuned = self.adapter.tunable_parameters(
            self.layers, self.train_cfg.tune_embeddings)
        for p in self.parameters():
            p.requires_grad_(False)
        for p in tuned.values():
            p.requires_grad_(True)
        self.tuned_params = sorted(tuned)
        self._tuning_started = True

    def set_class_names(self, class_names: Union[str, Sequence]) -> None:
        """Segment these classes from now on (open vocabulary: any names;
        the first class is the background). Same forms as ``class_names``."""
        self.prompts = build_prompts(class_names, self.prompt_templates,
                                     self.multi_prompt, self.has_background)
        self.dataset_meta = self.class_meta()
        self._tokens = None
        self._ranking_prompts = None
        self._ranking_tokens = None

    def set_layers(self, layers: Sequence[int], infoscore: Optional[dict] = None):
        """Use these layers from now on (e.g. InfoScore's top-k)."""
        self.layers = check_layers(layers, self.adapter.num_layers)
        if infoscore is not None:
            self.infoscore = infoscore

    def prompt_tokens(self, single_prompt: bool = False) -> Dict[str, Tensor]:
        """The tokenised prompts (computed once); ``single_prompt`` gives
        those of :attr:`ranking_prompts`."""
        if self._tokens is None:
            self._tokens = self.adapter.prompt_batch(self.prompts)
        if not single_prompt or self.ranking_prompts is self.prompts:
            return self._tokens
        if self._ranking_tokens is None:
            self._ranking_tokens = self.adapter.prompt_batch(
                self.ranking_prompts)
        return self._ranking_tokens

    @property
    def ranking_prompts(self) -> PromptSet:
        """The single-prompt set InfoScore ranks layers with (docs/en/method.md):
        the first template, each object class by its first name, every
        background synonym. The model's own prompts when they are that."""
        if self._ranking_prompts is None:
            single = build_prompts([list(c) for c in self.prompts.classes],
                                   self.prompt_templates[:1], False,
                                   self.has_background)
            self._ranking_prompts = (self.prompts
                                     if single.texts == self.prompts.texts
                                     else single)
        return self._ranking_prompts

    # ------------------------------------------------------------- method
    def extract_feat(self, inputs: Tensor):
        """Image tokens of the VLM, [B, 1 + h*w, D], and the grid (h, w)."""
        return self.adapter.encode_image(inputs)

    def layer_maps(self, inputs: Tensor,
                   layers: Optional[Sequence[int]] = None,
                   group_background: bool = True,
                   single_prompt: bool = False) -> Dict[str, Tensor]:
        """Per-layer class maps (docs/en/method.md, steps 1-5).

        Args:
            inputs: preprocessed images, [B, 3, H, W].
            layers: attention layers; defaults to the configured ``layers``.
            group_background: False keeps the background prompts as
                separate entries before classes 1..C-1 (InfoScore's
                marginal) instead of summing them into class 0.
            single_prompt: use :attr:`ranking_prompts` (InfoScore's
                single-prompt mode) instead of the model's prompts.
        Returns:
            dict(maps=[B, len(layers), C, h, w], itm=[B, P]); ``maps`` are
            softmax-over-prompts times ITM (if ``itm_reweight``), grouped
            into classes, before upsampling and ensembling. Without
            grouping, C is replaced by P_bg + C - 1.
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
            layers = check_layers(layers, self.adapter.num_layers)
        prompts = self.ranking_prompts if single_prompt else self.prompts
        out = self.vlm(inputs, self.prompt_tokens(single_prompt), layers)
        h, w = out['grid']
        weight = out['itm'] if self.itm_reweight else torch.ones_like(out['itm'])
        maps = prompt_softmax_itm(out['attn'], weight)  # [B, L, P, h*w]
        maps = group_prompts(maps, prompts.class_index, self.num_classes,
                             self.has_background,
                             group_background)  # [B, L, C, h*w]
        B, L, C, _ = maps.shape
        return dict(maps=maps.view(B, L, C, h, w), itm=out['itm'])

    def pad_to_patches(self, inputs: Tensor) -> Tensor:
        """Zero-pad [B, 3, H, W] at the bottom/right to a multiple of the
        patch size, so the patch grid covers the image exactly."""
        H, W = inputs.shape[2:]
        p = self.adapter.patch_size
        pad_h, pad_w = (-H) % p, (-W) % p
        return F.pad(inputs, (0, pad_w, 0, pad_h)) if pad_h or pad_w else inputs

    def encode_decode(self, inputs: Tensor,
                      batch_img_metas: Optional[List[dict]] = None) -> Tensor:
        """Class probabilities [B, C, H, W] of the configured layers'
        ensemble at the input size (CRF-refined at test time, if set)."""
        H, W = inputs.shape[2:]
        padded = self.pad_to_patches(inputs)
        maps = self.layer_maps(padded)['maps']
        probs = ensemble_probs(maps, padded.shape[2:], self.align_corners)
        probs = probs[:, :, :H, :W]
        if self.crf is not None and not self.training:
            image = inputs if self.crf.image == 'normalized' \
                else self.image_colours(inputs)
            probs = self.crf(probs, image)
        return probs

    def image_colours(self, inputs: Tensor) -> Tensor:
        """Undo the data preprocessor's normalisation: colours in 0..255
        (what a CRF with ``image='rgb'`` compares), [B, 3, H, W]."""
        dp = self.data_preprocessor
        if getattr(dp, '_enable_normalize', False):
            return inputs * dp.std + dp.mean
        return inputs

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

    def postprocess_result(self, seg_logits: Tensor,
                           data_samples: Optional[SampleList] = None
                           ) -> SampleList:
        """mmseg's post-processing (padding removed, flip undone, back to
        ``ori_shape``, arg-max) after checking any ground truth against the
        class list. Originals whose full-size class map would exceed
        ``test_cfg.max_logits_numel`` get the arg-max in strips and
        ``seg_logits`` at the network's resolution.

        With ``test_cfg.pred_grid='input'`` predictions stay on the grid the
        network saw, padding included (the reference code's evaluation:
        labels go through the same resize and padding, the padding is
        ignored as 255)."""
        if data_samples is None:
            return super().postprocess_result(seg_logits, data_samples)
        return to_predictions(seg_logits, data_samples, self.test_cfg,
                              self.align_corners, warned=self._warned)

    def _forward(self, inputs: Tensor,
                 data_samples: Optional[SampleList] = None) -> Tensor:
        """Tensor mode: class probabilities at the input size."""
        return self.encode_decode(inputs)

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """One-shot tuning loss: NLL of the log of the class-normalised top-K
        ensemble map against the label (background weighted, 255 ignored)."""
        if not self.train_cfg:
            raise RuntimeError(
                'This VLMAttentionSegmentor is training-free (model.train_cfg '
                "is None). For one-shot fine-tuning set model.train_cfg=dict("
                "tune_embeddings='all'), as configs/powerone/*_oneshot_*.py do.")
        if not self._tuning_started:
            self.start_tuning()
        labels = torch.stack([s.gt_sem_seg.data[0] for s in data_samples])
        for sample, label in zip(data_samples, labels):
            check_labels(label, self.num_classes, sample.metainfo)
        probs = self.encode_decode(inputs)  # [B, C, H, W]
        if probs.shape[2:] != labels.shape[1:]:
            raise ValueError(f'Label size {tuple(labels.shape[1:])} differs '
                             f'from the image size {tuple(probs.shape[2:])}.')
        weight = probs.new_ones(self.num_classes)
        if self.has_background:
            weight[0] = self.train_cfg.background_weight
        log_probs = probs.clamp_min(LOSS_EPS).log()
        loss = F.nll_loss(log_probs, labels.long(), weight=weight,
                          ignore_index=IGNORE_INDEX)
        valid = labels != IGNORE_INDEX
        acc = (probs.argmax(1) == labels)[valid].float().mean() * 100
        return dict(loss_nll=loss, acc_seg=acc.detach())

    # ------------------------------------------------------------- state
    def get_extra_state(self) -> Tensor:
        """What a checkpoint needs to load safely (:meth:`checkpoint_info`),
        as JSON bytes in a uint8 tensor: mmengine broadcasts every state-dict
        entry as a tensor in distributed training."""
        return encode_info(self.checkpoint_info())

    def checkpoint_info(self) -> dict:
        """The VLM the weights belong to, the classes, the layers and which
        VLM parameters the checkpoint carries."""
        return dict(version=EXTRA_STATE_VERSION, vlm=self.adapter.signature(),
                    class_names=[list(c) for c in self.prompts.classes],
                    prompt_templates=list(self.prompt_templates),
                    layers=self.layers, tuned_params=list(self.tuned_params),
                    tune_embeddings=(self.train_cfg or {}).get(
                        'tune_embeddings'))

    def set_extra_state(self, state: Tensor) -> None:
        """Check a checkpoint's info against this model, then take its
        layers and tuned parameter names (:func:`apply_checkpoint_info`)."""
        apply_checkpoint_info(self, decode_info(state))

    def inference(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """Class probabilities [B, C, H, W] of a batch, whole or by slide
        windows (``test_cfg.mode``, checked when the model was built)."""
        if self.test_cfg.get('mode', 'whole') == 'slide':
            return self.slide_inference(inputs, batch_img_metas)
        return self.encode_decode(inputs, batch_img_metas)

    def slide_inference(self, inputs: Tensor,
                        batch_img_metas: List[dict]) -> Tensor:
        """Average overlapping crops' class probabilities, as mmseg's
        EncoderDecoder does (crops larger than the image shrink to it)."""
        return slide_inference(self.encode_decode, inputs, self.num_classes,
                               self.test_cfg)
