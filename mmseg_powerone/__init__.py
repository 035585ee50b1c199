"""mmseg-powerone: open-vocabulary segmentation from the text-to-image
attention of vision-language models, as an MMSegmentation plugin.

Importing the package applies the compatibility fixes (mmcv-lite, safe
``torch.load``) and registers its models in mmseg's registries.
"""
from . import compat

compat.apply()

from .class_names import PromptSet, build_prompts, read_class_file  # noqa: E402
from .datasets import OneShotDataset, SyntheticShapesDataset  # noqa: E402
from .engine import InfoScoreHook, TrainableParamsOptimWrapperConstructor  # noqa: E402
from .models import (ALBEFAdapter, BLIPAdapter, LLaVAAdapter,  # noqa: E402
                     VLMAttentionSegmentor)
from .visualization import PowerOneSegVisualizer  # noqa: E402

__version__ = '0.1.0'

__all__ = ['ALBEFAdapter', 'BLIPAdapter', 'LLaVAAdapter',
           'VLMAttentionSegmentor', 'SyntheticShapesDataset',
           'OneShotDataset', 'InfoScoreHook', 'PowerOneSegVisualizer',
           'TrainableParamsOptimWrapperConstructor',
           'PromptSet',
           'build_prompts', 'read_class_file', '__version__']
