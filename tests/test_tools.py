"""The method through mmengine's Runner: our tools/test.py and mmseg's stock
tools/test.py (shipped in the mmseg wheel) on a few generated images."""
import glob
import os
import re
import subprocess
import sys

import cv2
import pytest

from helpers import REPO, dist_env, metrics_of, run

CLASSES = ('background', 'cat', 'dog')


@pytest.mark.slow
def test_our_test_tool_prints_miou_table(tiny_config, tmp_path):
    work = str(tmp_path / 'work')
    out = run(['tools/test.py', tiny_config, '--work-dir', work,
               '--out', str(tmp_path / 'preds')])
    assert 'per class results' in out
    for name in CLASSES:
        assert re.search(rf'\|\s+{name}\s+\|', out), name
    m = metrics_of(work)
    assert 0.0 <= m['mIoU'] <= 100.0
    preds = sorted(os.listdir(tmp_path / 'preds'))
    assert len(preds) == 6  # every image, grayscale/RGBA/16-bit included
    pred = cv2.imread(str(tmp_path / 'preds' / preds[0]), cv2.IMREAD_UNCHANGED)
    assert pred.shape == (64, 64) and pred.max() < len(CLASSES)


@pytest.mark.slow
def test_stock_mmseg_test_tool_with_exported_checkpoint(tiny_config, tmp_path):
    import mmseg
    stock = os.path.join(os.path.dirname(mmseg.__file__), '.mim', 'tools',
                         'test.py')
    assert os.path.isfile(stock)
    ckpt = str(tmp_path / 'training_free.pth')
    run(['tools/export_checkpoint.py', tiny_config, ckpt])
    assert os.path.getsize(ckpt) < 100_000  # no VLM weights inside
    # Run from another directory: the plugin loads through custom_imports.
    ours_work, stock_work = str(tmp_path / 'ours'), str(tmp_path / 'stock')
    out = run([stock, tiny_config, ckpt, '--work-dir', stock_work],
              cwd=str(tmp_path))
    assert 'per class results' in out
    assert 'missing keys' not in out
    run(['tools/test.py', tiny_config, '--work-dir', ours_work])
    assert metrics_of(stock_work)['mIoU'] == metrics_of(ours_work)['mIoU']


