from .infoscore_hook import InfoScoreHook
from .logger_hook import MainProcessLoggerHook

__all__ = ['InfoScoreHook', 'MainProcessLoggerHook']
