"""Estimates of the Hessian diagonal for Sophia (Liu et al. 2023).

Sophia divides its momentum by ρ·h, where h is a moving average of a cheap, noisy estimate ĥ of diag(∇²L),
refreshed every k steps. Two estimators:

* **Hutchinson** (Sophia-H): draw u ~ N(0, I), take one Hessian-vector product, ĥ = u ⊙ (∇²L u).
  Unbiased, E[ĥ] = diag(∇²L), but it can be negative where curvature is negative.
* **Gauss-Newton-Bartlett** (Sophia-G), for a loss that is a cross-entropy: sample labels ŷ from the model's own
  softmax, take the gradient ĝ of the mean cross-entropy against those labels, and ĥ = B·ĝ⊙ĝ (B the batch size).
  Never negative; its expectation is the diagonal of the Gauss-Newton matrix.
  As in the authors' code, :func:`gauss_newton_bartlett` returns ĝ⊙ĝ and :meth:`optimlab.SophiaG.step` multiplies
  by the batch size through its ``bs`` argument.

Both take a *problem*: an object with ``hvp(params, vecs)`` (Hutchinson) or
``sampled_label_grads(params, batch, rng)`` (Gauss-Newton-Bartlett), as :class:`optimlab.problems.DigitsMLP` has.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["hutchinson", "gauss_newton_bartlett"]


def _check(problem, method, params, rng, samples=1):
    if not callable(getattr(problem, method, None)):
        raise TypeError(f"problem must offer {method}(...), got {type(problem).__name__} without it")
    if not isinstance(params, (list, tuple)) or not all(isinstance(p, np.ndarray) for p in params):
        raise TypeError(f"params must be a list of numpy arrays, got {type(params).__name__}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if isinstance(samples, bool) or not isinstance(samples, numbers.Integral) or samples < 1:
        raise ValueError(f"samples must be a positive integer, got {samples!r}")


def hutchinson(problem, params, rng, samples=1):
    """ĥ = u ⊙ (∇²L u) with u ~ N(0, I), averaged over ``samples`` draws; a list shaped like ``params``."""
    _check(problem, "hvp", params, rng, samples)
    estimate = [np.zeros_like(p) for p in params]
    for _ in range(samples):
        u = [rng.standard_normal(p.shape).astype(p.dtype) for p in params]
        for e, ui, hu in zip(estimate, u, problem.hvp(params, u)):
            e += ui * hu
    return [e / samples for e in estimate]


def gauss_newton_bartlett(problem, params, batch, rng):
    """ĝ⊙ĝ, ĝ the gradient of the mean cross-entropy on labels sampled from the model (times B: see above)."""
    _check(problem, "sampled_label_grads", params, rng)
    return [g * g for g in problem.sampled_label_grads(params, batch, rng)]
