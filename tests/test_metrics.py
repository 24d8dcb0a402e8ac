"""The evaluation's MS-SSIM against pytorch_msssim, whose definition it keeps."""

import numpy as np
import pytest
import torch
from pytorch_msssim import ms_ssim as reference

from grm.pipeline.metrics import MS_SSIM_MIN_SIDE, ms_ssim


def _pair(shape, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, shape, dtype=np.uint8)
    noise = rng.integers(-20, 21, shape)
    return a, np.clip(a.astype(int) + noise, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("shape", [(161, 161, 3), (203, 171, 3), (256, 384, 3)])
def test_ms_ssim_equals_pytorch_msssim(shape):
    # Odd sides take the padded pooling; the values must agree to float64 rounding.
    a, b = _pair(shape, seed=shape[0])
    ta, tb = (torch.from_numpy(v.copy()).permute(2, 0, 1)[None].double() for v in (a, b))
    expected = float(reference(ta, tb, data_range=255.0))
    assert abs(ms_ssim(a, b) - expected) < 1e-12
    assert ms_ssim(a, a) == pytest.approx(1.0, abs=1e-12)


def test_ms_ssim_too_small_is_nan():
    a, b = _pair((MS_SSIM_MIN_SIDE - 1, 300, 3), seed=1)
    assert np.isnan(ms_ssim(a, b))
