"""Runs and sweeps: what every chapter's experiment calls in one line.

* :func:`run` drives one optimizer on a problem for T steps (with an optional learning-rate schedule, gradient
  clipping and accumulation) and returns a :class:`Trajectory`: the path, the losses, the learning rates and the
  gradient norms.
* :func:`sweep` runs B optimizers with B hyperparameter values as **one vectorized run**: the hyperparameters
  become arrays of shape (B, 1) over a (B, d) parameter, so 10,000 runs cost about one run's Python overhead.
  :func:`grid` does the same over the product of two (or more) hyperparameter axes and returns a map of final
  losses with the diverged runs marked, ready to put next to a theoretical stability boundary.

* :func:`compare_muon_adamw` is the muon chapter's protocol for comparing Muon (on a network's hidden matrices,
  with AdamW on the rest) with AdamW on everything: a learning rate tuned for each on a validation split, then
  paired test runs with fresh seeds; :func:`rerun_muon_adamw` is its second half, at given rates.

Problems follow the protocol of :mod:`optimlab.problems`: ``loss(x, t)`` and ``grad(x, t, rng)`` on points of
shape (..., dim). The networks (:class:`~optimlab.problems.DigitsMLP`, :class:`~optimlab.problems.DigitsCNN`,
:class:`~optimlab.problems.AddingGRU`, ...) are run too: their parameters are a list of arrays, trained on
minibatches, and a swept hyperparameter of shape (B,) applies along the leading run axis of every array (see
:func:`run` and :func:`sweep`). Optimizers are named as in the course: ``"SGD"``, ``"Momentum"`` (SGD with
momentum 0.9), ``"Nesterov"``, ``"AdaGrad"``, ``"RMSprop"``, ``"Adam"``, ``"AdamW"``, ``"Adamax"``, ``"NAdam"``,
``"RAdam"``, ``"Lion"``, ``"Sophia"``, ``"SGDScheduleFree"``, ``"AdamWScheduleFree"``, ``"Prodigy"``, or given as
a class.

**Schedule-Free runs** (:mod:`optimlab.schedule_free`) take their gradients at y but return x, the average, which
is the point the method is about (its guarantees are for x; y is only where it asks for gradients). So a run's
``path`` and ``losses`` are at x, what a chapter should show and compare with other optimizers, and
``info["losses_at_y"]`` holds the losses at y, the training-mode point, for a figure that shows both. The run
ends in eval mode, with x in the parameter.
"""

from __future__ import annotations

import itertools
import numbers
from dataclasses import dataclass, field

import numpy as np

from . import optimizers, schedule_free
from ._base import check_number, describe
from .clipping import _check_bound, clip_by_norm_, clip_grad_value_
from .matrix import Muon

__all__ = ["OPTIMIZERS", "make_optimizer", "run", "sweep", "grid", "Trajectory", "SweepResult", "holdout",
           "train_muon_adamw", "rerun_muon_adamw", "compare_muon_adamw"]

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
    "SGDScheduleFree": (schedule_free.SGDScheduleFree, {}),
    "AdamWScheduleFree": (schedule_free.AdamWScheduleFree, {}),
    "Prodigy": (schedule_free.Prodigy, {}),
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
        averaged = isinstance(opt, schedule_free._ScheduleFree)
        losses_at_y = losses.copy() if averaged else None
        for t in range(steps):
            if averaged:
                opt.train()   # x → y: the gradient is taken at y
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
            if averaged:
                losses_at_y[t + 1] = problem.loss(x, t=t + 1)
                opt.eval()    # y → x: the loss and the path at the average
            losses[t + 1] = problem.loss(x, t=t + 1)
            dead |= ~(np.abs(losses[t + 1]) <= bound)  # NaN compares False: marked too
            if record_path:
                path[t + 1] = x
    info = {"f_star": getattr(problem, "f_star", 0.0)}
    if averaged:
        info["losses_at_y"] = losses_at_y
    return Trajectory(path=path, losses=losses, lrs=lrs, grad_norms=grad_norms, diverged=dead, info=info)


