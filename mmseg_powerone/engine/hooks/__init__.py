from .class_check_hook import ClassNamesCheckHook
from .infoscore_hook import InfoScoreHook
from .logger_hook import MainProcessLoggerHook
from .save_predictions_hook import SavePredictionsHook

__all__ = ['ClassNamesCheckHook', 'InfoScoreHook', 'MainProcessLoggerHook',
           'SavePredictionsHook']
