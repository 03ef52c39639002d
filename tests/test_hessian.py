"""Hessian-diagonal estimates for Sophia: Hutchinson is unbiased; Gauss-Newton-Bartlett is ĝ⊙ĝ of sampled labels."""

import numpy as np
import pytest

import optimlab
from optimlab import hessian
from optimlab.problems import DigitsMLP


class Quadratic:
    """f(θ) = ½ θᵀAθ over two parameter arrays, with exact Hessian-vector products."""

    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        q = rng.standard_normal((5, 5))
        self.A = q @ q.T + np.diag(np.arange(1.0, 6.0))

    def hvp(self, params, vecs):
        v = np.concatenate([x.ravel() for x in vecs])
        hv = self.A @ v
        return [hv[:3].reshape(3), hv[3:].reshape(2)]


def test_hutchinson_is_unbiased_for_the_hessian_diagonal():
    problem = Quadratic()
    params = [np.zeros(3), np.zeros(2)]
    estimate = hessian.hutchinson(problem, params, np.random.default_rng(0), samples=40_000)
    exact = np.diag(problem.A)
    got = np.concatenate(estimate)
    # one sample u_i(Au)_i has variance 2A_ii² + Σ_j≠i A_ij²: 5 standard errors is a safe bound
    stderr = np.sqrt((np.sum(problem.A**2, axis=1) + exact**2) / 40_000)
    assert np.all(np.abs(got - exact) < 5 * stderr)
    assert [e.shape for e in estimate] == [(3,), (2,)]


def test_hutchinson_on_the_digits_network_matches_its_exact_diagonal():
    model = DigitsMLP(hidden=(3,), seed=0)
    params = model.init_params(seed=1)
    # the exact diagonal, one Hessian-vector product per coordinate of the smallest layer (the last bias)
    basis = [np.zeros_like(p) for p in params]
    exact = []
    for i in range(params[-1].size):
        basis[-1].flat[i] = 1.0
        exact.append(model.hvp(params, basis)[-1].flat[i])
        basis[-1].flat[i] = 0.0
    estimate = hessian.hutchinson(model, params, np.random.default_rng(0), samples=3000)
    np.testing.assert_allclose(estimate[-1], exact, rtol=0.15, atol=2e-3)


def test_gauss_newton_bartlett_is_the_square_of_sampled_label_gradients_and_feeds_sophia():
    model = DigitsMLP(hidden=(8,), seed=0)
    params = model.init_params(seed=0)
    batch = np.arange(64)
    estimate = hessian.gauss_newton_bartlett(model, params, batch, np.random.default_rng(3))
    grads = model.sampled_label_grads(params, batch, np.random.default_rng(3))
    for e, g in zip(estimate, grads):
        np.testing.assert_array_equal(e, g * g)
        assert np.all(e >= 0)
    opt = optimlab.SophiaG(params, lr=1e-3)
    opt.update_hessian(estimate)
    np.testing.assert_allclose(opt.state[0]["hessian"], (1 - 0.99) * estimate[0])


@pytest.mark.parametrize("call, message", [
    (lambda: hessian.hutchinson(object(), [np.zeros(2)], np.random.default_rng()), "problem must offer hvp"),
    (lambda: hessian.hutchinson(Quadratic(), np.zeros(5), np.random.default_rng()), "params must be a list"),
    (lambda: hessian.hutchinson(Quadratic(), [np.zeros(3), np.zeros(2)], 0), "rng must be a numpy.random.Generator"),
    (lambda: hessian.hutchinson(Quadratic(), [np.zeros(3), np.zeros(2)], np.random.default_rng(), samples=0),
     "samples must be a positive integer, got 0"),
    (lambda: hessian.gauss_newton_bartlett(Quadratic(), [np.zeros(3)], None, np.random.default_rng()),
     "problem must offer sampled_label_grads"),
])
def test_bad_input_is_named(call, message):
    with pytest.raises((TypeError, ValueError), match=message):
        call()
