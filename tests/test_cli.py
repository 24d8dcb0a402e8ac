import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from grm.cli import main


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "grm.cli", *map(str, args)], capture_output=True, text=True
    )


def test_compress_decompress_info(trained_model_path, photo, tmp_path, capsys):
    src = tmp_path / "in.png"
    Image.fromarray(photo[:80, :100]).save(src)
    assert (
        main(["compress", str(src), str(tmp_path / "a.grm"), "--model", str(trained_model_path)])
        == 0
    )
    assert (
        main(
            [
                "decompress",
                str(tmp_path / "a.grm"),
                str(tmp_path / "out.png"),
                "--model",
                str(trained_model_path),
            ]
        )
        == 0
    )
    assert main(["info", str(tmp_path / "a.grm")]) == 0
    out = capsys.readouterr().out
    assert "bpp" in out and "100x80" in out and "tiny-test" in out
    assert np.asarray(Image.open(tmp_path / "out.png")).shape == (80, 100, 3)


def test_grayscale_and_rgba_inputs_are_converted_with_a_note(trained_model_path, tmp_path, capsys):
    for mode, shape in (("L", (30, 40)), ("RGBA", (30, 40, 4)), ("I;16", (30, 40))):
        arr = (
            np.random.default_rng(0)
            .integers(0, 255, size=shape)
            .astype(np.uint16 if mode == "I;16" else np.uint8)
        )
        img = Image.fromarray(arr, mode=mode) if mode != "I;16" else Image.fromarray(arr * 200)
        src = tmp_path / f"{mode.replace(';', '')}.png"
        img.save(src)
        assert (
            main(
                ["compress", str(src), str(tmp_path / "x.grm"), "--model", str(trained_model_path)]
            )
            == 0
        )
        assert "note:" in capsys.readouterr().err


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "not found"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_text("hello"), "not an image"),
    ],
)
def test_bad_inputs_exit_nonzero_with_one_line(trained_model_path, tmp_path, make, message):
    src = tmp_path / "bad.png"
    make(src)
    r = run("compress", src, tmp_path / "o.grm", "--model", trained_model_path)
    assert r.returncode == 1
    assert message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o.grm").exists()


def test_bad_grm_and_model_files(trained_model_path, tmp_path):
    (tmp_path / "junk.grm").write_bytes(b"GRMc\x02" + bytes(40))
    r = run("decompress", tmp_path / "junk.grm", tmp_path / "o.png", "--model", trained_model_path)
    assert r.returncode == 1 and "checksum" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "old.grm").write_bytes(b"GRMc\x01" + bytes(40))
    r = run("decompress", tmp_path / "old.grm", tmp_path / "o.png", "--model", trained_model_path)
    assert r.returncode == 1 and "format 1" in r.stderr and "re-encode" in r.stderr
    (tmp_path / "m.safetensors").write_bytes(b"\x00" * 100)
    r = run(
        "compress", tmp_path / "junk.grm", tmp_path / "o.grm", "--model", tmp_path / "m.safetensors"
    )
    assert r.returncode == 1 and "not a valid grm model" in r.stderr
    r = run("info", tmp_path / "missing.grm")
    assert r.returncode == 1 and "not found" in r.stderr


def test_a_small_file_declaring_a_huge_image_is_refused_before_decoding(
    trained_model_path, tmp_path
):
    import time
    from grm import container
    from grm.model_file import load_model

    lm = load_model(trained_model_path)
    bomb = container.pack(
        container.GrmFile(lm.name, lm.weights_hash, 16000, 16000, bytes(8), (b"\0" * 8, b"\0" * 8))
    )
    (tmp_path / "bomb.grm").write_bytes(bomb)
    t = time.perf_counter()
    r = run("decompress", tmp_path / "bomb.grm", tmp_path / "o.png", "--model", trained_model_path)
    assert r.returncode == 1 and "256,000,000 pixels" in r.stderr and "--max-pixels" in r.stderr
    assert time.perf_counter() - t < 60 and not (tmp_path / "o.png").exists()
    r = run(
        "decompress",
        tmp_path / "bomb.grm",
        tmp_path / "o.png",
        "--model",
        trained_model_path,
        "--max-pixels",
        "1000",
    )
    assert r.returncode == 1 and "limit of 1,000 " in r.stderr


def test_help_for_every_command():
    for cmd in ([], ["compress"], ["decompress"], ["info"]):
        r = run(*cmd, "--help")
        assert r.returncode == 0 and "usage: grm" in r.stdout


