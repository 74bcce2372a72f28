"""``python -m roofline <command>``: the commands are in :mod:`roofline.report.cli`."""

from __future__ import annotations

import sys

from roofline.report.cli import main

if __name__ == "__main__":
    sys.exit(main())
