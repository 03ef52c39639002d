"""The machinery every optimizer shares: parameter groups, state, step counting, validation, flat buffers.

An optimizer in optimlab is two things: a table of hyperparameters (names, defaults, checks) and one short
*update rule*, a function that updates a parameter array in place from its gradient and its state arrays.
Everything else lives here, once:

* **Parameter groups** as in ``torch.optim``: ``params`` is a list of arrays or a list of dicts, each dict a group
  with its own hyperparameters; ``opt.param_groups`` is that list of dicts, read at every step, so a scheduler
  changes a learning rate by assigning ``group["lr"]``.
* **Validation** before anything changes: a step that raises leaves parameters and state exactly as they were.
  Every number (here, in the schedules, the schedulers and clipping) goes through :func:`number_error`: a real
  that fits a float64 (no bool, Fraction, complex, numpy integer or 0-d array), finite where it must be. Groups
  changed by hand between steps are re-checked (reassigned values, a deleted key, a replaced ``params`` list,
  which is then the one updated, as in torch).
* **Units of work.** A group whose parameters are views tiling one contiguous buffer (see :func:`flat_arrays`) is
  updated as one flat array, in cache-sized chunks, on several threads when it is large. Otherwise each
  parameter is its own unit. Hyperparameters may be numpy arrays that broadcast against each parameter, so a
  sweep of B runs is one optimizer over a (B, d) array.
* **State** per parameter, as torch keeps it (``step`` and the named arrays), exported by :meth:`state_dict`.
"""

from __future__ import annotations

import math
import numbers
import operator
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
# Numbers: one check for every number the package takes (optimizers, schedules, schedulers, clipping)

_FLOAT_MAX = float(np.finfo(np.float64).max)
# Integer counts (steps, lengths) are kept exactly representable in a float64, so t/T and β^t never overflow.
INT_MAX = 2**53


def describe(value) -> str:
    """A short repr for error messages (large arrays by shape and first values; huge integers by size)."""
    if isinstance(value, np.ndarray) and value.size > 6:
        return f"an array of shape {value.shape} (first values {np.array2string(value.ravel()[:4])} ...)"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    return repr(value)


def number_error(name: str, value, *, array=True, finite=True, numpy_ints=False):
    """The error for ``value`` as the number ``name``, or None when it is one.

    A number is a real that fits in a float64: a Python or numpy int or float, not a bool, not a ``Fraction``
    or ``Decimal`` (their arithmetic with arrays makes object arrays), not complex, not an integer beyond
    float64's range. With ``array``, a numpy array (ndim >= 1) of ints or floats also counts; a 0-d array never
    does (pass ``float(x)``). With ``finite``, inf and NaN are errors too. numpy integer scalars and arrays only
    with ``numpy_ints`` (for callers that convert to float first): in arithmetic they keep their dtype and wrap
    around (np.uint8(2) * 5120 overflows, -np.uint8(2) is 254). Returns a TypeError or ValueError that names the
    argument, so callers ``raise`` it (or collect it).
    """
    kind = "a real number or a numpy array of them" if array else "a real number"
    t = type(value)
    if t is float or isinstance(value, np.floating):
        if t is not float:
            with np.errstate(over="ignore"):
                as64 = float(np.float64(value))
            if math.isinf(as64) and not np.isinf(value):
                return ValueError(f"{name} must fit in a float64, got {value!r}")
        if finite and not math.isfinite(value):
            return ValueError(f"{name} must be finite, got {value!r}")
        return None
    if isinstance(value, (bool, np.bool_)):
        return TypeError(f"{name} must be {kind}, not a bool, got {value!r}")
    if isinstance(value, np.integer) and not numpy_ints:
        return TypeError(f"{name} must be a float or a Python int, got {value!r} (numpy integers wrap around in "
                         f"arithmetic: pass float(x))")
    if t is int or isinstance(value, np.integer):
        if t is int and abs(value) > _FLOAT_MAX:
            return ValueError(f"{name} must fit in a float64, got {describe(value)}")
        return None
    if isinstance(value, np.ndarray):
        if not array or value.ndim == 0:
            what = "a 0-d array" if value.ndim == 0 else f"an array of shape {value.shape}"
            return TypeError(f"{name} must be {kind}, got {what} (pass a Python number: float(x))")
        if value.dtype.kind not in ("fiu" if numpy_ints else "f"):
            hint = " (integers wrap around in arithmetic: pass x.astype(float))" if value.dtype.kind in "iu" else ""
            return TypeError(f"{name} must be {kind}, got an array of dtype {value.dtype}{hint}")
        if value.dtype.kind == "f" and (finite or value.dtype.itemsize > 8):
            with np.errstate(over="ignore", invalid="ignore"):
                as64 = value.astype(np.float64)
            bad = ~np.isfinite(as64) if finite else np.isinf(as64) & ~np.isinf(value)
            if bad.any():
                return ValueError(f"{name} must be {'finite' if finite else 'within float64 range'} "
                                  f"everywhere, got {describe(value)}")
        return None
    return TypeError(f"{name} must be {kind}, got {t.__name__} {describe(value)}")


