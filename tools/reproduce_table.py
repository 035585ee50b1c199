"""Collect the results of tools/reproduce.sh into one table (``--help`` for
usage; the code is ``mmseg_powerone.commands.reproduce_table``)."""
from mmseg_powerone.commands.reproduce_table import reproduce_table


def main(argv=None):
    reproduce_table(argv)


if __name__ == '__main__':
    main()
