"""Error types: every failure a user can cause maps to one of these, so the CLI
can print one line and exit non-zero instead of a traceback."""

import errno
import os
import re
import shutil
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


class StorageError(GrmError):
    """The operating system refused a read or a write: disk full, read-only, gone, busy.

    One line for the user: what failed while doing what, what was kept, what to do.
    """

    def __init__(self, cause: str, doing: str, kept: str = "", fix: str = "", code: int = 0):
        super().__init__(cause, doing, kept, fix, code)
        self.cause, self.doing, self.kept, self.fix, self.code = cause, doing, kept, fix, code

    def __str__(self) -> str:
        return "; ".join(p for p in (f"{self.cause} while {self.doing}", self.kept, self.fix) if p)


_CAUSES = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EBUSY: "device or resource busy",
    errno.ENOENT: "file not found",
    errno.EIO: "input/output error",
    errno.EFBIG: "file too large",
}
_FIXES = {
    errno.ENOSPC: "free space and rerun",
    errno.EDQUOT: "free space and rerun",
    errno.EROFS: "make it writable and rerun",
    errno.EACCES: "fix the permissions and rerun",
    errno.EPERM: "fix the permissions and rerun",
}
# How torch's serializer and safetensors report a failed write: without an errno (torch)
# or with the OS error inside their own message (safetensors).
_TORCH_WRITE = ("inline_container", "PytorchStreamWriter", "file write failed")
_OS_CODE = re.compile(r"(?:code: |os error )(\d+)")


def _free_bytes(path) -> int:
    p = os.path.abspath(path)
    while not os.path.exists(p):
        p = os.path.dirname(p)
    return shutil.disk_usage(p).free


def as_os_error(e: BaseException, path=None) -> OSError | None:
    """The OS failure behind ``e``, or None if it is not one."""
    if isinstance(e, OSError):
        return e
    text = str(e)
    m = _OS_CODE.search(text) if type(e).__name__ == "SafetensorError" else None
    if m:
        code = int(m.group(1))
        return OSError(code, os.strerror(code), path)
    if isinstance(e, RuntimeError) and any(t in text for t in _TORCH_WRITE):
        # torch drops the errno; a nearly full disk is by far the common cause.
        code = errno.ENOSPC if path is not None and _free_bytes(path) < 1 << 20 else errno.EIO
        return OSError(code, os.strerror(code), path)
    return None


def _code(err: OSError) -> int:
    if err.errno:
        return err.errno
    kinds = {FileNotFoundError: errno.ENOENT, PermissionError: errno.EACCES}
    return next((c for k, c in kinds.items() if isinstance(err, k)), 0)


def shown_path(path) -> str:
    """A path as the user would type it: relative to the working folder when inside it."""
    text = os.fspath(path)
    rel = os.path.relpath(text) if os.path.isabs(text) else text
    return rel if not rel.startswith("..") else text


def fix_for(code: int, then: str = "") -> str:
    return " ".join(p for p in (_FIXES.get(code, "fix the cause and rerun"), then) if p)


@contextmanager
def os_failures(doing: str, where, kept=None, then: str = ""):
    """OS failures inside become one ``StorageError`` line naming ``where``.

    ``kept`` (a string, or a callable asked at failure time) says what survived; ``then``
    what a rerun does ("to resume"). The outermost context's words win, so a stage's
    "saving step 40 of grm-q1 to …" replaces the "writing …" of the file write inside it.
    """
    try:
        yield
    except Exception as e:
        if isinstance(e, StorageError):
            cause, code, inner_kept = e.cause, e.code, e.kept
        else:
            err = as_os_error(e, where)
            if err is None:
                raise
            code, inner_kept = _code(err), ""
            cause = _CAUSES.get(code) or (err.strerror or str(err)).splitlines()[0].lower()
        note = kept() if callable(kept) else kept
        raise StorageError(
            cause, f"{doing} {shown_path(where)}", note or inner_kept, fix_for(code, then), code
        ) from e


def debugging() -> bool:
    """GRM_DEBUG=1: show the traceback behind a one-line error."""
    return os.environ.get("GRM_DEBUG", "") not in ("", "0")
