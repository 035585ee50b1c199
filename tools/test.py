"""Test (and evaluate) a segmentor, as mmseg's tools/test.py does
(``--help`` for usage; the code is ``mmseg_powerone.commands.train_test.test``)."""
from mmseg_powerone.commands.train_test import test


def main(argv=None):
    return test(argv)


if __name__ == '__main__':
    main()
