"""Write an mmengine checkpoint of a training-free segmentor for mmseg's
APIs and tools (``--help`` for usage; the code is
``mmseg_powerone.commands.export_checkpoint``)."""
from mmseg_powerone.commands.export_checkpoint import export_checkpoint_cli


def main(argv=None):
    return export_checkpoint_cli(argv)


if __name__ == '__main__':
    main()
