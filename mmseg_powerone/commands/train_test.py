"""mmseg's train and test entry points for powerone configs: what
``tools/train.py`` and ``tools/test.py`` run, importable so that the
one-shot draw protocol can run them in a process of its own."""
import os

from ..engine.runner import build_runner
from ..engine.run_guards import process_group_closed, work_dir_lock
from .cli import (add_common_args, apply_common_cli, has_display,
                  interruptible, tool_parser)
from ..utils.resources import load_config

TRAIN_DOC = """Train a segmentor, as mmseg's tools/train.py does.

    python tools/train.py CONFIG [--work-dir DIR] [--resume] [--amp]
        [--cfg-options k=v ...] [--launcher pytorch]
"""

TEST_DOC = """Test (and evaluate) a segmentor, as mmseg's tools/test.py does.

The checkpoint is optional: the training-free method needs only the config
(the VLM weights come from ``model.vlm.pretrained``).

    python tools/test.py CONFIG [CHECKPOINT] [--work-dir DIR] [--out DIR]
        [--show-dir DIR] [--cfg-options k=v ...] [--launcher pytorch]
"""


def train_parser(doc: str = TRAIN_DOC):
    parser = tool_parser(doc)
    parser.add_argument('config', help='config file')
    parser.add_argument('--resume', action='store_true',
                        help='resume from the latest checkpoint in work_dir')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision')
    add_common_args(parser)
    return parser


def train(argv=None, doc: str = TRAIN_DOC):
    """``tools/train.py``: parse ``argv``, build the runner the config
    names, train."""
    args = train_parser(doc).parse_args(argv)
    cfg = load_config(args.config)
    cfg = apply_common_cli(cfg, args, args.config)
    if args.amp:
        if cfg.optim_wrapper.get('type', 'OptimWrapper') != 'AmpOptimWrapper':
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
    cfg.resume = args.resume
    with process_group_closed(), interruptible('Training'), \
            work_dir_lock(cfg.work_dir):
        runner = build_runner(cfg)
        runner.train()


def test_parser(doc: str = TEST_DOC):
    parser = tool_parser(doc)
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', nargs='?', default=None,
                        help='checkpoint (optional for training-free models)')
    parser.add_argument('--out', help='save predictions here for offline '
                        'evaluation, one label PNG per image named after it '
                        '(16-bit beyond 256 classes)')
    parser.add_argument('--show', action='store_true',
                        help='show predictions in a window (needs a display)')
    parser.add_argument('--show-dir', help='save painted predictions (ground '
                        'truth | prediction) as DIR/vis_data/vis_image/'
                        '<image>_<step>.png, as mmseg does')
    parser.add_argument('--wait-time', type=float, default=2,
                        help='seconds each image is shown with --show')
    add_common_args(parser)
    return parser


def trigger_visualization_hook(cfg, args):
    hooks = cfg.default_hooks
    if 'visualization' not in hooks:
        raise RuntimeError(
            '--show/--show-dir need default_hooks.visualization = '
            "dict(type='SegVisualizationHook') in the config.")
    hooks.visualization['draw'] = True
    # mmseg's hook paints every 50th batch by default; paint every image.
    hooks.visualization['interval'] = 1
    if args.show:
        if not has_display():
            raise SystemExit(
                'test.py: --show needs a display (none is set: no DISPLAY or '
                'WAYLAND_DISPLAY); use --show-dir DIR to save the pictures.')
        hooks.visualization['show'] = True
        hooks.visualization['wait_time'] = args.wait_time
    if args.show_dir:
        cfg.visualizer['save_dir'] = args.show_dir
    return cfg


def test(argv=None, doc: str = TEST_DOC):
    """``tools/test.py``: parse ``argv``, build the runner the config
    names, test; returns the metrics."""
    args = test_parser(doc).parse_args(argv)
    cfg = load_config(args.config)
    cfg = apply_common_cli(cfg, args, args.config)
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)
    if args.out is not None:
        # label PNGs that keep class indices above 255 and never overwrite
        # one another (mmseg's IoUMetric output_dir does both)
        cfg.custom_hooks = list(cfg.get('custom_hooks') or []) + [
            dict(type='SavePredictionsHook', out_dir=args.out)]
    with process_group_closed(), interruptible('Testing'), \
            work_dir_lock(cfg.work_dir):
        runner = build_runner(cfg)
        metrics = runner.test()
    if args.show_dir:
        print(f'Painted predictions: '
              f'{os.path.join(args.show_dir, "vis_data", "vis_image")}')
    return metrics
