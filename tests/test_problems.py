"""Tests of optimlab.problems: analytic derivatives against finite differences, batching, the ravine's theory
against brute force, the data sets' promised properties, and argument checking."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimlab.problems import (
    Beale,
    DigitsMLP,
    MovingOptimum,
    NoisyQuadratic,
    Ravine,
    RNNCliff,
    Rosenbrock,
    Saddle,
    SparseLogistic,
)

FAST = settings(max_examples=40, deadline=None, derandomize=True)


def central_difference_grad(loss, x, h=1e-6):
    """Central differences of ``loss`` at a batch of points x (..., d), all coordinates in one batched call."""
    d = x.shape[-1]
    steps = h * np.eye(d).reshape((d,) + (1,) * (x.ndim - 1) + (d,))  # (d, 1, ..., 1, d)
    return np.moveaxis((loss(x + steps) - loss(x - steps)) / (2 * h), 0, -1)


# Every vector problem, with a sampler of points where it is smooth enough for finite differences.
def _uniform_in_bounds(problem, rng, n):
    (x_low, x_high), (y_low, y_high) = problem.bounds
    return np.stack([rng.uniform(x_low, x_high, n), rng.uniform(y_low, y_high, n)], axis=-1)


VECTOR_PROBLEMS = {
    "ravine": (lambda: Ravine(30.0, angle=0.4), lambda p, rng, n: rng.normal(size=(n, p.dim)) * 3),
    "ravine_5d": (lambda: Ravine(100.0, angle=0.3, dim=5), lambda p, rng, n: rng.normal(size=(n, p.dim))),
    "noisy_quadratic": (lambda: NoisyQuadratic(10.0, noise=0.5), lambda p, rng, n: rng.normal(size=(n, 2))),
    "rosenbrock": (lambda: Rosenbrock(), lambda p, rng, n: rng.uniform(-1.5, 1.5, size=(n, 2))),
    "rosenbrock_a2": (lambda: Rosenbrock(a=2.0, b=10.0), lambda p, rng, n: rng.uniform(-2, 2, size=(n, 2))),
    "beale": (lambda: Beale(), lambda p, rng, n: rng.uniform(-2, 2, size=(n, 2))),
    "saddle": (lambda: Saddle(2.0, 0.5), _uniform_in_bounds),
    "sparse_logistic": (
        lambda: SparseLogistic(n_samples=300, n_features=12, seed=3),
        lambda p, rng, n: rng.normal(size=(n, p.dim)),
    ),
    "moving_circle": (lambda: MovingOptimum("circle", radius=2.0, period=50), _uniform_in_bounds),
    "moving_jump": (lambda: MovingOptimum("jump", period=7, curvature=3.0), _uniform_in_bounds),
    # below w = 4 the one-unit network has a single attractor: no cliff, finite differences are reliable
    "rnn_cliff": (
        lambda: RNNCliff(T=20),
        lambda p, rng, n: np.stack([rng.uniform(-2, 3.5, n), rng.uniform(-3, 3, n)], -1),
    ),
}
CURVATURE_PROBLEMS = [name for name in VECTOR_PROBLEMS if name != "rnn_cliff"]


@pytest.fixture(params=sorted(VECTOR_PROBLEMS))
def problem_and_points(request):
    make, sample = VECTOR_PROBLEMS[request.param]
    problem = make()
    return request.param, problem, sample(problem, np.random.default_rng(0), 6)


# ----------------------------------------------------------------------------------------------------------------
# The protocol, shared by every vector problem


def test_protocol_attributes(problem_and_points):
    _, problem, _ = problem_and_points
    assert isinstance(problem.name, str) and problem.name
    assert problem.x0.shape == (problem.dim,)
    assert not problem.x0.flags.writeable
    assert np.isfinite(problem.loss(problem.x0))
    if problem.dim == 2:
        (x_low, x_high), (y_low, y_high) = problem.bounds
        assert x_low < problem.x0[0] < x_high and y_low < problem.x0[1] < y_high
    if problem.x_star is not None:
        assert problem.x_star.shape == (problem.dim,)
        np.testing.assert_allclose(problem.loss(problem.x_star), problem.f_star, atol=1e-12)
        np.testing.assert_allclose(problem.grad(problem.x_star), 0.0, atol=1e-9)
    assert repr(problem).startswith(type(problem).__name__ + "(")


def test_gradient_matches_finite_differences(problem_and_points):
    _, problem, points = problem_and_points
    t = 5  # only MovingOptimum looks at t
    analytic = problem.grad(points, t)
    numeric = central_difference_grad(lambda x: problem.loss(x, t), points)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-6 * max(1.0, np.abs(analytic).max()))


def test_batched_and_unbatched_agree(problem_and_points):
    _, problem, points = problem_and_points
    t = 11
    batched_loss, batched_grad = problem.loss(points, t), problem.grad(points, t)
    assert batched_loss.shape == points.shape[:-1] and batched_grad.shape == points.shape
    for point, loss, grad in zip(points, batched_loss, batched_grad):
        assert np.shape(problem.loss(point, t)) == ()
        np.testing.assert_allclose(problem.loss(point, t), loss, rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(problem.grad(point, t), grad, rtol=1e-13, atol=1e-13)
    grid = points.reshape(2, 3, problem.dim)  # any leading shape, e.g. a contour grid
    np.testing.assert_allclose(problem.loss(grid, t), batched_loss.reshape(2, 3), rtol=1e-13)
    np.testing.assert_allclose(problem.grad(grid, t), batched_grad.reshape(2, 3, -1), rtol=1e-13)


@pytest.mark.parametrize("name", ["ravine", "ravine_5d", "rosenbrock", "beale", "saddle", "rnn_cliff"])
def test_deterministic_problems_ignore_t_and_rng(name):
    make, sample = VECTOR_PROBLEMS[name]
    problem = make()
    points = sample(problem, np.random.default_rng(0), 4)
    np.testing.assert_array_equal(problem.grad(points, 0), problem.grad(points, 7, np.random.default_rng(1)))
    np.testing.assert_array_equal(problem.loss(points), problem.loss(points, 99))


def test_float32_points_stay_float32(problem_and_points):
    _, problem, points = problem_and_points
    points32 = points.astype(np.float32)
    assert problem.grad(points32).dtype == np.float32
    assert problem.grad(np.zeros(problem.dim, dtype=int)).dtype == np.float64


def test_wrong_point_shape_raises(problem_and_points):
    _, problem, _ = problem_and_points
    with pytest.raises(ValueError, match=rf"x|w.*\(\.\.\., {problem.dim}\)"):
        problem.grad(np.zeros(problem.dim + 1))


@pytest.mark.parametrize("name", CURVATURE_PROBLEMS)
def test_hvp_and_hessian_match_finite_differences(name):
    make, sample = VECTOR_PROBLEMS[name]
    problem = make()
    rng = np.random.default_rng(1)
    points, directions = sample(problem, rng, 5), rng.normal(size=(5, problem.dim))
    h = 1e-6
    numeric = (problem.grad(points + h * directions) - problem.grad(points - h * directions)) / (2 * h)
    hvp = problem.hvp(points, directions)
    np.testing.assert_allclose(hvp, numeric, rtol=1e-6, atol=1e-6 * max(1.0, np.abs(hvp).max()))
    hessian = problem.hessian(points)
    assert hessian.shape == points.shape + (problem.dim,)
    np.testing.assert_allclose(hessian, np.swapaxes(hessian, -1, -2), atol=1e-12)
    np.testing.assert_allclose(np.einsum("...ij,...j->...i", hessian, directions), hvp, rtol=1e-10, atol=1e-12)
    # one direction for a whole batch of points broadcasts
    np.testing.assert_allclose(problem.hvp(points, directions[0]), problem.hvp(points, np.tile(directions[0], (5, 1))))


# ----------------------------------------------------------------------------------------------------------------
# Ravine: the quadratic and its theory


def test_ravine_matrix_has_the_promised_spectrum():
    ravine = Ravine(condition_number=50.0, angle=0.7, scale=3.0)
    assert (ravine.mu, ravine.L) == pytest.approx((3.0 / 50.0, 3.0))
    np.testing.assert_allclose(np.linalg.eigvalsh(ravine.A), ravine.eigenvalues)
    # the flat direction makes the angle `angle` with the first axis
    flat_direction = np.linalg.eigh(ravine.A)[1][:, 0]
    assert abs(flat_direction @ [math.cos(0.7), math.sin(0.7)]) == pytest.approx(1.0)
    five = Ravine(condition_number=1000.0, dim=5)
    np.testing.assert_allclose(np.diff(np.log(five.eigenvalues)), math.log(1000.0) / 4)
    assert five.bounds is None


def test_ravine_with_shifted_minimizer():
    ravine = Ravine(5.0, angle=1.0, x_star=[1.0, -2.0])
    assert ravine.loss([1.0, -2.0]) == 0.0
    np.testing.assert_allclose(ravine.x0 - ravine.x_star, Ravine(5.0, angle=1.0).x0)


@FAST
@given(
    kappa=st.floats(1.0, 1e4),
    angle=st.floats(-3.2, 3.2),
    lr_fraction=st.floats(0.0, 1.2),
)
def test_gd_rate_is_the_worst_case_contraction(kappa, angle, lr_fraction):
    ravine = Ravine(kappa, angle=angle, scale=2.0)
    lr = lr_fraction * ravine.gd_stable_lr()
    rate = ravine.gd_rate(lr)
    step_matrix = np.eye(2) - lr * ravine.A  # one GD step maps the error e to (I - lr A) e
    assert rate == pytest.approx(np.linalg.norm(step_matrix, 2), rel=1e-9, abs=1e-12)
    # no error ever shrinks by less than the rate, and the worst eigendirection shrinks by exactly the rate
    errors = np.random.default_rng(0).normal(size=(20, 2))
    gd_step = errors - lr * ravine.grad(errors)
    assert np.all(np.linalg.norm(gd_step, axis=-1) <= rate * np.linalg.norm(errors, axis=-1) + 1e-12)
    worst = np.linalg.eigh(ravine.A)[1][:, np.argmax(np.abs(1 - lr * np.linalg.eigvalsh(ravine.A)))]
    assert np.linalg.norm(worst - lr * ravine.grad(worst)) == pytest.approx(rate, abs=1e-12)


def test_gd_rate_matches_a_sweep_of_measured_runs():
    ravine = Ravine(condition_number=10.0, angle=0.5)
    lrs = np.linspace(0.05, 1.95, 20)[:, None]  # one run per learning rate, all in one array
    x = np.tile(ravine.x0, (lrs.size, 1))
    norms = []
    for _ in range(200):
        x = x - lrs * ravine.grad(x)
        norms.append(np.linalg.norm(x - ravine.x_star, axis=-1))
    measured = (norms[-1] / norms[99]) ** (1 / 100)
    np.testing.assert_allclose(measured, ravine.gd_rate(lrs[:, 0]), rtol=1e-3)


def test_gd_theory_values_and_vectorization():
    ravine = Ravine(condition_number=9.0, scale=2.0)
    assert ravine.gd_stable_lr() == pytest.approx(1.0)
    assert ravine.gd_best_lr() == pytest.approx(2.0 / (2.0 + 2.0 / 9.0))
    assert ravine.gd_rate(ravine.gd_best_lr()) == pytest.approx(ravine.gd_best_rate())
    assert ravine.gd_best_rate() == pytest.approx(0.8)
    assert np.ndim(ravine.gd_rate(0.1)) == 0 and isinstance(float(ravine.gd_rate(0.1)), float)
    assert ravine.gd_rate(np.ones((3, 4))).shape == (3, 4)
    assert ravine.gd_rate(ravine.gd_stable_lr()) == pytest.approx(1.0)


def _explicit_heavy_ball_radius(ravine, lr, beta):
    """Spectral radius of the heavy-ball iteration, from the 2x2 matrix of every eigenvalue, by eigvals."""
    return max(
        np.abs(np.linalg.eigvals(np.array([[1 + beta - lr * lam, -beta], [1.0, 0.0]]))).max()
        for lam in ravine.eigenvalues
    )


@FAST
@given(
    kappa=st.floats(1.0, 1e4),
    lr_fraction=st.floats(0.0, 2.5),
    beta=st.floats(-0.5, 0.999),
    dim=st.sampled_from([2, 4]),
)
def test_heavy_ball_rate_is_the_spectral_radius(kappa, lr_fraction, beta, dim):
    ravine = Ravine(kappa, scale=1.5, dim=dim)
    lr = lr_fraction * ravine.gd_stable_lr()
    expected = _explicit_heavy_ball_radius(ravine, lr, beta)
    # eigvals of a defective (critically damped) matrix are only accurate to about sqrt(machine epsilon)
    assert ravine.heavy_ball_rate(lr, beta) == pytest.approx(expected, rel=1e-7, abs=1e-7)


@FAST
@given(kappa=st.floats(1.0, 1e4), lr_fraction=st.floats(0.001, 2.5), beta=st.floats(0.0, 0.999))
def test_heavy_ball_stable_region_agrees_with_the_rate(kappa, lr_fraction, beta):
    ravine = Ravine(kappa)
    lr = lr_fraction * ravine.gd_stable_lr()
    rate = ravine.heavy_ball_rate(lr, beta)
    if abs(rate - 1.0) > 1e-9:  # on the boundary the strict inequalities decide, not rounding
        assert bool(ravine.heavy_ball_stable(lr, beta)) == (rate < 1.0)


@FAST
@given(kappa=st.floats(1.0, 1e6), scale=st.floats(1e-3, 1e3))
def test_heavy_ball_best_reaches_the_accelerated_rate(kappa, scale):
    ravine = Ravine(kappa, scale=scale)
    lr, beta = ravine.heavy_ball_best()
    sqrt_kappa = math.sqrt(kappa)
    assert beta == pytest.approx(((sqrt_kappa - 1) / (sqrt_kappa + 1)) ** 2, abs=1e-15)
    assert ravine.heavy_ball_rate(lr, beta) == pytest.approx(ravine.heavy_ball_best_rate(), rel=1e-6, abs=1e-12)
    assert ravine.heavy_ball_best_rate() <= ravine.gd_best_rate() + 1e-15
    # the best parameters are a minimum: nudging them makes the rate no better
    for d_lr, d_beta in [(1.01, 0), (0.99, 0), (1, 0.01), (1, -0.01)]:
        nudged_beta = min(max(beta + d_beta, 0.0), 0.999)
        assert ravine.heavy_ball_rate(lr * d_lr, nudged_beta) >= ravine.heavy_ball_best_rate() - 1e-9


def test_heavy_ball_rate_matches_a_sweep_of_measured_runs():
    ravine = Ravine(condition_number=20.0, angle=0.3)
    lr_grid, beta_grid = np.meshgrid(np.linspace(0.1, 2.5, 7), np.linspace(0.0, 0.9, 6))
    lr, beta = lr_grid.reshape(-1, 1), beta_grid.reshape(-1, 1)
    rate = ravine.heavy_ball_rate(lr[:, 0], beta[:, 0])
    assert rate.shape == (42,)
    np.testing.assert_array_equal(ravine.heavy_ball_stable(lr_grid, beta_grid).reshape(-1), rate < 1)
    # torch-style momentum: v = beta v + g, x -= lr v, one run per (lr, beta)
    x = np.tile(ravine.x0, (lr.size, 1))
    velocity = np.zeros_like(x)
    sizes = []
    for _ in range(300):
        previous = x
        velocity = beta * velocity + ravine.grad(x)
        x = x - lr * velocity
        sizes.append(np.hypot(np.linalg.norm(x, axis=-1), np.linalg.norm(previous, axis=-1)))
    measured = (sizes[-1] / sizes[149]) ** (1 / 150)
    keep = (rate > 0.3) & (rate < 1.05)  # measurable without underflow or overflow over 300 steps
    assert keep.sum() > 20
    np.testing.assert_allclose(measured[keep], rate[keep], rtol=2e-2)


def test_heavy_ball_broadcasts_lr_against_beta():
    ravine = Ravine(10.0)
    rates = ravine.heavy_ball_rate(np.linspace(0.1, 1, 5)[:, None], np.linspace(0, 0.9, 4))
    assert rates.shape == (5, 4)
    assert rates[2, 1] == pytest.approx(ravine.heavy_ball_rate(np.linspace(0.1, 1, 5)[2], np.linspace(0, 0.9, 4)[1]))
    assert ravine.heavy_ball_rate(0.5, 0.0) == pytest.approx(ravine.gd_rate(0.5))  # no momentum, plain GD
    assert not ravine.heavy_ball_stable(0.5, 1.0) and not ravine.heavy_ball_stable(0.5, -0.1)
    assert not ravine.heavy_ball_stable(0.0, 0.5)


# ----------------------------------------------------------------------------------------------------------------
# NoisyQuadratic


def test_noisy_quadratic_is_deterministic_given_a_seeded_rng():
    problem = NoisyQuadratic(10.0, noise=0.3)
    x = np.random.default_rng(0).normal(size=(4, 2))
    first = problem.grad(x, 0, np.random.default_rng(42))
    np.testing.assert_array_equal(first, problem.grad(x, 0, np.random.default_rng(42)))
    assert not np.allclose(first, problem.grad(x, 0, np.random.default_rng(43)))
    np.testing.assert_array_equal(problem.grad(x), Ravine(10.0).grad(x))  # rng None: exact gradient


def test_noisy_quadratic_noise_has_the_promised_statistics():
    problem = NoisyQuadratic(4.0, noise=0.5)
    x = np.tile([1.0, -2.0], (20000, 1))
    noise = problem.grad(x, 0, np.random.default_rng(0)) - problem.grad(x)
    np.testing.assert_allclose(noise.mean(axis=0), 0.0, atol=0.02)
    np.testing.assert_allclose(noise.std(axis=0), 0.5, rtol=0.02)
    np.testing.assert_allclose(np.corrcoef(noise.T)[0, 1], 0.0, atol=0.03)


def test_sgd_noise_floor_matches_simulation():
    problem = NoisyQuadratic(10.0, noise=1.0, angle=0.4)
    lrs = np.array([0.2, 0.8, 1.5])
    runs = 2000
    lr = np.repeat(lrs, runs)[:, None]
    rng = np.random.default_rng(0)
    x = np.repeat(problem.x_star[None], lr.size, axis=0)
    losses = []
    for step in range(300):
        x = x - lr * problem.grad(x, step, rng)
        if step >= 200:
            losses.append(problem.loss(x))
    measured = np.mean(losses, axis=0).reshape(3, runs).mean(axis=1)
    np.testing.assert_allclose(measured, problem.sgd_stationary_loss(lrs), rtol=0.05)
    assert problem.sgd_stationary_loss(2.5) == np.inf and problem.sgd_stationary_loss(0.0) == np.inf


# ----------------------------------------------------------------------------------------------------------------
# SparseLogistic


@pytest.fixture(scope="module")
def sparse():
    return SparseLogistic()


def test_sparse_features_are_long_tailed(sparse):
    frequency = sparse.feature_frequency
    assert frequency.shape == (50,)
    np.testing.assert_allclose(frequency, sparse.X.mean(axis=0))
    np.testing.assert_allclose(frequency, sparse.target_frequency, atol=0.03)
    # a few features in most samples, most features in very few
    assert frequency.max() > 0.8
    assert np.median(frequency) < 0.05
    assert (frequency < 0.05).sum() > 0.6 * frequency.size
    # power law: log frequency falls linearly in log rank
    slope = np.polyfit(np.log(np.arange(1, 51)), np.log(np.maximum(frequency, 1e-3)), 1)[0]
    assert -1.3 < slope < -0.7
    assert set(np.unique(sparse.X)) <= {0.0, 1.0}


def test_sparse_rare_features_matter(sparse):
    rare = sparse.feature_frequency < np.median(sparse.feature_frequency)
    weights = np.abs(sparse.planted_weights)
    assert weights[rare].mean() > 1.5 * weights[~rare].mean()
    without_rare = np.where(rare, 0.0, sparse.x_star)
    assert sparse.loss(without_rare) > sparse.f_star + 0.05
    assert sparse.accuracy(sparse.x_star) > sparse.accuracy(without_rare) + 0.03
    assert 0.75 < sparse.accuracy(sparse.x_star) < 1.0


def test_sparse_minimizer(sparse):
    np.testing.assert_allclose(sparse.grad(sparse.x_star), 0.0, atol=1e-10)
    assert sparse.f_star < sparse.loss(sparse.planted_weights)
    assert sparse.f_star < sparse.loss(sparse.x0) == pytest.approx(math.log(2))
    # the Hessian is positive definite (ridge), so the minimizer is unique
    assert np.linalg.eigvalsh(sparse.hessian(sparse.x_star)).min() >= sparse.l2 - 1e-12


def test_sparse_minibatch_gradients(sparse):
    w = np.random.default_rng(0).normal(size=(3, 50))
    first = sparse.grad(w, 0, np.random.default_rng(5))
    np.testing.assert_array_equal(first, sparse.grad(w, 0, np.random.default_rng(5)))
    assert not np.allclose(first, sparse.grad(w, 0, np.random.default_rng(6)))
    np.testing.assert_allclose(sparse.grad(w, batch=np.arange(sparse.n_samples)), sparse.grad(w), rtol=1e-12)
    # the minibatch of batch_size rows is a sample without replacement: its gradient is the one on those rows
    rows = np.random.default_rng(5).choice(sparse.n_samples, size=sparse.batch_size, replace=False)
    np.testing.assert_allclose(first, sparse.grad(w, batch=rows), rtol=1e-12)
    # minibatch gradients average to the full gradient
    rng = np.random.default_rng(1)
    mean = np.mean([sparse.grad(w[0], 0, rng) for _ in range(3000)], axis=0)
    np.testing.assert_allclose(mean, sparse.grad(w[0]), atol=0.02)


def test_sparse_minibatch_gradient_is_exactly_zero_on_absent_features():
    problem = SparseLogistic(l2=0.0, batch_size=16, seed=1)
    rows = np.arange(16)
    absent = problem.X[rows].sum(axis=0) == 0
    assert absent.sum() > 10
    grad = problem.grad(np.ones(problem.dim), batch=rows)
    assert np.all(grad[absent] == 0.0) and np.all(grad[~absent] != 0.0)


def test_sparse_is_deterministic_given_seed():
    a, b = SparseLogistic(n_samples=100, seed=4), SparseLogistic(n_samples=100, seed=4)
    c = SparseLogistic(n_samples=100, seed=5)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.X, c.X)


# ----------------------------------------------------------------------------------------------------------------
# MovingOptimum


def test_moving_optimum_paths():
    circle = MovingOptimum("circle", radius=2.0, period=40)
    steps = np.arange(81)
    path = circle.x_star_at(steps)
    assert path.shape == (81, 2)
    np.testing.assert_allclose(np.linalg.norm(path, axis=-1), 2.0)
    np.testing.assert_allclose(path[40], path[0], atol=1e-12)
    np.testing.assert_allclose(path[10], [0.0, 2.0], atol=1e-12)
    jump = MovingOptimum("jump", radius=1.0, period=10)
    path = jump.x_star_at(steps)
    np.testing.assert_allclose(path[:10], np.tile([1.0, 0.0], (10, 1)), atol=1e-12)
    np.testing.assert_allclose(path[10], [0.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(path[40], path[0], atol=1e-12)
    assert len(np.unique(path.round(12), axis=0)) == 4
    for t in (0, 13, 27):
        assert jump.loss(jump.x_star_at(t), t) == pytest.approx(0.0, abs=1e-24)
        np.testing.assert_allclose(jump.grad(jump.x_star_at(t), t), 0.0, atol=1e-12)


def test_moving_optimum_broadcasts_t_against_points():
    problem = MovingOptimum("circle", period=8)
    x = np.zeros((5, 2))
    np.testing.assert_allclose(problem.grad(x, np.arange(5)), -problem.x_star_at(np.arange(5)))


def test_moving_optimum_makes_adagrad_fall_behind_rmsprop():
    """The lesson the problem exists for: RMSprop keeps tracking the jumps, AdaGrad's steps keep shrinking."""
    problem = MovingOptimum("jump", radius=1.0, period=200)
    lr, eps = 0.05, 1e-8
    x_adagrad, x_rmsprop = np.zeros(2), np.zeros(2)
    sum_sq, avg_sq = np.zeros(2), np.zeros(2)
    lag_adagrad, lag_rmsprop = [], []
    for t in range(1600):
        g = problem.grad(x_adagrad, t)
        sum_sq += g * g
        x_adagrad = x_adagrad - lr * g / (np.sqrt(sum_sq) + eps)
        g = problem.grad(x_rmsprop, t)
        avg_sq = 0.99 * avg_sq + 0.01 * g * g
        x_rmsprop = x_rmsprop - lr * g / (np.sqrt(avg_sq) + eps)
        if t % 200 == 199:  # just before each jump
            lag_adagrad.append(np.linalg.norm(x_adagrad - problem.x_star_at(t)))
            lag_rmsprop.append(np.linalg.norm(x_rmsprop - problem.x_star_at(t)))
    assert max(lag_rmsprop[2:]) < 0.1
    assert lag_adagrad[-1] > 0.3 and lag_adagrad[-1] > lag_adagrad[1]


