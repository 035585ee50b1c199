from .infoscore_hook import InfoScoreHook
from .logger_hook import MainProcessLoggerHook
from .optim import TrainableParamsOptimWrapperConstructor

__all__ = ['InfoScoreHook', 'MainProcessLoggerHook',
           'TrainableParamsOptimWrapperConstructor']