def check_number(name: str, value, *, array=True, finite=True, numpy_ints=False):
    """Raise :func:`number_error`'s error, if any; return ``value``."""
    error = number_error(name, value, array=array, finite=finite, numpy_ints=numpy_ints)
    if error is not None:
        raise error
    return value


def check_int(name: str, value, minimum: int, maximum: int = INT_MAX) -> int:
    """An integer (not a bool, not a float) in [minimum, maximum] (counts: steps, lengths, patience)."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {describe(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be {'a positive integer' if minimum == 1 else f'>= {minimum}'}, "
                         f"got {value!r}")
    if value > maximum:
        raise ValueError(f"{name} must be <= {maximum} (counts are kept exact in a float64), got "
                         f"{describe(value)}")
    return int(value)


# ----------------------------------------------------------------------------------------------------------------
# Hyperparameter checks: each returns None when the value is fine, else what it must be. Every number-valued
# hyperparameter (its default a number, or a check below) is first checked by number_error: finite, fits a float64.


def _values(x):
    return np.asarray(x, dtype=np.float64) if not isinstance(x, numbers.Real) else x


def nonnegative(x):
    v = _values(x)
    return None if np.all(v >= 0) else "must be >= 0"


def positive(x):
    v = _values(x)
    return None if np.all(v > 0) else "must be > 0"


def finite(x):
    return None  # number_error, run first, has checked it


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
        if unit_interval(b):
            return f"[{i}] must be in [0, 1)"
    return None


NUMERIC_CHECKS = (nonnegative, positive, finite, unit_interval, closed_unit_interval)


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def one_of(*choices):
    def check(x):
        return None if x in choices else f"must be one of {', '.join(map(repr, choices))}"
    return check


_describe = describe


def _is_array_hyper(value) -> bool:
    return isinstance(value, np.ndarray) and value.ndim > 0


# ----------------------------------------------------------------------------------------------------------------
# Units of work


# "no gradients to check" for _revalidate, so that a caller's grads=None is checked (and refused) like any other
_NO_GRADS = object()
_ABSENT = object()   # "no such key", unlike any value a group can hold (None included)


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
        self._params_seen: dict[int, tuple] = {}
        self._all_params: list = []
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
        if self.param_groups:
            self._revalidate()  # groups changed by hand since the last step are taken in first
        gi = len(self.param_groups)
        where = f"param_groups[{gi}]"
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"{where} must be a dict with a 'params' key, got {group!r}")
        params = group["params"]
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        params = _check_params(params, where if gi else "", seen)
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
        self._all_params = [p for g in self.param_groups for p in g["params"]]

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
        for key, (default, check) in self.hyper.items():
            if key not in group:
                raise ValueError(f"{prefix.format(key)} is missing: every group needs each of {type(self).__name__}'s "
                                 f"hyperparameters (was it deleted?)")
            value = group[key]
            if check in NUMERIC_CHECKS or _is_number(default):
                # finite, unless the default itself is not (a growth limit of inf means "none"); a count (an int
                # default, such as Schedule-Free's warmup_steps) may be swept as an integer array, which its rule
                # converts to float (a numpy integer scalar stays refused: it wraps around in arithmetic)
                numeric_default = _is_number(default)
                error = number_error(prefix.format(key), value,
                                     finite=math.isfinite(default) if numeric_default else True,
                                     numpy_ints=isinstance(default, int) and isinstance(value, np.ndarray))
                if error is not None:
                    raise error
            elif check is betas_pair or (isinstance(default, tuple) and all(map(_is_number, default))):
                if isinstance(value, (tuple, list)) and len(value) == len(default):
                    for i, b in enumerate(value):
                        error = number_error(f"{prefix.format(key)}[{i}]", b)
                        if error is not None:
                            raise error
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

    def _revalidate(self, grads=_NO_GRADS, name="grads", hyper=True):
        """Check what was changed by hand since the last step, and ``grads`` against the parameters; then
        record it. Nothing changes unless everything is valid.

        Changes by hand: a hyperparameter reassigned or an array one changed in place (re-checked; unchanged
        groups cost a few identity tests), a key deleted (a named error), a ``params`` list replaced or edited
        (as in torch, the new list is the one updated: parameters that stay keep their state, new ones start
        fresh). ``hyper=False`` (a state dict of the optimizer as it stands) leaves reassigned hyperparameters
        to the next step, unless a ``params`` list changed too."""
        groups = self.param_groups
        if type(groups) is not list or len(groups) != len(self._units):
            n = len(groups) if isinstance(groups, list) else type(groups).__name__
            raise ValueError(f"param_groups must stay a list of the {len(self._units)} groups this "
                             f"{type(self).__name__} was built with (got {n}): use add_param_group to add one")
        recheck, relink = [], False
        for gi, group in enumerate(groups):
            if type(group) is not dict:
                raise TypeError(f"param_groups[{gi}] must be a dict, got {type(group).__name__}")
            params, (known, members) = group.get("params"), self._params_seen[gi]
            if params is not known or len(params) != len(members) or (
                    params[0] is not members[0] if len(members) == 1 else not all(map(operator.is_, params, members))):
                relink = True
            for key, value in self._checked[gi].items():
                if group.get(key, _ABSENT) is not value:   # (a deleted key whose value was None too)
                    recheck.append(gi)
                    break
            else:
                copies = self._array_copies[gi]
                if copies and not all(np.array_equal(a, copy) for a, copy in copies):
                    recheck.append(gi)
        if not hyper and not relink:
            return
        if not recheck and not relink:
            if grads is not _NO_GRADS:
                # the common case inline (a list of arrays of the parameters' shapes and dtypes); else the
                # full check, which names what is wrong
                params = self._all_params
                if type(grads) is list and len(grads) == len(params):
                    for g, p in zip(grads, params):
                        if g is not None and (type(g) is not np.ndarray or g.shape != p.shape or g.dtype != p.dtype):
                            break
                    else:
                        return
                self._check_grads(grads, name, params)
            return
        if relink:
            seen, lists = set(), []
            for gi, group in enumerate(groups):
                if "params" not in group:
                    raise ValueError(f"param_groups[{gi}] has no 'params': each group needs its list of arrays")
                lists.append(_check_params(group["params"], f"param_groups[{gi}]", seen))
            recheck = range(len(groups))
        for gi in recheck:
            params = lists[gi] if relink else groups[gi]["params"]
            self._check_hyper(groups[gi], where=f"param_groups[{gi}]", params=params)
        if grads is not _NO_GRADS:
            self._check_grads(grads, name, [p for ps in lists for p in ps] if relink else self._all_params)
        # Everything checked: now change.
        if relink:
            self._relink(lists)
        for gi in recheck:
            self._remember(gi, groups[gi])

    def _relink(self, lists):
        """Rebuild the units for new ``params`` lists; a parameter that stays keeps its state (by identity)."""
        old = {}
        for units in self._units:
            for unit in units:
                for view in unit.views:
                    entry = {k: (_view_of(v, unit.theta, view) if unit.flat else v).copy()
                             if isinstance(v, np.ndarray) and (not unit.flat or v.shape == unit.theta.shape)
                             else v for k, v in unit.state.items()}
                    old[id(view)] = (view, entry)
        states, first = {}, 0
        for group, params in zip(self.param_groups, lists):
            group["params"] = params
            arrays = set(self.state_arrays(group))
            for k, p in enumerate(params, start=first):
                if id(p) in old and old[id(p)][1]["step"] > 0:
                    entry = old[id(p)][1]
                    states[k] = {key: v for key, v in entry.items()
                                 if key in arrays or not (isinstance(v, np.ndarray) and v.shape == p.shape)}
            first += len(params)
        self._install(states)

    def _remember(self, gi, group):
        """Record the hyperparameter objects just validated (a step re-checks only what was reassigned)."""
        self._checked[gi] = {k: group[k] for k in self.hyper}
        self._array_hyper[gi] = _has_array_hyper(group, self.hyper)
        # copies of array values, so that an array changed in place (group["lr"] *= 0.5) is re-checked and used
        self._array_copies[gi] = [(a, a.copy()) for a in _hyper_arrays(group, self.hyper)]
        self._params_seen[gi] = (group["params"], tuple(group["params"]))

    def _check_grads(self, grads, name="grads", params=None):
        if params is None:
            # a subclass's own step: groups changed by hand are taken in only once the gradients fit them too
            self._revalidate(grads, name)
            return
        if isinstance(grads, np.ndarray) or not isinstance(grads, (list, tuple)):
            raise TypeError(f"{name} must be a list of arrays, one per parameter, got {type(grads).__name__}")
        if len(grads) != len(params):
            raise ValueError(f"{name} must have one entry per parameter: expected {len(params)}, "
                             f"got {len(grads)}")
        for i, (g, p) in enumerate(zip(grads, params)):
            if g is not None and (type(g) is not np.ndarray or g.shape != p.shape or g.dtype != p.dtype):
                if not isinstance(g, np.ndarray):
                    raise TypeError(f"{name}[{i}] must be a numpy array or None, got {type(g).__name__}")
                if g.shape != p.shape:
                    raise ValueError(f"{name}[{i}] has shape {g.shape}, but parameter {i} has shape {p.shape}")
                if g.dtype != p.dtype:
                    raise TypeError(f"{name}[{i}] has dtype {g.dtype}, but parameter {i} has dtype {p.dtype}")

    # -- the step ----------------------------------------------------------------------------------------------

    def step(self, grads):
        """One update of every parameter from ``grads`` (a list in parameter order; None skips a parameter)."""
        self._revalidate(grads)
        self._step(grads)

    def _step(self, grads, **extra):
        for gi, unit, g in self._units_with_grads(grads):
            self._update(unit, self.param_groups[gi], g, extra,
                         self._checked[gi], self._array_hyper[gi])

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
            if self._decoupled(h):   # θ ← θ(1 − ηλ)
                theta *= _one_minus_product(self._decay_lr(h), wd)
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
        self._revalidate(hyper=False)  # a params list changed by hand: the one the next step would update
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
        """Restore a :meth:`state_dict` snapshot; checks everything first, so a mismatch changes nothing.

        Checked: the two keys; one saved group per group, each with this optimizer's hyperparameters (valid
        values) and as many integer parameter ids; per parameter, exactly the state keys these options make, the
        state arrays with the parameter's shape and a real float dtype, an integer step in [0, 2^53]."""
        name = type(self).__name__
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            raise ValueError(f"state_dict must be a dict with keys 'state' and 'param_groups', got {_keys(state_dict)}")
        self._revalidate()   # the groups as they stand (changed by hand?) are what the snapshot is loaded into
        groups, saved_states = state_dict["param_groups"], state_dict["state"]
        if not isinstance(groups, (list, tuple)) or not all(isinstance(g, dict) for g in groups):
            raise TypeError(f"state_dict['param_groups'] must be a list of dicts, got {describe(groups)}")
        if not isinstance(saved_states, dict):
            raise TypeError(f"state_dict['state'] must be a dict {{parameter id: state}}, got "
                            f"{type(saved_states).__name__}")
        if len(groups) != len(self.param_groups):
            raise ValueError(f"state_dict has {len(groups)} parameter groups, but this {name} has "
                             f"{len(self.param_groups)}")
        new_groups, saved_ids = [], []
        for gi, (saved, group) in enumerate(zip(groups, self.param_groups)):
            where = f"state_dict['param_groups'][{gi}]"
            # Extra keys are kept, as torch keeps them (schedulers add max_lr, base_momentum, ...), unless they
            # are another optimizer's hyperparameters.
            missing = set(self.hyper) - set(saved)
            foreign = (set(saved) & _all_hyperparameters()) - set(self.hyper) - set(getattr(self, "GROUP_STATE", ()))
            if missing or foreign:
                problem = f"lacks {sorted(missing)}" if missing else f"has {sorted(foreign)}"
                raise ValueError(f"{where} {problem} among its hyperparameters, unlike "
                                 f"{name}'s: is it from another optimizer?")
            ids = saved.get("params")
            if not isinstance(ids, (list, tuple)):
                raise TypeError(f"{where}['params'] must be a list of parameter ids, got {describe(ids)}")
            for i, saved_id in enumerate(ids):
                if not isinstance(saved_id, (int, np.integer)) or isinstance(saved_id, (bool, np.bool_)):
                    raise TypeError(f"{where}['params'][{i}] must be an integer id, got {describe(saved_id)}")
            if len(ids) != len(group["params"]):
                raise ValueError(f"{where} has {len(ids)} parameters, "
                                 f"this optimizer's group {gi} has {len(group['params'])}")
            new = {**{k: _copy_value(v) for k, v in saved.items() if k != "params"}, "params": group["params"]}
            self._check_hyper(new, where=where, params=group["params"])
            new_groups.append(new)
            saved_ids.extend(int(i) for i in ids)
        position = {saved_id: k for k, saved_id in enumerate(saved_ids)}
        if len(position) != len(saved_ids):
            raise ValueError(f"state_dict['param_groups'] lists a parameter id twice: {saved_ids}")
        params = self._all_params
        states = {}
        for saved_id, entry in saved_states.items():
            where = f"state_dict['state'][{saved_id!r}]"
            if isinstance(saved_id, (bool, np.bool_)) or saved_id not in position:
                raise ValueError(f"state_dict['state'] has an entry for parameter {saved_id!r}, "
                                 f"which no parameter group lists")
            if not isinstance(entry, dict):
                raise TypeError(f"{where} must be a dict, got {type(entry).__name__}")
            k = position[saved_id]
            gi = self._group_of(k)
            arrays = self._arrays_of(new_groups[gi], params[k].shape)
            expected = {"step", *arrays} | set(self._scalar_state_names())
            if set(entry) != expected:
                raise ValueError(f"{where} has keys {sorted(map(str, entry))}, expected "
                                 f"{sorted(expected)}: is it from another optimizer or other options?")
            for key in arrays:
                a, shape = entry[key], self.state_shape(key, params[k].shape)
                if not isinstance(a, np.ndarray) or a.dtype.kind != "f" or a.dtype.itemsize > 8:
                    kind = f"dtype {a.dtype}" if isinstance(a, np.ndarray) else type(a).__name__
                    raise TypeError(f"{where}['{key}'] must be a float16, float32 or float64 array, got {kind}")
                if a.shape != shape:
                    raise ValueError(f"{where}['{key}'] has shape {a.shape}, "
                                     f"expected {shape} for parameter {k} of shape {params[k].shape}")
            for key in self._scalar_state_names():
                v = entry[key]
                error = number_error(f"{where}['{key}']", v, finite=False)
                if error is not None:
                    raise error
                if np.ndim(v) and _broadcast_shape(np.shape(v), params[k].shape) != params[k].shape:
                    raise ValueError(f"{where}['{key}'] of shape {np.shape(v)} does not broadcast against "
                                     f"parameter {k} of shape {params[k].shape}")
            step = entry["step"]
            if not isinstance(step, (int, np.integer)) or isinstance(step, (bool, np.bool_)) \
                    or not 0 <= step <= INT_MAX:
                raise ValueError(f"{where}['step'] must be an integer in [0, 2^53], got {describe(step)}")
            states[k] = entry
        # Everything checked: now change.
        for gi, new in enumerate(new_groups):
            group = self.param_groups[gi]
            group.clear()
            group.update(new)
            self._remember(gi, group)
        self._install(states)

    def _install(self, states):
        """Make every group's units afresh and copy in ``states`` ({parameter index: saved entry})."""
        first = 0
        for gi, group in enumerate(self.param_groups):
            self._units[gi] = self._make_units(group, first)
            first += len(group["params"])
            unit = self._units[gi][0]
            if unit.flat:
                # one flat unit has one step count: split it if its parameters were saved at different steps
                # (one was skipped) or with per-run scalar state (a sweep)
                arrays = self.state_arrays(group)
                scalars = [None if k not in states else
                           {key: v for key, v in states[k].items() if key not in arrays}
                           for k in unit.indices]
                if _has_array_hyper(group, self.hyper) or any(
                        _differ(a, scalars[0]) for a in scalars[1:]):
                    self._deflatten(gi)
        self._nparams = first
        self._all_params = [p for g in self.param_groups for p in g["params"]]
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


