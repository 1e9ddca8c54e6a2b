#!/usr/bin/env python
"""Generate the toy-city benchmark: `rccr data make-toy`.

Usage: python data_scripts/make_toy_city.py --out DIR [--seed S] [--size 256x128] ...
"""

import sys

from rccr.cli import main

if __name__ == "__main__":
    sys.exit(main(["data", "make-toy", *sys.argv[1:]]))
