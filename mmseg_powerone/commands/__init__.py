"""The commands behind ``tools/*.py``, runnable from an installed wheel
(which has no ``tools/`` folder)::

    python -m mmseg_powerone.commands test CONFIG [CHECKPOINT] --work-dir DIR
    python -m mmseg_powerone.commands --help      # every command

``python -m mmseg_powerone.commands NAME ARGS`` is exactly
``python tools/NAME.py ARGS``. Each command parses its arguments, makes
one library call and prints its result; the method itself lives below
this package (``apis``, ``models``, ``engine``, ``datasets``,
``infoscore``, ``distill``, ``shapes``), which never imports it.
"""
import importlib
import sys

COMMANDS_MODULE = 'mmseg_powerone.commands'
# name -> 'module:function'; the function takes the argument list
COMMANDS = {
    'train': 'mmseg_powerone.commands.train_test:train',
    'test': 'mmseg_powerone.commands.train_test:test',
    'oneshot_eval': 'mmseg_powerone.commands.oneshot_eval:oneshot_eval',
    'rank_layers': 'mmseg_powerone.commands.rank_layers:rank_layers_cli',
    'demo': 'mmseg_powerone.commands.demo:demo',
    'quickstart': 'mmseg_powerone.commands.quickstart:quickstart',
    'make_shapes': 'mmseg_powerone.commands.make_shapes:make_shapes',
    'export_checkpoint':
        'mmseg_powerone.commands.export_checkpoint:export_checkpoint_cli',
    'pseudo_label': 'mmseg_powerone.commands.pseudo_label:pseudo_label_command',
    'distill': 'mmseg_powerone.commands.distill:distill_command',
    'benchmark': 'mmseg_powerone.commands.benchmark.speed:benchmark',
    'reproduce_table': 'mmseg_powerone.commands.reproduce_table:reproduce_table',
    'pretrain_vlm': 'mmseg_powerone.commands.pretrain_vlm:pretrain_vlm',
    'convert_coco_object':
        'mmseg_powerone.commands.convert_coco_object:convert_coco_object',
}


def command(name: str):
    """The function behind command ``name``; it takes the argument list."""
    if name not in COMMANDS:
        raise ValueError(f'Unknown command {name!r}; one of '
                         f'{sorted(COMMANDS)}.')
    module, function = COMMANDS[name].split(':')
    return getattr(importlib.import_module(module), function)


def main(argv=None):
    """``python -m mmseg_powerone.commands NAME ARGS...``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    usage = (f'usage: python -m {COMMANDS_MODULE} NAME [ARGS...]\n'
             f'  NAME: {", ".join(COMMANDS)}\n'
             f'  python -m {COMMANDS_MODULE} NAME --help: that command\'s '
             'options')
    if not argv or argv[0] in ('-h', '--help'):
        print(usage)
        return 0 if argv else 2
    if argv[0] not in COMMANDS:
        sys.exit(f'{usage}\nerror: unknown command {argv[0]!r}')
    # what argparse prints as the program's name
    sys.argv = [f'python -m {COMMANDS_MODULE} {argv[0]}'] + argv[1:]
    command(argv[0])(argv[1:])
    return 0
