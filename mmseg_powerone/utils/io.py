"""Writing files so that a crash never leaves a half-written one behind."""
import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import warnings
from typing import Optional


@contextlib.contextmanager
def atomic_write(path: str, mode: str = 'wb'):
    """Open a temporary file beside ``path``; rename it over ``path`` only
    when the block finishes without an error."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.',
                               suffix='.tmp', dir=directory)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600); give it the usual mode
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(path: str, hint: str = 'Choose a writable location.'):
    """Yield a temporary folder beside ``path``; when the block finishes
    without an error it replaces ``path`` (whatever was there goes), with
    the usual folder mode; otherwise it is removed. A crash never leaves a
    half-written ``path``. Refuses, with the reason and ``hint``, a parent
    folder that cannot be written."""
    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    try:
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix='.' + os.path.basename(path) + '.',
                               dir=parent)
    except OSError as e:
        raise PermissionError(
            f'Cannot write {path!r}: {parent!r} is not writable '
            f'({e.strerror}). {hint}') from e
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.remove(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def fingerprint_files(paths, sample_bytes: int = 1 << 16) -> str:
    """A digest of what the files hold, cheap enough for a cache key: each
    file's path, size, modification time and a hash of its first and last
    ``sample_bytes`` (the whole file when smaller). Regenerating, editing
    or replacing a file changes it, also when a copy keeps the old times;
    only an edit in the middle of a large file that keeps its size and time
    would go unseen."""
    h = hashlib.sha256()
    for path in paths:
        path = os.fspath(path)
        h.update(path.encode())
        try:
            st = os.stat(path)
        except OSError:
            h.update(b'missing')
            continue
        h.update(f'{st.st_size} {st.st_mtime_ns}'.encode())
        with open(path, 'rb') as f:
            h.update(f.read(sample_bytes))
            if st.st_size > 2 * sample_bytes:
                f.seek(-sample_bytes, os.SEEK_END)
            h.update(f.read(sample_bytes))
    return h.hexdigest()


def hash_state_dict(h, state) -> None:
    """Feed a state dict to the hash ``h`` (hashlib), entry by entry in
    name order: the name, then the tensor's bytes (other values by their
    repr). The same weights give the same digest on any device."""
    for name, value in sorted(state.items()):
        h.update(name.encode())
        if hasattr(value, 'detach'):
            h.update(value.detach().to('cpu').contiguous().numpy().tobytes())
        else:
            h.update(repr(value).encode())


def read_json_cache(path: str, what: str):
    """The JSON value cached at ``path``, or None when there is none. A
    damaged file (cut short, not JSON) is reported with its path and treated
    as absent, so the caller recomputes and overwrites it."""
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        warnings.warn(f'{what}: the cache file {path} is damaged ({e}); '
                      'computing it again and replacing it.')
        return None


def read_last_checkpoint(work_dir: str) -> Optional[str]:
    """What mmengine's ``last_checkpoint`` pointer in ``work_dir`` names
    ('' when it is empty), or None when there is no pointer. The one place
    the pointer is read: the runner's resume, the commands and ``adapt``."""
    pointer = os.path.join(work_dir, 'last_checkpoint')
    if not os.path.isfile(pointer):
        return None
    with open(pointer) as f:
        return f.read().strip()


def last_checkpoint(work_dir: str) -> str:
    """The checkpoint a finished training run in ``work_dir`` saved last;
    FileNotFoundError naming the folder when it saved none."""
    path = read_last_checkpoint(work_dir)
    if not path:
        raise FileNotFoundError(
            f'Training wrote no checkpoint in {work_dir} (no or an empty '
            'last_checkpoint file): its log there says why.')
    return path
