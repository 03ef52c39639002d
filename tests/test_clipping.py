"""Clipping against torch.nn.utils (clip_grad_norm_, clip_grad_value_, get_total_norm), per-row clipping of
sweeps, and gradient accumulation against the big batch's gradient.

The torch comparisons are in float64, on lists of arrays of several shapes and scales; the returned total and
the clipped gradients agree to 1e-14 relative (the norms are summed in a different order on each side).
"""

import math

import numpy as np
import pytest

import optimlab as ol
from tests.reference import require

SHAPES = [(3,), (2, 4), (2, 2, 3), (1,)]
NORMS = [1.0, 2.0, 3.0, math.inf, "inf"]


@pytest.fixture(scope="module")
def torch():
    """torch, or a skip naming why (a failure under CI): the tests below that do not need it still run."""
    return require("torch")


def random_grads(rng, scale=1.0):
    return [scale * 10.0 ** rng.uniform(-2, 2) * rng.standard_normal(s) for s in SHAPES]


def torch_params(torch, grads):
    params = []
    for g in grads:
        p = torch.nn.Parameter(torch.zeros(0 if g is None else g.shape, dtype=torch.float64))
        p.grad = None if g is None else torch.from_numpy(g.copy())
        params.append(p)
    return params


def torch_grads(params):
    return [None if p.grad is None else p.grad.numpy() for p in params]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("norm_type", NORMS)
def test_clip_grad_norm_matches_torch(torch, norm_type, seed):
    rng = np.random.default_rng(seed)
    grads = random_grads(rng)
    params = torch_params(torch, grads)
    max_norm = float(10.0 ** rng.uniform(-2, 1))
    total = ol.clip_grad_norm_(grads, max_norm, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type, foreach=False)
    assert isinstance(total, float)
    assert total == pytest.approx(float(expected), rel=1e-14)
    for ours, theirs in zip(grads, torch_grads(params)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-14, atol=0)
    assert ol.global_norm(grads, norm_type) <= max_norm


@pytest.mark.parametrize("norm_type", NORMS)
def test_global_norm_is_torchs_norm_of_norms(torch, norm_type):
    rng = np.random.default_rng(11)
    grads = random_grads(rng)
    expected = torch.nn.utils.get_total_norm([torch.from_numpy(g) for g in grads], norm_type)
    assert ol.global_norm(grads, norm_type) == pytest.approx(float(expected), rel=1e-14)
    # a norm of the per-array norms: for p = 2 the norm of everything concatenated, for p = 3 not quite
    flat = np.concatenate([g.ravel() for g in grads])
    if norm_type == 2.0:
        assert ol.global_norm(grads) == pytest.approx(np.linalg.norm(flat), rel=1e-14)


@pytest.mark.parametrize("norm_type", NORMS)
def test_small_norms_are_multiplied_by_exactly_one(torch, norm_type):
    rng = np.random.default_rng(3)
    grads = [1e-3 * g for g in random_grads(rng)]
    original = [g.copy() for g in grads]
    params = torch_params(torch, grads)
    total = ol.clip_grad_norm_(grads, 10.0, norm_type)
    torch.nn.utils.clip_grad_norm_(params, 10.0, norm_type)
    assert total < 10.0
    for ours, theirs, before in zip(grads, torch_grads(params), original):
        assert np.array_equal(ours, before) and np.array_equal(theirs, before)


@pytest.mark.parametrize("norm_type", NORMS)
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_totals_propagate_like_torch(torch, bad, norm_type):
    """A NaN total turns every gradient into NaN; an infinite one zeroes the finite entries and turns the
    infinite ones into NaN (inf × 0). The returned total says which."""
    rng = np.random.default_rng(4)
    grads = random_grads(rng)
    grads[1][0, 2] = bad
    params = torch_params(torch, grads)
    with np.errstate(invalid="ignore"):      # inf × 0 is NaN, which is the point
        total = ol.clip_grad_norm_(grads, 1.0, norm_type)
    expected = float(torch.nn.utils.clip_grad_norm_(params, 1.0, norm_type))
    assert (math.isnan(total) and math.isnan(expected)) or total == expected
    assert math.isnan(total) if math.isnan(bad) else total == math.inf
    for ours, theirs in zip(grads, torch_grads(params)):
        assert np.array_equal(ours, theirs, equal_nan=True)
    if math.isnan(bad):
        assert all(np.all(np.isnan(g)) for g in grads)
    else:
        assert np.isnan(grads[1][0, 2]) and np.count_nonzero(np.nan_to_num(grads[1])) == 0


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_error_if_nonfinite_raises_and_leaves_the_gradients_alone(torch, bad):
    rng = np.random.default_rng(5)
    grads = random_grads(rng)
    grads[2][1, 0, 1] = bad
    original = [g.copy() for g in grads]
    params = torch_params(torch, grads)
    with pytest.raises(RuntimeError):
        torch.nn.utils.clip_grad_norm_(params, 1.0, error_if_nonfinite=True)
    with pytest.raises(ValueError, match=f"{bad}.*not finite"):
        ol.clip_grad_norm_(grads, 1.0, error_if_nonfinite=True)
    for g, o in zip(grads, original):
        assert np.array_equal(g, o, equal_nan=True)


