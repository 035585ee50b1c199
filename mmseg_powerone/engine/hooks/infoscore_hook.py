"""InfoScoreHook: choose the model's attention layers by InfoScore before a
test or a training run, without labels. The one home of layer selection:
runs through mmengine reach it by its runner events; ``export_checkpoint``
and ``tools/rank_layers.py`` build the config's hook
(:func:`config_infoscore_hook`) and call :meth:`InfoScoreHook.rank` or
:meth:`InfoScoreHook.select_layers`."""
import hashlib
import json
import os.path as osp
import warnings
from typing import Optional

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from ...infoscore.analysis import rank_layers
from ...infoscore.report import format_table, plot
from ...models.utils.settings import check_topk
from ...models.utils.tuned_state import restore_layers
from ...utils import (atomic_write, fingerprint_files, read_json_cache,
                      unwrap_model)
from ...utils.io import hash_state_dict


@HOOKS.register_module()
class InfoScoreHook(Hook):
    """Rank the VLM's attention layers by InfoScore and keep the top k.

    Acts only on a model configured with ``layers='infoscore'`` whose layers
    are not chosen yet (a checkpoint that stores them wins). Streams the
    first ``num_images`` images of the runner's test (or train) dataloader
    through the model, labels unused; sets the model's layers; logs the
    ranking; writes ``work_dir/infoscore.json`` and ``work_dir/infoscore.png``.
    The chosen layers and scores go into checkpoint meta.

    Args:
        num_images: unlabeled images to rank on.
        topk: layers to keep; None uses the model's ``topk``.
        cache: reuse an earlier result with the same model weights, class
            names, templates, dataset images, pipeline and input
            preprocessing, and ``num_images``.
        cache_dir: where cached results live; defaults to
            ``work_dir/infoscore_cache``.
        dataloader: rank on this loop's images ('train', 'val' or 'test')
            instead of the running loop's; one-shot configs use 'test' so
            InfoScore sees the unlabeled evaluation images, not the few
            supports, and picks the layers the training-free model uses.
    """

    priority = 'VERY_HIGH'

    def __init__(self, num_images: int = 100, topk: Optional[int] = None,
                 cache: bool = True, cache_dir: Optional[str] = None,
                 dataloader: Optional[str] = None):
        if isinstance(num_images, bool) or not isinstance(num_images, int) \
                or num_images < 1:
            raise ValueError(f'InfoScoreHook: num_images={num_images!r}; it '
                             'must be a positive integer (default 100).')
        if topk is not None:
            check_topk(topk, what='InfoScoreHook: topk')
        if dataloader not in (None, 'train', 'val', 'test'):
            raise ValueError(f'InfoScoreHook: dataloader={dataloader!r}; use '
                             "None, 'train', 'val' or 'test'.")
        self.dataloader = dataloader
        self.num_images = num_images
        self.topk = topk
        self.cache = cache
        self.cache_dir = cache_dir

    # -------------------------------------------------------- runner events
    def before_train(self, runner) -> None:
        self._select(runner, runner.train_dataloader)

    def before_test(self, runner) -> None:
        self._select(runner, runner.test_dataloader)

    def before_val(self, runner) -> None:
        self._select(runner, runner.val_dataloader)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        model = unwrap_model(runner.model)
        if getattr(model, 'infoscore', None) is not None:
            checkpoint.setdefault('meta', {})['infoscore'] = model.infoscore

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        model = unwrap_model(runner.model)
        had = getattr(model, 'layers', None)
        layers = restore_layers(model, checkpoint)
        if had is None and layers is not None:
            runner.logger.info(
                f'InfoScore layers from the checkpoint: {layers}')

    # -------------------------------------------------------- work
    def _select(self, runner, dataloader) -> None:
        model = unwrap_model(runner.model)
        if getattr(model, 'layer_selection', None) != 'infoscore' \
                or model.layers is not None:
            return  # before a dataloader is built for nothing
        if self.dataloader is not None:
            dataloader = getattr(runner, f'{self.dataloader}_dataloader')
        self.select_layers(model, dataloader, runner.work_dir, runner.logger)

    def select_layers(self, model, dataloader, work_dir: Optional[str] = None,
                      logger=None) -> Optional[dict]:
        """Give ``model`` its top-k InfoScore layers, ranked on
        ``dataloader``'s images, when it asks for them (``layers=
        'infoscore'``) and has none yet; returns the ranking, or None when
        the model's layers are fixed or already chosen."""
        if getattr(model, 'layer_selection', None) != 'infoscore' \
                or model.layers is not None:
            return None
        result = self.rank(model, dataloader, work_dir, logger)
        model.set_layers(result['selected'], result)
        return result

    def rank(self, model, dataloader, work_dir: Optional[str] = None,
             logger=None) -> dict:
        """InfoScore of every attention layer of ``model`` on the first
        ``num_images`` images of ``dataloader`` and the top k (the
        hook's ``topk``, else the model's), reused from the cache when
        nothing it depends on changed. With ``work_dir``, the cache lives
        there (unless ``cache_dir`` is set) and the ranking is written to
        ``work_dir/infoscore.{json,png}``; without either, nothing is
        cached or written."""
        log = logger.info if logger is not None else (lambda msg: None)
        n_layers = model.adapter.num_layers
        topk = check_topk(self.topk or model.topk, n_layers,
                          'InfoScoreHook: topk')
        cache_dir = self.cache_dir or (
            osp.join(work_dir, 'infoscore_cache') if work_dir else None)
        cache_file = None
        result = None
        if self.cache and cache_dir:
            key = self._cache_key(model, dataloader, topk)
            cache_file = osp.join(cache_dir, f'infoscore-{key[:20]}.json')
            result = read_json_cache(cache_file, 'InfoScoreHook')
        if result is not None and not _is_ranking(result, n_layers):
            warnings.warn(f'InfoScoreHook: the cache file {cache_file} does '
                          'not hold a layer ranking; computing it again and '
                          'replacing it.')
            result = None
        if result is not None:
            log(f'InfoScore: reusing the ranking of {result["num_images"]} '
                f'images (layers {result["selected"]}) cached in '
                f'{cache_file}: same weights, classes, preprocessing and '
                'image files (by content). cache=False in InfoScoreHook '
                'ranks again.')
        else:
            result = rank_layers(model, dataloader, self.num_images, topk)
            if cache_file and is_main_process():
                _write_json(cache_file, result)
        log('InfoScore ranking:\n' + format_table(result))
        if work_dir and is_main_process():
            _write_json(osp.join(work_dir, 'infoscore.json'), result)
            plot(result, osp.join(work_dir, 'infoscore.png'))
        return result

    def _cache_key(self, model, dataloader, topk) -> str:
        h = hashlib.sha256()
        hash_state_dict(h, model.adapter.state_dict())
        dataset = dataloader.dataset
        n = min(self.num_images, len(dataset))
        paths = [dataset.get_data_info(i).get('img_path', str(i))
                 for i in range(n)] if hasattr(dataset, 'get_data_info') \
            else [str(len(dataset))]
        # what the images hold, not only their names: regenerated images
        # under the same names must not reuse an old ranking
        content = fingerprint_files(paths)
        # transforms print their parameters (a resize changes the maps); a
        # repr with a memory address would never hit, so it is left out
        pipeline = repr(getattr(dataset, 'pipeline', ''))
        if ' at 0x' in pipeline:
            pipeline = type(getattr(dataset, 'pipeline', None)).__name__
        # the model's own input normalisation and resizing shape the maps too
        prep = getattr(model, 'data_preprocessor', None)
        preprocessing = {} if prep is None else {
            k: repr(getattr(prep, k)) for k in (
                'size', 'size_divisor', 'pad_val', 'channel_conversion',
                '_enable_normalize') if hasattr(prep, k)}
        if prep is not None:
            preprocessing.update({n: b.flatten().tolist()
                                  for n, b in prep.named_buffers()})
        h.update(json.dumps(dict(
            classes=[list(c) for c in model.prompts.classes],
            texts=list(model.ranking_prompts.texts),
            itm_reduce=model.itm_reduce,
            itm_reweight=model.itm_reweight, align=model.align_corners,
            dataset=type(dataset).__name__, images=paths, content=content,
            num_images=n,
            pipeline=pipeline, preprocessing=preprocessing,
            topk=topk, marginal='background prompts separate')).encode())
        return h.hexdigest()


