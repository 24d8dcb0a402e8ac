"""Peak memory and time of a round trip through the `grm` command line: grm vs mbt2018.

    python benchmarks/bench_memory.py [--sizes 768x512 3840x2160 7680x4320] [--codecs grm mbt2018]

Each `grm compress` and `grm decompress` runs as its own process, as a user runs them,
and its peak is the kernel's count of resident memory for that process (ru_maxrss).
"loaded" is the peak of the same round trip on a 64x64 photo: libraries and model.
Models have untrained weights at the given widths (memory and time do not depend on
training); the photo is a bundled one resized. The CLI compares the decoded latents
with the encoder's checksum, so exit status 0 means the round trip was bit-exact.

At paper widths on 2 cores grm takes ~3 min at 3840x2160 and ~30 min at 7680x4320 (the
reference search grows with the square of the image); mbt2018's context model is a serial
loop (~10 min at 3840x2160) and its untiled transforms need ~8 GB there.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def write_models(folder: Path, config: str, order: str, codecs) -> dict[str, Path]:
    import torch
    from grm.model import GRM, config_from
    from grm.model_file import save_model
    from grm.peers import Peer

    cfg = dataclasses.replace(config_from(config), decode_order=order)
    out = {}
    for which in codecs:
        torch.manual_seed(0)
        model = (GRM(cfg) if which == "grm" else Peer("mbt2018", config)).eval()
        out[which] = save_model(model, folder / f"{which}.safetensors", which)
    return out


def write_photo(path: Path, width: int, height: int) -> None:
    from bench_codec import photo_image

    photo_image(width, height).save(path)


def measured(args: list[str], limit_bytes: int) -> tuple[float, float, str]:
    """(peak MiB, seconds, error line or '') of one command, in its own process."""

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    with tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        p = subprocess.Popen(
            [sys.executable, "-m", "grm", *args],
            stdout=subprocess.DEVNULL,
            stderr=err,
            preexec_fn=cap,
        )
        _, status, usage = os.wait4(p.pid, 0)
        seconds = time.perf_counter() - t
        err.seek(0)
        lines = err.read().decode(errors="replace").strip().splitlines()
    failed = os.waitstatus_to_exitcode(status) != 0
    return (
        usage.ru_maxrss / 1024,
        seconds,
        (lines[-1] if lines else f"exit status {status}") if failed else "",
    )


def round_trip(model: Path, photo: Path, work: Path, limit: int) -> dict:
    enc = measured(["compress", str(photo), str(work / "x.grm"), "--model", str(model)], limit)
    if enc[2]:
        return {"error": "compress: " + enc[2]}
    dec = measured(
        ["decompress", str(work / "x.grm"), str(work / "x.png"), "--model", str(model)], limit
    )
    if dec[2]:
        return {"error": "decompress: " + dec[2]}
    return {
        "peak": max(enc[0], dec[0]),
        "enc_peak": enc[0],
        "dec_peak": dec[0],
        "enc_s": enc[1],
        "dec_s": dec[1],
        "bytes": (work / "x.grm").stat().st_size,
    }


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", nargs="+", default=["768x512", "3840x2160", "7680x4320"])
    ap.add_argument("--config", default="paper")
    ap.add_argument("--order", default="wavefront", choices=["raster", "wavefront"])
    ap.add_argument("--codecs", nargs="+", default=["grm", "mbt2018"], choices=["grm", "mbt2018"])
    ap.add_argument(
        "--limit-gb",
        type=float,
        default=20.0,
        help="address-space cap per process, so a codec that cannot fit fails instead of swapping",
    )
    args = ap.parse_args()
    limit = int(args.limit_gb * 2**30)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        models = write_models(work, args.config, args.order, args.codecs)
        write_photo(work / "small.png", 64, 64)
        loaded = {
            k: round_trip(m, work / "small.png", work, limit).get("peak", float("nan"))
            for k, m in models.items()
        }
        print(f"config {args.config}, grm decode order {args.order}; CLI processes, peak RSS each")
        print(
            f"{'image':>10s} {'codec':8s} {'peak MiB':>9s} {'enc MiB':>8s} {'dec MiB':>8s} "
            f"{'loaded':>7s} "
            f"{'encode s':>9s} {'decode s':>9s} {'bytes':>10s}",
            flush=True,
        )
        for size in args.sizes:
            w, h = map(int, size.split("x"))
            write_photo(work / "photo.png", w, h)
            res = {}
            for which, model in models.items():
                r = round_trip(model, work / "photo.png", work, limit)
                if "error" in r:
                    print(f"{size:>10s} {which:8s} failed ({r['error']})", flush=True)
                    continue
                res[which] = r
                print(
                    f"{size:>10s} {which:8s} {r['peak']:9.0f} {r['enc_peak']:8.0f} "
                    f"{r['dec_peak']:8.0f} "
                    f"{loaded[which]:7.0f} {r['enc_s']:9.1f} {r['dec_s']:9.1f} {r['bytes']:10,d}",
                    flush=True,
                )
            if len(res) == 2:
                print(
                    f"{size:>10s} peak memory grm/mbt2018: "
                    f"{res['grm']['peak'] / res['mbt2018']['peak']:.2f}x",
                    flush=True,
                )


if __name__ == "__main__":
    main()
