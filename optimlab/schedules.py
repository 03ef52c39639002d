"""Learning-rate schedules as pure functions of the step.

Every factory here (``cosine_schedule``, ``wsd_schedule``, ...) checks its arguments and returns a
:class:`Schedule`, a small callable: ``schedule(k)`` is the learning rate after ``k`` completed optimizer
steps, that is, the rate the ``(k+1)``-th update uses (``k = 0`` is the first update). This is the value a
``torch.optim.lr_scheduler`` scheduler holds when its ``last_epoch == k``, so a bound scheduler and its pure
schedule are read the same way.

Conventions, the same for every schedule:

* **Steps.** ``k`` is an int, a float, or a numpy array of them (a chapter plots ``schedule(np.arange(1000))``
  in one line). It must be finite and ``>= 0``. A scalar step gives a Python ``float``, an array an array.
* **Learning rate, or multiplier.** Schedules return the *learning rate*: the first argument (``lr``,
  ``max_lr`` or ``base_lr``) is its scale. With ``lr=1.0`` (and any floor given as a ratio) the same function
  is the *multiplier* that :class:`optimlab.lr_scheduler.LambdaLR` expects.
* **Sweeps.** Rate-like arguments (``lr``, ``eta_min``, ``max_lr``, ...) and factors may be numpy arrays; they
  broadcast against the steps, so ``cosine_schedule(np.array([[0.1], [0.3]]), T_max=100)(np.arange(100))``
  is a (2, 100) table, one row per run.
* **Closed forms.** These are the closed forms. torch's StepLR, MultiStepLR, ConstantLR, LinearLR,
  ExponentialLR, PolynomialLR and CosineAnnealingLR instead update the *current* rate recursively
  (``lr_k = lr_{k-1} · factor_k``), and so do the schedulers in :mod:`optimlab.lr_scheduler` that carry
  their names. The two agree (to rounding) while nothing else touches the rate; once something does (a
  second scheduler, a manual change, a plateau cut), the recursive form carries the change forward and the
  closed form ignores it.
* **Composition.** :func:`join_schedules` runs schedules one after another, each restarting its own count
  at its milestone (torch's SequentialLR); ``factor * schedule`` (or :func:`scale_schedule`) multiplies.

Schedules are plain objects (a formula, a name, a dict of arguments), so they pickle and can be saved in a
scheduler's ``state_dict``.
"""

from __future__ import annotations

import numpy as np

from ._base import check_int, describe, number_error

__all__ = [
    "Schedule",
    "constant_schedule",
    "step_schedule",
    "multistep_schedule",
    "exponential_schedule",
    "cosine_schedule",
    "cosine_restarts_schedule",
    "linear_schedule",
    "linear_warmup_schedule",
    "warmup_cosine_schedule",
    "polynomial_schedule",
    "one_cycle_schedule",
    "one_cycle_momentum_schedule",
    "outline_one_cycle_schedule",
    "wsd_schedule",
    "cyclic_schedule",
    "join_schedules",
    "scale_schedule",
]


# ------------------------------------------------------------------------------------------------------------
# Argument checks, shared with optimlab.lr_scheduler. Each returns the value (copied if it is an array) or
# raises an error that names the argument and the value.


_describe = describe


def _is_real(value) -> bool:
    return number_error("", value, array=False, finite=False, numpy_ints=True) is None


def _int(name: str, value, minimum: int) -> int:
    """An integer (not a bool, not a float) in [minimum, 2^53] (exact in a float64: k/T never overflows)."""
    return check_int(name, value, minimum)


def _real(name: str, value, low=None, high=None, low_open=False, high_open=False, array=True):
    """A finite real number (or, if ``array``, a numpy array of them) within the given bounds."""
    error = number_error(name, value, array=array, finite=False, numpy_ints=True)  # converted to float64 below
    if error is not None:
        raise error
    if isinstance(value, np.ndarray):
        with np.errstate(over="ignore"):
            values = np.array(value, dtype=np.float64)
    else:
        values = float(value)
    v = np.asarray(values)
    ok = np.isfinite(v)
    if low is not None:
        ok &= (v > low) if low_open else (v >= low)
    if high is not None:
        ok &= (v < high) if high_open else (v <= high)
    if not np.all(ok):
        lo = "" if low is None else ("(" if low_open else "[") + f"{low:g}"
        hi = "" if high is None else f"{high:g}" + (")" if high_open else "]")
        where = (f" in {lo}, {hi}" if low is not None and high is not None
                 else f" {'>' if low_open else '>='} {low:g}" if low is not None
                 else f" {'<' if high_open else '<='} {high:g}" if high is not None else "")
        raise ValueError(f"{name} must be finite{where}, got {_describe(value)}")
    return values


def _lr(name: str, value):
    """A learning-rate-like value: finite and >= 0, a number or an array (a sweep)."""
    return _real(name, value, low=0.0)


