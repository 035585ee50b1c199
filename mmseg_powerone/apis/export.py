"""A checkpoint of a training-free segmentor for mmseg's own APIs and tools
(``init_model``, ``inference_model``, ``show_result_pyplot``,
``MMSegInferencer``, the stock ``tools/test.py``), which all expect one."""
from typing import Optional

import torch
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

from ..utils import atomic_write
from ..utils.resources import load_config


def export_checkpoint(config, out: str, cfg_options: Optional[dict] = None,
                      num_images: Optional[int] = None) -> dict:
    """Build the config's model and write ``out``: its own state (no VLM
    weights: they load from ``model.vlm.pretrained`` when the model is
    built) and meta mmseg reads: ``dataset_meta`` (the model's classes and
    palette, so nothing falls back to Cityscapes' classes) and, when the
    config chooses its layers by InfoScore, the chosen layers, ranked here
    on the config's unlabeled images as its ``InfoScoreHook`` would rank
    them (``num_images`` overrides the hook's count).

    Returns the checkpoint's meta.
    """
    import mmseg_powerone
    cfg = load_config(config) if isinstance(config, str) else config
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = MODELS.build(cfg.model).eval()
    infoscore = None
    if model.layers is None:
        infoscore = _rank_for_export(cfg, model, num_images)
    meta = dict(
        mmseg_powerone=mmseg_powerone.__version__,
        vlm=dict(cfg.model.vlm),
        class_names=[list(c) for c in model.prompts.classes],
        prompt_templates=model.prompt_templates,
        layers=model.layers,
        dataset_meta=model.class_meta())
    if infoscore is not None:
        meta['infoscore'] = infoscore
    with atomic_write(out) as f:
        torch.save(dict(meta=meta, state_dict=model.state_dict()), f)
    return meta


def _rank_for_export(cfg, model, num_images):
    """The layers the config's ``InfoScoreHook`` chooses, on the images it
    would rank on (its cache when it names a ``cache_dir``)."""
    from mmengine.runner import Runner

    from ..engine.hooks.infoscore_hook import config_infoscore_hook, hook_split
    hook = config_infoscore_hook(cfg, num_images=num_images)
    split = hook_split(hook)
    try:
        loader = Runner.build_dataloader(cfg[f'{split}_dataloader'])
    except Exception as e:  # noqa: BLE001  (any failure to find the images)
        raise ValueError(
            f'Choosing the layers by InfoScore needs the config\'s {split} '
            f'images, which could not be loaded ({e}). Point '
            f'{split}_dataloader.dataset at them, or fix the layers: '
            "--cfg-options 'model.layers=[0,3]'.") from e
    return hook.select_layers(model, loader)
