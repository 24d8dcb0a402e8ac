"""Portable bitstreams: the entropy model is exact integer arithmetic, so a file decodes
the same on any thread count and with any summation order (as on another machine)."""

import hashlib

import numpy as np
import pytest
import torch

import grm.integer_ops as integer_ops
from grm import container, latent_coder
from grm.codec import decode_bytes, encode_array
from grm.integer_model import IntegerEntropyModel
from grm.integer_tables import Tables
from grm.model import GRM
from grm.model_file import load_model, save_model
from grm.pipeline.sample_images import bundled_photos
from grm.image_io import read_image
from grm.threads import torch_threads


@pytest.fixture(scope="module")
def photos():
    out = []
    for name, (top, left) in (("coffee", (100, 200)), ("chelsea", (60, 120))):
        arr, _ = read_image(bundled_photos()[name])
        out.append(np.ascontiguousarray(arr[top : top + 96, left : left + 160]))
    return out


@pytest.fixture(scope="module", params=["raster", "wavefront"])
def model_file(request, tmp_path_factory):
    torch.manual_seed(1)
    model = GRM({"base": "small", "decode_order": request.param}).eval()
    return load_model(save_model(model, tmp_path_factory.mktemp("m") / "m.safetensors", "portable"))


def _with_threads(n, fn, *args):
    with torch_threads(n):
        return fn(*args)


def test_files_decode_bit_exactly_across_thread_counts(model_file, photos):
    threads = (1, 2, 4)
    for rgb in photos:
        for t_enc in threads:
            enc = _with_threads(t_enc, encode_array, model_file, rgb)
            for t_dec in threads:
                _, y = _with_threads(t_dec, decode_bytes, model_file, enc.data)
                assert torch.equal(y, enc.y_symbols), (t_enc, t_dec)


def _reversed_numpy_matmul(
    a: torch.Tensor, b: torch.Tensor, add: torch.Tensor | None = None
) -> torch.Tensor:
    """Another summation order on another library: numpy, inner dimension in reverse
    chunks of 7, the added term last. Exact integer sums must not notice."""
    A, B = a.double().numpy(), b.double().numpy()
    out = np.zeros((A.shape[0], B.shape[1]))
    for k in reversed(range(0, A.shape[1], 7)):
        out += A[:, k : k + 7] @ B[k : k + 7]
    if add is not None:
        out += add.double().numpy()
    return torch.from_numpy(out).to(a.dtype)


def test_second_summation_order_gives_identical_tables(model_file, photos, monkeypatch):
    original = Tables.coding_tables
    digest = hashlib.sha256()

    def record(self, *args):
        t = original(self, *args)
        for arr in (t.probs, t.offsets, t.centre, t.spread):
            digest.update(np.ascontiguousarray(arr).tobytes())
        return t

    monkeypatch.setattr(Tables, "coding_tables", record)
    monkeypatch.setattr(integer_ops, "INT8_MIN_WEIGHTS", 0)  # every layer, small ones too
    enc = encode_array(model_file, photos[0])
    first, digest = digest, hashlib.sha256()
    # encoded with int8 digit products (on a CPU), decoded with float64 ones
    monkeypatch.setattr(integer_ops, "INT8", False)
    monkeypatch.setattr(integer_ops, "matmul", _reversed_numpy_matmul)
    _, y = decode_bytes(model_file, enc.data)
    assert torch.equal(y, enc.y_symbols)
    assert first.hexdigest() == digest.hexdigest()


@pytest.mark.skipif(not integer_ops.INT8, reason="this torch has no int8 matrix product")
@pytest.mark.parametrize("bits", [16, 8])
def test_int8_digit_products_equal_float64_ones(bits, monkeypatch):
    """At the extremes the format allows: 16-bit weights (files exported before 8-bit
    ones; two digits) and 8-bit weights (one digit), both ends; inputs up to the
    activation limit and as small as ŷ's, one row and many."""
    monkeypatch.setattr(integer_ops, "INT8_MIN_WEIGHTS", 0)
    torch.manual_seed(0)
    top = (1 << (bits - 1)) - 1  # the int16 the file stores reaches −2^15; export ±WEIGHT_MAX
    low = -top - 1 if bits == 16 else -integer_ops.WEIGHT_MAX
    for k, n, limit in ((4608, 40, 1 << 15), (2304, 33, integer_ops.ACT_LIMIT), (7, 3, 1)):
        w = torch.randint(low, top + 1, (n, k)).double()
        w[0, :3] = torch.tensor([top, low, top - 127.0])[: min(3, k)]
        bias = torch.randint(-(1 << 40), 1 << 40, (n,)).double()
        layer = integer_ops.QLayer(w, bias, torch.ones(n), torch.ones(n))
        for rows in (1, 11, 300):
            x = torch.randint(-limit, limit + 1, (rows, k)).double()
            x[0, 0] = -limit
            expected = integer_ops.matmul(x, w.t(), bias)
            assert torch.equal(layer.product(x), expected), (k, rows)
        digits = layer._cache["int8"].digits  # the int8 path did the products
        assert digits.shape[1] == n * (2 if bits == 16 else 1)


