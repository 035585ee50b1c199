from .infoscore_hook import InfoScoreHook

__all__ = ['InfoScoreHook']
