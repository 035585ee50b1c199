"""mmseg-powerone: open-vocabulary segmentation from the text-to-image
attention of vision-language models, as an MMSegmentation plugin.

Importing the package applies the compatibility fixes (mmcv-lite, safe
``torch.load``) and registers its models in mmseg's registries.
"""
from . import compat
from .utils.resources import register_config_scope

compat.apply()
register_config_scope()  # 'mmseg_powerone::' config names, like 'mmseg::'

from . import registry  # noqa: E402,F401  (the 'mmseg_powerone' scope)
from .class_names import PromptSet, build_prompts, read_class_file  # noqa: E402
from .datasets import (OneShotDataset, PseudoLabelDataset,  # noqa: E402
                       SyntheticShapesDataset)
from .distill import PseudoLabelHook, PseudoLabelSampler  # noqa: E402
from .engine import InfoScoreHook, TrainableParamsOptimWrapperConstructor  # noqa: E402
from .models import (ALBEFAdapter, BLIPAdapter, LLaVAAdapter,  # noqa: E402
                     VLMAttentionSegmentor)
from .visualization import PowerOneSegVisualizer  # noqa: E402

__version__ = '0.1.0'

__all__ = ['ALBEFAdapter', 'BLIPAdapter', 'LLaVAAdapter',
           'VLMAttentionSegmentor', 'SyntheticShapesDataset',
           'OneShotDataset', 'PseudoLabelDataset', 'PseudoLabelHook',
           'PseudoLabelSampler', 'InfoScoreHook', 'PowerOneSegVisualizer',
           'TrainableParamsOptimWrapperConstructor',
           'PromptSet',
           'build_prompts', 'read_class_file', '__version__']