@pytest.mark.slow
def test_dist_test_two_processes_match_one(tiny_config, tmp_path):
    env = dist_env()
    two, one = str(tmp_path / 'two'), str(tmp_path / 'one')
    proc = subprocess.run(
        ['bash', 'tools/dist_test.sh', tiny_config, 'none', '2',
         '--work-dir', two], cwd=REPO, env=env, capture_output=True,
        text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    run(['tools/test.py', tiny_config, '--work-dir', one])
    assert metrics_of(two)['mIoU'] == metrics_of(one)['mIoU']


@pytest.mark.parametrize('main', [True, False])
def test_only_the_main_process_dumps_test_metrics(tmp_path, monkeypatch, main):
    # Every rank dumping into one {timestamp}.json can corrupt it.
    from unittest import mock
    from mmseg_powerone.engine.hooks import logger_hook
    monkeypatch.setattr(logger_hook, 'is_main_process', lambda: main)
    runner = mock.MagicMock(log_dir=str(tmp_path))
    runner.log_processor.get_log_after_epoch.return_value = (
        {'mIoU': 12.5}, 'mIoU: 12.5')
    hook = logger_hook.MainProcessLoggerHook()
    hook.json_log_path = 'metrics.json'
    hook.after_test_epoch(runner, {'mIoU': 12.5})
    written = os.path.exists(tmp_path / 'metrics.json')
    assert written == main


def test_voc21_config_has_the_reference_settings():
    # Building it needs the real BLIP-large weights; its settings are checked.
    from mmengine.config import Config
    from mmseg_powerone.class_names import build_prompts
    cfg = Config.fromfile(os.path.join(
        REPO, 'configs/powerone/powerone_blip-large_zeroshot_voc21.py'))
    assert cfg.model.vlm.pretrained == 'Salesforce/blip-itm-large-coco'
    assert cfg.model.layers == [0, 3] and cfg.model.itm_reduce == 'max'
    prompts = build_prompts(cfg.model.class_names,
                            cfg.model.prompt_templates, cfg.model.multi_prompt)
    assert (prompts.num_classes, prompts.num_prompts) == (21, 49)
    # the reference's geometry, its IoU grid and its CRF
    steps = [t.type for t in cfg.test_dataloader.dataset.pipeline]
    assert steps == ['LoadImageFromFile', 'LoadAnnotations',
                     'ResizeLongestEdgePad', 'PackSegInputs']
    resize = cfg.test_dataloader.dataset.pipeline[2]
    assert (resize.size, resize.size_divisor) == (512, 8)
    assert 'img_padding_size' in cfg.test_dataloader.dataset.pipeline[3].meta_keys
    assert cfg.model.test_cfg.pred_grid == 'input'
    assert cfg.model.crf == dict(type='ConvCRF', iters=20)
    assert cfg.train_dataloader is None
    assert 'mmseg_powerone' in cfg.custom_imports.imports


@pytest.mark.parametrize('name', [
    'zeroshot_voc21', 'zeroshot-multiprompt_voc21', 'zeroshot_coco-object',
    'zeroshot-multiprompt_coco-object', 'oneshot-protocol_voc21',
    'oneshot-protocol_coco-object'])
def test_paper_configs_use_the_reference_protocol(name):
    from mmengine.config import Config
    cfg = Config.fromfile(os.path.join(
        REPO, f'configs/powerone/powerone_blip-large_{name}.py'))
    assert cfg.model.test_cfg.pred_grid == 'input'
    assert cfg.model.crf.type == 'ConvCRF' and cfg.model.crf.iters == 20
    assert cfg.model.itm_reduce == 'max'
    sides = [cfg.test_dataloader.dataset]
    if 'oneshot' in name:
        sides = [cfg.test_dataloader.dataset.dataset,
                 cfg.train_dataloader.dataset.dataset]
        # two supports per step, one loss over both: no accumulation
        assert cfg.train_dataloader.batch_size == 2
        assert cfg.optim_wrapper.accumulative_counts == 1
        assert cfg.train_dataloader.sampler.shuffle is False
        # the reference's lists: VOC SegmentationClassAug, COCO-2014 val
        seg = sides[0].data_prefix.seg_map_path
        assert seg == ('SegmentationClassAug' if 'voc' in name
                       else 'val_contain_crowd')
        assert sides[0].ann_file.startswith('lists/')
    for ds in sides:
        steps = [t.type for t in ds.pipeline]
        assert steps == ['LoadImageFromFile', 'LoadAnnotations',
                         'ResizeLongestEdgePad', 'PackSegInputs']


def test_voc21_oneshot_config_has_the_reference_schedule():
    from mmengine.config import Config
    cfg = Config.fromfile(os.path.join(
        REPO, 'configs/powerone/powerone_blip-large_oneshot_voc21.py'))
    assert cfg.optim_wrapper.optimizer == dict(type='AdamW', lr=2e-4,
                                               weight_decay=0.05)
    assert cfg.optim_wrapper.accumulative_counts == 2
    assert cfg.train_cfg.max_epochs == 5
    assert cfg.model.train_cfg == dict(tune_embeddings='all',
                                       background_weight=0.5)
    wrapper = cfg.train_dataloader.dataset
    assert wrapper.type == 'OneShotDataset' and wrapper.shots == 1
    assert wrapper.dataset.type == 'PascalVOCDataset'
    assert wrapper.dataset.ann_file.endswith('train.txt')
    steps = [t.type for t in wrapper.dataset.pipeline]
    assert steps.index('LoadAnnotations') < steps.index('Resize')
    assert cfg.model.layers == 'infoscore'
    assert dict(type='InfoScoreHook', num_images=100,
                dataloader='test') in cfg.custom_hooks


def test_quickstart_table_has_a_column_per_vlm_and_seed():
    from mmseg_powerone.commands import quickstart

    def result(vlm, seed, layers, miou):
        return dict(vlm=vlm, seed=seed, presence_auroc={'mean': 0.9},
                    infoscore=dict(layers=layers, selected=layers[:2],
                                   per_layer_miou=[miou] * len(layers),
                                   spearman=0.5),
                    zeroshot_miou=miou, zeroshot_no_itm_miou=miou - 1,
                    background_miou=12.6,
                    oneshot=dict(draws=[dict(train_seconds=20.0)] * 2,
                                 summary={'mIoU': {'mean': miou + 10,
                                                   'std': 1.0}}))

    md = quickstart.table([result('BLIP', 0, [0, 1, 2], 30.0),
                           result('BLIP', 1, [0, 1, 2], 31.0),
                           result('ALBEF', 0, [0, 1], 25.0)])
    lines = md.splitlines()
    assert lines[0] == '| | BLIP seed 0 | BLIP seed 1 | ALBEF seed 0 |'
    assert all(line.count('|') == 5 for line in lines)
    assert '| mIoU, attention layer 2 alone | 30.0 | 31.0 | — |' in lines
    assert any(l.startswith('| **one-shot top-2 mIoU**') and
               l.endswith('| **40.0 ± 1.0** | **41.0 ± 1.0** | **35.0 ± 1.0** |')
               for l in lines)


def test_quickstart_prints_one_table_per_vlm():
    """--vlms blip albef llava: a table per VLM under its name, each with
    its own matching score named; one VLM alone: its table only."""
    from mmseg_powerone.commands import quickstart

    def result(vlm, seed):
        return dict(vlm=vlm, seed=seed, presence_auroc={'mean': 0.9},
                    infoscore=dict(layers=[0, 1], selected=[0, 1],
                                   per_layer_miou=[30.0, 31.0], spearman=0.5),
                    zeroshot_miou=30.0, zeroshot_no_itm_miou=20.0,
                    background_miou=12.6, oneshot=None)

    runs = [result(v, s) for v in ('BLIP', 'ALBEF', 'LLaVA') for s in (0, 1)]
    md = quickstart.tables(runs)
    parts = md.split('\n\n')
    assert parts[0::2] == ['**Tiny BLIP**', '**Tiny ALBEF**', '**Tiny LLaVA**']
    for part, vlm in zip(parts[1::2], ('BLIP', 'ALBEF', 'LLaVA')):
        lines = part.splitlines()
        assert lines[0] == f'| | {vlm} seed 0 | {vlm} seed 1 |'
        assert all(line.count('|') == 4 for line in lines)  # no stray '|'
    assert 'P(yes) to "Is there a {name} in the image?' in parts[5]
    assert 'without re-weighting by the matching score' in parts[5]
    assert 'ITM("Image of {name}.")' in parts[1]
    assert quickstart.tables(runs[:2]) == quickstart.table(runs[:2])
    assert quickstart.parse_args(['--vlms', 'llava']).vlms == ['llava']
    with pytest.raises(SystemExit):
        quickstart.parse_args(['--vlms', 'clip'])


def oneshot_eval_module():
    from mmseg_powerone.commands import oneshot_eval
    return oneshot_eval


def test_oneshot_eval_forks_only_with_a_cpu_only_torch(monkeypatch):
    """A GPU build may have touched CUDA while importing (is_available()
    does), after which a forked child's CUDA fails: seen on an H100 with
    'Cannot re-initialize CUDA in forked subprocess'."""
    import torch
    oneshot_eval = oneshot_eval_module()
    monkeypatch.setattr(sys, 'platform', 'linux')
    monkeypatch.setattr(torch.version, 'cuda', None)
    monkeypatch.setattr(torch.version, 'hip', None, raising=False)
    assert oneshot_eval.can_fork()
    monkeypatch.setattr(torch.cuda, 'is_initialized', lambda: True)
    assert oneshot_eval.fork_problem() == 'this process has initialised CUDA'
    monkeypatch.undo()
    monkeypatch.setattr(sys, 'platform', 'linux')
    monkeypatch.setattr(torch.version, 'cuda', '13.0')
    assert 'built for GPUs (13.0)' in oneshot_eval.fork_problem()
    monkeypatch.setattr(sys, 'platform', 'darwin')
    assert oneshot_eval.fork_problem() == 'forking needs Linux'


def test_oneshot_eval_runs_draws_in_threads_without_fork(monkeypatch,
                                                        tmp_path):
    """Where forks are out (GPU torch, --fresh-processes), --jobs runs draws
    side by side in threads: results in seed order; a failing draw exits
    with its error and the draws not yet started never start."""
    import threading
    import time
    from types import SimpleNamespace
    oneshot_eval = oneshot_eval_module()
    monkeypatch.setattr(oneshot_eval, 'can_fork', lambda: False)
    started, active, peak = [], [0], [0]
    lock = threading.Lock()

    def fake_draw(args, seed, work):
        with lock:
            started.append(seed)
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.2)
        with lock:
            active[0] -= 1
        if seed == args.fail:
            sys.exit(f'[oneshot_eval] training draw {seed} failed (boom)')
        return dict(seed=seed)

    monkeypatch.setattr(oneshot_eval, 'run_draw', fake_draw)
    args = SimpleNamespace(first_seed=3, draws=4, jobs=2, fail=None,
                           fresh_processes=False)
    draws = oneshot_eval.run_draws(args, str(tmp_path))
    assert [d['seed'] for d in draws] == [3, 4, 5, 6]
    assert peak[0] == 2
    started.clear()
    args = SimpleNamespace(first_seed=0, draws=6, jobs=2, fail=0,
                           fresh_processes=True)
    with pytest.raises(SystemExit, match='training draw 0 failed'):
        oneshot_eval.run_draws(args, str(tmp_path))
    assert 5 not in started


