"""Mergeable accumulators: any blocks, any order, any workers give the same result; exactness; uniformity; errors."""

from __future__ import annotations

import dataclasses
import math
import pickle
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import audit.analysis.accumulate.keys as acc
from audit.analysis.accumulate import (
    BlockAccumulators,
    ColumnMoments,
    Counts,
    Log10Histogram,
    RowSample,
    row_keys,
    row_uniforms,
)
from audit.analysis.convergence import summarize_convergence
from audit.errors import AuditError, UsageError

PROPERTY = settings(derandomize=True, deadline=None, max_examples=60)
MANY = settings(derandomize=True, deadline=None, max_examples=150)
_GAMMA = 0x9E3779B97F4A7C15
_M = (1 << 64) - 1


# ------------------------------------------------------------------------------------------------ helpers


def _wide_values(rng: np.random.Generator, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """Values over a wide dynamic range, both signs, some exact zeros (and subnormals for float64)."""
    lo, hi = (-60, 60) if dtype == np.float32 else (-300, 300)
    v = rng.standard_normal(shape) * np.exp2(rng.integers(lo, hi, shape).astype(np.float64))
    v[rng.random(shape) < 0.1] = 0.0
    if dtype == np.float64 and v.size:
        v.flat[rng.integers(0, v.size)] = 5e-324 * int(rng.integers(1, 1000))
    return v.astype(dtype)


def _cut(n: int, cuts: list[int]) -> list[slice]:
    edges = sorted({0, n, *(c % (n + 1) for c in cuts)})
    if n == 0:
        return [slice(0, 0)]  # one empty block: it still names the arrays
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def _merge_in_order(parts: list, order: list[int], tree: bool):
    parts = [parts[i] for i in order]
    if not tree:
        out = parts[0]
        for p in parts[1:]:
            out = out.merge(p)
        return out
    while len(parts) > 1:  # pairwise, as a reduction tree would
        parts = [parts[i].merge(parts[i + 1]) if i + 1 < len(parts) else parts[i] for i in range(0, len(parts), 2)]
    return parts[0]


def _assert_same_bundle(a: BlockAccumulators, b: BlockAccumulators) -> None:
    assert np.array_equal(a.sample.row_ids, b.sample.row_ids)
    assert a.sample.names == b.sample.names
    for name in a.sample.names:
        x, y = a.sample.get(name), b.sample.get(name)
        assert x.dtype == y.dtype and x.shape == y.shape
        assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), name
    assert (a.sample.seen, a.sample.complete, a.n_rows) == (b.sample.seen, b.sample.complete, b.n_rows)
    for stat in ("sum", "sum_abs", "sumsq"):
        assert np.array_equal(getattr(a.moments, stat), getattr(b.moments, stat), equal_nan=True), stat
    for stat in ("mean", "mean_abs", "std"):
        assert np.array_equal(getattr(a.moments, stat)(), getattr(b.moments, stat)(), equal_nan=True), stat
    assert a.steps == b.steps
    assert a.rel_delta == b.rel_delta
    assert a.n_not_converged == b.n_not_converged
    if a.outputs is None:
        assert b.outputs is None
    else:
        assert a.outputs.n == b.outputs.n
        assert np.array_equal(a.outputs.mean(), b.outputs.mean(), equal_nan=True)
        assert np.array_equal(a.outputs.std(), b.outputs.std(), equal_nan=True)


# ------------------------------------------------------------------------------------------------ the hash


def test_mix64_matches_the_splitmix64_reference_sequence():
    # splitmix64.c started from state 1234567: the first five outputs (a widely reproduced test vector)
    expected = [6457827717110365317, 3203168211198807973, 9817491932198370423, 4593380528125082431,
                16408922859458223821]
    states = np.array([(1234567 + i * _GAMMA) & _M for i in range(1, 6)], dtype=np.uint64)
    assert acc._mix64(states.copy()).tolist() == expected  # (in place on its argument)
    assert [acc._mix64_int(int(s)) for s in states] == expected