def test_none_gradients_are_skipped_like_torch(torch):
    rng = np.random.default_rng(6)
    grads = random_grads(rng)
    grads[1] = None
    params = torch_params(torch, grads)
    total = ol.clip_grad_norm_(grads, 0.5)
    assert total == pytest.approx(float(torch.nn.utils.clip_grad_norm_(params, 0.5)), rel=1e-14)
    assert grads[1] is None
    for ours, theirs in zip(grads, torch_grads(params)):
        if ours is not None:
            np.testing.assert_allclose(ours, theirs, rtol=1e-14)
    assert ol.clip_grad_norm_([], 1.0) == 0.0 == float(torch.nn.utils.clip_grad_norm_([], 1.0))


@pytest.mark.parametrize("clip", [0.0, 0.05, 0.7, 1e3])
def test_clip_grad_value_matches_torch(torch, clip):
    rng = np.random.default_rng(7)
    grads = random_grads(rng)
    grads[0][1] = math.nan
    grads[3][0] = -math.inf
    params = torch_params(torch, grads)
    assert ol.clip_grad_value_(grads, clip) is None
    torch.nn.utils.clip_grad_value_(params, clip)
    for ours, theirs in zip(grads, torch_grads(params)):
        assert np.array_equal(ours, theirs, equal_nan=True)
    assert grads[3][0] == -clip


def test_clipping_keeps_float32_and_matches_torch_float32(torch):
    rng = np.random.default_rng(8)
    grads = [g.astype(np.float32) for g in random_grads(rng)]
    params = [torch.nn.Parameter(torch.zeros(g.shape)) for g in grads]
    for p, g in zip(params, grads):
        p.grad = torch.from_numpy(g.copy())
    total = ol.clip_grad_norm_(grads, 0.1)
    assert total == pytest.approx(float(torch.nn.utils.clip_grad_norm_(params, 0.1)), rel=1e-6)
    for ours, p in zip(grads, params):
        assert ours.dtype == np.float32
        np.testing.assert_allclose(ours, p.grad.numpy(), rtol=1e-6)


# ----------------------------------------------------------------------------------------------------------------
# Per-array and per-row clipping


@pytest.mark.parametrize("norm_type", NORMS)
def test_clip_by_norm_along_the_last_axis_clips_each_row_alone(norm_type):
    """A sweep of B runs as a (B, d) gradient: each run clipped on its own, a NaN run leaves the others alone."""
    rng = np.random.default_rng(9)
    g = rng.standard_normal((6, 4)) * np.array([[1e-3], [0.5], [2.0], [1.0], [30.0], [1e3]])
    g[3, 1] = math.nan
    original = g.copy()
    norms = ol.clip_by_norm_([g], 1.0, norm_type, axis=-1)[0]
    assert norms.shape == (6,)
    for i in range(6):
        row = original[i].copy()
        total = ol.clip_grad_norm_([row], 1.0, norm_type)
        assert (math.isnan(total) and math.isnan(norms[i])) or norms[i] == pytest.approx(total, rel=1e-14)
        np.testing.assert_allclose(g[i], row, rtol=1e-14)
    assert np.all(np.isnan(g[3]))
    others = [0, 1, 2, 4, 5]
    assert np.all(np.isfinite(g[others]))
    assert np.array_equal(g[0], original[0])            # a small row: multiplied by exactly 1


def test_clip_by_norm_without_axis_clips_each_array_alone():
    rng = np.random.default_rng(10)
    grads = random_grads(rng)
    separate = [g.copy() for g in grads]
    norms = ol.clip_by_norm_(grads, 0.3)
    for g, s, n in zip(grads, separate, norms):
        assert n == pytest.approx(ol.clip_grad_norm_([s], 0.3), rel=1e-15)
        np.testing.assert_allclose(g, s, rtol=1e-15)


