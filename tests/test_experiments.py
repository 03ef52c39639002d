"""Runs and sweeps: a sweep is exactly its runs, done at once; measurements sit on the theory."""

import numpy as np
import pytest

import optimlab
from optimlab import experiments as ex
from optimlab.problems import AddingGRU, NoisyQuadratic, Ravine, Rosenbrock


def test_run_records_path_losses_lrs_and_norms():
    problem = Ravine(condition_number=10)
    tr = ex.run(problem, "SGD", steps=30, lr=0.1)
    assert tr.path.shape == (31, 2) and tr.losses.shape == (31,)
    assert tr.lrs.shape == (30,) and np.all(tr.lrs == 0.1)
    np.testing.assert_allclose(tr.losses, problem.loss(tr.path))
    np.testing.assert_allclose(tr.grad_norms, np.linalg.norm(problem.grad(tr.path[:-1]), axis=-1))
    assert not tr.diverged


def test_run_matches_the_optimizer_driven_by_hand():
    problem = Rosenbrock()
    tr = ex.run(problem, "Nesterov", steps=50, lr=1e-4)
    x = problem.x0.astype(float).copy()
    opt = optimlab.SGD([x], lr=1e-4, momentum=0.9, nesterov=True)
    for t in range(50):
        opt.step([problem.grad(x, t=t)])
    np.testing.assert_array_equal(tr.path[-1], x)


def test_sweep_rows_equal_separate_runs_bit_for_bit():
    problem = Ravine(condition_number=30)
    lrs = np.array([0.01, 0.1, 0.5, 1.9, 2.5])
    result = ex.sweep(problem, "Adam", steps=60, lr=lrs, record_path=True)
    for i, lr in enumerate(lrs):
        alone = ex.run(problem, "Adam", steps=60, lr=float(lr))
        np.testing.assert_array_equal(result.trajectory.path[:, i], alone.path)


def test_a_diverging_row_leaves_the_others_untouched_and_is_marked():
    problem = Ravine(condition_number=10)
    lr_stable = 1.5 / problem.L
    lrs = np.array([lr_stable, 3.0 / problem.L, lr_stable])  # the middle run is past 2/L: it diverges
    result = ex.sweep(problem, "SGD", steps=200, lr=lrs)
    assert result.diverged.tolist() == [False, True, False]
    alone = ex.run(problem, "SGD", steps=200, lr=lr_stable)
    np.testing.assert_array_equal(result.final_loss[[0, 2]], [alone.final_loss] * 2)


def test_grid_gives_a_map_whose_divergence_follows_the_heavy_ball_boundary():
    problem = Ravine(condition_number=20)
    lrs = np.linspace(0.05, 4.5, 25) / problem.L
    betas = np.linspace(0.0, 0.95, 20)
    axes, final, diverged, _ = ex.grid(problem, "Momentum", steps=400, lr=lrs, momentum=betas)
    assert final.shape == diverged.shape == (25, 20)
    stable = problem.heavy_ball_stable(lrs[:, None], betas[None, :])
    # away from the boundary (where convergence is too slow to tell in 400 steps) measurement = theory
    margin = np.abs(lrs[:, None] * problem.L - (2 + 2 * betas[None, :])) > 0.3
    assert np.array_equal(diverged[margin], ~stable[margin])


def test_measured_rate_at_the_best_settings_matches_theory():
    problem = Ravine(condition_number=100)
    gd = ex.run(problem, "SGD", steps=200, lr=problem.gd_best_lr())
    assert gd.rate(100, 200) == pytest.approx(problem.gd_best_rate(), rel=2e-2)
    lr, beta = problem.heavy_ball_best()
    hb = ex.run(problem, "Momentum", steps=200, lr=lr, momentum=beta)
    assert hb.rate(100, 200) == pytest.approx(problem.heavy_ball_best_rate(), rel=5e-2)


