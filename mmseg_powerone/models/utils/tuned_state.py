"""What a tuned checkpoint holds and how it loads: the info entry (VLM,
classes, layers, tuned parameter names) as a state-dict tensor, the checks
that refuse a checkpoint of another model, and the state-dict hooks that
leave the frozen pretrained VLM weights out of checkpoints."""
import json

import torch
from torch import Tensor

TUNE_EMBEDDINGS = ('all', 'class_tokens')
EXTRA_STATE_VERSION = 1


def encode_info(info: dict) -> Tensor:
    """A JSON-able dict as a uint8 tensor (a state-dict entry)."""
    return torch.tensor(list(json.dumps(info).encode()), dtype=torch.uint8)


def decode_info(entry) -> dict:
    """Inverse of :func:`encode_info`: e.g. ``decode_info(
    checkpoint['state_dict']['_extra_state'])`` tells the layers a tuned
    checkpoint uses."""
    if isinstance(entry, Tensor):
        return json.loads(bytes(entry.tolist()).decode())
    return dict(entry)


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


def apply_checkpoint_info(self, state: dict) -> None:
    """Refuse a checkpoint made for another VLM, other classes, missing
    parameters or other fixed layers, each with the fix; otherwise give
    ``self`` (the segmentor) its layers and tuned parameter names."""
    mine = self.checkpoint_info()
    if state.get('vlm') != mine['vlm']:
        diff = {k: (state.get('vlm', {}).get(k), v)
                for k, v in mine['vlm'].items()
                if state.get('vlm', {}).get(k) != v}
        raise ValueError(
            'Checkpoint was made with a different VLM than this model: '
            + ', '.join(f'{k}: checkpoint {a!r} vs model {b!r}'
                        for k, (a, b) in diff.items())
            + '. Load it with the model.vlm it was trained with.')
    tuned = list(state.get('tuned_params') or [])
    if not tuned:  # training-free: only the InfoScore layers carry over
        if self.layer_selection == 'infoscore' and self.layers is None \
                and state.get('layers'):
            self.set_layers(state['layers'])
        return
    if state.get('class_names') != mine['class_names']:
        raise ValueError(
            f'Checkpoint was tuned for the classes {state.get("class_names")}'
            f' but this model has {mine["class_names"]}. Use the class_names'
            ' it was tuned with (or the training-free model for new names).')
    own = dict(self.adapter.named_parameters())
    absent = [n for n in tuned if n not in own]
    if absent:
        raise ValueError(
            f'Checkpoint tunes parameters {absent} that this model does not '
            f'have: it was tuned with tune_embeddings='
            f'{state.get("tune_embeddings")!r}; build the model with that '
            'model.train_cfg.')
    if self.layer_selection == 'fixed' and self.layers != state['layers']:
        raise ValueError(
            f'Checkpoint was tuned on layers {state["layers"]} but '
            f'model.layers={self.layers}. Set model.layers to '
            f"{state['layers']} or to 'infoscore'.")
    self.set_layers(state['layers'])
    self.tuned_params = tuned


def frozen_vlm_keys(module, prefix=''):
    """State-dict keys of the VLM's pretrained weights that were not tuned:
    checkpoints leave them out, they are rebuilt from ``vlm.pretrained``."""
    tuned = set(module.tuned_params)
    return {f'{prefix}vlm.{k}' for k in module.adapter.state_dict().keys()
            if k not in tuned}


def drop_pretrained_vlm_state(module, state_dict, prefix, local_metadata):
    # In distributed training ``vlm`` sits in DDP and torch names its keys
    # ``vlm.module.*``; checkpoints use the unwrapped names, which is what
    # mmengine's loader matches, wrapped or not.
    wrapped = f'{prefix}vlm.module.'
    for key in [k for k in state_dict if k.startswith(wrapped)]:
        state_dict[f'{prefix}vlm.' + key[len(wrapped):]] = state_dict.pop(key)
    for key in frozen_vlm_keys(module, prefix):
        state_dict.pop(key, None)


def check_loaded_keys(module, incompatible_keys):
    """Frozen VLM weights are not missing (they come from ``pretrained``);
    any other missing or unexpected key means the checkpoint belongs to
    another model or is damaged, and is refused rather than half-loaded
    (mmengine only warns)."""
    # Keys are relative to the segmentor (mmengine strips wrapper prefixes).
    frozen = frozen_vlm_keys(module)
    missing = incompatible_keys.missing_keys
    missing[:] = [k for k in missing if k not in frozen]
    unexpected = incompatible_keys.unexpected_keys
    if missing or unexpected:
        parts = [f'{name} keys {keys[:8]}' + (f' and {len(keys) - 8} more'
                                              if len(keys) > 8 else '')
                 for name, keys in (('missing', missing),
                                    ('unexpected', unexpected)) if keys]
        raise ValueError(
            'Checkpoint does not match this VLMAttentionSegmentor: '
            + '; '.join(parts) + '. It was saved from a different model '
            'or is incomplete; load a checkpoint written by this model '
            '(tools/train.py) with the same model config.')
