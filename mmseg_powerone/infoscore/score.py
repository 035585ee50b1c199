"""InfoScore: rank attention layers without labels.

For each layer ``l`` and unlabeled image ``b``, ``m_{l,b}`` is the image's
class marginal: the class-normalised per-pixel map of that layer alone,
averaged over pixels. Then

* mean image entropy  ``Hbar_l = mean_b H(m_{l,b})``
* dataset entropy     ``Hdata_l = H(mean_b m_{l,b})``
* spread              ``CoV_l = sum_c std_b(m_{l,b,c}) / mean_b(m_{l,b,c})``
  (population std)
* ``InfoScore_l = (Hdata_l / Hbar_l) * CoV_l``; layers ranked by descending
  score.

A good layer commits to few classes in each image yet spreads over many
classes across the dataset. This module is the one implementation: the
hook, the CLI and the tests all use it.
"""
from typing import Dict, List

import torch
import torch.nn.functional as F

from ..models.utils.settings import check_topk

EPS = 1e-8


# The reference code clamps each pixel's class probabilities at this value
# before averaging them into a marginal (and every later quantity with it).
PIXEL_EPS = 1e-6


def class_marginals(maps: torch.Tensor, size, align_corners: bool) -> torch.Tensor:
    """Per-image, per-layer class marginals from ``layer_maps`` output: the
    maps upsampled to ``size``, normalised over classes, each probability
    clamped at ``PIXEL_EPS`` (as the reference code does), averaged over
    pixels.

    Args:
        maps: [B, L, C, h, w] per-layer class maps.
        size: (H, W) the maps are upsampled to before normalising.
    Returns:
        [B, L, C], each row (nearly) a distribution over classes.
    """
    B, L, C, h, w = maps.shape
    up = F.interpolate(maps.reshape(B * L, C, h, w).float(), size=tuple(size),
                       mode='bilinear', align_corners=align_corners)
    up = up / up.sum(dim=1, keepdim=True).clamp_min(PIXEL_EPS)
    return up.clamp_min(PIXEL_EPS).mean(dim=(2, 3)).view(B, L, C)


def entropy(p: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) over the last dim, probabilities clamped at
    eps."""
    p = p.clamp_min(EPS)
    return -(p * p.log()).sum(dim=-1)


class InfoScoreAccumulator:
    """Streaming InfoScore statistics over images, for all layers at once.

    Keeps, per layer, the number of images, the running mean and the sum of
    squared deviations of the marginals (Welford; shards and ranks merge
    with Chan's formula, so any chunking gives the same result), and the sum
    of image entropies. Float64 throughout.
    """

    def __init__(self, num_layers: int, num_classes: int):
        self.n = 0
        self.mean = torch.zeros(num_layers, num_classes, dtype=torch.float64)
        self.m2 = torch.zeros(num_layers, num_classes, dtype=torch.float64)
        self.entropy_sum = torch.zeros(num_layers, dtype=torch.float64)

    def update(self, marginals: torch.Tensor) -> None:
        """Add images' marginals, [B, L, C]."""
        m = marginals.detach().to('cpu', torch.float64).clamp_min(EPS)
        if not torch.isfinite(m).all():
            bad = (~torch.isfinite(m)).any(dim=2).any(dim=0).nonzero().flatten()
            raise ValueError(
                f'InfoScore got non-finite class maps for layer(s) '
                f'{bad.tolist()}; check the model weights and inputs.')
        b = m.shape[0]
        if b == 0:
            return
        self.entropy_sum += entropy(m).sum(dim=0)
        batch_mean = m.mean(dim=0)
        batch_m2 = ((m - batch_mean) ** 2).sum(dim=0)
        self._merge(b, batch_mean, batch_m2)

    def _merge(self, n_b, mean_b, m2_b):
        n_a = self.n
        n = n_a + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / n)
        self.m2 = self.m2 + m2_b + delta ** 2 * (n_a * n_b / n)
        self.n = n

    def merge(self, other: 'InfoScoreAccumulator') -> None:
        """Fold another accumulator's images into this one."""
        if other.n == 0:
            return
        self.entropy_sum += other.entropy_sum
        self._merge(other.n, other.mean, other.m2)

    def all_reduce(self) -> None:
        """Merge the accumulators of all distributed ranks (no-op when not
        distributed); every rank ends with the same statistics."""
        from mmengine.dist import all_gather, get_world_size
        if get_world_size() == 1:
            return
        state = torch.cat([torch.tensor([float(self.n)], dtype=torch.float64),
                           self.entropy_sum, self.mean.flatten(),
                           self.m2.flatten()])
        gathered = all_gather(state)
        L, C = self.mean.shape
        total = InfoScoreAccumulator(L, C)
        for s in gathered:
            s = s.cpu()
            part = InfoScoreAccumulator(L, C)
            part.n = int(round(float(s[0])))
            part.entropy_sum = s[1:1 + L].clone()
            part.mean = s[1 + L:1 + L + L * C].view(L, C).clone()
            part.m2 = s[1 + L + L * C:].view(L, C).clone()
            total.merge(part)
        self.__dict__.update(total.__dict__)

    def finalize(self, topk: int = 2) -> Dict:
        """Per-layer statistics, the ranking (best first) and the top-k."""
        if self.n == 0:
            raise ValueError('InfoScore needs at least one image; got zero. '
                             'Check that the dataloader yields images and '
                             'that num_images >= 1.')
        L = self.mean.shape[0]
        check_topk(topk, L)
        mean_image_entropy = self.entropy_sum / self.n
        dataset_entropy = entropy(self.mean)
        std = (self.m2 / self.n).clamp_min(0).sqrt()  # population std
        cov = (std / self.mean.clamp_min(EPS)).sum(dim=1)
        score = dataset_entropy / mean_image_entropy.clamp_min(EPS) * cov
        ranking: List[int] = sorted(range(L), key=lambda l: (-float(score[l]), l))
        return dict(
            layers=list(range(L)),
            infoscore=score.tolist(),
            mean_image_entropy=mean_image_entropy.tolist(),
            dataset_entropy=dataset_entropy.tolist(),
            cov=cov.tolist(),
            ranking=ranking,
            selected=sorted(ranking[:topk]),
            num_images=self.n)


def infoscore_batch(marginals: torch.Tensor, topk: int = 2) -> Dict:
    """InfoScore of all images at once, [N, L, C] (for small sets)."""
    acc = InfoScoreAccumulator(marginals.shape[1], marginals.shape[2])
    acc.update(marginals)
    return acc.finalize(topk)