def _choice(name: str, value, choices):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def _milestones(name: str, value, strict: bool, minimum: int) -> list[int]:
    """A list of integers >= minimum, sorted (strictly increasing if ``strict``)."""
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a list of integers, got {value!r}")
    try:
        items = list(value)
    except TypeError:
        raise TypeError(f"{name} must be a list of integers, got {value!r}") from None
    for i, m in enumerate(items):
        _int(f"{name}[{i}]", m, minimum)
    items = [int(m) for m in items]
    for a, b in zip(items, items[1:]):
        if b < a or (strict and b == a):
            order = "strictly increasing" if strict else "sorted (non-decreasing)"
            raise ValueError(f"{name} must be {order}, got {value!r}")
    return items


def _steps(step) -> np.ndarray:
    """The steps as a float64 array (0-d for a scalar); finite and >= 0."""
    if _is_real(step):
        k = np.asarray(float(step))
    elif isinstance(step, (int, np.floating)) and not isinstance(step, bool):
        raise number_error("step", step, array=False)  # beyond float64's range
    elif isinstance(step, (np.ndarray, list, tuple)):
        k = np.asarray(step)
        if k.dtype.kind not in "fiu" or k.dtype == np.bool_:
            raise TypeError(f"step must be a number or an array of numbers, got {_describe(step)}")
        k = k.astype(np.float64)
    else:
        raise TypeError(f"step must be a number or an array of numbers, got {step!r}")
    bad = ~(np.isfinite(k) & (k >= 0))
    if np.any(bad):
        first = k[bad].ravel()[0] if k.ndim else k
        raise ValueError(f"step must be finite and >= 0, got {float(first)!r}")
    return k


# ------------------------------------------------------------------------------------------------------------
# The Schedule object


class Schedule:
    """A learning-rate schedule: ``schedule(k)`` evaluates ``formula(k, **params)`` on checked steps.

    Build one with a factory (:func:`cosine_schedule`, ...). ``schedule(k)`` accepts an int, a float or an
    array of steps (finite, ``>= 0``) and returns a float for a scalar step with scalar arguments, else an
    array of the broadcast shape; ``schedule(k)[i]`` is exactly ``schedule(k[i])``. ``factor * schedule``
    scales it (a number, an array, or another schedule).
    """

    def __init__(self, name: str, formula, **params):
        self.name = name
        self.formula = formula
        self.params = params

    def __call__(self, step):
        k = _steps(step)
        # A scalar step is evaluated as a 1-element array, so that it goes through the same numpy loops as an
        # array of steps (numpy's scalar and array paths of pow/exp can differ in the last bit).
        out = np.asarray(self.formula(k.reshape(1) if k.ndim == 0 else k, **self.params), dtype=np.float64)
        if k.ndim == 0 and out.shape == (1,):
            return float(out[0])
        return out

    def __mul__(self, factor):
        return scale_schedule(self, factor)

    __rmul__ = __mul__

    def __repr__(self):
        args = ", ".join(f"{key}={value!r}" for key, value in self.params.items())
        return f"{self.name}({args})"


# ------------------------------------------------------------------------------------------------------------
# Shared formulas (the bound schedulers use these too)


def _cosine_between(lr, eta_min, t, T):
    """eta_min + (lr − eta_min)·(1 + cos(π t / T))/2: from lr at t = 0 to eta_min
    at t = T."""
    return eta_min + (lr - eta_min) * (1 + np.cos(np.pi * t / T)) / 2


def _anneal(strategy: str, start, end, pct):
    """One-cycle interpolation from ``start`` (pct = 0) to ``end`` (pct = 1), with torch's operation order."""
    if strategy == "cos":
        return end + (start - end) / 2.0 * (np.cos(np.pi * pct) + 1)
    return (end - start) * pct + start


def _restart_position(k, T_0: int, T_mult: int):
    """(T_cur, T_i) of SGDR after k steps: where k sits in its cycle, and that cycle's length.

    Cycles have lengths T_0, T_0·m, T_0·m², ...; cycle n starts at T_0(mⁿ − 1)/(m − 1). The logarithm gives n,
    then integer-exact checks correct it by one where rounding put it on the wrong side of a boundary (torch's
    ``step(epoch)`` skips that correction, see :func:`cosine_restarts_schedule`).
    """
    if T_mult == 1:
        return np.mod(k, T_0), np.full_like(k, float(T_0))
    m = float(T_mult)
    n = np.floor(np.log(k / T_0 * (m - 1) + 1) / np.log(m))

    def start(n):
        return T_0 * (m**n - 1) / (m - 1)

    n = np.where(start(n) > k, n - 1, n)
    n = np.where(start(n + 1) <= k, n + 1, n)
    return k - start(n), T_0 * m**n


