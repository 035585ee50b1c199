from setuptools import find_packages, setup

setup(
    name='mmseg-powerone',
    version='0.1.0',
    description='Open-vocabulary semantic segmentation from the text-to-image '
    'attention of vision-language models, as an MMSegmentation plugin '
    '("The Power of One").',
    long_description=open('README.md', encoding='utf-8').read(),
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
)
