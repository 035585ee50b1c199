from .io import atomic_write
from .cli import apply_common_cli

__all__ = ['atomic_write', 'apply_common_cli']