def test_schedule_clipping_and_accumulation_options():
    problem = NoisyQuadratic(condition_number=10, noise=1.0)
    tr = ex.run(problem, "SGD", steps=20, lr=0.1, schedule=lambda t: 0.5 ** t)
    np.testing.assert_allclose(tr.lrs, 0.1 * 0.5 ** np.arange(20))
    clipped = ex.run(problem, "SGD", steps=20, lr=0.1, clip_norm=0.5, x0=[10.0, 10.0])
    assert np.all(clipped.grad_norms <= 0.5)
    one = ex.run(problem, "SGD", steps=1000, lr=0.2, seed=1)
    many = ex.run(problem, "SGD", steps=1000, lr=0.2, seed=1, accumulate=16)
    assert np.mean(many.losses[500:]) < 0.2 * np.mean(one.losses[500:])  # less gradient noise, lower noise floor


def test_named_optimizers_and_bad_input():
    assert isinstance(ex.make_optimizer("momentum", [np.zeros(2)]), optimlab.SGD)
    with pytest.raises(ValueError, match="optimizer must be one of .* got 'Adamm'"):
        ex.run(Ravine(), "Adamm")
    with pytest.raises(ValueError, match="steps must be a positive integer, got 0"):
        ex.run(Ravine(), "SGD", steps=0)
    with pytest.raises(ValueError, match=r"x0 must have shape \(\.\.\., 2\)"):
        ex.run(Ravine(), "SGD", x0=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="same length"):
        ex.sweep(Ravine(), "SGD", lr=[0.1, 0.2], momentum=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="lr"):
        ex.sweep(Ravine(), "SGD", lr=[0.1, -0.2])



@pytest.mark.parametrize("problem", [Ravine(), AddingGRU()], ids=["vector", "network"])
@pytest.mark.parametrize("key", ["clip_norm", "clip_value"])
@pytest.mark.parametrize("value, error, pattern", [
    ("x", TypeError, "must be a real number, got str 'x'"), (10**400, ValueError, "must fit in a float64"),
    (-1.0, ValueError, r"must be >= 0 \(and not NaN\), got -1.0"),
    (True, TypeError, "must be a real number, not a bool"),
])
def test_run_checks_its_clipping_bounds_by_their_own_names(problem, key, value, error, pattern):
    """Checked before the first step and named as run's keywords (not the clip function's max_norm); on a
    network a negative clip_norm used to turn every gradient round, a string to leak numpy's message."""
    with pytest.raises(error, match=f"{key} {pattern}"):
        ex.run(problem, "SGD", steps=2, **{key: value})


def test_sweep_says_what_it_was_given_when_nothing_is_swept():
    with pytest.raises(ValueError, match=r"1-D array of values to sweep, got lr of shape \(1, 1\), momentum=0.9"):
        ex.sweep(Ravine(), "Momentum", lr=np.array([[0.1]]), momentum=0.9)
    with pytest.raises(ValueError, match=r"lr must be a 1-D list of values to sweep or a fixed value, got the ragged"):
        ex.sweep(Ravine(), "SGD", lr=[[0.1], [0.1, 0.2]])

def test_a_learning_rate_per_coordinate_is_recorded_in_full():
    problem = Ravine(condition_number=100)
    tr = ex.run(problem, "SGD", steps=3, lr=np.array([100.0, 1.0]))
    assert tr.lrs.shape == (3, 2) and np.all(tr.lrs == [100.0, 1.0])


def test_steps_to_can_require_the_loss_to_stay_below_the_target():
    tr = ex.Trajectory(path=None, losses=np.array([[4.0, 4.0], [0.5, 2.0], [2.0, 0.5], [0.5, 0.4]]),
                       lrs=None, grad_norms=None)
    assert tr.steps_to(1.0).tolist() == [1, 2]
    assert tr.steps_to(1.0, stay=True).tolist() == [3, 2]
    assert tr.steps_to(0.1, stay=True).tolist() == [-1, -1]
    problem = Ravine(condition_number=100)
    lr, beta = problem.heavy_ball_best()
    spiral = ex.run(problem, "Momentum", steps=300, lr=lr, momentum=beta)
    assert spiral.steps_to(1e-6, stay=True) >= spiral.steps_to(1e-6)
    assert np.all(spiral.losses[spiral.steps_to(1e-6, stay=True):] <= 1e-6)
