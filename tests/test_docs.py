"""The README is a short user's guide and the docs hang together: links
resolve, the index lists every page, nothing points outside the
repository for its own facts."""
import glob
import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINK = re.compile(r'\]\(([^)#\s]+)(?:#[^)]*)?\)')


def _pages():
    return [os.path.join(REPO, 'README.md')] + sorted(
        glob.glob(os.path.join(REPO, 'docs', '**', '*.md'), recursive=True))


def test_readme_is_short_and_starts_with_the_two_commands():
    text = open(os.path.join(REPO, 'README.md'), encoding='utf-8').read()
    assert len(text.splitlines()) <= 200
    block = re.search(r'```bash\n(.*?)```', text, re.S).group(1)
    assert [line for line in block.splitlines() if line.strip()] == [
        'pip install -e ".[tests]" && python tools/quickstart.py',
        'python -m pytest tests -m "not slow"']
    assert '@article' in text  # the citation


def test_every_relative_link_resolves():
    broken = []
    for page in _pages():
        for target in LINK.findall(open(page, encoding='utf-8').read()):
            if '://' in target or target.startswith('mailto:'):
                continue
            path = os.path.normpath(os.path.join(os.path.dirname(page), target))
            if not os.path.exists(path):
                broken.append(f'{os.path.relpath(page, REPO)} -> {target}')
    assert not broken, broken


def test_the_index_lists_every_page():
    index = os.path.join(REPO, 'docs', 'en', 'index.md')
    linked = {os.path.normpath(os.path.join(os.path.dirname(index), t))
              for t in LINK.findall(open(index, encoding='utf-8').read())}
    pages = {p for p in glob.glob(os.path.join(REPO, 'docs', 'en', '**',
                                               '*.md'), recursive=True)
             if p != index}
    assert pages <= linked, sorted(pages - linked)


def test_nothing_points_at_files_outside_the_repository():
    """Docstrings and docs explain in their own words: no design notes kept
    elsewhere, no issue tracker."""
    hits = []
    for top in ('mmseg_powerone', 'docs', 'configs', 'tools', 'tests'):
        for path in glob.glob(os.path.join(REPO, top, '**', '*'),
                              recursive=True):
            if not path.endswith(('.py', '.md', '.sh')) or \
                    path == os.path.abspath(__file__):
                continue
            text = open(path, encoding='utf-8').read()
            for needle in ('DESIGN.md', 'issue tracker', '../shared'):
                if needle in text:
                    hits.append(f'{os.path.relpath(path, REPO)}: {needle}')
    assert not hits, hits


def _registered_adapters():
    """This package's VLM adapters registered in mmseg's MODELS."""
    from mmseg.registry import MODELS

    import mmseg_powerone  # noqa: F401  (registers them)
    from mmseg_powerone.models.adapters.base import BaseVLMAdapter
    return sorted({cls for cls in MODELS.module_dict.values()
                   if isinstance(cls, type) and issubclass(cls, BaseVLMAdapter)
                   and cls.__module__.startswith('mmseg_powerone.')},
                  key=lambda c: c.__name__)


def _vlm_checklist():
    """(path template, [strings it must contain]) of every row of the
    table in docs/en/adding_a_vlm.md."""
    text = open(os.path.join(REPO, 'docs', 'en', 'adding_a_vlm.md'),
                encoding='utf-8').read()
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if len(cells) == 3 and cells[0].startswith('`'):
            rows.append((cells[0].strip('`'),
                         re.findall(r'`([^`]+)`', cells[2])))
    return rows


def test_adding_a_vlm_lists_every_file_each_adapter_has():
    """The checklist of adding_a_vlm.md holds for every registered adapter
    (a new adapter lacking one of its files fails here), and every adapter
    states its module paths and finishes its init in one step."""
    rows = _vlm_checklist()
    assert len(rows) >= 10, rows
    adapters = _registered_adapters()
    assert {a.__name__ for a in adapters} >= {'BLIPAdapter', 'ALBEFAdapter',
                                              'LLaVAAdapter'}
    missing = []
    for adapter in adapters:
        names = dict(vlm=adapter.__name__[:-len('Adapter')].lower(),
                     Adapter=adapter.__name__)
        assert adapter.MODULE_PATHS.get('vision_encoder'), adapter
        assert not hasattr(adapter, '_init_fusion'), adapter
        for template, needles in rows:
            pattern = os.path.join(REPO, template.format(**names))
            files = [f for f in glob.glob(pattern) if os.path.isfile(f)]
            if not files:
                missing.append(f'{adapter.__name__}: no {template.format(**names)}')
                continue
            texts = [open(f, encoding='utf-8').read() for f in files]
            for needle in needles:
                needle = needle.format(**names)
                if not any(needle in t for t in texts):
                    missing.append(f'{adapter.__name__}: '
                                   f'{template.format(**names)} lacks {needle!r}')
    assert not missing, missing
