"""One-shot fine-tuning over several support draws: train and test per
draw, then mean and std of mIoU, as the paper reports (``--help`` for usage;
the code is ``mmseg_powerone.commands.oneshot_eval``)."""
from mmseg_powerone.commands.oneshot_eval import oneshot_eval


def main(argv=None):
    oneshot_eval(argv)


if __name__ == '__main__':
    main()