@pytest.mark.parametrize('text,value', [
    ("['sky', 'square shape']", ['sky', 'square shape']),
    ("['A photo of {}.']", ['A photo of {}.']),
    ('[A photo of {}., b c]', ['A photo of {}.', 'b c']),
    ("'x y'", 'x y'),
    ('[0,3]', [0, 3]), ('0,3', [0, 3]), ('(1,2)', (1, 2)),
    ('[a,b]', ['a', 'b']), ('infoscore', 'infoscore'), ('true', True),
    ('None', None), ('1e-3', 1e-3), ('[[0,1],[2]]', [[0, 1], [2]]),
    ('data/shapes_seed1', 'data/shapes_seed1'),
])
def test_cfg_options_values_keep_their_spaces(text, value):
    """mmengine's DictAction deletes every space and quote of a list value
    ('square shape' became 'squareshape'); ours keeps them and reads bare
    values as mmengine does."""
    from mmseg_powerone.commands.cli import cfg_options_dict, parse_cfg_value
    assert parse_cfg_value(text) == value
    assert cfg_options_dict([f'model.x={text}']) == {'model.x': value}


@pytest.mark.slow
def test_cfg_options_with_spaces_reach_the_model(tiny_config, tmp_path):
    """A template and a class name with spaces, through tools/test.py: the
    run uses them as written."""
    out = run(['tools/test.py', tiny_config, '--work-dir', str(tmp_path),
               '--cfg-options', "model.prompt_templates=['A photo of {}.']",
               "model.class_names=['sky, grass', 'cat', 'dog house']"])
    assert 'mIoU' in out
    dumped = glob.glob(str(tmp_path / '*' / 'vis_data' / 'config.py')) or \
        glob.glob(str(tmp_path / '*.py'))
    text = open(dumped[0]).read()
    assert "'A photo of {}.'" in text and "'dog house'" in text


