"""InfoScore, the label-free ranking of attention layers: the score
(``score``), one pass of a segmentor over a dataloader that ranks its layers
and the analyses beside it (``analysis``), and the one table and plot
writer (``report``)."""
from .score import (EPS, PIXEL_EPS, InfoScoreAccumulator, class_marginals,
                    entropy, infoscore_batch)

__all__ = ['EPS', 'PIXEL_EPS', 'InfoScoreAccumulator', 'class_marginals',
           'entropy', 'infoscore_batch']
