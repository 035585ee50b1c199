"""Distil a teacher into a stock mmseg student on the embedded world, and
print teacher and student side by side (``--help`` for usage; the code is
``mmseg_powerone.commands.distill``)."""
from mmseg_powerone.commands.distill import distill_command


def main(argv=None):
    return distill_command(argv)


if __name__ == '__main__':
    main()
