"""Error types: every failure a user can cause maps to one of these, so the CLI
can print one line and exit non-zero instead of a traceback."""


class GrmError(Exception):
    """Base of every error grm raises on purpose."""


class FormatError(GrmError):
    """A .grm file is corrupt, truncated, foreign or of an unsupported version."""


class ModelMismatchError(GrmError):
    """A .grm file was written with a different model than the one given."""


class DecodeError(GrmError):
    """The decoded latents do not match the encoder's checksum."""


class ImageError(GrmError):
    """An input image cannot be read or is unsafe to decode."""


class ModelFileError(GrmError):
    """A model file is missing, unreadable or not a grm model."""
