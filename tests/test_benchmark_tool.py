"""tools/benchmark.py: the paths it compares compute the same maps, and it
runs end to end on a tiny geometry. Timing itself lives in the tool, never
in a test."""
import json
import os
import sys

import pytest
import torch

from helpers import REPO, run, run_adapter
from mmseg_powerone.commands.benchmark.baselines import naive_forward

CLASSES = ['sky, grass, tree', 'cat', 'dog, puppy, hound']


@pytest.mark.parametrize('mode', ['attention', 'gradcam'])
def test_naive_per_prompt_loop_gives_the_same_maps(build_segmentor, mode):
    seg = build_segmentor(map_mode=mode, multi_prompt=True)
    x = torch.randn(2, 3, 48, 64, generator=torch.Generator().manual_seed(0))
    tokens = seg.prompt_tokens()
    with torch.no_grad():
        ours = seg.vlm(x, tokens, [0, 1, 2])  # built in this mode
        naive = naive_forward(seg.adapter, tokens, x, [0, 1, 2],
                              map_mode=mode)
    assert ours['attn'].shape == naive['attn'].shape == (2, 3, 7, 12)
    torch.testing.assert_close(naive['attn'], ours['attn'], atol=1e-5, rtol=0)
    torch.testing.assert_close(naive['itm'], ours['itm'], atol=1e-5, rtol=0)


