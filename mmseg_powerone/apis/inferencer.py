"""Segment images with class names chosen at call time."""
import copy
import os
import os.path as osp
import tempfile
import warnings
from typing import Optional, Sequence, Union

import mmcv
import torch
from mmengine import fileio
from mmengine.config import Config
from mmengine.infer.infer import ModelType
from mmseg.apis import MMSegInferencer

from ..class_names import parse_class_names, split_synonyms
from ..datasets.example_list import IMAGE_EXTENSIONS
from ..models.utils.tuned_state import restore_layers
from ..utils.labels import save_label_png
from ..utils.resources import load_config

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
        self._adaptation = None  # (checkpoint, config) once adapt() tuned it
        if model is None or isinstance(model, str):
            model = load_config(model or DEFAULT_CONFIG)
        elif isinstance(model, dict):
            model = Config(copy.deepcopy(model))
        # mmseg's inferencer edits its config's test pipeline in place (no
        # labels, its own loader); adapt() derives a training run from this
        # untouched copy.
        self._source_cfg = copy.deepcopy(model)
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
            restore_layers(model, checkpoint)
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

    # ---------------------------------------------------------- one shot
    def adapt(self, examples, classes: Sequence,
              background: Optional[Union[str, Sequence[str]]] = None, *,
              layers: Union[Sequence[int], str, None] = None, seed: int = 0,
              epochs: Optional[int] = None, lr: Optional[float] = None,
              weight_decay: Optional[float] = None,
              accumulate: Optional[int] = None, batch_size: int = 1,
              tune_embeddings: str = 'all', background_weight: float = 0.5,
              work_dir: Optional[str] = None,
              verbose: bool = False) -> 'PowerOneInferencer':
        """Tune the model on a few labelled examples of ``classes`` (the
        paper's one-shot setting: one image per class is enough) and return
        an inferencer that segments with the tuned weights::

            tuned = PowerOneInferencer(layers=[0, 2]).adapt(
                [('cat.jpg', 'cat.png')], classes=['cat'])
            tuned('other.jpg', classes=['cat'])['predictions']
            tuned.save('work_dirs/cat.pth')  # and work_dirs/cat.py

        Args:
            examples: ``(image, mask)`` pairs, the mask a class-index map
                (0 background, ``i`` = ``classes[i - 1]``, 255 ignored), or
                ``(image, mask, class name)`` with a binary mask of that
                class. Paths or arrays (images BGR uint8, as mmcv reads
                them).
            classes: the object classes (each a name or synonyms), as for a
                call; ``background`` as for :meth:`set_classes`.
            layers: the layers to tune; default: the inferencer's layers
                when they are fixed (given here or by the config), else
                InfoScore on the examples' images; ``'infoscore'`` forces
                that.
            seed: the training seed (sampling order).
            epochs, lr, weight_decay, accumulate: the schedule; default the
                paper's (AdamW lr 2e-4, weight decay 0.05, 2 images per
                step, 5 passes), as ``configs/_base_/schedules/
                oneshot_5passes.py``.
            batch_size, tune_embeddings, background_weight: as in a
                one-shot config.
            work_dir: keep the run's logs and checkpoint there (default: a
                temporary folder, removed).
            verbose: print everything mmengine's Runner logs (its config,
                environment, hook order, the libraries' warnings); by
                default the terminal shows the progress (iterations with
                ETA and loss, InfoScore) and this package's warnings, and
                the rest goes to the run's log file in ``work_dir``.

        It runs what ``tools/train.py`` runs with a one-shot config (the
        same runner, loss, trainable parameters and hooks): with the same
        supports, seed, schedule and thread count both end with the same
        weights. Bad examples raise before anything is written.
        """
        from ..engine.runner import build_runner
        from ..models.utils.tuned_state import checkpoint_layers
        from ..utils.io import last_checkpoint
        from ..utils.quiet import quiet_run
        from .adapt import (adaptation_config, read_examples,
                            tuned_test_config, write_examples)
        read = read_examples(examples, classes)
        self.set_classes(classes, background)
        spec = [list(c) for c in self.model.prompts.classes]
        if isinstance(layers, str):
            if layers != 'infoscore':
                raise ValueError(f"layers={layers!r}: give layer indices, "
                                 "'infoscore' or None.")
            layers = None
        elif layers is None and (self._default_layers is not None or
                                 self.model.layer_selection == 'fixed'):
            layers = list(self.model.layers)
        with tempfile.TemporaryDirectory(prefix='powerone_adapt_') as tmp, \
                quiet_run(verbose):
            folder = osp.join(tmp, 'examples')
            os.makedirs(folder)
            ann_file = write_examples(read, folder)
            work = work_dir or osp.join(tmp, 'work')
            cfg = adaptation_config(
                self._source_cfg, spec, layers, ann_file, osp.abspath(work),
                len(read), seed, epochs, lr, weight_decay, accumulate,
                batch_size, tune_embeddings, background_weight)
            build_runner(cfg).train()
            checkpoint = torch.load(last_checkpoint(work), map_location='cpu',
                                    weights_only=True)
            tuned_layers, _ = checkpoint_layers(checkpoint)
            test_cfg = tuned_test_config(cfg, tuned_layers)
            device = next(self.model.parameters()).device
            tuned = PowerOneInferencer(test_cfg, device=str(device))
            tuned._load_weights_to_model(tuned.model, checkpoint, test_cfg)
        tuned._adaptation = (checkpoint, test_cfg)
        return tuned

    def save(self, path: str, test_data: Optional[str] = None) -> str:
        """Write an adapted model: the tuned-only checkpoint at ``path``
        (the format of ``tools/train.py``'s checkpoints) and its config
        beside it (``<path without extension>.py``), for ``tools/test.py
        CONFIG CHECKPOINT`` and ``PowerOneInferencer(config, checkpoint)``.

        The config tests on your own labelled images
        (``ImageMaskFolderDataset``): ``test_data`` is their folder
        (``images/NAME.jpg`` with ``masks/NAME.png``, index maps over the
        adapted classes); without it, give the folder when testing
        (``--cfg-options test_dataloader.dataset.data_root=FOLDER``).
        Returns the config's path."""
        if self._adaptation is None:
            raise ValueError(
                'save() writes an adapted model; this inferencer was not made '
                'by adapt(). Call tuned = inferencer.adapt(...) and then '
                'tuned.save(path).')
        from .adapt import save_adaptation, with_test_folder
        checkpoint, cfg = self._adaptation
        return save_adaptation(checkpoint, with_test_folder(cfg, test_data),
                               path)

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
