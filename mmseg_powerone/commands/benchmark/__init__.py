"""``tools/benchmark.py``: speed and memory of the map path beside a naive
loop and the floor (``speed``), of ``adapt`` (``adapt``) and of a dataset
config end to end (``dataset``), on random models of the real checkpoints'
sizes (``models``); ``baselines`` holds the naive loop and the floor,
``timing`` the clocks."""
from .dataset import write_voc_folder
from .models import build, save_model
from .speed import benchmark, parse_args

__all__ = ['benchmark', 'build', 'parse_args', 'save_model',
           'write_voc_folder']