# ----------------------------------------------------------------------------------------------------------------
# RNNCliff


def test_rnn_hidden_states_follow_the_recurrence():
    problem = RNNCliff(T=6, h0=0.3, target=0.8)
    x = np.array([[1.5, -0.2], [5.0, -2.0]])
    states = problem.hidden_states(x)
    assert states.shape == (2, 7)
    for run, (w, b) in enumerate(x):
        h = 0.3
        for t in range(1, 7):
            h = 1 / (1 + math.exp(-(w * h + b)))
            assert states[run, t] == pytest.approx(h, rel=1e-14)
    np.testing.assert_allclose(problem.loss(x), (states[:, -1] - 0.8) ** 2)


def test_rnn_defaults_are_the_papers_model():
    """h_t = sigmoid(w h_{t-1} + b) from h0 = sigmoid(0.5) is Pascanu et al.'s x_t = w sigmoid(x_{t-1}) + b
    from x0 = 0.5, with loss (sigmoid(x_T) - 0.7)^2."""
    problem = RNNCliff()
    w, b = 3.0, -1.0
    x = 0.5
    for _ in range(problem.T):
        x = w / (1 + math.exp(-x)) + b
    assert problem.loss([w, b]) == pytest.approx((1 / (1 + math.exp(-x)) - 0.7) ** 2, rel=1e-12)


