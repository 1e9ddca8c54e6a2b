#!/usr/bin/env python
"""Check the gta5 dataset and write its train-id labels: `rccr data prepare gta5`.

Usage: python data_scripts/prepare_gta5.py --root DIR [--workers N] [--list FILE]
"""

import sys

from rccr.cli import main

if __name__ == "__main__":
    sys.exit(main(["data", "prepare", "gta5", *sys.argv[1:]]))
