"""Pretrain the embedded tiny BLIP or ALBEF on synthetic captions
(``--help`` for usage; the code is ``mmseg_powerone.commands.pretrain_vlm``)."""
from mmseg_powerone.commands.pretrain_vlm import pretrain_vlm


def main(argv=None):
    return pretrain_vlm(argv)


if __name__ == '__main__':
    main()
