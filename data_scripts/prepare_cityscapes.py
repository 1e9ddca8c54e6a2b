#!/usr/bin/env python
"""Check the cityscapes dataset and write its train-id labels: `rccr data prepare cityscapes`.

Usage: python data_scripts/prepare_cityscapes.py --root DIR [--workers N] [--list FILE]
"""

import sys

from rccr.cli import main

if __name__ == "__main__":
    sys.exit(main(["data", "prepare", "cityscapes", *sys.argv[1:]]))