def run(problem, optimizer="SGD", *, steps=100, x0=None, schedule=None, clip_norm=None, clip_value=None,
        accumulate=1, seed=0, divergence=1e8, dtype=np.float64, record_path=True, **hyperparameters):
    """Run one optimizer on ``problem`` for ``steps`` steps from ``x0`` (default ``problem.x0``).

    ``schedule(t)`` multiplies the learning rate at step t (0-based, as a scheduler's ``last_epoch``);
    ``clip_norm``/``clip_value`` clip each gradient (per run); ``accumulate=k`` averages k stochastic gradients
    per step; ``seed`` seeds the gradient noise of stochastic problems. A run is marked diverged when its loss
    becomes non-finite or grows past ``divergence`` times its initial size.

    Sophia gets a Hutchinson estimate of the Hessian diagonal every 10 steps (from ``problem.hvp``, clamped at
    zero) and steps with ``bs=1``, so that ``rho`` alone scales the curvature.

    **Networks** (a problem with ``init_params`` and ``loss_and_grads``): ``x0`` is a list of parameter arrays
    (default ``problem.init_params(seed)``), and two more keywords apply: ``batch_size`` (default 32; None:
    full-batch gradient descent) and ``sharpness_every`` (default None; k: the sharpness, the largest Hessian
    eigenvalue of the training loss, every k steps, into ``info["sharpness"]``, with ``info["sharpness_steps"]``).
    Each estimate is ``problem.sharpness(params)``, 20 steps of power iteration from a seeded random start, unless
    ``sharpness_iters=n`` is given: then only the first is, and each later one takes n steps from the previous
    estimate's vector (:meth:`~optimlab.problems._base.NetworkProblem.top_eigenpair`), which costs a few
    Hessian-vector products where 20 would be needed from a random start.
    ``seed`` seeds the initial parameters and the order of the minibatches (one epoch after another).
    ``clip_norm`` clips each run's global norm over all arrays, as ``torch.nn.utils.clip_grad_norm_`` does for
    one network. The trajectory has no path; ``losses[t]`` is the training loss at the parameters of step t
    on the minibatch that step uses (``losses[steps]``: at the end, on the next minibatch; with
    ``batch_size=None`` every loss is on the whole training set); ``info`` holds the final ``params`` and
    ``metric`` (the problem's task metric on its test split). ``record_path`` and ``dtype`` do not apply: a
    network computes in its problem's dtype.
    """
    steps = _check_positive_int("steps", steps)
    accumulate = _check_positive_int("accumulate", accumulate)
    if schedule is not None and not callable(schedule):
        raise TypeError(f"schedule must be a callable of the step, got {schedule!r}")
    for name, bound in (("clip_norm", clip_norm), ("clip_value", clip_value)):
        if bound is not None:   # a number >= 0, checked here so that the error names run's own keyword
            _check_bound(name, bound, array=False)
    if _is_network(problem):
        if accumulate != 1:
            raise ValueError(f"accumulate is for vector problems (use batch_size on a network), got {accumulate}")
        return _run_network(problem, optimizer, steps=steps, params=x0, schedule=schedule, clip_norm=clip_norm,
                            clip_value=clip_value, seed=seed, divergence=divergence, swept={}, **hyperparameters)
    start = np.asarray(problem.x0 if x0 is None else x0, dtype=dtype)
    if start.shape[-1:] != (problem.dim,):
        raise ValueError(f"x0 must have shape (..., {problem.dim}) for {problem.name}, got {start.shape}")
    x = start.copy()
    if x.ndim > 1 and not optimizer_class(optimizer)[0].elementwise:
        raise ValueError(f"optimizer {getattr(optimizer, '__name__', optimizer)!r} preconditions whole matrices, so "
                         f"it would mix the runs of a batch of starting points of shape {x.shape} (one run per "
                         f"row): give it one starting point, or a network's weight matrices (optimlab.matrix)")
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

    On a network, B copies of one start (``x0`` or ``problem.init_params(seed)``) train at once, on the same
    minibatches, each (B,) array applied along the leading axis of every parameter array (one parameter group
    per array, its hyperparameters reshaped to (B, 1, ...)); the options of :func:`run` for networks apply.

    >>> result = sweep(DigitsMLP(), "AdamW", steps=200, lr=np.geomspace(1e-4, 1e-1, 16), weight_decay=0.01)
    """
    options = {k: axes_and_hyperparameters.pop(k) for k in
               ("schedule", "clip_norm", "clip_value", "accumulate", "seed", "divergence", "dtype", "batch_size",
                "sharpness_every", "sharpness_iters")
               if k in axes_and_hyperparameters}
    swept = _axes(axes_and_hyperparameters)
    if not swept:
        given = ", ".join(f"{k} of shape {v.shape}" if isinstance(v, np.ndarray) else f"{k}={describe(v)}"
                          for k, v in axes_and_hyperparameters.items())
        raise ValueError("sweep needs at least one hyperparameter given as a 1-D array of values to sweep, got "
                         + (given or "none"))
    sizes = {k: len(v) for k, v in swept.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"swept hyperparameters must have the same length, got {sizes}")
    (size,) = set(sizes.values())
    if _is_network(problem):  # the swept columns are shaped for each parameter array there
        fixed = {k: v for k, v in axes_and_hyperparameters.items() if k not in swept}
        return SweepResult(values=swept, trajectory=_run_network(
            problem, optimizer, steps=steps, params=x0, swept=swept, **options, **fixed))
    hyper = {k: v for k, v in axes_and_hyperparameters.items() if k not in swept}
    hyper.update({k: v[:, None] for k, v in swept.items()})
    if "beta1" in hyper or "beta2" in hyper:
        cls, defaults = optimizer_class(optimizer)
        default_betas = cls.hyper["betas"][0]
        hyper["betas"] = (hyper.pop("beta1", default_betas[0]), hyper.pop("beta2", default_betas[1]))

    start = np.asarray(problem.x0 if x0 is None else x0, dtype=options.get("dtype", np.float64))
    start = np.broadcast_to(start, (size, problem.dim)).copy()
    if getattr(optimizer_class(optimizer)[0], "couples_rows", False):
        # one estimate (Prodigy's d) from every element: the rows of one (B, dim) run would share it, so each
        # row is its own run
        runs = [run(problem, optimizer, steps=steps, x0=start[i], record_path=record_path, **options,
                    **{k: _row(v, i, size) for k, v in hyper.items()}) for i in range(size)]
        return SweepResult(values=swept, trajectory=_stack(runs))
    trajectory = run(problem, optimizer, steps=steps, x0=start, record_path=record_path, **options, **hyper)
    return SweepResult(values=swept, trajectory=trajectory)


def _axes(keywords):
    """The keywords given as 1-D lists or arrays (betas excepted: a pair), as float arrays, each value checked to
    be a finite real (not a bool, a string, None, complex or an integer beyond float64)."""
    axes = {}
    for key, values in keywords.items():
        if key == "betas" or not isinstance(values, (list, tuple, np.ndarray)):
            continue
        try:
            ndim = np.ndim(values)
        except ValueError:   # a list of lists of different lengths
            raise ValueError(f"{key} must be a 1-D list of values to sweep or a fixed value, got the ragged "
                             f"{describe(values)}") from None
        if ndim != 1:
            continue
        if len(values) == 0:
            raise ValueError(f"{key} must have at least one value to sweep, got {values!r}")
        for i, v in enumerate(values):
            if isinstance(v, np.ndarray) or not (isinstance(v, np.floating) or isinstance(v, np.integer)):
                check_number(f"{key}[{i}]", v, array=False)
        axes[key] = np.asarray(values, dtype=float)
        check_number(key, axes[key])
    return axes


def _row(value, i, size):
    """Row i of a swept hyperparameter (a (B, 1) array, or betas holding some), as a number; any other value as
    it is (the optimizer then says what is wrong with it)."""
    if isinstance(value, tuple):
        return tuple(_row(v, i, size) for v in value)
    return float(value[i, 0]) if isinstance(value, np.ndarray) and value.shape == (size, 1) else value


def _stack(runs):
    """Separate runs as one batch: the run axis after the step axis, as a vectorized sweep has it."""
    def stacked(name):
        arrays = [getattr(tr, name) for tr in runs]
        return None if arrays[0] is None else np.stack(arrays, axis=1)
    return Trajectory(path=stacked("path"), losses=stacked("losses"), lrs=stacked("lrs"),
                      grad_norms=stacked("grad_norms"), diverged=np.array([bool(tr.diverged) for tr in runs]),
                      info={**runs[0].info, "optimizer": [tr.info["optimizer"] for tr in runs]})


# ----------------------------------------------------------------------------------------------------------------
# Networks: parameters are a list of arrays, gradients come from minibatches


def _is_network(problem):
    return callable(getattr(problem, "loss_and_grads", None)) and callable(getattr(problem, "init_params", None))


def _per_array(value, runs, ndim):
    """A hyperparameter for one parameter array: a (B,) column reshaped to (B, 1, ..., 1) against an array
    with ``ndim`` dimensions per run; a scalar as it is; betas element by element."""
    if isinstance(value, tuple):
        return tuple(_per_array(v, runs, ndim) for v in value)
    if runs and np.ndim(value) == 1:
        return np.asarray(value, dtype=float).reshape((-1,) + (1,) * ndim)
    return value


def _run_network(problem, optimizer, *, steps, params=None, swept, schedule=None, clip_norm=None, clip_value=None,
                 seed=0, divergence=1e8, batch_size=32, sharpness_every=None, sharpness_iters=None,
                 **hyperparameters):
    """Train one network, or B copies of it with the (B,) columns of ``swept``: see :func:`run` and :func:`sweep`."""
    if batch_size is not None:
        batch_size = _check_positive_int("batch_size", batch_size)
    if sharpness_every is not None:
        sharpness_every = _check_positive_int("sharpness_every", sharpness_every)
    if sharpness_iters is not None:
        sharpness_iters = _check_positive_int("sharpness_iters", sharpness_iters)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    start = problem.init_params(seed) if params is None else params
    if not isinstance(start, (list, tuple)):
        raise ValueError(f"x0 must be a list of parameter arrays for {problem.name}, got {type(start).__name__}")
    start = problem._check_params(start, "x0")
    if start[0].ndim != len(problem.param_shapes[0]):
        raise ValueError(f"x0 must be one network's parameters (a sweep repeats them), got shape {start[0].shape}")
    runs = len(next(iter(swept.values()))) if swept else 0
    params = problem.repeat_params(start, runs) if runs else [p.copy() for p in start]
    # swept beta1/beta2 become the betas pair; every column is shaped for each array
    hyper = dict(hyperparameters)
    columns = dict(swept)
    if "beta1" in columns or "beta2" in columns:
        cls, _ = optimizer_class(optimizer)
        default_betas = hyper.pop("betas", cls.hyper["betas"][0])
        columns["betas"] = (columns.pop("beta1", default_betas[0]), columns.pop("beta2", default_betas[1]))
    groups = [{"params": [p], **{k: _per_array(v, runs, len(shape)) for k, v in columns.items()}}
              for p, shape in zip(params, problem.param_shapes)]
    opt = make_optimizer(optimizer, groups, **hyper)
    base_lrs = [group["lr"] for group in opt.param_groups]
    batch_shape = (runs,) if runs else ()

    def run_norms(arrays):  # one global norm per run, over every array
        return np.sqrt(sum(np.sum(a * a, axis=tuple(range(len(batch_shape), a.ndim))) for a in arrays))

    def per_run(value, array):
        return np.reshape(value, np.shape(value) + (1,) * (array.ndim - len(batch_shape)))

    rng = np.random.default_rng(seed)
    epochs = iter(())

    def next_batch():  # one epoch of shuffled minibatches after another; None: the whole training set
        nonlocal epochs
        if batch_size is None:
            return None
        batch = next(epochs, None)
        if batch is None:
            epochs = problem.minibatches(batch_size, rng)
            batch = next(epochs)
        return batch

    losses = np.empty((steps + 1, *batch_shape))
    lrs = np.empty((steps, *batch_shape))
    grad_norms = np.empty((steps, *batch_shape))
    sharpness_steps = np.arange(0, steps + 1, sharpness_every) if sharpness_every else np.arange(0)
    sharpness = np.empty((sharpness_steps.size, *batch_shape))
    top_vector = None

    def estimate_sharpness():  # cold: 20 iterations from the seeded start; warm: from the last vector
        nonlocal top_vector
        if sharpness_iters is None:
            return problem.sharpness(params)
        if top_vector is None:
            value, top_vector = problem.top_eigenpair(params)
        else:
            value, top_vector = problem.top_eigenpair(params, iters=sharpness_iters, start=top_vector)
        return value
    with np.errstate(all="ignore"):  # diverging runs overflow; they are marked, not warned about
        dead = np.zeros(batch_shape, dtype=bool)
        for t in range(steps):
            if sharpness_every and t % sharpness_every == 0:
                sharpness[t // sharpness_every] = estimate_sharpness()
            if schedule is not None:
                for group, base in zip(opt.param_groups, base_lrs):
                    group["lr"] = base * schedule(t)
            loss, grads = problem.loss_and_grads(params, next_batch())
            losses[t] = loss
            if t == 0:
                bound = divergence * np.maximum(np.where(np.isfinite(loss), np.abs(loss), np.inf), 1.0)
            if clip_norm is not None:
                coef = np.minimum(clip_norm / (run_norms(grads) + 1e-6), 1.0)  # torch's coefficient, per run
                for g in grads:
                    g *= per_run(coef, g).astype(g.dtype)
            if clip_value is not None:
                clip_grad_value_(grads, clip_value)
            grad_norms[t] = run_norms(grads)
            lrs[t] = np.broadcast_to(np.asarray(opt.param_groups[0]["lr"], dtype=float).reshape(-1)
                                     if runs else opt.param_groups[0]["lr"], batch_shape)
            opt.step(grads)
            dead |= ~(np.abs(loss) <= bound)
        final_batch = next_batch()
        losses[steps] = problem.loss(params, final_batch)
        dead |= ~(np.abs(losses[steps]) <= bound)
        if sharpness_every and steps % sharpness_every == 0:
            sharpness[-1] = estimate_sharpness()
        metric = problem.metric(params)
    info = {"f_star": None, "params": params, "metric": metric, "optimizer": opt}
    if sharpness_every:
        info["sharpness"], info["sharpness_steps"] = sharpness, np.array(sharpness_steps)
    return Trajectory(path=None, losses=losses, lrs=lrs, grad_norms=grad_norms, diverged=dead, info=info)


def grid(problem, optimizer="SGD", *, steps=100, x0=None, **axes_and_hyperparameters):
    """A sweep over the product of the 1-D axes given (e.g. ``lr=...`` and ``momentum=...``).

    Returns ``(axes, final_loss, diverged, result)``: ``final_loss`` and ``diverged`` have one dimension per axis,
    in the order the axes were given (the first axis is rows).
    """
    axes = _axes(axes_and_hyperparameters)
    rest = {k: v for k, v in axes_and_hyperparameters.items() if k not in axes}
    points = list(itertools.product(*axes.values()))
    columns = {k: np.array([p[i] for p in points]) for i, k in enumerate(axes)}
    result = sweep(problem, optimizer, steps=steps, x0=x0, **columns, **rest)
    shape = tuple(len(v) for v in axes.values())
    final = result.final_loss.reshape(shape)
    return axes, final, np.asarray(result.diverged).reshape(shape), result


# Muon + AdamW against AdamW on a network: the muon chapter's protocol. Lines of the functions a chapter prints
# stay within 88 characters (phones).


def holdout(net):
    """A fifth of a network problem's training rows for validation, the rest to train
    on: ``(val, fit)``, each sorted."""
    rows = np.random.default_rng(0).permutation(net.n_train)
    return np.sort(rows[:net.n_train // 5]), np.sort(rows[net.n_train // 5:])


def _minibatches(seed, rows, epochs, size):
    """The seed's shuffled minibatches of `rows`, epoch after epoch (the last partial one dropped)."""
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(rows)
        for i in range(0, len(order) - size + 1, size):
            yield order[i:i + size]