def test_row_keys_are_splitmix64_outputs_and_distinct():
    seed = 20240601
    state = acc._mix64_int(seed)
    ids = np.array([0, 1, 2, 17, 10**12, 2**62], dtype=np.int64)
    expected = [acc._mix64_int((state + (int(r) + 1) * _GAMMA) & _M) for r in ids]
    assert row_keys(seed, ids).tolist() == expected
    many = row_keys(7, np.arange(200_000))
    assert np.unique(many).size == many.size  # a bijection: distinct ids never tie
    u = row_uniforms(7, np.arange(200_000))
    assert u.dtype == np.float64 and u.min() >= 0.0 and u.max() < 1.0
    assert not np.array_equal(row_keys(7, np.arange(10)), row_keys(8, np.arange(10)))


def test_row_uniforms_are_uniform_ks():
    stats = pytest.importorskip("scipy.stats")
    u = np.concatenate([row_uniforms(seed, np.arange(20_000)) for seed in range(10)])  # (200000,)
    assert stats.kstest(u, "uniform").pvalue > 1e-4


# ------------------------------------------------------------------------------------------------ RowSample


def test_sample_is_the_rows_with_the_smallest_keys_in_row_id_order():
    ids = np.arange(1000, 1300)
    X = np.stack([ids.astype(np.float64), -ids.astype(np.float64)], axis=1)  # (300, 2), aligned with the id
    s = RowSample(25, seed=3)
    for sl in _cut(300, [7, 90, 91, 250]):
        s.add(ids[sl], X=X[sl])
    keys = row_keys(3, ids)
    expected = np.sort(ids[np.argsort(keys)[:25]])
    assert np.array_equal(s.row_ids, expected)
    assert np.array_equal(s.get("X")[:, 0], expected.astype(np.float64))
    assert np.array_equal(s.get("X")[:, 1], -expected.astype(np.float64))
    assert np.array_equal(s.keys, row_keys(3, expected))
    assert (len(s), s.seen, s.complete) == (25, 300, False)


def test_capacity_and_complete():
    s = RowSample(5, seed=0)
    assert (len(s), s.seen, s.complete, s.names) == (0, 0, True, ())
    with pytest.raises(KeyError):
        s.get("x")
    s.add(np.arange(0), x=np.empty((0, 3), dtype=np.float32))
    assert s.get("x").shape == (0, 3) and s.get("x").dtype == np.float32
    s.add(np.arange(3), x=np.ones((3, 3), dtype=np.float32))
    assert (len(s), s.complete) == (3, True)
    s.add(np.arange(3, 5), x=np.ones((2, 3), dtype=np.float32))
    assert (len(s), s.seen, s.complete) == (5, 5, True)
    s.add(np.arange(5, 6), x=np.ones((1, 3), dtype=np.float32))
    assert (len(s), s.seen, s.complete) == (5, 6, False)
    for start in range(6, 5000, 333):
        s.add(np.arange(start, start + 333), x=np.ones((333, 3), dtype=np.float32))
        assert len(s) == 5 and s._ids.shape[0] <= 5  # storage never beyond capacity
    with pytest.raises(KeyError):
        s.get("y")  # unknown names are a KeyError, as Reservoir's are (callers probe for optional arrays)


def test_text_width_depends_on_the_rows_kept_not_on_the_blocks():
    ids = np.arange(40)
    labels = np.array(["a" * (1 + (i % 7)) for i in range(40)], dtype=object)
    ref = RowSample(10, seed=5)
    ref.add(ids, label=labels.astype(str))
    for order in ([0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]):
        s = RowSample(10, seed=5)
        blocks = _cut(40, [10, 20, 30])
        for b in order:
            s.add(ids[blocks[b]], label=labels[blocks[b]].astype(str))  # each block's own width
        assert s.get("label").dtype == ref.get("label").dtype
        assert np.array_equal(s.get("label"), ref.get("label"))
    kept = ref.get("label")
    assert kept.dtype == np.dtype(f"<U{max(len(v) for v in kept)}")


