"""The ``grm`` command line: compress, decompress and inspect .grm files, one or many.

grm compress photo.png photo.grm --model m.safetensors    # one file, explicit model
grm compress photos/ -o coded/ --rate q2                  # a folder, model found by rate point
grm decompress coded/ -o decoded/                         # models found by the hash in each file
cat photo.png | grm compress - - --bpp 0.3 > photo.grm    # stdin/stdout, closest rate to 0.3 bpp
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from functools import partial
from pathlib import Path

from . import __version__
from .quiet import quiet_dependencies
from .threads import wait_passively

wait_passively()  # before torch loads (image_io imports it)

from .errors import GrmError, debugging, memory_errors  # noqa: E402
from .cli_plan import STDIO, Job, plan  # noqa: E402

EXIT_ERROR = 1


def _read(src: str) -> bytes | str:
    return sys.stdin.buffer.read() if src == STDIO else src


def _read_grm(src: str) -> bytes:
    from .codec import read_grm

    return sys.stdin.buffer.read() if src == STDIO else read_grm(src)


def _write(dst: str, data: bytes) -> None:
    from .image_io import write_atomic

    if dst == STDIO:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        Path(dst).parent.mkdir(parents=True, exist_ok=True)
        write_atomic(dst, data)


class Models:
    """Loaded models by path, and the search path for finding them."""

    def __init__(self, args):
        from .model_search import search_path

        self.explicit = getattr(args, "model", None)
        self.dirs = search_path(getattr(args, "models", None))
        self.device = getattr(args, "device", "cpu")
        self.precision = getattr(args, "precision", "auto")
        self._loaded = {}

    def load(self, path):
        from .model_file import load_model

        key = Path(path).resolve()
        if key not in self._loaded:
            self._loaded[key] = load_model(path, self.device, self.precision)
        return self._loaded[key]

    def for_file(self, weights_hash: bytes, name: str):
        from .model_search import find_by_hash

        return self.load(self.explicit or find_by_hash(weights_hash, name, self.dirs))


def _attempt(one, job: Job) -> tuple[int, int] | str:
    """(bytes, pixels) of one coded file, or the one line that says why it failed."""
    try:
        return one(job)
    except (GrmError, OSError) as e:
        if debugging():
            raise
        msg = (e.strerror or str(e)) if isinstance(e, OSError) else str(e)
        return msg if job.src in msg else f"{job.src}: {msg}"


def _run_batch(jobs: list[Job], one, verb: str, args) -> int:
    """Code every job; failures are reported one line each and do not stop the others."""
    from tqdm.auto import tqdm

    failed, total_bytes, pixels, t0 = 0, 0, 0, time.perf_counter()
    show = len(jobs) > 1 and sys.stderr.isatty()
    with _outcomes(jobs, one, verb, args) as outcomes:
        for outcome in tqdm(
            outcomes, total=len(jobs), desc=verb, unit="file", disable=not show, file=sys.stderr
        ):
            if isinstance(outcome, str):
                failed += 1
                print(f"grm: error: {outcome}", file=sys.stderr)
            else:
                total_bytes += outcome[0]
                pixels += outcome[1]
    if len(jobs) > 1:
        done = len(jobs) - failed
        bpp = f"{8 * total_bytes / pixels:.4f}" if pixels else "n/a"
        print(
            f"{verb}: {done} of {len(jobs)} files, {total_bytes:,} bytes of .grm, mean {bpp} bpp, "
            f"{time.perf_counter() - t0:.1f} s" + (f", {failed} failed" if failed else ""),
            file=_status_stream(jobs),
        )
    return EXIT_ERROR if failed else 0


def _status_stream(jobs: list[Job]):
    """Status lines go to stdout unless stdout carries the data."""
    return sys.stderr if any(j.dst == STDIO for j in jobs) else sys.stdout


# A folder is coded by worker processes, one per core, each with its own model and one
# thread (grm/worker_pool.py). Small batches, stdin/stdout and GPUs stay in this process.


def _workers(args, jobs: list[Job]) -> int:
    from .worker_pool import workers_for

    asked = getattr(args, "jobs", 0) or 0
    if not asked and (
        getattr(args, "device", "cpu") != "cpu" or any(STDIO in (j.src, j.dst) for j in jobs)
    ):
        return 1
    return workers_for(len(jobs), asked=asked)


@contextlib.contextmanager
def _outcomes(jobs: list[Job], one, verb: str, args):
    """Each job's ``_attempt``, in order: here, or from worker processes."""
    from .worker_pool import mapped

    settings = {k: v for k, v in vars(args).items() if k != "func"}
    local = partial(_attempt, one)
    with mapped(_worker_one, (verb, settings), jobs, _workers(args, jobs), local) as outcomes:
        yield outcomes