def _cyclic_position(k, step_size_up, step_size_down):
    """(cycle, s) of a cyclic schedule: the 1-based cycle number and the height s ∈ [0, 1] within it."""
    total = step_size_up + step_size_down
    ratio = step_size_up / total
    cycle = np.floor(1 + k / total)
    x = 1.0 + k / total - cycle
    s = np.where(x <= ratio, x / ratio, (x - 1) / (ratio - 1))
    return cycle, s


def _cyclic_scale(mode, gamma, scale_fn, scale_mode, cycle, k):
    """The amplitude factor f of a cyclic schedule at cycle ``cycle`` / step ``k``."""
    if scale_fn is not None:
        x = cycle if scale_mode == "cycle" else k
        if np.ndim(x):
            return np.vectorize(scale_fn, otypes=[np.float64])(x)
        x = float(x)
        return scale_fn(int(x) if x.is_integer() else x)  # torch passes an int cycle / step
    if mode == "triangular":
        return 1.0
    if mode == "triangular2":
        return 1 / (2.0 ** (cycle - 1))
    return gamma**k


def _one_cycle_phases(total_steps: int, pct_start: float, three_phase: bool):
    """torch's one-cycle phases: ``(end_step, lr_from, lr_to, momentum_from, momentum_to)``.

    Values are names: ``"initial"`` = max_lr/div_factor, ``"max"``, ``"min"`` = initial/final_div_factor,
    ``"max_m"``/``"base_m"`` the momenta. A phase runs from the previous end (0 for the first) to its end.
    """
    up_end = float(pct_start * total_steps) - 1
    if three_phase:
        return [(up_end, "initial", "max", "max_m", "base_m"),
                (float(2 * pct_start * total_steps) - 2, "max", "initial", "base_m", "max_m"),
                (total_steps - 1, "initial", "min", "max_m", "max_m")]
    return [(up_end, "initial", "max", "max_m", "base_m"),
            (total_steps - 1, "max", "min", "base_m", "max_m")]


def _check_one_cycle(total_steps, pct_start, anneal_strategy, three_phase):
    """Check one-cycle's shape arguments; return (total_steps, pct_start, strategies per phase, phases)."""
    total_steps = _int("total_steps", total_steps, 1)
    pct_start = _real("pct_start", pct_start, 0.0, 1.0, low_open=True, high_open=True, array=False)
    if not isinstance(three_phase, (bool, np.bool_)):
        raise TypeError(f"three_phase must be True or False, got {three_phase!r}")
    phases = _one_cycle_phases(total_steps, pct_start, bool(three_phase))
    if isinstance(anneal_strategy, (tuple, list)):
        if len(anneal_strategy) != len(phases):
            raise ValueError(f"anneal_strategy must name one strategy per phase ({len(phases)}), "
                             f"got {anneal_strategy!r}")
        strategies = tuple(_choice(f"anneal_strategy[{i}]", s, ("cos", "linear"))
                           for i, s in enumerate(anneal_strategy))
    else:
        strategies = (_choice("anneal_strategy", anneal_strategy, ("cos", "linear")),) * len(phases)
    start = 0.0
    for end, *_ in phases:
        if end == start:
            # torch divides by this phase's length (0) and raises ZeroDivisionError when a step lands in it.
            raise ValueError(f"pct_start={pct_start!r} with total_steps={total_steps!r} gives a one-cycle "
                             f"phase of zero length (it ends at step {end:g}, where it starts)")
        start = end
    return total_steps, pct_start, strategies, phases


def _one_cycle_locate(k, phases):
    """(phase index, pct within the phase) for steps k, with torch's rule: the first phase with k <= end."""
    ends = np.array([end for end, *_ in phases])
    idx = np.minimum(np.searchsorted(ends, k, side="left"), len(phases) - 1)
    starts = np.concatenate([[0.0], ends[:-1]])
    return idx, (k - starts[idx]) / (ends[idx] - starts[idx])


def _one_cycle_value(k, total_steps, phases, strategies, values, slot):
    """Evaluate the one-cycle curve of ``values`` (names → numbers) at steps k (slot 1: lr, 3: momentum)."""
    if np.any(k > total_steps):
        raise ValueError(f"step must be <= total_steps={total_steps} (one-cycle is defined up to it), "
                         f"got {float(np.max(k))!r}")
    idx, pct = _one_cycle_locate(k, phases)
    out = 0.0
    for i, phase in enumerate(phases):
        piece = _anneal(strategies[i], values[phase[slot]], values[phase[slot + 1]], pct)
        out = np.where(idx == i, piece, out)
    return out


# ------------------------------------------------------------------------------------------------------------
# Formulas: one small function each, in the notation of the schedules chapter (k: steps taken)


def _constant(k, lr, factor, total_iters):
    return lr * np.where(k < total_iters, factor, 1.0)


def _step(k, lr, step_size, gamma):
    return lr * gamma ** np.floor_divide(k, step_size)


def _multistep(k, lr, milestones, gamma):
    return lr * gamma ** np.searchsorted(np.asarray(milestones, dtype=np.float64), k, side="right")