def test_rnn_cliff_is_where_the_loss_jumps_and_the_gradient_explodes():
    problem = RNNCliff()
    for w in (5.0, 6.0, 8.0):
        cliff = problem.cliff_bias(w)
        assert cliff == pytest.approx(0.5 - problem.h0 * w)  # logit(h0) = 0.5
        below, above = problem.loss([[w, cliff - 0.05], [w, cliff + 0.05]])
        assert below - above > 0.3  # a wall between h_T near 0 and h_T near 1
        across = cliff + np.linspace(-0.05, 0.05, 4001)
        wall = np.linalg.norm(problem.grad(np.stack([np.full_like(across, w), across], -1)), axis=-1).max()
        away = np.linalg.norm(problem.grad([[w, cliff - 1.0], [w, cliff + 1.0]]), axis=-1).max()
        assert wall > 500 * away
    assert np.isnan(problem.cliff_bias(4.0)) and not np.isnan(problem.cliff_bias(4.5))
    assert problem.cliff_bias(np.array([5.0, 6.0])).shape == (2,)


def test_rnn_gradient_at_the_wall_grows_exponentially_with_T():
    w = 6.0
    peaks = []
    for T in (5, 10, 15):
        problem = RNNCliff(T=T)
        across = problem.cliff_bias(w) + np.linspace(-0.1, 0.1, 20001)
        points = np.stack([np.full_like(across, w), across], -1)
        peaks.append(np.linalg.norm(problem.grad(points), axis=-1).max())
    assert peaks[0] * 3 < peaks[1] and peaks[1] * 3 < peaks[2]


