"""Acceptance: the quickstart's ALBEF and LLaVA tables, run end to end as
`python tools/quickstart.py --vlms albef llava` runs them (generator seeds
0 and 1, 200 validation images each, 5 one-shot draws), reproduce the
README's tables row for row (the timing row aside), and the targets the
tiny VLMs meet hold. The BLIP table is checked by CI's first command."""
import os

import pytest

from helpers import REPO

pytestmark = pytest.mark.slow


def readme_table(vlm):
    """The README's table under '**Tiny VLM**'."""
    with open(os.path.join(REPO, 'README.md')) as f:
        text = f.read()
    block = text.split(f'**Tiny {vlm}**\n\n', 1)[1]
    return [l for l in block.split('\n\n', 1)[0].splitlines()
            if l.startswith('|')]


ONESHOT = '| **one-shot top-2 mIoU**'


def exact_rows(lines):
    """The rows that reproduce exactly on any CPU: not the timing, and not
    the one-shot means (100 tuning passes amplify the rounding of the
    CPU's matrix kernels: the tiny ALBEF's seed-1 mean is 54.1 on one
    machine and 52.0 on another with the same code; checked apart)."""
    return [l for l in lines if not l.startswith(
        ('| one-shot training time', ONESHOT))]


def oneshot_means(lines):
    """The one-shot row's mean per seed: '**54.7 ± 3.8**' -> 54.7."""
    (row, ) = [l for l in lines if l.startswith(ONESHOT)]
    return [float(cell.strip(' *').split(' ± ')[0])
            for cell in row.strip('|').split('|')[1:]]


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return str(tmp_path_factory.mktemp('data'))


@pytest.mark.parametrize('vlm', ['ALBEF', 'LLaVA'])
def test_quickstart_table_of_the_tiny_vlm(vlm, data_root, tmp_path):
    from mmseg_powerone.commands import quickstart
    results = quickstart.quickstart([
        '--vlms', vlm.lower(), '--seeds', '0', '1', '--data-root', data_root,
        '--work-dir', str(tmp_path)])
    printed = [l for l in quickstart.table(results).splitlines()]
    assert exact_rows(printed) == exact_rows(readme_table(vlm))
    # one-shot means within 3 mIoU of the README's (about one standard
    # deviation over the support draws; machines differ by up to 2.1)
    for got, want in zip(oneshot_means(printed),
                         oneshot_means(readme_table(vlm))):
        assert abs(got - want) <= 3, (got, want)

    # the targets this VLM meets (docs/en/embedded_world.md lists each
    # VLM against every target, the ones missed included: ALBEF's InfoScore
    # keeps its worst layer; LLaVA's one-shot adds 2.2 / 3.8, not 5)
    for r in results:
        assert r['presence_auroc']['mean'] >= 0.95
        assert r['zeroshot_miou'] >= 35
        assert r['zeroshot_miou'] - r['zeroshot_no_itm_miou'] >= 3
        assert r['oneshot']['summary']['mIoU']['mean'] > r['zeroshot_miou']
        if vlm == 'LLaVA':
            per_layer = r['infoscore']['per_layer_miou']
            worst = min(range(len(per_layer)), key=per_layer.__getitem__)
            assert worst not in r['infoscore']['selected']
        else:
            assert r['oneshot']['summary']['mIoU']['mean'] >= \
                r['zeroshot_miou'] + 5
    a, b = (r['zeroshot_miou'] for r in results)
    assert abs(a - b) <= 3
