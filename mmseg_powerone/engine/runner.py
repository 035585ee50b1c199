"""Crash-safe checkpoints as registered components our configs enable.

mmengine writes a checkpoint with a plain ``open(path, 'wb')`` and rewrites
the ``last_checkpoint`` pointer in place, so a run killed at the wrong
moment leaves a truncated ``epoch_N.pth`` or an empty pointer, and
``--resume`` then fails. Instead of re-wiring mmengine for every user of the
process, two components fix it for the runs that ask for them (every
powerone config does, through ``_base_/default_runtime.py``):

* ``'local_atomic'``, a file backend registered with mmengine: local byte
  and text writes go to a temporary file beside the target and are renamed
  over it when complete. :class:`PowerOneRunner` gives it to every local
  checkpoint save.
* :class:`PowerOneRunner` (``runner_type='PowerOneRunner'``): mmengine's
  Runner whose auto-resume survives a damaged pointer: an empty
  ``last_checkpoint``, or one naming a local file that is gone or cut
  short, falls back to the newest complete checkpoint, and says so.
"""
import os
import re
import zipfile

from mmengine.fileio import register_backend
from mmengine.fileio.backends import LocalBackend
from mmengine.logging import print_log
from mmengine.runner import Runner
from mmseg.registry import RUNNERS

from ..utils.io import atomic_write, read_last_checkpoint

_CHECKPOINT_NAME = re.compile(r'^(epoch|iter)_(\d+)\.pth$')


@register_backend('local_atomic')
class AtomicLocalBackend(LocalBackend):
    """mmengine's local backend whose writes are all-or-nothing."""

    def put(self, obj: bytes, filepath) -> None:
        with atomic_write(filepath, 'wb') as f:
            f.write(obj)

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        with atomic_write(filepath, 'w') as f:
            f.write(obj)


def is_complete_checkpoint(path) -> bool:
    """Whether a local checkpoint file is whole: torch's zip format ends
    with a central directory that a file cut short lacks (our writes are
    atomic, but a copy, a full disk or another tool can still cut one).
    Files in torch's older pickle format cannot be checked this cheaply and
    count as whole unless empty."""
    try:
        with open(path, 'rb') as f:
            magic = f.read(2)
    except OSError:
        return False
    if magic == b'PK':
        return zipfile.is_zipfile(path)
    return len(magic) > 0


def newest_checkpoint(work_dir):
    """The newest complete ``epoch_N.pth`` / ``iter_N.pth`` in
    ``work_dir``, or None."""
    found = []
    for name in os.listdir(work_dir) if os.path.isdir(work_dir) else []:
        match = _CHECKPOINT_NAME.match(name)
        if match:
            path = os.path.join(work_dir, name)
            if is_complete_checkpoint(path):
                found.append(
                    (os.path.getmtime(path), int(match.group(2)), path))
    return max(found)[2] if found else None


def find_latest_checkpoint(path):
    """mmengine's ``find_latest_checkpoint`` that survives a run killed while
    it rewrote ``last_checkpoint``: an empty pointer, or one naming a local
    file that is gone or cut short, falls back to the newest complete
    checkpoint, and says so. Object-store pointers are taken as they are."""
    pointer = os.path.join(path, 'last_checkpoint')
    last_saved = read_last_checkpoint(path)
    if last_saved is None:
        print_log('Did not find last_checkpoint to be resumed.')
        return None
    if last_saved and ('://' in last_saved or (
            os.path.exists(last_saved) and is_complete_checkpoint(last_saved))):
        return last_saved
    fallback = newest_checkpoint(path)
    if not last_saved:
        problem = 'is empty (the run was probably killed while writing it)'
    elif os.path.exists(last_saved):
        problem = f'names {last_saved}, which is damaged (cut short)'
    else:
        problem = f'names {last_saved}, which does not exist'
    print_log(f'{pointer} {problem}; resuming from the newest complete '
              f'checkpoint in {path} instead: {fallback}.',
              logger='current', level=30)
    return fallback


@RUNNERS.register_module()
class PowerOneRunner(Runner):
    """mmengine's Runner with all-or-nothing local checkpoint writes and an
    auto-resume that survives a damaged ``last_checkpoint`` pointer.

    Enabled per config with ``runner_type = 'PowerOneRunner'`` (our
    ``_base_/default_runtime.py`` sets it); mmseg's ``tools/train.py`` and
    ``tools/test.py`` build it through ``RUNNERS`` as they do any runner.
    """

    def save_checkpoint(self, out_dir, filename, *args, backend_args=None,
                        **kwargs):
        # Local targets only: an object store keeps its own semantics.
        if backend_args is None and '://' not in str(out_dir):
            backend_args = dict(backend='local_atomic')
        return super().save_checkpoint(out_dir, filename, *args,
                                       backend_args=backend_args, **kwargs)

    def load_or_resume(self) -> None:
        if self._has_loaded or not (self._resume and self._load_from is None):
            return super().load_or_resume()
        resume_from = find_latest_checkpoint(self.work_dir)
        self.logger.info(
            f'Auto resumed from the latest checkpoint {resume_from}.')
        if resume_from is not None:
            self.resume(resume_from)
            self._has_loaded = True


def build_runner(cfg):
    """The runner a config asks for (``runner_type``), as mmseg's tools
    build it; mmengine's Runner when the config names none."""
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    return RUNNERS.build(cfg)
