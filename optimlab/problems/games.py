r"""Two-player games: where gradient steps that descend a loss no longer converge.

**The two-player protocol.** A game has two players, each with parameters that are a list of arrays (every array
may carry the same leading run dimensions, so B games are one call), and each player *minimizes its own loss*:

* ``init_params(seed=0) -> (params_1, params_2)``;
* ``loss_and_grads_1(params_1, params_2, rng=None) -> (loss_1, grads_1)``: player 1's loss and its gradient
  with respect to ``params_1``;
* ``loss_and_grads_2(params_1, params_2, rng=None) -> (loss_2, grads_2)``: the same for player 2;
* ``metric(params_1, params_2)``: the game's measure of progress, named by ``metric_name``.

``rng`` draws the minibatch of a stochastic game (the GAN); deterministic games ignore it. :func:`play` drives two
optimlab optimizers on a game, with simultaneous or alternating updates. In a zero-sum game player 2's loss is
minus player 1's: minimizing it is what an optimizer with ``maximize=True`` does on player 1's loss.

* :class:`BilinearGame`: min over x, max over y of x·y, the smallest game on which simultaneous gradient steps
  spiral outward, and where the sign of momentum decides (Gidel et al. 2019).
* :class:`GaussianMixtureGAN`: a generator and a discriminator, two small MLPs, on a ring of Gaussians in the
  plane, where mode collapse and Adam's β₁ can be seen.
"""

from __future__ import annotations

import math

import numpy as np

from ._base import _check_dtype, _check_int, _check_number, _sum_rows

__all__ = ["BilinearGame", "GaussianMixtureGAN", "play"]


def play(game, opt_1, opt_2, params_1, params_2, steps, *, alternating=True, rng=None):
    """``steps`` rounds of a game between two optimlab optimizers, which update ``params_1`` and ``params_2`` in
    place (each optimizer must have been built on its player's arrays).

    Simultaneous (``alternating=False``): both gradients at the same point, then both steps. Alternating: player
    1 steps, then player 2 takes its gradient at player 1's new parameters (the usual GAN loop, discriminator
    first if it is player 1). Returns the two losses of every round, each of shape ``(steps, ...)``.
    """
    steps = _check_int("steps", steps, low=1)
    for name, opt in (("opt_1", opt_1), ("opt_2", opt_2)):
        if not callable(getattr(opt, "step", None)):
            raise ValueError(f"{name} must be an optimizer (with a step method), got {opt!r}")
    if not isinstance(alternating, (bool, np.bool_)):
        raise ValueError(f"alternating must be True or False, got {alternating!r}")
    losses_1, losses_2 = [], []
    for _ in range(steps):
        loss_1, grads_1 = game.loss_and_grads_1(params_1, params_2, rng)
        if alternating:
            opt_1.step(grads_1)
        loss_2, grads_2 = game.loss_and_grads_2(params_1, params_2, rng)
        if not alternating:
            opt_1.step(grads_1)
        opt_2.step(grads_2)
        losses_1.append(loss_1)
        losses_2.append(loss_2)
    return np.array(losses_1), np.array(losses_2)


# ----------------------------------------------------------------------------------------------------------------
# The bilinear game