def test_uniform_inclusion_chi_square():
    """Over many seeds every row is kept equally often. The inclusion counts of N rows, C kept per seed, scaled by
    (N - 1) / N are asymptotically chi-square with N - 1 degrees of freedom; the bound is its 1 - 1e-4 quantile."""
    stats = pytest.importorskip("scipy.stats")
    N, C, S = 40, 8, 4000
    counts = np.zeros(N)
    ids = np.arange(N)
    blocks = _cut(N, [5, 17, 18, 33])
    for seed in range(S):
        s = RowSample(C, seed)
        for sl in blocks:
            s.add(ids[sl])
        counts[s.row_ids] += 1
    p = C / N
    E = S * p
    x2 = float(((counts - E) ** 2).sum() / (E * (1 - p))) * (N - 1) / N
    assert x2 < stats.chi2.ppf(1 - 1e-4, N - 1), (x2, counts)


def test_uniform_pairs_chi_square():
    """Pairs of rows are kept together as often as sampling without replacement says (C(C-1) / N(N-1)), so
    membership is not correlated between neighbouring ids. Counts of disjoint pairs (0,1), (2,3), ... are
    asymptotically chi-square with N/2 - 1 degrees of freedom after a similar scaling; the test bound is generous
    (the 1 - 1e-4 quantile of N/2 degrees of freedom without the scaling's reduction)."""
    stats = pytest.importorskip("scipy.stats")
    N, C, S = 30, 10, 20_000
    keys = np.stack([row_keys(seed, np.arange(N)) for seed in range(S)])  # (S, N)
    kept = np.zeros((S, N), dtype=bool)
    np.put_along_axis(kept, np.argsort(keys, axis=1)[:, :C], True, axis=1)
    both = (kept[:, 0::2] & kept[:, 1::2]).sum(0)  # (N/2,)
    q = C * (C - 1) / (N * (N - 1))
    E = S * q
    x2 = float(((both - E) ** 2 / (E * (1 - q))).sum())
    assert x2 < stats.chi2.ppf(1 - 1e-4, N // 2), (x2, both)


# ------------------------------------------------------------------------------------------------ any order


@MANY
@given(
    n=st.integers(0, 150),
    n_features=st.integers(1, 4),
    capacity=st.integers(1, 40),
    seed=st.integers(-(2**70), 2**70),
    wide=st.booleans(),
    data_seed=st.integers(0, 2**32 - 1),
    cuts=st.lists(st.integers(0, 10**6), max_size=12),
    n_workers=st.integers(1, 4),
    shuffle=st.randoms(use_true_random=False),
    tree=st.booleans(),
)
def test_any_blocks_any_order_any_workers_give_identical_results(
    n, n_features, capacity, seed, wide, data_seed, cuts, n_workers, shuffle, tree
):
    rng = np.random.default_rng(data_seed)
    dtype = np.float64 if wide else np.float32
    ids = rng.choice(10**12, size=n, replace=False).astype(np.int64)  # arbitrary distinct row ids
    A = _wide_values(rng, (n, n_features), dtype)
    X = rng.standard_normal((n, 2)).astype(np.float32)
    rel = np.where(rng.random(n) < 0.05, np.inf, 10.0 ** rng.uniform(-12, 3, n))
    rel[rng.random(n) < 0.05] = 0.0
    steps = rng.choice([16, 32, 64], n).astype(np.int32)
    cls = rng.integers(-1, 3, n)
    fx = _wide_values(rng, (n,), np.float64)
    label = np.array(["x" * int(k) for k in rng.integers(1, 9, n)], dtype=object)

    def bundle() -> BlockAccumulators:
        return BlockAccumulators(n_features, capacity, seed, tolerance=1e-3)

    def offer(b: BlockAccumulators, sl: slice) -> None:
        b.add_block(ids[sl], A[sl], rel[sl].astype(np.float32), steps[sl], outputs=fx[sl], X=X[sl], cls=cls[sl],
                    label=label[sl].astype(str))

    ref = bundle()
    offer(ref, slice(0, n))
    blocks = _cut(n, cuts)
    shuffle.shuffle(blocks)
    workers = [bundle() for _ in range(n_workers)]
    for sl in blocks:
        offer(workers[shuffle.randrange(n_workers)], sl)
    order = list(range(n_workers))
    shuffle.shuffle(order)
    merged = _merge_in_order(workers, order, tree)
    _assert_same_bundle(merged, ref)

    # and the shared result is the right one
    expected_ids = np.sort(ids[np.argsort(row_keys(seed, ids))[:capacity]])
    assert np.array_equal(ref.sample.row_ids, expected_ids)
    assert len(ref.sample) == min(n, capacity) and ref.sample.complete == (n <= capacity)
    pos = {int(r): i for i, r in enumerate(ids)}
    rows = np.array([pos[int(r)] for r in expected_ids], dtype=np.intp)
    assert np.array_equal(ref.sample.get("A"), A[rows]) and np.array_equal(ref.sample.get("cls"), cls[rows])
    for j in range(n_features):
        col = A[:, j].astype(np.float64)
        assert ref.moments.sum[j] == math.fsum(col)
        assert ref.moments.sum_abs[j] == math.fsum(np.abs(col))
    assert ref.steps.as_dict() == {int(k): int(c) for k, c in zip(*np.unique(steps, return_counts=True), strict=True)}
    assert ref.n_not_converged == int((rel.astype(np.float32).astype(np.float64) > 1e-3).sum())


@PROPERTY
@given(
    n=st.integers(1, 300),
    capacity=st.integers(1, 60),
    cuts=st.lists(st.integers(0, 10**6), max_size=20),
    shuffle=st.randoms(use_true_random=False),
)
def test_sample_alone_is_order_free(n, capacity, cuts, shuffle):
    ids = np.arange(n, dtype=np.int64) * 3 + 11
    v = np.arange(n, dtype=np.float64)
    ref = RowSample(capacity, 9)
    ref.add(ids, v=v)
    blocks = _cut(n, cuts)
    shuffle.shuffle(blocks)
    parts = []
    for sl in blocks:
        p = RowSample(capacity, 9)
        p.add(ids[sl], v=v[sl])
        parts.append(p)
    merged = _merge_in_order(parts, list(range(len(parts))), tree=True)
    assert np.array_equal(merged.row_ids, ref.row_ids) and np.array_equal(merged.get("v"), ref.get("v"))
    assert merged.seen == n


def test_merge_is_pure():
    a, b = RowSample(4, 1), RowSample(4, 1)
    a.add(np.arange(0, 6), v=np.arange(6.0))
    b.add(np.arange(6, 12), v=np.arange(6.0, 12.0))
    before = (a.row_ids.copy(), a.get("v").copy(), a.seen, b.row_ids.copy(), b.seen)
    m = a.merge(b)
    assert m is not a and m is not b and m.seen == 12
    after = (a.row_ids, a.get("v"), a.seen, b.row_ids, b.seen)
    for x, y in zip(before, after, strict=True):
        assert np.array_equal(x, y)
    ma, mb = ColumnMoments(1), ColumnMoments(1)
    ma.add(np.ones((3, 1)))
    mb.add(np.full((2, 1), 2.0))
    mm = ma.merge(mb)
    assert (ma.n, mb.n, mm.n) == (3, 2, 5) and mm.sum[0] == 7.0 and ma.sum[0] == 3.0


# ------------------------------------------------------------------------------------------------ ColumnMoments


def _exact_stats(col: np.ndarray) -> tuple[float, float, float]:
    fr = [Fraction(float(x)) for x in col]
    n = len(fr)
    s = sum(fr)
    mean = s / n
    var = sum(x * x for x in fr) / n - mean * mean
    return float(mean), float(sum(abs(x) for x in fr) / n), math.sqrt(float(var))


@PROPERTY
@given(
    values=st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=1, max_size=60),
    split=st.integers(0, 60),
)
def test_float32_moments_are_correctly_rounded(values, split):
    col = np.array(values, dtype=np.float32)
    m = ColumnMoments(1)
    m.add(col[:split])
    m.add(col[split:])
    mean, mean_abs, std = _exact_stats(col)
    c64 = col.astype(np.float64)
    assert m.sum[0] == math.fsum(c64) and m.sum_abs[0] == math.fsum(np.abs(c64))
    assert m.sumsq[0] == float(sum(Fraction(float(x)) ** 2 for x in c64))  # float32 squares are exact
    assert (m.mean()[0], m.mean_abs()[0], m.std()[0]) == (mean, mean_abs, std)


