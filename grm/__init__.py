"""grm: a learned image codec with a Global Reference entropy model and GSDN transforms.

Imports of torch, compressai, MLflow and Pillow sit inside functions where a command
that does not need them (``grm --help``, ``grm info``, a stage's argument check) would
otherwise wait seconds for them; standard-library imports stay at the top of a module.
"""

__version__ = "0.1.0"
