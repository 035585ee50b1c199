"""The ``mmseg_powerone`` registry scope.

Our components register in mmseg's registries (scope ``mmseg``), so mmseg
configs and tools find them. mmengine gives every object of a base config
named ``mmseg_powerone::...`` the scope ``mmseg_powerone``; these child
registries make that scope exist. Each is empty and looks names up in its
mmseg parent (then mmengine's root), so a config builds the same objects
whichever way it reached our configs.
"""
from mmengine.registry import Registry
from mmseg import registry as _mmseg

SCOPE = 'mmseg_powerone'


def _child(parent: Registry) -> Registry:
    # locations: mmengine imports these modules before a look-up (instead of
    # calling a `register_all_modules` function, which we do not have).
    return Registry(parent.name, parent=parent, scope=SCOPE,
                    locations=[SCOPE])


DATASETS = _child(_mmseg.DATASETS)
DATA_SAMPLERS = _child(_mmseg.DATA_SAMPLERS)
EVALUATOR = _child(_mmseg.EVALUATOR)
HOOKS = _child(_mmseg.HOOKS)
INFERENCERS = _child(_mmseg.INFERENCERS)
LOG_PROCESSORS = _child(_mmseg.LOG_PROCESSORS)
LOOPS = _child(_mmseg.LOOPS)
METRICS = _child(_mmseg.METRICS)
MODELS = _child(_mmseg.MODELS)
MODEL_WRAPPERS = _child(_mmseg.MODEL_WRAPPERS)
OPTIMIZERS = _child(_mmseg.OPTIMIZERS)
OPTIM_WRAPPERS = _child(_mmseg.OPTIM_WRAPPERS)
OPTIM_WRAPPER_CONSTRUCTORS = _child(_mmseg.OPTIM_WRAPPER_CONSTRUCTORS)
PARAM_SCHEDULERS = _child(_mmseg.PARAM_SCHEDULERS)
RUNNERS = _child(_mmseg.RUNNERS)
RUNNER_CONSTRUCTORS = _child(_mmseg.RUNNER_CONSTRUCTORS)
TASK_UTILS = _child(_mmseg.TASK_UTILS)
TRANSFORMS = _child(_mmseg.TRANSFORMS)
VISBACKENDS = _child(_mmseg.VISBACKENDS)
VISUALIZERS = _child(_mmseg.VISUALIZERS)
WEIGHT_INITIALIZERS = _child(_mmseg.WEIGHT_INITIALIZERS)