def test_rnn_default_start_shows_why_clipping_exists():
    problem = RNNCliff()
    plain, clipped = problem.x0.copy(), problem.x0.copy()
    largest_gradient = 0.0
    for _ in range(300):
        g = problem.grad(plain)
        largest_gradient = max(largest_gradient, np.linalg.norm(g))
        plain = plain - 1.0 * g
        g = problem.grad(clipped)
        clipped = clipped - 1.0 * g * min(1.0, 1.0 / np.linalg.norm(g))
    (w_low, w_high), (b_low, b_high) = problem.bounds
    assert largest_gradient > 100 * np.linalg.norm(problem.grad(problem.x0))
    assert not (w_low < plain[0] < w_high and b_low < plain[1] < b_high)  # catapulted off the plot
    assert problem.loss(clipped) < 0.01


@FAST
@given(w=st.floats(-3.0, 3.0), b=st.floats(-4.0, 4.0), T=st.integers(1, 30), h0=st.floats(0.05, 0.95))
def test_rnn_gradient_matches_finite_differences_without_a_cliff(w, b, T, h0):
    problem = RNNCliff(T=T, h0=h0, target=0.4)
    x = np.array([w, b])
    numeric = central_difference_grad(problem.loss, x)
    np.testing.assert_allclose(problem.grad(x), numeric, rtol=1e-5, atol=1e-9)