def _runs_of(values, array):
    """One value per run, shaped to broadcast against a stack of runs."""
    return np.reshape(values, (-1,) + (1,) * (array.ndim - 1))


def train_muon_adamw(net, hidden, lrs, seeds, rows, epochs, batch_size, *,
                     weight_decay=0.1, adjust_lr_fn="match_rms_adamw"):
    """One network per (contender, seed, η), all in one stack of runs. Contender 0
    is AdamW on every array; contender 1 is Muon on the arrays `hidden` and AdamW
    on the rest, one η for both; lrs[c] are contender c's rates. A seed sets the
    start and the minibatches (of `rows`, training rows), the same for both
    contenders: the runs are paired. Returns the parameters, each array stacked
    (2 · seeds · rates, ...), contender-major, then seed, then rate."""
    seeds = list(seeds)
    n, S = len(lrs[0]), len(seeds)
    starts = [net.init_params(seed) for seed in seeds]
    runs = [start for _ in range(2) for start in starts for _ in range(n)]
    params = [np.stack(arrays) for arrays in zip(*runs)]
    eta = [np.tile(np.asarray(lr, dtype=float), S) for lr in lrs]  # each run's η
    alone, mixed = slice(0, S * n), slice(S * n, 2 * S * n)
    rest = [i for i in range(len(params)) if i not in hidden]
    parts = {optimizers.AdamW: [(i, alone, eta[0]) for i in range(len(params))]
             + [(i, mixed, eta[1]) for i in rest],
             Muon: [(i, mixed, eta[1]) for i in hidden]}
    opts = []
    for cls, part in parts.items():             # one parameter group per array
        groups = [{"params": [params[i][r]], "lr": _runs_of(lr, params[i])}
                  for i, r, lr in part]
        scale = ({"adjust_lr_fn": adjust_lr_fn, "stacked": True} if cls is Muon
                 else {})
        opts.append((cls(groups, weight_decay=weight_decay, **scale), part))
    of_seed = [np.r_[s * n:(s + 1) * n, (S + s) * n:(S + s + 1) * n]
               for s in range(S)]
    grads = [np.empty_like(p) for p in params]
    for batches in zip(*(_minibatches(s, rows, epochs, batch_size) for s in seeds)):
        for runs, batch in zip(of_seed, batches):    # each seed its own minibatch
            for g, part in zip(grads, net.loss_and_grads(
                    [p[runs] for p in params], batch)[1]):
                g[runs] = part
        for opt, part in opts:
            opt.step([grads[i][r] for i, r, _ in part])
    return params


