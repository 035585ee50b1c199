"""Speed and memory of the segmentor's map path beside a naive loop and the
floor (``--help`` for usage; the code is ``mmseg_powerone.apis.benchmark``)."""
from mmseg_powerone.apis.benchmark import benchmark


def main(argv=None):
    benchmark(argv)


if __name__ == '__main__':
    main()
