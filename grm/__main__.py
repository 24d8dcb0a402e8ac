"""``python -m grm``: the same command line as ``grm``."""

from .cli import run

run()
