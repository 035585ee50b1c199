from .io import atomic_write, fingerprint_files, read_json_cache
from .cli import apply_common_cli

__all__ = ['atomic_write', 'apply_common_cli', 'fingerprint_files',
           'read_json_cache']
