"""Every benchmark and stage command line the READMEs give is accepted by its script.

Each line is run as written up to its arguments' parse: argparse's parse_args is
wrapped to stop the process right after parsing, so a pasted command that a script
would refuse (a bracketed `[--sizes …]`, a renamed flag) fails here without the
minutes of work behind it. Launchers (accelerate, torchrun) are stripped: what they
start is the same script with the same arguments.
"""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import READMES, REPO

# `[.venv/bin/]python[3] SCRIPT ARGS`, SCRIPT a benchmark or stage, ARGS up to a comment,
# a pipe, `&&`, a closing backtick or the end of the line.
COMMAND = re.compile(r"(?:\S*/)?python3? ((?:benchmarks|stages)/\w+\.py)([^`#|&\n]*)")
# stage and benchmark scripts launched through accelerate / torchrun (the launcher's own
# flags go first)
LAUNCHED = re.compile(r"\s((?:stages|benchmarks)/\w+\.py)((?:\s+(?!#)[\w.=:-]+)*)")
PARSE_ONLY = (
    "import argparse, runpy, sys\n"
    "parse = argparse.ArgumentParser.parse_args\n"
    "def parse_only(self, *a, **k):\n"
    "    parse(self, *a, **k)\n"
    "    print('PARSED'); sys.exit(0)\n"
    "argparse.ArgumentParser.parse_args = parse_only\n"
    "sys.argv = sys.argv[1:]\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
)


def documented_commands() -> list[tuple[str, str]]:
    found = []
    for readme in READMES:
        for line in readme.read_text().splitlines():
            for m in COMMAND.finditer(line):
                found.append((m.group(1), m.group(2).strip()))
            if re.search(r"\b(accelerate launch|torchrun)\b", line):
                for m in LAUNCHED.finditer(line):
                    found.append((m.group(1), m.group(2).strip()))
    return sorted(set(found))


def test_the_readmes_document_commands():
    scripts = {s for s, _ in documented_commands()}
    assert {
        "benchmarks/bench_quality.py",
        "benchmarks/bench_train.py",
        "stages/train.py",
        "stages/base.py",
    } <= scripts


@pytest.mark.parametrize("script,args", documented_commands(), ids=lambda v: v or "-")
def test_documented_command_line_parses(script, args, tmp_path):
    assert (REPO / script).is_file(), f"the README names {script}, which does not exist"
    argv = shlex.split(args.replace("WEIGHTS", str(tmp_path / "w.safetensors")))
    r = subprocess.run(
        [sys.executable, "-c", PARSE_ONLY, str(REPO / script), *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0 and "PARSED" in r.stdout, f"{script} {args}:\n{r.stderr[-2000:]}"


def test_documented_mlflow_ui_serves_and_stops(tmp_path):
    """The README's `mlflow ui` line serves the store, and a SIGTERM to it leaves no process
    behind."""
    import os
    import signal
    import socket
    import time
    import urllib.request

    line = next(
        ln
        for ln in (REPO / "README.md").read_text().splitlines()
        if "mlflow ui " in ln and "#" in ln
    )
    words = shlex.split(line.split("#")[0])
    env = dict(os.environ)
    while "=" in words[0]:
        key, value = words.pop(0).split("=", 1)
        env[key] = value
    assert words[:2] == ["mlflow", "ui"], line
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [str(Path(sys.executable).parent / "mlflow"), *words[1:], "--port", str(port)]
    proc = subprocess.Popen(
        [a.replace("sqlite:///mlflow.db", f"sqlite:///{tmp_path / 'mlflow.db'}") for a in argv],
        cwd=tmp_path,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                assert urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).status == 200
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, (
                    "mlflow ui did not start"
                )
                time.sleep(1)
        time.sleep(5)  # MLflow's job runner, if enabled, starts its consumers after the server
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while True:  # every process of its group gone
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            assert time.monotonic() < deadline, "mlflow ui left processes behind after SIGTERM"
            time.sleep(0.5)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
