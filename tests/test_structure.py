"""The package's layout, read from its own imports: commands on top of the
library, never below it; test support apart; models free of InfoScore; no
import circles; short modules; no command line in the library API."""
import ast
import os
import sys
from collections import defaultdict

import pytest

from helpers import REPO

PACKAGE = os.path.join(REPO, 'mmseg_powerone')
MAX_LINES = 500


def _module_name(path):
    parts = os.path.relpath(path, REPO)[:-3].split(os.sep)
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def _modules():
    out = {}
    for root, _, files in os.walk(PACKAGE):
        for f in files:
            if f.endswith('.py'):
                path = os.path.join(root, f)
                out[_module_name(path)] = path
    return out


def _imports():
    """module -> the package's modules it imports (at module level or inside
    a function: both are imports of the code)."""
    modules = _modules()
    graph = defaultdict(set)
    for name, path in modules.items():
        tree = ast.parse(open(path, encoding='utf-8').read())
        package = name if path.endswith('__init__.py') else name.rpartition('.')[0]
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split('.')
                    base = base[:len(base) - (node.level - 1)]
                    target = '.'.join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ''
                for alias in node.names:
                    sub = f'{target}.{alias.name}'
                    targets.append(sub if sub in modules else target)
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            graph[name].update(t for t in targets if t in modules and t != name)
    return modules, graph


def _inside(module, package):
    return module == package or module.startswith(package + '.')


def test_only_commands_import_commands_and_only_testing_imports_testing():
    _, graph = _imports()
    bad = [(m, t) for m, targets in graph.items() for t in targets
           if (_inside(t, 'mmseg_powerone.commands')
               and not _inside(m, 'mmseg_powerone.commands'))
           or (_inside(t, 'mmseg_powerone.testing')
               and not _inside(m, 'mmseg_powerone.testing'))
           or (_inside(m, 'mmseg_powerone.models')
               and _inside(t, 'mmseg_powerone.infoscore'))]
    assert not bad, bad


def test_no_import_circles():
    """Tarjan's strongly connected components of the import graph: every
    one a single module."""
    modules, graph = _imports()
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in sorted(modules):
        if module not in index:
            visit(module)
    assert not circles, circles


def test_no_module_over_500_lines():
    long = {name: n for name, path in _modules().items()
            if (n := len(open(path, encoding='utf-8').read().splitlines()))
            > MAX_LINES}
    assert not long, long


def test_the_library_api_builds_no_command_line():
    """``apis`` is what a Python user calls (as mmseg's apis); argument
    parsing lives in ``commands``."""
    found = []
    for name, path in _modules().items():
        if _inside(name, 'mmseg_powerone.apis'):
            text = open(path, encoding='utf-8').read()
            if 'argparse' in text or 'tool_parser' in text or 'sys.argv' in text:
                found.append(name)
    assert not found, found


@pytest.mark.parametrize('rule', ['commands', 'circle'])
def test_the_checks_catch_a_violation(tmp_path, monkeypatch, rule):
    """The rules above fail on a package that breaks them."""
    pkg = tmp_path / 'mmseg_powerone'
    (pkg / 'commands').mkdir(parents=True)
    (pkg / '__init__.py').write_text('')
    (pkg / 'commands' / '__init__.py').write_text('')
    if rule == 'commands':
        (pkg / 'library.py').write_text('from .commands import x\n')
        check = test_only_commands_import_commands_and_only_testing_imports_testing
    else:
        (pkg / 'a.py').write_text('from . import b\n')
        (pkg / 'b.py').write_text('def f():\n    from . import a\n')
        check = test_no_import_circles
    monkeypatch.setattr(sys.modules[__name__], 'REPO', str(tmp_path))
    monkeypatch.setattr(sys.modules[__name__], 'PACKAGE', str(pkg))
    with pytest.raises(AssertionError):
        check()
