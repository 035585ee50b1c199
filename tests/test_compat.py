"""The compat module: mmcv.ops stand-in and safe checkpoint loading."""
import sys
import types

import pytest
import torch
import torch.nn as nn

from mmseg_powerone import compat


def test_mmseg_models_import_with_mmcv_lite():
    import mmseg.models  # noqa: F401  fails on mmcv-lite without the shim
    from mmseg.models.decode_heads import PSPHead
    assert PSPHead is not None


def test_point_sample_matches_bilinear_lookup():
    feat = torch.arange(16.).view(1, 1, 4, 4)
    # pixel centres of (row 1, col 2) and (row 3, col 0) in [0, 1] coordinates
    pts = torch.tensor([[[2.5 / 4, 1.5 / 4], [0.5 / 4, 3.5 / 4]]])
    out = compat.point_sample(feat, pts)
    assert out.shape == (1, 1, 2)
    torch.testing.assert_close(out[0, 0], torch.tensor([6., 12.]))


def test_placeholders_raise_a_clear_error_and_dunders_stay_missing():
    ops = sys.modules['mmcv.ops']
    if not getattr(ops, '_powerone_shim', False):
        pytest.skip('full mmcv is installed: nothing is shimmed')
    from mmcv.ops import CrissCrossAttention
    with pytest.raises(ImportError, match='full mmcv'):
        CrissCrossAttention(8)
    with pytest.raises(AttributeError):
        ops.__path__


def test_shim_is_a_no_op_when_real_ops_exist(monkeypatch):
    real = types.ModuleType('mmcv.ops')  # stands for full mmcv's ops
    monkeypatch.setitem(sys.modules, 'mmcv.ops', real)
    assert compat.install_mmcv_ops_shim() is False
    assert sys.modules['mmcv.ops'] is real


class _Toy(nn.Module):
    pass


def _toy_runner(work_dir, max_iters, resume):
    from mmengine.model import BaseModel
    from mmseg_powerone.engine import PowerOneRunner as Runner

    class ToyModel(BaseModel):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(2, 1)

        def forward(self, inputs, data_samples=None, mode='tensor'):
            out = self.linear(inputs)  # default_collate stacks: [B, 2]
            return dict(loss=(out ** 2).mean()) if mode == 'loss' else out

    class ToyData(torch.utils.data.Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            return dict(inputs=torch.tensor([float(i), 1.0]))

    torch.manual_seed(0)
    return Runner(
        model=ToyModel(), work_dir=work_dir,
        train_dataloader=dict(dataset=ToyData(), batch_size=2,
                              sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           by_epoch=False, interval=2)),
        resume=resume, default_scope='mmengine')


def test_mmengine_resume_works_with_weights_only_loading(tmp_path):
    import os
    # Safe loading stays on: nothing switched it off globally.
    assert os.environ.get('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD') in (None, '0')
    work = str(tmp_path)
    _toy_runner(work, 2, resume=False).train()
    ckpt = torch.load(os.path.join(work, 'iter_2.pth'), weights_only=True)
    assert 'message_hub' in ckpt
    runner = _toy_runner(work, 4, resume=True)
    runner.train()
    assert runner.iter == 4


def test_resume_survives_an_empty_or_dangling_last_checkpoint(tmp_path):
    """A run killed while mmengine rewrote ``last_checkpoint`` (in place)
    leaves it empty: PowerOneRunner's --resume takes the newest complete
    checkpoint."""
    import os
    from mmseg_powerone.engine.runner import find_latest_checkpoint as find
    work = str(tmp_path)
    _toy_runner(work, 4, resume=False).train()  # iter_2.pth, iter_4.pth
    pointer = os.path.join(work, 'last_checkpoint')
    assert find(work) == os.path.join(work, 'iter_4.pth')
    open(pointer, 'w').close()  # killed between truncation and write
    assert find(work) == os.path.join(work, 'iter_4.pth')
    runner = _toy_runner(work, 6, resume=True)
    runner.train()
    assert runner.iter == 6
    # a pointer to a checkpoint that is gone falls back too
    with open(pointer, 'w') as f:
        f.write(os.path.join(work, 'iter_8.pth'))
    assert find(work) == os.path.join(work, 'iter_6.pth')
    # an object-store pointer is not second-guessed; no pointer, no resume
    with open(pointer, 'w') as f:
        f.write('s3://bucket/iter_6.pth')
    assert find(work) == 's3://bucket/iter_6.pth'
    os.remove(pointer)
    assert find(work) is None
    # nothing to fall back to
    empty = tmp_path / 'empty'
    empty.mkdir()
    (empty / 'last_checkpoint').write_text('')
    assert find(str(empty)) is None