# ----------------------------------------------------------------------------------------------------------------
# DigitsMLP


@pytest.fixture(scope="module")
def mlp():
    return DigitsMLP(hidden=(8, 6))


def _flat_fd_grad(mlp, params, batch, coordinates, h=1e-6):
    flat = mlp.flatten_params(params)
    steps = np.zeros((coordinates.size, flat.size))
    steps[np.arange(coordinates.size), coordinates] = h
    plus = mlp.loss(mlp.unflatten_params(flat + steps), batch)  # every perturbation is one run of a batch
    minus = mlp.loss(mlp.unflatten_params(flat - steps), batch)
    return (plus - minus) / (2 * h)


def test_mlp_data_split_and_scaling(mlp):
    assert mlp.X_train.shape == (1347, 64) and mlp.X_test.shape == (450, 64)
    assert mlp.X_train.dtype == np.float64
    # stratified: every class in the test set in proportion
    counts = np.bincount(mlp.y_test, minlength=10) / np.bincount(np.concatenate([mlp.y_train, mlp.y_test]))
    np.testing.assert_allclose(counts, 0.25, atol=0.01)
    np.testing.assert_allclose(mlp.X_train.mean(axis=0), 0.0, atol=1e-12)
    stds = mlp.X_train.std(axis=0)
    assert np.all((np.abs(stds - 1) < 1e-12) | (stds == 0))
    again, other = DigitsMLP(hidden=(8, 6)), DigitsMLP(seed=1)
    np.testing.assert_array_equal(again.X_test, mlp.X_test)
    assert not np.array_equal(other.y_test, mlp.y_test)
    assert mlp.layer_sizes == (64, 8, 6, 10)
    assert [p.shape for p in mlp.init_params(0)] == [(64, 8), (8,), (8, 6), (6,), (6, 10), (10,)]
    assert mlp.n_params == 64 * 8 + 8 + 8 * 6 + 6 + 6 * 10 + 10


