"""The test problems every chapter experiments on, with analytic gradients, vectorized over runs.

**The protocol.** Every vector problem is an object with

* ``name`` (str), ``dim`` (int) and ``x0``, the default start, shape ``(dim,)``;
* ``bounds = ((xmin, xmax), (ymin, ymax))``, a box for contour plots (``None`` unless the problem is 2-D);
* ``x_star`` and ``f_star``, a minimizer and the minimum, where known (``None`` otherwise);
* ``loss(x, t=0)`` with shape ``(...)`` and ``grad(x, t=0, rng=None)`` with shape ``(..., dim)``.

A point is an array of shape ``(..., dim)``: a sweep of B runs is a ``(B, dim)`` array evaluated in one call, and
a grid of points for a contour plot is a ``(ny, nx, 2)`` array. ``t`` is the step index; only the non-stationary
:class:`MovingOptimum` reads it. ``rng`` is a :class:`numpy.random.Generator`; only the stochastic problems
(:class:`NoisyQuadratic`, :class:`SparseLogistic`) draw from it, and with ``rng=None`` they return the exact
(full-batch) gradient. Deterministic problems accept and ignore both, so one runner drives every problem::

    for t in range(steps):
        x = x - lr * problem.grad(x, t, rng)

Problems that offer curvature have ``hvp(x, v)``, a Hessian-vector product batched like ``grad``, and, where it
is cheap, ``hessian(x)`` with shape ``(..., dim, dim)``. The arrays ``x0``, ``x_star`` and ``Ravine.A`` are
read-only, so an in-place update of a start point fails loudly instead of changing the problem: start from
``problem.x0.copy()``.

:class:`DigitsMLP` is the exception: a small network whose parameters are a *list* of arrays, as the per-layer
chapters need. It has its own, documented, interface.

Constructors check their arguments and raise ``ValueError`` naming the argument and the value.
Computation follows the dtype of the points given (float32 stays float32); integer points become float64.
"""

from __future__ import annotations

import functools
import math
import numbers

import numpy as np

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
    "DigitsMLP",
]


# ----------------------------------------------------------------------------------------------------------------
# Small shared helpers


def _check_number(name, value, *, low=None, high=None, low_inclusive=True, high_inclusive=True):
    """``value`` as a float, or a ValueError naming ``name`` and ``value`` if it is not finite and in range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (number < low or (number == low and not low_inclusive)):
        raise ValueError(f"{name} must be {'>=' if low_inclusive else '>'} {low:g}, got {value}")
    if high is not None and (number > high or (number == high and not high_inclusive)):
        raise ValueError(f"{name} must be {'<=' if high_inclusive else '<'} {high:g}, got {value}")
    return number


def _check_int(name, value, *, low):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


def _read_only(array):
    array = np.array(array, dtype=np.float64)
    array.flags.writeable = False
    return array


def _as_points(x, dim, name="x"):
    """``x`` as a floating array of shape ``(..., dim)``."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    if x.ndim == 0 or x.shape[-1] != dim:
        raise ValueError(f"{name} must have shape (..., {dim}), got shape {x.shape}")
    return x


def _expand(array, shape):
    """``array`` broadcast to ``shape`` as a writable array (a Hessian of a quadratic does not depend on x)."""
    return array if array.shape == tuple(shape) else np.broadcast_to(array, shape).copy()


def _scalar_if_0d(array):
    return array[()] if np.ndim(array) == 0 else array


def _sigmoid(a):
    """Logistic function 1 / (1 + exp(-a)), accurate and free of overflow warnings for any a."""
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


class Problem:
    """Base of the vector problems: the attributes of the protocol and the shape check of a batch of points."""

    name: str = "problem"
    dim: int = 2
    x0: np.ndarray
    bounds: tuple | None = None
    x_star: np.ndarray | None = None
    f_star: float | None = None

    def loss(self, x, t=0):
        raise NotImplementedError

    def grad(self, x, t=0, rng=None):
        raise NotImplementedError

    def _points(self, x, name="x"):
        return _as_points(x, self.dim, name)

    def __repr__(self):
        return f"{type(self).__name__}({self._describe()})"

    def _describe(self):
        return f"dim={self.dim}"


# ----------------------------------------------------------------------------------------------------------------
# Quadratics: the ravine and its noisy twin