def test_malicious_pickle_is_refused(tmp_path):
    path = tmp_path / 'evil.pth'

    class Evil:
        def __reduce__(self):
            return (os.system, ('echo pwned',))

    import os
    torch.save({'state_dict': {}, 'x': Evil()}, path)
    from mmengine.runner.checkpoint import _load_checkpoint
    with pytest.raises(Exception, match='(?i)weights.only|unsupported global'):
        _load_checkpoint(str(path), map_location='cpu')


def test_checkpoint_getattr_is_restricted_to_history_buffer_statistics():
    import pickle
    from mmengine.logging import HistoryBuffer
    assert compat.history_buffer_getattr(HistoryBuffer, 'min') is HistoryBuffer.min
    with pytest.raises(pickle.UnpicklingError, match='Refusing'):
        compat.history_buffer_getattr(HistoryBuffer.min, '__globals__')
    with pytest.raises(pickle.UnpicklingError, match='Refusing'):
        compat.history_buffer_getattr(torch.Tensor, 'tolist')


def test_checkpoint_using_getattr_to_escape_is_refused(tmp_path):
    # getattr(HistoryBuffer.min, '__globals__') is how an attacker would
    # reach builtins through an allow-listed getattr.
    import pickle
    from mmengine.logging import HistoryBuffer

    class Escape:
        def __reduce__(self):
            return (getattr, (HistoryBuffer.min, '__globals__'))

    path = tmp_path / 'escape.pth'
    torch.save({'meta': Escape()}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)


def test_atomic_write_gives_the_usual_file_mode(tmp_path):
    import os
    import stat
    from mmseg_powerone.utils import atomic_write
    path = tmp_path / 'out.json'
    with atomic_write(str(path), 'w') as f:
        f.write('{}')
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask
    try:  # an error leaves neither the file nor a temporary behind
        with atomic_write(str(tmp_path / 'bad.json'), 'w') as f:
            f.write('{')
            raise RuntimeError('boom')
    except RuntimeError:
        pass
    assert sorted(os.listdir(tmp_path)) == ['out.json']


def test_vlm_weights_with_a_pickled_payload_are_refused(tmp_path):
    """A VLM directory whose pytorch_model.bin carries code: transformers
    loads it with weights_only=True, so the payload never runs."""
    from safetensors.torch import load_file
    from mmseg_powerone.models.adapters.blip import BLIPAdapter
    from mmseg_powerone.testing import save_random_blip
    import os
    model_dir = save_random_blip(str(tmp_path / 'blip'), seed=0,
                                 words=['sky', 'cat'])
    state = load_file(os.path.join(model_dir, 'model.safetensors'))
    os.remove(os.path.join(model_dir, 'model.safetensors'))
    marker = tmp_path / 'payload_ran'

    class Evil:
        def __reduce__(self):
            return (os.system, (f'touch {marker}',))

    torch.save(dict(state, evil=Evil()),
               os.path.join(model_dir, 'pytorch_model.bin'))
    with pytest.raises(Exception, match='(?i)weights.only load failed'):
        BLIPAdapter(pretrained=model_dir)
    assert not marker.exists()