def _exponential(k, lr, gamma):
    return lr * gamma**k


def _cosine(k, lr, T_max, eta_min):
    return _cosine_between(lr, eta_min, k, T_max)


def _cosine_restarts(k, lr, T_0, T_mult, eta_min):
    T_cur, T_i = _restart_position(k, T_0, T_mult)
    return _cosine_between(lr, eta_min, T_cur, T_i)


def _linear(k, lr, start_factor, end_factor, total_iters):
    return lr * (start_factor + (end_factor - start_factor) * np.minimum(k, total_iters) / total_iters)


def _warmup_cosine(k, lr, warmup_steps, total_steps, eta_min, start_factor):
    warm = lr * (start_factor + (1 - start_factor) * k / max(warmup_steps, 1))
    decay_steps = total_steps - warmup_steps
    cos = _cosine_between(lr, eta_min, np.clip(k - warmup_steps, 0, decay_steps), decay_steps)
    return np.where(k < warmup_steps, warm, cos)


def _polynomial(k, lr, total_iters, power, end_lr):
    return (lr - end_lr) * (1.0 - np.minimum(k, total_iters) / total_iters) ** power + end_lr


def _one_cycle(k, max_lr, total_steps, pct_start, strategies, phases, div_factor, final_div_factor):
    initial = max_lr / div_factor
    values = {"initial": initial, "max": max_lr, "min": initial / final_div_factor}
    return _one_cycle_value(k, total_steps, phases, strategies, values, slot=1)


def _one_cycle_momentum(k, total_steps, pct_start, strategies, phases, base_momentum, max_momentum):
    values = {"base_m": base_momentum, "max_m": max_momentum}
    return _one_cycle_value(k, total_steps, phases, strategies, values, slot=3)


def _wsd(k, lr, warmup_steps, stable_steps, decay_steps, decay_type, min_lr_ratio):
    decay_start = warmup_steps + stable_steps
    p = np.clip((k - decay_start) / decay_steps, 0.0, 1.0)
    if decay_type == "linear":
        h = 1.0 - p
    elif decay_type == "cosine":
        h = 0.5 * (1.0 + np.cos(np.pi * p))
    else:  # "1-sqrt"
        h = 1.0 - np.sqrt(p)
    f = np.where(k < decay_start, 1.0, min_lr_ratio + (1.0 - min_lr_ratio) * h)
    if warmup_steps:
        f = np.where(k < warmup_steps, k / warmup_steps, f)
    return lr * f


def _cyclic(k, base_lr, max_lr, step_size_up, step_size_down, mode, gamma, scale_fn, scale_mode):
    cycle, s = _cyclic_position(k, step_size_up, step_size_down)
    f = _cyclic_scale(mode, gamma, scale_fn, scale_mode, cycle, k)
    return base_lr + (max_lr - base_lr) * s * f


def _joined(k, schedules, milestones):
    idx = np.searchsorted(np.asarray(milestones, dtype=np.float64), k, side="right")
    starts = np.asarray([0, *milestones], dtype=np.float64)[idx]
    out = 0.0
    for i, schedule in enumerate(schedules):
        mine = idx == i
        # Steps outside this schedule's stretch are evaluated at its step 0 (always valid) and discarded.
        out = np.where(mine, schedule(np.where(mine, k - starts, 0.0)), out)
    return out


def _scaled(k, schedule, factor):
    return (factor(k) if isinstance(factor, Schedule) else factor) * schedule(k)


# ------------------------------------------------------------------------------------------------------------
# Factories


def constant_schedule(lr, factor=1.0, total_iters=0) -> Schedule:
    r"""Constant learning rate, optionally lowered for the first steps (torch's ConstantLR closed form).

    .. math:: \eta_k = \eta\,\phi \ \text{ for } k < T, \qquad \eta_k = \eta \ \text{ for } k \ge T

    Args:
      lr: the learning rate η.
      factor: φ ∈ [0, 1], the multiplier for the first ``total_iters`` steps.
      total_iters: T >= 0, how many steps use ``lr * factor`` (0: a plain constant).
    """
    return Schedule("constant_schedule", _constant, lr=_lr("lr", lr),
                    factor=_real("factor", factor, 0.0, 1.0), total_iters=_int("total_iters", total_iters, 0))


def step_schedule(lr, step_size, gamma=0.1) -> Schedule:
    r"""Step decay: multiply by γ every ``step_size`` steps (StepLR's closed form; the outline's step decay).

    .. math:: \eta_k = \eta\,\gamma^{\lfloor k / s \rfloor}

    Args:
      lr: the initial learning rate η.
      step_size: s, a positive integer.
      gamma: γ > 0, the decay per period (> 1 grows the rate).
    """
    return Schedule("step_schedule", _step, lr=_lr("lr", lr), step_size=_int("step_size", step_size, 1),
                    gamma=_real("gamma", gamma, low=0.0, low_open=True))