class Ravine(Problem):
    r"""Ill-conditioned quadratic, the valley where plain gradient descent zig-zags.

    .. math:: f(x) = \tfrac12 (x - x^\star)^\top A (x - x^\star), \qquad A = Q \,\mathrm{diag}(\lambda)\, Q^\top

    with eigenvalues spread geometrically from :math:`\mu = \text{scale}/\kappa` to :math:`L = \text{scale}`
    (in 2-D just :math:`\mu` and :math:`L`) and :math:`Q` a rotation by ``angle`` radians in the plane of the
    first and last coordinates, so the flattest direction makes the angle ``angle`` with the first axis.
    Fixing :math:`L` rather than :math:`\mu` keeps the stable step sizes (``lr < 2 / scale``) the same whatever
    the condition number, so one learning-rate grid serves every :math:`\kappa`.

    Next to measurements a chapter puts the theory of the quadratic (Polyak 1964; Goh, "Why Momentum Really
    Works", Distill 2017): gradient descent with step ``lr`` contracts the error in eigendirection *i* by
    :math:`|1 - \text{lr}\,\lambda_i|` per step, and heavy-ball momentum acts on each eigendirection through a
    2×2 matrix. Those formulas are the methods below; every one of them accepts arrays (a whole sweep).

    Parameters
    ----------
    condition_number : float >= 1
        :math:`\kappa = L / \mu`.
    angle : float
        Rotation of the eigenvectors, in radians (0: the valley runs along the first axis).
    scale : float > 0
        The largest eigenvalue :math:`L`.
    dim : int >= 2
        Dimension.
    x_star : array of shape (dim,), optional
        The minimizer (default: the origin).
    """

    name = "ravine"

    def __init__(self, condition_number=10.0, angle=0.0, scale=1.0, dim=2, x_star=None):
        self.condition_number = _check_number("condition_number", condition_number, low=1.0)
        self.angle = _check_number("angle", angle)
        self.scale = _check_number("scale", scale, low=0.0, low_inclusive=False)
        self.dim = _check_int("dim", dim, low=2)
        self.L = self.scale
        self.mu = self.scale / self.condition_number
        # geometric spread: in log scale the eigenvalues are evenly spaced between log(mu) and log(L)
        self.eigenvalues = _read_only(self.mu * self.condition_number ** np.linspace(0.0, 1.0, self.dim))

        rotation = np.eye(self.dim)
        c, s = math.cos(self.angle), math.sin(self.angle)
        last = self.dim - 1
        rotation[0, 0], rotation[0, last], rotation[last, 0], rotation[last, last] = c, -s, s, c
        self.eigenvectors = _read_only(rotation)  # columns
        self.A = _read_only(rotation @ np.diag(self.eigenvalues) @ rotation.T)

        if x_star is None:
            x_star = np.zeros(self.dim)
        x_star = np.asarray(x_star, dtype=np.float64)
        if x_star.shape != (self.dim,) or not np.all(np.isfinite(x_star)):
            raise ValueError(f"x_star must be a finite array of shape ({self.dim},), got {x_star!r}")
        self.x_star = _read_only(x_star)
        self.f_star = 0.0

        # Start far out along the flat direction and a little up the steep walls: the classic zig-zag picture.
        start_in_eigenbasis = np.full(self.dim, 1.5)
        start_in_eigenbasis[0] = -4.0
        self.x0 = _read_only(self.x_star + rotation @ start_in_eigenbasis)
        if self.dim == 2:
            # the rotated box |u_flat| <= 5, |u_steep| <= 2 around x_star, made axis-aligned
            corners = np.array([[5.0, 2.0], [5.0, -2.0], [-5.0, 2.0], [-5.0, -2.0]]) @ rotation.T
            half = np.abs(corners).max(axis=0)
            self.bounds = tuple((float(m - h), float(m + h)) for m, h in zip(self.x_star, half))

    def _describe(self):
        extra = "" if self.dim == 2 else f", dim={self.dim}"
        return f"condition_number={self.condition_number:g}, angle={self.angle:g}, scale={self.scale:g}{extra}"

    # -- the function ------------------------------------------------------------------------------------------

    def _error_and_matrix(self, x):
        x = self._points(x)
        return x - self.x_star.astype(x.dtype), self.A.astype(x.dtype)

    def loss(self, x, t=0):
        d, A = self._error_and_matrix(x)
        return 0.5 * np.einsum("...i,...i->...", d, d @ A)

    def grad(self, x, t=0, rng=None):
        d, A = self._error_and_matrix(x)
        return d @ A  # A is symmetric

    def hvp(self, x, v):
        x, v = self._points(x), self._points(v, "v")
        return _expand(v @ self.A.astype(v.dtype), np.broadcast_shapes(x.shape, v.shape))

    def hessian(self, x):
        x = self._points(x)
        return _expand(self.A.astype(x.dtype), x.shape[:-1] + (self.dim, self.dim))

    # -- gradient descent theory -------------------------------------------------------------------------------

    def gd_stable_lr(self):
        """Largest stable step size of gradient descent, 2 / L (exclusive)."""
        return 2.0 / self.L

    def gd_best_lr(self):
        """The step size minimizing the worst-case contraction, 2 / (L + mu)."""
        return 2.0 / (self.L + self.mu)

    def gd_rate(self, lr):
        r"""Per-step contraction of the error of gradient descent, :math:`\max_i |1 - \text{lr}\,\lambda_i|`.

        ``lr`` may be an array; the result has its shape. A rate >= 1 means divergence. The maximum of
        :math:`|1 - \text{lr}\,\lambda|` over an interval of :math:`\lambda` is at an end, so only
        :math:`\mu` and :math:`L` are looked at.
        """
        lr = np.asarray(lr, dtype=np.float64)[..., None]
        return _scalar_if_0d(np.abs(1.0 - lr * np.array([self.mu, self.L])).max(axis=-1))

    def gd_best_rate(self):
        """Contraction at the best step size, (kappa - 1) / (kappa + 1)."""
        kappa = self.condition_number
        return (kappa - 1.0) / (kappa + 1.0)

    # -- heavy-ball momentum theory ----------------------------------------------------------------------------

    def heavy_ball_best(self):
        r"""Polyak's optimal heavy-ball parameters ``(lr, beta)``.

        .. math:: \text{lr} = \frac{4}{(\sqrt L + \sqrt\mu)^2},\qquad
                  \beta = \left(\frac{\sqrt\kappa - 1}{\sqrt\kappa + 1}\right)^2

        They give the rate :meth:`heavy_ball_best_rate`, :math:`(\sqrt\kappa-1)/(\sqrt\kappa+1)`.
        """
        sqrt_kappa = math.sqrt(self.condition_number)
        lr = 4.0 / (math.sqrt(self.L) + math.sqrt(self.mu)) ** 2
        beta = ((sqrt_kappa - 1.0) / (sqrt_kappa + 1.0)) ** 2
        return lr, beta

    def heavy_ball_best_rate(self):
        """Contraction of heavy ball at its best parameters, (sqrt(kappa) - 1) / (sqrt(kappa) + 1)."""
        sqrt_kappa = math.sqrt(self.condition_number)
        return (sqrt_kappa - 1.0) / (sqrt_kappa + 1.0)

    def heavy_ball_rate(self, lr, beta):
        r"""Asymptotic per-step contraction of heavy-ball momentum, vectorized over arrays of ``lr`` and ``beta``.

        Heavy ball, :math:`x_{k+1} = x_k - \text{lr}\,\nabla f(x_k) + \beta (x_k - x_{k-1})`, is exactly
        ``torch.optim.SGD(momentum=beta)`` (``v = beta v + g; x -= lr v``). Along an eigendirection with
        eigenvalue :math:`\lambda` it maps :math:`(x_k, x_{k-1})` by the matrix
        :math:`\begin{pmatrix} 1+\beta-\text{lr}\lambda & -\beta \\ 1 & 0 \end{pmatrix}`, whose eigenvalues
        are the roots of :math:`z^2 - (1 + \beta - \text{lr}\lambda) z + \beta`. The rate is the largest root
        modulus, maximised over the eigenvalues. (The root modulus grows with
        :math:`|1 + \beta - \text{lr}\lambda|`, which is convex in :math:`\lambda`, so the maximum is at
        :math:`\mu` or :math:`L`.)
        """
        lr, beta = np.broadcast_arrays(np.asarray(lr, dtype=np.float64), np.asarray(beta, dtype=np.float64))
        lr, beta = lr[..., None], beta[..., None]
        trace = 1.0 + beta - lr * np.array([self.mu, self.L])
        root_of_discriminant = np.sqrt((trace * trace - 4.0 * beta).astype(np.complex128))
        # the larger modulus of the two roots (trace ± sqrt(disc)) / 2; the sum with aligned signs is exact
        modulus = np.maximum(np.abs(trace + root_of_discriminant), np.abs(trace - root_of_discriminant)) / 2.0
        return _scalar_if_0d(modulus.max(axis=-1))

    def heavy_ball_stable(self, lr, beta):
        r"""Whether heavy ball converges: :math:`0 \le \beta < 1` and :math:`0 < \text{lr}\,\lambda < 2 + 2\beta`
        for every eigenvalue (d2l, "Momentum"; Goh 2017). Vectorized like :meth:`heavy_ball_rate`."""
        lr, beta = np.asarray(lr, dtype=np.float64), np.asarray(beta, dtype=np.float64)
        return _scalar_if_0d((beta >= 0.0) & (beta < 1.0) & (lr > 0.0) & (lr * self.L < 2.0 + 2.0 * beta))