@PROPERTY
@given(
    values=st.lists(st.floats(-1e300, 1e300, allow_subnormal=True), min_size=1, max_size=60),
    split=st.integers(0, 60),
)
def test_float64_moments_are_correctly_rounded(values, split):
    col = np.array(values, dtype=np.float64)
    m = ColumnMoments(1)
    m.add(col[split:, None])
    m.add(col[:split, None])
    fr = [Fraction(x) for x in col.tolist()]
    n = len(fr)
    mean = sum(fr) / n
    assert m.sum[0] == math.fsum(col) and m.sum_abs[0] == math.fsum(np.abs(col))
    assert m.mean()[0] == float(mean) and m.mean_abs()[0] == float(sum(abs(x) for x in fr) / n)
    sumsq = sum(x * x for x in fr)
    assert m.sumsq[0] == (float(sumsq) if sumsq < Fraction(2) ** 1024 else math.inf)  # exact squares
    var = sumsq / n - mean * mean
    if var < Fraction(2) ** 1000:
        assert m.std()[0] == math.sqrt(float(var))


def test_moments_known_cases():
    A = np.array([[1e16, 5e-324, 3.0], [1.0, 5e-324, 3.0], [-1e16, -5e-324, 3.0]])  # (3, 3)
    m = ColumnMoments(3)
    m.add(A)
    assert m.sum.tolist() == [1.0, 5e-324, 9.0]  # no cancellation loss
    assert m.sum_abs.tolist() == [2e16 + 1.0, 1.5e-323, 9.0]
    assert m.std()[2] == 0.0 and m.mean()[2] == 3.0
    big = ColumnMoments(1)
    big.add(np.array([1.5e308, 1.5e308]))
    assert big.sum[0] == math.inf and big.mean()[0] == 1.5e308  # the exact mean, though the sum overflows
    assert big.std()[0] == 0.0 and big.sumsq[0] == math.inf
    one = ColumnMoments(1)
    one.add(np.array([2529388481.0]))  # rounded squares would leave a variance of about 127
    assert one.std()[0] == 0.0
    offset = ColumnMoments(1)
    offset.add(1e8 + np.array([0.0, 1.0, 2.0]))  # no cancellation loss in the variance either
    assert offset.std()[0] == math.sqrt(2 / 3)
    empty = ColumnMoments(2)
    assert empty.sum.tolist() == [0.0, 0.0] and np.isnan(empty.mean()).all() and np.isnan(empty.std()).all()
    ints = ColumnMoments(2)
    ints.add(np.array([[1, 2], [3, 4]], dtype=np.int16))
    ints.add(np.array([[True, False]]))
    assert ints.sum.tolist() == [5.0, 6.0] and ints.n == 3