def _check_params(params, where, seen) -> list:
    """A group's parameters as a list: writeable float32/float64 arrays, none in ``seen`` (ids, updated)."""
    label = f"{where}['params']" if where else "params"
    if isinstance(params, np.ndarray):
        params = [params]
    if not isinstance(params, (list, tuple)):
        raise TypeError(f"{label} must be a list of arrays, got {type(params).__name__}")
    params = list(params)
    if not params:
        raise ValueError(f"{label} must not be empty")
    for i, p in enumerate(params):
        if not isinstance(p, np.ndarray):
            raise TypeError(f"{label}[{i}] must be a numpy array, got {type(p).__name__}")
        if p.dtype not in FLOAT_DTYPES:
            raise TypeError(f"{label}[{i}] must be a float32 or float64 array, got dtype {p.dtype}")
        if not p.flags.writeable:
            raise ValueError(f"{label}[{i}] must be writeable: the optimizer updates it in place")
        if id(p) in seen:
            raise ValueError(f"{label}[{i}] appears twice, or in more than one parameter group")
        seen.add(id(p))
    return params


def _view_of(array, flat, view):
    """The part of ``array`` (shaped like the flat buffer ``flat``) that corresponds to ``view`` of ``flat``."""
    start = (_address(view) - _address(flat)) // view.itemsize
    return array[start:start + view.size].reshape(view.shape)


def _one_minus_product(a, b):
    """1 − a·b. With an array (a sweep's learning rates, broadcast to the parameter's shape), computed in the one
    array a·b makes: two full-size temporaries alive at once send the allocator back to the system for fresh,
    page-faulting memory on every step (about 700 faults a step for 64 stacked MLPs); the values are the same."""
    product = a * b
    return np.subtract(1, product, out=product) if isinstance(product, np.ndarray) else 1 - product


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
