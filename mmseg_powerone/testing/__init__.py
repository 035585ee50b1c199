"""Test and benchmark support: tiny random VLMs in official formats and the
reference computations the optimised paths are checked against."""
from .random_models import save_random_albef, save_random_blip, save_random_llava

__all__ = ['save_random_albef', 'save_random_blip', 'save_random_llava']
