from .io import atomic_write, fingerprint_files, read_json_cache

__all__ = ['atomic_write', 'fingerprint_files',
           'read_json_cache', 'unwrap_model']


def unwrap_model(model):
    """The model inside a distributed wrapper (DDP and mmengine's own), or
    the model itself."""
    from mmengine.model import is_model_wrapper
    return model.module if is_model_wrapper(model) else model
