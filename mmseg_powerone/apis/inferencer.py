"""Segment images with class names chosen at call time."""
import os
import os.path as osp
import warnings
from typing import Optional, Sequence, Union

import mmcv
from mmengine import fileio
from mmengine.infer.infer import ModelType
from mmseg.apis import MMSegInferencer

from ..class_names import parse_class_names, split_synonyms
from ..utils.labels import save_label_png
from ..utils.resources import load_config

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
DEFAULT_CONFIG = 'mmseg_powerone::powerone/powerone_blip-tiny_zeroshot_shapes.py'


class PowerOneInferencer(MMSegInferencer):
    """``MMSegInferencer`` for :class:`VLMAttentionSegmentor`: the classes
    are the model's own (never Cityscapes'), and each call may name new ones.

    .. code:: python

        inferencer = PowerOneInferencer()  # the embedded tiny BLIP
        out = inferencer('img.png', classes=['circle', 'star'])
        out['predictions']  # [H, W] class indices, 0 = background

    Args:
        model: config file or ``Config``; default: the embedded tiny BLIP
            training-free config.
        weights: a checkpoint (e.g. one-shot tuned); None is fine for the
            training-free model, whose weights come from ``vlm.pretrained``.
        layers: attention layers to use when the config says
            ``layers='infoscore'`` and no checkpoint stores them (InfoScore
            needs a dataset; ``tools/rank_layers.py`` prints its choice).
        device: 'cpu', 'cuda', ...; None picks CUDA when available.
    """

    def __init__(self,
                 model: Union[ModelType, str, None] = None,
                 weights: Optional[str] = None,
                 layers: Optional[Sequence[int]] = None,
                 device: Optional[str] = None,
                 scope: Optional[str] = 'mmseg') -> None:
        import mmseg_powerone  # noqa: F401  (registration)
        self._default_layers = layers
        self._embedded = model is None
        if model is None or isinstance(model, str):
            model = load_config(model or DEFAULT_CONFIG)
        super().__init__(model=model, weights=weights,
                         device=device, scope=scope)
        seg = self.model
        if seg.layers is None:
            raise ValueError(
                "The model's layers='infoscore' are not chosen yet: pass "
                'layers=[...] (e.g. the ones tools/rank_layers.py or a '
                "training-free test run's infoscore.json reports) or a "
                'checkpoint that stores them.')
        self.background = tuple(seg.prompts.classes[0]) \
            if seg.has_background else None

    # ---------------------------------------------------------- model meta
    def _load_weights_to_model(self, model, checkpoint, cfg) -> None:
        if checkpoint is not None:
            from mmengine.runner.checkpoint import _load_checkpoint_to_model
            _load_checkpoint_to_model(model, checkpoint)
            saved = checkpoint.get('meta', {}).get('infoscore')
            if saved and model.layers is None:
                model.set_layers(saved['selected'], saved)
        if model.layers is None and self._default_layers is not None:
            model.set_layers(self._default_layers)
        # the model's classes, never the Cityscapes default of mmseg's loader
        model.dataset_meta = model.class_meta()

    def set_classes(self, classes: Union[str, Sequence],
                    background: Optional[Union[str, Sequence[str]]] = None):
        """Segment ``classes`` (object classes; each a name, comma-separated
        synonyms or a list of synonyms) plus the background class (default:
        the model's; a model built with ``has_background=False`` has none).
        A string is read as a class-name file."""
        if isinstance(classes, str):
            if not osp.isfile(classes):
                raise ValueError(
                    f'classes={classes!r}: give a list of class names, or the '
                    'path of a class-name file.')
            spec = parse_class_names(classes)
        else:
            if not classes:
                raise ValueError('classes is empty: name at least one class '
                                 'to segment.')
            if not self.model.has_background:
                if background is not None:
                    raise ValueError(
                        'This model has no background class (has_background='
                        'False): leave out background=, or build the model '
                        'with has_background=True.')
                spec = list(classes)
            else:
                bg = self.background if background is None else background
                bg = [bg] if isinstance(bg, str) else list(bg)
                _check_call_classes(classes, bg, background is None)
                if background is None and self._embedded:
                    warnings.warn(
                        'The background is the embedded world\'s '
                        f'({", ".join(bg)}): if your images are not from that '
                        'world, give background=[...] (the demo\'s '
                        '--background), the names of what surrounds your '
                        'objects.')
                spec = [bg] + list(classes)
            # duplicates and empty names raise here, naming the culprit
            spec = parse_class_names(spec)
        self.model.set_class_names(spec)

    # ---------------------------------------------------------- inputs
    def _inputs_to_list(self, inputs) -> list:
        if isinstance(inputs, str) and osp.isdir(inputs):
            files = sorted(f for f in os.listdir(inputs)
                           if f.lower().endswith(IMAGE_EXTENSIONS))
            if not files:
                raise ValueError(f'{inputs!r} holds no image files '
                                 f'({", ".join(IMAGE_EXTENSIONS)}).')
            readable = []
            for f in files:
                path = osp.join(inputs, f)
                if _readable(path):
                    readable.append(path)
                else:
                    warnings.warn(f'Skipping {path}: not a readable image.')
            if not readable:
                raise ValueError(f'No image in {inputs!r} could be read.')
            return readable
        items = super()._inputs_to_list(inputs)
        for item in items:
            if isinstance(item, str) and not _readable(item):
                raise ValueError(f'{item!r} is not a readable image file.')
        return items

    def __call__(self, inputs, classes=None, background=None, **kwargs) -> dict:
        """Segment ``inputs`` (an image path, array, folder or a list of
        them); ``classes`` (and ``background``) switch the class set first.
        Other keyword arguments are ``MMSegInferencer``'s (``out_dir``,
        ``return_datasamples``, ``return_vis``, ...)."""
        if classes is not None or background is not None:
            self.set_classes(classes if classes is not None
                             else [c for c in self.model.prompts.classes[1:]],
                             background)
        return super().__call__(inputs, **kwargs)


    def postprocess(self, preds, visualization, return_datasample=False,
                    pred_out_dir=''):
        """``MMSegInferencer.postprocess``, except that the label PNGs under
        ``out_dir/pred`` are 16-bit when the model has more than 256
        classes (mmseg writes 8-bit, which wraps class 267 to 11)."""
        first = self.num_pred_imgs
        result = super().postprocess(preds, visualization, return_datasample,
                                     '')
        if pred_out_dir:
            for i, pred in enumerate(preds):
                save_label_png(
                    osp.join(pred_out_dir, f'{first + i:08d}_pred.png'),
                    pred.pred_sem_seg.data[0].cpu().numpy(),
                    self.model.num_classes)
        return result


