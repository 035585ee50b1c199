# Runtime shared by every powerone config: mmseg's default runtime plus the
# hooks and loops a test (and later a train) run needs.
_base_ = ['mmseg::_base_/default_runtime.py']

custom_imports = dict(imports=['mmseg_powerone'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    # The stock LoggerHook dumps test metrics from every rank into one file.
    # a line every 10 batches, so short runs show progress too
    logger=dict(type='MainProcessLoggerHook', interval=10,
                log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1000),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'),
    # model.class_names against the dataset's classes, before anything runs
    class_check=dict(type='ClassNamesCheckHook'))

test_cfg = dict(type='TestLoop')
# mmseg's visualiser, with small images enlarged so names stay readable
visualizer = dict(type='PowerOneSegVisualizer', name='visualizer')
randomness = dict(seed=0, deterministic=False)

# Distributed runs wrap only submodules that have trainable parameters in
# DDP: the training-free model has none, and plain DDP refuses such a model.
model_wrapper_cfg = dict(type='MMSeparateDistributedDataParallel')
