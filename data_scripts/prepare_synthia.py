#!/usr/bin/env python
"""Check the synthia dataset and write its train-id labels: `rccr data prepare synthia`.

Usage: python data_scripts/prepare_synthia.py --root DIR [--workers N] [--list FILE]
"""

import sys

from rccr.cli import main

if __name__ == "__main__":
    sys.exit(main(["data", "prepare", "synthia", *sys.argv[1:]]))