def test_model_file_carries_the_integer_model(model_file):
    stored = model_file.model.integer_model()
    fresh = IntegerEntropyModel.export(model_file.model)
    assert stored is model_file.model.integer_model()  # the stored one, not rebuilt
    for name, t in fresh.tensors().items():
        assert torch.equal(stored.tensors()[name], t), name


def test_integer_layers_follow_the_float_networks():
    """Quantisation error only: the integer hyper synthesis and parameter networks
    reproduce the float ones to a small fraction of their range."""
    torch.manual_seed(0)
    model = GRM("small").eval()
    coder = IntegerEntropyModel.export(model)
    z = torch.round(torch.randn(1, model.config.N, 3, 4) * 3)
    with torch.no_grad():
        psi = model.h_s(z)[0].flatten(1).t()
    psi_int = coder.hyper(z).double() / 2**integer_ops.FRAC
    assert (psi_int - psi).abs().max() < 0.01 * psi.abs().max() + 0.01
    y = torch.round(torch.randn(1, model.config.M, 8, 8) * 2)
    with torch.no_grad():
        logits, means, scales, _ = model.entropy_parameters(
            y, torch.zeros(1, 2 * model.config.M, 8, 8)
        )
    # the first position: no reference, zero ψ, only the context's zero padding
    phi = coder.local(torch.zeros(1, 12 * model.config.M))
    _, m_int, _ = coder.stages(
        phi,
        torch.zeros(1, 2 * model.config.M, dtype=torch.float64),
        torch.zeros(1, 2 * model.config.M),
    )
    ref = means[:, 0, :, 0, 0]
    assert (
        m_int[:, 0].double() / 2**integer_ops.FRAC - ref
    ).abs().max() < 0.01 * ref.abs().max() + 0.01


def test_layers_that_could_overflow_exact_sums_are_refused():
    w = torch.full((2, 4), 1.0)
    with pytest.raises(ValueError, match="exact float64"):
        integer_ops.QLayer.quantise(w, torch.tensor([1e12, 0.0]), 10, 1 << 22, leaky=False)


def test_model_file_without_integer_model_still_codes(model_file, photos, tmp_path):
    """A file exported before integer entropy models: the integer model is built from its
    float weights at load, which on one machine gives the very tables a stored one holds."""
    old = load_model(
        save_model(model_file.model, tmp_path / "old.safetensors", "portable", coder=False)
    )
    assert getattr(old.model, "_integer_model", None) is None
    enc = encode_array(old, photos[1])
    stored = load_model(save_model(old.model, tmp_path / "new.safetensors", "portable"))
    assert stored.model.integer_model() is stored.model.integer_model()
    f = container.unpack(enc.data)  # the same file, pointed at the re-exported model
    data = container.pack(
        container.GrmFile(
            f.model_name, stored.weights_hash, f.height, f.width, f.symbols_checksum, f.streams
        )
    )
    _, y = decode_bytes(stored, data)
    assert torch.equal(y, enc.y_symbols)


def test_tables_for_other_grids_are_refused():
    from grm.integer_tables import build_tables

    tables = build_tables()
    tables["sigma"] = tables["sigma"][::4].contiguous()
    with pytest.raises(ValueError, match="lookup grids"):
        Tables(tables)


def test_bands_and_candidate_blocks_leave_the_bits_unchanged(model_file, photos, monkeypatch):
    """Memory is bounded by working in bands of rows (h_s) and blocks of candidates (the
    reference search); sums are exact, so the smallest bands and blocks code the same."""
    import grm.latent_coder as latent_coder

    enc = encode_array(model_file, photos[0])
    monkeypatch.setattr(integer_ops, "BAND", 1)
    monkeypatch.setattr(latent_coder, "CANDIDATES", 7)
    assert encode_array(model_file, photos[0]).data == enc.data
    _, y = decode_bytes(model_file, enc.data)
    assert torch.equal(y, enc.y_symbols)


