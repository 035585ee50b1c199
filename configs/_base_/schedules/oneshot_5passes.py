# One-shot fine-tuning schedule of the reference code: AdamW lr 2e-4, weight
# decay 0.05, 2 images per optimiser step, 5 passes over the support set.
# Only the parameters the model leaves trainable enter the optimiser. No
# runtime and no hooks here, so it combines with any runtime base (ours,
# configs/_base_/default_runtime.py, checkpoints after every pass).
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='TrainableParamsOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=0.05),
    accumulative_counts=2)
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=5)
