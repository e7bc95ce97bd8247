"""PSNR/SSIM against closed forms and skimage."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from muon_nerf.fit.metrics import psnr, ssim
from tests.conftest import make_test_image


def test_psnr_closed_form_and_skimage():
    a = torch.zeros(10, 10)
    b = torch.full((10, 10), 0.1)
    assert psnr(b, a) == pytest.approx(20.0)  # 10 log10(1 / 0.01)
    assert psnr(a, a) == math.inf
    x, y = make_test_image(seed=1), make_test_image(seed=2)
    assert psnr(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(
        peak_signal_noise_ratio(y, x, data_range=1.0), rel=1e-6
    )


@pytest.mark.parametrize("channels", [1, 3])
def test_ssim_matches_skimage(channels: int):
    x = make_test_image(40, 48, channels, seed=1)
    y = np.clip(x + 0.08 * np.random.default_rng(3).standard_normal(x.shape), 0, 1).astype(np.float32)
    ref = structural_similarity(
        x, y, data_range=1.0, channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert ssim(torch.from_numpy(y), torch.from_numpy(x)) == pytest.approx(ref, abs=1e-6)
    assert ssim(torch.from_numpy(x), torch.from_numpy(x)) == pytest.approx(1.0)


def test_ssim_refuses_tiny_or_mismatched_images():
    with pytest.raises(ValueError, match="at least 11"):
        ssim(torch.rand(5, 5), torch.rand(5, 5))
    with pytest.raises(ValueError, match="equal shapes"):
        ssim(torch.rand(20, 20), torch.rand(20, 21))
