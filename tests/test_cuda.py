"""The GPU path: the same code on CUDA, in fp32 and under autocast, for
inference, the standard tools and one-shot tuning. Skipped where no GPU is
visible (CI has none); on a GPU machine: ``python -m pytest tests/test_cuda.py``.
"""
import glob
import os

import pytest
import torch
from mmengine.config import Config

from helpers import final_weights, metrics_of, run, run_adapter
from test_adapters import build, images

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason='needs a CUDA GPU')
DTYPES = dict(bf16=torch.bfloat16, fp16=torch.float16)


@pytest.fixture(autouse=True)
def no_tf32():
    """TF32 products differ from fp32 ones at ~1e-3; the comparisons with
    the CPU are made in true fp32."""
    old = (torch.backends.cuda.matmul.allow_tf32,
           torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    yield
    (torch.backends.cuda.matmul.allow_tf32,
     torch.backends.cudnn.allow_tf32) = old


def maps_and_itm(model, x):
    """Class maps of the whole ensemble path and every layer's raw maps."""
    with torch.no_grad():
        seg = model.encode_decode(x)  # [B, C, H, W]
        tok = model.adapter.prompt_batch(model.prompts)
        out = model.adapter(x, tok, list(range(model.adapter.num_layers)))
    return seg, out['attn'], out['itm']


@pytest.mark.parametrize('map_mode', ['attention', 'gradcam'])
def test_cuda_maps_equal_cpu_maps(vlm_case, map_mode):
    model = build(vlm_case, map_mode=map_mode)
    x = images(2, 48)
    cpu = maps_and_itm(model, x)
    gpu = maps_and_itm(model.cuda(), x.cuda())
    for name, a, b in zip(('class maps', 'layer maps', 'itm'), cpu, gpu):
        assert b.is_cuda, name
        torch.testing.assert_close(b.cpu(), a, atol=1e-4, rtol=1e-4,
                                   msg=lambda m: f'{name}: {m}')


@pytest.mark.parametrize('map_mode', ['attention', 'gradcam'])
def test_cuda_throughput_paths_equal_cpu(vlm_case, map_mode):
    """The paths large batches take on a GPU: eight images in one text pass,
    an unread layer's attention through scaled_dot_product_attention (only
    the last layer read), slide windows batched: the CPU's results."""
    model = build(vlm_case, map_mode=map_mode, test_cfg=dict(
        mode='slide', crop_size=(32, 32), stride=(16, 16), window_batch=4))
    a = model.adapter
    x = images(8, 48, seed=3)
    tok = a.prompt_batch(model.prompts)
    last = [a.num_layers - 1]
    with torch.no_grad():
        cpu = run_adapter(a, x, tok, last, map_mode=map_mode)
        cpu_slide = model.inference(x[:2], [{}, {}])
        model.cuda()
        gpu = run_adapter(a, x.cuda(), tok, last, map_mode=map_mode)
        gpu_slide = model.inference(x[:2].cuda(), [{}, {}])
    for name in ('attn', 'itm'):
        torch.testing.assert_close(gpu[name].cpu(), cpu[name], atol=1e-4,
                                   rtol=1e-4)
    torch.testing.assert_close(gpu_slide.cpu(), cpu_slide, atol=1e-4, rtol=1e-4)


def test_cuda_graph_compiled_segmentor_equals_cpu(vlm_case):
    """compile=dict(mode='reduce-overhead'): inductor kernels replayed as
    CUDA graphs on the GPU, fp32, three calls (capture, then replays):
    the CPU eager path's seg logits each time."""
    import torch._dynamo
    torch._dynamo.reset()
    x = images(4, 48, seed=7)
    with torch.no_grad():
        cpu = build(vlm_case).encode_decode(x)
        model = build(vlm_case, compile=dict(mode='reduce-overhead')).cuda()
        for _ in range(3):
            torch.testing.assert_close(model.encode_decode(x.cuda()).cpu(),
                                       cpu, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize('amp', ['bf16', 'fp16'])
@pytest.mark.parametrize('map_mode', ['attention', 'gradcam'])
def test_autocast_inference_stays_close_to_fp32(vlm_case, map_mode, amp):
    model = build(vlm_case, map_mode=map_mode).cuda()
    x = images(2, 48).cuda()
    with torch.no_grad():
        full = model.encode_decode(x)
        with torch.autocast('cuda', dtype=DTYPES[amp]):
            half = model.encode_decode(x)
    assert half.shape == full.shape and torch.isfinite(half).all()
    torch.testing.assert_close(half.float(), full, atol=0.05, rtol=0)


def test_llava_auto_dtype_is_bf16_on_a_gpu_and_close_to_fp32(tiny_llava_dir):
    """The LLaVA config's torch_dtype='auto' loads bf16 weights when CUDA is
    there (7B in fp32 would not fit many cards); its maps stay close."""
    vlm = dict(type='LLaVAAdapter', pretrained=tiny_llava_dir)
    extra = dict(prompt_templates=['{}'])
    auto = build((dict(vlm, torch_dtype='auto'), extra)).cuda()
    full = build((dict(vlm, torch_dtype='float32'), extra)).cuda()
    assert auto.adapter.model.dtype == torch.bfloat16
    x = images(1, 48).cuda()
    with torch.no_grad():
        a, b = auto.encode_decode(x), full.encode_decode(x)
    assert torch.isfinite(a).all()
    torch.testing.assert_close(a.float(), b, atol=0.05, rtol=0)


def test_test_tool_runs_on_the_gpu_with_cpu_metrics(tiny_config, tmp_path):
    """tools/test.py puts the model on the GPU by itself; its mIoU equals
    the CPU run's (the same argmax up to float noise)."""
    gpu, cpu = str(tmp_path / 'gpu'), str(tmp_path / 'cpu')
    run(['tools/test.py', tiny_config, '--work-dir', gpu])
    run(['tools/test.py', tiny_config, '--work-dir', cpu],
        env=dict(os.environ, CUDA_VISIBLE_DEVICES=''))
    assert metrics_of(gpu)['mIoU'] == pytest.approx(metrics_of(cpu)['mIoU'],
                                                    abs=0.5)


@pytest.mark.parametrize('dtype', ['float16', 'bfloat16'])
def test_oneshot_tuning_with_amp_on_the_gpu(oneshot_config, tmp_path, dtype):
    """`tools/train.py --amp` tunes on the GPU with mixed precision: the
    tuned weights stay fp32, finite and moved; the tuned checkpoint tests."""
    work = str(tmp_path / 'train')
    run(['tools/train.py', oneshot_config, '--work-dir', work, '--amp',
         '--cfg-options', 'train_cfg.max_epochs=2',
         f'optim_wrapper.dtype={dtype}'])
    # mmengine's AmpOptimWrapper refuses to start without an accelerator
    dumped = Config.fromfile(glob.glob(os.path.join(work, '*.py'))[0])
    assert dumped.optim_wrapper.type == 'AmpOptimWrapper'
    assert dumped.optim_wrapper.dtype == dtype
    tuned = final_weights(work)
    emb = 'model.text_encoder.embeddings.word_embeddings.weight'
    assert tuned['vlm.' + emb].dtype == torch.float32
    assert all(torch.isfinite(v).all() for v in tuned.values()
               if v.is_floating_point())
    model = build((dict(type='BLIPAdapter',
                        pretrained=dumped.model.vlm.pretrained), {}))
    assert not torch.equal(tuned['vlm.' + emb], model.adapter.state_dict()[emb])
    test = str(tmp_path / 'test')
    run(['tools/test.py', oneshot_config, os.path.join(work, 'epoch_2.pth'),
         '--work-dir', test])
    assert 0 <= metrics_of(test)['mIoU'] <= 100
