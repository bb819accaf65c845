"""``python -m interp …`` (and ``torchrun --nproc-per-node N -m interp …``): the command line."""

import sys

from .cli import main

sys.exit(main())
