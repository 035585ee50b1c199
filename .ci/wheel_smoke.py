"""CI: the installed wheel works outside the checkout.

Run from an empty folder with a venv that has the wheel installed (not
editable). Checks that the package, its configs, class-name files and tiny
checkpoints came with the wheel: ``PowerOneInferencer()`` with call-time
names on a generated shapes image, a test run (what ``tools/test.py``
does) of a config named the way ``mmseg::`` configs are, pseudo-labels
for a student, and the tools as ``python -m mmseg_powerone.commands``.
"""
import os
import sys

import numpy as np

import mmseg_powerone
from mmengine.config import Config
from mmseg_powerone.apis import PowerOneInferencer
from mmseg_powerone.shapes.dataset import write_dataset
from mmseg_powerone.shapes.world import render
from mmseg_powerone.engine import build_runner
from mmseg_powerone.utils.resources import load_config

here = os.path.abspath(os.getcwd())
package = os.path.dirname(os.path.abspath(mmseg_powerone.__file__))
assert 'site-packages' in package and not package.startswith(here), package
print('package:', package)

# Call-time names on a generated image, with the embedded tiny BLIP.
# (layers: the InfoScore top-2 that the quickstart reports for it)
img, label, objects, _ = render(seed=7, split='val', index=0)
out = PowerOneInferencer(layers=[0, 2])(
    img, classes=['circle', 'star', 'triangle'])
pred = out['predictions']
assert pred.shape == label.shape, (pred.shape, label.shape)
assert set(np.unique(pred)) <= {0, 1, 2, 3}, np.unique(pred)
print('PowerOneInferencer(): predictions', pred.shape,
      'classes present', sorted(int(c) for c in np.unique(pred)))

# tools/test.py's steps on a package-scoped config name: as our tools read
# it (load_config), and as mmengine itself resolves it in a user's config
# that inherits from it (``_base_``), the way ``mmseg::`` names work.
write_dataset('data/shapes', seed=0, num_train=1, num_val=8)
NAME = 'mmseg_powerone::powerone/powerone_blip-tiny_zeroshot_shapes.py'
with open('my_config.py', 'w') as f:
    f.write(f"_base_ = ['{NAME}']\n"
            "custom_hooks = [dict(type='InfoScoreHook', num_images=8)]\n")
results = []
for cfg in (load_config(NAME), Config.fromfile('my_config.py')):
    cfg.work_dir = os.path.join(here, 'work_dirs', f'smoke{len(results)}')
    cfg.custom_hooks = [dict(type='InfoScoreHook', num_images=8)]
    metrics = build_runner(cfg).test()
    print('test metrics:', metrics)
    if not 0 < metrics['mIoU'] <= 100:
        sys.exit(f'unexpected mIoU {metrics["mIoU"]}')
    results.append(metrics['mIoU'])
assert results[0] == results[1], results

# Pseudo-labels for a student (what tools/pseudo_label.py runs), from the
# wheel's command module, with the shipped teacher and student configs.
import json
import subprocess
proc = subprocess.run(
    [sys.executable, '-m', 'mmseg_powerone.commands', 'pseudo_label',
     NAME, '--out', 'pseudo', '--data-config',
     'mmseg_powerone::distill/distill_segformer-mit-tiny_blip-tiny_shapes.py',
     '--cfg-options', 'model.layers=[0,2]'], capture_output=True, text=True)
assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
with open(os.path.join('pseudo', 'pseudo_labels.json')) as f:
    record = json.load(f)
assert record['status'] == 'complete' and len(record['images']) == 1, record
print('pseudo-labels:', record['kept'])

# Every tool is a command of the wheel (which has no tools/ folder), run
# as docs/en/get_started.md tells a wheel user: the world's data, test,
# train, the one-shot draws, layer ranking, the demo.
def command(*args):
    proc = subprocess.run([sys.executable, '-m', 'mmseg_powerone.commands',
                           *args], capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f'{args[0]}: {out[-4000:]}'
    print(f'python -m mmseg_powerone.commands {args[0]}: ok')
    return out


listing = command('--help')
assert 'make_shapes' in listing and 'oneshot_eval' in listing, listing
command('make_shapes', '--out', 'data/world', '--num-train', '60',
        '--num-val', '4')
ONESHOT = 'mmseg_powerone::powerone/powerone_blip-tiny_oneshot_shapes.py'
WORLD = ['train_dataloader.dataset.dataset.data_root=data/world',
         'test_dataloader.dataset.data_root=data/world']
out = command('test', NAME, '--work-dir', 'work_dirs/cmd_test',
              '--cfg-options', 'model.layers=[0,2]')
assert 'mIoU' in out, out[-2000:]
command('train', ONESHOT, '--work-dir', 'work_dirs/cmd_train',
        '--cfg-options', 'train_cfg.max_epochs=1', *WORLD)
assert os.path.isfile('work_dirs/cmd_train/epoch_1.pth')
command('oneshot_eval', ONESHOT, '--draws', '1', '--work-dir',
        'work_dirs/cmd_draws', '--cfg-options', 'train_cfg.max_epochs=1',
        *WORLD)
assert os.path.isfile('work_dirs/cmd_draws/oneshot_eval.json')
command('rank_layers', NAME, '--num-images', '4', '--out',
        'work_dirs/cmd_rank', '--cfg-options',
        'test_dataloader.dataset.data_root=data/world')
assert os.path.isfile('work_dirs/cmd_rank/infoscore.json')
command('demo', 'data/world/img_dir/val/00000.png', '--classes',
        'circle, star', '--out', 'work_dirs/cmd_demo')
assert os.listdir('work_dirs/cmd_demo')
print('wheel smoke test passed')
