"""Train a segmentor, as mmseg's tools/train.py does (``--help`` for usage;
the code is ``mmseg_powerone.commands.train_test.train``)."""
from mmseg_powerone.commands.train_test import train


def main(argv=None):
    train(argv)


if __name__ == '__main__':
    main()