class BilinearGame:
    r"""The bilinear game :math:`\min_x \max_y\, f(x, y) = x y`, whose only equilibrium is (0, 0).

    **What it shows.** Gradient descent-ascent is not gradient descent. The vector field
    :math:`(\partial_x f, -\partial_y f) = (y, -x)` is a pure rotation: no loss decreases along it. Simultaneous
    steps :math:`x \leftarrow x - \eta y,\ y \leftarrow y + \eta x` multiply the distance to the equilibrium by
    exactly :math:`\sqrt{1 + \eta^2}` each step, a spiral outward for every step size. Alternating steps (y sees
    the new x) stay on a bounded orbit for :math:`\eta < 2`, circling forever. Gidel et al. (2019, "Negative
    momentum for improved game dynamics", AISTATS) showed that heavy-ball momentum with a *negative* coefficient,
    with alternating steps, converges linearly, while positive momentum makes things worse: the sign of momentum
    matters. optimlab's SGD, like torch's, accepts only momentum ≥ 0, so :meth:`trajectory` writes the
    heavy-ball game dynamics out for any β:

    .. math:: x_{t+1} = x_t - \eta\, y_t + \beta (x_t - x_{t-1}), \qquad
              y_{t+1} = y_t + \eta\, x_{t+1 \text{ (alternating) or } t} + \beta (y_t - y_{t-1})

    **Protocol** (see :mod:`optimlab.problems.games`): ``params_1 = [x]`` and ``params_2 = [y]``, arrays of shape
    ``(...)`` (a run per element); player 1's loss is ``x y``, player 2's is ``-x y``. The metric is the
    distance :math:`\sqrt{x^2 + y^2}` to the equilibrium.

    Parameters
    ----------
    x0, y0 : float
        The default start.
    """

    name = "bilinear_game"
    metric_name = "distance to the equilibrium"

    def __init__(self, x0=1.0, y0=1.0):
        self.x0 = _check_number("x0", x0)
        self.y0 = _check_number("y0", y0)

    def __repr__(self):
        return f"BilinearGame(x0={self.x0:g}, y0={self.y0:g})"

    def init_params(self, seed=0):
        """The start ``([x0], [y0])`` as 0-d float64 arrays (``seed`` is checked and ignored: nothing is random)."""
        _check_int("seed", seed, low=0)
        return [np.array(self.x0)], [np.array(self.y0)]

    def _players(self, params_1, params_2):
        arrays = []
        for name, params in (("params_1", params_1), ("params_2", params_2)):
            if not isinstance(params, (list, tuple)) or len(params) != 1:
                raise ValueError(f"{name} must be a list of one array, got {params!r}")
            arrays.append(np.asarray(params[0]))
        if arrays[0].shape != arrays[1].shape:
            raise ValueError(f"params_1[0] and params_2[0] must have the same shape, got {arrays[0].shape} and "
                             f"{arrays[1].shape}")
        return arrays

    def value(self, x, y):
        """f(x, y) = x y."""
        return np.asarray(x) * np.asarray(y)

    def loss_and_grads_1(self, params_1, params_2, rng=None):
        """Player 1 (x) minimizes x y: the loss and ``[∂/∂x] = [y]``."""
        x, y = self._players(params_1, params_2)
        return x * y, [y.copy()]

    def loss_and_grads_2(self, params_1, params_2, rng=None):
        """Player 2 (y) minimizes -x y (maximizes x y): the loss and ``[∂/∂y] = [-x]``."""
        x, y = self._players(params_1, params_2)
        return -x * y, [np.negative(x, out=np.empty_like(x))]

    def metric(self, params_1, params_2):
        """The distance to the equilibrium, shape ``(...)``."""
        x, y = self._players(params_1, params_2)
        return np.hypot(x, y)

    def trajectory(self, steps, lr, momentum=0.0, alternating=False, x0=None, y0=None):
        """``steps`` steps of gradient descent-ascent with heavy-ball momentum of any sign, vectorized: ``lr``,
        ``momentum``, ``x0`` and ``y0`` broadcast together (one run per element). Returns ``(x, y)``, each of
        shape ``(steps + 1, ...)``, the start included. The first step has no momentum (x₋₁ = x₀)."""
        steps = _check_int("steps", steps, low=1)
        for name, value in (("lr", lr), ("momentum", momentum)):
            if not np.all(np.isfinite(np.asarray(value, dtype=float))):
                raise ValueError(f"{name} must be finite, got {value!r}")
        if not np.all(np.asarray(lr, dtype=float) > 0):
            raise ValueError(f"lr must be > 0, got {lr!r}")
        if not isinstance(alternating, (bool, np.bool_)):
            raise ValueError(f"alternating must be True or False, got {alternating!r}")
        lr, beta = np.asarray(lr, dtype=float), np.asarray(momentum, dtype=float)
        x = np.asarray(self.x0 if x0 is None else x0, dtype=float)
        y = np.asarray(self.y0 if y0 is None else y0, dtype=float)
        x, y, lr, beta = np.broadcast_arrays(x, y, lr, beta)
        xs, ys = [x.copy()], [y.copy()]
        x_prev, y_prev = x, y
        with np.errstate(over="ignore", invalid="ignore"):
            for _ in range(steps):
                x_new = x - lr * y + beta * (x - x_prev)
                y_new = y + lr * (x_new if alternating else x) + beta * (y - y_prev)
                x_prev, y_prev, x, y = x, y, x_new, y_new
                xs.append(x)
                ys.append(y)
        return np.array(xs), np.array(ys)