def test_cfg_options_item_without_value_says_how_to_quote():
    from mmseg_powerone.commands.cli import cfg_options_dict
    with pytest.raises(SystemExit):
        cfg_options_dict(["model.prompt_templates=['A", 'photo'])


@pytest.mark.slow
def test_a_second_run_on_a_busy_work_dir_stops_naming_the_first(tiny_config,
                                                                 tmp_path):
    """Two runs on one work dir (started in the same second they shared
    mmengine's record folder): while one holds it, the next stops at once
    and names it; once it is free, runs proceed."""
    import subprocess
    import sys
    from mmseg_powerone.engine.run_guards import work_dir_lock
    work = str(tmp_path / 'w')
    with work_dir_lock(work):
        proc = subprocess.run(
            [sys.executable, 'tools/test.py', tiny_config, '--work-dir', work],
            cwd=REPO, capture_output=True, text=True, timeout=600)
        assert proc.returncode != 0
        assert f'work_dir {work} is in use by another run (pid {os.getpid()}' \
            in proc.stderr
        assert not [d for d in os.listdir(work) if d[:2] == '20']  # no record
    assert 'mIoU' in run(['tools/test.py', tiny_config, '--work-dir', work])


@pytest.mark.parametrize('fault', ['plain', 'inside_config_formatting'])
def test_ctrl_c_says_interrupted(fault, capsys):
    """Ctrl-C ends a tool with one line and exit code 130, also when it
    lands in mmengine's config formatting during a checkpoint save (which
    turned it into "SyntaxError: Failed to format the config file" and the
    whole config)."""
    from mmseg_powerone.commands.cli import interruptible

    def save_checkpoint():
        try:
            raise KeyboardInterrupt
        except:  # noqa: E722  (what mmengine's Config.pretty_text does)
            if fault == 'plain':
                raise
            raise SyntaxError('Failed to format the config file, please '
                              'check the syntax of: \n model = dict(...)')

    with pytest.raises(SystemExit) as e:
        with interruptible('Training'):
            save_checkpoint()
    assert e.value.code == 130
    err = capsys.readouterr().err
    assert 'Training interrupted (Ctrl-C)' in err and 'model = dict' not in err
    with pytest.raises(SyntaxError):  # a real syntax error still surfaces
        with interruptible('Training'):
            raise SyntaxError('Failed to format the config file')


