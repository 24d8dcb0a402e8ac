"""Encode/decode seconds of one trained model on a folder of photos, in one process.

    python benchmarks/bench_trained.py --model data/models/grm-q2.safetensors
        [--photos data/eval_photos] [--repeat 2]

What the codec costs with real symbol statistics (bench_codec.py times untrained models):
each photo is coded --repeat times and its best time kept; every decode is checked
against the encoder's latents. Prints the mean per photo.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", required=True)
    ap.add_argument("--photos", default="data/eval_photos")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    from bench_codec import timed
    from grm.codec import decode_bytes, encode_array
    from grm.image_io import read_image
    from grm.model_file import load_model

    lm = load_model(args.model)
    paths = sorted(Path(args.photos).rglob("*.png"))
    if not paths:
        raise SystemExit(f"no .png photos under {args.photos}")
    enc_s = dec_s = 0.0
    for path in paths:
        arr, _ = read_image(path)
        te, enc = timed(lambda: encode_array(lm, arr), args.repeat)
        td, (_, y) = timed(lambda: decode_bytes(lm, enc.data), args.repeat)
        if not torch.equal(y, enc.y_symbols):
            raise SystemExit(f"{path}: decoded latents differ from the encoder's")
        enc_s, dec_s = enc_s + te, dec_s + td
    n = len(paths)
    print(
        f"{Path(args.model).name}: {n} photos, threads {torch.get_num_threads()}, best of "
        f"{args.repeat}: mean encode {enc_s / n:.3f} s, decode {dec_s / n:.3f} s a photo"
    )


if __name__ == "__main__":
    main()
