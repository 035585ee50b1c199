"""Generate the embedded synthetic shapes dataset in mmseg's layout
(``--help`` for usage; the code is ``mmseg_powerone.commands.make_shapes``)."""
from mmseg_powerone.commands.make_shapes import make_shapes


def main(argv=None):
    return make_shapes(argv)


if __name__ == '__main__':
    main()