def test_mlp_init_is_seeded_and_torch_like(mlp):
    first, second = mlp.init_params(3), mlp.init_params(3)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], mlp.init_params(4)[0])
    for layer, fan_in in enumerate(mlp.layer_sizes[:-1]):
        for p in first[2 * layer: 2 * layer + 2]:
            assert np.abs(p).max() <= 1 / math.sqrt(fan_in)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_mlp_gradients_match_finite_differences(activation):
    mlp = DigitsMLP(hidden=(8, 6), activation=activation)
    params = mlp.init_params(1)
    batch = np.arange(0, 200, 5)
    loss, grads = mlp.loss_and_grads(params, batch)
    assert loss == pytest.approx(mlp.loss(params, batch))
    coordinates = np.random.default_rng(0).choice(mlp.n_params, size=60, replace=False)
    numeric = _flat_fd_grad(mlp, params, batch, coordinates)
    np.testing.assert_allclose(mlp.flatten_params(grads)[coordinates], numeric, rtol=1e-5, atol=1e-9)


def test_mlp_hvp_matches_finite_differences_of_gradients(mlp):
    params = mlp.init_params(2)
    rng = np.random.default_rng(0)
    vecs = [rng.normal(size=p.shape) for p in params]
    batch = np.arange(60)
    h = 1e-6
    flat, direction = mlp.flatten_params(params), mlp.flatten_params(vecs)
    plus = mlp.loss_and_grads(mlp.unflatten_params(flat + h * direction), batch)[1]
    minus = mlp.loss_and_grads(mlp.unflatten_params(flat - h * direction), batch)[1]
    numeric = (mlp.flatten_params(plus) - mlp.flatten_params(minus)) / (2 * h)
    exact = mlp.flatten_params(mlp.hvp(params, vecs, batch))
    np.testing.assert_allclose(exact, numeric, rtol=1e-5, atol=1e-8)


