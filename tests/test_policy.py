"""Tests of ShortCorridor: the closed-form loss against simulated episodes, the exact gradient against finite
differences, REINFORCE's estimate unbiased with and without a baseline, batches, seeds, a run that learns, and
argument checking."""

import numpy as np
import pytest

from optimlab import experiments as ex
from optimlab.problems import ShortCorridor

POINTS = np.array([[0.0, -2.9], [0.3, 0.1], [0.0, 1.5], [-1.0, 2.0]])


def test_exact_gradient_matches_finite_differences():
    problem = ShortCorridor()
    grads = problem.grad(POINTS)
    assert grads.shape == (4, 2)
    h = 1e-6
    for x, g in zip(POINTS, grads):
        for direction in (np.array([1.0, 0.0]), np.array([0.3, -0.7]), np.array([1.0, 1.0])):
            numeric = (problem.loss(x + h * direction) - problem.loss(x - h * direction)) / (2 * h)
            assert abs(g @ direction - numeric) <= 1e-6 * abs(numeric) + 1e-9
        np.testing.assert_allclose(g, problem.grad(x), rtol=1e-15)  # batched = one by one


def test_the_closed_form_is_the_mean_episode_length_and_its_minimum_is_right():
    problem = ShortCorridor(episodes=20000)
    for p in (0.2, 0.5, 0.8):
        weights, _ = problem.episodes_of(np.array(p), np.random.default_rng(1))
        # Σ_t (t − T) = −T(T+1)/2 with b = 0: recover each episode's length T from it
        lengths = (-1 + np.sqrt(1 - 8 * weights)) / 2
        assert np.allclose(lengths, np.round(lengths))
        standard_error = lengths.std() / np.sqrt(lengths.size)
        assert abs(lengths.mean() - problem.expected_steps(p)) < 4 * standard_error
    ps = np.linspace(0.01, 0.99, 9801)
    assert problem.f_star == pytest.approx(problem.expected_steps(ps).min(), rel=1e-6)
    assert problem.loss(problem.x_star) == pytest.approx(problem.f_star)
    np.testing.assert_allclose(problem.grad(problem.x_star), 0.0, atol=1e-12)


@pytest.mark.parametrize("baseline", [0.0, -12.0])
def test_reinforce_is_unbiased_for_any_baseline(baseline):
    problem = ShortCorridor(episodes=1, baseline=baseline)
    x = np.broadcast_to([0.0, 0.5], (20000, 2))  # 20,000 one-episode estimates at once
    estimates = problem.grad(x, rng=np.random.default_rng(2))
    np.testing.assert_allclose(estimates[:, 0], -estimates[:, 1])  # along (−1, 1)
    standard_error = estimates[:, 1].std() / np.sqrt(len(estimates))
    assert abs(estimates[:, 1].mean() - problem.grad(x[0])[1]) < 4 * standard_error


def test_a_good_baseline_reduces_the_variance_and_estimates_are_seeded():
    x = np.broadcast_to([0.0, 0.3], (5000, 2))
    plain = ShortCorridor(episodes=1).grad(x, rng=np.random.default_rng(3))
    centred = ShortCorridor(episodes=1, baseline=-12.0).grad(x, rng=np.random.default_rng(3))
    assert centred[:, 1].std() < 0.7 * plain[:, 1].std()
    again = ShortCorridor(episodes=1).grad(x, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(again, plain)
    more = ShortCorridor(episodes=16).grad(x[:500], rng=np.random.default_rng(3))
    assert more[:, 1].std() < 0.5 * plain[:, 1].std()  # 16 episodes per estimate: a quarter of the spread


def test_reinforce_with_sgd_finds_the_stochastic_policy():
    problem = ShortCorridor(episodes=4)
    tr = ex.run(problem, "SGD", steps=300, lr=2e-3, seed=0)
    assert tr.losses[0] > 80 and tr.losses[-1] < problem.f_star + 0.5
    p = problem.probability_right(tr.path[-1])
    assert 0.45 < p < 0.72


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: ShortCorridor(episodes=0), "episodes must be >= 1, got 0"),
        (lambda: ShortCorridor(baseline=np.nan), "baseline must be finite, got nan"),
        (lambda: ShortCorridor(max_steps=1.5), "max_steps must be an integer, got 1.5"),
        (lambda: ShortCorridor().grad(np.zeros(3)), r"x must have shape \(..., 2\), got shape \(3,\)"),
        (lambda: ShortCorridor().loss(np.zeros((2, 1))), r"x must have shape \(..., 2\)"),
        (lambda: ShortCorridor().grad(np.zeros(2), rng=5), "rng must be a numpy.random.Generator or None, got 5"),
    ],
)
def test_bad_arguments_raise_value_error_naming_argument_and_value(make, message):
    with pytest.raises(ValueError, match=message):
        make()
