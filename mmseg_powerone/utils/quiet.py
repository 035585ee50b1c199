"""A run started from a Python call (``adapt``) that prints its progress,
not the Runner's whole config, environment and hook order.

mmengine's Runner logs everything to its log file and to the terminal;
from a call that is hundreds of lines around the few a caller reads. Inside
:func:`quiet_run` the terminal gets the records that say how the run goes
(iterations with their ETA and loss, InfoScore) and the warnings raised by
this package; the Runner's log file in the work dir still gets every
record. Weight-loading progress bars are off. Nothing is changed outside
the block.
"""
import contextlib
import logging
import re
import sys
import warnings

# records kept on the terminal: training progress and InfoScore, the
# classes and layers a run uses, and errors
PROGRESS = re.compile(r'Epoch\(train\)|Iter\(train\)|InfoScore|'
                      r'\d+ classes \[| - ERROR - ')
# the first line of an mmengine log record: '12/07 21:00:00 - mmengine - '
RECORD_START = re.compile(r'^\d\d/\d\d \d\d:\d\d:\d\d - ')
PACKAGE = __name__.split('.')[0]


class _ProgressOnly(logging.Filter):
    """Passes the records :data:`PROGRESS` matches."""

    def filter(self, record):
        return bool(PROGRESS.search(f' - {record.levelname} - '
                                    + record.getMessage()))


class _ProgressStream:
    """A text stream that forwards only the log records :data:`PROGRESS`
    matches (a record's continuation lines go with it); inactive, it
    forwards everything (a logger built inside the block keeps it)."""

    def __init__(self, stream):
        self.stream = stream
        self.active = True
        self._keep = True
        self._partial = ''

    def write(self, text):
        if not self.active:
            return self.stream.write(text)
        self._partial += text
        *lines, self._partial = self._partial.split('\n')
        for line in lines:
            if RECORD_START.match(line):
                self._keep = bool(PROGRESS.search(line))
            if self._keep:
                self.stream.write(line + '\n')
        return len(text)

    def flush(self):
        if self._partial and (not self.active or self._keep):
            self.stream.write(self._partial)
            self._partial = ''
        self.stream.flush()

    def __getattr__(self, name):
        return getattr(self.stream, name)


def _concerns_caller(warning) -> bool:
    """Warnings raised in this package (about the caller's classes,
    labels, layers); not the libraries' notes about their own internals."""
    return f'{PACKAGE}/' in warning.filename.replace('\\', '/')


@contextlib.contextmanager
def quiet_run(verbose: bool = False):
    """Run the block with the terminal showing progress and this package's
    warnings only (``verbose=True``: everything, as mmengine prints it)."""
    if verbose:
        yield
        return
    from mmengine.logging import MMLogger
    stream = _ProgressStream(sys.stdout)
    progress = _ProgressOnly()
    handlers = [h for logger in MMLogger._instance_dict.values()
                for h in logger.handlers
                if isinstance(h, logging.StreamHandler)
                and not isinstance(h, logging.FileHandler)]
    for h in handlers:
        h.addFilter(progress)
    bars = _progress_bars(False)
    old_stdout, sys.stdout = sys.stdout, stream
    caught = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            yield
    finally:
        sys.stdout = old_stdout
        stream.flush()
        stream.active = False
        for h in handlers:
            h.removeFilter(progress)
        _progress_bars(bars)
        # this package's warnings, also when the block failed
        for w in caught:
            if _concerns_caller(w):
                warnings.warn_explicit(w.message, w.category, w.filename,
                                       w.lineno)


def _progress_bars(enabled: bool) -> bool:
    """Turn transformers' progress bars (weight loading) on or off; returns
    whether they were on."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover  (transformers is a dependency)
        return enabled
    was = hf_logging.is_progress_bar_enabled()
    (hf_logging.enable_progress_bar if enabled
     else hf_logging.disable_progress_bar)()
    return was