class NoisyQuadratic(Ravine):
    r"""The :class:`Ravine` with stochastic gradients: :math:`g = A(x - x^\star) + \sigma\,\xi`,
    :math:`\xi \sim \mathcal N(0, I)` drawn from ``rng`` for every point (the exact gradient when ``rng`` is
    None).

    Constant-step SGD then does not converge but hovers at a noise floor, the reason learning rates are
    decayed; :meth:`sgd_stationary_loss` gives that floor. All of the ravine's theory carries over to the mean
    of the iterates.

    Parameters
    ----------
    condition_number, angle, scale, dim, x_star
        As for :class:`Ravine`.
    noise : float >= 0
        Standard deviation :math:`\sigma` of each coordinate of the gradient noise.
    """

    name = "noisy_quadratic"

    def __init__(self, condition_number=10.0, noise=1.0, angle=0.0, scale=1.0, dim=2, x_star=None):
        super().__init__(condition_number=condition_number, angle=angle, scale=scale, dim=dim, x_star=x_star)
        self.noise = _check_number("noise", noise, low=0.0)

    def _describe(self):
        return f"{super()._describe()}, noise={self.noise:g}"

    def grad(self, x, t=0, rng=None):
        exact = super().grad(x)
        if rng is None:
            return exact
        return exact + self.noise * rng.standard_normal(exact.shape, dtype=exact.dtype)

    def sgd_stationary_loss(self, lr):
        r"""Expected loss of constant-step SGD once it has forgotten its start, vectorized over ``lr``.

        Along eigendirection *i* the error follows :math:`e_{k+1} = (1 - \text{lr}\lambda_i) e_k -
        \text{lr}\,\sigma\xi_k`, whose stationary variance is :math:`\text{lr}\,\sigma^2 / (\lambda_i (2 -
        \text{lr}\lambda_i))`; so

        .. math:: \mathbb E f_\infty = \sum_i \frac{\text{lr}\,\sigma^2}{2 (2 - \text{lr}\,\lambda_i)}

        (infinite where ``lr`` is not in (0, 2/L)). Halving the learning rate roughly halves the floor.
        """
        lr = np.asarray(lr, dtype=np.float64)
        stable = (lr > 0) & (lr * self.L < 2.0)
        safe_lr = np.where(stable, lr, 0.0)[..., None]
        floor = (safe_lr * self.noise**2 / (2.0 * (2.0 - safe_lr * self.eigenvalues))).sum(axis=-1)
        return _scalar_if_0d(np.where(stable, floor, np.inf))


# ----------------------------------------------------------------------------------------------------------------
# Classic 2-D test functions


class Rosenbrock(Problem):
    r"""Rosenbrock's banana-shaped valley (Rosenbrock 1960, *The Computer Journal* 3(3):175-184).

    .. math:: f(x, y) = (a - x)^2 + b\,(y - x^2)^2

    Minimum 0 at :math:`(a, a^2)`, at the end of a long, curved, flat-bottomed valley: easy to find, slow to
    follow. The default start (-1.2, 1) is Rosenbrock's.
    """

    name = "rosenbrock"

    def __init__(self, a=1.0, b=100.0):
        self.a = _check_number("a", a)
        self.b = _check_number("b", b, low=0.0, low_inclusive=False)
        self.dim = 2
        self.x0 = _read_only([-1.2, 1.0])
        self.x_star = _read_only([self.a, self.a**2])
        self.f_star = 0.0
        self.bounds = ((min(-2.0, self.a - 1.0), max(2.0, self.a + 1.0)), (-1.0, max(3.0, self.a**2 + 1.0)))

    def _describe(self):
        return f"a={self.a:g}, b={self.b:g}"

    def loss(self, x, t=0):
        x = self._points(x)
        u, v = x[..., 0], x[..., 1]
        return (self.a - u) ** 2 + self.b * (v - u * u) ** 2

    def grad(self, x, t=0, rng=None):
        x = self._points(x)
        u, v = x[..., 0], x[..., 1]
        valley = v - u * u  # zero along the bottom of the valley
        return np.stack([-2.0 * (self.a - u) - 4.0 * self.b * u * valley, 2.0 * self.b * valley], axis=-1)

    def hessian(self, x):
        x = self._points(x)
        u, v = x[..., 0], x[..., 1]
        f_uu = 2.0 - 4.0 * self.b * (v - u * u) + 8.0 * self.b * u * u
        f_uv = -4.0 * self.b * u
        f_vv = np.full_like(u, 2.0 * self.b)
        return np.stack([np.stack([f_uu, f_uv], -1), np.stack([f_uv, f_vv], -1)], -2)

    def hvp(self, x, v):
        x, v = self._points(x), self._points(v, "v")
        return np.einsum("...ij,...j->...i", self.hessian(x), v)


class Beale(Problem):
    r"""Beale's function (Beale 1958, "On an iterative method for finding a local minimum of a function of
    more than one variable", Princeton Statistical Techniques Research Group, Tech. Rep. 25).

    .. math:: f(x, y) = \sum_{i=1}^{3} r_i^2, \qquad r_i = c_i - x + x y^i, \qquad c = (1.5,\ 2.25,\ 2.625)

    Minimum 0 at (3, 0.5), in a narrow curved valley; flat plateaus and steep walls elsewhere make it a
    favourite picture for comparing adaptive methods.
    """

    name = "beale"
    _constants = (1.5, 2.25, 2.625)

    def __init__(self):
        self.dim = 2
        self.x0 = _read_only([1.0, 1.5])
        self.x_star = _read_only([3.0, 0.5])
        self.f_star = 0.0
        self.bounds = ((-4.5, 4.5), (-4.5, 4.5))

    def _describe(self):
        return ""

    def _residuals(self, x):
        """r_i and their gradients (dr_i/dx, dr_i/dy), i = 1, 2, 3, each stacked on a last axis."""
        u, v = x[..., 0:1], x[..., 1:2]
        powers = np.arange(1, 4, dtype=x.dtype)
        c = np.asarray(self._constants, dtype=x.dtype)
        residual = c - u + u * v**powers
        d_du = v**powers - 1.0
        d_dv = powers * u * v ** (powers - 1)
        return residual, d_du, d_dv

    def loss(self, x, t=0):
        residual, _, _ = self._residuals(self._points(x))
        return (residual**2).sum(axis=-1)

    def grad(self, x, t=0, rng=None):
        residual, d_du, d_dv = self._residuals(self._points(x))
        return np.stack([2.0 * (residual * d_du).sum(-1), 2.0 * (residual * d_dv).sum(-1)], axis=-1)

    def hessian(self, x):
        x = self._points(x)
        residual, d_du, d_dv = self._residuals(x)
        u, v = x[..., 0:1], x[..., 1:2]
        powers = np.arange(1, 4, dtype=x.dtype)
        # second derivatives of r_i: d2/du2 = 0, d2/dudv = i v^(i-1), d2/dv2 = i (i-1) u v^(i-2)
        r_uv = powers * v ** (powers - 1)
        r_vv = powers * (powers - 1) * u * v ** np.maximum(powers - 2, 0)
        f_uu = 2.0 * (d_du * d_du).sum(-1)
        f_uv = 2.0 * (d_du * d_dv + residual * r_uv).sum(-1)
        f_vv = 2.0 * (d_dv * d_dv + residual * r_vv).sum(-1)
        return np.stack([np.stack([f_uu, f_uv], -1), np.stack([f_uv, f_vv], -1)], -2)

    def hvp(self, x, v):
        x, v = self._points(x), self._points(v, "v")
        return np.einsum("...ij,...j->...i", self.hessian(x), v)


