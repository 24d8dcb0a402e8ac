"""``python -m grm``: the same command line as ``grm``."""

from .cli import run

if __name__ == "__main__":  # not when a worker process imports it (spawn)
    run()
