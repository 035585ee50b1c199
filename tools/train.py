"""Train a segmentor, as mmseg's tools/train.py does.

    python tools/train.py CONFIG [--work-dir DIR] [--resume] [--amp]
        [--cfg-options k=v ...] [--launcher pytorch]
"""

import mmseg_powerone  # noqa: F401  (compat fixes and registration first)
from mmseg_powerone.engine import build_runner
from mmseg_powerone.utils.resources import load_config
from mmseg_powerone.utils.cli import (add_common_args, apply_common_cli,
                                      interruptible, tool_parser,
                                      work_dir_lock)


def parse_args(argv=None):
    parser = tool_parser(__doc__)
    parser.add_argument('config', help='config file')
    parser.add_argument('--resume', action='store_true',
                        help='resume from the latest checkpoint in work_dir')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision')
    add_common_args(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config)
    cfg = apply_common_cli(cfg, args, args.config)
    if args.amp:
        if cfg.optim_wrapper.get('type', 'OptimWrapper') != 'AmpOptimWrapper':
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
    cfg.resume = args.resume
    with interruptible('Training'), work_dir_lock(cfg.work_dir):
        runner = build_runner(cfg)
        runner.train()


if __name__ == '__main__':
    main()
