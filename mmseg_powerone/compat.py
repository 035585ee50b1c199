"""Make the known-good stack (mmcv-lite, torch>=2.6) work with mmseg and mmengine.

Applied once on ``import mmseg_powerone``; touches nothing on disk and is a
no-op where it is not needed:

* mmcv-lite ships ``mmcv/ops`` without its compiled ``mmcv._ext``, yet several
  mmseg modules import names from ``mmcv.ops`` at module level, so
  ``import mmseg.models`` fails. We install a stand-in ``mmcv.ops`` module that
  provides a pure-torch ``point_sample`` and hands out placeholders for every
  other name; a placeholder raises a clear error when it is used. With full
  mmcv installed the real ``mmcv.ops`` imports and nothing is replaced.
* torch>=2.6 loads checkpoints with ``weights_only=True``. mmengine 0.10.7
  pickles a few of its own (and numpy) types into checkpoint meta, so resume
  and ``load_from`` fail. We allow-list exactly those types instead of
  switching safe loading off for every checkpoint.

Nothing else of mmengine's or mmseg's behaviour is changed: crash-safe
checkpoints are a runner our configs select (``engine/runner.py``).
"""
import importlib
import pickle
import sys
import types
import warnings

import torch
import torch.nn.functional as F

_APPLIED = False


def point_sample(input, points, align_corners=False, **kwargs):
    """Pure-torch ``mmcv.ops.point_sample``: sample ``input`` [N, C, H, W] at
    normalised ``points`` [N, P, 2] in [0, 1]; returns [N, C, P]."""
    add_dim = points.dim() == 3
    if add_dim:
        points = points.unsqueeze(2)  # [N, P, 1, 2]
    out = F.grid_sample(
        input, 2.0 * points - 1.0, align_corners=align_corners, **kwargs)
    return out.squeeze(3) if add_dim else out


def _placeholder(name):
    message = (
        f"mmcv.ops.{name} needs the compiled ops of full mmcv, but mmcv-lite "
        "is installed. Install full mmcv (docs/en/get_started.md) to "
        "use this mmseg component; mmseg-powerone itself does not need it.")

    class _MissingOp:
        def __init__(self, *args, **kwargs):
            raise ImportError(message)

    _MissingOp.__name__ = _MissingOp.__qualname__ = name
    _MissingOp.__doc__ = message
    return _MissingOp


def _module_getattr(name):
    # Dunder look-ups (__path__, __spec__, ...) must fail normally or the
    # import machinery mistakes the stand-in for a package.
    if name.startswith('__') and name.endswith('__'):
        raise AttributeError(name)
    return _placeholder(name)


def install_mmcv_ops_shim():
    """Install the stand-in ``mmcv.ops`` when the real one cannot import.

    Returns True if the stand-in was installed, False if real ops exist.
    """
    existing = sys.modules.get('mmcv.ops')
    if existing is not None:
        return getattr(existing, '_powerone_shim', False)
    try:
        importlib.import_module('mmcv.ops')
        return False
    except ImportError:
        pass
    # A failed import can leave half-initialised submodules behind.
    for key in [k for k in sys.modules if k.startswith('mmcv.ops.')]:
        del sys.modules[key]
    shim = types.ModuleType('mmcv.ops')
    shim.__doc__ = 'mmseg-powerone stand-in for mmcv.ops (mmcv-lite).'
    shim._powerone_shim = True
    shim.point_sample = point_sample
    shim.__getattr__ = _module_getattr
    sys.modules['mmcv.ops'] = shim
    import mmcv
    mmcv.ops = shim
    return True


def history_buffer_getattr(obj, name):
    """Stand-in for ``getattr`` when unpickling checkpoints.

    mmengine pickles a ``HistoryBuffer``'s statistics methods as
    ``getattr(HistoryBuffer, 'min')``. Allow-listing the builtin ``getattr``
    would let a malicious checkpoint reach e.g. a function's ``__globals__``;
    this resolves exactly those statistics methods and refuses the rest.
    """
    from mmengine.logging import HistoryBuffer
    # The built-in statistics enter ``_statistics_methods`` only when a first
    # HistoryBuffer is created, which a fresh process (resume) has not done.
    allowed = {'mean', 'max', 'min', 'current'} | set(
        HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and name in allowed:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'Refusing getattr({obj!r}, {name!r}) while loading a checkpoint: '
        'only mmengine HistoryBuffer statistics are allowed.')


def allow_mmengine_checkpoint_types():
    """Allow-list the types mmengine 0.10.7 pickles into checkpoints, so
    ``torch.load(weights_only=True)`` can read them (resume, load_from)."""
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is None:  # torch < 2.4: nothing to do
        return []
    import numpy as np
    from mmengine.config import ConfigDict
    from mmengine.logging import HistoryBuffer

    safe = [HistoryBuffer, ConfigDict, np.ndarray, np.dtype,
            (history_buffer_getattr, 'builtins.getattr')]
    try:  # numpy 2.x moved the reconstruct helpers to numpy._core
        from numpy._core.multiarray import _reconstruct, scalar
        safe += [_reconstruct, scalar]
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar
        safe += [_reconstruct, scalar]
    # numpy dtype classes (e.g. numpy.dtypes.Float64DType) appear in pickles
    # of arrays and scalars.
    safe += [type(np.dtype(t)) for t in (
        np.float16, np.float32, np.float64, np.int8, np.int16, np.int32,
        np.int64, np.uint8, np.bool_)]
    add_safe_globals(safe)
    return safe


def apply():
    """Apply every compatibility fix once."""
    global _APPLIED
    if _APPLIED:
        return
    install_mmcv_ops_shim()
    allow_mmengine_checkpoint_types()
    # mmcv-lite is the pinned, intended mmcv: its advice to install full
    # mmcv for MultiScaleDeformableAttention (which no model here uses)
    # only contradicts our setup. That one message, from that one module.
    warnings.filterwarnings(
        'ignore', message='Fail to import ``MultiScaleDeformableAttention``',
        category=UserWarning, module='mmcv.cnn.bricks.transformer')
    # mmengine 0.10.7 imports pkg_resources (setuptools<81 is pinned for it);
    # its deprecation notice is not actionable for our users.
    warnings.filterwarnings('ignore', message='pkg_resources is deprecated',
                            category=UserWarning)
    _APPLIED = True
