"""Quadratics: the ravine, its noisy twin, and a bowl whose bottom moves."""

from __future__ import annotations

import math

import numpy as np

from .._trig import sin_cos
from ._base import Problem, _check_int, _check_number, _expand, _read_only, _scalar_if_0d

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
        s, c = sin_cos(self.angle)  # rounded correctly: the playground's JavaScript gets the same bits
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
