"""grm: a learned image codec with a Global Reference entropy model and GSDN transforms."""

__version__ = "0.1.0"
