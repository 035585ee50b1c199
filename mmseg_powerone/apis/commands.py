"""The tools' commands by name, so a run can start one in a process of its
own: a fork of the current one, or a fresh interpreter::

    python -m mmseg_powerone.apis.commands train CONFIG --work-dir DIR

(the same as ``python tools/train.py CONFIG --work-dir DIR``, also where
the package is installed without a checkout).
"""
import importlib
import sys

COMMANDS_MODULE = 'mmseg_powerone.apis.commands'
COMMANDS = {
    'train': 'mmseg_powerone.apis.train_test:train',
    'test': 'mmseg_powerone.apis.train_test:test',
    'oneshot_eval': 'mmseg_powerone.apis.oneshot:oneshot_eval',
    'pseudo_label': 'mmseg_powerone.distill.commands:pseudo_label_command',
    'distill': 'mmseg_powerone.distill.commands:distill_command',
}


def command(name: str):
    """The function behind command ``name``; it takes the argument list."""
    if name not in COMMANDS:
        raise ValueError(f'Unknown command {name!r}; one of '
                         f'{sorted(COMMANDS)}.')
    module, function = COMMANDS[name].split(':')
    return getattr(importlib.import_module(module), function)


if __name__ == '__main__':
    if len(sys.argv) < 2:
        sys.exit(f'usage: python -m {COMMANDS_MODULE} '
                 f'{{{",".join(COMMANDS)}}} ARGS...')
    command(sys.argv[1])(sys.argv[2:])