def multistep_schedule(lr, milestones, gamma=0.1) -> Schedule:
    r"""Multiply by γ at each milestone (MultiStepLR's closed form).

    .. math:: \eta_k = \eta\,\gamma^{\#\{m_i \le k\}}

    Args:
      lr: the initial learning rate η.
      milestones: sorted non-negative integers; a repeated milestone applies γ once per repetition.
      gamma: γ > 0.
    """
    return Schedule("multistep_schedule", _multistep, lr=_lr("lr", lr),
                    milestones=tuple(_milestones("milestones", milestones, strict=False, minimum=0)),
                    gamma=_real("gamma", gamma, low=0.0, low_open=True))


def exponential_schedule(lr, gamma) -> Schedule:
    r"""Exponential decay (ExponentialLR's closed form; the outline's exponential decay).

    .. math:: \eta_k = \eta\,\gamma^{k}

    Args:
      lr: the initial learning rate η.
      gamma: γ > 0 (γ > 1 is the exponential ramp of a learning-rate range test).
    """
    return Schedule("exponential_schedule", _exponential, lr=_lr("lr", lr),
                    gamma=_real("gamma", gamma, low=0.0, low_open=True))


def cosine_schedule(lr, T_max, eta_min=0.0) -> Schedule:
    r"""Cosine annealing from ``lr`` to ``eta_min`` over ``T_max`` steps (CosineAnnealingLR's closed form).

    .. math:: \eta_k = \eta_{\min} + (\eta - \eta_{\min})\,\frac{1 + \cos(\pi k / T)}{2}

    Like torch, it is not clamped: past ``T_max`` it climbs back, reaching ``lr`` again at ``2 T_max``
    (period ``2 T_max``). Use :func:`warmup_cosine_schedule` for a curve that stays at ``eta_min``.

    Args:
      lr: the initial (largest) learning rate η.
      T_max: T, a positive integer: the step at which the rate is ``eta_min``.
      eta_min: the floor η_min >= 0.
    """
    return Schedule("cosine_schedule", _cosine, lr=_lr("lr", lr), T_max=_int("T_max", T_max, 1),
                    eta_min=_lr("eta_min", eta_min))


def cosine_restarts_schedule(lr, T_0, T_mult=1, eta_min=0.0) -> Schedule:
    r"""Cosine annealing with warm restarts, SGDR (Loshchilov & Hutter 2016; CosineAnnealingWarmRestarts).

    .. math:: \eta_k = \eta_{\min} + (\eta - \eta_{\min})\,\frac{1 + \cos(\pi T_{cur} / T_i)}{2}

    where cycle i lasts :math:`T_i = T_0 T_{mult}^i` steps and :math:`T_{cur}` counts steps since the last
    restart. The rate jumps back to η exactly when the cosine would reach η_min, so η_min is never used.
    Restarts happen at k = T_0, T_0(1 + m), T_0(1 + m + m²), ...

    torch's ``step(epoch)`` finds the cycle with a floating logarithm that can land one cycle short at an
    exact boundary (T_0 = 1, T_mult = 3, epoch 121 gives η_min there, not η). This closed form corrects the
    logarithm with exact checks, so it agrees with stepping torch's scheduler one step at a time.

    Args:
      lr: the learning rate η at each restart.
      T_0: the first cycle's length, a positive integer.
      T_mult: the growth factor of cycle lengths, an integer >= 1.
      eta_min: the floor η_min >= 0.
    """
    return Schedule("cosine_restarts_schedule", _cosine_restarts, lr=_lr("lr", lr), T_0=_int("T_0", T_0, 1),
                    T_mult=_int("T_mult", T_mult, 1), eta_min=_lr("eta_min", eta_min))


def linear_schedule(lr, start_factor=1.0 / 3, end_factor=1.0, total_iters=5) -> Schedule:
    r"""Linear interpolation of the multiplier, then constant (LinearLR's closed form).

    .. math:: \eta_k = \eta\,\Big(s + (e - s)\,\frac{\min(k, T)}{T}\Big)

    Args:
      lr: the base learning rate η.
      start_factor: s ∈ [0, 1] (torch's LinearLR needs s > 0 because it divides by it).
      end_factor: e ∈ [0, 1].
      total_iters: T, a positive integer.
    """
    return Schedule("linear_schedule", _linear, lr=_lr("lr", lr),
                    start_factor=_real("start_factor", start_factor, 0.0, 1.0),
                    end_factor=_real("end_factor", end_factor, 0.0, 1.0),
                    total_iters=_int("total_iters", total_iters, 1))


