"""Files written on one device decode on another: CPU ↔ GPU round trips of real .grm files.

    python benchmarks/cross_device.py --models data/models --images data/eval_images \\
        [--devices cpu cuda]
                                      [--orders wavefront raster] [--config paper --size 256x256]
    python benchmarks/cross_device.py --devices cpu@fp32 cpu@bf16   # transform formats

A device may carry the float format of its transforms after ``@`` (``cpu@bf16``,
``cuda@fp32``; default ``auto``, as the CLI): a file written with bf16 transforms must
decode with fp32 ones and back, and the PSNR column shows what the format costs.

For every grm model, photo and decode order, each device encodes the photo and every
device decodes every file. The decoder checks the latents' checksum, so a probability
table that differed by one count on another device is an error, never a wrong image.
Reported per pair: whether it decoded, the seconds, and how far the reconstructions of
the two decoding devices are apart (g_s is float: rounding noise, not an error).
``--orders`` also codes with a decode order other than the model's own (valid, at a
different rate), which exercises the raster path with wavefront-trained models.
``--config`` adds an untrained model of that config (e.g. paper widths) at ``--size``.

Across machines use the CLI: ``grm compress ... --device cuda`` on one machine and
``grm decompress ... --device cpu`` on the other (the README gives the figures).
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device):
    _sync(device)
    t = time.perf_counter()
    out = fn()
    _sync(device)
    return out, time.perf_counter() - t


def _untrained(config: str, folder: Path) -> Path:
    """An untrained model of ``config`` written as a real model file (integer coder included)."""
    from grm.model import GRM, config_from
    from grm.model_file import save_model

    torch.manual_seed(0)
    model = GRM(config_from(config)).eval()
    return save_model(model, folder / f"{config}-untrained.safetensors", f"{config}-untrained")


def _photos(folder: str, size: str | None) -> dict[str, np.ndarray]:
    from grm.image_io import read_image

    if size:
        from bench_codec import photo_image

        w, h = map(int, size.split("x"))
        return {f"coffee-{size}": np.asarray(photo_image(w, h)).copy()}
    photos = {p.stem: read_image(p)[0] for p in sorted(Path(folder).glob("*.png"))}
    if not photos:
        raise SystemExit(f"no PNG images in {folder}")
    return photos


def check(
    paths: list[Path], photos: dict[str, np.ndarray], devices: list[str], orders: list[str]
) -> int:
    """Print one row per (model, photo, order, encoder, decoder); return the failures."""
    from grm.codec import decode_bytes, encode_array
    from grm.errors import GrmError
    from grm.model_file import coding_device, load_model
    from grm.pipeline.metrics import psnr

    specs = {d: d.partition("@") for d in devices}
    devs = {d: coding_device(dev) for d, (dev, _, _) in specs.items()}
    print(
        f"{'model / photo':34s} {'order':9s} {'enc':9s} {'dec':9s} {'bytes':>8s} {'enc s':>7s} "
        f"{'dec s':>7s} {'PSNR':>6s} "
        f"{'max |Δpixel|':>12s}  result"
    )
    failures = 0
    for path in paths:
        loaded = {d: load_model(path, str(devs[d]), specs[d][2] or "auto") for d in devices}
        first = loaded[devices[0]]
        if first.arch != "grm":
            continue
        for order in orders or [first.model.config.decode_order]:
            for lm in loaded.values():
                lm.model.config = dataclasses.replace(lm.model.config, decode_order=order)
            for name, rgb in photos.items():
                for enc_dev in devices:
                    enc, enc_s = _timed(lambda: encode_array(loaded[enc_dev], rgb), devs[enc_dev])
                    images = {}
                    for dec_dev in devices:
                        quality = float("nan")
                        try:
                            (img, _), dec_s = _timed(
                                lambda: decode_bytes(loaded[dec_dev], enc.data), devs[dec_dev]
                            )
                            images[dec_dev] = img
                            quality, result = psnr(rgb, img), "ok"
                        except GrmError as e:
                            failures += 1
                            dec_s, result = float("nan"), f"FAILED: {e}"
                        others = [images[d] for d in images if d != dec_dev]
                        diff = (
                            f"{int(np.abs(others[0].astype(int) - images[dec_dev]).max()):12d}"
                            if others and dec_dev in images
                            else f"{'':12s}"
                        )
                        print(
                            f"{first.name + ' / ' + name:34s} {order:9s} {enc_dev:9s} "
                            f"{dec_dev:9s} {len(enc.data):8d} {enc_s:7.2f} {dec_s:7.2f} "
                            f"{quality:6.2f} {diff}  {result}",
                            flush=True,
                        )
    return failures


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--models", default="data/models", help="a grm model file, or a folder of them")
    ap.add_argument("--images", default="data/eval_images", help="folder of PNG photos")
    ap.add_argument("--devices", nargs="+", default=["cpu", "cuda"])
    ap.add_argument(
        "--orders", nargs="*", default=[], help="decode orders to code with (default: the model's)"
    )
    ap.add_argument(
        "--config", default=None, help="instead: an untrained model of this config (e.g. paper)"
    )
    ap.add_argument(
        "--size", default=None, help="with --config: the coffee photo at WxH (default the --images)"
    )
    args = ap.parse_args()
    from grm.errors import GrmError

    with tempfile.TemporaryDirectory() as tmp:
        if args.config:
            paths = [_untrained(args.config, Path(tmp))]
        else:
            root = Path(args.models)
            paths = sorted(root.glob("*.safetensors")) if root.is_dir() else [root]
        try:
            failures = check(
                paths,
                _photos(args.images, args.size if args.config else None),
                args.devices,
                args.orders,
            )
        except GrmError as e:
            raise SystemExit(f"cross_device: {e}") from None
    print(f"torch {torch.__version__}; {'all decoded' if not failures else f'{failures} FAILED'}")
    raise SystemExit(1 if failures else 0)


if __name__ == "__main__":
    main()
