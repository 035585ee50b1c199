"""How long ``PowerOneInferencer.adapt`` takes beside the same training
through tools/train.py (``tools/benchmark.py --adapt``)."""
import json
import os
import tempfile
import time

import torch

from ...utils import atomic_write
from ...utils.report import markdown_table

ONESHOT_CONFIG = 'mmseg_powerone::powerone/powerone_blip-tiny_oneshot_shapes.py'
SHAPES = ['circle', 'square', 'triangle', 'star', 'cross', 'ring']


def adapt_benchmark(args, device_name):
    """Seconds of ``adapt()`` (inferencer built, examples read, tuned, the
    tuned inferencer built) on the embedded world's one-shot draw 0, beside
    the config route's training of the same draw, in one process; and
    whether their weights are equal."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS

    from ...shapes.dataset import write_dataset
    from ...apis.inferencer import PowerOneInferencer
    from ..train_test import train
    if not os.path.isdir(os.path.join(args.data_root, 'img_dir', 'train')):
        write_dataset(args.data_root, 0, 500, 200)
    init_default_scope('mmseg')
    supports = DATASETS.build(dict(
        type='OneShotDataset', shots=1, seed=0, dataset=dict(
            type='SyntheticShapesDataset', data_root=args.data_root,
            data_prefix=dict(img_path='img_dir/train',
                             seg_map_path='ann_dir/train'), pipeline=[])))
    examples = [(supports.get_data_info(i)['img_path'],
                 supports.get_data_info(i)['seg_map_path'])
                for i in range(len(supports))]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        tuned = PowerOneInferencer(layers=[0, 2], device=args.device).adapt(
            examples, classes=SHAPES)
        adapt_s = time.perf_counter() - start
        start = time.perf_counter()
        train([ONESHOT_CONFIG, '--work-dir', tmp, '--cfg-options',
               f'train_dataloader.dataset.dataset.data_root={args.data_root}',
               'model.layers=[0,2]', 'custom_hooks=[]'])
        route_s = time.perf_counter() - start
        route = torch.load(os.path.join(tmp, 'epoch_5.pth'),
                           map_location='cpu', weights_only=True)
    ours = tuned._adaptation[0]['state_dict']
    same = all(torch.equal(v, ours[k])
               for k, v in route['state_dict'].items()
               if k != '_extra_state')
    table = markdown_table(
        ['', 'seconds'],
        [['adapt(): inferencer, 6 examples, 5 passes, tuned inferencer',
          f'{adapt_s:.1f}'],
         ['config route: tools/train.py on the same draw', f'{route_s:.1f}'],
         ['ratio adapt / config route', f'{adapt_s / route_s:.2f}']])
    text = (f'Device: {device_name}; torch {torch.__version__}, '
            f'{torch.get_num_threads()} threads. Embedded world (seed 0), '
            'one-shot draw 0, the tiny BLIP, layers [0, 2].\n\n' + table +
            f'\n\nsame tuned weights: {"yes" if same else "NO"}\n')
    os.makedirs(args.out, exist_ok=True)
    with atomic_write(os.path.join(args.out, 'adapt.json'), 'w') as f:
        json.dump(dict(device=device_name, adapt_seconds=adapt_s,
                       config_route_seconds=route_s, same_weights=same), f,
                  indent=2)
    with atomic_write(os.path.join(args.out, 'adapt.md'), 'w') as f:
        f.write(text)
    print()
    print(text, end='')
    return dict(adapt_seconds=adapt_s, config_route_seconds=route_s,
                same_weights=same)
