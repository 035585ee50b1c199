"""Segment images with class names given on the command line and draw what
the model sees (``--help`` for usage; the code is
``mmseg_powerone.commands.demo``)."""
from mmseg_powerone.commands.demo import demo


def main(argv=None):
    demo(argv)


if __name__ == '__main__':
    main()
