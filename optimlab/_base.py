"""The machinery every optimizer shares: parameter groups, state, step counting, validation, flat buffers.

An optimizer in optimlab is two things: a table of hyperparameters (names, defaults, checks) and one short
*update rule*, a function that updates a parameter array in place from its gradient and its state arrays.
Everything else lives here, once:

* **Parameter groups** as in ``torch.optim``: ``params`` is a list of arrays or a list of dicts, each dict a group
  with its own hyperparameters; ``opt.param_groups`` is that list of dicts, read at every step, so a scheduler
  changes a learning rate by assigning ``group["lr"]``.
* **Validation** before anything changes: a step that raises leaves parameters and state exactly as they were.
* **Units of work.** A group whose parameters are views tiling one contiguous buffer (see :func:`flat_arrays`) is
  updated as one flat array, in cache-sized chunks, on several threads when it is large. Otherwise each
  parameter is its own unit. Hyperparameters may be numpy arrays that broadcast against each parameter, so a
  sweep of B runs is one optimizer over a (B, d) array.
* **State** per parameter, as torch keeps it (``step`` and the named arrays), exported by :meth:`state_dict`.
"""

from __future__ import annotations

import math
import numbers
import os

import numpy as np

__all__ = ["Optimizer", "flat_arrays", "as_flat", "flatten_state_dict", "unflatten_state_dict"]

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# Keys a parameter group may hold besides "params" and the optimizer's hyperparameters: a name, the scheduler's
# initial_lr, and the base of the paper-style decoupled decay (see AdamW).
EXTRA_GROUP_KEYS = ("params", "name", "initial_lr", "decay_base_lr")

# Elements per chunk of a large update. Chunks let two threads share the work and keep a chunk's arrays in cache
# between the passes of the rule; smaller chunks cost more Python per element. 2^18 was fastest on these 2-core
# machines for 1e7 float32 elements (14.5 ms a step, against 19 ms at 2^16 and 25 ms unchunked on one thread).
CHUNK = 1 << 18
# From this many elements on, an update is split into chunks spread over threads (numpy releases the GIL inside
# its loops); below it, thread hand-offs cost more than they save.
THREAD_MIN = 1 << 20
_pool = None  # a ThreadPoolExecutor, made on first use (concurrent.futures costs import time)


def _threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def _executor():
    global _pool
    if _pool is None:
        from concurrent.futures import ThreadPoolExecutor

        _pool = ThreadPoolExecutor(max_workers=_threads(), thread_name_prefix="optimlab")
    return _pool


# ----------------------------------------------------------------------------------------------------------------
# Flat buffers


def flat_arrays(shapes, dtype=np.float64):
    """One zeroed contiguous buffer and a list of views into it, one per shape.

    Parameters created this way (or by :func:`as_flat`) are updated by one vectorized pass over the buffer
    instead of a Python loop over arrays.

    >>> flat, (w, b) = flat_arrays([(3, 2), (2,)])
    >>> flat.shape, w.shape, b.shape
    ((8,), (3, 2), (2,))
    """
    shapes = [tuple(int(n) for n in np.atleast_1d(s)) if np.ndim(s) else (int(s),) for s in shapes]
    sizes = [math.prod(s) for s in shapes]
    flat = np.zeros(sum(sizes), dtype=dtype)
    views, start = [], 0
    for shape, size in zip(shapes, sizes):
        views.append(flat[start:start + size].reshape(shape))
        start += size
    return flat, views


def as_flat(arrays, dtype=None):
    """Copy ``arrays`` into one contiguous buffer; returns ``(flat, views)`` with views holding the values."""
    arrays = [np.asarray(a) for a in arrays]
    dtype = np.result_type(*arrays) if dtype is None else np.dtype(dtype)
    flat, views = flat_arrays([a.shape for a in arrays], dtype)
    for view, a in zip(views, arrays):
        view[...] = a
    return flat, views


