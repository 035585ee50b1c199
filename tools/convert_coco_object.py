"""Write COCO-Object label maps from the COCO 2017 instance annotations
(``--help`` for usage; the code is
``mmseg_powerone.commands.convert_coco_object``)."""
from mmseg_powerone.commands.convert_coco_object import convert_coco_object


def main(argv=None):
    return convert_coco_object(argv)


if __name__ == '__main__':
    main()
