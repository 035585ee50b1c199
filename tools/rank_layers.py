"""Rank a config's attention layers by InfoScore, optionally beside each
layer's mIoU (``--help`` for usage; the code is
``mmseg_powerone.commands.rank_layers``)."""
from mmseg_powerone.commands.rank_layers import rank_layers_cli


def main(argv=None):
    return rank_layers_cli(argv)


if __name__ == '__main__':
    main()
