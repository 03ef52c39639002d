"""The test problems every chapter experiments on, with analytic gradients, vectorized over runs.

**The protocol.** Every vector problem is an object with

* ``name`` (str), ``dim`` (int) and ``x0``, the default start, shape ``(dim,)``;
* ``bounds = ((xmin, xmax), (ymin, ymax))``, a box for contour plots (``None`` unless the problem is 2-D);
* ``x_star`` and ``f_star``, a minimizer and the minimum, where known (``None`` otherwise);
* ``loss(x, t=0)`` with shape ``(...)`` and ``grad(x, t=0, rng=None)`` with shape ``(..., dim)``.

A point is an array of shape ``(..., dim)``: a sweep of B runs is a ``(B, dim)`` array evaluated in one call, and
a grid of points for a contour plot is a ``(ny, nx, 2)`` array. ``t`` is the step index; only the non-stationary
:class:`MovingOptimum` reads it. ``rng`` is a :class:`numpy.random.Generator`; only the stochastic problems
(:class:`NoisyQuadratic`, :class:`SparseLogistic`, :class:`ShortCorridor`) draw from it, and with ``rng=None``
they return the exact (full-batch) gradient. Deterministic problems accept and ignore both, so one runner drives
every problem::

    for t in range(steps):
        x = x - lr * problem.grad(x, t, rng)

Problems that offer curvature have ``hvp(x, v)``, a Hessian-vector product batched like ``grad``, and, where it
is cheap, ``hessian(x)`` with shape ``(..., dim, dim)``. The arrays ``x0``, ``x_star`` and ``Ravine.A`` are
read-only, so an in-place update of a start point fails loudly instead of changing the problem: start from
``problem.x0.copy()``.

:class:`DigitsMLP`, :class:`DigitsCNN`, :class:`AddingGRU` and :class:`TinyTransformer` are the exception: small
networks whose parameters are a *list* of arrays, as the per-layer chapters need, with leading run dimensions on
every array.
They share the protocol of :class:`NetworkProblem` (``init_params(seed)``, ``loss(params, batch=None)``,
``loss_and_grads(params, batch=None)``, ``metric(params, split="test")``, ``minibatches(batch_size, rng)``,
``hvp``, ``sharpness``), which :func:`optimlab.experiments.run` and :func:`~optimlab.experiments.sweep` drive.

The modules, one per family: ``quadratics`` (Ravine, NoisyQuadratic, MovingOptimum), ``functions2d``
(Rosenbrock, Beale, Saddle, RNNCliff), ``data`` (SparseLogistic, the digits), ``policy`` (ShortCorridor,
REINFORCE), ``networks``, ``transformer``, ``games`` (BilinearGame, GaussianMixtureGAN: two players, each a list
of arrays and a loss of its own, with their own protocol, see :mod:`optimlab.problems.games`); shared pieces in
``_base``. Every name is importable from ``optimlab.problems`` itself.

Constructors check their arguments and raise ``ValueError`` naming the argument and the value.
Computation follows the dtype of the points given (float32 stays float32); integer points become float64.
"""

from __future__ import annotations

from ._base import NetworkProblem, Problem
from .data import SparseLogistic
from .functions2d import Beale, RNNCliff, Rosenbrock, Saddle
from .games import BilinearGame, GaussianMixtureGAN
from .networks import AddingGRU, DigitsCNN, DigitsMLP
from .policy import ShortCorridor
from .quadratics import MovingOptimum, NoisyQuadratic, Ravine
from .transformer import TinyTransformer

__all__ = [
    "Problem",
    "Ravine",
    "NoisyQuadratic",
    "Rosenbrock",
    "Beale",
    "Saddle",
    "SparseLogistic",
    "MovingOptimum",
    "RNNCliff",
    "ShortCorridor",
    "DigitsMLP",
    "DigitsCNN",
    "AddingGRU",
    "TinyTransformer",
    "BilinearGame",
    "GaussianMixtureGAN",
    "NetworkProblem",
]
