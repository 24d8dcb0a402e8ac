"""OpenMP threads that sleep, not spin, while they wait for work.

torch's OpenMP runtime (libgomp) lets idle threads spin for a while before sleeping. On
a machine whose cores are busy with other processes, those spinning threads take turns
with the threads doing the work: one photo's `grm compress` took 2.4-8.7 s there
instead of ~1 s (README, "Busy machines"). The runtime reads the policy once, when it
loads, so this must run before torch is imported; a user's own setting wins.

Training is the exception: its step is a stream of small parallel regions, and with
the data loader's worker process on the other core, passive threads fall asleep and
wake between every two of them. The default run's base trained at 4.45 steps/s passive
against 8.3 spinning (README, "Busy machines"), so the training stages spin.
"""

import contextlib
import os


def wait_passively() -> None:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def spin_while_training() -> None:
    """For the training stages, called before ``grm.pipeline.stage`` (which waits passively)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "ACTIVE")


def cores() -> int:
    """The cores this process may run on (a container's or taskset's share, not the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def torch_threads(n: int):
    """torch on ``n`` threads inside. On one, a float computation whose result must not
    depend on the caller's thread count (a batched product splits its sums differently on
    1 and 2 threads)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
