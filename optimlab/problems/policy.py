r"""Policy gradient: REINFORCE on a small environment, as a vector problem with an exact loss and gradient.

:class:`ShortCorridor` follows the protocol of the vector problems (``loss(x, t)``, ``grad(x, t, rng)``): with
``rng=None`` the gradient is exact, with a generator it is the REINFORCE estimate from sampled episodes, so
:func:`optimlab.experiments.run` and :func:`~optimlab.experiments.sweep` drive it like any stochastic problem.
"""

from __future__ import annotations

import math

import numpy as np

from ._base import Problem, _check_int, _check_number, _read_only, _scalar_if_0d


class ShortCorridor(Problem):
    r"""The short corridor with switched actions (Sutton & Barto 2018, *Reinforcement learning: an
    introduction*, 2nd ed., example 13.1), learned by REINFORCE (Williams 1992).

    **What it shows.** The gradient an optimizer gets in reinforcement learning is a noisy Monte Carlo estimate,
    and its noise depends on the policy itself. The environment: three non-terminal states in a row and a goal
    on the right; each step costs 1. In the first and third states the actions do what they say (left in the
    first state stays put); in the second they are *switched*. The agent cannot tell the states apart, so its
    policy is one probability :math:`p` of going right everywhere; the best is a *stochastic* policy,
    :math:`p^* = 2 - \sqrt 2 \approx 0.586`, at about 11.66 expected steps, which no deterministic policy
    (always right or always left: never arriving) can approach. The expected number of steps from the start has
    a closed form (solving the three Bellman equations):

    .. math:: f(p) = \frac{4 - 2p}{p\,(1 - p)}, \qquad p = \sigma(\theta_R - \theta_L)

    with the softmax policy over two action preferences :math:`x = (\theta_L, \theta_R)` (one-hot features of
    the actions, as in the book). The loss is :math:`f`, the negated expected return, minimized.
    ``grad(x, rng=None)`` is its exact gradient; with a generator it is the **REINFORCE** estimate averaged over
    ``episodes`` sampled episodes,

    .. math:: \hat g = -\frac1E \sum_{e} \sum_t (G_t - b)\, \nabla_x \log \pi(a_t), \qquad
              \nabla_x \log \pi(a) = \mathbb 1_a - (1 - p, p)

    where :math:`G_t` is the return from step t (minus the steps still to go) and ``baseline`` :math:`b` a
    constant: unbiased for any b, and with less variance for a good one (b near :math:`-f`). The gradient always
    lies along (-1, 1): adding the same number to both preferences changes nothing, so the loss has a valley of
    minimizers along the diagonal, and ``x_star`` is the one with :math:`\theta_L = 0`. Episodes are cut at
    ``max_steps`` steps (the estimate is then slightly biased; at p = 0.05, 82 expected steps, a cut at 1000 has
    probability about e⁻¹²). The default start, p ≈ 0.05, is a policy that almost always goes left (82 expected
    steps), from which REINFORCE with 4 episodes per step reaches the optimum in about 100 SGD steps at lr 2e-3.

    Parameters
    ----------
    episodes : int >= 1
        Episodes per gradient estimate.
    baseline : float
        The constant b subtracted from the returns.
    max_steps : int >= 1
        Length at which an episode is cut.
    """

    name = "short_corridor"
    dim = 2
    bounds = ((-4.0, 4.0), (-4.0, 4.0))

    def __init__(self, episodes=8, baseline=0.0, max_steps=1000):
        self.episodes = _check_int("episodes", episodes, low=1)
        self.baseline = _check_number("baseline", baseline)
        self.max_steps = _check_int("max_steps", max_steps, low=1)
        self.x0 = _read_only([0.0, math.log(0.05 / 0.95)])
        p_star = 2.0 - math.sqrt(2.0)
        self.x_star = _read_only([0.0, math.log(p_star / (1.0 - p_star))])
        self.f_star = float(self.expected_steps(p_star))

    def _describe(self):
        return f"episodes={self.episodes}, baseline={self.baseline:g}, max_steps={self.max_steps}"

    def probability_right(self, x):
        """p = σ(θ_R − θ_L), shape ``(...)``."""
        x = self._points(x)
        return 0.5 + 0.5 * np.tanh(0.5 * (x[..., 1] - x[..., 0]))

    @staticmethod
    def expected_steps(p):
        """f(p) = (4 − 2p) / (p (1 − p)): the expected length of an episode (inf at p = 0 or 1)."""
        p = np.asarray(p)
        with np.errstate(divide="ignore"):
            return (4.0 - 2.0 * p) / (p * (1.0 - p))

    def loss(self, x, t=0):
        """The expected number of steps to the goal, shape ``(...)``."""
        return _scalar_if_0d(self.expected_steps(self.probability_right(x)))

    def grad(self, x, t=0, rng=None):
        """The exact gradient (``rng=None``), or the REINFORCE estimate from ``episodes`` episodes per point."""
        x = self._points(x)
        p = self.probability_right(x)
        direction = np.stack([-np.ones_like(p), np.ones_like(p)], axis=-1)  # ∂p/∂x = p (1 − p) (−1, 1)
        if rng is None:
            q = 1.0 - p
            with np.errstate(divide="ignore", invalid="ignore"):
                df_dp = (-2.0 * p * q - (4.0 - 2.0 * p) * (1.0 - 2.0 * p)) / (p * q) ** 2
            return (df_dp * p * q)[..., None] * direction
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng must be a numpy.random.Generator or None, got {rng!r}")
        weights, right = self.episodes_of(p, rng)
        # Σ_t (G_t − b) ∇log π(a_t) = (Σ_t w_t [a_t = right] − p Σ_t w_t) (−1, 1), with w_t = G_t − b
        ascent = (right - p[..., None] * weights).mean(axis=-1)
        return (-ascent)[..., None] * direction.astype(x.dtype)

    def episodes_of(self, p, rng):
        """Play ``episodes`` episodes per policy p (shape ``(...)``), all in lockstep. Returns, per episode
        (shape ``(..., episodes)``), :math:`\\sum_t w_t` and :math:`\\sum_t w_t [a_t = \\text{right}]` with
        :math:`w_t = G_t - b`, the return from step t minus the baseline."""
        p = np.asarray(p, dtype=float)[..., None]
        shape = p.shape[:-1] + (self.episodes,)
        state = np.zeros(shape, dtype=np.int8)
        running = np.ones(shape, dtype=bool)
        length = np.zeros(shape)
        steps_right, time_right = np.zeros(shape), np.zeros(shape)  # Σ_t [right], Σ_t t [right]
        for t in range(self.max_steps):
            right = (rng.random(shape) < p) & running
            moves_right = right ^ (state == 1)  # the second state switches the actions
            state = np.where(running, np.maximum(state + np.where(moves_right, 1, -1), 0), state).astype(np.int8)
            steps_right += right
            time_right += t * right
            length += running
            running &= state < 3
            if not running.any():
                break
        # G_t = −(T − t): Σ_t w_t = Σ_{t<T} (t − T − b); Σ_t w_t [right] = Σ_t (t − T − b) [right]
        weights = length * (length - 1) / 2 - length * (length + self.baseline)
        right_weights = time_right - steps_right * (length + self.baseline)
        return weights, right_weights