def test_mlp_curvature_products_are_symmetric_and_gauss_newton_is_psd(mlp):
    params = mlp.init_params(2)
    rng = np.random.default_rng(1)
    u, v = (mlp.unflatten_params(rng.normal(size=mlp.n_params)) for _ in range(2))
    batch = np.arange(100)
    flat_u, flat_v = mlp.flatten_params(u), mlp.flatten_params(v)
    for product in (mlp.hvp, mlp.gnvp):
        assert flat_u @ mlp.flatten_params(product(params, v, batch)) == pytest.approx(
            flat_v @ mlp.flatten_params(product(params, u, batch)), rel=1e-10
        )
    for _ in range(5):
        w = mlp.unflatten_params(rng.normal(size=mlp.n_params))
        assert mlp.flatten_params(w) @ mlp.flatten_params(mlp.gnvp(params, w, batch)) >= 0.0


def test_mlp_gauss_newton_is_jacobian_transpose_softmax_hessian_jacobian(mlp):
    """v^T G v = mean over rows of (J v)^T (diag p - p p^T) (J v), with J v from finite differences of the logits."""
    params = mlp.init_params(5)
    v = mlp.unflatten_params(np.random.default_rng(2).normal(size=mlp.n_params))
    batch = np.arange(50)
    X = mlp.X_train[batch]
    h = 1e-6
    flat, direction = mlp.flatten_params(params), mlp.flatten_params(v)
    jv = (mlp.logits(mlp.unflatten_params(flat + h * direction), X)
          - mlp.logits(mlp.unflatten_params(flat - h * direction), X)) / (2 * h)
    logits = mlp.logits(params, X)
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    expected = np.mean((p * jv * jv).sum(-1) - (p * jv).sum(-1) ** 2)
    assert direction @ mlp.flatten_params(mlp.gnvp(params, v, batch)) == pytest.approx(expected, rel=1e-6)


def test_mlp_batched_parameters_equal_separate_runs(mlp):
    runs = [mlp.init_params(seed) for seed in range(3)]
    stacked = [np.stack(arrays) for arrays in zip(*runs)]
    batch = np.arange(30)
    losses, grads = mlp.loss_and_grads(stacked, batch)
    assert losses.shape == (3,)
    vecs = mlp.init_params(9)
    products = mlp.hvp(stacked, vecs, batch)  # one direction for every run broadcasts
    for run, params in enumerate(runs):
        loss, grad = mlp.loss_and_grads(params, batch)
        assert losses[run] == pytest.approx(loss, rel=1e-13)
        for a, b in zip(grads, grad):
            np.testing.assert_allclose(a[run], b, rtol=1e-12, atol=1e-15)
        for a, b in zip(products, mlp.hvp(params, vecs, batch)):
            np.testing.assert_allclose(a[run], b, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(mlp.accuracy(stacked), [mlp.accuracy(p) for p in runs])
    assert mlp.logits(stacked, mlp.X_test).shape == (3, 450, 10)
    np.testing.assert_allclose(mlp.flatten_params(stacked)[1], mlp.flatten_params(runs[1]))


def test_mlp_minibatches_cover_an_epoch(mlp):
    batches = list(mlp.minibatches(100, np.random.default_rng(0)))
    assert [len(b) for b in batches] == [100] * 13 + [47]
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(mlp.n_train))
    assert [len(b) for b in mlp.minibatches(100, np.random.default_rng(0), drop_last=True)] == [100] * 13
    np.testing.assert_array_equal(batches[0], next(mlp.minibatches(100, np.random.default_rng(0))))


def test_mlp_training_learns_the_digits():
    mlp = DigitsMLP(hidden=(16,))
    params = mlp.init_params(0)
    rng = np.random.default_rng(0)
    initial = mlp.loss(params)
    for _ in range(5):
        for batch in mlp.minibatches(32, rng):
            _, grads = mlp.loss_and_grads(params, batch)
            params = [p - 0.2 * g for p, g in zip(params, grads)]
    assert mlp.loss(params) < 0.2 * initial
    assert mlp.accuracy(params, "test") > 0.9
    assert mlp.loss(params, split="test") < 0.5