# ----------------------------------------------------------------------------------------------------------------
# A GAN on a ring of Gaussians


def _softplus(a):
    """log(1 + e^a), without overflow."""
    return np.logaddexp(0.0, a)


def _sigmoid(a):
    return 0.5 + 0.5 * np.tanh(0.5 * a)


def _mlp(params, X):
    """A tanh MLP ``[W1, b1, ..., WL, bL]`` on rows X (..., n, in): the output (linear last layer) and a cache."""
    inputs = [X]
    for layer in range(len(params) // 2):
        a = inputs[-1] @ params[2 * layer] + params[2 * layer + 1][..., None, :]
        if layer < len(params) // 2 - 1:
            inputs.append(np.tanh(a))
    return a, inputs


def _mlp_backward(params, inputs, d_out):
    """Gradients of the MLP's parameters, and of its input, from the gradient of its output."""
    grads = [None] * len(params)
    for layer in reversed(range(len(params) // 2)):
        grads[2 * layer] = np.swapaxes(inputs[layer], -1, -2) @ d_out
        grads[2 * layer + 1] = _sum_rows(d_out)
        d_out = d_out @ np.swapaxes(params[2 * layer], -1, -2)
        if layer > 0:
            d_out = d_out * (1.0 - inputs[layer] * inputs[layer])
    return grads, d_out


class GaussianMixtureGAN:
    r"""A generative adversarial network (Goodfellow et al. 2014): a generator and a discriminator, two small tanh
    MLPs with hand-written backpropagation, on a ring of ``modes`` Gaussians in the plane.

    **What it shows.** Training a GAN is a game, not a minimization: the two players' steps interact, and the
    optimizer's settings change the outcome. The classic failure is *mode collapse*: the generator puts its mass
    on a few of the modes, or hops from one to the next, and the ring shows it at a glance (Metz et al. 2017,
    "Unrolled generative adversarial networks", ICLR, used this ring). Radford et al. (2016, DCGAN) lowered Adam's
    β₁ from 0.9 to 0.5 for stability, a setting GANs have kept since; the course measures what it changes here.

    **Data**: ``modes`` Gaussians of standard deviation ``std`` at equal angles on a circle of radius
    ``radius``, equally likely. **Generator** G: noise :math:`z \sim N(0, I)` of ``noise_dim`` dimensions →
    ``hidden`` → ``hidden`` → a point in the plane. **Discriminator** D: a point → ``hidden`` → ``hidden`` → a
    logit. Losses, with the *non-saturating* generator loss (Goodfellow et al. 2014, section 3), written with
    :math:`\mathrm{softplus}(a) = \log(1 + e^a)`:

    .. math:: L_D = \mathbb E_x\,\mathrm{softplus}(-D(x)) + \mathbb E_z\,\mathrm{softplus}(D(G(z))), \qquad
              L_G = \mathbb E_z\,\mathrm{softplus}(-D(G(z)))

    **Protocol** (see :mod:`optimlab.problems.games`): player 1 is the discriminator, player 2 the generator, so
    :func:`play` with ``alternating=True`` is the usual loop (a discriminator step, then a generator step against
    the updated discriminator). Parameters ``[W1, b1, W2, b2, W3, b3]`` for each (``W`` of shape
    ``(fan_in, fan_out)``), uniform in :math:`\pm 1/\sqrt{\text{fan\_in}}` as torch draws them, with optional
    leading run dimensions (B games in one call, all on the same minibatches). With ``rng``, each call draws
    ``batch_size`` fresh real points and noise vectors; with ``rng=None`` it uses a fixed batch (the first
    ``batch_size`` of the evaluation sets), which makes the losses deterministic functions of the parameters.

    **Metric**: :meth:`modes_covered`, from ``n_eval`` fixed noise vectors: a generated point is of high quality
    if it lies within 3 ``std`` of its nearest mode, and a mode is covered if it gets at least a quarter of its
    fair share of the points, ``n_eval / (4 modes)`` (the criterion of Srivastava et al. 2017, VEEGAN, with the
    threshold made relative). :meth:`high_quality` is the fraction of high-quality points and
    :meth:`energy_distance` a distance between the generated points and ``n_eval`` points of the mixture
    (Székely's energy distance: 0 when the distributions are equal).

    Parameters
    ----------
    modes : int >= 1
    radius, std : float > 0
    noise_dim, hidden : int >= 1
    batch_size : int >= 1
        Real points and noise vectors per step.
    n_eval : int >= 1
        Points of the evaluation sets.
    seed : int
        Seed of the evaluation sets.
    dtype : float64 or float32
    """

    name = "gaussian_mixture_gan"
    metric_name = "modes covered"

    def __init__(self, modes=8, radius=2.0, std=0.05, noise_dim=2, hidden=32, batch_size=64, n_eval=500, seed=0,
                 dtype=np.float64):
        self.modes = _check_int("modes", modes, low=1)
        self.radius = _check_number("radius", radius, low=0.0, low_inclusive=False)
        self.std = _check_number("std", std, low=0.0, low_inclusive=False)
        self.noise_dim = _check_int("noise_dim", noise_dim, low=1)
        self.hidden = _check_int("hidden", hidden, low=1)
        self.batch_size = _check_int("batch_size", batch_size, low=1)
        self.n_eval = _check_int("n_eval", n_eval, low=1)
        self.seed = _check_int("seed", seed, low=0)
        self.dtype = _check_dtype(dtype)
        angles = 2 * np.pi * np.arange(self.modes) / self.modes
        self.centres = self.radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        rng = np.random.default_rng(self.seed)
        self.eval_real = self.sample(self.n_eval, rng)
        self.eval_noise = rng.standard_normal((self.n_eval, self.noise_dim)).astype(self.dtype)
        for array in (self.centres, self.eval_real, self.eval_noise):
            array.flags.writeable = False
        h = self.hidden
        self.shapes_1 = [(2, h), (h,), (h, h), (h,), (h, 1), (1,)]
        self.shapes_2 = [(self.noise_dim, h), (h,), (h, h), (h,), (h, 2), (2,)]

    def __repr__(self):
        return (f"GaussianMixtureGAN(modes={self.modes}, radius={self.radius:g}, std={self.std:g}, "
                f"noise_dim={self.noise_dim}, hidden={self.hidden}, batch_size={self.batch_size}, "
                f"n_eval={self.n_eval}, seed={self.seed}, dtype={self.dtype.name})")

    def sample(self, n, rng):
        """``n`` points of the mixture drawn with ``rng``, shape ``(n, 2)``."""
        which = rng.integers(0, self.modes, size=n)
        return (self.centres[which] + self.std * rng.standard_normal((n, 2))).astype(self.dtype)

    def init_params(self, seed=0):
        """Fresh ``(discriminator, generator)`` parameters, seeded, uniform in ±1/√fan_in."""
        seed = _check_int("seed", seed, low=0)
        rng = np.random.default_rng(seed)
        players = []
        for shapes in (self.shapes_1, self.shapes_2):
            fan_ins = [shapes[2 * (i // 2)][0] for i in range(len(shapes))]  # a bias shares its layer's fan-in
            players.append([(rng.uniform(-1, 1, size=s) / math.sqrt(f)).astype(self.dtype)
                            for s, f in zip(shapes, fan_ins)])
        return tuple(players)

    def _check(self, params, shapes, name):
        if not isinstance(params, (list, tuple)) or len(params) != len(shapes):
            raise ValueError(f"{name} must be a list of {len(shapes)} arrays, got {params!r:.60}")
        params = [np.asarray(p) for p in params]
        runs = params[0].shape[:params[0].ndim - 2]
        for i, (p, shape) in enumerate(zip(params, shapes)):
            if p.shape != runs + shape:
                raise ValueError(f"{name}[{i}] must have shape {runs + shape}, got {p.shape}")
        return params

    def _players(self, params_1, params_2):
        D = self._check(params_1, self.shapes_1, "params_1")
        G = self._check(params_2, self.shapes_2, "params_2")
        if D[0].shape[:-2] != G[0].shape[:-2]:
            raise ValueError(f"params_1 and params_2 must have the same run dimensions, got {D[0].shape[:-2]} and "
                             f"{G[0].shape[:-2]}")
        return D, G

    def _batch(self, rng):
        if rng is None:
            return self.eval_real[:self.batch_size], self.eval_noise[:self.batch_size]
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng must be a numpy.random.Generator or None, got {rng!r}")
        real = self.sample(self.batch_size, rng)
        return real, rng.standard_normal((self.batch_size, self.noise_dim)).astype(self.dtype)

    def generate(self, params_2, noise=None):
        """Generated points for ``noise`` (default: the fixed evaluation noise), shape ``(..., n, 2)``."""
        G = self._check(params_2, self.shapes_2, "params_2")
        if noise is not None:
            noise = np.asarray(noise, dtype=self.dtype)
            if noise.ndim != 2 or noise.shape[1] != self.noise_dim:
                raise ValueError(f"noise must have shape (n, {self.noise_dim}), got {noise.shape}")
        return _mlp(G, self.eval_noise if noise is None else noise)[0]

    def loss_and_grads_1(self, params_1, params_2, rng=None):
        """The discriminator's loss :math:`L_D` on a batch and its gradient with respect to ``params_1``."""
        D, G = self._players(params_1, params_2)
        real, noise = self._batch(rng)
        fake = _mlp(G, noise)[0]
        a_real, cache_real = _mlp(D, real)
        a_fake, cache_fake = _mlp(D, fake)
        n = real.shape[0]
        loss = _softplus(-a_real).mean(axis=(-2, -1)) + _softplus(a_fake).mean(axis=(-2, -1))
        grads_real = _mlp_backward(D, cache_real, (_sigmoid(a_real) - 1.0) / n)[0]
        grads_fake = _mlp_backward(D, cache_fake, _sigmoid(a_fake) / n)[0]
        return loss, [a + b for a, b in zip(grads_real, grads_fake)]

    def loss_and_grads_2(self, params_1, params_2, rng=None):
        """The generator's non-saturating loss :math:`L_G` on a batch of noise and its gradient with respect to
        ``params_2`` (through the discriminator, which stays fixed)."""
        D, G = self._players(params_1, params_2)
        _, noise = self._batch(rng)
        fake, cache_G = _mlp(G, noise)
        a_fake, cache_D = _mlp(D, fake)
        loss = _softplus(-a_fake).mean(axis=(-2, -1))
        d_fake = _mlp_backward(D, cache_D, (_sigmoid(a_fake) - 1.0) / noise.shape[0])[1]
        return loss, _mlp_backward(G, cache_G, d_fake)[0]

    def _quality(self, params_2):
        points = self.generate(params_2)
        distances = np.linalg.norm(points[..., None, :] - self.centres, axis=-1)  # (..., n, modes)
        nearest = distances.argmin(axis=-1)
        good = distances.min(axis=-1) < 3 * self.std
        return nearest, good

    def modes_covered(self, params_2):
        """How many modes get at least ``n_eval / (4 modes)`` high-quality points, shape ``(...)``."""
        nearest, good = self._quality(params_2)
        counts = ((nearest[..., None] == np.arange(self.modes)) & good[..., None]).sum(axis=-2)
        return (counts >= self.n_eval / (4 * self.modes)).sum(axis=-1)

    def high_quality(self, params_2):
        """The fraction of generated points within 3 ``std`` of a mode, shape ``(...)``."""
        return self._quality(params_2)[1].mean(axis=-1)

    def energy_distance(self, params_2):
        r"""Székely's energy distance :math:`2\,\mathbb E|X - Y| - \mathbb E|X - X'| - \mathbb E|Y - Y'|` between
        the generated points and ``n_eval`` points of the mixture (V-statistics), shape ``(...)``."""
        points = self.generate(params_2)
        flat = points.reshape((-1,) + points.shape[-2:])

        def mean_distance(a, b):
            return np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1).mean()

        real = self.eval_real
        within_real = mean_distance(real, real)
        result = [2 * mean_distance(p, real) - mean_distance(p, p) - within_real for p in flat]
        return np.array(result).reshape(points.shape[:-2])

    def metric(self, params_1, params_2):
        """The game's measure: :meth:`modes_covered` (the discriminator is checked, not needed)."""
        return self.modes_covered(self._players(params_1, params_2)[1])