def test_clip_by_norm_with_an_array_of_bounds_per_row():
    g = np.array([[3.0, 4.0], [3.0, 4.0], [0.3, 0.4]])
    ol.clip_by_norm_([g], np.array([[1.0], [10.0], [0.1]]), axis=-1)
    np.testing.assert_allclose(np.linalg.norm(g, axis=-1), [1.0, 5.0, 0.1], rtol=1e-5)


BAD_CLIPPING = [
    (lambda: ol.clip_grad_norm_([np.ones(2)], 1.0, norm_type=0), ValueError, ["norm_type", "0"]),
    (lambda: ol.clip_grad_norm_([np.ones(2)], 1.0, norm_type=-2.0), ValueError, ["norm_type", "-2.0"]),
    (lambda: ol.clip_grad_norm_([np.ones(2)], 1.0, norm_type=math.nan), ValueError, ["norm_type", "nan"]),
    (lambda: ol.clip_grad_norm_([np.ones(2)], 1.0, norm_type="two"), ValueError, ["norm_type", "two"]),
    (lambda: ol.clip_grad_norm_([np.ones(2)], 1.0, norm_type=True), ValueError, ["norm_type", "True"]),
    (lambda: ol.clip_grad_norm_([np.ones(2)], -1.0), ValueError, ["max_norm", "-1.0"]),
    (lambda: ol.clip_grad_norm_([np.ones(2)], math.nan), ValueError, ["max_norm", "nan"]),
    (lambda: ol.clip_grad_norm_([np.ones(2)], "1"), TypeError, ["max_norm", "'1'"]),
    (lambda: ol.clip_grad_norm_([np.ones(2, dtype=int)], 1.0), TypeError, ["grads[0]", "int"]),
    (lambda: ol.clip_grad_norm_([np.ones(2), [1.0]], 1.0), TypeError, ["grads[1]", "list"]),
    (lambda: ol.clip_grad_norm_(3.0, 1.0), TypeError, ["grads", "float"]),
    (lambda: ol.clip_grad_norm_([np.ones(2)], 1.0, error_if_nonfinite="yes"), TypeError,
     ["error_if_nonfinite", "yes"]),
    (lambda: ol.clip_grad_value_([np.ones(2)], -0.5), ValueError, ["clip_value", "-0.5"]),
    (lambda: ol.clip_by_norm_([np.ones((2, 3))], 1.0, axis=2), ValueError, ["axis", "(2, 3)"]),
    (lambda: ol.global_norm([np.ones(2)], norm_type=0.0), ValueError, ["norm_type", "0.0"]),
]


@pytest.mark.parametrize("case", range(len(BAD_CLIPPING)))
def test_bad_clipping_arguments_are_named(case):
    action, error, words = BAD_CLIPPING[case]
    with pytest.raises(error) as caught:
        action()
    for word in words:
        assert word in str(caught.value), f"{word!r} not in {caught.value}"


def test_clipping_a_read_only_gradient_is_refused_before_anything_changes():
    a, b = np.full(3, 10.0), np.full(2, 10.0)
    b.flags.writeable = False
    with pytest.raises(ValueError, match=r"grads\[1\].*writeable"):
        ol.clip_grad_norm_([a, b], 1.0)
    assert np.array_equal(a, np.full(3, 10.0))


# ----------------------------------------------------------------------------------------------------------------
# Gradient accumulation


def least_squares(params, X, y):
    """Mean of ½(x·w + b − y)² and its gradient."""
    w, b = params
    r = X @ w + b - y
    return [X.T @ r / len(y), np.array([r.mean()])]


def logistic(params, X, y):
    """Mean of log(1 + exp(−y(x·w + b))) for labels y in {−1, +1}, and its gradient."""
    w, b = params
    z = y * (X @ w + b)
    s = -y / (1 + np.exp(z))          # d/dz log(1 + e^(−z)) = −1/(1 + e^z), times y
    return [X.T @ s / len(y), np.array([s.mean()])]


def data(rng, n, d, kind):
    X = rng.standard_normal((n, d))
    y = rng.standard_normal(n) if kind == "least squares" else np.where(rng.random(n) < 0.5, -1.0, 1.0)
    return X, y, [rng.standard_normal(d), rng.standard_normal(1)]


LOSSES = {"least squares": least_squares, "logistic": logistic}


