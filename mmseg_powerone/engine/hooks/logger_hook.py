"""LoggerHook whose test-metrics JSON is written by one process only."""
from mmengine.dist import is_main_process
from mmengine.hooks import LoggerHook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class MainProcessLoggerHook(LoggerHook):
    """mmengine's ``LoggerHook``, except that after a test epoch only the main
    process logs and dumps ``{timestamp}.json``.

    The stock hook dumps the metrics from every rank into the same file; two
    ranks writing at once can leave it holding two concatenated JSON objects,
    which ``json.load`` rejects.
    """

    def after_test_epoch(self, runner, metrics=None):
        if is_main_process():
            super().after_test_epoch(runner, metrics)
