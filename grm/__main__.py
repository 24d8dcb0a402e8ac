"""``python -m grm``: the same command line as ``grm``."""

import sys

from .cli import main

sys.exit(main())
