"""``python -m mmseg_powerone.commands NAME ARGS...``: run a tool's command
(the same as ``python tools/NAME.py ARGS...``), also from a wheel."""
import sys

from . import main

if __name__ == '__main__':
    sys.exit(main())