class Saddle(Problem):
    r"""A strict saddle between two minima, for the lesson on escaping saddles.

    .. math:: f(x, y) = \tfrac12 a x^2 - \tfrac12 c y^2 + \tfrac14 c y^4

    with ``a = curvature`` and ``c = negative_curvature``. The origin is a saddle point, Hessian
    :math:`\mathrm{diag}(a, -c)`; the minima are :math:`(0, \pm 1)` with :math:`f^\star = -c/4`. Unlike
    :math:`\tfrac12(x^2 - y^2)` the function is bounded below, so loss curves show the plateau near the saddle
    and the drop after the escape. Gradient descent started exactly on the line y = 0 converges to the saddle;
    any perturbation grows like :math:`(1 + \text{lr}\,c)^k`, so the time spent near the saddle is about
    :math:`\log(1/|y_0|) / \log(1 + \text{lr}\,c)` steps (Dauphin et al. 2014; Lee et al. 2016). The default
    start (2, 1e-3) lies just off that line.

    ``x_star`` is None (there are two minimizers, see ``minima``); ``f_star`` is known.
    """

    name = "saddle"

    def __init__(self, curvature=1.0, negative_curvature=1.0):
        self.curvature = _check_number("curvature", curvature, low=0.0, low_inclusive=False)
        self.negative_curvature = _check_number(
            "negative_curvature", negative_curvature, low=0.0, low_inclusive=False
        )
        self.dim = 2
        self.x0 = _read_only([2.0, 1e-3])
        self.saddle_point = _read_only([0.0, 0.0])
        self.minima = _read_only([[0.0, 1.0], [0.0, -1.0]])
        self.x_star = None
        self.f_star = -self.negative_curvature / 4.0
        self.bounds = ((-2.5, 2.5), (-1.6, 1.6))

    def _describe(self):
        return f"curvature={self.curvature:g}, negative_curvature={self.negative_curvature:g}"

    def loss(self, x, t=0):
        x = self._points(x)
        u, v = x[..., 0], x[..., 1]
        v2 = v * v
        return 0.5 * self.curvature * u * u + self.negative_curvature * (0.25 * v2 * v2 - 0.5 * v2)

    def grad(self, x, t=0, rng=None):
        x = self._points(x)
        u, v = x[..., 0], x[..., 1]
        return np.stack([self.curvature * u, self.negative_curvature * (v * v * v - v)], axis=-1)

    def hessian(self, x):
        x = self._points(x)
        v = x[..., 1]
        zero = np.zeros_like(v)
        f_uu = np.full_like(v, self.curvature)
        f_vv = self.negative_curvature * (3.0 * v * v - 1.0)
        return np.stack([np.stack([f_uu, zero], -1), np.stack([zero, f_vv], -1)], -2)

    def hvp(self, x, v):
        x, v = self._points(x), self._points(v, "v")
        return np.einsum("...ij,...j->...i", self.hessian(x), v)


# ----------------------------------------------------------------------------------------------------------------
# Sparse features: where per-coordinate step sizes pay off


