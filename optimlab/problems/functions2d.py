"""Classic 2-D test functions, and the one-unit recurrent network whose loss has a cliff."""

from __future__ import annotations

import math

import numpy as np

from ._base import Problem, _check_int, _check_number, _read_only, _scalar_if_0d, _sigmoid

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

    @staticmethod
    def _powers_of(v):
        """(v, v², v³) and (1, v, v²) stacked on the last axis, as products (v·v·v): pow is not rounded the
        same way everywhere, products are, so the playground's JavaScript computes the same bits."""
        one, square = np.ones_like(v), v * v
        return np.concatenate([v, square, square * v], axis=-1), np.concatenate([one, v, square], axis=-1)

    def _residuals(self, x):
        """r_i and their gradients (dr_i/dx, dr_i/dy), i = 1, 2, 3, each stacked on a last axis."""
        u, v = x[..., 0:1], x[..., 1:2]
        powers = np.arange(1, 4, dtype=x.dtype)
        c = np.asarray(self._constants, dtype=x.dtype)
        v_i, v_i_minus_1 = self._powers_of(v)
        residual = c - u + u * v_i
        d_du = v_i - 1.0
        d_dv = powers * u * v_i_minus_1
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
        v_i_minus_1 = self._powers_of(v)[1]
        v_i_minus_2 = np.concatenate([v_i_minus_1[..., :1], v_i_minus_1[..., :2]], axis=-1)  # v^max(i−2, 0)
        r_uv = powers * v_i_minus_1
        r_vv = powers * (powers - 1) * u * v_i_minus_2
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