TOOLS = ['benchmark', 'convert_coco_object', 'demo', 'distill',
         'export_checkpoint', 'make_shapes', 'oneshot_eval', 'pretrain_vlm',
         'pseudo_label', 'quickstart', 'rank_layers', 'reproduce_table',
         'test', 'train']


# Where each tool's usage text lives (a tool is a thin CLI over its
# command): the command module's docstring, or the constant named here.
TOOL_DOCS = {'train': 'TRAIN_DOC', 'test': 'TEST_DOC'}


def tool_doc(tool):
    import importlib
    import inspect

    from mmseg_powerone.commands import COMMANDS
    module = importlib.import_module(COMMANDS[tool].split(':')[0])
    return inspect.cleandoc(getattr(module, TOOL_DOCS.get(tool, '__doc__')))


def test_every_tool_is_a_command():
    """tools/NAME.py and ``python -m mmseg_powerone.commands NAME`` are one
    command (a wheel has no tools/ folder)."""
    from mmseg_powerone.commands import COMMANDS
    tools = sorted(f[:-3] for f in os.listdir(os.path.join(REPO, 'tools'))
                   if f.endswith('.py'))
    assert tools == sorted(TOOLS) == sorted(COMMANDS)
    for tool in tools:
        module, function = COMMANDS[tool].split(':')
        text = open(os.path.join(REPO, 'tools', f'{tool}.py')).read()
        assert f'from {module} import {function}' in text, tool


def _help(argv, monkeypatch, capsys, script=None):
    """What ``--help`` prints, run in this process: ``tools/NAME.py`` as a
    script (``script``), else ``python -m mmseg_powerone.commands``."""
    import runpy
    import sys

    from mmseg_powerone.commands import main
    with pytest.raises(SystemExit) as exit_:
        if script:
            monkeypatch.setattr(sys, 'argv', [script] + argv)
            runpy.run_path(script, run_name='__main__')
        else:
            main(argv)
    assert exit_.value.code in (0, None)
    return capsys.readouterr().out


