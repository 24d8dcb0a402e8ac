"""Error types: every failure a user can cause maps to one of these, so the CLI
can print one line and exit non-zero instead of a traceback."""

import re
from contextlib import contextmanager


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


class DeviceError(GrmError):
    """The device asked for (--device) does not exist on this machine."""


class OutOfMemoryError(GrmError):
    """The machine cannot hold what this image needs (not the file's fault)."""


def out_of_memory(e: BaseException) -> OutOfMemoryError | None:
    """The error to raise when e is an allocation failure (torch raises RuntimeError)."""
    text = str(e)
    if not (
        isinstance(e, MemoryError)
        or (
            isinstance(e, RuntimeError)
            and ("can't allocate memory" in text or "out of memory" in text)
        )
    ):
        return None
    m = re.search(r"allocate (\d+) bytes", text)
    need = f" (an allocation of {int(m.group(1)) / 2**30:.1f} GiB failed)" if m else ""
    return OutOfMemoryError(
        f"out of memory{need}: this image needs more memory than the machine allows"
    )


@contextmanager
def memory_errors():
    """Allocation failures inside become OutOfMemoryError; other errors pass unchanged."""
    try:
        yield
    except (MemoryError, RuntimeError) as e:
        oom = out_of_memory(e)
        if oom is None:
            raise
        raise oom from None
