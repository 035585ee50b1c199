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
        'python -m pytest tests']
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
