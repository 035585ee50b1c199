"""ConvCRF: the reference code's equations on hand-made inputs, the basic
properties of a CRF refinement, and its use in the segmentor."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmseg_powerone.models.utils.crf import ConvCRF


def two_colour_image(H=64, W=64, edge=32):
    """Two flat colours, in the normalised space the default CRF compares."""
    img = torch.zeros(1, 3, H, W)
    img[:, :, :, :edge] = -1.5
    img[:, :, :, edge:] = 1.2
    return img


# The old kernel (classic DenseCRF settings, no self-message, log unary,
# unweighted update) as arguments: a case the reference's equations tell
# apart from it.
OLD = dict(col_sdims=80.0, col_schan=13.0, image='rgb', self_message=False,
           unary='log', first_message='probs', message_weight=None)


def test_one_pixel_by_hand():
    """A single pixel only messages itself, with weight pos_compat +
    col_compat = 13 (both Gaussians are exp(0)). By the reference's rule:
    U = log_softmax(p), q0 = U, q1 = softmax(0.8 U + 0.2 * 13 * q0),
    q2 = softmax(0.8 U + 0.2 * 13 * q1)."""
    p = [0.7, 0.3]
    lse = math.log(math.exp(0.7) + math.exp(0.3))
    U = [v - lse for v in p]

    def softmax(v):
        e = [math.exp(x) for x in v]
        return [x / sum(e) for x in e]

    q1 = softmax([0.8 * u + 2.6 * u for u in U])
    q2 = softmax([0.8 * u + 2.6 * q for u, q in zip(U, q1)])
    probs = torch.tensor(p).view(1, 2, 1, 1)
    img = torch.zeros(1, 3, 1, 1)
    for iters, want in ((1, q1), (2, q2)):
        out = ConvCRF(iters=iters, blur=1, filter_size=3)(probs, img)
        assert out.flatten().tolist() == pytest.approx(want, abs=1e-6)
    # the old kernel drops the self-message: the input comes back unchanged
    old = ConvCRF(iters=2, blur=1, filter_size=3, **OLD)(probs, img)
    assert old.flatten().tolist() == pytest.approx(p, abs=1e-6)
    assert q2 != pytest.approx(p, abs=1e-3)


def dense_reference(probs, img, iters, filter_size):
    """The reference's mean field written pixel by pair of pixels (blur 1):
    k(i, j) = 3 exp(-|p_i - p_j|^2 / 18) + 10 exp(-|I_i - I_j|^2 / 0.02)
    for j in i's window, itself included; U = log_softmax(probs); q = U;
    q = softmax(0.8 U + 0.2 sum_j k(i, j) q_j) ``iters`` times."""
    _, C, H, W = probs.shape
    r = filter_size // 2
    U = probs[0].log_softmax(0)  # [C, H, W]
    q = U.clone()
    for _ in range(iters):
        msg = torch.zeros_like(q)
        for y in range(H):
            for x in range(W):
                for y2 in range(max(0, y - r), min(H, y + r + 1)):
                    for x2 in range(max(0, x - r), min(W, x + r + 1)):
                        d2 = (y - y2) ** 2 + (x - x2) ** 2
                        c2 = float(((img[0, :, y, x] - img[0, :, y2, x2]) ** 2).sum())
                        k = 3 * math.exp(-d2 / 18) + 10 * math.exp(-c2 / 0.02)
                        msg[:, y, x] += k * q[:, y2, x2]
        q = (0.8 * U + 0.2 * msg).softmax(0)
    return q[None]


def test_matches_the_reference_equations_pixel_by_pixel():
    torch.manual_seed(0)
    probs = torch.rand(1, 3, 6, 5).softmax(1)
    img = torch.zeros(1, 3, 6, 5)
    img[:, :, :, 3:] = 0.08  # an edge the colour kernel half-respects
    img += 0.02 * torch.randn(1, 3, 6, 5)
    want = dense_reference(probs, img, iters=3, filter_size=3)
    got = ConvCRF(iters=3, blur=1, filter_size=3)(probs, img)
    assert torch.allclose(got, want, atol=1e-5)
    old = ConvCRF(iters=3, blur=1, filter_size=3, **OLD)(probs, img)
    assert not torch.allclose(old, want, atol=1e-2)


def test_blur_averages_blocks_and_interpolates_back():
    """With blur 2 on a 5 x 5 image the grid is 3 x 3: blocks padded by one
    row/column on each side, padding left out of the averages; messages
    come back by bilinear upsampling (half-pixel centres) with that
    padding cut."""
    torch.manual_seed(1)
    probs = torch.rand(1, 2, 5, 5).softmax(1)
    img = 0.05 * torch.randn(1, 3, 5, 5)
    crf = ConvCRF(iters=1, blur=2, filter_size=3)
    pooled = F.avg_pool2d(probs.log_softmax(1), 2, padding=1,
                          count_include_pad=False)  # [1, 2, 3, 3]
    assert crf._downsample(probs.log_softmax(1)).shape[2:] == (3, 3)
    assert torch.allclose(crf._downsample(probs.log_softmax(1)), pooled)
    up = F.interpolate(pooled, scale_factor=2, mode='bilinear',
                       align_corners=False)[:, :, 1:6, 1:6]
    assert torch.allclose(crf._upsample(pooled, 5, 5), up)
    msg = crf._upsample(crf._message(pooled, crf.kernel(img)), 5, 5)
    U = probs.log_softmax(1)
    assert torch.allclose(crf(probs, img), (0.8 * U + 0.2 * msg).softmax(1),
                          atol=1e-6)


def soft_boundary(H=64, W=64, at=38.0, width=4.0):
    """Two classes whose probabilities cross at column ``at``, softly."""
    x = torch.arange(W, dtype=torch.float32)
    right = torch.sigmoid((x - at) / width).view(1, 1, 1, W).expand(1, 1, H, W)
    return torch.cat([1 - right, right], 1)


def test_zero_iterations_is_a_no_op():
    probs = soft_boundary()
    out = ConvCRF(iters=0)(probs, two_colour_image())
    assert out is probs


def test_keeps_a_uniform_colour_region_uniform():
    torch.manual_seed(0)
    # noisy probabilities that favour class 1 on average, one flat colour
    probs = torch.tensor([0.3, 0.45, 0.25]).view(1, 3, 1, 1) + \
        0.2 * torch.rand(1, 3, 48, 40)
    probs = probs / probs.sum(1, keepdim=True)
    assert probs.argmax(1).unique().numel() > 1  # noisy before
    out = ConvCRF()(probs, torch.full((1, 3, 48, 40), 0.3))
    assert out.argmax(1).unique().tolist() == [1]
    assert torch.allclose(out.sum(1), torch.ones(1, 48, 40), atol=1e-5)


def test_sharpens_to_image_edges():
    probs, img = soft_boundary(at=38.0), two_colour_image(edge=32)
    truth = torch.zeros(64, 64, dtype=torch.long)
    truth[:, 32:] = 1
    before = (probs.argmax(1)[0] != truth).sum().item()
    out = ConvCRF()(probs, img)
    after = (out.argmax(1)[0] != truth).sum().item()
    assert before == 7 * 64 and after == 0  # columns 32..38 were wrong
    # the refined boundary is sharp: near-certain on both sides of the edge
    assert out[0, 1, :, 33].min() > 0.99 and out[0, 0, :, 30].min() > 0.99


def test_edges_stop_the_smoothing():
    """Without the appearance kernel the same input is only smoothed, not
    moved to the colour edge."""
    probs, img = soft_boundary(at=38.0), two_colour_image(edge=32)
    out = ConvCRF(col_compat=0.0)(probs, img)
    assert (out.argmax(1)[0, :, 32:38] == 0).all()


def test_sizes_not_divisible_by_blur_and_batches():
    probs = torch.rand(2, 4, 37, 29).softmax(1)
    img = torch.randn(2, 3, 37, 29)
    out = ConvCRF(iters=3)(probs, img)
    assert out.shape == probs.shape
    one = ConvCRF(iters=3)(probs[1:], img[1:])
    assert torch.allclose(out[1:], one, atol=1e-6)


@pytest.mark.parametrize('kwargs,match', [
    (dict(filter_size=4), 'odd'), (dict(blur=0), 'blur'),
    (dict(iters=-1), 'iters'), (dict(col_schan=0), 'col_schan'),
    (dict(col_sdims=0), 'col_sdims'), (dict(image='bgr'), 'image'),
    (dict(unary='probs'), 'unary'), (dict(first_message='x'), 'first_message')])
def test_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ConvCRF(**kwargs)


def test_size_mismatch_is_an_error():
    with pytest.raises(ValueError, match='differ'):
        ConvCRF()(torch.rand(1, 2, 8, 8), torch.rand(1, 3, 8, 9))


def _dp():
    return dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
                std=[58.395, 57.12, 57.375], bgr_to_rgb=True)


@pytest.mark.parametrize('image', ['normalized', 'rgb'])
def test_segmentor_refines_test_time_probabilities_only(build_segmentor,
                                                        image):
    """The CRF sees the model input (reference) or the colours 0..255, as
    its ``image`` says; the one-shot loss sees the unrefined ensemble."""
    plain = build_segmentor(layers=[0, 1], data_preprocessor=_dp())
    crf = build_segmentor(layers=[0, 1], data_preprocessor=_dp(),
                          crf=dict(type='ConvCRF', iters=5, image=image))
    torch.manual_seed(0)
    x = torch.randn(1, 3, 64, 64)
    p0, p1 = plain.encode_decode(x), crf.encode_decode(x)
    assert not torch.allclose(p0, p1)
    dp = plain.data_preprocessor
    seen = x if image == 'normalized' else x * dp.std + dp.mean
    assert torch.allclose(p1, crf.crf(p0, seen), atol=1e-6)
    other = x * dp.std + dp.mean if image == 'normalized' else x
    assert not torch.allclose(p1, crf.crf(p0, other), atol=1e-4)
    crf.train()  # the one-shot loss sees the unrefined ensemble
    assert torch.allclose(crf.encode_decode(x), p0, atol=1e-6)
