"""Convolutional CRF refinement of class probabilities (DESIGN.md section 1,
"optional CRF refinement"), in plain torch.

A ConvCRF (Teichmann & Cipolla, 2019) is a fully connected CRF whose Gaussian
pairwise kernels are truncated to a ``filter_size`` window, so mean-field
inference is a local weighted sum that runs on any device without compiled
ops. Messages are passed on a grid downsampled ``blur`` times, as in the
original, which keeps the window wide in image pixels and the cost low.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class ConvCRF(nn.Module):
    """Mean-field inference of a Potts CRF with an appearance and a
    smoothness kernel, both truncated to a ``filter_size`` window.

    Pairwise weight between pixels i and j (positions p in input pixels,
    colours I in 0..255):

    * smoothness: ``pos_compat * exp(-|p_i - p_j|^2 / (2 pos_sdims^2))``;
    * appearance: ``col_compat * exp(-|p_i - p_j|^2 / (2 col_sdims^2)
      - |I_i - I_j|^2 / (2 col_schan^2))``.

    Each iteration adds to the log-probabilities (times ``unary_weight``)
    the kernel-weighted probabilities of the neighbours, so similar nearby
    pixels pull towards the same class and colour edges stop them.

    Args:
        filter_size: window side on the downsampled grid (odd).
        blur: downsampling factor of the message-passing grid.
        iters: mean-field iterations; 0 returns the input unchanged.
        pos_sdims, pos_compat, col_sdims, col_schan, col_compat: kernel
            widths (pixels, colour levels) and weights; the defaults are the
            reference code's.
        unary_weight: weight of the input log-probabilities.
    """

    def __init__(self,
                 filter_size: int = 15,
                 blur: int = 4,
                 iters: int = 20,
                 pos_sdims: float = 3.0,
                 pos_compat: float = 3.0,
                 col_sdims: float = 80.0,
                 col_schan: float = 13.0,
                 col_compat: float = 10.0,
                 unary_weight: float = 1.0):
        super().__init__()
        if not isinstance(filter_size, int) or filter_size < 1 \
                or filter_size % 2 == 0:
            raise ValueError(f'ConvCRF filter_size={filter_size!r} must be a '
                             'positive odd integer (reference: 15).')
        if not isinstance(blur, int) or blur < 1:
            raise ValueError(f'ConvCRF blur={blur!r} must be a positive '
                             'integer (reference: 4).')
        if not isinstance(iters, int) or iters < 0:
            raise ValueError(f'ConvCRF iters={iters!r} must be >= 0 '
                             '(reference: 20; 0 turns the CRF off).')
        for name, v in dict(pos_sdims=pos_sdims, col_sdims=col_sdims,
                            col_schan=col_schan).items():
            if not v > 0:
                raise ValueError(f'ConvCRF {name}={v!r} must be positive.')
        self.filter_size = filter_size
        self.blur = blur
        self.iters = iters
        self.pos_sdims = float(pos_sdims)
        self.pos_compat = float(pos_compat)
        self.col_sdims = float(col_sdims)
        self.col_schan = float(col_schan)
        self.col_compat = float(col_compat)
        self.unary_weight = float(unary_weight)

    def _downsample(self, x: Tensor) -> Tensor:
        """Average ``blur x blur`` blocks (edges replicated to fill the last
        block): [B, K, H, W] -> [B, K, ceil(H/blur), ceil(W/blur)]."""
        b = self.blur
        if b == 1:
            return x
        H, W = x.shape[2:]
        pad_h, pad_w = (-H) % b, (-W) % b
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode='replicate')
        return F.avg_pool2d(x, b)

    def kernel(self, image: Tensor) -> Tensor:
        """Pairwise weights of every pixel of the downsampled grid to each
        of its ``filter_size^2`` neighbours (0 for itself and off-image).

        Args:
            image: [B, 3, H, W], colours in 0..255.
        Returns:
            [B, k*k, h, w]
        """
        k, r = self.filter_size, self.filter_size // 2
        img = self._downsample(image.float())  # [B, 3, h, w]
        B, _, h, w = img.shape
        offs = torch.arange(-r, r + 1, device=img.device,
                            dtype=img.dtype) * self.blur
        dist2 = (offs[:, None] ** 2 + offs[None, :] ** 2).reshape(-1)  # [k*k]
        pos = self.pos_compat * torch.exp(-dist2 / (2 * self.pos_sdims ** 2))
        col_space = torch.exp(-dist2 / (2 * self.col_sdims ** 2))
        nb = F.unfold(img, k, padding=r).view(B, 3, k * k, h, w)
        diff2 = (nb - img[:, :, None]).pow(2).sum(1)  # [B, k*k, h, w]
        col = self.col_compat * col_space.view(1, -1, 1, 1) * torch.exp(
            -diff2 / (2 * self.col_schan ** 2))
        weights = col + pos.view(1, -1, 1, 1)
        ones = img.new_ones(1, 1, h, w)
        inside = F.unfold(ones, k, padding=r).view(1, k * k, h, w)
        weights = weights * inside
        weights[:, (k * k) // 2] = 0  # no message to itself
        return weights

    def _message(self, q: Tensor, weights: Tensor) -> Tensor:
        """Kernel-weighted sum of the neighbours' probabilities, one window
        offset at a time (memory stays at a few [B, C, h, w] tensors).

        Args:
            q: [B, C, h, w]; weights: [B, k*k, h, w] from :meth:`kernel`.
        Returns:
            [B, C, h, w]
        """
        k, r = self.filter_size, self.filter_size // 2
        h, w = q.shape[2:]
        padded = F.pad(q, (r, r, r, r))
        msg = torch.zeros_like(q)
        for o in range(k * k):
            if o == (k * k) // 2:
                continue  # no message to itself
            dy, dx = divmod(o, k)
            msg.addcmul_(padded[:, :, dy:dy + h, dx:dx + w],
                         weights[:, o:o + 1])
        return msg

    def forward(self, probs: Tensor, image: Tensor) -> Tensor:
        """Refine class probabilities.

        Args:
            probs: [B, C, H, W], a distribution over classes per pixel.
            image: [B, 3, H, W], colours in 0..255.
        Returns:
            refined probabilities, [B, C, H, W]
        """
        if probs.shape[0] != image.shape[0] or \
                probs.shape[2:] != image.shape[2:]:
            raise ValueError(
                f'ConvCRF: probabilities {tuple(probs.shape)} and image '
                f'{tuple(image.shape)} differ in batch or size.')
        if self.iters == 0:
            return probs
        H, W = probs.shape[2:]
        unary = self.unary_weight * probs.float().clamp_min(1e-8).log()
        weights = self.kernel(image)
        q = unary.softmax(1)
        for _ in range(self.iters):
            msg = self._message(self._downsample(q), weights)  # [B, C, h, w]
            if self.blur > 1:
                h, w = msg.shape[2:]
                msg = F.interpolate(msg, size=(h * self.blur, w * self.blur),
                                    mode='bilinear', align_corners=False)
                msg = msg[:, :, :H, :W]
            q = (unary + msg).softmax(1)
        return q.to(probs.dtype)

    def extra_repr(self) -> str:
        return (f'filter_size={self.filter_size}, blur={self.blur}, '
                f'iters={self.iters}')