def test_mlp_sampled_label_gradients(mlp):
    params = mlp.init_params(0)
    batch = np.arange(20)
    first = mlp.sampled_label_grads(params, batch, np.random.default_rng(3))
    for a, b in zip(first, mlp.sampled_label_grads(params, batch, np.random.default_rng(3))):
        np.testing.assert_array_equal(a, b)
    assert [g.shape for g in first] == [p.shape for p in params]
    # with labels drawn from the model, the gradient is zero in expectation, unlike the true-label gradient
    repeats = 4000
    copies = [np.broadcast_to(p, (repeats,) + p.shape) for p in params]  # every copy draws its own labels
    sampled = mlp.flatten_params(mlp.sampled_label_grads(copies, batch, np.random.default_rng(4)))
    true_grad = mlp.flatten_params(mlp.loss_and_grads(params, batch)[1])
    assert np.linalg.norm(sampled.mean(axis=0)) < 0.1 * np.linalg.norm(true_grad)
    # Bartlett: for one row, E[g g^T] is the Gauss-Newton matrix
    one_row = np.array([7])
    sampled = mlp.flatten_params(mlp.sampled_label_grads(copies, one_row, np.random.default_rng(5)))
    v = mlp.unflatten_params(np.random.default_rng(6).normal(size=mlp.n_params))
    flat_v = mlp.flatten_params(v)
    monte_carlo = np.mean((sampled @ flat_v) ** 2)
    exact = flat_v @ mlp.flatten_params(mlp.gnvp(params, v, one_row))
    assert monte_carlo == pytest.approx(exact, rel=0.1)


def test_mlp_float32():
    mlp = DigitsMLP(hidden=(8,), dtype=np.float32)
    params = mlp.init_params(0)
    loss, grads = mlp.loss_and_grads(params, np.arange(50))
    assert mlp.X_train.dtype == np.float32 and loss.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads)
    assert all(p.dtype == np.float32 for p in mlp.hvp(params, params, np.arange(50)))
    reference = DigitsMLP(hidden=(8,))
    assert loss == pytest.approx(reference.loss([p.astype(np.float64) for p in params], np.arange(50)), rel=1e-5)


def test_mlp_rejects_mismatched_parameters(mlp):
    params = mlp.init_params(0)
    with pytest.raises(ValueError, match=r"params\[2\] must have shape \(8, 6\), got \(6, 8\)"):
        mlp.loss(params[:2] + [params[2].T] + params[3:])
    with pytest.raises(ValueError, match="list of 6 arrays, got 4"):
        mlp.loss_and_grads(params[:4])
    with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'valid'"):
        mlp.accuracy(params, "valid")


# ----------------------------------------------------------------------------------------------------------------
# Argument checking


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Ravine(condition_number=0.5), "condition_number must be >= 1, got 0.5"),
        (lambda: Ravine(condition_number=float("inf")), "condition_number must be finite, got inf"),
        (lambda: Ravine(scale=0), "scale must be > 0, got 0"),
        (lambda: Ravine(dim=1), "dim must be >= 2, got 1"),
        (lambda: Ravine(dim=2.5), "dim must be an integer, got 2.5"),
        (lambda: Ravine(angle="flat"), "angle must be a real number, got 'flat'"),
        (lambda: Ravine(x_star=[0, 0, 0]), r"x_star must be a finite array of shape \(2,\)"),
        (lambda: NoisyQuadratic(noise=-1), "noise must be >= 0, got -1"),
        (lambda: Rosenbrock(b=-100), "b must be > 0, got -100"),
        (lambda: Rosenbrock(a=float("nan")), "a must be finite, got nan"),
        (lambda: Saddle(negative_curvature=0), "negative_curvature must be > 0, got 0"),
        (lambda: SparseLogistic(n_samples=0), "n_samples must be >= 1, got 0"),
        (lambda: SparseLogistic(max_frequency=1.5), "max_frequency must be <= 1, got 1.5"),
        (lambda: SparseLogistic(exponent=-1), "exponent must be >= 0, got -1"),
        (lambda: SparseLogistic(l2=-0.1), "l2 must be >= 0, got -0.1"),
        (lambda: SparseLogistic(n_samples=10, batch_size=20), r"batch_size must be <= n_samples \(10\), got 20"),
        (lambda: SparseLogistic(batch_size=True), "batch_size must be an integer, got True"),
        (lambda: MovingOptimum(motion="spiral"), "motion must be 'circle' or 'jump', got 'spiral'"),
        (lambda: MovingOptimum(period=0), "period must be >= 1, got 0"),
        (lambda: MovingOptimum(radius=-2), "radius must be > 0, got -2"),
        (lambda: RNNCliff(T=0), "T must be >= 1, got 0"),
        (lambda: RNNCliff(h0=1.0), "h0 must be < 1, got 1.0"),
        (lambda: DigitsMLP(hidden=(8, 0)), r"hidden\[1\] must be >= 1, got 0"),
        (lambda: DigitsMLP(activation="sigmoid"), "activation must be one of .*, got 'sigmoid'"),
        (lambda: DigitsMLP(test_size=1.0), "test_size must be < 1, got 1.0"),
        (lambda: DigitsMLP(dtype=np.int32), "dtype must be float32 or float64"),
    ],
)
def test_bad_arguments_raise_value_error_naming_argument_and_value(make, message):
    with pytest.raises(ValueError, match=message):
        make()
