"""Runs and sweeps: what every chapter's experiment calls in one line.

* :func:`run` drives one optimizer on a problem for T steps (with an optional learning-rate schedule, gradient
  clipping and accumulation) and returns a :class:`Trajectory`: the path, the losses, the learning rates and the
  gradient norms.
* :func:`sweep` runs B optimizers with B hyperparameter values as **one vectorized run**: the hyperparameters
  become arrays of shape (B, 1) over a (B, d) parameter, so 10,000 runs cost about one run's Python overhead.
  :func:`grid` does the same over the product of two (or more) hyperparameter axes and returns a map of final
  losses with the diverged runs marked, ready to put next to a theoretical stability boundary.

Problems follow the protocol of :mod:`optimlab.problems`: ``loss(x, t)`` and ``grad(x, t, rng)`` on points of
shape (..., dim). Optimizers are named as in the course: ``"SGD"``, ``"Momentum"`` (SGD with momentum 0.9),
``"Nesterov"``, ``"AdaGrad"``, ``"RMSprop"``, ``"Adam"``, ``"AdamW"``, ``"Adamax"``, ``"NAdam"``, ``"RAdam"``,
``"Lion"``, ``"Sophia"``, or given as a class.
"""

from __future__ import annotations

import itertools
import numbers
from dataclasses import dataclass, field

import numpy as np

from . import optimizers
from .clipping import clip_by_norm_, clip_grad_value_

__all__ = ["OPTIMIZERS", "make_optimizer", "run", "sweep", "grid", "Trajectory", "SweepResult"]

# name -> (class, the defaults the course uses for that name beyond torch's)
OPTIMIZERS = {
    "SGD": (optimizers.SGD, {}),
    "Momentum": (optimizers.SGD, {"momentum": 0.9}),
    "Nesterov": (optimizers.SGD, {"momentum": 0.9, "nesterov": True}),
    "AdaGrad": (optimizers.Adagrad, {}),
    "RMSprop": (optimizers.RMSprop, {}),
    "Adam": (optimizers.Adam, {}),
    "AdamW": (optimizers.AdamW, {}),
    "Adamax": (optimizers.Adamax, {}),
    "NAdam": (optimizers.NAdam, {}),
    "RAdam": (optimizers.RAdam, {}),
    "Lion": (optimizers.Lion, {}),
    "Sophia": (optimizers.SophiaG, {}),
}
_BY_LOWER = {name.lower(): name for name in OPTIMIZERS} | {"adagrad": "AdaGrad", "sophiag": "Sophia",
                                                            "nadam": "NAdam", "heavy-ball": "Momentum"}


def optimizer_class(name):
    """The class and course defaults for an optimizer name (case-insensitive) or class."""
    if isinstance(name, type) and issubclass(name, optimizers.Optimizer):
        return name, {}
    key = _BY_LOWER.get(str(name).lower()) if isinstance(name, str) else None
    if key is None:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)} or an optimizer class, got {name!r}")
    return OPTIMIZERS[key]


def make_optimizer(name, params, **hyperparameters):
    """``make_optimizer("Momentum", [x], lr=0.1)`` is ``SGD([x], lr=0.1, momentum=0.9)``."""
    cls, defaults = optimizer_class(name)
    return cls(params, **{**defaults, **hyperparameters})


@dataclass
class Trajectory:
    """One run, or a batch of runs (a leading axis of size B after the step axis)."""

    path: np.ndarray          # (T+1, [B,] dim): the start point, then the point after each step
    losses: np.ndarray        # (T+1, [B]): the loss at each point
    lrs: np.ndarray           # (T, [B]): the learning rate used by each step ((T, [B,] dim) if per coordinate)
    grad_norms: np.ndarray    # (T, [B]): the norm of the gradient each step used (after clipping)
    diverged: np.ndarray | bool = False   # per run: the loss became inf/NaN or grew past the divergence bound
    info: dict = field(default_factory=dict)

    @property
    def final_loss(self):
        return self.losses[-1]

    def steps_to(self, target, stay=False):
        """The first step at which the loss is ≤ ``target`` (per run; -1 where it never is).

        With ``stay=True``: the first step from which the loss stays ≤ ``target`` to the end of the run, which is
        what to count for methods that spiral (momentum dips below a target and comes back)."""
        below = self.losses <= target
        if stay:
            # reversed cumulative "all below from here on"
            below = np.flip(np.logical_and.accumulate(np.flip(below, axis=0), axis=0), axis=0)
        first = np.argmax(below, axis=0)
        return np.where(below.any(axis=0), first, -1)

    def rate(self, start=None, stop=None):
        """The measured linear rate: the geometric mean of (f_{t+1} − f*)/(f_t − f*) over [start, stop), as a
        contraction factor of the distance (the square root of the loss ratio, for a quadratic loss)."""
        f_star = self.info.get("f_star", 0.0) or 0.0
        gap = np.asarray(self.losses, dtype=float) - f_star
        start = 0 if start is None else start
        stop = len(gap) - 1 if stop is None else stop
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = gap[stop] / gap[start]
            return ratio ** (0.5 / (stop - start))


