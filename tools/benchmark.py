"""Speed and memory of the segmentor's map path beside a naive loop and the
floor (``--help`` for usage; the code is ``mmseg_powerone.commands.benchmark.speed``)."""
from mmseg_powerone.commands.benchmark.speed import benchmark


def main(argv=None):
    benchmark(argv)


if __name__ == '__main__':
    main()