def test_banded_convolutions_match_the_whole_image(monkeypatch):
    torch.manual_seed(3)
    x = torch.round(torch.randn(6, 11, 9) * 2**12)
    for k, op in ((5, integer_ops.conv_transpose2d), (3, integer_ops.conv2d)):
        layer = integer_ops.QLayer.quantise(
            torch.randn(4, 6, k, k), torch.randn(4), 10, 1 << 22, leaky=True
        )
        monkeypatch.setattr(integer_ops, "BAND", 64)
        whole = op(x, layer)
        reference = (
            torch.nn.functional.conv_transpose2d(
                x[None].double(),
                layer.weight.transpose(0, 1),
                stride=2,
                padding=2,
                output_padding=1,
            )
            if k == 5
            else torch.nn.functional.conv2d(x[None].double(), layer.weight, padding=1)
        )
        assert torch.equal(
            whole, layer.requantise(reference[0] + layer.bias.view(-1, 1, 1), 0).float()
        )
        for band in (1, 2, 4):
            monkeypatch.setattr(integer_ops, "BAND", band)
            assert torch.equal(op(x, layer), whole), (k, band)


def test_cdf_lookup_is_the_stored_table_interpolated():
    """Φ is looked up in a table interpolated once at load; the integers must be those of
    interpolating the stored 2^-8 table per call (what earlier files were coded with)."""
    from grm.integer_tables import T_BITS, T_MAX, T_STEP_BITS, build_tables

    tables = Tables(build_tables())
    d = torch.arange(-(1 << 21), 1 << 21, 3, dtype=torch.int64)
    s = torch.arange(d.numel()) % tables.sigma.numel()
    t = torch.round(d.double() * tables.inv_sigma[s]).long()
    limit = T_MAX << T_BITS
    t = t.clamp(-limit, limit - 1) + limit
    shift = T_BITS - T_STEP_BITS
    i, f = t >> shift, t & ((1 << shift) - 1)
    expected = tables.phi[i] + (((tables.phi[i + 1] - tables.phi[i]) * f) >> shift)
    assert torch.equal(tables.cdf(d, s).long(), expected)
    assert torch.equal(tables.cdf(d.double(), s).long(), expected)  # float64 integers too


def test_leaky_requantisation_takes_the_multiplier_of_the_sign():
    """The LeakyReLU is folded into the requantisation as max(acc·mult, acc·mult_neg);
    that must be acc·mult for acc ≥ 0 and acc·mult_neg below, bit for bit."""
    torch.manual_seed(3)
    layer = integer_ops.QLayer.quantise(
        torch.randn(64, 32), torch.randn(64), 10, 1 << 22, leaky=True
    )
    acc = torch.round(torch.randn(500, 64, dtype=torch.float64) * 2**40)
    acc[:, :4] = 0.0
    chosen = torch.where(acc >= 0, layer.mult, layer.mult_neg)
    expected = (acc * chosen).round().clamp(-integer_ops.ACT_LIMIT, integer_ops.ACT_LIMIT)
    assert torch.equal(layer.requantise(acc.clone(), -1), expected)
    with pytest.raises(ValueError, match="negative-side multiplier"):
        integer_ops.QLayer(layer.weight, layer.bias, layer.mult_neg, layer.mult)


def test_encoder_batches_code_the_bytes_of_one_group_at_a_time(model_file, photos, monkeypatch):
    """The encoder evaluates the model for many groups at once (each reading only earlier
    groups); the bytes must be those of evaluating one group at a time, the decoder's way,
    with batches that end inside and at the ends of wavefronts alike."""
    g_a_out = model_file.model.g_a[-1]
    before = g_a_out.weight.detach().clone()
    with torch.no_grad():  # an untrained g_a rounds to ŷ = 0: louder, it gives varied ŷ
        g_a_out.weight.mul_(40)
    try:
        enc = encode_array(model_file, photos[1])
        y = enc.y_symbols
        assert int((y != 0).sum()) > y.numel() // 10  # the reference search has things to match
        for chunk in (1, 5, 64):
            monkeypatch.setattr(latent_coder, "CHUNK", chunk)
            assert encode_array(model_file, photos[1]).data == enc.data, chunk
        _, decoded = decode_bytes(model_file, enc.data)
        assert torch.equal(decoded, y)
    finally:
        with torch.no_grad():
            g_a_out.weight.copy_(before)


def test_minnen_2018_files_decode_across_thread_counts(photos, tmp_path):
    """The peer's entropy parameters (h_s and the context model by wavefronts) are computed
    on one thread, so a file coded on 1 thread decodes on 2 and the reverse."""
    from grm.peers import Peer

    torch.manual_seed(3)
    peer = Peer("mbt2018", "compact").eval()
    with torch.no_grad():
        peer.net.g_a[-1].weight.mul_(40)  # untrained g_a makes ŷ all zeros: give it symbols
    peer.update(force=True)
    lm = load_model(save_model(peer, tmp_path / "p.safetensors", "mbt2018"))
    for rgb in photos:
        for t_enc, t_dec in ((1, 2), (2, 1)):
            enc = _with_threads(t_enc, encode_array, lm, rgb)
            assert enc.y_symbols.abs().max() > 2
            _, y = _with_threads(t_dec, decode_bytes, lm, enc.data)
            assert torch.equal(y, enc.y_symbols), (t_enc, t_dec)
