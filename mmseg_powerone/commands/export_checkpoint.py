"""Write an mmengine checkpoint of a training-free segmentor, for mmseg's
APIs and tools that require one (``init_model``, ``inference_model``,
``show_result_pyplot``, ``MMSegInferencer``, the stock tools/test.py).

The checkpoint holds no VLM weights (they load from ``model.vlm.pretrained``
when the model is built), only the model's own state, its classes as
``dataset_meta`` and its layers: chosen here by InfoScore on the config's
images when the config asks for that.

    python tools/export_checkpoint.py CONFIG OUT.pth [--num-images N]
        [--cfg-options k=v ...]
"""

from ..apis.export import export_checkpoint
from .cli import CFG_OPTIONS_HELP, CfgOptionsAction, tool_parser


def export_checkpoint_cli(argv=None):
    parser = tool_parser(__doc__)
    parser.add_argument('config')
    parser.add_argument('out', help='output .pth file')
    parser.add_argument('--num-images', type=int, default=None,
                        help="images InfoScore ranks on (default: the "
                        "config's InfoScoreHook's)")
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help=CFG_OPTIONS_HELP)
    args = parser.parse_args(argv)
    meta = export_checkpoint(args.config, args.out, args.cfg_options,
                             args.num_images)
    source = meta['vlm'].get('pretrained', meta['vlm'].get('checkpoint'))
    print(f'Wrote {args.out}: classes {list(meta["dataset_meta"]["classes"])}'
          f', layers {meta["layers"]}'
          + (' (chosen by InfoScore)' if 'infoscore' in meta else '')
          + f'; the VLM weights load from {source!r}.')