def _scores(net, params, val):
    """Each run's validation and test metric: the fraction of examples entirely
    right (an image's class; every token of a sequence)."""
    right = net.logits(params, net.X_train[val]).argmax(-1) == net.y_train[val]
    right = right.reshape(right.shape[:2] + (-1,)).all(-1).mean(-1)
    return right, net.metric(params)


def rerun_muon_adamw(net, hidden, lrs, test_seeds, epochs, batch_size, **options):
    """The test phase: AdamW at η = lrs[0] and Muon + AdamW at lrs[1], trained
    with `test_seeds` (paired) on the rows outside the validation split, scored on
    the test set. Returns the test metric (2, test seeds). `options` go to
    :func:`train_muon_adamw` (``weight_decay``, ``adjust_lr_fn``)."""
    val, fit = holdout(net)
    rates = ([lrs[0]], [lrs[1]])
    params = train_muon_adamw(net, hidden, rates, test_seeds, fit, epochs,
                              batch_size, **options)
    return _scores(net, params, val)[1].reshape(2, -1)


def compare_muon_adamw(net, hidden, lrs, seeds, test_seeds, epochs, batch_size,
                       **options):
    """The protocol. A fifth of the training rows is held out for validation;
    every η of `lrs` is run for both contenders with `seeds`, and each chooses
    the η of best mean validation metric (the first, on a tie); the two chosen
    configurations are rerun, paired, with fresh `test_seeds` and scored on the
    test set. Returns the validation metric (2, seeds, lrs), the chosen indices
    (2,) and the test metric (2, test seeds)."""
    lrs, seeds = np.asarray(lrs, dtype=float), list(seeds)
    val, fit = holdout(net)
    tuning = train_muon_adamw(net, hidden, (lrs, lrs), seeds, fit, epochs,
                              batch_size, **options)
    validation = _scores(net, tuning, val)[0].reshape(2, len(seeds), len(lrs))
    chosen = validation.mean(axis=1).argmax(axis=1)
    test = rerun_muon_adamw(net, hidden, lrs[chosen], test_seeds, epochs,
                            batch_size, **options)
    return validation, chosen, test