def test_non_finite_values_follow_numpy():
    A = np.array([
        [1.0, 1.0, 1.0, np.inf, 1e200],
        [np.nan, np.inf, -np.inf, -np.inf, -1e200],
        [2.0, 2.0, 2.0, 2.0, 0.0],
    ])  # (3, 5)
    for dtype in (np.float64, np.float32):
        X = A.astype(dtype) if dtype == np.float64 else A[:, :4].astype(dtype)
        m = ColumnMoments(X.shape[1])
        m.add(X)
        with np.errstate(all="ignore"):
            ref64 = X.astype(np.float64)
            assert np.array_equal(m.sum, ref64.sum(0), equal_nan=True)
            assert np.array_equal(m.mean(), ref64.mean(0), equal_nan=True)
            assert np.array_equal(m.sum_abs, np.abs(ref64).sum(0), equal_nan=True)
            assert np.isnan(m.std()[:4]).all()
        if dtype == np.float64:  # squares beyond float64 are still exact
            assert m.sumsq[4] == math.inf and m.std()[4] == float(np.sqrt(np.float64(2 / 3))) * 1e200
            assert m.sum[4] == 0.0 and m.mean_abs()[4] == float(Fraction(2e200) / 3)


def test_internal_paths_agree(monkeypatch):
    """Column groups, short passes and carry normalisation change nothing (bit for bit)."""
    import audit.analysis.accumulate.moments as acc

    rng = np.random.default_rng(4)
    data = {dt: _wide_values(rng, (700, 9), dt) for dt in (np.float32, np.float64)}
    ref = {}
    for dt, X in data.items():
        m = ColumnMoments(9)
        m.add(X)
        ref[dt] = (m.sum, m.sum_abs, m.sumsq, m.std())
    monkeypatch.setattr(acc, "_TABLE_LIMIT", 256 * 2 * 4)  # tables of 4 columns (float32), 1 (float64)
    monkeypatch.setattr(acc, "_PASS_ELEMENTS", 64)
    monkeypatch.setattr(acc, "_NORMALISE_EVERY", 1)
    for dt, X in data.items():
        parts = []
        for sl in _cut(700, [1, 100, 333, 334]):
            p = ColumnMoments(9)
            p.add(X[sl])
            parts.append(p)
        m = _merge_in_order(parts, [3, 0, 4, 2, 1], tree=False)
        for got, want in zip((m.sum, m.sum_abs, m.sumsq, m.std()), ref[dt], strict=True):
            assert np.array_equal(got, want)
    # the float32 and float64 paths are both exact, so they agree bit for bit on the same values
    X32 = data[np.float32]
    fast = ColumnMoments(9)
    fast.add(X32)
    wide = ColumnMoments(10)
    wide.add(np.concatenate([X32.astype(np.float64), np.full((700, 1), 0.1)], axis=1))  # 0.1: not a float32
    for stat in ("sum", "sum_abs", "sumsq"):
        assert np.array_equal(getattr(fast, stat), getattr(wide, stat)[:9]), stat
    assert np.array_equal(fast.std(), wide.std()[:9])
    # many large significands force carries
    m = ColumnMoments(1)
    for _ in range(50):
        m.add(np.full((1000, 1), np.nextafter(np.float32(1.0), np.float32(2.0)), dtype=np.float32))
    assert m.sum[0] == 50_000 * float(np.nextafter(np.float32(1.0), np.float32(2.0)))


