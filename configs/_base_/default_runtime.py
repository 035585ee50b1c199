# Runtime shared by every powerone config: mmseg's default runtime plus the
# hooks and loops a test or a one-shot training run needs (schedules set no
# hooks, so a schedule combines with any runtime).
_base_ = ['mmseg::_base_/default_runtime.py']

custom_imports = dict(imports=['mmseg_powerone'], allow_failed_imports=False)

# mmengine's Runner with all-or-nothing checkpoint writes and an auto-resume
# that survives a run killed while it rewrote `last_checkpoint`.
runner_type = 'PowerOneRunner'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    # The stock LoggerHook dumps test metrics from every rank into one file.
    # A line every 5 batches, so short runs show progress too.
    logger=dict(type='MainProcessLoggerHook', interval=5,
                log_metric_by_epoch=True),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # one-shot training: a checkpoint after every pass, the last two kept
    checkpoint=dict(type='CheckpointHook', by_epoch=True, interval=1,
                    max_keep_ckpts=2),
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
# One-shot training builds the optimiser before InfoScore picks the layers,
# so every candidate layer is wrapped and the unselected ones receive no
# gradient (find_unused_parameters).
model_wrapper_cfg = dict(type='MMSeparateDistributedDataParallel',
                         find_unused_parameters=True)
