"""What tools/train.py and tools/test.py share: mmseg's CLI conventions."""
import os
import os.path as osp


def add_common_args(parser):
    from mmengine.config import DictAction
    parser.add_argument('--work-dir', help='directory for logs, metrics and '
                        'checkpoints (default: ./work_dirs/CONFIG_NAME)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value (e.g. '
        'model.layers="[0,3]"); lists as key="[a,b]", no spaces')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'],
                        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser


def apply_common_cli(cfg, args, config_path):
    """Apply --launcher, --cfg-options and --work-dir the way mmseg does."""
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.launcher == 'pytorch':
        init_cpu_process_group(cfg)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join(
            './work_dirs', osp.splitext(osp.basename(config_path))[0])
    return cfg


def init_cpu_process_group(cfg):
    """Start a gloo process group on machines without CUDA.

    mmengine 0.10.7's pytorch launcher calls ``torch.cuda.set_device``
    unconditionally, so torchrun on CPU fails inside the Runner; the Runner
    skips its own initialisation when a process group already exists.
    """
    import torch
    import torch.distributed as dist
    if torch.cuda.is_available() or dist.is_initialized():
        return
    timeout = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('timeout', 1800)
    from datetime import timedelta
    dist.init_process_group(backend='gloo',
                            timeout=timedelta(seconds=timeout))
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    # The Runner gives DDP device_ids=[LOCAL_RANK], which DDP refuses for a
    # CPU module; CPU DDP needs device_ids=None.
    wrapper = cfg.get('model_wrapper_cfg')
    if wrapper is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel', broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg.setdefault('device_ids', None)


def build_model_and_loader(config, cfg_options=None, split='test'):
    """Load a config, build its segmentor (eval mode) and a dataloader of
    the given split, for analysis tools that run outside a Runner."""
    import mmseg_powerone  # noqa: F401
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    from mmseg.registry import MODELS
    cfg = Config.fromfile(config) if isinstance(config, str) else config
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
