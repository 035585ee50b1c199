"""The standard benchmarks: every config builds, every dataset class loads a
tiny fake folder in its mmseg layout, class counts match, and each config
runs end to end (tiny random BLIP) on that fake data; the COCO-Object
converter; the paper's one-shot protocol configs."""
import json
import os
import re

import cv2
import numpy as np
import pytest
from mmengine.config import Config

from helpers import REPO, run

CONFIGS = os.path.join(REPO, 'configs', 'powerone')

# benchmark -> class count
BENCHMARKS = {
    'voc21': 21, 'voc20': 20, 'context60': 60, 'context59': 59,
    'coco-object': 81, 'coco-stuff164k': 171, 'ade20k': 150,
    'cityscapes': 19,
}
H, W = 40, 56


def _image(rng):
    return rng.integers(0, 255, (H, W, 3), dtype=np.uint8)


def _label(rng, values):
    lab = np.full((H, W), values[0], np.uint8)
    lab[5:25, 8:30] = values[1]
    lab[28:38, 30:50] = values[2 % len(values)]
    return lab


def _write(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(path, array)


def _pair_list(path, pairs):
    """The reference code's "IMAGE LABEL" list."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(''.join(f'{a} {b}\n' for a, b in pairs))


def fake_voc(root, rng, ids=('a', 'b', 'c', 'd', 'e', 'f')):
    """mmseg's VOC layout, plus SegmentationClassAug and the reference's
    lists/pascal/val.txt that the one-shot protocol reads."""
    for i, n in enumerate(ids):
        _write(f'{root}/JPEGImages/{n}.jpg', _image(rng))
        label = _label(rng, [0, 1 + i % 3, 255])
        _write(f'{root}/SegmentationClass/{n}.png', label)
        _write(f'{root}/SegmentationClassAug/{n}.png', label)
    for split in ('train', 'val'):
        os.makedirs(f'{root}/ImageSets/Segmentation', exist_ok=True)
        with open(f'{root}/ImageSets/Segmentation/{split}.txt', 'w') as f:
            f.write('\n'.join(ids) + '\n')
    _pair_list(f'{root}/lists/pascal/val.txt',
               [(f'JPEGImages/{n}.jpg', f'SegmentationClassAug/{n}.png')
                for n in ids])


def fake_coco2014(root, rng):
    """The reference's COCO-2014 layout: val2014 images, DIaM's 81-class
    val_contain_crowd label maps, lists/coco/val.txt."""
    pairs = []
    for i in range(6):
        n = f'COCO_val2014_{i:012d}'
        _write(f'{root}/val2014/{n}.jpg', _image(rng))
        _write(f'{root}/val_contain_crowd/{n}.png',
               _label(rng, [0, 1 + i % 3, 255]))
        pairs.append((f'val2014/{n}.jpg', f'val_contain_crowd/{n}.png'))
    _pair_list(f'{root}/lists/coco/val.txt', pairs)


def fake_context(root, rng):
    ids = ('2008_000001', '2008_000002')
    for i, n in enumerate(ids):
        _write(f'{root}/JPEGImages/{n}.jpg', _image(rng))
        _write(f'{root}/SegmentationClassContext/{n}.png',
               _label(rng, [0, 15 + i, 59]))
    os.makedirs(f'{root}/ImageSets/SegmentationContext', exist_ok=True)
    with open(f'{root}/ImageSets/SegmentationContext/val.txt', 'w') as f:
        f.write('\n'.join(ids) + '\n')


def fake_coco_stuff(root, rng):
    for i in range(2):
        _write(f'{root}/images/val2017/{i:012d}.jpg', _image(rng))
        _write(f'{root}/annotations/val2017/{i:012d}_labelTrainIds.png',
               _label(rng, [170, i, 255]))


def fake_ade(root, rng):
    for i in range(2):
        n = f'ADE_val_{i:08d}'
        _write(f'{root}/images/validation/{n}.jpg', _image(rng))
        _write(f'{root}/annotations/validation/{n}.png',
               _label(rng, [1, 13 + i, 0]))


def fake_cityscapes(root, rng):
    for i in range(2):
        n = f'frankfurt_000000_{i:06d}'
        _write(f'{root}/leftImg8bit/val/frankfurt/{n}_leftImg8bit.png',
               _image(rng))
        _write(f'{root}/gtFine/val/frankfurt/{n}_gtFine_labelTrainIds.png',
               _label(rng, [0, 11 + i, 255]))


# Two categories are enough to check the mapping; the converter checks the
# full 80-category list, so the fake file carries all of them.
def coco_categories():
    from mmseg_powerone.datasets.coco_object import COCOObjectDataset
    ids = [i for i in range(1, 91) if i not in
           (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]
    names = COCOObjectDataset.METAINFO['classes'][1:]
    return [dict(id=i, name=n) for i, n in zip(ids, names)]


def fake_coco_instances(root, rng):
    """COCO 2017 layout with an instances_val2017.json: a polygon person, an
    uncompressed-RLE dog, a crowd (compressed RLE) car."""
    images = [dict(id=1, file_name='000000000001.jpg', height=H, width=W),
              dict(id=2, file_name='000000000002.jpg', height=H, width=W)]
    for im in images:
        _write(f'{root}/images/val2017/{im["file_name"]}', _image(rng))
    dog = np.zeros((H, W), np.uint8)
    dog[20:30, 10:20] = 1
    flat = dog.T.reshape(-1)  # column-major
    runs, val, n = [], 0, 0
    for v in flat:
        if v == val:
            n += 1
        else:
            runs.append(n)
            val, n = v, 1
    runs.append(n)
    anns = [
        dict(id=10, image_id=1, category_id=1, iscrowd=0, area=200.0,
             segmentation=[[2.0, 2.0, 22.0, 2.0, 22.0, 12.0, 2.0, 12.0]]),
        dict(id=11, image_id=1, category_id=18, iscrowd=0, area=100.0,
             segmentation=dict(size=[H, W], counts=runs)),
        dict(id=12, image_id=2, category_id=3, iscrowd=1, area=50.0,
             segmentation=[[30.0, 30.0, 40.0, 30.0, 40.0, 35.0, 30.0, 35.0]]),
    ]
    os.makedirs(f'{root}/annotations', exist_ok=True)
    with open(f'{root}/annotations/instances_val2017.json', 'w') as f:
        json.dump(dict(images=images, annotations=anns,
                       categories=coco_categories()), f)


def fake_coco_object(root, rng):
    fake_coco_instances(root, rng)
    run(['tools/convert_coco_object.py', root])


FAKE = {
    'voc21': ('VOCdevkit/VOC2012', fake_voc),
    'voc20': ('VOCdevkit/VOC2012', fake_voc),
    'context60': ('VOCdevkit/VOC2010', fake_context),
    'context59': ('VOCdevkit/VOC2010', fake_context),
    'coco-object': ('coco_object', fake_coco_object),
    'coco-2014': ('coco2014', fake_coco2014),
    'coco-stuff164k': ('coco_stuff164k', fake_coco_stuff),
    'ade20k': ('ade', fake_ade),
    'cityscapes': ('cityscapes', fake_cityscapes),
}


@pytest.fixture(scope='module')
def fake_data(tmp_path_factory):
    base = tmp_path_factory.mktemp('benchmarks')
    roots = {}
    for name, (sub, writer) in FAKE.items():
        root = str(base / name / sub)
        writer(root, np.random.default_rng(0))
        roots[name] = root
    return roots


def _same_name(a, b):
    def words(x):
        ws = set(re.split('[ -]', x.strip().lower())) - {'other', 'stuff', ''}
        return {'wood' if w == 'wooden' else w for w in ws}
    return words(a) == words(b) or \
        a.replace(' ', '').lower() == b.replace(' ', '').lower()


def zeroshot_config(name, multi=False):
    setting = 'zeroshot-multiprompt' if multi else 'zeroshot'
    return os.path.join(CONFIGS, f'powerone_blip-large_{setting}_{name}.py')


def _test_options(cfg, root, tiny_blip_dir, work_dir):
    cfg.model.vlm.pretrained = tiny_blip_dir
    cfg.work_dir = str(work_dir)
    cfg.test_dataloader.num_workers = 0
    cfg.test_dataloader.persistent_workers = False
    ds = cfg.test_dataloader.dataset
    (ds.dataset if ds.type == 'OneShotDataset' else ds).data_root = root
    return cfg


@pytest.mark.slow
def test_every_config_builds():
    from mmengine.registry import init_default_scope
    import glob
    names = sorted(glob.glob(os.path.join(CONFIGS, '*.py')))
    assert len(names) >= 10 + 3 + 2
    for path in names:
        cfg = Config.fromfile(path)
        assert 'mmseg_powerone' in cfg.custom_imports.imports, path
        init_default_scope('mmseg')


@pytest.mark.parametrize('name', sorted(BENCHMARKS))
def test_class_counts_match_the_dataset(name, fake_data):
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    from mmseg_powerone.class_names import build_prompts
    init_default_scope('mmseg')
    cfg = Config.fromfile(zeroshot_config(name))
    prompts = build_prompts(cfg.model.class_names,
                            cfg.model.prompt_templates,
                            has_background=cfg.model.get('has_background', True))
    assert prompts.num_classes == BENCHMARKS[name]
    ds_cfg = cfg.test_dataloader.dataset
    ds_cfg.data_root = fake_data[name]
    ds = DATASETS.build(ds_cfg)
    assert len(ds.metainfo['classes']) == BENCHMARKS[name]
    assert len(ds) >= 2
    # the class-name file lists the dataset's classes in label order (a
    # synonym names the dataset's class; the background line may differ)
    for ours, theirs in zip(prompts.classes[1:], ds.metainfo['classes'][1:]):
        assert any(_same_name(o, theirs) for o in ours), (ours, theirs)
    # labels arrive in the evaluation's index space (background of the
    # no-background benchmarks ignored)
    sample = ds[0]['data_samples'].gt_sem_seg.data
    values = set(sample.unique().tolist())
    assert values <= set(range(BENCHMARKS[name])) | {255}, values
    assert values - {255}, 'no valid label left'


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(BENCHMARKS))
def test_zeroshot_config_runs_end_to_end(name, fake_data, tiny_blip_dir,
                                         tmp_path):
    from mmseg_powerone.engine import build_runner
    cfg = Config.fromfile(zeroshot_config(name))
    cfg = _test_options(cfg, fake_data[name], tiny_blip_dir, tmp_path)
    cfg.model.layers = [0, 2]
    cfg.experiment_name = f'bench_{name}'
    metrics = build_runner(cfg).test()
    assert 0 <= metrics['mIoU'] <= 100


@pytest.mark.parametrize('name', ['voc21', 'voc20', 'coco-object'])
def test_multiprompt_variant_uses_every_synonym(name):
    from mmseg_powerone.class_names import build_prompts
    single = Config.fromfile(zeroshot_config(name)).model
    multi = Config.fromfile(zeroshot_config(name, multi=True)).model
    assert multi.multi_prompt and not single.multi_prompt
    bg = single.get('has_background', True)
    p1 = build_prompts(single.class_names, single.prompt_templates, False, bg)
    p2 = build_prompts(multi.class_names, multi.prompt_templates, True, bg)
    assert p1.num_classes == p2.num_classes
    assert p2.num_prompts > p1.num_prompts
    # single prompt: background all synonyms (if any), objects one each
    assert p1.num_prompts == p1.num_classes - int(bg) + (
        len(p1.classes[0]) if bg else 0)


@pytest.mark.slow
def test_coco_object_converter_writes_the_label_maps(tmp_path):
    root = str(tmp_path / 'coco')
    fake_coco_instances(root, np.random.default_rng(0))
    out = run(['tools/convert_coco_object.py', root])
    assert 'wrote 2 label maps' in out
    lab = cv2.imread(f'{root}/annotations/val2017/000000000001_instanceTrainIds.png',
                     cv2.IMREAD_UNCHANGED)
    assert lab.shape == (H, W) and lab.dtype == np.uint8
    person, dog = 1, 17  # category ids 1 and 18 -> labels 1 and 17
    assert (lab[2:12, 2:22] == person).all()
    assert lab[12, 5] == 0 and lab[5, 22] == 0  # pixel centres outside
    assert (lab[20:30, 10:20] == dog).all()
    assert set(np.unique(lab)) == {0, person, dog}
    lab2 = cv2.imread(f'{root}/annotations/val2017/000000000002_instanceTrainIds.png',
                      cv2.IMREAD_UNCHANGED)
    assert (lab2[30:35, 30:40] == 3).all()  # crowd car keeps its class
    # --crowd ignore, and no overwrite without --overwrite
    with pytest.raises(AssertionError, match='--overwrite'):
        run(['tools/convert_coco_object.py', root, '--crowd', 'ignore'])
    run(['tools/convert_coco_object.py', root, '--crowd', 'ignore',
         '--overwrite'])
    lab2 = cv2.imread(f'{root}/annotations/val2017/000000000002_instanceTrainIds.png',
                      cv2.IMREAD_UNCHANGED)
    assert (lab2[30:35, 30:40] == 255).all()
    leftovers = [n for n in os.listdir(f'{root}/annotations') if n.startswith('.')]
    assert leftovers == []


@pytest.mark.slow
def test_coco_object_converter_errors(tmp_path):
    with pytest.raises(AssertionError, match='instances_val2017.json not found'):
        run(['tools/convert_coco_object.py', str(tmp_path)])
    os.makedirs(tmp_path / 'annotations')
    with open(tmp_path / 'annotations' / 'instances_val2017.json', 'w') as f:
        json.dump(dict(images=[], annotations=[],
                       categories=[dict(id=1, name='person')]), f)
    with pytest.raises(AssertionError, match='80 COCO thing categories'):
        run(['tools/convert_coco_object.py', str(tmp_path)])
    assert not os.path.exists(tmp_path / 'annotations' / 'val2017')


def test_compressed_rle_decodes_like_pycocotools():
    from mmseg_powerone.dataset_converters.coco_object import decode_rle
    # pycocotools.mask.encode of this 7 x 9 mask gives the string below
    expected = np.zeros((7, 9), np.uint8)
    expected[1:4, 2:6] = 1
    expected[5, :] = 1
    expected[6, 8] = 1
    got = decode_rle(dict(size=[7, 9], counts=b'5160L2ON12ON12ON12ON500001'))
    assert np.array_equal(got, expected)
    with pytest.raises(ValueError, match='corrupt'):
        decode_rle(dict(size=[7, 9], counts=[3, 4]))


def test_polygon_raster_takes_pixel_centres():
    from mmseg_powerone.dataset_converters.coco_object import rasterize_polygons
    # pycocotools.mask.frPyObjects of this rectangle fills rows 1-4, cols 1-5
    mask = rasterize_polygons([[1.0, 1.0, 6.0, 1.0, 6.0, 5.0, 1.0, 5.0]], 7, 9)
    expected = np.zeros((7, 9), np.uint8)
    expected[1:5, 1:6] = 1
    assert np.array_equal(mask, expected)


def _oneshot_options(root, tiny_blip_dir, tmp_path, test_wrapped):
    test_ds = 'test_dataloader.dataset.dataset' if test_wrapped \
        else 'test_dataloader.dataset'
    return [f'model.vlm.pretrained={tiny_blip_dir}',
            f'train_dataloader.dataset.dataset.data_root={root}',
            f'{test_ds}.data_root={root}',
            'train_dataloader.num_workers=0', 'test_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False',
            'test_dataloader.persistent_workers=False',
            'train_dataloader.batch_size=1',
            'train_cfg.max_epochs=1',
            'train_dataloader.dataset.min_pixels=16',
            'train_dataloader.dataset.on_missing=skip',
            f'train_dataloader.dataset.cache_dir={tmp_path}/cache'] + ([
            'test_dataloader.dataset.min_pixels=16',
            'test_dataloader.dataset.on_missing=skip',
            f'test_dataloader.dataset.cache_dir={tmp_path}/cache']
            if test_wrapped else [])


def _oneshot_eval(path, options, work):
    out = run(['tools/oneshot_eval.py', path, '--draws', '1',
               '--work-dir', str(work), '--cfg-options'] + options)
    with open(work / 'oneshot_eval.json') as f:
        result = json.load(f)
    assert len(result['draws']) == 1, out[-2000:]
    return result


@pytest.mark.slow
@pytest.mark.parametrize('name', ['voc21', 'coco-object'])
def test_oneshot_protocol_config_runs(name, fake_data, tiny_blip_dir, tmp_path):
    """Supports from the evaluation list, excluded from it, CRF on: through
    tools/oneshot_eval.py (one draw on the fake data)."""
    path = os.path.join(CONFIGS, f'powerone_blip-large_oneshot-protocol_{name}.py')
    cfg = Config.fromfile(path)
    assert cfg.model.crf == dict(type='ConvCRF', iters=20)
    train, test = cfg.train_dataloader.dataset, cfg.test_dataloader.dataset
    assert train.type == test.type == 'OneShotDataset'
    assert test.exclude and not train.get('exclude', False)
    for key in ('type', 'data_root', 'data_prefix', 'ann_file', 'pipeline'):
        assert train.dataset.get(key) == test.dataset.get(key), key
    # training resizes and pads image and labels together
    steps = [t.type for t in train.dataset.pipeline]
    assert steps.index('LoadAnnotations') < steps.index('ResizeLongestEdgePad')
    assert cfg.train_cfg.max_epochs == (5 if name == 'voc21' else 2)
    root = fake_data['voc21' if name == 'voc21' else 'coco-2014']
    result = _oneshot_eval(path, _oneshot_options(root, tiny_blip_dir,
                                                  tmp_path, True),
                           tmp_path / 'work')
    assert 0 <= result['summary']['mIoU']['mean'] <= 100


@pytest.mark.slow
def test_train_split_oneshot_config_runs(fake_data, tiny_blip_dir, tmp_path):
    path = os.path.join(CONFIGS, 'powerone_blip-large_oneshot_voc21.py')
    _oneshot_eval(path, _oneshot_options(fake_data['voc21'], tiny_blip_dir,
                                         tmp_path, False), tmp_path / 'work')


@pytest.mark.slow
def test_reproduce_script_end_to_end(fake_data, tiny_blip_dir, tmp_path):
    """tools/reproduce.sh on the fake VOC and COCO-Object folders with the
    tiny BLIP and one draw: every step runs and the table is written."""
    import subprocess
    import sys
    data = tmp_path / 'data'
    os.makedirs(data / 'VOCdevkit')
    os.symlink(fake_data['voc21'], data / 'VOCdevkit' / 'VOC2012')
    os.symlink(fake_data['coco-object'], data / 'coco_object')
    os.symlink(fake_data['coco-2014'], data / 'coco2014')
    common = ('test_dataloader.num_workers=0 '
              'test_dataloader.persistent_workers=False')
    env = dict(os.environ, DATA=str(data), BLIP=tiny_blip_dir, DRAWS='1',
               PYTHON=sys.executable, ZEROSHOT_OPTIONS=common,
               ONESHOT_OPTIONS=' '.join(_oneshot_options(
                   '', tiny_blip_dir, tmp_path, True)[3:]))
    proc = subprocess.run(['bash', 'tools/reproduce.sh', str(tmp_path / 'w')],
                          cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=1200)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    with open(tmp_path / 'w' / 'results.json') as f:
        rows = json.load(f)
    assert [r['dataset'] for r in rows] == ['voc21', 'coco-object']
    for r in rows:
        assert len(r['layers']) == 2 and 0 <= r['zeroshot'] <= 100
    table = (tmp_path / 'w' / 'results.md').read_text()
    assert 'PASCAL VOC (21)' in table and '±' in table


def test_reproduce_script_names_missing_data(tmp_path):
    import subprocess
    env = dict(os.environ, DATA=str(tmp_path))
    proc = subprocess.run(['bash', 'tools/reproduce.sh', str(tmp_path / 'w')],
                          cwd=REPO, env=env, capture_output=True, text=True)
    assert proc.returncode == 2
    assert 'VOCdevkit/VOC2012 not found' in proc.stderr
    assert not os.path.exists(tmp_path / 'w')


@pytest.mark.parametrize('config', ['powerone_albef_zeroshot_voc21.py',
                                    'powerone_llava-1.5-7b_zeroshot_voc21.py'])
def test_albef_and_llava_configs_run_end_to_end(config, fake_data, tmp_path,
                                                tiny_albef_dir, tiny_llava_dir):
    """The other VLMs' VOC configs as shipped, with the tiny models of the
    same formats swapped in: InfoScore picks layers, then mIoU."""
    from mmseg_powerone.engine import build_runner
    cfg = Config.fromfile(os.path.join(CONFIGS, config))
    if cfg.model.vlm.type == 'ALBEFAdapter':
        cfg.model.vlm.update(checkpoint=os.path.join(tiny_albef_dir, 'albef.pth'),
                             tokenizer=tiny_albef_dir, vision_heads=4,
                             text_heads=4)
    else:
        assert cfg.test_dataloader.dataset.pipeline[1].scale == (336, 336)
        cfg.model.vlm.pretrained = tiny_llava_dir
    cfg.work_dir = str(tmp_path)
    cfg.test_dataloader.num_workers = 0
    cfg.test_dataloader.persistent_workers = False
    cfg.test_dataloader.dataset.data_root = fake_data['voc21']
    cfg.experiment_name = config
    metrics = build_runner(cfg).test()
    assert 0 <= metrics['mIoU'] <= 100
    ranking = json.load(open(os.path.join(tmp_path, 'infoscore.json')))
    assert len(ranking['selected']) == 2