def linear_warmup_schedule(lr, warmup_steps, start_factor=0.0) -> Schedule:
    r"""Linear warm-up from ``start_factor * lr`` to ``lr`` over ``warmup_steps`` steps, then constant.

    .. math:: \eta_k = \eta\,\Big(s + (1 - s)\,\frac{\min(k, W)}{W}\Big)

    With the default s = 0 the first update uses a zero learning rate (and an optimizer's moments and step
    count still advance): the price of counting as torch does.

    Args:
      lr: the target learning rate η.
      warmup_steps: W, a positive integer.
      start_factor: s ∈ [0, 1].
    """
    return Schedule("linear_warmup_schedule", _linear, lr=_lr("lr", lr),
                    start_factor=_real("start_factor", start_factor, 0.0, 1.0), end_factor=1.0,
                    total_iters=_int("warmup_steps", warmup_steps, 1))


def warmup_cosine_schedule(lr, warmup_steps, total_steps, eta_min=0.0, start_factor=0.0) -> Schedule:
    r"""Linear warm-up, then cosine decay to ``eta_min`` at ``total_steps`` (the outline's Transformer form).

    .. math::
        \eta_k = \eta\,\big(s + (1 - s)\,k / W\big) \ \ (k < W), \qquad
        \eta_k = \eta_{\min} + (\eta - \eta_{\min})\,
        \frac{1 + \cos\big(\pi \min(k - W, T - W) / (T - W)\big)}{2}

    It stays at η_min after T (unlike :func:`cosine_schedule`). Within [0, T] it equals SequentialLR of
    LinearLR(start_factor, total_iters=W) and CosineAnnealingLR(T_max=T − W) with milestone W.

    Args:
      lr: the peak learning rate η.
      warmup_steps: W >= 0 (0: no warm-up).
      total_steps: T > W, where the decay ends.
      eta_min: the floor η_min >= 0.
      start_factor: s ∈ [0, 1], the warm-up's starting multiplier.
    """
    warmup_steps = _int("warmup_steps", warmup_steps, 0)
    total_steps = _int("total_steps", total_steps, 1)
    if total_steps <= warmup_steps:
        raise ValueError(f"total_steps must be > warmup_steps={warmup_steps}, got {total_steps!r}")
    return Schedule("warmup_cosine_schedule", _warmup_cosine, lr=_lr("lr", lr), warmup_steps=warmup_steps,
                    total_steps=total_steps, eta_min=_lr("eta_min", eta_min),
                    start_factor=_real("start_factor", start_factor, 0.0, 1.0))


def polynomial_schedule(lr, total_iters=5, power=1.0, end_lr=0.0) -> Schedule:
    r"""Polynomial decay to ``end_lr`` at ``total_iters``, then constant (PolynomialLR's closed form).

    .. math:: \eta_k = (\eta - \eta_{end})\,\big(1 - \min(k, T)/T\big)^{p} + \eta_{end}

    torch's PolynomialLR has no ``end_lr``: it is the default 0 here.

    Args:
      lr: the initial learning rate η.
      total_iters: T, a positive integer.
      power: p >= 0.
      end_lr: η_end >= 0.
    """
    return Schedule("polynomial_schedule", _polynomial, lr=_lr("lr", lr),
                    total_iters=_int("total_iters", total_iters, 1), power=_real("power", power, low=0.0),
                    end_lr=_lr("end_lr", end_lr))


def one_cycle_schedule(max_lr, total_steps, pct_start=0.3, anneal_strategy="cos", div_factor=25.0,
                       final_div_factor=1e4, three_phase=False) -> Schedule:
    r"""The one-cycle policy (Smith 2018) exactly as torch's OneCycleLR computes the learning rate.

    The rate starts at :math:`\eta_0 = \eta_{\max}/\text{div\_factor}`, rises to η_max, then falls to
    :math:`\eta_0/\text{final\_div\_factor}`. With ``three_phase`` it first comes back down to η_0 and then
    anneals to the minimum. Phases end at steps pct·T − 1, (three-phase: 2·pct·T − 2), T − 1; within a phase
    running from a to b, with pct = (k − start)/(end − start),

    .. math::
        \text{cos: } b + (a - b)\,\frac{1 + \cos(\pi\,\text{pct})}{2}, \qquad
        \text{linear: } a + (b - a)\,\text{pct}.

    The strategy applies to every phase, the warm-up included, unless ``anneal_strategy`` is a tuple with one
    strategy per phase (the outline's form is ``("linear", "cos")``, see :func:`outline_one_cycle_schedule`).
    Defined for 0 <= k <= T: k = T (the value after torch's last ``step()``) extrapolates the last phase;
    larger steps raise, as torch does.

    Args:
      max_lr: the peak rate η_max.
      total_steps: T, a positive integer.
      pct_start: the fraction of steps spent rising, in (0, 1).
      anneal_strategy: ``"cos"`` or ``"linear"``, or a tuple with one of them per phase.
      div_factor: η_0 = η_max / div_factor (> 0).
      final_div_factor: the final rate is η_0 / final_div_factor (> 0).
      three_phase: use Smith's three phases (up, down to η_0, annihilation).
    """
    total_steps, pct_start, strategies, phases = _check_one_cycle(total_steps, pct_start, anneal_strategy,
                                                                  three_phase)
    return Schedule("one_cycle_schedule", _one_cycle, max_lr=_lr("max_lr", max_lr), total_steps=total_steps,
                    pct_start=pct_start, strategies=strategies, phases=phases,
                    div_factor=_real("div_factor", div_factor, low=0.0, low_open=True),
                    final_div_factor=_real("final_div_factor", final_div_factor, low=0.0, low_open=True))


