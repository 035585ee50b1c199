from .hooks import (ClassNamesCheckHook, InfoScoreHook, MainProcessLoggerHook,
                    SavePredictionsHook)
from .optimizers import TrainableParamsOptimWrapperConstructor
from .runner import PowerOneRunner, build_runner

__all__ = ['ClassNamesCheckHook', 'InfoScoreHook', 'MainProcessLoggerHook',
           'PowerOneRunner', 'SavePredictionsHook',
           'TrainableParamsOptimWrapperConstructor', 'build_runner']
