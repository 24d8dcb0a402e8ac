"""Peak memory (and time) to compress + decompress one large photo: grm vs mbt2018.

    python benchmarks/bench_memory.py [--size 3840x2160] [--config paper] [--order wavefront]

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
    ap.add_argument("--size", default="3840x2160")
    ap.add_argument("--config", default="paper")
    ap.add_argument("--order", default="wavefront", choices=["raster", "wavefront"])
    ap.add_argument("--codecs", nargs="+", default=["grm", "mbt2018"], choices=["grm", "mbt2018"],
                    help="which to run (mbt2018 takes ~20 min at 3840x2160 on 2 cores)")
    args = ap.parse_args()
    res = {}
    print(f"image {args.size}, config {args.config}, grm decode order {args.order}")
    print(f"{'codec':8s} {'peak MiB':>9s} {'(model loaded)':>15s} {'encode s':>9s} {'decode s':>9s} {'bit-exact':>9s}")
    for which in args.codecs:
        out = subprocess.run([sys.executable, "-c", CHILD, which, args.size, args.config, args.order],
                             capture_output=True, text=True, check=True)
        r = res[which] = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{which:8s} {r['peak_mib']:9.0f} {r['before_coding_mib']:15.0f} {r['encode_s']:9.1f} "
              f"{r['decode_s']:9.1f} {str(r['exact']):>9s}", flush=True)
    if len(res) == 2:
        print(f"peak memory ratio grm/mbt2018: {res['grm']['peak_mib'] / res['mbt2018']['peak_mib']:.2f}x")


if __name__ == "__main__":
    main()