# ------------------------------------------------------------------------------------------------ counts and histogram


@PROPERTY
@given(
    values=st.lists(
        st.one_of(st.floats(0, 1e6, allow_nan=False), st.just(0.0), st.just(math.inf), st.floats(0, 1e-12)),
        min_size=1,
        max_size=80,
    ),
    split=st.integers(0, 80),
)
def test_histogram_bins_as_summarize_convergence(values, split):
    rel = np.array(values)
    a, b = Log10Histogram(), Log10Histogram()
    a.add(rel[:split])
    b.add(rel[split:])
    h = b.merge(a)
    c = summarize_convergence(rel, np.full(rel.size, 8), "gausslegendre", 8, 0.01)
    assert tuple(h.edges.tolist()) == c.rel_delta_hist_edges
    assert tuple(h.counts.tolist()) == c.rel_delta_hist_counts
    assert h.max == c.max_rel_delta and h.n == rel.size
    assert h == a.merge(b)


def test_counts():
    c = Counts()
    c.add(np.array([16, 16, 32, 16]))
    d = Counts({32: 1, 64: 2})
    d.add(np.array([64.0]))
    m = c.merge(d)
    assert m.as_dict() == {16: 3, 32: 2, 64: 3} and list(m.as_dict()) == [16, 32, 64]
    assert m.total == 8 and m[16] == 3 and m[128] == 0
    assert m == d.merge(c) and c.as_dict() == {16: 3, 32: 1}
    c.add(np.array([], dtype=np.float64))
    assert c.total == 4


# ------------------------------------------------------------------------------------------------ the bundle


