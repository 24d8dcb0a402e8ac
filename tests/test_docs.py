"""The documentation: the site builds in mkdocs' strict mode (any warning, a dead link or
anchor among them, fails), the README stays a short guide whose links lead somewhere, and
the params reference names every key the code reads."""

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

from conftest import REPO

BIN = Path(sys.executable).parent


def test_the_site_builds_strict_without_a_warning(tmp_path):
    r = subprocess.run(
        [str(BIN / "mkdocs"), "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "WARNING" not in r.stderr, r.stderr[-3000:]
    assert (tmp_path / "site/reference/params/index.html").is_file()


def test_every_docs_page_is_in_the_navigation():
    nav = (REPO / "mkdocs.yml").read_text()
    pages = {p.relative_to(REPO / "docs").as_posix() for p in (REPO / "docs").rglob("*.md")}
    assert {p for p in pages if p not in nav} == set()


def test_the_readme_is_short_and_its_links_lead_somewhere():
    text = (REPO / "README.md").read_text()
    assert text.count("\n") <= 250
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    assert any(t.startswith("docs/") for t in targets)
    missing = [t for t in targets if "://" not in t and not (REPO / t).exists()]
    assert not missing, f"README links to files that do not exist: {missing}"


def test_the_params_reference_names_every_key():
    from grm.model import GRMConfig
    from grm.pipeline.prepare import PrepareSettings
    from grm.pipeline.train import TrainSettings

    import yaml

    page = (REPO / "docs/reference/params.md").read_text()
    keys = {f"prepare.{f.name}" for f in dataclasses.fields(PrepareSettings)}
    keys |= {
        f"train.{f.name}"
        for f in dataclasses.fields(TrainSettings)
        if f.name not in ("arch", "lmbda")
    }
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for section in ("prepare", "train", "base", "report"):
        keys |= {f"{section}.{k}" for k in params[section]}
    missing = sorted(k for k in keys if f"`{k}`" not in page)
    assert not missing, f"docs/reference/params.md does not describe {missing}"
    switches = {f.name for f in dataclasses.fields(GRMConfig)}
    assert not [s for s in switches if f"`{s}`" not in page]
