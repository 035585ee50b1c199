# The paper's one-shot protocol on COCO-Object (background + 80 things):
# supports drawn from the evaluation list (val2017) and removed from it;
# 512 x 512; reference schedule for COCO (AdamW 2e-4, 2 images per step,
# 2 passes); ConvCRF refinement as the reference. Report 5 draws:
#   python tools/oneshot_eval.py THIS_CONFIG --draws 5
_base_ = [
    '../_base_/models/powerone_blip-large.py',
    '../_base_/datasets/coco_object.py',
    '../_base_/schedules/oneshot_5passes.py',
]
model = dict(
    class_names='{{fileDirname}}/../_base_/class_names/coco_object.txt',
    layers='infoscore',
    topk=2,
    train_cfg=dict(tune_embeddings='all', background_weight=0.5),
    crf=dict(type='ConvCRF', filter_size=15, blur=4, iters=20))
custom_hooks = [dict(type='InfoScoreHook', num_images=100, dataloader='test')]
train_cfg = dict(max_epochs=2)

# labels are loaded before the resize: the loss compares them with the
# 512 x 512 maps
oneshot_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='Resize', scale=(512, 512), keep_ratio=False),
    dict(type='PackSegInputs'),
]
# supports from the evaluation list ...
train_dataloader = dict(
    batch_size=1,
    num_workers=2,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='OneShotDataset',
        shots=1,
        seed=0,
        dataset=dict(
            type={{_base_.dataset_type}},
            data_root={{_base_.data_root}},
            data_prefix=dict(
                img_path='images/val2017',
                seg_map_path='annotations/val2017'),
            pipeline=oneshot_pipeline)))
# ... and the same draw excluded from the evaluation
test_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='OneShotDataset',
        exclude=True,
        shots=1,
        seed=0,
        dataset={{_base_.test_dataloader.dataset}}))
# No validation during the few training steps: test after training.
val_dataloader = None
val_cfg = None
val_evaluator = None