def _worker_one(verb: str, settings: dict):
    """A worker's own plan (its models loaded once), wrapped as ``_attempt``."""
    one = _PLANS[verb](argparse.Namespace(**settings))[1]

    def attempt(job: Job):
        outcome = _attempt(one, job)
        sys.stdout.flush()
        return outcome

    return attempt


def _compress(args) -> int:
    return _run_batch(*_compress_plan(args), "compress", args)


def _compress_plan(args):
    """(jobs, the function that codes one): the models are loaded here, once."""
    from .codec import encode_array
    from .image_io import IMAGE_SUFFIXES, read_image
    from .model_search import find_by_rate, variant_models

    models = Models(args)
    if args.model:
        candidates = [args.model]
    elif args.bpp is not None:
        candidates = variant_models(args.variant, models.dirs)
    else:
        candidates = [find_by_rate(args.rate, args.variant, models.dirs)]
    jobs = plan(args.inputs, args.output, IMAGE_SUFFIXES, ".grm")
    for m in candidates:  # a bad model fails once, up front, not once per image
        models.load(m)
    status = _status_stream(jobs)

    def one(job: Job):
        rgb, notes = read_image(_read(job.src), label=job.src)
        results = [(models.load(m).name, encode_array(models.load(m), rgb)) for m in candidates]
        name, res = (
            min(
                results,
                key=lambda nr: abs(8 * len(nr[1].data) / (rgb.shape[0] * rgb.shape[1]) - args.bpp),
            )
            if args.bpp is not None
            else results[0]
        )
        _write(job.dst, res.data)
        for note in notes:
            print(f"note: {job.src}: {note}", file=sys.stderr)
        h, w = res.height, res.width
        chosen = "" if args.model else f" with {name}"
        print(
            f"{job.dst}: {len(res.data)} bytes, {8 * len(res.data) / (h * w):.4f} bpp, {w}x{h}, "
            f"encoded in {res.seconds:.2f} s{chosen}",
            file=status,
        )
        return len(res.data), h * w

    return jobs, one


def _decompress(args) -> int:
    return _run_batch(*_decompress_plan(args), "decompress", args)


def _decompress_plan(args):
    from . import container
    from .codec import MAX_DECODE_PIXELS, decode_bytes
    from .image_io import png_bytes

    models = Models(args)
    jobs = plan(args.inputs, args.output, {".grm"}, ".png")
    status = _status_stream(jobs)

    def one(job: Job):
        data = _read_grm(job.src)
        header = container.unpack(data)
        lm = models.for_file(header.weights_hash, header.model_name)
        t = time.perf_counter()
        rgb, _ = decode_bytes(lm, data, args.max_pixels or MAX_DECODE_PIXELS)
        _write(job.dst, png_bytes(rgb))
        print(
            f"{job.dst}: {rgb.shape[1]}x{rgb.shape[0]}, decoded in {time.perf_counter() - t:.2f} s",
            file=status,
        )
        return len(data), rgb.shape[0] * rgb.shape[1]

    return jobs, one


_PLANS = {"compress": _compress_plan, "decompress": _decompress_plan}


def _info(args) -> int:
    from . import container
    from .errors import ModelFileError
    from .model_file import read_metadata
    from .model_search import file_hash, find_by_hash, search_path

    data = _read_grm(args.input)
    f = container.unpack(data)
    print(f"file:          {args.input}")
    print(f"format:        grm v{container.VERSION}, {len(data)} bytes")
    print(f"image:         {f.width}x{f.height}, {8 * len(data) / (f.width * f.height):.4f} bpp")
    print(f"model:         {f.model_name} (weights {f.weights_hash.hex()[:16]})")
    print("streams:       " + ", ".join(f"{n}={len(s)} B" for n, s in zip(("z", "y"), f.streams)))
    print(f"ŷ checksum:    {f.symbols_checksum.hex()}")
    dirs = search_path(args.models)
    try:
        path = Path(args.model) if args.model else find_by_hash(f.weights_hash, f.model_name, dirs)
    except ModelFileError as e:
        print(f"model file:    not found ({e})")
        return 0
    meta = read_metadata(path)
    matches = file_hash(path) == f.weights_hash
    print(
        f"model file:    {path} "
        f"({'matches' if matches else 'DOES NOT match: this file cannot decode it'})"
    )
    config = json.loads(meta.get("config", "{}"))
    print(f"architecture:  {meta.get('arch')}")
    if isinstance(config, dict) and "decode_order" in config:
        print(f"decode order:  {config['decode_order']}")
    if meta.get("arch") == "grm":
        kind = meta.get("entropy_model")
        print(
            "entropy model: "
            + (
                f"{kind}, stored in the model file (exact: decodes on any machine)"
                if kind
                else "not stored (a model file from before integer entropy models: re-export it "
                "with the export stage so every machine codes with the same tables)"
            )
        )
    print(f"model config:  {json.dumps(config, sort_keys=True)}")
    return 0 if matches else EXIT_ERROR