@dataclass
class SweepResult:
    """B runs of one sweep: the values swept (``values[name]``, each of length B) and their trajectories."""

    values: dict
    trajectory: Trajectory

    @property
    def final_loss(self):
        return self.trajectory.losses[-1]

    @property
    def diverged(self):
        return self.trajectory.diverged


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _per_run(value, shape):
    """The learning rate as recorded: one value per run (a scalar or a (B, 1) array), or, for a learning rate
    per coordinate, the full array."""
    value = np.asarray(value, dtype=float)
    return np.broadcast_to(value[..., 0] if value.ndim and value.shape[-1] == 1 else value, shape)


def _norms(g):
    return np.sqrt(np.einsum("...i,...i->...", g, g))  # einsum: fast when the last axis is short (d = 2)


def _drive(problem, opt, x, steps, *, schedule, clip_norm, clip_value, accumulate, rng, divergence, base_lr,
           record_path, hessian_every=10):
    """The loop shared by :func:`run` and :func:`sweep`: x is (dim,) or (B, dim), updated in place by ``opt``."""
    batch = x.shape[:-1]
    path = np.empty((steps + 1, *x.shape)) if record_path else None
    losses = np.empty((steps + 1, *batch))
    lr = np.asarray(opt.param_groups[0]["lr"])
    per_coordinate = lr.ndim > 0 and lr.shape[-1] != 1
    lr_shape = x.shape if per_coordinate else batch
    lrs = np.empty((steps, *lr_shape))
    grad_norms = np.empty((steps, *batch))
    with np.errstate(all="ignore"):  # diverging runs overflow; they are marked, not warned about
        losses[0] = problem.loss(x, t=0)
        if record_path:
            path[0] = x
        initial = np.where(np.isfinite(losses[0]), np.abs(losses[0]), np.inf)
        bound = divergence * np.maximum(initial, 1.0)
        dead = np.zeros(batch, dtype=bool)
        sophia = isinstance(opt, optimizers.SophiaG)
        if sophia and not callable(getattr(problem, "hvp", None)):
            raise TypeError(f"Sophia needs Hessian-vector products, and {problem.name} has no hvp()")
        for t in range(steps):
            if schedule is not None:
                opt.param_groups[0]["lr"] = base_lr * schedule(t)
            g = problem.grad(x, t=t, rng=rng)
            for _ in range(accumulate - 1):
                g = g + problem.grad(x, t=t, rng=rng)
            if accumulate > 1:
                g /= accumulate
            g = np.asarray(g, dtype=x.dtype)
            if clip_norm is not None:
                clip_by_norm_(g, clip_norm, axis=-1)
            if clip_value is not None:
                clip_grad_value_(g, clip_value)
            grad_norms[t] = _norms(g)
            lrs[t] = _per_run(opt.param_groups[0]["lr"], lr_shape)
            if sophia:
                if t % hessian_every == 0:  # Hutchinson: u ⊙ (∇²f u), one Hessian-vector product per run
                    u = rng.standard_normal(x.shape)
                    # clamped at 0: non-positive curvature then gives a plain sign step, as the paper's
                    # max(ρh, ε) does; the authors' code assumes h ≥ 0 (its estimator is a square)
                    opt.update_hessian([np.maximum(u * problem.hvp(x, u), 0.0).astype(x.dtype, copy=False)])
                opt.step([g], bs=1)
            else:
                opt.step([g])
            losses[t + 1] = problem.loss(x, t=t + 1)
            dead |= ~(np.abs(losses[t + 1]) <= bound)  # NaN compares False: marked too
            if record_path:
                path[t + 1] = x
    return Trajectory(path=path, losses=losses, lrs=lrs, grad_norms=grad_norms, diverged=dead,
                      info={"f_star": getattr(problem, "f_star", 0.0)})


