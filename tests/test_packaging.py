"""The package finds its shipped resources, and a wheel carries them."""
import glob
import os
import subprocess
import sys
import zipfile

import pytest

from mmseg_powerone.utils import resources

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAME = 'powerone/powerone_blip-tiny_zeroshot_shapes.py'


def test_config_names_resolve_with_and_without_the_package_scope():
    expected = os.path.join(resources.resource_root(), 'configs', NAME)
    assert resources.config_path('mmseg_powerone::' + NAME) == expected
    assert resources.config_path(NAME) == expected
    assert resources.config_path(expected) == expected
    cfg = resources.load_config('mmseg_powerone::' + NAME)
    assert cfg.model.type == 'VLMAttentionSegmentor'
    assert os.path.isdir(resources.checkpoint_path('blip-tiny-shapes'))
    assert resources.class_names_path('voc21.txt').endswith('voc21.txt')


def test_a_missing_config_names_itself_and_the_fix():
    with pytest.raises(FileNotFoundError, match='mmseg_powerone::powerone/'):
        resources.config_path('mmseg_powerone::powerone/nope.py')
    with pytest.raises(FileNotFoundError, match="No shipped checkpoint 'x'"):
        resources.checkpoint_path('x')


def test_the_package_scope_is_registered_additively():
    from mmengine.config.utils import MODULE2PACKAGE
    assert MODULE2PACKAGE['mmseg_powerone'] == 'mmseg_powerone.mim'
    assert MODULE2PACKAGE['mmseg'] == 'mmsegmentation'


def test_a_user_config_inherits_a_scoped_name_in_this_install(tmp_path):
    """A config of the user's, in a folder of theirs, with ``_base_ =
    ['mmseg_powerone::...']``, loaded by mmengine itself in a fresh
    interpreter started there: in the README's editable install (the
    checkout's .mim, linked at install) as in a wheel (CI's smoke test)."""
    (tmp_path / 'mine.py').write_text(
        f"_base_ = ['mmseg_powerone::{NAME}']\n"
        "model = dict(layers=[0, 2])\n")
    code = ('import mmseg_powerone\n'
            'from mmengine.config import Config\n'
            "cfg = Config.fromfile('mine.py')\n"
            'print(cfg.model.type, cfg.model.layers)\n')
    out = subprocess.run([sys.executable, '-c', code], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert 'VLMAttentionSegmentor [0, 2]' in out.stdout


def test_a_base_config_in_our_scope_builds_the_same_objects():
    """Objects of a ``mmseg_powerone::`` base carry ``_scope_=
    'mmseg_powerone'``: our child registries resolve them."""
    from mmengine.registry import DefaultScope
    from mmseg_powerone.registry import MODELS, SCOPE
    cfg = resources.load_config(NAME)
    with DefaultScope.overwrite_default_scope(SCOPE):
        model = MODELS.build(dict(cfg.model, _scope_=SCOPE))
    assert type(model).__name__ == 'VLMAttentionSegmentor'


def test_the_wheel_carries_configs_class_files_and_checkpoints(tmp_path):
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps',
                    '--no-build-isolation', '-q', '-w', str(tmp_path), REPO],
                   check=True, cwd=REPO)
    wheel, = glob.glob(str(tmp_path / 'mmseg_powerone-*.whl'))
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = [os.path.relpath(p, REPO) for top in ('configs', 'checkpoints')
               for p in glob.glob(os.path.join(REPO, top, '**', '*'),
                                  recursive=True)
               if os.path.isfile(p) and '__pycache__' not in p]
    assert any(p.endswith('voc21.txt') for p in shipped)
    assert any(p.startswith('checkpoints/blip-tiny-shapes') for p in shipped)
    missing = [p for p in shipped
               if f'mmseg_powerone/.mim/{p}' not in names]
    assert not missing, missing
    assert 'mmseg_powerone/.mim/model-index.yml' in names
    assert 'mmseg_powerone/utils/resources.py' in names
