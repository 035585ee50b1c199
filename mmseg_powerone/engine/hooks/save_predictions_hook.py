"""SavePredictionsHook: the label maps ``tools/test.py --out`` writes."""
import os.path as osp
import warnings

from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from ...utils import unwrap_model
from ...utils.labels import UniqueNames, save_label_png


@HOOKS.register_module()
class SavePredictionsHook(Hook):
    """Write each test prediction to ``out_dir/<image stem>.png`` for
    offline evaluation, as mmseg's ``IoUMetric(output_dir=...)`` does, but
    as a 16-bit PNG when the model has more than 256 classes (8-bit wraps
    class 267 to 11), and with a distinct name when two images share a stem
    (the second would overwrite the first): ``<stem>_<ext>.png``, said once.

    Args:
        out_dir: where the PNGs go.
    """

    def __init__(self, out_dir: str):
        self.out_dir = out_dir
        self._names = UniqueNames()

    def after_test_iter(self, runner, batch_idx, data_batch=None,
                        outputs=None) -> None:
        model = unwrap_model(runner.model)
        num_classes = getattr(model, 'num_classes', None)
        for sample in outputs or []:
            img_path = sample.metainfo.get('img_path', f'{batch_idx}')
            name, clash = self._names.name(img_path)
            if clash:
                warnings.warn(f'{img_path} shares its file stem with {clash}: '
                              f'its prediction is {name}.png.')
            pred = sample.pred_sem_seg.data[0].cpu().numpy()
            if sample.metainfo.get('reduce_zero_label', False):
                pred = pred + 1  # back to the dataset's own indices
            save_label_png(osp.join(self.out_dir, f'{name}.png'), pred,
                           num_classes)