class SparseLogistic(Problem):
    r"""Logistic regression on binary features with long-tailed frequencies, the home ground of AdaGrad.

    Feature *j* (0-based) is on in each sample independently with probability
    :math:`p_j = p_{\max}\,(j + 1)^{-\text{exponent}}`: a few features occur in most samples, most features
    in very few (a power law, as words in text). Labels are drawn from a planted model,
    :math:`y \sim \text{Bernoulli}(\sigma(x^\top w^\dagger))`, whose weights have random signs and magnitudes
    :math:`|w^\dagger_j| = \text{signal} / \sqrt{d\,p_j}`: every feature contributes about the same to
    :math:`\sum_j p_j (w_j^\dagger)^2 = \text{signal}^2`, so the rare features carry the *large* weights and
    matter, yet their gradients are small and seldom non-zero.

    The objective, for a weight vector ``w`` (batched as ``(..., d)``), is the mean cross-entropy plus a small
    ridge term, which keeps the minimizer finite when a rare feature happens to occur only in samples of one
    class:

    .. math:: f(w) = \frac1n \sum_{k=1}^{n} \big[\log(1 + e^{z_k}) - y_k z_k\big]
              + \tfrac{\ell_2}{2}\|w\|^2, \qquad z_k = x_k^\top w

    ``grad(w, t, rng)`` is the full-batch gradient when ``rng`` is None, else the gradient on a minibatch of
    ``batch_size`` samples drawn without replacement; all runs of a batch of weight vectors see the same
    minibatch (common random numbers: differences between runs come from the optimizers, not the sampling).
    On a minibatch the data part of the gradient is exactly zero for every feature absent from it.
    ``x_star`` and ``f_star`` are found by Newton's method on first use. Memory per call is
    ``batch × n_samples`` floats.

    Parameters
    ----------
    n_samples, n_features : int >= 1
    exponent : float >= 0
        Power-law exponent of the feature frequencies (0: every feature equally frequent).
    max_frequency : float in (0, 1]
        Frequency of the most common feature.
    signal : float >= 0
        Size of the planted weights (0: labels are coin flips).
    l2 : float >= 0
        Ridge coefficient.
    batch_size : int in [1, n_samples]
        Minibatch size of the stochastic gradient.
    seed : int
        Seed of the data set.
    """

    name = "sparse_logistic"

    def __init__(
        self,
        n_samples=2000,
        n_features=50,
        exponent=1.0,
        max_frequency=0.9,
        signal=3.0,
        l2=1e-3,
        batch_size=32,
        seed=0,
    ):
        self.n_samples = _check_int("n_samples", n_samples, low=1)
        self.dim = self.n_features = _check_int("n_features", n_features, low=1)
        self.exponent = _check_number("exponent", exponent, low=0.0)
        self.max_frequency = _check_number("max_frequency", max_frequency, low=0.0, low_inclusive=False, high=1.0)
        self.signal = _check_number("signal", signal, low=0.0)
        self.l2 = _check_number("l2", l2, low=0.0)
        self.batch_size = _check_int("batch_size", batch_size, low=1)
        if self.batch_size > self.n_samples:
            raise ValueError(f"batch_size must be <= n_samples ({self.n_samples}), got {batch_size}")
        self.seed = _check_int("seed", seed, low=0)

        rng = np.random.default_rng(self.seed)
        ranks = np.arange(1, self.n_features + 1)
        self.target_frequency = _read_only(self.max_frequency * ranks ** (-self.exponent))
        self.X = _read_only(rng.random((self.n_samples, self.n_features)) < self.target_frequency)
        self.feature_frequency = _read_only(self.X.mean(axis=0))
        signs = rng.choice([-1.0, 1.0], size=self.n_features)
        self.planted_weights = _read_only(signs * self.signal / np.sqrt(self.n_features * self.target_frequency))
        planted_probability = _sigmoid(self.X @ self.planted_weights)
        self.y = _read_only(rng.random(self.n_samples) < planted_probability)

        self.x0 = _read_only(np.zeros(self.n_features))
        self._solution = None

    def _describe(self):
        return (
            f"n_samples={self.n_samples}, n_features={self.n_features}, exponent={self.exponent:g}, "
            f"max_frequency={self.max_frequency:g}, signal={self.signal:g}, l2={self.l2:g}, "
            f"batch_size={self.batch_size}, seed={self.seed}"
        )

    def _rows(self, batch, dtype):
        """Features and labels of the rows ``batch`` (None: all rows), in the dtype of the weights."""
        X, y = self.X, self.y
        if batch is not None:
            batch = np.asarray(batch)
            X, y = X[batch], y[batch]
        return X.astype(dtype, copy=False), y.astype(dtype, copy=False)

    def loss(self, w, t=0, batch=None):
        """Mean cross-entropy plus ridge, on all samples or on the rows ``batch`` (an index array)."""
        w = self._points(w, "w")
        X, y = self._rows(batch, w.dtype)
        z = w @ X.T
        data = (np.logaddexp(0.0, z) - y * z).mean(axis=-1)
        return data + 0.5 * self.l2 * np.einsum("...i,...i->...", w, w)

    def grad(self, w, t=0, rng=None, batch=None):
        """Full-batch gradient (``rng`` None), a minibatch of ``batch_size`` rows drawn with ``rng``, or the
        gradient on the rows ``batch``: :math:`\\frac1m X_B^\\top(\\sigma(X_B w) - y_B) + \\ell_2 w`."""
        w = self._points(w, "w")
        if batch is None and rng is not None:
            batch = rng.choice(self.n_samples, size=self.batch_size, replace=False)
        X, y = self._rows(batch, w.dtype)
        residual = _sigmoid(w @ X.T) - y
        return residual @ X / X.shape[0] + self.l2 * w

    def hvp(self, w, v):
        r"""Full-batch Hessian-vector product, :math:`\frac1n X^\top D X v + \ell_2 v`,
        :math:`D = \mathrm{diag}(\sigma(z)(1 - \sigma(z)))`."""
        w, v = self._points(w, "w"), self._points(v, "v")
        X, _ = self._rows(None, np.result_type(w, v))
        s = _sigmoid(w @ X.T)
        return (s * (1.0 - s) * (v @ X.T)) @ X / self.n_samples + self.l2 * v

    def hessian(self, w):
        w = self._points(w, "w")
        X, _ = self._rows(None, w.dtype)
        s = _sigmoid(w @ X.T)
        weighted_rows = X.T * (s * (1.0 - s))[..., None, :]  # X^T D, shape (..., d, n)
        return weighted_rows @ X / self.n_samples + self.l2 * np.eye(self.n_features, dtype=w.dtype)

    def accuracy(self, w):
        """Fraction of samples whose label the sign of :math:`x^\\top w` predicts, shape ``(...)``."""
        w = self._points(w, "w")
        return ((w @ self.X.T > 0) == self.y).mean(axis=-1)

    # -- the minimizer, on demand ------------------------------------------------------------------------------

    @property
    def x_star(self):
        return self._solve()[0]

    @property
    def f_star(self):
        return self._solve()[1]

    def _solve(self, max_iterations=100):
        """Newton's method with backtracking. Gives (None, None) when it does not reach an isolated minimizer,
        which can happen only with ``l2 = 0``: if a feature occurs in samples of one class only, the loss keeps
        falling as its weight grows and the infimum is not attained."""
        if self._solution is not None:
            return self._solution
        w = np.zeros(self.n_features)
        f = float(self.loss(w))
        for _ in range(max_iterations):
            g = self.grad(w)
            if np.linalg.norm(g) <= 1e-11:
                break
            try:
                step = np.linalg.solve(self.hessian(w), g)
            except np.linalg.LinAlgError:  # a feature that never occurs, without ridge: a flat direction
                break
            size = 1.0
            while float(self.loss(w - size * step)) > f - 1e-4 * size * float(g @ step):
                size *= 0.5
                if size < 1e-10:
                    break
            w = w - size * step
            f = float(self.loss(w))
        converged = np.linalg.norm(self.grad(w)) <= 1e-9
        # strictly positive curvature: an isolated minimizer, not a point far out on a flattening slope
        curved = np.linalg.eigvalsh(self.hessian(w)).min() > 1e-9
        self._solution = (_read_only(w), f) if converged and curved else (None, None)
        return self._solution


# ----------------------------------------------------------------------------------------------------------------
# A moving target: non-stationary objectives


class MovingOptimum(Problem):
    r"""A bowl whose bottom moves with the step index t: the objective RMSprop was made for.

    .. math:: f_t(x) = \tfrac{c}{2}\,\| x - x^\star(t) \|^2

    with ``motion="circle"``: :math:`x^\star(t) = r(\cos 2\pi t/P, \sin 2\pi t/P)`, one turn every ``period``
    steps; with ``motion="jump"``: :math:`x^\star(t)` jumps a quarter turn around the circle every ``period``
    steps. AdaGrad's accumulated squared gradients only grow, so its steps shrink and it falls further behind
    each time the optimum moves; RMSprop's moving average forgets, so it keeps tracking (Tieleman & Hinton
    2012). ``x_star`` is None (see :meth:`x_star_at`); ``f_star`` is 0 at every t.
    """

    name = "moving_optimum"

    def __init__(self, motion="circle", radius=1.0, period=1000, curvature=1.0):
        if motion not in ("circle", "jump"):
            raise ValueError(f"motion must be 'circle' or 'jump', got {motion!r}")
        self.motion = motion
        self.radius = _check_number("radius", radius, low=0.0, low_inclusive=False)
        self.period = _check_int("period", period, low=1)
        self.curvature = _check_number("curvature", curvature, low=0.0, low_inclusive=False)
        self.dim = 2
        self.x0 = _read_only([0.0, 0.0])
        self.x_star = None
        self.f_star = 0.0
        extent = 1.5 * self.radius
        self.bounds = ((-extent, extent), (-extent, extent))

    def _describe(self):
        return f"motion={self.motion!r}, radius={self.radius:g}, period={self.period}, curvature={self.curvature:g}"

    def x_star_at(self, t):
        """The minimizer at step ``t`` (an int or an array of steps), shape ``t.shape + (2,)``."""
        t = np.asarray(t, dtype=np.float64)
        if self.motion == "circle":
            angle = 2.0 * np.pi * t / self.period
        else:
            angle = 0.5 * np.pi * np.floor(t / self.period)
        return self.radius * np.stack([np.cos(angle), np.sin(angle)], axis=-1)

    def _error(self, x, t):
        x = self._points(x)
        return x - self.x_star_at(t).astype(x.dtype)

    def loss(self, x, t=0):
        d = self._error(x, t)
        return 0.5 * self.curvature * np.einsum("...i,...i->...", d, d)

    def grad(self, x, t=0, rng=None):
        return self.curvature * self._error(x, t)

    def hvp(self, x, v):
        x, v = self._points(x), self._points(v, "v")
        return _expand(self.curvature * v, np.broadcast_shapes(x.shape, v.shape))

    def hessian(self, x):
        x = self._points(x)
        return _expand(self.curvature * np.eye(2, dtype=x.dtype), x.shape[:-1] + (2, 2))


