"""ConvCRF: the basic properties of a CRF refinement, and its use in the
segmentor."""
import pytest
import torch

from mmseg_powerone.models.crf import ConvCRF


def two_colour_image(H=64, W=64, edge=32):
    img = torch.zeros(1, 3, H, W)
    img[:, :, :, :edge] = 40.0
    img[:, :, :, edge:] = 220.0
    return img


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
    out = ConvCRF()(probs, torch.full((1, 3, 48, 40), 128.0))
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
    img = torch.rand(2, 3, 37, 29) * 255
    out = ConvCRF(iters=3)(probs, img)
    assert out.shape == probs.shape
    one = ConvCRF(iters=3)(probs[1:], img[1:])
    assert torch.allclose(out[1:], one, atol=1e-6)


@pytest.mark.parametrize('kwargs,match', [
    (dict(filter_size=4), 'odd'), (dict(blur=0), 'blur'),
    (dict(iters=-1), 'iters'), (dict(col_schan=0), 'col_schan')])
def test_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ConvCRF(**kwargs)


def test_size_mismatch_is_an_error():
    with pytest.raises(ValueError, match='differ'):
        ConvCRF()(torch.rand(1, 2, 8, 8), torch.rand(1, 3, 8, 9))


def test_segmentor_refines_test_time_probabilities_only(build_segmentor):
    dp = dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
              std=[58.395, 57.12, 57.375], bgr_to_rgb=True)
    plain = build_segmentor(layers=[0, 1], data_preprocessor=dp)
    crf = build_segmentor(layers=[0, 1], data_preprocessor=dp,
                          crf=dict(type='ConvCRF', iters=5))
    torch.manual_seed(0)
    x = torch.randn(1, 3, 64, 64)
    p0, p1 = plain.encode_decode(x), crf.encode_decode(x)
    assert not torch.allclose(p0, p1)
    expected = crf.crf(p0, x * plain.data_preprocessor.std +
                       plain.data_preprocessor.mean)
    assert torch.allclose(p1, expected, atol=1e-6)
    crf.train()  # the one-shot loss sees the unrefined ensemble
    assert torch.allclose(crf.encode_decode(x), p0, atol=1e-6)