def test_bf16_autocast_runs_and_stays_close(build_segmentor):
    # the GPU path uses autocast; CPU bf16 checks the code has no dtype traps
    seg = build_segmentor(layers=[0, 2])
    x = torch.randn(1, 3, 32, 48, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = seg.encode_decode(x)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            half = seg.encode_decode(x)
    assert half.shape == full.shape and torch.isfinite(half).all()
    torch.testing.assert_close(half.float(), full, atol=0.05, rtol=0)


@pytest.mark.slow
def test_benchmark_runs_end_to_end_on_a_tiny_geometry(tmp_path):
    out = tmp_path / 'bench'
    printed = run(['tools/benchmark.py', '--vlm', 'tiny', '--size', '64',
                   '--prompts', '1', '49', '200', '--batch', '1', '4',
                   '--repeat', '1', '--out', str(out)])
    with open(out / 'benchmark.json') as f:
        result = json.load(f)
    keys = {(r['mode'], r['prompts'], r['batch']) for r in result['rows']}
    assert ('gradcam', 49, 4) in keys and ('attention', 200, 1) in keys
    (ratios, ) = result['ratios']
    for name in ('attention_vs_floor', 'text_p49_vs_p1', 'gradcam_vs_floor',
                 'p200_peak_gib', 'batch4_vs_batch1_throughput',
                 'naive_vs_ours', 'attention_vs_arith_floor_max',
                 'gradcam_vs_arith_floor_max'):
        assert ratios[name] > 0, name
    assert ratios['p200_chunked_vs_whole_max_diff'] < 1e-5
    assert 'attention_vs_floor' in printed
    assert (out / 'benchmark.md').read_text().count('target') == 7
    for r in result['rows']:
        if 'ours_s' in r:  # every measured setting has its arithmetic floor
            assert r['gflop'] > 0 and r['arith_floor_s'] > 0
            assert r['ours_vs_arith_floor'] == pytest.approx(
                r['ours_s'] / r['arith_floor_s'])


@pytest.mark.parametrize('mode', ['attention', 'gradcam'])
def test_required_flops_are_counted_on_the_real_modules(build_segmentor, mode):
    """The arithmetic floor's FLOPs: the vision side linear in the images,
    the text side too except its image-free first self-attention (counted
    once), GradCAM's include its backward, 'max' counts the padding it
    reads, and never exceed what our path does for the same maps (counted
    the same way)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode
    from mmseg_powerone.commands.benchmark.baselines import required_flops
    # 'kitten' and 'potted plant' are several word pieces: padded prompts
    seg = build_segmentor(map_mode=mode, multi_prompt=True, class_names=[
        'sky, grass', 'cat, kitten', 'dog, potted plant'])
    x = torch.randn(2, 3, 48, 64, generator=torch.Generator().manual_seed(0))
    tokens = seg.prompt_tokens()
    one = required_flops(seg.adapter, tokens, x[:1], [0, 1, 2], mode)
    two = required_flops(seg.adapter, tokens, x, [0, 1, 2], mode)
    assert two['vision'] == 2 * one['vision'] > 0
    assert one['text'] < two['text'] < 2 * one['text']
    # our path counted the same way (attention products through the
    # math backend, which the counter sees)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        run_adapter(seg.adapter, x, tokens, [0, 1, 2], itm_reduce='max_real')
    assert two['vision'] + two['text'] <= counter.get_total_flops()
    assert (tokens['attention_mask'] == 0).any(), 'fixture must have padding'
    padded = required_flops(seg.adapter, tokens, x, [0, 1, 2], mode, 'max')
    assert padded['vision'] == two['vision'] and padded['text'] > two['text']
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        run_adapter(seg.adapter, x, tokens, [0, 1, 2], itm_reduce='max')
    assert padded['vision'] + padded['text'] <= counter.get_total_flops()
    if mode == 'gradcam':
        forward_only = required_flops(seg.adapter, tokens, x, [0, 1, 2],
                                      'attention')
        assert two['text'] > forward_only['text']


def test_required_flops_count_fused_attention_products(build_segmentor):
    """Attention products run by a fused ``scaled_dot_product_attention``
    kernel are counted (torch's counter gives the CPU kernel zero FLOPs):
    the vision side equals a count by hand of BLIP's vision encoder, and
    the text side's cross-attention products are there whichever layers
    are read (a read layer computes its scores explicitly, the others
    through SDPA)."""
    from mmseg_powerone.commands.benchmark.baselines import required_flops
    seg = build_segmentor()
    adapter, tokens = seg.adapter, seg.prompt_tokens()
    x = torch.randn(1, 3, 48, 64, generator=torch.Generator().manual_seed(0))
    cfg = adapter.model.config
    D, I = cfg.vision_config.hidden_size, cfg.vision_config.intermediate_size
    p = adapter.patch_size
    N = (48 // p) * (64 // p) + 1
    per_layer = 2 * N * (3 * D * D + D * D + 2 * D * I) + 4 * N * N * D
    patch = 2 * (N - 1) * 3 * p * p * D
    Dt = cfg.text_config.hidden_size
    kv = adapter.num_layers * 2 * 2 * N * D * Dt
    flops = required_flops(adapter, tokens, x, [0], 'attention', 'max')
    assert flops['vision'] == \
        cfg.vision_config.num_hidden_layers * per_layer + patch + kv
    # reading another layer moves its products from SDPA to explicit
    # matmuls: the same count either way
    assert required_flops(adapter, tokens, x, [0, 1, 2], 'attention',
                          'max')['text'] == flops['text']


def test_benchmark_rejects_bad_arguments(tmp_path):
    import subprocess
    proc = subprocess.run([sys.executable, 'tools/benchmark.py', '--prompts',
                           '0'], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2 and '--prompts values must be positive' \
        in proc.stderr


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc heap')
def test_peak_memory_does_not_count_what_an_earlier_setting_freed():
    """Small freed blocks stay in glibc's heap and in the RSS; PeakMemory
    hands them back first, so a later block is measured on its own."""
    from mmseg_powerone.commands.benchmark import timing as benchmark
    before = benchmark.PeakMemory.rss()
    chunks = [torch.ones(16 * 1024) for _ in range(8 * 1024)]  # 512 MiB in 64 KiB
    grown = benchmark.PeakMemory.rss() - before
    del chunks
    with benchmark.PeakMemory('cpu') as mem:
        pass
    assert grown > 400 * 2**20
    assert mem.peak - before < grown / 4


@pytest.mark.slow
def test_adapt_benchmark_runs_and_reports_equal_weights(tmp_path):
    """`tools/benchmark.py --adapt`: adapt() beside the config route on the
    embedded world's draw 0 (timing is printed, never asserted)."""
    from mmseg_powerone.commands.benchmark import benchmark
    out = tmp_path / 'out'
    result = benchmark(['--adapt', '--data-root', str(tmp_path / 'shapes'),
                        '--out', str(out)])
    assert result['same_weights'] is True
    assert result['adapt_seconds'] > 0 and result['config_route_seconds'] > 0
    assert 'same tuned weights: yes' in (out / 'adapt.md').read_text()


@pytest.mark.slow
def test_dataset_benchmark_runs_the_test_tool_path(tmp_path):
    """`tools/benchmark.py --dataset`: a generated VOC-layout folder through
    the VOC21 paper config with dataloader workers, beside the model alone
    (rates are printed, never asserted)."""
    from mmseg_powerone.commands.benchmark import benchmark, write_voc_folder
    voc = write_voc_folder(str(tmp_path / 'voc'), 3, (50, 40))
    names = open(os.path.join(voc, 'ImageSets', 'Segmentation',
                              'val.txt')).read().split()
    assert names == ['000000', '000001', '000002']
    result = benchmark(['--dataset', '--vlm', 'tiny', '--num-images', '3',
                        '--image-size', '50', '40', '--workers', '1',
                        '--batch', '2', '--repeat', '1', '--out',
                        str(tmp_path / 'out')])
    assert result['dataset_images_per_s'] > 0
    assert result['model_images_per_s'] > 0
    assert 0 <= result['mIoU'] <= 100
    assert 'ratio whole dataset / model alone' in \
        (tmp_path / 'out' / 'dataset.md').read_text()


def test_benchmark_compile_flag_builds_compiled_segmentors(tmp_path):
    """--compile MODE builds the measured segmentor with
    compile=dict(mode=MODE): every module the adapter lists is compiled."""
    from mmseg_powerone.commands.benchmark import build, parse_args, save_model
    assert parse_args(['--compile', 'reduce-overhead']).compile == \
        'reduce-overhead'
    model_dir = save_model('tiny', 64, str(tmp_path))
    seg = build(model_dir, 21, 'attention', 64, False, 'cpu',
                compile_mode='default')
    assert all(m._compiled_call_impl is not None
               for m in seg.adapter.compile_targets())
    plain = build(model_dir, 21, 'attention', 64, False, 'cpu')
    assert all(m._compiled_call_impl is None
               for m in plain.adapter.compile_targets())


def test_gpu_check_script_is_ready_to_run(tmp_path):
    """tools/gpu_check.sh (run where a GPU is lent): valid bash, every step
    with a time limit, and every benchmark command parses. Run with a fake
    python on CPU, it writes its summary and goes through every step."""
    import re
    import subprocess
    from mmseg_powerone.commands.benchmark import parse_args
    path = os.path.join(REPO, 'tools', 'gpu_check.sh')
    subprocess.run(['bash', '-n', path], check=True)
    text = open(path).read().replace('\\\n', ' ')
    commands = re.findall(r'^step (\S+) (\d+) (.*)$', text, re.M)
    assert [c[0] for c in commands] == ['test_cuda', 'sweep', 'compiled',
                                        'dataset']
    assert sum(int(c[1]) for c in commands) <= 8 * 60
    for _, _, command in commands:
        words = command.split()
        if 'tools/benchmark.py' in words:
            argv = words[words.index('tools/benchmark.py') + 1:]
            parse_args([w.replace('"$OUT', str(tmp_path)).strip('"')
                        for w in argv])
    fake = tmp_path / 'python'
    fake.write_text('#!/bin/sh\necho "$@"\n')
    fake.chmod(0o755)
    out = tmp_path / 'out'
    subprocess.run(['bash', path, str(out)], check=True, capture_output=True,
                   env=dict(os.environ, PYTHON=str(fake)))
    summary = (out / 'summary.txt').read_text().splitlines()
    assert [line.split()[0] for line in summary] == [
        'test_cuda', 'sweep', 'compiled', 'dataset']
    assert all('rc=0' in line for line in summary)
    assert '--dataset' in (out / 'dataset.log').read_text()
