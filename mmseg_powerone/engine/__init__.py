from .class_check_hook import ClassNamesCheckHook
from .infoscore_hook import InfoScoreHook
from .logger_hook import MainProcessLoggerHook
from .optim import TrainableParamsOptimWrapperConstructor

__all__ = ['ClassNamesCheckHook', 'InfoScoreHook', 'MainProcessLoggerHook',
           'TrainableParamsOptimWrapperConstructor']
