"""ClassNamesCheckHook: a class list in another order than the dataset's is
an error; other names are a warning; synonyms and filler words pass."""
import pytest

from helpers import REPO, run  # noqa: F401
from mmseg_powerone.engine.hooks.class_check_hook import compare_classes, same_class

VOC = ('background', 'aeroplane', 'bicycle', 'diningtable', 'tvmonitor')
OURS = [('sky', 'wall'), ('airplane', 'aeroplane'), ('bicycle', 'bike'),
        ('dining table', ), ('tv', 'tv monitor')]


@pytest.mark.parametrize('name,synonyms', [
    ('diningtable', ['dining table']), ('tvmonitor', ['tv', 'tv monitor']),
    ('wall-other-merged', ['wall']), ('ceiling-tile', ['tile ceiling']),
    ('Potted_Plant', ['potted plant'])])
def test_same_class(name, synonyms):
    assert same_class(name, synonyms)


def test_same_classes_same_order_pass():
    assert compare_classes(VOC, OURS, True) is None


def test_other_order_is_an_error_naming_both():
    swapped = [OURS[0], OURS[2], OURS[1], OURS[3], OURS[4]]
    with pytest.raises(ValueError, match='another order') as e:
        compare_classes(VOC, swapped, True)
    assert str(list(VOC)) in str(e.value)
    assert "['sky', 'bicycle', 'airplane', 'dining table', 'tv']" in str(e.value)


def test_other_names_are_one_warning_listing_them():
    other = OURS[:3] + [('kitchen table', ), ('screen', )]
    text = compare_classes(VOC, other, True)
    assert "label 3: dataset 'diningtable', model 'kitchen table'" in text
    assert "label 4: dataset 'tvmonitor', model 'screen'" in text
    text = compare_classes(VOC, OURS[:4], True)
    assert 'the dataset has 5 classes, the model 4' in text


def test_background_name_is_free_only_with_background():
    assert compare_classes(VOC, OURS, True) is None
    assert "label 0: dataset 'background'" in compare_classes(VOC, OURS, False)


@pytest.mark.slow
def test_tools_test_refuses_a_reordered_class_list(tiny_config, tmp_path):
    import subprocess
    import sys
    proc = subprocess.run(
        [sys.executable, 'tools/test.py', tiny_config, '--work-dir',
         str(tmp_path), '--cfg-options', "model.class_names=['sky', 'dog', 'cat']"],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    assert 'another order' in proc.stderr + proc.stdout
    assert "model order: ['sky', 'dog', 'cat']" in proc.stderr + proc.stdout


@pytest.mark.slow
def test_tools_test_warns_about_other_names(tiny_config, tmp_path):
    out = run(['tools/test.py', tiny_config, '--work-dir', str(tmp_path),
               '--cfg-options', "model.class_names=['sky', 'cat', 'wolf']"])
    assert "label 2: dataset 'dog', model 'wolf'" in out
    assert 'mIoU' in out