def one_cycle_momentum_schedule(total_steps, pct_start=0.3, anneal_strategy="cos", three_phase=False,
                                base_momentum=0.85, max_momentum=0.95) -> Schedule:
    r"""The momentum (or Adam's β₁) that torch's OneCycleLR sets alongside :func:`one_cycle_schedule`.

    It moves inversely to the rate, over the same phases: max_momentum → base_momentum → max_momentum
    (three-phase: → max_momentum and stays there during the last phase).

    Args:
      total_steps, pct_start, anneal_strategy, three_phase: as in :func:`one_cycle_schedule`.
      base_momentum: the momentum at the peak rate, in [0, 1].
      max_momentum: the momentum at the lowest rates, in [0, 1].
    """
    total_steps, pct_start, strategies, phases = _check_one_cycle(total_steps, pct_start, anneal_strategy,
                                                                  three_phase)
    return Schedule("one_cycle_momentum_schedule", _one_cycle_momentum, total_steps=total_steps,
                    pct_start=pct_start, strategies=strategies, phases=phases,
                    base_momentum=_real("base_momentum", base_momentum, 0.0, 1.0),
                    max_momentum=_real("max_momentum", max_momentum, 0.0, 1.0))


def outline_one_cycle_schedule(max_lr, total_steps, pct_start=0.45, div_factor=25.0) -> Schedule:
    r"""The course outline's one-cycle: linear rise from η_min to η_max over the first 45%, cosine back down.

    η_min = η_max/div_factor at both ends. No library's default has this shape (torch anneals the rise with a
    cosine too, starts at 30% and ends 10⁴ times lower); it is :func:`one_cycle_schedule` with
    ``anneal_strategy=("linear", "cos")`` and ``final_div_factor=1``, phase ends as in torch.

    Args:
      max_lr: the peak rate η_max.
      total_steps: T, a positive integer.
      pct_start: the fraction of steps spent rising, in (0, 1).
      div_factor: η_min = η_max / div_factor (> 0).
    """
    schedule = one_cycle_schedule(max_lr, total_steps, pct_start=pct_start, anneal_strategy=("linear", "cos"),
                                  div_factor=div_factor, final_div_factor=1.0)
    schedule.name = "outline_one_cycle_schedule"
    return schedule


def wsd_schedule(lr, warmup_steps, stable_steps, decay_steps, decay_type="cosine",
                 min_lr_ratio=0.0) -> Schedule:
    r"""Warmup-stable-decay (WSD): linear warm-up, a long constant phase, a short decay to a floor.

    With W, S, D the phase lengths, r the floor ratio and p = (k − W − S)/D,

    .. math::
        f_k = k/W \ (k < W), \quad 1 \ (W \le k < W + S), \quad r + (1 - r)\,h(p) \ (W + S \le k < W + S + D),
        \quad r \ (k \ge W + S + D)

    and :math:`\eta_k = \eta f_k`, with h(p) = 1 − p (``"linear"``), ½(1 + cos πp) (``"cosine"``, the default
    of the HF ``get_wsd_schedule``), or 1 − √p (``"1-sqrt"``, Hägele et al. 2024). The warm-up starts from 0,
    so the first update uses a zero rate (HF instead starts the warm-up at r). MiniCPM (Hu et al. 2024), which
    introduced WSD, found a decay over ~10% of training enough.

    Args:
      lr: the peak learning rate η (1.0 gives the multiplier, as :class:`~optimlab.lr_scheduler.WSD` uses).
      warmup_steps: W >= 0.
      stable_steps: S >= 0.
      decay_steps: D >= 1.
      decay_type: ``"linear"``, ``"cosine"`` or ``"1-sqrt"``.
      min_lr_ratio: r ∈ [0, 1], the floor as a fraction of η.
    """
    return Schedule("wsd_schedule", _wsd, lr=_lr("lr", lr),
                    warmup_steps=_int("warmup_steps", warmup_steps, 0),
                    stable_steps=_int("stable_steps", stable_steps, 0),
                    decay_steps=_int("decay_steps", decay_steps, 1),
                    decay_type=_choice("decay_type", decay_type, ("linear", "cosine", "1-sqrt")),
                    min_lr_ratio=_real("min_lr_ratio", min_lr_ratio, 0.0, 1.0))