def _root(a: np.ndarray) -> np.ndarray:
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def _address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def _span(arrays) -> np.ndarray | None:
    """A 1-D view covering ``arrays`` if they are C-contiguous views that tile one buffer in order, else None."""
    first = arrays[0]
    root = _root(first)
    if not root.flags.c_contiguous or root.dtype != first.dtype:
        return None
    start = position = _address(first)
    for a in arrays:
        if a.dtype != first.dtype or not a.flags.c_contiguous or _address(a) != position or _root(a) is not root:
            return None
        position += a.nbytes
    offset = (start - _address(root)) // first.itemsize
    return root.reshape(-1)[offset:offset + (position - start) // first.itemsize]


# ----------------------------------------------------------------------------------------------------------------
# Hyperparameter checks: each returns None when the value is fine, else what it must be.


def _values(x):
    return np.asarray(x, dtype=np.float64) if not isinstance(x, numbers.Real) else x


def nonnegative(x):
    v = _values(x)
    return None if np.all(v >= 0) else "must be >= 0 (and not NaN)"


def positive(x):
    v = _values(x)
    return None if np.all(v > 0) else "must be > 0 (and not NaN)"


def finite(x):
    v = _values(x)
    return None if np.all(np.isfinite(v)) else "must be finite"


def unit_interval(x):
    v = _values(x)
    return None if np.all((v >= 0) & (v < 1)) else "must be in [0, 1)"


def closed_unit_interval(x):
    v = _values(x)
    return None if np.all((v >= 0) & (v <= 1)) else "must be in [0, 1]"


def boolean(x):
    return None if isinstance(x, (bool, np.bool_)) else "must be True or False"


def betas_pair(x):
    if not isinstance(x, (tuple, list)) or len(x) != 2:
        return "must be a pair (beta1, beta2)"
    for i, b in enumerate(x):
        if not _is_number_or_array(b):
            return f"[{i}] must be a number or an array"
        if unit_interval(b):
            return f"[{i}] must be in [0, 1)"
    return None


NUMERIC_CHECKS = (nonnegative, positive, finite, unit_interval, closed_unit_interval)


def one_of(*choices):
    def check(x):
        return None if x in choices else f"must be one of {', '.join(map(repr, choices))}"
    return check


def _is_number_or_array(x) -> bool:
    if isinstance(x, (bool, np.bool_)):
        return False
    if isinstance(x, numbers.Real):
        return True
    return isinstance(x, np.ndarray) and x.dtype.kind in "fiu"


def _describe(value) -> str:
    if isinstance(value, np.ndarray) and value.size > 6:
        bad = value
        return f"an array of shape {value.shape} (first values {np.array2string(bad.ravel()[:4])} ...)"
    return repr(value)


def _is_array_hyper(value) -> bool:
    return isinstance(value, np.ndarray) and value.ndim > 0


# ----------------------------------------------------------------------------------------------------------------
# Units of work


class _Unit:
    """Parameters updated together: one flat span of a group, or a single parameter."""

    __slots__ = ("theta", "indices", "views", "state", "scratch", "flat", "grad_buffer", "grad_span", "hyper",
                 "hyper_source", "state_source")

    def __init__(self, theta, indices, views, flat):
        self.theta = theta          # the array the update rule works on
        self.indices = indices      # the parameter indices (in optimizer order) it covers
        self.views = views          # per parameter: a view of `theta` with the parameter's shape
        self.flat = flat            # True when several parameters are updated as one 1-D buffer
        self.state = {}             # "step" (int), scalar state, and state arrays shaped like theta
        self.scratch = None         # preallocated temporaries, shaped like theta or like one chunk
        self.grad_buffer = None     # a flat unit's gradients gathered into one array, when they are separate
        self.grad_span = None       # (the gradient arrays of the last step, the flat span they tile or None)
        self.hyper = None           # array hyperparameters expanded to theta's shape ...
        self.hyper_source = None    # ... for the group values recorded in this dict (see Optimizer._remember)
        self.state_source = None    # the recorded group values for which the state arrays were last completed


class Optimizer:
    """Base class: parameter groups, state, validation, flat buffers, chunking.

    Subclasses set four class attributes and write one update rule:

    * ``hyper``: ``{name: (default, check)}`` in torch's order and with torch's defaults;
    * ``state_arrays(group)``: the names of the per-parameter state arrays for a group's options;
    * ``decay``: how ``weight_decay`` acts: ``"l2"`` (added to the gradient, torch's SGD/Adam/...),
      ``"decoupled"`` (θ ← θ(1 − ηλ) before the rule, AdamW/Lion/Sophia), or a group key whose truth picks
      decoupled (``"decoupled_weight_decay"``), or None when the rule applies it itself (Schedule-Free AdamW);
    * ``rule(theta, g, state, scratch, t, h)``: the arithmetic, in place, on arrays of one shape.
      ``h`` is the group (its hyperparameters by name), ``t`` the step count after increment (first step: 1),
      ``scratch`` two temporaries shaped like ``theta``. It must be elementwise: it may be called on chunks.

    A rule that is not elementwise (a matrix preconditioner, Newton–Schulz) sets ``elementwise = False``: each
    parameter is then its own unit, never flattened with others nor chunked; its state arrays may have other
    shapes than the parameter's (``state_shape``), and ``decay = None`` leaves weight decay to the rule.
    """

    hyper: dict = {}
    decay: str | None = "l2"
    scratch_count = 2
    elementwise = True

    def __init__(self, params, **hyperparameters):
        name = type(self).__name__
        self.defaults = {}
        for key, (default, _) in self.hyper.items():
            self.defaults[key] = hyperparameters.pop(key, default)
        if hyperparameters:
            unknown = ", ".join(sorted(hyperparameters))
            raise TypeError(f"{name}() got unexpected hyperparameter(s): {unknown}")
        self._check_hyper(self.defaults, where="")
        groups = self._parse_params(params)
        self.param_groups: list[dict] = []
        self._units: list[list[_Unit]] = []
        self._checked: list[dict] = []
        self._array_hyper: list[bool] = []
        self._array_copies: dict[int, list] = {}
        self._nparams = 0
        for group in groups:
            self.add_param_group(group)

    # -- construction ------------------------------------------------------------------------------------------

    def _parse_params(self, params):
        name = type(self).__name__
        if isinstance(params, np.ndarray):
            raise TypeError(f"params must be a list of arrays or of parameter-group dicts, got a single array "
                            f"of shape {params.shape}; wrap it in a list: {name}([theta], ...)")
        try:
            params = list(params)
        except TypeError:
            raise TypeError(f"params must be a list of arrays or of dicts, got {type(params).__name__}") from None
        if not params:
            raise ValueError("params must not be empty: the optimizer got an empty parameter list")
        if all(isinstance(p, dict) for p in params):
            return params
        if any(isinstance(p, dict) for p in params):
            raise TypeError("params must be all arrays or all parameter-group dicts, not a mix")
        return [{"params": params}]

    def add_param_group(self, group: dict):
        """Add a parameter group (a dict with ``"params"`` and any hyperparameters to override)."""
        gi = len(self.param_groups)
        where = f"param_groups[{gi}]"
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"{where} must be a dict with a 'params' key, got {group!r}")
        params = group["params"]
        if isinstance(params, np.ndarray):
            params = [params]
        params = list(params)
        if not params:
            raise ValueError(f"{where}['params'] must not be empty")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for i, p in enumerate(params):
            label = f"{where}['params'][{i}]" if gi or len(self.param_groups) else f"params[{i}]"
            if not isinstance(p, np.ndarray):
                raise TypeError(f"{label} must be a numpy array, got {type(p).__name__}")
            if p.dtype not in FLOAT_DTYPES:
                raise TypeError(f"{label} must be a float32 or float64 array, got dtype {p.dtype}")
            if not p.flags.writeable:
                raise ValueError(f"{label} must be writeable: the optimizer updates it in place")
            if id(p) in seen:
                raise ValueError(f"{label} appears in more than one parameter group")
            seen.add(id(p))
        full = {**self.defaults, **{k: v for k, v in group.items() if k != "params"}}
        full["params"] = params
        unknown = [k for k in group if k not in self.hyper and k not in EXTRA_GROUP_KEYS]
        if unknown:
            raise TypeError(f"{where} has unknown hyperparameter(s) {unknown} for {type(self).__name__}")
        self._check_hyper(full, where=where, params=params)
        # As torch does, the group kept is the caller's own dict, completed with the defaults, so that
        # group["lr"] = ... on the caller's dict reaches the optimizer (the checks above ran on a copy).
        group.update(full)
        full = group
        self._prepare_group(full)
        first = self._nparams
        self.param_groups.append(full)
        self._checked.append(None)
        self._array_hyper.append(None)
        self._remember(gi, full)
        self._units.append(self._make_units(full, first))
        self._nparams += len(params)

    def _prepare_group(self, group):
        """Hook for subclasses: adjust a new group (e.g. record its initial learning rate)."""

    def _make_units(self, group, first):
        params = group["params"]
        indices = list(range(first, first + len(params)))
        span = _span(params) if len(params) > 1 and self.elementwise else None
        if span is not None:
            units = [_Unit(span, indices, list(params), flat=True)]
        else:
            units = [_Unit(p, [i], [p], flat=False) for p, i in zip(params, indices)]
        for unit in units:
            self._init_state(unit, group)
        return units

    def _init_state(self, unit, group):
        unit.state = {"step": 0}
        for key in self._arrays_of(group, unit.theta.shape):
            unit.state[key] = np.zeros(self.state_shape(key, unit.theta.shape), unit.theta.dtype)
        self._init_scalar_state(unit.state, group)

    def _init_scalar_state(self, state, group):
        """Hook: scalar state beyond the step counter (NAdam's running product of momentum coefficients)."""

    def state_arrays(self, group) -> list[str]:
        return []

    def state_shape(self, key, shape) -> tuple | None:
        """The shape of state array ``key`` for a parameter of ``shape`` (None: not kept for this parameter).
        Elementwise rules keep every state array shaped like the parameter."""
        return shape

    def _arrays_of(self, group, shape) -> list[str]:
        """The state arrays a parameter of ``shape`` keeps under ``group``'s options."""
        return [key for key in self.state_arrays(group) if self.state_shape(key, shape) is not None]

    # -- validation --------------------------------------------------------------------------------------------

    def _check_hyper(self, group, where, params=None):
        prefix = f"{where}['{{}}']" if where else "{}"
        for key, (_, check) in self.hyper.items():
            value = group[key]
            if check in NUMERIC_CHECKS and not _is_number_or_array(value):
                raise TypeError(f"{prefix.format(key)} must be a number or a numpy array, got {value!r}")
            problem = check(value)
            if problem:
                if problem.startswith("["):
                    raise ValueError(f"{prefix.format(key)}{problem}, got {_describe(value)}")
                raise ValueError(f"{prefix.format(key)} {problem}, got {_describe(value)}")
            if params is not None:
                for sub in (value if key == "betas" else (value,)):
                    if _is_array_hyper(sub):
                        for i, p in enumerate(params):
                            if _broadcast_shape(np.shape(sub), p.shape) != p.shape:
                                raise ValueError(
                                    f"{prefix.format(key)} of shape {np.shape(sub)} does not broadcast against "
                                    f"parameter {i} of shape {p.shape}")
        self._check_group(group, prefix)

    def _check_group(self, group, prefix):
        """Hook: checks that involve several hyperparameters (e.g. nesterov needs momentum)."""

    def _revalidate(self):
        for gi, group in enumerate(self.param_groups):
            for key, value in self._checked[gi].items():
                if group.get(key) is not value:
                    break
            else:
                copies = self._array_copies[gi]
                if not copies or all(np.array_equal(a, copy) for a, copy in copies):
                    continue  # every hyperparameter is the very object checked before, arrays unchanged
            missing = [k for k in self.hyper if k not in group]
            if missing:
                raise KeyError(f"param_groups[{gi}] lacks hyperparameter(s) {missing}")
            self._check_hyper(group, where=f"param_groups[{gi}]", params=group["params"])
            self._remember(gi, group)

    def _remember(self, gi, group):
        """Record the hyperparameter objects just validated (a step re-checks only what was reassigned)."""
        self._checked[gi] = {k: group[k] for k in self.hyper}
        self._array_hyper[gi] = _has_array_hyper(group, self.hyper)
        # copies of array values, so that an array changed in place (group["lr"] *= 0.5) is re-checked and used
        self._array_copies[gi] = [(a, a.copy()) for a in _hyper_arrays(group, self.hyper)]

    def _check_grads(self, grads, name="grads"):
        if isinstance(grads, np.ndarray) or not isinstance(grads, (list, tuple)):
            raise TypeError(f"{name} must be a list of arrays, one per parameter, got {type(grads).__name__}")
        if len(grads) != self._nparams:
            raise ValueError(f"{name} must have one entry per parameter: expected {self._nparams}, "
                             f"got {len(grads)}")
        i = 0
        for group in self.param_groups:
            for p in group["params"]:
                g = grads[i]
                if g is not None and (type(g) is not np.ndarray or g.shape != p.shape or g.dtype != p.dtype):
                    if not isinstance(g, np.ndarray):
                        raise TypeError(f"{name}[{i}] must be a numpy array or None, got {type(g).__name__}")
                    if g.shape != p.shape:
                        raise ValueError(f"{name}[{i}] has shape {g.shape}, but parameter {i} has shape {p.shape}")
                    if g.dtype != p.dtype:
                        raise TypeError(f"{name}[{i}] has dtype {g.dtype}, but parameter {i} has dtype {p.dtype}")
                i += 1

    # -- the step ----------------------------------------------------------------------------------------------

    def step(self, grads):
        """One update of every parameter from ``grads`` (a list in parameter order; None skips a parameter)."""
        self._check_grads(grads)
        self._revalidate()
        self._step(grads)

    def _step(self, grads, **extra):
        for gi, unit, g in self._units_with_grads(grads):
            self._update(unit, self.param_groups[gi], g, extra, self._checked[gi], self._array_hyper[gi])

    def _units_with_grads(self, grads=None):
        """(group index, unit, its gradient) for every unit a step updates: a flat group as one unit when every
        parameter has a gradient and no hyperparameter is an array, else one unit per parameter, skipping those
        whose gradient is None. With ``grads=None``: every unit, with None for the gradient."""
        first = 0
        for gi, (group, units) in enumerate(zip(self.param_groups, self._units)):
            n = len(group["params"])
            group_grads = [None] * n if grads is None else grads[first:first + n]
            first += n
            if units[0].flat:
                if not self._array_hyper[gi] and (grads is None or all(g is not None for g in group_grads)):
                    yield gi, units[0], None if grads is None else self._flat_grad(units[0], group_grads)
                    continue
                units = self._deflatten(gi)
            for unit, g in zip(units, group_grads):
                if g is not None or grads is None:
                    yield gi, unit, g

    def _each(self, fn, grads=None):
        """A pass over the parameters that is not a step: ``fn(unit, g, group)`` on every unit (as
        :meth:`_units_with_grads`), the state arrays completed for the group's options, no step counted.
        Returns the list of what ``fn`` returned. For what does not fit one elementwise rule: a reduction over
        every parameter before the update (Prodigy's d), a change of point outside a step (Schedule-Free's
        train/eval)."""
        results = []
        for gi, unit, g in self._units_with_grads(grads):
            self._complete_state(unit, self.param_groups[gi], self._checked[gi])
            results.append(fn(unit, g, self.param_groups[gi]))
        return results

    def _complete_state(self, unit, group, checked):
        if unit.state_source is not checked:  # the group's options changed since this unit's last step
            for key in self._arrays_of(group, unit.theta.shape):
                if key not in unit.state:  # an option switched on mid-run (a scheduler turning momentum on)
                    unit.state[key] = np.zeros(self.state_shape(key, unit.theta.shape), unit.theta.dtype)
            unit.state_source = checked

    def _deflatten(self, gi):
        """Turn a flat group into one unit per parameter for good (a step skipped a parameter, or a
        hyperparameter became an array); the state arrays stay where they are, seen through views."""
        (unit,) = self._units[gi]
        parts = []
        for view, index in zip(unit.views, unit.indices):
            part = _Unit(view, [index], [view], flat=False)
            part.state = {k: (_view_of(v, unit.theta, view) if isinstance(v, np.ndarray) else v)
                          for k, v in unit.state.items()}
            parts.append(part)
        self._units[gi] = parts
        return parts

    def _flat_grad(self, unit, grads):
        cached = unit.grad_span
        if cached is not None and len(cached[0]) == len(grads) and all(a is b for a, b in zip(cached[0], grads)):
            span = cached[1]   # the very arrays of the last step: their layout cannot have changed
        else:
            span = _span(grads)
            unit.grad_span = (list(grads), span)
        if span is not None and span.size == unit.theta.size:
            return span
        if unit.grad_buffer is None:
            unit.grad_buffer = np.empty_like(unit.theta)
        np.concatenate([g.reshape(-1) for g in grads], out=unit.grad_buffer)
        return unit.grad_buffer

    def _update(self, unit, group, g, extra, checked, has_arrays=False):
        state = unit.state
        self._complete_state(unit, group, checked)
        state["step"] += 1
        t = state["step"]
        self._begin_step(state, group, t)
        h = self._expanded(unit, group, checked) if has_arrays else group
        if extra:
            h = {**h, **extra}
        theta = unit.theta
        if self.elementwise and theta.size >= THREAD_MIN and theta.flags.c_contiguous and g.flags.c_contiguous:
            self._chunked(unit, h, g.reshape(-1), t)
        else:
            if not isinstance(unit.scratch, tuple):
                unit.scratch = tuple(np.empty_like(theta) for _ in range(self.scratch_count + 1))
            self._apply(theta, g, state, unit.scratch, t, h)

    def _expanded(self, unit, group, checked):
        """Array hyperparameters broadcast to the unit's full shape, once per assignment: elementwise loops over
        contiguous arrays are several times faster than loops that broadcast a (B, 1) array over (B, d)."""
        if unit.hyper_source is not checked:
            def expand(v):
                if isinstance(v, tuple):
                    return tuple(expand(b) for b in v)
                return np.ascontiguousarray(np.broadcast_to(v, unit.theta.shape)) if _is_array_hyper(v) else v
            unit.hyper = {k: expand(v) if k in self.hyper or k == "decay_base_lr" else v for k, v in group.items()}
            unit.hyper_source = checked
        return unit.hyper

    def _chunked(self, unit, h, g, t):
        theta, state = unit.theta.reshape(-1), unit.state
        h_arrays = {k: v for k, v in h.items() if k != "params" and (_is_array_hyper(v) or isinstance(v, tuple))}
        shape = unit.theta.shape
        # state arrays are shaped like theta; per-run scalars of a sweep (NAdam's μ for a (B, 1) beta1) are
        # broadcast to theta's shape so that each chunk gets the values of its own rows
        arrays = {k: (v if v.shape == shape else np.broadcast_to(v, shape)).reshape(-1)
                  for k, v in state.items() if isinstance(v, np.ndarray)}
        scalars = {k: v for k, v in state.items() if not isinstance(v, np.ndarray)}
        n = theta.size
        workers = _threads()
        chunk = min(CHUNK, -(-n // workers))
        starts = range(0, n, chunk)
        if not isinstance(unit.scratch, list) or len(unit.scratch) != workers or len(unit.scratch[0][0]) != chunk:
            unit.scratch = [tuple(np.empty(chunk, theta.dtype) for _ in range(self.scratch_count + 1))
                            for _ in range(workers)]

        def run(worker):
            scratch = unit.scratch[worker]
            for s in starts[worker::workers]:
                e = min(s + chunk, n)
                sub = {k: v[s:e] for k, v in arrays.items()}
                sub.update(scalars)
                hc = {**h, **{k: _part(v, s, e) for k, v in h_arrays.items()}} if h_arrays else h
                self._apply(theta[s:e], g[s:e], sub, tuple(b[:e - s] for b in scratch), t, hc)

        if workers == 1:
            run(0)
        else:
            list(_executor().map(run, range(workers)))

    def _apply(self, theta, g, state, scratch, t, h):
        """Shared preprocessing (maximize, weight decay), then the update rule."""
        gbuf = scratch[-1]
        if h.get("maximize", False):
            g = np.negative(g, out=gbuf)
        wd = h.get("weight_decay", 0)
        if self.decay is not None and _nonzero(wd):
            if self._decoupled(h):
                np.multiply(theta, 1 - self._decay_lr(h) * wd, out=theta)
            else:
                g = np.add(g, np.multiply(theta, wd, out=scratch[0]), out=gbuf)
        self.rule(theta, g, state, scratch[:-1], t, h)

    def _decoupled(self, h) -> bool:
        if self.decay in ("l2", "decoupled"):
            return self.decay == "decoupled"
        return bool(h[self.decay])

    def _decay_lr(self, h):
        """The learning rate that multiplies decoupled weight decay (torch: the current lr)."""
        return h["lr"]

    def _begin_step(self, state, group, t):
        """Hook: per-step scalar state (called once per unit and step, before the rule)."""

    @staticmethod
    def rule(theta, g, state, scratch, t, h):  # pragma: no cover - every optimizer defines its own
        raise NotImplementedError

    # -- state -------------------------------------------------------------------------------------------------

    @property
    def state(self) -> dict:
        """Per-parameter state as in torch: ``{index: {"step": t, name: array view, ...}}`` (live views)."""
        out = {}
        for units in self._units:
            for unit in units:
                for view, index in zip(unit.views, unit.indices):
                    out[index] = {k: (_view_of(v, unit.theta, view) if isinstance(v, np.ndarray) and unit.flat
                                      else v)
                                  for k, v in unit.state.items() if not k.startswith("_")}
        return out

    def state_dict(self) -> dict:
        """A snapshot (copies): ``{"state": {index: {...}}, "param_groups": [{hyperparameters, "params": [...]}]}``."""
        state = {i: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in entry.items()}
                 for i, entry in self.state.items() if self._has_state(entry)}
        groups, first = [], 0
        for group in self.param_groups:
            n = len(group["params"])
            copy = {k: _copy_value(v) for k, v in group.items() if k != "params"}
            copy["params"] = list(range(first, first + n))
            groups.append(copy)
            first += n
        return {"state": state, "param_groups": groups}

    def _has_state(self, entry) -> bool:
        return entry["step"] > 0

    def load_state_dict(self, state_dict: dict):
        """Restore a :meth:`state_dict` snapshot; checks everything first, so a mismatch changes nothing."""
        name = type(self).__name__
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            raise ValueError(f"state_dict must be a dict with keys 'state' and 'param_groups', got {_keys(state_dict)}")
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"state_dict has {len(groups)} parameter groups, but this {name} has "
                             f"{len(self.param_groups)}")
        new_groups = []
        for gi, (saved, group) in enumerate(zip(groups, self.param_groups)):
            # Extra keys are kept, as torch keeps them (schedulers add max_lr, base_momentum, ...), unless they
            # are another optimizer's hyperparameters.
            missing = set(self.hyper) - set(saved)
            foreign = (set(saved) & _all_hyperparameters()) - set(self.hyper) - set(getattr(self, "GROUP_STATE", ()))
            if missing or foreign:
                problem = f"lacks {sorted(missing)}" if missing else f"has {sorted(foreign)}"
                raise ValueError(f"state_dict['param_groups'][{gi}] {problem} among its hyperparameters, unlike "
                                 f"{name}'s: is it from another optimizer?")
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"state_dict['param_groups'][{gi}] has {len(saved['params'])} parameters, "
                                 f"this optimizer's group {gi} has {len(group['params'])}")
            new = {**{k: _copy_value(v) for k, v in saved.items() if k != "params"}, "params": group["params"]}
            self._check_hyper(new, where=f"state_dict['param_groups'][{gi}]", params=group["params"])
            new_groups.append(new)
        saved_ids = [i for g in groups for i in g["params"]]
        position = {saved_id: k for k, saved_id in enumerate(saved_ids)}
        params = [p for g in self.param_groups for p in g["params"]]
        states = {}
        for saved_id, entry in state_dict["state"].items():
            if saved_id not in position:
                raise ValueError(f"state_dict['state'] has an entry for parameter {saved_id!r}, "
                                 f"which no parameter group lists")
            k = position[saved_id]
            gi = self._group_of(k)
            arrays = self._arrays_of(new_groups[gi], params[k].shape)
            expected = {"step", *arrays} | set(self._scalar_state_names())
            if set(entry) != expected:
                raise ValueError(f"state_dict['state'][{saved_id!r}] has keys {sorted(entry)}, expected "
                                 f"{sorted(expected)}: is it from another optimizer or other options?")
            for key in arrays:
                a, shape = entry[key], self.state_shape(key, params[k].shape)
                if not isinstance(a, np.ndarray) or a.shape != shape:
                    raise ValueError(f"state_dict['state'][{saved_id!r}]['{key}'] has shape {np.shape(a)}, "
                                     f"expected {shape} for parameter {k} of shape {params[k].shape}")
            step = entry["step"]
            if not isinstance(step, numbers.Integral) or step < 0:
                raise ValueError(f"state_dict['state'][{saved_id!r}]['step'] must be an integer >= 0, got {step!r}")
            states[k] = entry
        # Everything checked: now change.
        for gi, new in enumerate(new_groups):
            group = self.param_groups[gi]
            group.clear()
            group.update(new)
            self._remember(gi, group)
            first = sum(len(g["params"]) for g in self.param_groups[:gi])
            self._units[gi] = self._make_units(group, first)
            unit = self._units[gi][0]
            if unit.flat:
                # one flat unit has one step count: split it if its parameters were saved at different steps
                # (one was skipped) or with per-run scalar state (a sweep)
                scalars = [None if k not in states else
                           {key: v for key, v in states[k].items() if key not in self.state_arrays(group)}
                           for k in unit.indices]
                if _has_array_hyper(group, self.hyper) or any(
                        _differ(a, scalars[0]) for a in scalars[1:]):
                    self._deflatten(gi)
        live = self.state
        for k, entry in states.items():
            unit_state = self._unit_state_of(k)
            arrays = self.state_arrays(self.param_groups[self._group_of(k)])
            for key, value in entry.items():
                if key in arrays:
                    np.copyto(live[k][key], value)
                elif key == "step":
                    unit_state[key] = int(value)
                else:
                    unit_state[key] = value.copy() if isinstance(value, np.ndarray) else value

    def _scalar_state_names(self):
        return []

    def _group_of(self, index):
        first = 0
        for gi, group in enumerate(self.param_groups):
            first += len(group["params"])
            if index < first:
                return gi
        raise IndexError(index)

    def _unit_state_of(self, index):
        for units in self._units:
            for unit in units:
                if index in unit.indices:
                    return unit.state
        raise IndexError(index)

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for gi, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {gi}")
            for key in self.hyper:
                lines.append(f"    {key}: {_describe(group[key])}")
        return "\n".join(lines) + "\n)"


