"""mmseg-powerone's package.

A wheel carries the shipped configs (with their class-name files) and tiny
checkpoints under ``mmseg_powerone/.mim/``, where mmengine resolves
``mmseg_powerone::`` config names as it resolves ``mmseg::`` ones. In a
checkout they stay at the top level; an editable install links them into
the checkout's ``mmseg_powerone/.mim/`` (symbolic links; copies where links
cannot be made), as mmseg's ``setup.py`` does in develop mode, so scoped
names resolve there too. ``mmseg_powerone.utils.resources`` finds them in
either place.
"""
import os
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
SHIPPED = ('configs', 'checkpoints')
# mmengine reads '<package>/.mim/model-index.yml' before it falls back to
# '<package>/.mim/configs/<name>'; an empty index sends every name there.
MODEL_INDEX = 'Import: []\n'


class BuildWithResources(build_py):
    """``build_py`` that also copies the shipped resources into the built
    package (not for editable installs, which read the checkout)."""

    def run(self):
        super().run()
        if getattr(self, 'editable_mode', False):
            link_mim(os.path.join(HERE, 'mmseg_powerone', '.mim'))
            return
        mim = os.path.join(self.build_lib, 'mmseg_powerone', '.mim')
        shutil.rmtree(mim, ignore_errors=True)
        for name in SHIPPED:
            shutil.copytree(
                os.path.join(HERE, name), os.path.join(mim, name),
                ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
        with open(os.path.join(mim, 'model-index.yml'), 'w') as f:
            f.write(MODEL_INDEX)


def link_mim(mim):
    """The checkout's ``.mim`` of an editable install: links to the
    top-level resources (copies where links cannot be made)."""
    os.makedirs(mim, exist_ok=True)
    for name in SHIPPED:
        target = os.path.join(mim, name)
        if os.path.islink(target) or os.path.isfile(target):
            os.remove(target)
        elif os.path.isdir(target):
            shutil.rmtree(target)
        try:
            os.symlink(os.path.join('..', '..', name), target)
        except OSError:
            shutil.copytree(os.path.join(HERE, name), target)
    with open(os.path.join(mim, 'model-index.yml'), 'w') as f:
        f.write(MODEL_INDEX)


setup(
    name='mmseg-powerone',
    version='0.1.0',
    description='Open-vocabulary semantic segmentation from the text-to-image '
    'attention of vision-language models, as an MMSegmentation plugin '
    '("The Power of One").',
    long_description=open(os.path.join(HERE, 'README.md'),
                          encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mmseg_powerone', 'mmseg_powerone.*']),
    python_requires='>=3.9',
    install_requires=[
        # Pinned: an unpinned torch pulls a multi-GB CUDA build.
        'torch==2.13.0',
        'mmengine==0.10.7',
        # mmseg 1.2.2 asserts mmcv<2.2.0; mmcv-lite has no compiled ops
        # (mmseg_powerone.compat covers what mmseg imports from them).
        'mmcv-lite==2.1.0',
        'mmsegmentation==1.2.2',
        'transformers>=5,<6',
        # mmseg's tokenizer module imports these.
        'ftfy',
        'regex',
        # mmengine 0.10.7 needs pkg_resources to resolve 'mmseg::' configs;
        # setuptools 81+ no longer ships it.
        'setuptools<81',
        'numpy',
        'opencv-python',
        'matplotlib',
    ],
    extras_require={'tests': ['pytest>=7']},
    cmdclass={'build_py': BuildWithResources},
    zip_safe=False,
)
