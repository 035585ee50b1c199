"""An optimiser constructor that leaves frozen parameters out."""
import torch.nn as nn
from mmengine.optim import DefaultOptimWrapperConstructor
from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class TrainableParamsOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine's default constructor, given only the parameters that require
    grad: a VLM with a few tuned layers keeps its frozen weights out of the
    optimiser (the default hands every parameter to it, or with a
    ``paramwise_cfg`` warns once per frozen one). With a ``paramwise_cfg``
    the default behaviour is kept, since its rules match parameter names."""

    def __call__(self, model: nn.Module):
        model = getattr(model, 'module', model)
        if self.paramwise_cfg:
            return super().__call__(model)
        trainable = [p for p in model.parameters() if p.requires_grad]
        if not trainable:
            raise ValueError(
                'The model has no parameter that requires grad, so there is '
                'nothing to train. A VLMAttentionSegmentor trains only with '
                "model.train_cfg=dict(tune_embeddings='all') (one-shot).")
        holder = nn.Module()
        holder.params = nn.ParameterList(trainable)  # the same tensors
        return super().__call__(holder)
