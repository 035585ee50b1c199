# A stock mmseg student for the embedded world, trained on a teacher's
# pseudo-labels of the unlabeled train split (tools/pseudo_label.py; the
# whole chain: tools/distill.py). An unmodified EncoderDecoder: mmseg's
# SegFormer (MixVisionTransformer + SegformerHead) shrunk to 64 x 64 images
# on 2 CPU cores: its first stage works at stride 4 (a 16 x 16 map, twice
# the tiny BLIP's 8 x 8 patch grid), self-attention sees the whole image
# (a ring and a circle differ only at their centre), and 2,000 iterations
# of its 1.8 M parameters take about 3 minutes.
_base_ = [
    'mmseg::_base_/models/segformer_mit-b0.py',
    '../_base_/datasets/shapes.py',
    '../_base_/default_runtime.py',
]
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=(64, 64)),
    backbone=dict(embed_dims=32, num_layers=[1, 1, 1, 1],
                  num_heads=[1, 2, 4, 8], drop_path_rate=0.0),
    decode_head=dict(in_channels=[32, 64, 128, 256], channels=128,
                     num_classes=7, dropout_ratio=0.0, norm_cfg=norm_cfg))

# The teacher's pseudo-labels of img_dir/train: the split's own labels are
# never read (tools/distill.py sets pseudo_dir to the folder it made).
pseudo_dir = 'work_dirs/distill/pseudo_labels'
train_dataloader = dict(
    batch_size=16,
    dataset=dict(
        _delete_=True,
        type='PseudoLabelDataset',
        pseudo_dir=pseudo_dir,
        dataset=dict(
            type='SyntheticShapesDataset',
            data_root='data/shapes',
            data_prefix=dict(img_path='img_dir/train'),
            pipeline={{_base_.train_pipeline}})))
# mIoU on the labelled val split, as the teacher is scored
val_dataloader = dict(batch_size=50)
test_dataloader = val_dataloader

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, betas=(0.9, 0.999),
                   weight_decay=0.01))
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=0, end=2000,
         by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=2000, val_interval=2000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(interval=100, log_metric_by_epoch=False),
    checkpoint=dict(by_epoch=False, interval=2000, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