def _view_of(array, flat, view):
    """The part of ``array`` (shaped like the flat buffer ``flat``) that corresponds to ``view`` of ``flat``."""
    start = (_address(view) - _address(flat)) // view.itemsize
    return array[start:start + view.size].reshape(view.shape)


def _part(v, s, e):
    """Elements s:e of a hyperparameter expanded to a unit's shape (tuples such as betas element by element)."""
    if isinstance(v, tuple):
        return tuple(_part(b, s, e) for b in v)
    return v.reshape(-1)[s:e] if _is_array_hyper(v) else v


def _all_hyperparameters() -> set:
    """The hyperparameter names of every optimizer class defined so far."""
    names, todo = set(), [Optimizer]
    while todo:
        cls = todo.pop()
        names.update(cls.hyper)
        todo.extend(cls.__subclasses__())
    return names


def _copy_value(v):
    """A copy of a hyperparameter value that shares no array with it (betas may be a tuple of arrays)."""
    if isinstance(v, np.ndarray):
        return v.copy()
    if isinstance(v, tuple):
        return tuple(_copy_value(x) for x in v)
    return v


def _differ(a, b) -> bool:
    """Whether two saved per-parameter scalar states (dicts of numbers or small arrays, or None) differ."""
    if a is None or b is None:
        return a is not b
    return a.keys() != b.keys() or any(not np.array_equal(a[k], b[k]) for k in a)


