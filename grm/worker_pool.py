"""One function over many items, in worker processes with one thread each, results in order.

Coding a photo is a long chain of small steps that a second thread barely speeds up, so on
a CPU two photos at a time do more than one photo with two threads: the `grm compress`
of a folder and the evaluation stage spread their photos this way. The classic codecs do
not (VVenC and AVIF thread themselves). Figures: docs/results/benchmarks.md.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterable, Iterator

from .quiet import quiet_dependencies
from .threads import cores

# A worker's start (torch and a model) costs about as much as coding a photo.
PHOTOS_PER_WORKER = 4
_WORKER: dict = {}  # in a worker process: its ``one``


def workers_for(items: int, per_worker: int = PHOTOS_PER_WORKER, asked: int = 0) -> int:
    """``asked`` if given, else one per core, at most one per ``per_worker`` items."""
    if asked:
        return max(1, min(asked, items))
    return max(1, min(cores(), items // max(1, per_worker)))


def _start(setup: Callable, args: tuple, threads: int) -> None:
    quiet_dependencies()  # a spawned process starts with Python's default warnings
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    torch.set_num_threads(threads)
    _WORKER["one"] = setup(*args)


def _call(item):
    return _WORKER["one"](item)


@contextlib.contextmanager
def mapped(
    setup: Callable, args: tuple, items: Iterable, workers: int, local: Callable | None = None
) -> Iterator[Iterator]:
    """Yields ``one(item)`` for every item, in order, where ``one = setup(*args)`` is built
    once per worker process (``setup`` and ``args`` must pickle: a module-level function).
    With one worker everything runs here, with ``local`` if given (already built) instead
    of ``setup``. On an error or Ctrl-C the items being worked on finish, the rest are
    dropped."""
    if workers <= 1:
        one = local or setup(*args)
        yield (one(item) for item in items)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start,
        initargs=(setup, args, max(1, cores() // workers)),
    )
    try:
        yield _until_a_worker_dies(pool.map(_call, items), workers)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _until_a_worker_dies(results: Iterator, workers: int) -> Iterator:
    """The results; a worker killed from outside (the kernel's out-of-memory killer, a
    signal) ends them with one line instead of concurrent.futures' traceback."""
    from concurrent.futures.process import BrokenProcessPool

    from .errors import GrmError

    try:
        yield from results
    except BrokenProcessPool:
        raise GrmError(
            f"a worker process (one of {workers}) was killed, most often by the kernel for "
            "want of memory; what was not done was not written: run again (`grm compress` / "
            "`decompress -j 1` code one file at a time)"
        ) from None
