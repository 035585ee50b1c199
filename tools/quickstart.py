"""The method end to end on the embedded world, in a few minutes on a CPU
(``--help`` for usage; the code is ``mmseg_powerone.commands.quickstart``)."""
from mmseg_powerone.commands.quickstart import quickstart


def main(argv=None):
    return quickstart(argv)


if __name__ == '__main__':
    main()