def _broadcast_shape(a, b):
    """The broadcast shape of shapes ``a`` and ``b``, or None when they do not broadcast."""
    try:
        return np.broadcast_shapes(a, b)
    except ValueError:
        return None


def _nonzero(x) -> bool:
    if type(x) is float or type(x) is int or isinstance(x, numbers.Real):
        return x != 0
    return bool(np.any(x != 0))


def _hyper_arrays(group, hyper) -> list:
    """The hyperparameter values of ``group`` that are arrays (the elements of betas too)."""
    out = []
    for key in hyper:
        for v in (group[key] if key == "betas" else (group[key],)):
            if _is_array_hyper(v):
                out.append(v)
    return out


def _has_array_hyper(group, hyper) -> bool:
    for key in hyper:
        v = group[key]
        if _is_array_hyper(v) or (key == "betas" and any(_is_array_hyper(b) for b in v)):
            return True
    return False


def _keys(x):
    return sorted(x) if isinstance(x, dict) else type(x).__name__


# ----------------------------------------------------------------------------------------------------------------
# State dicts as flat dicts of arrays (for np.savez, no pickle needed)


def flatten_state_dict(state_dict: dict) -> dict:
    """``{"state/0/exp_avg": array, "param_groups/0/lr": array(0.001), ...}``: arrays only, for ``np.savez``.

    >>> np.savez(path, **flatten_state_dict(opt.state_dict()))                  # doctest: +SKIP
    >>> opt.load_state_dict(unflatten_state_dict(np.load(path)))                # doctest: +SKIP
    """
    flat = {}

    def put(prefix, value):
        if isinstance(value, dict):
            for k, v in value.items():
                put(f"{prefix}/{k}", v)
        elif isinstance(value, tuple):
            flat[f"{prefix}/__tuple__"] = np.asarray(len(value))
            for k, v in enumerate(value):
                put(f"{prefix}/{k}", v)
        elif isinstance(value, list):
            flat[f"{prefix}/__list__"] = np.asarray(value)
        elif value is None:   # None (Prodigy's beta3, Muon's adjust_lr_fn, Adafactor's eps[0]): no object arrays
            flat[f"{prefix}/__none__"] = np.asarray(0)
        else:
            flat[prefix] = np.asarray(value)

    for key in ("state", "param_groups"):
        if key == "param_groups":
            for gi, group in enumerate(state_dict[key]):
                put(f"param_groups/{gi}", group)
        else:
            for index, entry in state_dict[key].items():
                put(f"state/{index}", entry)
    return flat


def unflatten_state_dict(flat) -> dict:
    """Inverse of :func:`flatten_state_dict` (accepts the mapping ``np.load`` returns)."""
    tree: dict = {}
    for key in flat:
        value = np.asarray(flat[key])
        *path, leaf = key.split("/")
        node = tree
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = value

    def build(node):
        if isinstance(node, np.ndarray):
            return node.item() if node.ndim == 0 else node
        if "__none__" in node:
            return None
        if "__list__" in node:
            return node["__list__"].tolist()
        if "__tuple__" in node:
            return tuple(build(node[str(k)]) for k in range(int(node["__tuple__"])))
        return {k: build(v) for k, v in node.items()}

    state = {int(k): build(v) for k, v in tree.get("state", {}).items()}
    groups = [build(tree["param_groups"][str(k)]) for k in range(len(tree.get("param_groups", {})))]
    return {"state": state, "param_groups": groups}