# ----------------------------------------------------------------------------------------------------------------
# Exploding gradients: a one-unit recurrent network


class RNNCliff(Problem):
    r"""A single-unit recurrent network whose loss over its two parameters has a cliff (Pascanu, Mikolov &
    Bengio 2013, "On the difficulty of training recurrent neural networks", ICML, section 2.3 and figure 6).

    The parameters are :math:`(w, b)`, a point of shape ``(..., 2)``; the network runs

    .. math:: h_t = \sigma(w\,h_{t-1} + b), \quad t = 1, \dots, T, \qquad f(w, b) = (h_T - \text{target})^2

    from :math:`h_0` = ``h0``. In the pre-activation :math:`x_t = w h_{t-1} + b` this is the paper's model
    :math:`x_t = w\,\sigma(x_{t-1}) + b` with loss :math:`(\sigma(x_T) - 0.7)^2` and :math:`x_0 = 0.5`, so the
    defaults ``h0 = σ(0.5)`` and ``target = 0.7`` are the paper's.

    For :math:`w\,h_0(1-h_0) > 1` the map has two stable fixed points separated by an unstable one. Where the
    unstable fixed point passes through :math:`h_0`, along the line :math:`b = \operatorname{logit}(h_0) - w
    h_0` (:meth:`cliff_bias`), :math:`h_T` switches attractor: the loss has a wall. Near it the state lingers at
    the unstable point, and the gradient, a product of T Jacobians, grows like :math:`(w h_0 (1 - h_0))^T`
    while the wall's width shrinks like its inverse. The paper used T = 50; there the wall is so thin that a
    step almost never lands in it, so the default is T = 20, where plain gradient descent from ``x0`` with
    ``lr=1`` meets the wall and is thrown far off the plot, and gradient clipping is what brings it home. The
    gradient is computed by backpropagation through time.

    ``x_star`` is None (the minimizers form a curve); ``f_star`` is 0 for a target in (0, 1).

    Parameters
    ----------
    T : int >= 1
        Number of recurrent steps.
    h0 : float in (0, 1), optional
        Initial state (default σ(0.5) ≈ 0.6225, the paper's).
    target : float
        Desired final state.
    """

    name = "rnn_cliff"

    def __init__(self, T=20, h0=None, target=0.7):
        self.T = _check_int("T", T, low=1)
        if h0 is None:
            h0 = 1.0 / (1.0 + math.exp(-0.5))
        self.h0 = _check_number("h0", h0, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
        self.target = _check_number("target", target)
        self.dim = 2
        # on the plateau below the cliff, where the gradient is small and the step that reaches the wall huge
        self.x0 = _read_only([6.0, -4.5])
        self.x_star = None
        self.f_star = 0.0 if 0.0 < self.target < 1.0 else None
        self.bounds = ((-1.0, 11.0), (-8.0, 3.0))

    def _describe(self):
        return f"T={self.T}, h0={self.h0:g}, target={self.target:g}"

    def hidden_states(self, x):
        """The states :math:`h_0, \\dots, h_T` at parameters ``x``, shape ``(..., T + 1)``."""
        x = self._points(x)
        w, b = x[..., 0], x[..., 1]
        states = np.empty(x.shape[:-1] + (self.T + 1,), dtype=x.dtype)
        states[..., 0] = self.h0
        for t in range(1, self.T + 1):
            states[..., t] = _sigmoid(w * states[..., t - 1] + b)
        return states

    def cliff_bias(self, w):
        """The bias b at which the cliff crosses weight ``w``, or NaN where ``w`` is too small for two
        attractors (w h0 (1 - h0) <= 1). Vectorized over ``w``."""
        w = np.asarray(w, dtype=np.float64)
        bias = math.log(self.h0 / (1.0 - self.h0)) - w * self.h0
        return _scalar_if_0d(np.where(w * self.h0 * (1.0 - self.h0) > 1.0, bias, np.nan))

    def loss(self, x, t=0):
        return (self.hidden_states(x)[..., -1] - self.target) ** 2

    def grad(self, x, t=0, rng=None):
        x = self._points(x)
        w = x[..., 0]
        states = self.hidden_states(x)
        d_state = 2.0 * (states[..., -1] - self.target)  # dL/dh_T
        d_w = np.zeros_like(w)
        d_b = np.zeros_like(w)
        for t in range(self.T, 0, -1):
            h = states[..., t]
            d_pre = d_state * h * (1.0 - h)  # through the sigmoid: dL/da_t
            d_w += d_pre * states[..., t - 1]
            d_b += d_pre
            d_state = d_pre * w  # one factor w sigma' per step back in time: the product that explodes
        return np.stack([d_w, d_b], axis=-1)


# ----------------------------------------------------------------------------------------------------------------
# Real data: a small multilayer perceptron on handwritten digits


@functools.lru_cache(maxsize=1)
def _digits():
    """scikit-learn's bundled 8×8 digits (1797 images, no download), imported only when a chapter asks."""
    from sklearn.datasets import load_digits

    data = load_digits()
    images, labels = data.data.astype(np.float64), data.target.astype(np.int64)
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


_ACTIVATIONS = {
    # name: (phi, phi', phi''), each a function of the pre-activation a
    "tanh": (
        np.tanh,
        lambda a: 1.0 - np.tanh(a) ** 2,
        lambda a: -2.0 * np.tanh(a) * (1.0 - np.tanh(a) ** 2),
    ),
    "relu": (
        lambda a: np.maximum(a, 0.0),
        lambda a: (a > 0).astype(a.dtype),
        np.zeros_like,
    ),
}


class DigitsMLP:
    r"""A multilayer perceptron with hand-written backpropagation on scikit-learn's handwritten digits.

    The data are the 1797 8×8 images of ``sklearn.datasets.load_digits`` (shipped with scikit-learn),
    split into train and test sets stratified by class and deterministic given ``seed``, and standardized
    with the training set's per-pixel mean and standard deviation (constant pixels are only centred).

    **Parameters are a list of arrays** ``[W1, b1, W2, b2, ..., WL, bL]``, ``W`` of shape
    ``(fan_in, fan_out)`` and ``b`` of shape ``(fan_out,)``, so per-layer learning rates are per-array
    learning rates. There is no weight decay in the loss: that is the optimizer's business. The network
    computes

    .. math:: a_l = z_{l-1} W_l + b_l, \quad z_l = \phi(a_l), \quad z_0 = X,
              \qquad \text{logits} = a_L, \qquad
              f = \frac1m \sum_k \Big[\log\sum_c e^{a_{L,kc}} - a_{L,k y_k}\Big]

    Every method also accepts parameters with leading batch dimensions (``W`` of shape ``(..., fan_in,
    fan_out)``, ``b`` of shape ``(..., fan_out)``): a sweep of B networks is one call, and losses then have
    shape ``(...)``. Arrays may be float64 (default) or float32 (``dtype``).

    Curvature: :meth:`hvp` is the *exact* Hessian-vector product by forward-over-reverse differentiation
    (Pearlmutter 1994's R-operator, written out by hand); :meth:`gnvp` is the Gauss-Newton product
    :math:`J^\top H_{\text{softmax}} J v`; :meth:`sampled_label_grads` is the gradient Sophia's
    Gauss-Newton-Bartlett estimator squares (Liu et al. 2023).

    Parameters
    ----------
    hidden : tuple of int
        Widths of the hidden layers (``()`` gives softmax regression).
    activation : "tanh" or "relu"
    test_size : float in (0, 1)
        Fraction of each class held out for testing.
    seed : int
        Seed of the train/test split.
    dtype : float64 or float32
    """

    name = "digits_mlp"
    n_classes = 10

    def __init__(self, hidden=(32,), activation="tanh", test_size=0.25, seed=0, dtype=np.float64):
        if isinstance(hidden, numbers.Integral):
            hidden = (hidden,)
        hidden = tuple(hidden)
        for i, width in enumerate(hidden):
            _check_int(f"hidden[{i}]", width, low=1)
        self.hidden = tuple(int(width) for width in hidden)
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        self.activation = activation
        self._phi, self._dphi, self._ddphi = _ACTIVATIONS[activation]
        self.test_size = _check_number("test_size", test_size, low=0.0, high=1.0, low_inclusive=False,
                                       high_inclusive=False)
        self.seed = _check_int("seed", seed, low=0)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")

        images, labels = _digits()
        rng = np.random.default_rng(self.seed)
        train_rows, test_rows = [], []
        for digit in range(self.n_classes):
            rows = rng.permutation(np.flatnonzero(labels == digit))
            n_test = int(round(self.test_size * rows.size))
            test_rows.append(rows[:n_test])
            train_rows.append(rows[n_test:])
        train_rows, test_rows = np.sort(np.concatenate(train_rows)), np.sort(np.concatenate(test_rows))
        if train_rows.size == 0 or test_rows.size == 0:
            raise ValueError(f"test_size leaves an empty split, got {test_size}")

        self.feature_mean = images[train_rows].mean(axis=0)
        scale = images[train_rows].std(axis=0)
        self.feature_scale = np.where(scale > 0, scale, 1.0)
        self.X_train = self.scale_features(images[train_rows])
        self.X_test = self.scale_features(images[test_rows])
        self.y_train, self.y_test = labels[train_rows], labels[test_rows]
        for array in (self.X_train, self.X_test, self.y_train, self.y_test):
            array.flags.writeable = False

        self.n_features = images.shape[1]
        self.layer_sizes = (self.n_features, *self.hidden, self.n_classes)
        self.n_layers = len(self.layer_sizes) - 1
        self.param_shapes = []
        for fan_in, fan_out in zip(self.layer_sizes[:-1], self.layer_sizes[1:]):
            self.param_shapes += [(fan_in, fan_out), (fan_out,)]
        self.n_params = sum(math.prod(shape) for shape in self.param_shapes)

    def __repr__(self):
        return (f"DigitsMLP(hidden={self.hidden}, activation={self.activation!r}, test_size={self.test_size:g}, "
                f"seed={self.seed}, dtype={self.dtype.name})")

    @property
    def n_train(self):
        return self.y_train.size

    def scale_features(self, images):
        """Raw pixel values (0..16) to the standardized inputs the network sees."""
        return ((np.asarray(images, dtype=np.float64) - self.feature_mean) / self.feature_scale).astype(self.dtype)

    # -- parameters --------------------------------------------------------------------------------------------

    def init_params(self, seed=0):
        """Fresh parameters, drawn as ``torch.nn.Linear`` draws them: W and b uniform in
        :math:`\\pm 1/\\sqrt{\\text{fan\\_in}}`. To start a sweep of B runs from the same point, tile them:
        ``[np.repeat(p[None], B, axis=0) for p in params]``."""
        rng = np.random.default_rng(seed)
        params = []
        for fan_in, fan_out in zip(self.layer_sizes[:-1], self.layer_sizes[1:]):
            bound = 1.0 / math.sqrt(fan_in)
            params.append(rng.uniform(-bound, bound, size=(fan_in, fan_out)).astype(self.dtype))
            params.append(rng.uniform(-bound, bound, size=fan_out).astype(self.dtype))
        return params

    def _check_params(self, params, name="params"):
        if len(params) != len(self.param_shapes):
            raise ValueError(f"{name} must be a list of {len(self.param_shapes)} arrays, got {len(params)}")
        params = [np.asarray(p) for p in params]
        batch_shape = params[0].shape[: params[0].ndim - 2]
        for i, (p, shape) in enumerate(zip(params, self.param_shapes)):
            if p.shape != batch_shape + shape:
                raise ValueError(f"{name}[{i}] must have shape {batch_shape + shape}, got {p.shape}")
        return params

    def flatten_params(self, params):
        """The parameters as one vector per run, shape ``(..., n_params)``."""
        params = self._check_params(params)
        batch_shape = params[0].shape[:-2]
        return np.concatenate([p.reshape(batch_shape + (-1,)) for p in params], axis=-1)

    def unflatten_params(self, vector):
        """Inverse of :meth:`flatten_params`: views into ``vector`` shaped like the parameters."""
        vector = np.asarray(vector)
        if vector.ndim == 0 or vector.shape[-1] != self.n_params:
            raise ValueError(f"vector must have shape (..., {self.n_params}), got {vector.shape}")
        params, start = [], 0
        for shape in self.param_shapes:
            size = math.prod(shape)
            params.append(vector[..., start:start + size].reshape(vector.shape[:-1] + shape))
            start += size
        return params

    # -- forward and backward ----------------------------------------------------------------------------------

    def _split(self, split):
        if split == "train":
            return self.X_train, self.y_train
        if split == "test":
            return self.X_test, self.y_test
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")

    def _rows(self, batch, split="train"):
        X, y = self._split(split)
        if batch is None:
            return X, y
        batch = np.asarray(batch)
        return X[batch], y[batch]

    def _forward(self, params, X):
        """Pre-activations a_1..a_L and layer inputs z_0..z_{L-1}."""
        inputs, pre_activations = [X], []
        for layer in range(self.n_layers):
            W, b = params[2 * layer], params[2 * layer + 1]
            a = inputs[-1] @ W + b[..., None, :]
            pre_activations.append(a)
            if layer < self.n_layers - 1:
                inputs.append(self._phi(a))
        return pre_activations, inputs

    def _backward(self, params, pre_activations, inputs, d_logits):
        """Gradients of the loss from its gradient with respect to the logits (standard backpropagation)."""
        grads = [None] * len(params)
        d_pre = d_logits
        for layer in reversed(range(self.n_layers)):
            grads[2 * layer] = np.swapaxes(inputs[layer], -1, -2) @ d_pre
            grads[2 * layer + 1] = d_pre.sum(axis=-2)
            if layer > 0:
                d_pre = (d_pre @ np.swapaxes(params[2 * layer], -1, -2)) * self._dphi(pre_activations[layer - 1])
        return grads

    @staticmethod
    def _softmax(logits):
        shifted = logits - logits.max(axis=-1, keepdims=True)
        e = np.exp(shifted)
        return e / e.sum(axis=-1, keepdims=True)

    def _cross_entropy(self, logits, y):
        shifted = logits - logits.max(axis=-1, keepdims=True)
        log_normalizer = np.log(np.exp(shifted).sum(axis=-1))
        picked = np.take_along_axis(shifted, np.broadcast_to(y, shifted.shape[:-1])[..., None], axis=-1)
        return (log_normalizer - picked[..., 0]).mean(axis=-1)

    def _one_hot(self, labels):
        return (labels[..., None] == np.arange(self.n_classes)).astype(self.dtype)

    def logits(self, params, X):
        """Network outputs before the softmax for inputs ``X`` (standardized, e.g. ``self.X_test``),
        shape ``(..., n, 10)``."""
        params = self._check_params(params)
        return self._forward(params, np.asarray(X))[0][-1]

    def loss(self, params, batch=None, split="train"):
        """Mean cross-entropy on a split (``"train"`` or ``"test"``), or on its rows ``batch``."""
        params = self._check_params(params)
        X, y = self._rows(batch, split)
        return self._cross_entropy(self._forward(params, X)[0][-1], y)

    def loss_and_grads(self, params, batch=None):
        """Mean training cross-entropy on the rows ``batch`` (None: the whole training set) and its gradients,
        a list shaped like ``params``."""
        params = self._check_params(params)
        X, y = self._rows(batch)
        pre_activations, inputs = self._forward(params, X)
        logits = pre_activations[-1]
        d_logits = (self._softmax(logits) - self._one_hot(y)) / X.shape[0]
        return self._cross_entropy(logits, y), self._backward(params, pre_activations, inputs, d_logits)

    def accuracy(self, params, split="test"):
        """Fraction of a split classified correctly, shape ``(...)``."""
        params = self._check_params(params)
        X, y = self._split(split)
        return (self._forward(params, X)[0][-1].argmax(axis=-1) == y).mean(axis=-1)

    def minibatches(self, batch_size, rng, drop_last=False):
        """One epoch of training-row index arrays, shuffled with ``rng`` (like a shuffling DataLoader)."""
        batch_size = _check_int("batch_size", batch_size, low=1)
        order = rng.permutation(self.n_train)
        stop = self.n_train - self.n_train % batch_size if drop_last else self.n_train
        for start in range(0, stop, batch_size):
            yield order[start:start + batch_size]

    # -- curvature ---------------------------------------------------------------------------------------------

    def _curvature_product(self, params, vecs, batch, exact):
        """Forward-over-reverse: the directional derivative R{.} = d/de (.)(params + e vecs) of every quantity
        of the backward pass. The Gauss-Newton product drops the terms that carry the loss gradient itself."""
        params = self._check_params(params)
        vecs = self._check_params(vecs, "vecs")
        X, y = self._rows(batch)
        n = X.shape[0]
        pre_activations, inputs = self._forward(params, X)

        # R-forward: how the pre-activations and layer inputs move along vecs
        r_pre, r_inputs = [], [None]
        for layer in range(self.n_layers):
            W, dW, db = params[2 * layer], vecs[2 * layer], vecs[2 * layer + 1]
            r_a = inputs[layer] @ dW + db[..., None, :]
            if layer > 0:
                r_a = r_a + r_inputs[layer] @ W
            r_pre.append(r_a)
            if layer < self.n_layers - 1:
                r_inputs.append(self._dphi(pre_activations[layer]) * r_a)

        # the loss's curvature in the logits: d(softmax)/da applied to R{a_L}
        p = self._softmax(pre_activations[-1])
        d_pre = (p - self._one_hot(y)) / n
        r_d_pre = p * (r_pre[-1] - (p * r_pre[-1]).sum(axis=-1, keepdims=True)) / n

        # R-backward
        products = [None] * len(params)
        for layer in reversed(range(self.n_layers)):
            inputs_T = np.swapaxes(inputs[layer], -1, -2)
            products[2 * layer] = inputs_T @ r_d_pre
            if exact and layer > 0:
                products[2 * layer] = products[2 * layer] + np.swapaxes(r_inputs[layer], -1, -2) @ d_pre
            products[2 * layer + 1] = r_d_pre.sum(axis=-2)
            if layer > 0:
                W_T = np.swapaxes(params[2 * layer], -1, -2)
                slope = self._dphi(pre_activations[layer - 1])
                d_inputs = d_pre @ W_T
                r_d_inputs = r_d_pre @ W_T
                if exact:
                    r_d_inputs = r_d_inputs + d_pre @ np.swapaxes(vecs[2 * layer], -1, -2)
                r_d_pre_next = r_d_inputs * slope
                if exact:
                    r_d_pre_next = r_d_pre_next + d_inputs * self._ddphi(pre_activations[layer - 1]) * r_pre[layer - 1]
                d_pre, r_d_pre = d_inputs * slope, r_d_pre_next
        return products

    def hvp(self, params, vecs, batch=None):
        """Exact Hessian-vector product of the training loss (rows ``batch``) with ``vecs`` (a list shaped like
        ``params``), by forward-over-reverse differentiation."""
        return self._curvature_product(params, vecs, batch, exact=True)

    def gnvp(self, params, vecs, batch=None):
        r"""Gauss-Newton product :math:`J^\top H_{\text{softmax}} J v`: the Hessian without the terms from
        the network's own curvature; positive semi-definite."""
        return self._curvature_product(params, vecs, batch, exact=False)

    def sampled_label_grads(self, params, batch, rng):
        r"""Gradient of the mean cross-entropy on rows ``batch`` (None: all training rows) with each label
        replaced by a draw :math:`\hat y \sim \text{softmax}(\text{logits})` from the model itself.

        Sophia's Gauss-Newton-Bartlett estimator is :math:`m\,\hat g \odot \hat g` for a batch of m rows: in
        expectation :math:`m\,\mathbb E[\hat g \hat g^\top]` is the Gauss-Newton matrix (Bartlett's identity).
        Each run of a batch of parameters draws its own labels.
        """
        params = self._check_params(params)
        X, _ = self._rows(batch)
        pre_activations, inputs = self._forward(params, X)
        p = self._softmax(pre_activations[-1])
        # inverse-CDF sampling of one class per row and run; the clip guards against cumsum rounding below 1
        uniform = rng.random(p.shape[:-1] + (1,))
        sampled = np.minimum((np.cumsum(p, axis=-1) < uniform).sum(axis=-1), self.n_classes - 1)
        d_logits = (p - self._one_hot(sampled)) / X.shape[0]
        return self._backward(params, pre_activations, inputs, d_logits)
