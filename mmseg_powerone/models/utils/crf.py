"""Convolutional CRF refinement of class probabilities, in plain torch.

A ConvCRF (Teichmann & Cipolla, 2019) is a fully connected CRF whose Gaussian
pairwise kernels are truncated to a ``filter_size`` window, so mean-field
inference is a local weighted sum that runs on any device without compiled
ops. Kernels and messages live on a grid downsampled ``blur`` times, which
keeps the window wide in image pixels and the cost low.

The defaults compute what the paper's reference code computes (its
``GaussCRF`` with its ``DEFAULT_CRF_CONF``); ``docs/en/reference_differences.md``
lists each setting and the older, classic-DenseCRF alternatives the
arguments still allow.
"""
import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor

IMAGE_SPACES = ('normalized', 'rgb')
UNARY_MODES = ('log_softmax', 'log')
FIRST_MESSAGES = ('unary', 'probs')


@MODELS.register_module()
class ConvCRF(nn.Module):
    """Mean-field inference of a Potts CRF with a smoothness and an
    appearance kernel, truncated to a ``filter_size`` window.

    Each kernel is a Gaussian of the distance between feature vectors,
    ``exp(-|f_i - f_j|^2 / 2)``, with features averaged over ``blur x blur``
    blocks:

    * smoothness: ``f = position / pos_sdims``, weight ``pos_compat``;
    * appearance: ``f = colour / col_schan`` (plus ``position / col_sdims``
      when ``col_sdims`` is set), weight ``col_compat``.

    Inference (``U`` the unary, ``M(q)`` the kernel-weighted sum of ``q``
    over each pixel's window, ``w = message_weight``)::

        U = log_softmax(probs)   (unary='log_softmax'; 'log': log(probs))
        q = U                    (first_message='unary'; 'probs': softmax(U))
        repeat iters times:
            q = (unary_weight - w) * U + w * M(q)    (w=None: unary_weight * U + M(q))
            q = softmax(q)

    Args:
        filter_size: window side on the downsampled grid (odd).
        blur: downsampling factor of the message-passing grid.
        iters: mean-field iterations; 0 returns the input unchanged.
        pos_sdims, pos_compat: width (pixels) and weight of the smoothness
            kernel.
        col_sdims: spatial width (pixels) of the appearance kernel; None
            (the reference's ``use_bias=False``) makes it depend on colour
            only, within the window.
        col_schan, col_compat: colour width (in the units of ``image``) and
            weight of the appearance kernel.
        image: which image the appearance kernel compares: 'normalized',
            the model input after the data preprocessor's mean/std (the
            reference; ``col_schan=0.1``), or 'rgb', colours 0..255 (classic
            DenseCRF settings use ``col_schan=13``).
        self_message: keep each pixel's message to itself (the reference
            does; classic mean field leaves it out).
        unary: 'log_softmax' of the probabilities (the reference) or their
            'log'.
        first_message: the first iteration passes messages of the unary
            itself ('unary', the reference) or of its softmax ('probs').
        message_weight: ``w`` of the update above (reference: 0.2); None
            adds the message unweighted.
        unary_weight: weight of the unary in the update (reference: 1).
    """

    def __init__(self,
                 filter_size: int = 15,
                 blur: int = 4,
                 iters: int = 20,
                 pos_sdims: float = 3.0,
                 pos_compat: float = 3.0,
                 col_sdims: Optional[float] = None,
                 col_schan: float = 0.1,
                 col_compat: float = 10.0,
                 image: str = 'normalized',
                 self_message: bool = True,
                 unary: str = 'log_softmax',
                 first_message: str = 'unary',
                 message_weight: Optional[float] = 0.2,
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
        widths = dict(pos_sdims=pos_sdims, col_schan=col_schan)
        if col_sdims is not None:
            widths['col_sdims'] = col_sdims
        for name, v in widths.items():
            if not v > 0:
                raise ValueError(f'ConvCRF {name}={v!r} must be positive.')
        for name, v, allowed in (('image', image, IMAGE_SPACES),
                                 ('unary', unary, UNARY_MODES),
                                 ('first_message', first_message,
                                  FIRST_MESSAGES)):
            if v not in allowed:
                raise ValueError(f'ConvCRF {name}={v!r}; use one of '
                                 f'{allowed}.')
        self.filter_size = filter_size
        self.blur = blur
        self.iters = iters
        self.pos_sdims = float(pos_sdims)
        self.pos_compat = float(pos_compat)
        self.col_sdims = None if col_sdims is None else float(col_sdims)
        self.col_schan = float(col_schan)
        self.col_compat = float(col_compat)
        self.image = image
        self.self_message = bool(self_message)
        self.unary = unary
        self.first_message = first_message
        self.message_weight = None if message_weight is None \
            else float(message_weight)
        self.unary_weight = float(unary_weight)

    # ------------------------------------------------------------ grid
    def _pads(self, H: int, W: int):
        """Symmetric padding of the block average, so that the downsampled
        grid has ceil(H / blur) x ceil(W / blur) cells."""
        b = self.blur
        return (math.ceil(((b - H % b) % b) / 2),
                math.ceil(((b - W % b) % b) / 2))

    def _downsample(self, x: Tensor) -> Tensor:
        """Average ``blur x blur`` blocks, padded cells left out of the
        average: [B, K, H, W] -> [B, K, ceil(H/blur), ceil(W/blur)]."""
        if self.blur == 1:
            return x
        return F.avg_pool2d(x, self.blur, padding=self._pads(*x.shape[2:]),
                            count_include_pad=False)

    def _upsample(self, x: Tensor, H: int, W: int) -> Tensor:
        """Bilinear back to the full grid, the downsampling's padding cut:
        [B, K, h, w] -> [B, K, H, W]."""
        if self.blur == 1:
            return x
        x = F.interpolate(x, scale_factor=self.blur, mode='bilinear',
                          align_corners=False)
        top, left = self._pads(H, W)
        return x[:, :, top:top + H, left:left + W]

    # ------------------------------------------------------------ kernel
    def _gaussian(self, feats: Tensor) -> Tensor:
        """``exp(-|f_i - f_j|^2 / 2)`` from every cell of the downsampled
        grid to each of its ``filter_size^2`` neighbours (0 off the grid).

        Args:
            feats: [B, F, H, W] full-resolution features.
        Returns:
            [B, k*k, h, w]
        """
        k, r = self.filter_size, self.filter_size // 2
        f = self._downsample(feats)  # [B, F, h, w]
        B, n, h, w = f.shape
        nb = F.unfold(f, k, padding=r).view(B, n, k * k, h, w)
        g = torch.exp(-0.5 * (nb - f[:, :, None]).pow(2).sum(1))
        inside = F.unfold(f.new_ones(1, 1, h, w), k, padding=r)
        return g * inside.view(1, k * k, h, w)

    def kernel(self, image: Tensor) -> Tensor:
        """Pairwise weights of the smoothness and appearance kernels
        together.

        Args:
            image: [B, 3, H, W] in the space ``self.image`` names.
        Returns:
            [B, k*k, h, w]
        """
        image = image.float()
        B, _, H, W = image.shape
        ys, xs = torch.meshgrid(
            torch.arange(H, dtype=image.dtype, device=image.device),
            torch.arange(W, dtype=image.dtype, device=image.device),
            indexing='ij')
        mesh = torch.stack([ys, xs]).expand(B, 2, H, W)  # [B, 2, H, W]
        col = image / self.col_schan
        if self.col_sdims is not None:
            col = torch.cat([mesh / self.col_sdims, col], 1)
        weights = self.pos_compat * self._gaussian(mesh / self.pos_sdims) \
            + self.col_compat * self._gaussian(col)
        if not self.self_message:
            weights[:, (self.filter_size ** 2) // 2] = 0
        return weights

    def _message(self, q: Tensor, weights: Tensor) -> Tensor:
        """Kernel-weighted sum of ``q`` over each cell's window, one window
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
            if o == (k * k) // 2 and not self.self_message:
                continue
            dy, dx = divmod(o, k)
            msg.addcmul_(padded[:, :, dy:dy + h, dx:dx + w],
                         weights[:, o:o + 1])
        return msg

    # ------------------------------------------------------------ inference
    def forward(self, probs: Tensor, image: Tensor) -> Tensor:
        """Refine class probabilities.

        Args:
            probs: [B, C, H, W], a distribution over classes per pixel.
            image: [B, 3, H, W] in the space ``self.image`` names.
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
        p = probs.float()
        unary = p.log_softmax(1) if self.unary == 'log_softmax' \
            else p.clamp_min(1e-8).log()
        weights = self.kernel(image)
        q = unary if self.first_message == 'unary' else unary.softmax(1)
        for _ in range(self.iters):
            msg = self._upsample(
                self._message(self._downsample(q), weights), H, W)
            if self.message_weight is None:
                q = self.unary_weight * unary + msg
            else:
                q = (self.unary_weight - self.message_weight) * unary \
                    + self.message_weight * msg
            q = q.softmax(1)
        return q.to(probs.dtype)

    def extra_repr(self) -> str:
        return (f'filter_size={self.filter_size}, blur={self.blur}, '
                f'iters={self.iters}, image={self.image!r}')