def _is_ranking(result, num_layers: int) -> bool:
    """A cached result that a ranking of this model's layers would be."""
    try:
        return (len(result['infoscore']) == num_layers
                and all(0 <= l < num_layers for l in result['selected'])
                and int(result['num_images']) >= 1)
    except (KeyError, TypeError, ValueError):
        return False


def _write_json(path: str, obj) -> None:
    with atomic_write(path, 'w') as f:
        json.dump(obj, f, indent=2)


def config_infoscore_hook(cfg, **overrides) -> InfoScoreHook:
    """The ``InfoScoreHook`` a config's ``custom_hooks`` hold, built, with
    ``overrides`` (None values ignored) of its arguments: what callers
    outside a Runner rank layers with, so they rank as the config's runs
    do. ValueError, with the fix, when the config has none."""
    hooks = [h for h in cfg.get('custom_hooks') or []
             if h.get('type') in ('InfoScoreHook', InfoScoreHook)]
    if not hooks:
        raise ValueError(
            "The config chooses its layers by InfoScore (model.layers="
            "'infoscore') but has no InfoScoreHook to say on which images. "
            "Add custom_hooks=[dict(type='InfoScoreHook')], or fix the "
            "layers: --cfg-options 'model.layers=[0,3]'.")
    args = {k: v for k, v in hooks[0].items() if k not in ('type', 'priority')}
    args.update({k: v for k, v in overrides.items() if v is not None})
    return InfoScoreHook(**args)


def hook_split(hook: InfoScoreHook, default: str = 'test') -> str:
    """The split whose images ``hook`` ranks on outside a Runner: its
    ``dataloader``, else ``default`` (a test run's)."""
    return hook.dataloader or default