def _check_cyclic(step_size_up, step_size_down, mode, gamma, scale_fn, scale_mode):
    """Check a cyclic schedule's shape arguments; return them normalized (torch's rules for scale_mode)."""
    up = float(_real("step_size_up", step_size_up, low=0.0, low_open=True, array=False))
    down = up if step_size_down is None else float(
        _real("step_size_down", step_size_down, low=0.0, low_open=True, array=False))
    if scale_fn is None:
        mode = _choice("mode", mode, ("triangular", "triangular2", "exp_range"))
        scale_mode = "iterations" if mode == "exp_range" else "cycle"
    else:
        if not callable(scale_fn):
            raise TypeError(f"scale_fn must be callable or None, got {scale_fn!r}")
        scale_mode = _choice("scale_mode", scale_mode, ("cycle", "iterations"))
    gamma = _real("gamma", gamma, low=0.0, low_open=True)
    return up, down, mode, gamma, scale_fn, scale_mode


def cyclic_schedule(base_lr, max_lr, step_size_up=2000, step_size_down=None, mode="triangular", gamma=1.0,
                    scale_fn=None, scale_mode="cycle") -> Schedule:
    r"""Cyclical learning rates (Smith 2017), as torch's CyclicLR computes them.

    With u, d the half-cycle lengths, cycle c = ⌊1 + k/(u + d)⌋, x = 1 + k/(u + d) − c and r = u/(u + d),
    the height is s = x/r while x <= r, else (x − 1)/(r − 1), and

    .. math:: \eta_k = \eta_{base} + (\eta_{max} - \eta_{base})\, s\, f

    with f = 1 (``"triangular"``), 1/2^{c−1} (``"triangular2"``), γ^k (``"exp_range"``), or ``scale_fn`` of c
    (``scale_mode="cycle"``) or of k (``"iterations"``). CyclicLR's cycled momentum is this same formula from
    ``max_momentum`` to ``base_momentum``: ``cyclic_schedule(max_momentum, base_momentum, ...)``.

    Args:
      base_lr: the lower rate η_base (each cycle's start).
      max_lr: the upper rate η_max (reached when f = 1).
      step_size_up: u > 0, steps from base to max.
      step_size_down: d > 0, steps back down (default: u).
      mode: ``"triangular"``, ``"triangular2"`` or ``"exp_range"`` (ignored when ``scale_fn`` is given).
      gamma: γ > 0 for ``"exp_range"``.
      scale_fn: a custom f taking one number; ``scale_mode`` says whether it gets c or k.
      scale_mode: ``"cycle"`` or ``"iterations"`` (used only with ``scale_fn``).
    """
    up, down, mode, gamma, scale_fn, scale_mode = _check_cyclic(step_size_up, step_size_down, mode, gamma,
                                                                scale_fn, scale_mode)
    return Schedule("cyclic_schedule", _cyclic, base_lr=_lr("base_lr", base_lr), max_lr=_lr("max_lr", max_lr),
                    step_size_up=up, step_size_down=down, mode=mode, gamma=gamma, scale_fn=scale_fn,
                    scale_mode=scale_mode)


def join_schedules(schedules, milestones) -> Schedule:
    r"""One schedule after another: schedule i runs from milestone i − 1 on, counting its own steps from 0.

    .. math:: \eta_k = \text{schedule}_i(k - m_{i-1}) \quad \text{for } m_{i-1} \le k < m_i \ (m_{-1} = 0)

    This is what torch's SequentialLR does (it restarts each child at its own step 0 at its milestone).

    Args:
      schedules: a non-empty list of :class:`Schedule` (or any callable taking an array of steps).
      milestones: strictly increasing positive integers, one fewer than the schedules.
    """
    schedules = list(schedules) if isinstance(schedules, (list, tuple)) else schedules
    if not isinstance(schedules, list) or not schedules:
        raise ValueError(f"schedules must be a non-empty list of schedules, got {schedules!r}")
    for i, s in enumerate(schedules):
        if not callable(s):
            raise TypeError(f"schedules[{i}] must be a schedule (callable), got {s!r}")
    milestones = _milestones("milestones", milestones, strict=True, minimum=1)
    if len(milestones) != len(schedules) - 1:
        raise ValueError(f"milestones must have one entry fewer than schedules ({len(schedules) - 1}), "
                         f"got {milestones!r}")
    return Schedule("join_schedules", _joined, schedules=tuple(schedules), milestones=tuple(milestones))


def scale_schedule(schedule, factor) -> Schedule:
    r"""A schedule multiplied by a factor: :math:`\eta_k = c\,\text{schedule}(k)`, or by another schedule.

    ``factor`` is a number or a numpy array (finite), or another :class:`Schedule` (then the two multiply
    step by step, as torch's chained multiplicative schedulers do). ``factor * schedule`` is the same.
    """
    if not callable(schedule):
        raise TypeError(f"schedule must be a schedule (callable), got {schedule!r}")
    if not isinstance(factor, Schedule):
        factor = _real("factor", factor)
    return Schedule("scale_schedule", _scaled, schedule=schedule, factor=factor)
