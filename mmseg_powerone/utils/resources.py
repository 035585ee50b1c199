"""Find the configs, class-name files and tiny checkpoints that ship with
the package, in a checkout and in an installed wheel alike.

A wheel carries them under ``mmseg_powerone/.mim/`` (where mmengine looks
for a package's configs, as it does for ``mmseg::``); a checkout keeps them
at the repository's top level, and an editable install links them into
``mmseg_powerone/.mim/`` as well. The relative
layout is the same in both, so configs find their class files and
checkpoints through ``{{fileDirname}}``.
"""
import os.path as osp

PACKAGE = 'mmseg_powerone'
SCOPE_PREFIX = PACKAGE + '::'
_PACKAGE_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))


def resource_root() -> str:
    """The folder holding ``configs/`` and ``checkpoints/``."""
    for root in (osp.join(_PACKAGE_DIR, '.mim'), osp.dirname(_PACKAGE_DIR)):
        if osp.isdir(osp.join(root, 'configs', 'powerone')):
            return root
    raise FileNotFoundError(
        f'Neither {_PACKAGE_DIR}/.mim/configs (an installed wheel) nor '
        f'{osp.dirname(_PACKAGE_DIR)}/configs (a checkout) exists: the '
        'installation is incomplete. Reinstall with `pip install '
        'mmseg-powerone` or `pip install -e .` in a checkout.')


def config_path(name: str) -> str:
    """Resolve a config name to a file.

    ``name`` is a path to a file (returned as it is when it exists), or a
    path relative to the shipped ``configs/`` folder, with or without the
    package scope: ``'mmseg_powerone::powerone/powerone_blip-tiny_zeroshot_
    shapes.py'`` and ``'powerone/powerone_blip-tiny_zeroshot_shapes.py'``.
    """
    name = str(name)
    scoped = name.startswith(SCOPE_PREFIX)
    if not scoped and osp.isfile(name):
        return name
    relative = name[len(SCOPE_PREFIX):] if scoped else name
    candidate = osp.join(resource_root(), 'configs', relative)
    if osp.isfile(candidate):
        return candidate
    raise FileNotFoundError(
        f'No config {name!r}: not a file, and not one of the configs that '
        f'ship with mmseg-powerone (looked for {candidate}). Give a path to '
        "a config file or a shipped one such as 'mmseg_powerone::powerone/"
        "powerone_blip-tiny_zeroshot_shapes.py'.")


def load_config(name: str):
    """``mmengine.Config`` of a config file or a shipped config name (see
    :func:`config_path`)."""
    from mmengine.config import Config
    return Config.fromfile(config_path(name))


def checkpoint_path(name: str) -> str:
    """A shipped tiny checkpoint folder, e.g. ``'blip-tiny-shapes'``."""
    path = osp.join(resource_root(), 'checkpoints', name)
    if not osp.exists(path):
        raise FileNotFoundError(f'No shipped checkpoint {name!r} at {path}.')
    return path


def class_names_path(name: str) -> str:
    """A shipped class-name file, e.g. ``'voc21.txt'``."""
    path = osp.join(resource_root(), 'configs', '_base_', 'class_names', name)
    if not osp.isfile(path):
        raise FileNotFoundError(f'No shipped class-name file {name!r} at '
                                f'{path}.')
    return path


def register_config_scope() -> None:
    """Let mmengine resolve ``mmseg_powerone::`` config names (in ``_base_``
    lists) the way it resolves ``mmseg::``: it maps the scope to an
    installed name and reads ``<its path>/.mim/configs``. The name is
    ``mmseg_powerone.mim``, whose path is the imported package's folder in
    a wheel and in an editable install alike (see ``mmseg_powerone/mim.py``).
    Adds one entry; changes none."""
    from mmengine.config.utils import MODULE2PACKAGE
    MODULE2PACKAGE.setdefault(PACKAGE, f'{PACKAGE}.mim')


def build_model_and_loader(config, cfg_options=None, split='test'):
    """Load a config, build its segmentor (eval mode) and a dataloader of
    the given split, for analysis tools that run outside a Runner."""
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    from mmseg.registry import MODELS
    cfg = load_config(config) if isinstance(config, str) else config
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = MODELS.build(cfg.model).eval()
    try:
        loader = Runner.build_dataloader(cfg[f'{split}_dataloader'])
    except ValueError as e:
        # mmengine's symptom of a dataset that found no samples
        if 'need at least one array' not in str(e):
            raise
        ds = cfg[f'{split}_dataloader'].dataset
        ds = ds.get('dataset', ds)
        raise ValueError(
            f'The {split} dataset found no images under data_root='
            f'{ds.get("data_root")!r}, data_prefix={ds.get("data_prefix")}: '
            f'point {split}_dataloader.dataset at a folder with images.') from e
    return cfg, model, loader