def test_help_and_version_answer_without_loading_torch():
    """torch alone takes 1.6 s to import: asking grm what it is must not wait for it."""
    for args in (["--version"], ["--help"], ["compress", "--help"]):
        code = (
            "import sys\nfrom grm.cli import main\n"
            "try:\n    main(sys.argv[1:])\n"
            "except SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'compressai', 'numpy', 'PIL') if m in sys.modules]\n"
            "print('HEAVY', heavy)"
        )
        r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert "HEAVY []" in r.stdout, (args, r.stdout[-300:])


def test_the_codec_path_imports_only_what_coding_needs(trained_model_path, photo, tmp_path):
    """compressai's package import (torch-geometric, its point-cloud registry: 2.6 s) and the
    pipeline's packages stay out of a compress + decompress."""
    Image.fromarray(photo[:64, :64]).save(tmp_path / "p.png")
    src, m = tmp_path / "p.png", trained_model_path
    grm_file, png = tmp_path / "p.grm", tmp_path / "d.png"
    code = (
        "import sys\nfrom grm.cli import main\n"
        f"assert main(['compress', r'{src}', r'{grm_file}', '--model', r'{m}']) == 0\n"
        f"assert main(['decompress', r'{grm_file}', r'{png}', '--model', r'{m}']) == 0\n"
        "unused = ('torch_geometric', 'scipy.stats._stats_py', 'compressai.datasets', "
        "'compressai.models', 'mlflow', 'accelerate', 'webdataset', 'dvc')\n"
        "print('LOADED', [u for u in unused if u in sys.modules])"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "LOADED []" in r.stdout, r.stdout[-500:]
    assert png.is_file()


def test_out_of_memory_is_one_line_not_a_traceback(
    trained_model_path, photo, tmp_path, capsys, monkeypatch
):
    """torch reports a failed allocation as RuntimeError; the CLI says what happened (and a
    decoder must not blame the file for it)."""
    from grm.model import GRM

    src = tmp_path / "in.png"
    Image.fromarray(photo[:64, :64]).save(src)
    assert (
        main(["compress", str(src), str(tmp_path / "a.grm"), "--model", str(trained_model_path)])
        == 0
    )

    def no_memory(*args, **kwargs):
        raise RuntimeError(
            "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate "
            "memory: you tried to allocate 6417285120 bytes. Error code 12"
        )

    monkeypatch.setattr(GRM, "compress", no_memory)
    monkeypatch.setattr(GRM, "decompress", no_memory)
    capsys.readouterr()
    assert (
        main(["compress", str(src), str(tmp_path / "b.grm"), "--model", str(trained_model_path)])
        == 1
    )
    assert (
        main(
            [
                "decompress",
                str(tmp_path / "a.grm"),
                str(tmp_path / "a.png"),
                "--model",
                str(trained_model_path),
            ]
        )
        == 1
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(
        "out of memory (an allocation of 6.0 GiB failed)" in line for line in err
    ), err
    assert not (tmp_path / "b.grm").exists() and not (tmp_path / "a.png").exists()


@pytest.mark.parametrize(
    "device, message",
    [
        ("tpu", "unknown device 'tpu'"),
        ("cuda:7", "cuda:7"),
        ("meta", "not supported"),
    ],
)
def test_a_device_this_machine_lacks_is_one_line(
    trained_model_path, photo, tmp_path, capsys, device, message
):
    if device.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has that GPU")
    src = tmp_path / "in.png"
    Image.fromarray(photo[:64, :64]).save(src)
    capsys.readouterr()
    assert (
        main(
            [
                "compress",
                str(src),
                str(tmp_path / "a.grm"),
                "--model",
                str(trained_model_path),
                "--device",
                device,
            ]
        )
        == 1
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("grm: error:") and message in err[0], err
    assert not (tmp_path / "a.grm").exists()


def test_explicit_cpu_device_writes_the_same_file(trained_model_path, photo, tmp_path):
    src = tmp_path / "in.png"
    Image.fromarray(photo[:64, :64]).save(src)
    for name, extra in (("a.grm", []), ("b.grm", ["--device", "cpu"])):
        assert (
            main(
                [
                    "compress",
                    str(src),
                    str(tmp_path / name),
                    "--model",
                    str(trained_model_path),
                    *extra,
                ]
            )
            == 0
        )
    assert (tmp_path / "a.grm").read_bytes() == (tmp_path / "b.grm").read_bytes()
    assert (
        main(
            [
                "decompress",
                str(tmp_path / "b.grm"),
                str(tmp_path / "b.png"),
                "--device",
                "cpu",
                "--model",
                str(trained_model_path),
            ]
        )
        == 0
    )