@pytest.mark.parametrize('tool', TOOLS)
def test_help_is_whole_and_shows_defaults(tool, monkeypatch, capsys):
    """Every tool's --help: its whole description (no sentence cut after
    the first line), and a help text and default for every option; the
    package's command of that name prints the same."""
    path = os.path.join(REPO, 'tools', f'{tool}.py')
    out = _help(['--help'], monkeypatch, capsys, script=path)
    assert out.startswith(f'usage: {tool}.py'), out[:200]
    assert ' '.join(tool_doc(tool).split()) in ' '.join(out.split()), tool
    # the same command, as a wheel user starts it; the same text after the
    # usage lines (whose wrapping follows the program's name)
    same = _help([tool, '--help'], monkeypatch, capsys)
    assert same.startswith(f'usage: python -m mmseg_powerone.commands {tool}')
    assert same.split('\n\n', 1)[1] == out.split('\n\n', 1)[1], tool
    if tool != 'reproduce_table':  # positional arguments only
        assert '(default: ' in out, out


@pytest.mark.slow
def test_runs_say_what_they_use(oneshot_config, tmp_path):
    """A one-shot training logs the supports it drew and the classes and
    layers it runs with; InfoScore logs its progress."""
    out = run(['tools/train.py', oneshot_config, '--work-dir',
               str(tmp_path / 'w'), '--cfg-options', 'train_cfg.max_epochs=1',
               'model.layers=[0,2]'])
    assert re.search(r'OneShotDataset \(seed 0\): supports cat: \S+\.png, '
                     r'dog: \S+\.png', out), out[-3000:]
    assert "train: 3 classes ['sky', 'cat', 'dog'], 4 prompts, layers [0, 2]" \
        in out


@pytest.mark.slow
def test_infoscore_logs_progress(tiny_config, tmp_path):
    cfg = tmp_path / 'infoscore.py'
    cfg.write_text(f"_base_ = [{tiny_config!r}]\nmodel = dict(layers='infoscore')\n"
                   "custom_hooks = [dict(type='InfoScoreHook', num_images=6)]\n")
    out = run(['tools/test.py', str(cfg), '--work-dir', str(tmp_path / 'w')])
    assert 'InfoScore: 2/6 images' in out and 'InfoScore: 6/6 images' in out


def test_run_tool_echoes_progress_lines(capsys):
    from mmseg_powerone.commands.processes import run_tool
    run_tool(['test', '--help'], 'test', echo='usage:')
    printed = capsys.readouterr().out
    assert printed.startswith('usage: ') and 'CHECKPOINT' not in printed


@pytest.mark.slow
def test_commands_run_in_a_fresh_interpreter_without_a_checkout(tmp_path):
    """The commands the draw protocol starts are the package's, not files
    under tools/: they run from any folder."""
    import subprocess
    import sys
    out = subprocess.run(
        [sys.executable, '-m', 'mmseg_powerone.commands', 'train',
         '--help'], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert 'Train a segmentor' in out.stdout
    bad = subprocess.run(
        [sys.executable, '-m', 'mmseg_powerone.commands', 'nope'],
        cwd=tmp_path, capture_output=True, text=True)
    assert bad.returncode != 0 and "unknown command 'nope'" in bad.stderr
    listing = subprocess.run(
        [sys.executable, '-m', 'mmseg_powerone.commands', '--help'],
        cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert 'make_shapes' in listing and 'oneshot_eval' in listing


def test_oneshot_schedule_combines_with_another_runtime(tmp_path):
    """A user's config on mmseg's own runtime base plus our one-shot
    schedule (it used to bring our runtime along: "Duplicate key is not
    allowed among bases")."""
    from mmengine.config import Config
    cfg = tmp_path / 'mine.py'
    cfg.write_text(f"""
_base_ = [
    'mmseg::_base_/default_runtime.py',
    {os.path.join(REPO, 'configs/_base_/schedules/oneshot_5passes.py')!r},
    {os.path.join(REPO, 'configs/_base_/models/powerone_blip-tiny.py')!r},
]
""")
    c = Config.fromfile(str(cfg))
    assert c.optim_wrapper.optimizer.lr == 2e-4 and c.train_cfg.max_epochs == 5
    assert 'default_hooks' not in c  # hooks come from the user's bases
