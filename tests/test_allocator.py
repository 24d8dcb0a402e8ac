"""The CPU trainer's malloc tuning: a freed large block is reused without page faults."""

import subprocess
import sys

CHILD = r"""
import resource, sys, torch
from grm.pipeline.allocator import reuse_freed_memory
if "tune" in sys.argv:
    assert reuse_freed_memory() and reuse_freed_memory()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(12):                      # the first rounds grow the heap
    before = faults()
    x = torch.ones(64 << 20, dtype=torch.uint8)
    del x
print(faults() - before)
"""


def faults_of_last_allocation(*args) -> int:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip().splitlines()[-1])


def test_freed_memory_is_reused_only_when_tuned():
    pages = (64 << 20) // 4096
    assert faults_of_last_allocation() > pages // 2  # glibc default: munmap, fault again
    assert faults_of_last_allocation("tune") < pages // 20  # tuned: the heap block is reused