@pytest.mark.parametrize("kind", list(LOSSES))
def test_equal_micro_batches_average_to_the_big_batch_gradient(kind):
    rng = np.random.default_rng(12)
    k, size = 4, 8
    X, y, params = data(rng, k * size, 5, kind)
    grad = LOSSES[kind]
    acc = ol.GradientAccumulator(k)
    for j in range(k):
        assert not acc.ready
        acc.add(grad(params, X[j * size:(j + 1) * size], y[j * size:(j + 1) * size]))
    assert acc.ready and acc.count == k
    for got, expected in zip(acc.pop(), grad(params, X, y)):
        np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15)
    assert acc.count == 0 and not acc.ready


@pytest.mark.parametrize("kind", list(LOSSES))
def test_unequal_micro_batches_need_their_sizes_as_weights(kind):
    rng = np.random.default_rng(13)
    sizes = [3, 11, 1, 7]
    X, y, params = data(rng, sum(sizes), 4, kind)
    grad = LOSSES[kind]
    bounds = np.cumsum([0] + sizes)
    weighted, plain = ol.GradientAccumulator(4), ol.GradientAccumulator(4)
    for s, e in zip(bounds[:-1], bounds[1:]):
        weighted.add(grad(params, X[s:e], y[s:e]), weight=e - s)
        plain.add(grad(params, X[s:e], y[s:e]))
    expected = grad(params, X, y)
    for got, want in zip(weighted.pop(), expected):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
    # without weights a 1-example micro-batch counts as much as an 11-example one: not the big batch
    assert not np.allclose(plain.pop()[0], expected[0], rtol=1e-3)


def test_accumulated_gradients_drive_an_optimizer_like_the_big_batch():
    rng = np.random.default_rng(14)
    X, y, params = data(rng, 24, 3, "least squares")
    big = [p.copy() for p in params]
    opt, opt_big = ol.SGD(params, lr=0.1, momentum=0.9), ol.SGD(big, lr=0.1, momentum=0.9)
    acc = ol.GradientAccumulator(3)
    for _ in range(20):
        for j in range(3):
            acc.add(least_squares(params, X[8 * j:8 * (j + 1)], y[8 * j:8 * (j + 1)]))
        opt.step(acc.pop())
        opt_big.step(least_squares(big, X, y))
    for p, q in zip(params, big):
        np.testing.assert_allclose(p, q, rtol=1e-12)


def test_the_accumulator_does_not_alias_the_gradients_it_was_given():
    g = [np.ones(3)]
    acc = ol.GradientAccumulator(2)
    acc.add(g)
    g[0][:] = 100.0
    acc.add([np.ones(3)])
    assert np.array_equal(acc.pop()[0], np.ones(3))


def test_bad_accumulator_input_is_refused_and_changes_nothing():
    for k in (0, -1, 1.5, True, "2", None):
        with pytest.raises(ValueError, match=f"k must be a positive integer, got {k!r}"):
            ol.GradientAccumulator(k)
    acc = ol.GradientAccumulator(2)
    with pytest.raises(ValueError, match="empty"):
        acc.pop()
    acc.add([np.ones(3), np.ones((2, 2))])
    cases = [
        (lambda: acc.add([np.ones(4), np.ones((2, 2))]), ValueError, r"grads\[0\].*\(4,\).*\(3,\)"),
        (lambda: acc.add([np.ones(3)]), ValueError, "1 arrays.*2"),
        (lambda: acc.add([np.ones(3), np.ones((2, 2), dtype=int)]), TypeError, r"grads\[1\]"),
        (lambda: acc.add([np.ones(3), np.ones((2, 2))], weight=0.0), ValueError, "weight.*0.0"),
        (lambda: acc.add([np.ones(3), np.ones((2, 2))], weight=-1), ValueError, "weight.*-1"),
        (lambda: acc.add([np.ones(3), np.ones((2, 2))], weight=math.nan), ValueError, "weight.*nan"),
        (lambda: acc.add([np.ones(3), np.ones((2, 2))], weight=math.inf), ValueError, "weight.*inf"),
    ]
    for action, error, pattern in cases:
        with pytest.raises(error, match=pattern):
            action()
        assert acc.count == 1
    acc.add([3 * np.ones(3), 3 * np.ones((2, 2))])
    with pytest.raises(ValueError, match="already holds k=2.*pop"):
        acc.add([np.ones(3), np.ones((2, 2))])
    mean = acc.pop()
    assert np.array_equal(mean[0], np.full(3, 2.0)) and np.array_equal(mean[1], np.full((2, 2), 2.0))
