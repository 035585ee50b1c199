"""ALBEF's modules and its checkpoint converter (the adapter is
``models/adapters/albef.py``)."""
from .convert import (albef_config_from_state, load_albef,
                      normalize_albef_state, save_albef)
from .modeling import ALBEFModel

__all__ = ['ALBEFModel', 'albef_config_from_state', 'load_albef',
           'normalize_albef_state', 'save_albef']
