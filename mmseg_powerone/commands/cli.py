"""What the commands share: mmseg's CLI conventions, and ``--cfg-options``
values that keep what they say."""
import argparse
import ast
import contextlib
import os
import os.path as osp
import sys

from ..engine.run_guards import init_cpu_process_group

CFG_OPTIONS_HELP = (
    'override config settings, key=value: Python literals keep what they '
    "say (quote the whole option for the shell: \"model.class_names=['sky', "
    "'square shape']\" keeps the space), bare words and [a,b] lists are "
    "read as mmengine reads them (e.g. model.layers=[0,3])")


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's layout and shows every option's default."""

    def _get_help_string(self, action):
        text = action.help or ''
        if action.option_strings and '%(default)' not in text and \
                action.default not in (None, False, argparse.SUPPRESS):
            text += ' (default: %(default)s)'
        return text


class _ToolParser(argparse.ArgumentParser):
    """Lists every option in ``--help``, with its default, also the ones
    added without a help text."""

    def add_argument(self, *args, **kwargs):
        if not kwargs.get('help') and kwargs.get('default') not in (
                None, False, argparse.SUPPRESS):
            kwargs['help'] = '(default: %(default)s)'
        return super().add_argument(*args, **kwargs)


def tool_parser(doc: str) -> argparse.ArgumentParser:
    """A tool's argument parser: its docstring as the description (whole,
    so no sentence is cut) and every option's default in ``--help``."""
    return _ToolParser(description=doc.strip(), formatter_class=_HelpFormatter)


def parse_cfg_value(text: str):
    """One ``--cfg-options`` value.

    A Python literal (a quoted string, a number, a list, tuple or dict of
    them, True/False/None) is taken as written, spaces inside quotes
    included. Anything else is read as mmengine's ``DictAction`` reads it
    (bare words, ``[a,b]`` and ``a,b`` lists, ``true``/``false``/``None``)
    except that no space is ever removed: mmengine deletes every space and
    quote of a list, which turned ``'square shape'`` into ``'squareshape'``.
    """
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return _parse_bare(text.strip())
    if isinstance(value, tuple) and not text.lstrip().startswith('('):
        return list(value)  # a,b is a list, as mmengine has it
    return value


def _parse_bare(text: str):
    from mmengine.config import DictAction
    closing = {'[': ']', '(': ')'}
    if text[:1] in closing and text.endswith(closing[text[0]]):
        items = [_parse_bare(part.strip())
                 for part in _split_top_level(text[1:-1]) if part.strip()]
        return items if text[0] == '[' else tuple(items)
    parts = _split_top_level(text)
    if len(parts) > 1:
        return [_parse_bare(part.strip()) for part in parts]
    return DictAction._parse_int_float_bool(text.strip('\'"'))


def _split_top_level(text: str):
    """Split at the commas outside brackets and quotes."""
    parts, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in '\'"':
            quote = ch
        elif ch in '[({':
            depth += 1
        elif ch in '])}':
            depth -= 1
        elif ch == ',' and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


class CfgOptionsAction(argparse.Action):
    """``--cfg-options key=value ...`` into a dict, values through
    :func:`parse_cfg_value`."""

    def __call__(self, parser, namespace, values, option_string=None):
        options = dict(getattr(namespace, self.dest, None) or {})
        for kv in values or []:
            if '=' not in kv:
                parser.error(
                    f'--cfg-options item {kv!r} is not key=value. A value '
                    'with spaces must stay one shell word: quote the whole '
                    "option, e.g. \"model.prompt_templates=['A photo of {}.']\".")
            key, val = kv.split('=', maxsplit=1)
            options[key] = parse_cfg_value(val)
        setattr(namespace, self.dest, options)


def cfg_options_dict(items):
    """``key=value`` strings (as passed on to another tool) as the dict
    :class:`CfgOptionsAction` makes of them."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction)
    return vars(parser.parse_args(['--cfg-options', *items] if items else
                                  []))['cfg_options'] or {}


def add_common_args(parser):
    parser.add_argument('--work-dir', help='directory for logs, metrics and '
                        'checkpoints (default: ./work_dirs/CONFIG_NAME)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help=CFG_OPTIONS_HELP)
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


def has_display() -> bool:
    """Whether a window can be shown: always on Windows and macOS, on other
    systems when an X or Wayland display is set."""
    if sys.platform in ('win32', 'darwin'):
        return True
    return bool(os.environ.get('DISPLAY') or os.environ.get('WAYLAND_DISPLAY'))


@contextlib.contextmanager
def interruptible(what: str):
    """Ctrl-C anywhere in the block ends the tool with one line, exit code
    130. mmengine formats the config with a bare ``except`` while it saves
    a checkpoint, so a Ctrl-C landing there surfaced as "SyntaxError: Failed
    to format the config file" followed by the whole config; that case is
    recognised by the interrupt behind it."""
    try:
        yield
    except KeyboardInterrupt:
        pass
    except SyntaxError as e:
        if not isinstance(e.__context__, KeyboardInterrupt):
            raise
    else:
        return
    print(f'\n{what} interrupted (Ctrl-C). Checkpoints on disk are complete; '
          'tools/train.py --resume continues from the newest.',
          file=sys.stderr)
    raise SystemExit(130)
