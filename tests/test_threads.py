"""The OpenMP wait policy each entry point sets before torch loads (grm/threads.py)."""

import os
import subprocess
import sys

import pytest
from conftest import REPO


def policy_after_import(module: str, **env) -> str:
    """OMP_WAIT_POLICY as a fresh interpreter sees it once ``module`` is imported."""
    clean = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    code = f"import os, {module}; print(os.environ.get('OMP_WAIT_POLICY', 'unset'))"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


@pytest.mark.parametrize(
    "module, policy",
    [
        ("stages.base", "ACTIVE"),
        ("stages.train", "ACTIVE"),  # training spins: ~2x the steps/s
        ("stages.evaluate", "PASSIVE"),
        ("stages.export", "PASSIVE"),
        ("grm.cli", "PASSIVE"),
    ],
)
def test_training_stages_spin_and_the_rest_wait_passively(module, policy):
    assert policy_after_import(module) == policy


def test_a_users_own_policy_wins():
    assert policy_after_import("stages.train", OMP_WAIT_POLICY="PASSIVE") == "PASSIVE"
    assert policy_after_import("grm.cli", OMP_WAIT_POLICY="ACTIVE") == "ACTIVE"