def _check_call_classes(classes, background, default_background) -> None:
    """Errors that speak of the caller's own list: ``classes[i]`` counts
    the object classes the caller gave (the background is not one of them),
    and a name that is also a background name says which background."""
    bg = {n.strip().lower() for n in background}
    for i, item in enumerate(classes):
        if isinstance(item, str) and not item.strip():
            raise ValueError(
                f'classes[{i}] = {item!r} is blank (a stray or trailing '
                'comma?). Remove it.')
        # the class-name parser's own splitting (quoted names keep commas);
        # an empty synonym is refused there, named classes[i]
        names = split_synonyms(item, f'classes[{i}]') \
            if isinstance(item, str) else [str(n) for n in item]
        clash = [n.strip() for n in names if n.strip().lower() in bg]
        if clash:
            which = ("the model's default background" if default_background
                     else 'the background you gave')
            raise ValueError(
                f'classes[{i}] names {clash[0]!r}, which is one of the names '
                f'of class 0, {which} ({", ".join(background)}). Leave it out '
                'of classes, or name the background yourself with '
                "background=[...] (the demo's --background).")


def _readable(path: str) -> bool:
    try:
        img = mmcv.imfrombytes(fileio.get(path))
    except Exception:  # noqa: BLE001  (any decoder failure means unreadable)
        return False
    return img is not None and img.size > 0