def run(problem, optimizer="SGD", *, steps=100, x0=None, schedule=None, clip_norm=None, clip_value=None,
        accumulate=1, seed=0, divergence=1e8, dtype=np.float64, record_path=True, **hyperparameters):
    """Run one optimizer on ``problem`` for ``steps`` steps from ``x0`` (default ``problem.x0``).

    ``schedule(t)`` multiplies the learning rate at step t (0-based, as a scheduler's ``last_epoch``);
    ``clip_norm``/``clip_value`` clip each gradient (per run); ``accumulate=k`` averages k stochastic gradients
    per step; ``seed`` seeds the gradient noise of stochastic problems. A run is marked diverged when its loss
    becomes non-finite or grows past ``divergence`` times its initial size.

    Sophia gets a Hutchinson estimate of the Hessian diagonal every 10 steps (from ``problem.hvp``, clamped at
    zero) and steps with ``bs=1``, so that ``rho`` alone scales the curvature.
    """
    steps = _check_positive_int("steps", steps)
    accumulate = _check_positive_int("accumulate", accumulate)
    if schedule is not None and not callable(schedule):
        raise TypeError(f"schedule must be a callable of the step, got {schedule!r}")
    start = np.asarray(problem.x0 if x0 is None else x0, dtype=dtype)
    if start.shape[-1:] != (problem.dim,):
        raise ValueError(f"x0 must have shape (..., {problem.dim}) for {problem.name}, got {start.shape}")
    x = start.copy()
    opt = make_optimizer(optimizer, [x], **hyperparameters)
    base_lr = opt.param_groups[0]["lr"]
    rng = np.random.default_rng(seed)
    trajectory = _drive(problem, opt, x, steps, schedule=schedule, clip_norm=clip_norm, clip_value=clip_value,
                        accumulate=accumulate, rng=rng, divergence=divergence, base_lr=base_lr,
                        record_path=record_path)
    trajectory.info["optimizer"] = opt
    return trajectory


def sweep(problem, optimizer="SGD", *, steps=100, x0=None, record_path=False, **axes_and_hyperparameters):
    """B runs in one vectorized run. Each keyword whose value is a 1-D array (or list) of length B is swept;
    scalars are shared. ``betas`` may be given as ``beta1=...``/``beta2=...`` arrays.

    >>> result = sweep(Ravine(100), "Momentum", lr=np.linspace(0.001, 0.03, 50), momentum=np.full(50, 0.9))
    """
    options = {k: axes_and_hyperparameters.pop(k) for k in
               ("schedule", "clip_norm", "clip_value", "accumulate", "seed", "divergence", "dtype")
               if k in axes_and_hyperparameters}
    swept = {k: np.asarray(v, dtype=float) for k, v in axes_and_hyperparameters.items()
             if isinstance(v, (list, tuple, np.ndarray)) and np.ndim(v) == 1 and k != "betas"}
    if not swept:
        raise ValueError("sweep needs at least one hyperparameter given as a 1-D array of values to sweep")
    sizes = {k: len(v) for k, v in swept.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"swept hyperparameters must have the same length, got {sizes}")
    (size,) = set(sizes.values())
    hyper = {k: v for k, v in axes_and_hyperparameters.items() if k not in swept}
    hyper.update({k: v[:, None] for k, v in swept.items()})
    if "beta1" in hyper or "beta2" in hyper:
        cls, defaults = optimizer_class(optimizer)
        default_betas = cls.hyper["betas"][0]
        hyper["betas"] = (hyper.pop("beta1", default_betas[0]), hyper.pop("beta2", default_betas[1]))
    start = np.asarray(problem.x0 if x0 is None else x0, dtype=options.get("dtype", np.float64))
    start = np.broadcast_to(start, (size, problem.dim)).copy()
    trajectory = run(problem, optimizer, steps=steps, x0=start, record_path=record_path, **options, **hyper)
    return SweepResult(values=swept, trajectory=trajectory)


def grid(problem, optimizer="SGD", *, steps=100, x0=None, **axes_and_hyperparameters):
    """A sweep over the product of the 1-D axes given (e.g. ``lr=...`` and ``momentum=...``).

    Returns ``(axes, final_loss, diverged, result)``: ``final_loss`` and ``diverged`` have one dimension per axis,
    in the order the axes were given (the first axis is rows).
    """
    axes = {k: np.asarray(v, dtype=float) for k, v in axes_and_hyperparameters.items()
            if isinstance(v, (list, tuple, np.ndarray)) and np.ndim(v) == 1 and k != "betas"}
    rest = {k: v for k, v in axes_and_hyperparameters.items() if k not in axes}
    points = list(itertools.product(*axes.values()))
    columns = {k: np.array([p[i] for p in points]) for i, k in enumerate(axes)}
    result = sweep(problem, optimizer, steps=steps, x0=x0, **columns, **rest)
    shape = tuple(len(v) for v in axes.values())
    final = result.final_loss.reshape(shape)
    return axes, final, np.asarray(result.diverged).reshape(shape), result
