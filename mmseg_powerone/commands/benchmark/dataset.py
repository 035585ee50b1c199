"""A dataset config end to end (loading, the model, the metric) against the
model alone, on a VOC-layout folder of random images
(``tools/benchmark.py --dataset``)."""
import json
import os
import tempfile
import time

import torch

from ...utils import atomic_write
from ...utils.report import markdown_table
from .models import save_model
from .timing import timed

VOC_CONFIG = 'mmseg_powerone::powerone/powerone_blip-large_zeroshot_voc21.py'


def write_voc_folder(root: str, num_images: int, size, seed: int = 0) -> str:
    """A VOC2012-layout folder of ``num_images`` JPEGs (``size`` = W, H) with
    random label maps over the 21 classes: what the whole-dataset run
    reads. Returns the VOC2012 folder."""
    import cv2
    import numpy as np
    voc = os.path.join(root, 'VOC2012')
    for sub_dir in ('JPEGImages', 'SegmentationClass',
                    os.path.join('ImageSets', 'Segmentation')):
        os.makedirs(os.path.join(voc, sub_dir), exist_ok=True)
    rng = np.random.default_rng(seed)
    w, h = size
    names = []
    for i in range(num_images):
        name = f'{i:06d}'
        coarse = rng.integers(0, 255, (h // 25 + 1, w // 25 + 1, 3),
                              dtype=np.uint8)
        img = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR)
        label = np.zeros((h, w), np.uint8)
        y, x = rng.integers(0, h // 2), rng.integers(0, w // 2)
        label[y:y + h // 3, x:x + w // 3] = rng.integers(1, 21)
        cv2.imwrite(os.path.join(voc, 'JPEGImages', name + '.jpg'), img)
        cv2.imwrite(os.path.join(voc, 'SegmentationClass', name + '.png'),
                    label)
        names.append(name)
    with open(os.path.join(voc, 'ImageSets', 'Segmentation', 'val.txt'),
              'w') as f:
        f.write('\n'.join(names) + '\n')
    return voc


def dataset_benchmark(args, device_name):
    """Images/s of ``tools/test.py``'s path over a generated VOC-sized
    folder (the VOC21 paper config: reference geometry, CRF, IoU), beside
    the model alone (``encode_decode`` at the same batch size), in one
    run."""
    from ...engine.runner import build_runner
    from ...utils.resources import load_config
    vlm, batch = args.vlm[0], max(args.batch)
    with tempfile.TemporaryDirectory() as tmp:
        print(f'== {args.num_images} JPEGs of {args.image_size[0]} x '
              f'{args.image_size[1]}; BLIP-{vlm} geometry (random weights)',
              flush=True)
        voc = write_voc_folder(tmp, args.num_images, args.image_size)
        model_dir = save_model(vlm, 512, os.path.join(tmp, 'model'))
        cfg = load_config(VOC_CONFIG)
        cfg.model.vlm.pretrained = model_dir
        if args.compile:
            cfg.model.compile = dict(mode=args.compile)
        cfg.work_dir = os.path.join(tmp, 'work')
        loader = cfg.test_dataloader
        loader.dataset.data_root = voc
        loader.batch_size = batch
        loader.num_workers = args.workers
        loader.persistent_workers = args.workers > 0
        if args.amp:
            cfg.test_cfg = dict(type='TestLoop', fp16=True)
        cfg.default_hooks.logger.interval = 50
        runner = build_runner(cfg)
        start = time.perf_counter()
        metrics = runner.test()
        dataset_s = time.perf_counter() - start
        seg = runner.model
        x = torch.randn(batch, 3, 512, 512, device=next(seg.parameters()).device)
        model_s, _ = timed(lambda: seg.encode_decode(x), args.repeat,
                           x.device, args.amp)
    dataset_ips = args.num_images / dataset_s
    model_ips = batch / model_s
    table = markdown_table(
        ['', 'images/s'],
        [[f'tools/test.py path, {args.num_images} images, batch {batch}, '
          f'{args.workers} workers (load, resize, model, CRF, IoU)',
          f'{dataset_ips:.2f}'],
         [f'model alone (encode_decode with CRF), batch {batch}',
          f'{model_ips:.2f}'],
         ['ratio whole dataset / model alone',
          f'{dataset_ips / model_ips:.2f}']])
    text = (f'Device: {device_name}; torch {torch.__version__}, '
            f'{torch.get_num_threads()} threads; amp: {args.amp or "off"}; '
            f'compile: {args.compile or "off"}. VOC21 paper config, '
            f'BLIP-{vlm} geometry.\n\n' + table + '\n')
    result = dict(device=device_name, images=args.num_images, batch=batch,
                  workers=args.workers, dataset_images_per_s=dataset_ips,
                  model_images_per_s=model_ips, mIoU=float(metrics['mIoU']))
    os.makedirs(args.out, exist_ok=True)
    with atomic_write(os.path.join(args.out, 'dataset.json'), 'w') as f:
        json.dump(result, f, indent=2)
    with atomic_write(os.path.join(args.out, 'dataset.md'), 'w') as f:
        f.write(text)
    print()
    print(text, end='')
    return result
