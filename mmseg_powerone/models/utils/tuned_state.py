"""What a tuned checkpoint holds and how it loads: the info entry (VLM,
classes, layers, tuned parameter names) as a state-dict tensor, the checks
that refuse a checkpoint of another model, and the state-dict hooks that
leave the frozen pretrained VLM weights out of checkpoints."""
import json

import torch
from torch import Tensor

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


def checkpoint_layers(checkpoint):
    """(layers, InfoScore record) a checkpoint stores, from a loaded dict or
    a file path. The layers come from the model's own state entry (the
    source: it is what loading the checkpoint sets), else, for checkpoints
    without one, from ``meta['infoscore']``; the record (how InfoScore chose
    them) is a report from the meta, None when absent."""
    if isinstance(checkpoint, str):
        checkpoint = torch.load(checkpoint, map_location='cpu',
                                weights_only=True)
    state = checkpoint.get('state_dict', checkpoint)
    infoscore = (checkpoint.get('meta') or {}).get('infoscore')
    layers = None
    if '_extra_state' in state:
        layers = decode_info(state['_extra_state']).get('layers')
    if layers is None and infoscore:
        layers = infoscore.get('selected')
    return (None if layers is None else list(layers)), infoscore


def restore_layers(model, checkpoint: dict):
    """Loading ``checkpoint`` into ``model`` (before or after its state):
    give a model whose InfoScore layers are still unchosen the
    checkpoint's, and keep the checkpoint's InfoScore record when it is of
    those layers. The one reader of a checkpoint's layers for
    ``InfoScoreHook`` and the inferencer (the state's own entry is applied
    by the model, :func:`apply_checkpoint_info`). Returns the model's
    layers (None: still unchosen)."""
    if getattr(model, 'layer_selection', None) != 'infoscore':
        return model.layers
    layers, infoscore = checkpoint_layers(checkpoint)
    if model.layers is None and layers is not None:
        model.set_layers(layers)
    if infoscore and model.layers == list(infoscore.get('selected', [])):
        model.infoscore = infoscore
    return model.layers


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