def _bundle_inputs(n: int, F: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    return (
        np.arange(n, dtype=np.int64),
        rng.standard_normal((n, F)).astype(np.float32),
        (10.0 ** rng.uniform(-10, 0, n)).astype(np.float32),
        rng.choice([16, 32], n).astype(np.int32),
        rng.standard_normal((n, F)).astype(np.float32),
    )


def test_convergence_record_equals_summarize_convergence_when_complete():
    ids, A, rel, steps, X = _bundle_inputs(500)
    b = BlockAccumulators(3, 1000, seed=1, tolerance=0.01)
    for sl in _cut(500, [100, 250]):
        b.add_block(ids[sl], A[sl], rel[sl], steps[sl], X=X[sl])
    assert b.sample.complete
    want = summarize_convergence(rel, steps, "gausslegendre", "auto", 0.01)
    assert b.convergence("gausslegendre", "auto") == want
    assert np.array_equal(b.sample.get("A"), A) and np.array_equal(b.sample.get("X"), X)
    assert np.array_equal(b.sample.get("rel_delta"), rel)


def test_convergence_record_when_sampled():
    ids, A, rel, steps, X = _bundle_inputs(3000)
    b = BlockAccumulators(3, 400, seed=1, tolerance=0.01)
    for sl in _cut(3000, [1000, 2000]):
        b.add_block(ids[sl], A[sl], rel[sl], steps[sl])
    assert not b.sample.complete
    got = b.convergence("riemann_trapezoid", 32)
    want = summarize_convergence(rel, steps, "riemann_trapezoid", 32, 0.01)
    exact = {f.name for f in dataclasses.fields(want)} - {"median_rel_delta", "p95_rel_delta"}
    assert all(getattr(got, k) == getattr(want, k) for k in exact)
    assert abs(math.log10(got.median_rel_delta) - math.log10(want.median_rel_delta)) < 0.5  # from 400 rows
    m = ColumnMoments(3)
    m.add(A)
    assert np.array_equal(b.moments.mean(), m.mean()) and b.n_rows == 3000


def test_bundle_outputs_moments():
    ids, A, rel, steps, _ = _bundle_inputs(50)
    fx = np.linspace(-1, 1, 50)
    a = BlockAccumulators(3, 10, seed=0)
    b = BlockAccumulators(3, 10, seed=0)
    a.add_block(ids[:20], A[:20], rel[:20], steps[:20], outputs=fx[:20])
    b.add_block(ids[20:], A[20:], rel[20:], steps[20:])
    direct = ColumnMoments(1)
    direct.add(fx[:20])
    for m in (a.merge(b), b.merge(a)):
        assert m.outputs is not None and m.outputs.n == 20
        assert m.outputs.mean()[0] == direct.mean()[0] and m.outputs.std()[0] == direct.std()[0]
        assert m.outputs.mean()[0] == pytest.approx(float(np.mean(fx[:20])), rel=1e-12)
    with pytest.raises(UsageError, match="tolerance"):
        a.convergence("gausslegendre", 8)


def test_bundles_survive_pickling_as_between_processes():
    ids, A, rel, steps, X = _bundle_inputs(600)
    ref = BlockAccumulators(3, 100, seed=2, tolerance=0.01)
    ref.add_block(ids, A, rel, steps, outputs=X[:, 0], X=X)
    a = BlockAccumulators(3, 100, seed=2, tolerance=0.01)
    b = BlockAccumulators(3, 100, seed=2, tolerance=0.01)
    a.add_block(ids[:250], A[:250], rel[:250], steps[:250], outputs=X[:250, 0], X=X[:250])
    a.sample.get("X")  # a cache that must not travel
    b.add_block(ids[250:400], A[250:400], rel[250:400], steps[250:400], outputs=X[250:400, 0], X=X[250:400])
    a2, b2 = pickle.loads(pickle.dumps(a)), pickle.loads(pickle.dumps(b))
    assert a2.sample._cache == {} and a2.moments._work == {}
    b2.add_block(ids[400:], A[400:], rel[400:], steps[400:], outputs=X[400:, 0], X=X[400:])  # still growing
    _assert_same_bundle(b2.merge(a2), ref)


# ------------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("make", "text"),
    [
        (lambda: RowSample(0, 1), "capacity"),
        (lambda: RowSample(2.5, 1), "capacity"),
        (lambda: RowSample(3, "seed"), "seed"),
        (lambda: RowSample(3, 1).add(np.arange(3), x=np.zeros(4)), "'x' has 4 rows but row_ids has 3"),
        (lambda: RowSample(3, 1).add(np.array([1.0, 2.0]), x=np.zeros(2)), "integers"),
        (lambda: RowSample(3, 1).add(np.zeros((2, 2), dtype=int)), "1-D"),
        (lambda: RowSample(3, 1).add(np.array([4, 5, 4]), x=np.zeros(3)), "row id 4 appears more than once"),
        (lambda: ColumnMoments(0), "n_features"),
        (lambda: ColumnMoments(3).add(np.zeros((4, 2))), r"shape \(n, 3\)"),
        (lambda: ColumnMoments(1).add(np.zeros((4, 1), dtype=complex)), "real numbers"),
        (lambda: ColumnMoments(2).merge(ColumnMoments(3)), "2 and 3 columns"),
        (lambda: Log10Histogram().add(np.array([0.1, np.nan])), "NaN"),
        (lambda: Log10Histogram().add(np.array([-1.0])), "negative"),
        (lambda: Log10Histogram(1, 0), "low < high"),
        (lambda: Log10Histogram().merge(Log10Histogram(bins=10)), "edges"),
        (lambda: Counts().add(np.array([1.5])), "whole numbers"),
        (lambda: RowSample(3, 1).merge(RowSample(3, 2)), "capacity or seed"),
        (lambda: BlockAccumulators(2, 5, 0, tolerance=-1.0), "tolerance"),
    ],
)
def test_bad_input_is_a_usage_error(make, text):
    with pytest.raises(UsageError, match=text) as info:
        make()
    assert isinstance(info.value, AuditError) and "\n" not in str(info.value)


