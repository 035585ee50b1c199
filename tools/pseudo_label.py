"""Label a split's images with a teacher, for a student to train on
(``--help`` for usage; the code is ``mmseg_powerone.commands.pseudo_label``)."""
from mmseg_powerone.commands.pseudo_label import pseudo_label_command


def main(argv=None):
    return pseudo_label_command(argv)


if __name__ == '__main__':
    main()
