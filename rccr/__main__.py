"""``python -m rccr`` (and ``torchrun -m rccr``) runs the command line."""

import sys

from rccr.cli import main

sys.exit(main())