def _add_model_options(p: argparse.ArgumentParser, choose: bool) -> None:
    g = p.add_argument_group("model")
    g.add_argument(
        "--model", metavar="FILE", help="model file (.safetensors exported by the pipeline)"
    )
    g.add_argument(
        "--models",
        metavar="DIR",
        action="append",
        help="folder to search for models (repeatable; default $GRM_MODELS, else data/models)",
    )
    g.add_argument(
        "--device",
        default="cpu",
        metavar="DEV",
        help="run the model on cpu (default), cuda or cuda:N; grm's files decode the same on any "
        "of them (compressai peers' do not: their entropy models are float)",
    )
    g.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        default="auto",
        help="float format of the transforms: auto (default) is bf16 where the hardware has it "
        "(AMX, AVX-512 BF16, CUDA), else fp32. Files decode the same way whatever the format "
        "that wrote them: only the pixels move, by rounding noise",
    )
    if choose:
        g.add_argument(
            "--rate",
            default=None,
            help="the model at this rate point (e.g. q2) in the model folders",
        )
        g.add_argument(
            "--bpp",
            type=float,
            default=None,
            help="per image, the rate point whose bitstream is closest to this many bits per pixel",
        )
        g.add_argument(
            "--variant", default="grm", help="variant to choose --rate/--bpp among (default grm)"
        )


def _coding_command(sub, name: str, summary: str, what: str, description: str, func):
    from .worker_pool import PHOTOS_PER_WORKER

    p = sub.add_parser(name, help=summary, description=description)
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help=f"{what} files or folders (`-` = stdin); `IN OUT` names the output of one file",
    )
    p.add_argument(
        "-o", "--output", help="output file, or folder for several inputs (`-` = stdout)"
    )
    p.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=0,
        metavar="N",
        help=f"worker processes for many files (default: one per core, at most one per "
        f"{PHOTOS_PER_WORKER} files; 1: all in this process)",
    )
    p.set_defaults(func=func)
    return p


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="grm",
        description="Learned image codec with a global reference entropy model.",
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"grm {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    c = _coding_command(
        sub,
        "compress",
        "images → .grm files",
        "image",
        "Compress images (any format Pillow reads) into .grm files.",
        _compress,
    )
    _add_model_options(c, choose=True)
    d = _coding_command(
        sub,
        "decompress",
        ".grm files → PNG",
        ".grm",
        "Decode .grm files to PNG; each file names the model that wrote it.",
        _decompress,
    )
    _add_model_options(d, choose=False)
    d.add_argument(
        "--max-pixels",
        type=int,
        default=None,
        metavar="N",
        help="refuse files that declare more pixels than this (default 7680x4320; "
        "decoding memory grows with the declared size)",
    )
    i = sub.add_parser(
        "info",
        help="describe a .grm file and its model",
        description="Print a .grm file's header, and the model it needs if one is found.",
    )
    i.add_argument("input", help=".grm file (`-` = stdin)")
    _add_model_options(i, choose=False)
    i.set_defaults(func=_info)
    return p


def main(argv: list[str] | None = None) -> int:
    quiet_dependencies()
    parser = build_parser()
    args = parser.parse_args(argv)
    if (
        args.command == "compress"
        and sum(x is not None for x in (args.model, args.rate, args.bpp)) != 1
    ):
        parser.error("compress needs exactly one of --model FILE, --rate NAME or --bpp TARGET")
    try:
        with memory_errors():  # outside the codec too (reading a photo, loading a model)
            return args.func(args)
    except GrmError as e:
        if debugging():
            raise
        print(f"grm: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        # The reader went away (`grm info x.grm | head -1`): not an error. Point stdout at
        # /dev/null so the interpreter's final flush does not complain, and exit as a
        # process killed by SIGPIPE would.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except OSError as e:
        if debugging():
            raise
        print(f"grm: error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("grm: interrupted", file=sys.stderr)
        return 130


def run() -> None:
    """The ``grm`` command: ``main``, then exit without tearing down torch's module graph
    (0.4 s of a cold command's 2.5 s). Only the standard streams hold unwritten data:
    every file is written, synced and renamed before ``main`` returns."""
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    run()
