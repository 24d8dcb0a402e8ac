"""Peak memory (and time) to compress + decompress one large photo: grm vs mbt2018.

    python benchmarks/bench_memory.py [--sizes 768x512 3840x2160 7680x4320] [--codecs grm mbt2018]

At paper widths on 2 cores grm takes ~3 min at 3840x2160 and ~30 min at 7680x4320 (the
reference search grows with the square of the image); mbt2018's serial context model takes
~10 min and ~40 min.

Each codec runs in its own process so the peaks do not mix; the photo is a bundled one
resized to the requested size. Also checks that grm's round trip is bit-exact.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time, dataclasses, torch
sys.path.insert(0, "benchmarks")
from bench_codec import photo
from grm.model import GRM, config_from
from grm.peers import Peer
which, size, cfg_name, order = sys.argv[1:5]
w, h = map(int, size.split("x"))
x = photo(w, h)
cfg = dataclasses.replace(config_from(cfg_name), decode_order=order)
torch.manual_seed(0)
model = (GRM(cfg) if which == "grm" else Peer("mbt2018", cfg)).eval()
model.update(force=True)
if which == "grm":   # as a model file carries it
    from grm.integer_model import IntegerEntropyModel
    model.attach_integer_model(IntegerEntropyModel.export(model))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
with torch.no_grad():
    strings, y = model.compress(x)
    t_enc = time.perf_counter() - t
    x_hat, y2 = model.decompress(strings, h, w)
t_all = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak_mib": peak / 1024, "before_coding_mib": base / 1024, "encode_s": t_enc,
                  "decode_s": t_all - t_enc, "bytes": sum(map(len, strings)), "exact": bool(torch.equal(y, y2))}))
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=["768x512", "3840x2160", "7680x4320"])
    ap.add_argument("--config", default="paper")
    ap.add_argument("--order", default="wavefront", choices=["raster", "wavefront"])
    ap.add_argument("--codecs", nargs="+", default=["grm", "mbt2018"], choices=["grm", "mbt2018"])
    args = ap.parse_args()
    print(f"config {args.config}, grm decode order {args.order}")
    print(f"{'image':>10s} {'codec':8s} {'peak MiB':>9s} {'(model loaded)':>15s} {'encode s':>9s} "
          f"{'decode s':>9s} {'bit-exact':>9s}", flush=True)
    for size in args.sizes:
        res = {}
        for which in args.codecs:
            out = subprocess.run([sys.executable, "-c", CHILD, which, size, args.config, args.order],
                                 capture_output=True, text=True)
            if out.returncode:
                print(f"{size:>10s} {which:8s} failed: {out.stderr.strip().splitlines()[-1:]}", flush=True)
                continue
            r = res[which] = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{size:>10s} {which:8s} {r['peak_mib']:9.0f} {r['before_coding_mib']:15.0f} "
                  f"{r['encode_s']:9.1f} {r['decode_s']:9.1f} {str(r['exact']):>9s}", flush=True)
        if len(res) == 2:
            print(f"{size:>10s} peak memory grm/mbt2018: {res['grm']['peak_mib'] / res['mbt2018']['peak_mib']:.2f}x",
                  flush=True)


if __name__ == "__main__":
    main()
