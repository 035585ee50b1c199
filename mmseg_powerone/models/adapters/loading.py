"""Loading pretrained VLMs with errors that say how to fix a bad path."""
import os

import torch


def _looks_like_local_path(path: str) -> bool:
    return (os.path.isabs(path) or path.startswith(('.', '~'))
            or os.path.exists(path) or path.count('/') != 1)


def load_hf_pretrained(loader, path: str, what: str, example: str,
                       local_files_only=None, **kwargs):
    """``loader.from_pretrained(path)`` with errors that say how to fix a bad
    path or an offline machine; ``example`` is a hub id for the message.
    ``local_files_only=None`` leaves the Hugging Face default (honours
    HF_HUB_OFFLINE)."""
    if local_files_only is not None:
        kwargs['local_files_only'] = local_files_only
    path = os.path.expanduser(os.fspath(path))
    if _looks_like_local_path(path) and not os.path.isdir(path):
        raise FileNotFoundError(
            f'{what}: pretrained directory {path!r} does not exist. Set '
            '`pretrained` to a local directory saved with save_pretrained '
            '(e.g. a downloaded Hugging Face model) or to a hub id such as '
            f'{example!r}.')
    try:
        return loader.from_pretrained(path, **kwargs)
    except OSError as e:
        raise OSError(
            f'{what}: could not load {path!r} ({e}). Without network access, '
            'download the model elsewhere and point `pretrained` at its '
            'directory, or put it in the Hugging Face cache and set '
            'HF_HUB_OFFLINE=1.') from e


def load_torch_checkpoint(path: str, what: str) -> dict:
    """A ``.pth`` file read with ``weights_only=True`` (no code runs from
    it), returning its state dict (``ckpt['model']`` when wrapped so)."""
    path = os.path.expanduser(os.fspath(path))
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f'{what}: checkpoint file {path!r} does not exist. Set '
            '`checkpoint` to the downloaded .pth file.')
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # pickle errors come in many types
        raise ValueError(
            f'{what}: cannot read {path!r} as a weights-only torch checkpoint '
            f'({type(e).__name__}: {e}). It is damaged, or holds objects '
            'other than tensors and plain containers; re-save its state dict '
            'with torch.save.') from e
    state = ckpt.get('model', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not all(
            isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(
            f'{what}: {path!r} holds no state dict (expected a dict of '
            "tensors, or {'model': state_dict, ...}).")
    return state
