"""audit.attribution.image_baselines: black in pixel space, blur, per-image noise draws, the mean image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.attribution.image_baselines import gaussian_blur, make_image_baseline
from audit.attribution.native import integrated_gradients
from audit.errors import UsageError
from audit.io.images import IMAGENET_MEAN, IMAGENET_STD

M, S = IMAGENET_MEAN, IMAGENET_STD


def _pixels_to_x(p: torch.Tensor) -> torch.Tensor:
    return (p - torch.tensor(M).view(1, 3, 1, 1)) / torch.tensor(S).view(1, 3, 1, 1)


def _x_to_pixels(x: torch.Tensor) -> torch.Tensor:
    return x * torch.tensor(S).view(1, 3, 1, 1) + torch.tensor(M).view(1, 3, 1, 1)


def test_black_is_zero_in_pixel_space_not_zero_after_normalisation() -> None:
    x = _pixels_to_x(torch.rand(5, 3, 6, 7, generator=torch.Generator().manual_seed(0)))
    b = make_image_baseline("black", x, mean=M, std=S)
    assert b.shape == (1, 1, 3, 6, 7)
    torch.testing.assert_close(_x_to_pixels(b[0]), torch.zeros(1, 3, 6, 7), atol=1e-6, rtol=0)
    np.testing.assert_allclose(b[0, 0, :, 0, 0].numpy(), [-M[c] / S[c] for c in range(3)], rtol=1e-6)
    assert torch.equal(make_image_baseline("zero", x, mean=M, std=S), b)  # "zero" means black for images


def test_black_baseline_gives_no_attribution_to_black_pixels() -> None:
    """Linear model on normalised inputs: IG = w * (x - x'), which is 0 exactly where the pixel is black."""
    gen = torch.Generator().manual_seed(1)
    p = torch.rand(4, 3, 5, 5, generator=gen)
    p[:, :, :2, :] = 0.0  # black top rows
    x = _pixels_to_x(p)
    w = torch.randn(3 * 5 * 5, generator=gen)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(75, 1, bias=False)).eval()
    with torch.no_grad():
        model[1].weight.copy_(w.view(1, -1))
    b = make_image_baseline("black", x, mean=M, std=S)[0]
    res = integrated_gradients(model, x, baselines=b, n_steps=8)
    want = w.view(1, 3, 5, 5) * (x - b)
    torch.testing.assert_close(res.attributions, want, atol=1e-5, rtol=1e-5)
    assert float(res.attributions[:, :, :2, :].abs().max()) < 1e-6


def test_blur_is_per_image_and_removes_detail_but_keeps_constants() -> None:
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(3, 3, 16, 16, generator=gen)
    x[2] = 0.7  # a constant image
    b = make_image_baseline("blur", x, mean=M, std=S)
    assert b.shape == (1, 3, 3, 16, 16)
    torch.testing.assert_close(b[0, 2], x[2])  # weights sum to 1: constants stay
    assert float(b[0, 0].std()) < 0.5 * float(x[0].std())  # detail removed
    assert not torch.allclose(b[0, 0], b[0, 1])  # one baseline per image


@settings(max_examples=25, deadline=None, derandomize=True)
@given(sigma=st.floats(0.3, 6.0), a=st.floats(-3, 3), c=st.floats(-2, 2), seed=st.integers(0, 1000))
def test_blur_is_linear_and_commutes_with_normalisation(sigma: float, a: float, c: float, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(2, 3, 9, 12, generator=gen, dtype=torch.float64)
    y = torch.rand(2, 3, 9, 12, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(gaussian_blur(a * x + y, sigma), a * gaussian_blur(x, sigma) + gaussian_blur(y, sigma))
    torch.testing.assert_close(gaussian_blur(x + c, sigma), gaussian_blur(x, sigma) + c)


def test_noise_draws_are_uniform_in_pixel_space_and_independent_per_image() -> None:
    x = torch.zeros(6, 3, 8, 8)
    b = make_image_baseline("noise", x, mean=M, std=S, n_draws=5, seed=3)
    assert b.shape == (5, 6, 3, 8, 8)
    p = _x_to_pixels(b.reshape(30, 3, 8, 8))
    assert float(p.min()) >= -1e-6 and float(p.max()) <= 1 + 1e-6
    assert abs(float(p.mean()) - 0.5) < 0.02 and abs(float(p.var()) - 1 / 12) < 0.01  # U(0, 1)
    assert not torch.allclose(b[0, 0], b[0, 1]) and not torch.allclose(b[0, 0], b[1, 0])
    assert torch.equal(b, make_image_baseline("noise", x, mean=M, std=S, n_draws=5, seed=3))  # seeded
    assert not torch.equal(b, make_image_baseline("noise", x, mean=M, std=S, n_draws=5, seed=4))


def test_mean_baseline_is_the_given_mean_image() -> None:
    x = torch.rand(4, 3, 5, 6)
    b = make_image_baseline("mean", x, mean=M, std=S, dataset_mean=x.mean(dim=0))
    assert b.shape == (1, 1, 3, 5, 6)
    torch.testing.assert_close(b[0, 0], x.mean(dim=0))
    with pytest.raises(UsageError, match="mean image"):
        make_image_baseline("mean", x, mean=M, std=S)
    with pytest.raises(UsageError, match="must agree"):
        make_image_baseline("mean", x, mean=M, std=S, dataset_mean=torch.zeros(3, 5, 5))


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"kind": "median"}, "unknown image baseline 'median'"),
        ({"kind": "noise", "n_draws": 0}, "n_draws >= 1"),
        ({"kind": "blur", "blur_sigma": -1.0}, "sigma"),
        ({"kind": "black", "mean": (0.5,)}, "1 means"),
    ],
)
def test_bad_arguments_raise_usage_errors(kwargs: dict, words: str) -> None:
    args = {"mean": M, "std": S, **kwargs}
    kind = args.pop("kind")
    with pytest.raises(UsageError, match=words):
        make_image_baseline(kind, torch.zeros(2, 3, 4, 4), **args)
