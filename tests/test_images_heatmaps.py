"""audit.analysis.heatmaps: channel reduction, outlier clipping, area downsampling, mean maps, channel shares."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.analysis.heatmaps import (
    MapAccumulator,
    channel_mass,
    channel_shares,
    clip_normalize,
    downsample,
    mass_normalize,
    reduce_channels,
)
from audit.errors import UsageError


def test_reduce_channels_sums_absolute_values() -> None:
    a = np.zeros((1, 3, 2, 2))
    a[0, :, 0, 0] = [1.0, -2.0, 3.0]
    a[0, 1, 1, 1] = -0.5
    np.testing.assert_array_equal(reduce_channels(a)[0], [[6.0, 0.0], [0.0, 0.5]])


def test_clip_normalize_caps_a_planted_outlier_at_the_99th_percentile() -> None:
    rng = np.random.default_rng(0)
    m = rng.uniform(0, 1, size=(40, 40))
    m[3, 5] = 1e6  # one hot pixel would make everything else black under max-scaling
    out = clip_normalize(m)
    cap = np.percentile(m, 99)
    assert out[3, 5] == 1.0 and out.min() >= 0
    np.testing.assert_allclose(out[m <= cap], m[m <= cap] / cap)
    assert np.median(out) > 0.4  # the bulk stays visible
    assert (out == 1.0).sum() == (m >= cap).sum()


def test_clip_normalize_sparse_and_empty_maps() -> None:
    sparse = np.zeros((2, 20, 20))
    sparse[0, 4, 4] = 2.0  # 99th percentile is 0: scale by the max
    out = clip_normalize(sparse)
    assert out[0, 4, 4] == 1.0 and out[0].sum() == 1.0
    assert not out[1].any()  # all-zero stays zero, no NaN


@settings(max_examples=30, deadline=None, derandomize=True)
@given(
    h=st.integers(2, 70), w=st.integers(2, 70), side=st.integers(1, 40), seed=st.integers(0, 10_000)
)
def test_downsample_keeps_the_mean_and_the_size_limit(h: int, w: int, side: int, seed: int) -> None:
    m = np.random.default_rng(seed).uniform(0, 1, size=(2, h, w))
    out = downsample(m, side)
    assert max(out.shape[1:]) <= max(side, 1) or max(h, w) <= side
    if max(h, w) <= side:
        np.testing.assert_array_equal(out, m)
    elif h % out.shape[1] == 0 and w % out.shape[2] == 0:  # exact blocks: the mean is kept exactly
        np.testing.assert_allclose(out.mean(axis=(1, 2)), m.mean(axis=(1, 2)))
        np.testing.assert_allclose(out, m.reshape(2, out.shape[1], h // out.shape[1], out.shape[2], -1).mean((2, 4)))
    assert out.min() >= m.min() - 1e-12 and out.max() <= m.max() + 1e-12


def test_downsample_224_to_56_is_4x4_block_means() -> None:
    m = np.random.default_rng(1).uniform(size=(224, 224))
    out = downsample(m)
    assert out.shape == (56, 56)
    np.testing.assert_allclose(out, m.reshape(56, 4, 56, 4).mean(axis=(1, 3)))


def test_mass_normalize_each_map_sums_to_one() -> None:
    m = np.random.default_rng(2).uniform(size=(3, 5, 5)) * np.array([1.0, 1e4, 0.0])[:, None, None]
    out = mass_normalize(m)
    np.testing.assert_allclose(out.sum(axis=(1, 2)), [1.0, 1.0, 0.0])


def test_channel_mass_and_shares() -> None:
    a = np.zeros((2, 3, 2, 2))
    a[0, 0] = 1.0  # image 0: all in R (|.| = 4)
    a[1, 1, 0, 0], a[1, 2, 0, 0] = 3.0, -1.0  # image 1: G 3, B 1
    abs_mass, signed = channel_mass(a)
    np.testing.assert_array_equal(abs_mass, [[4, 0, 0], [0, 3, 1]])
    np.testing.assert_array_equal(signed, [[4, 0, 0], [0, 3, -1]])
    shares = channel_shares(abs_mass, ("R", "G", "B"))
    assert shares == pytest.approx({"R": 0.5, "G": 0.375, "B": 0.125})  # mean of per-image shares
    assert sum(shares.values()) == pytest.approx(1.0)
    assert channel_shares(np.zeros((2, 3)), "RGB") == {"R": 0.0, "G": 0.0, "B": 0.0}


def test_accumulator_means_over_all_and_per_group() -> None:
    rng = np.random.default_rng(3)
    maps = mass_normalize(rng.uniform(size=(7, 4, 6)))
    groups = np.array([0, 1, 0, -1, 1, 1, 0])
    acc = MapAccumulator((4, 6), 3)
    acc.add(maps[:3], groups[:3])
    acc.add(maps[3:], groups[3:])
    np.testing.assert_allclose(acc.mean(), maps.mean(axis=0))
    by = acc.group_means()
    assert set(by) == {0, 1}  # group 2 got nothing, -1 counts only overall
    np.testing.assert_allclose(by[0], maps[groups == 0].mean(axis=0))
    np.testing.assert_allclose(by[1], maps[groups == 1].mean(axis=0))
    with pytest.raises(UsageError):
        acc.add(maps[:, :3], groups)


def test_bad_inputs_raise_usage_errors() -> None:
    with pytest.raises(UsageError, match="dimensions"):
        reduce_channels(np.zeros((3, 4, 4)))
    with pytest.raises(UsageError, match="NaN"):
        clip_normalize(np.full((3, 3), np.nan))
    with pytest.raises(UsageError, match="channel names"):
        channel_shares(np.ones((2, 3)), ("R", "G"))
