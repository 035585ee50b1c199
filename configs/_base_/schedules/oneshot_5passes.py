# One-shot fine-tuning schedule of the reference code: AdamW lr 2e-4, weight
# decay 0.05, 2 images per optimiser step, 5 passes over the support set.
# Only the parameters the model leaves trainable enter the optimiser.
_base_ = ['../default_runtime.py']
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='TrainableParamsOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=0.05),
    accumulative_counts=2)
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=5)
default_hooks = dict(
    logger=dict(interval=5, log_metric_by_epoch=True),
    checkpoint=dict(type='CheckpointHook', by_epoch=True, interval=1,
                    max_keep_ckpts=2))
# Multi-process training: the optimiser is built before InfoScore picks the
# layers, so every candidate layer is wrapped in DDP and the unselected ones
# receive no gradient.
model_wrapper_cfg = dict(
    type='MMSeparateDistributedDataParallel', find_unused_parameters=True)
