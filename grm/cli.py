"""The ``grm`` command line: compress, decompress and inspect .grm files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import GrmError

EXIT_ERROR = 1


def _compress(args) -> None:
    from .codec import compress_file
    from .image_io import write_atomic
    from .model_file import load_model
    lm = load_model(args.model)
    res, notes = compress_file(lm, args.input)
    write_atomic(args.output, res.data)
    h, w = res.height, res.width
    for note in notes:
        print(f"note: {args.input}: {note}", file=sys.stderr)
    print(f"{args.output}: {len(res.data)} bytes, {8 * len(res.data) / (h * w):.4f} bpp, "
          f"{w}x{h}, encoded in {res.seconds:.2f} s")


def _decompress(args) -> None:
    import time
    from .codec import MAX_DECODE_PIXELS, decode_bytes, read_grm
    from .image_io import write_png
    from .model_file import load_model
    data = read_grm(args.input)
    lm = load_model(args.model)
    t = time.perf_counter()
    rgb, _ = decode_bytes(lm, data, args.max_pixels or MAX_DECODE_PIXELS)
    write_png(args.output, rgb)
    print(f"{args.output}: {rgb.shape[1]}x{rgb.shape[0]}, decoded in {time.perf_counter() - t:.2f} s")


def _info(args) -> None:
    from . import container
    from .codec import read_grm
    data = read_grm(args.input)
    f = container.unpack(data)
    print(f"file:          {args.input}")
    print(f"format:        grm v{container.VERSION}, {len(data)} bytes")
    print(f"image:         {f.width}x{f.height}, {8 * len(data) / (f.width * f.height):.4f} bpp")
    print(f"model:         {f.model_name} (weights {f.weights_hash.hex()[:16]})")
    print(f"streams:       " + ", ".join(f"{n}={len(s)} B" for n, s in zip(("z", "y"), f.streams)))
    print(f"ŷ checksum:    {f.symbols_checksum.hex()}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="grm", description="Learned image codec with a global reference entropy model.")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compress", help="image file → .grm file",
                       description="Compress an image (any format Pillow reads) into a .grm file.")
    c.add_argument("input", help="input image")
    c.add_argument("output", help="output .grm file")
    c.add_argument("--model", required=True, help="model file (.safetensors exported by the pipeline)")
    c.set_defaults(func=_compress)
    d = sub.add_parser("decompress", help=".grm file → PNG",
                       description="Decode a .grm file to PNG with the model that wrote it.")
    d.add_argument("input", help="input .grm file")
    d.add_argument("output", help="output PNG")
    d.add_argument("--model", required=True, help="model file the .grm was written with")
    d.add_argument("--max-pixels", type=int, default=None, metavar="N",
                   help="refuse files that declare more pixels than this (default 7680x4320; "
                        "decoding needs about 1.1 KB of memory per pixel at paper widths)")
    d.set_defaults(func=_decompress)
    i = sub.add_parser("info", help="describe a .grm file", description="Print a .grm file's header.")
    i.add_argument("input", help=".grm file")
    i.set_defaults(func=_info)
    return p


def _quiet_dependencies() -> None:
    """Deprecation chatter from torch/compressai imports is not the user's business."""
    import warnings
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"(torch|torchvision|compressai)\b")


def main(argv: list[str] | None = None) -> int:
    _quiet_dependencies()
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except GrmError as e:
        print(f"grm: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as e:
        print(f"grm: error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("grm: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