def test_no_code_switches_safe_loading_off():
    import glob
    import os
    from helpers import REPO
    offenders = []
    for path in glob.glob(os.path.join(REPO, '**', '*.py'), recursive=True):
        if '.venv' in path or path.endswith('test_compat.py'):
            continue
        with open(path, encoding='utf-8') as f:
            text = f.read()
        if 'weights_only=False' in text or \
                'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD' in text:
            offenders.append(path)
    assert not offenders


def test_no_mmcv_lite_advice_on_import():
    """Our tools print no "you should install mmcv rather than mmcv-lite"
    (mmcv-lite is the pinned stack); other warnings still show."""
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, '-W', 'default', '-c',
                           'import mmseg_powerone, warnings; '
                           'warnings.warn("still shown")'],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert 'mmcv-lite' not in proc.stderr and 'still shown' in proc.stderr


def test_import_leaves_mmengine_untouched():
    """Importing the plugin registers things; it does not re-wire mmengine
    for the other users of the process (checked in a fresh interpreter)."""
    import subprocess
    code = (
        'import mmengine.runner, mmengine.runner.runner as rr\n'
        'from mmengine.fileio.backends import LocalBackend\n'
        'before = (LocalBackend.put, LocalBackend.put_text,'
        ' mmengine.runner.find_latest_checkpoint, rr.find_latest_checkpoint,'
        ' mmengine.runner.Runner.save_checkpoint)\n'
        'import mmseg_powerone\n'
        'after = (LocalBackend.put, LocalBackend.put_text,'
        ' mmengine.runner.find_latest_checkpoint, rr.find_latest_checkpoint,'
        ' mmengine.runner.Runner.save_checkpoint)\n'
        'assert before == after, (before, after)\n')
    subprocess.run([sys.executable, '-c', code], check=True)


def test_checkpoint_writes_are_atomic_under_the_powerone_runner(
        tmp_path, monkeypatch):
    """A save killed mid-write leaves the previous checkpoint whole and no
    partial file; plain mmengine runners keep mmengine's own writes."""
    import os
    from mmseg_powerone.engine.runner import (AtomicLocalBackend,
                                              is_complete_checkpoint)
    work = str(tmp_path)
    _toy_runner(work, 2, resume=False).train()
    target = os.path.join(work, 'iter_2.pth')
    size = os.path.getsize(target)

    saved = []
    real_put = AtomicLocalBackend.put

    def spy(self, obj, filepath):
        saved.append(str(filepath))
        return real_put(self, obj, filepath)

    monkeypatch.setattr(AtomicLocalBackend, 'put', spy)
    # The process dies after the bytes are written, before the rename.
    import mmseg_powerone.utils.io as io_module

    def killed(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(io_module.os, 'fsync', killed)
    runner = _toy_runner(work, 2, resume=False)
    with pytest.raises(KeyboardInterrupt):
        runner.train()
    assert saved == [target]
    assert os.path.getsize(target) == size and is_complete_checkpoint(target)
    assert not [n for n in os.listdir(work) if n.endswith('.tmp')]


def test_atomic_dir_replaces_whole_or_leaves_nothing(tmp_path):
    """The one folder writer behind the dataset, COCO conversion and
    pretraining outputs: all or nothing, and the usual folder mode."""
    import os
    import stat
    from mmseg_powerone.utils.io import atomic_dir
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'old.txt').write_text('old')
    with pytest.raises(RuntimeError):
        with atomic_dir(out) as tmp:
            open(os.path.join(tmp, 'new.txt'), 'w').close()
            raise RuntimeError('killed half-way')
    assert sorted(os.listdir(tmp_path)) == ['out']
    assert os.listdir(out) == ['old.txt']
    with atomic_dir(out) as tmp:
        open(os.path.join(tmp, 'new.txt'), 'w').close()
    assert os.listdir(out) == ['new.txt']
    assert sorted(os.listdir(tmp_path)) == ['out']
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o777 & ~umask
    blocker = tmp_path / 'file'
    blocker.write_text('x')
    with pytest.raises(PermissionError, match='Choose a writable --out'):
        with atomic_dir(blocker / 'sub', hint='Choose a writable --out.'):
            pass