def test_repeated_row_ids_are_caught_and_leave_the_sample_unchanged():
    s = RowSample(100, seed=0)
    s.add(np.arange(10), v=np.arange(10.0))
    with pytest.raises(UsageError, match="row id 3 was offered twice"):
        s.add(np.array([20, 3]), v=np.zeros(2))
    assert s.seen == 10 and np.array_equal(s.row_ids, np.arange(10))
    other = RowSample(100, seed=0)
    other.add(np.array([50, 7]), v=np.zeros(2))
    with pytest.raises(UsageError, match="row id 7"):
        s.merge(other)
    with pytest.raises(UsageError, match="differ from the earlier blocks"):
        s.add(np.array([11]), w=np.zeros(1))
    with pytest.raises(UsageError, match="is float32 with row shape"):
        s.add(np.array([11]), v=np.zeros(1, dtype=np.float32))
    with pytest.raises(UsageError, match="is float64 with row shape"):
        s.add(np.array([11]), v=np.zeros((1, 2)))
    assert s.seen == 10 and len(s) == 10
    full = RowSample(5, seed=0)
    full.add(np.arange(50))
    last = int(full.row_ids[np.argmax(full.keys)])  # the row on the threshold
    with pytest.raises(UsageError, match=f"row id {last} was offered twice"):
        full.add(np.array([last]))


def test_bundle_errors_change_nothing():
    ids, A, rel, steps, X = _bundle_inputs(20)
    b = BlockAccumulators(3, 50, seed=0, tolerance=0.1)
    b.add_block(ids[:10], A[:10], rel[:10], steps[:10], X=X[:10])
    snapshot = (b.n_rows, b.rel_delta.counts.copy(), b.steps.as_dict(), b.sample.seen, b.moments.sum)
    bad_calls = [
        (lambda: b.add_block(ids[5:15], A[5:15], rel[5:15], steps[5:15], X=X[5:15]), "offered twice"),
        (lambda: b.add_block(ids[10:], A[10:, :2], rel[10:], steps[10:], X=X[10:]), "A must have shape"),
        (lambda: b.add_block(ids[10:], A[10:], rel[11:], steps[10:], X=X[10:]), "one value per row"),
        (lambda: b.add_block(ids[10:], A[10:], np.full(10, np.nan), steps[10:], X=X[10:]), "NaN"),
        (lambda: b.add_block(ids[10:], A[10:], rel[10:], steps[10:], X=X[10:], A=A[10:]), "multiple values"),
        (lambda: b.add_block(ids[10:], A[10:], rel[10:], steps[10:] + 0.5, X=X[10:]), "whole numbers"),
        (lambda: b.add_block(ids[10:], A[10:], rel[10:], steps[10:]), "differ from the earlier blocks"),
        (lambda: b.merge(BlockAccumulators(3, 50, seed=0)), "tolerances"),
    ]
    for call, text in bad_calls:
        with pytest.raises((UsageError, TypeError), match=text):
            call()
        now = (b.n_rows, b.rel_delta.counts, b.steps.as_dict(), b.sample.seen, b.moments.sum)
        assert now[0] == snapshot[0] and np.array_equal(now[1], snapshot[1]) and now[2] == snapshot[2]
        assert now[3] == snapshot[3] and np.array_equal(now[4], snapshot[4])
