"""Gradient clipping and gradient accumulation.

Clipping rescales gradients before the optimizer sees them, so that one exploding gradient cannot throw the
parameters far away (Pascanu, Mikolov & Bengio 2013). Three forms:

* :func:`clip_grad_norm_`: one global norm over every array, as ``torch.nn.utils.clip_grad_norm_`` (a norm of
  the per-array norms; coefficient ``max_norm / (total + 1e-6)`` capped at 1; returns the norm *before*
  clipping). The direction of the whole update is kept.
* :func:`clip_by_norm_`: each array (or each row, with ``axis``) on its own; a sweep of B runs in one (B, d)
  array clips every run separately, so one diverging run does not shrink the others.
* :func:`clip_grad_value_`: each coordinate to [−c, c], as ``torch.nn.utils.clip_grad_value_``. It changes the
  direction.

Accumulation (:class:`GradientAccumulator`) averages the gradients of k micro-batches; for a loss that is a mean
over examples and micro-batches of equal size, the average *is* the gradient of the big batch.
"""

from __future__ import annotations

import math

import numpy as np

from ._base import INT_MAX, check_number, describe, number_error

__all__ = ["clip_grad_norm_", "clip_grad_value_", "clip_by_norm_", "global_norm", "GradientAccumulator"]

_EPS = 1e-6  # torch adds this to the norm in the denominator, so the clipped norm is just below max_norm


def _as_grad_list(grads, name="grads", writeable=True):
    """The gradient arrays (None entries dropped): float16/32/64 numpy arrays, writeable if clipped in place."""
    if isinstance(grads, np.ndarray):
        grads = [grads]
    if not isinstance(grads, (list, tuple)):
        raise TypeError(f"{name} must be an array or a list of arrays, got {type(grads).__name__}")
    for i, g in enumerate(grads):
        if g is None:
            continue
        if not isinstance(g, np.ndarray) or g.dtype.kind != "f" or g.dtype.itemsize > 8:
            kind = f"dtype {g.dtype}" if isinstance(g, np.ndarray) else type(g).__name__
            raise TypeError(f"{name}[{i}] must be a float16, float32 or float64 numpy array, got {kind}")
        if writeable and not g.flags.writeable:
            raise ValueError(f"{name}[{i}] must be writeable: clipping works in place")
    return [g for g in grads if g is not None]


def _norm_type(norm_type):
    if isinstance(norm_type, str) and norm_type.lower() == "inf":
        return math.inf
    if number_error("norm_type", norm_type, array=False, finite=False) or not norm_type > 0:
        raise ValueError(f"norm_type must be a positive number or 'inf', got {norm_type!r}")
    return float(norm_type)


def _check_bound(name, value, array=True):
    """A bound (max_norm, clip_value): a number >= 0 that fits a float64 (inf: no clipping), or an array."""
    check_number(name, value, array=array, finite=False)
    if not np.all(np.asarray(value, dtype=np.float64) >= 0):
        raise ValueError(f"{name} must be >= 0 (and not NaN), got {describe(value)}")
    return value


def _check_broadcast(name, value, grads, shapes):
    """An array bound must broadcast in place onto each gradient (checked before any is changed)."""
    if isinstance(value, np.ndarray):
        for i, (g, shape) in enumerate(zip(grads, shapes)):
            try:
                ok = np.broadcast_shapes(value.shape, shape, g.shape) == g.shape
            except ValueError:
                ok = False
            if not ok:
                raise ValueError(f"{name} of shape {value.shape} does not broadcast onto grads[{i}] of shape "
                                 f"{g.shape}")


def _axes(axis, ndim, i, shape):
    """``axis`` normalized for an array of ``ndim`` dimensions: a tuple of distinct axes in range."""
    axes = axis if isinstance(axis, tuple) else (axis,)
    if not axes:
        raise ValueError(f"axis must not be an empty tuple, got {axis!r}")
    out = []
    for a in axes:
        if not isinstance(a, (int, np.integer)) or isinstance(a, (bool, np.bool_)):
            raise TypeError(f"axis must be None, an integer or a tuple of integers, got {axis!r}")
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {axis!r} is out of range for grads[{i}] of shape {shape}")
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"axis {axis!r} repeats an axis")
    return tuple(out)


def _vector_norm(g, p, axis=None, keepdims=False):
    if g.dtype.itemsize < 4:
        g = g.astype(np.float32)  # float16 overflows at 65504: norms are taken in float32 at least
    a = np.abs(g)
    if p == math.inf:
        return np.max(a, axis=axis, keepdims=keepdims, initial=0.0)
    if p == 2:
        return np.sqrt(np.sum(g * g, axis=axis, keepdims=keepdims))
    if p == 1:
        return np.sum(a, axis=axis, keepdims=keepdims)
    return np.sum(a**p, axis=axis, keepdims=keepdims) ** (1.0 / p)


def global_norm(grads, norm_type=2.0):
    """The norm of the per-array norms, ‖(‖g₁‖, …, ‖g_k‖)‖ — torch's ``get_total_norm``; 0.0 for no arrays."""
    p = _norm_type(norm_type)
    grads = _as_grad_list(grads, writeable=False)
    if not grads:
        return 0.0
    return _total_norm(grads, p)


def _total_norm(grads, p):
    with np.errstate(over="ignore"):  # an overflowing norm is inf, as in torch, without a numpy warning
        norms = np.array([_vector_norm(g, p) for g in grads])
        return float(_vector_norm(norms, p))


def clip_grad_norm_(grads, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale every gradient in place by min(1, max_norm / (‖g‖ + 1e-6)), ‖g‖ the
    global norm; returns ‖g‖.

    Exactly ``torch.nn.utils.clip_grad_norm_``: the total is the norm of the
    per-array norms; every array is multiplied (by 1 when the norm is already
    small); a NaN or infinite total raises a ValueError with
    ``error_if_nonfinite=True``, and otherwise propagates (a NaN total turns every
    gradient into NaN). ``None`` entries are skipped.
    """
    _check_bound("max_norm", max_norm, array=False)
    if not isinstance(error_if_nonfinite, (bool, np.bool_)):
        raise TypeError("error_if_nonfinite must be True or False, "
                        f"got {error_if_nonfinite!r}")
    p = _norm_type(norm_type)
    grads = _as_grad_list(grads)
    if not grads:
        return 0.0
    total = _total_norm(grads, p)
    if error_if_nonfinite and not math.isfinite(total):
        raise ValueError(f"the total norm of order {norm_type} of the gradients is "
                         f"{total}: not finite, so they cannot be clipped "
                         "(error_if_nonfinite=True)")
    if math.isnan(total):
        coef = math.nan
    else:
        coef = min(float(max_norm) / (total + _EPS), 1.0)
    for g in grads:
        g *= coef
    return total


def clip_by_norm_(grads, max_norm, norm_type=2.0, axis=None):
    """Clip each array on its own (or each slice along ``axis``, e.g. ``axis=-1`` for each run of a sweep).

    Uses the same coefficient as :func:`clip_grad_norm_`, per array or per slice; returns the norms before
    clipping (a float per array, or an array of norms with ``axis``).
    """
    _check_bound("max_norm", max_norm)
    p = _norm_type(norm_type)
    grads = _as_grad_list(grads)
    axes = [None if axis is None else _axes(axis, g.ndim, i, g.shape) for i, g in enumerate(grads)]
    # the shape of each coefficient: the norm's, kept dimensions along the clipped axes
    shapes = [() if a is None else tuple(1 if d in a else n for d, n in enumerate(g.shape))
              for g, a in zip(grads, axes)]
    _check_broadcast("max_norm", max_norm, grads, shapes)
    # Everything checked: now change.
    norms = []
    for g, a in zip(grads, axes):
        with np.errstate(over="ignore"):
            norm = _vector_norm(g, p, axis=a, keepdims=a is not None)
        coef = np.minimum(np.asarray(max_norm, dtype=np.float64) / (norm + _EPS), 1.0)
        g *= coef
        norms.append(float(norm) if a is None else np.squeeze(norm, axis=a))
    return norms


def clip_grad_value_(grads, clip_value):
    """Clamp every gradient coordinate in place to [−clip_value, clip_value] (``clip_grad_value_``)."""
    _check_bound("clip_value", clip_value)
    grads = _as_grad_list(grads)
    _check_broadcast("clip_value", clip_value, grads, [g.shape for g in grads])
    for g in grads:
        np.clip(g, -clip_value, clip_value, out=g)


class GradientAccumulator:
    """Average the gradients of ``k`` micro-batches into one step.

    >>> acc = GradientAccumulator(k=4)
    >>> for batch in micro_batches:                        # doctest: +SKIP
    ...     acc.add(problem.grads(params, batch))
    ...     if acc.ready:
    ...         opt.step(acc.pop())

    ``add(grads, weight=None)``: with no weight every micro-batch counts equally, which equals the big batch's
    gradient when the loss is a mean and the micro-batches have the same size. For unequal sizes pass each
    micro-batch's number of examples as ``weight``: the result is then the size-weighted mean, which again
    equals the gradient of the mean loss over the union of the micro-batches.
    """

    def __init__(self, k: int):
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or not 1 <= k <= INT_MAX:
            raise ValueError(f"k must be a positive integer, got {describe(k)}")
        self.k = int(k)
        self._sum = None
        self._weight = 0.0
        self.count = 0

    @property
    def ready(self) -> bool:
        return self.count >= self.k

    def add(self, grads, weight=None):
        if weight is None:
            weight = 1.0
        check_number("weight", weight, array=False, numpy_ints=True)
        if not weight > 0:
            raise ValueError("weight must be a positive finite number, "
                             f"got {weight!r}")
        weight = float(weight)  # (a size counted by numpy is an np.int64)
        if self.ready:
            raise ValueError(f"the accumulator already holds k={self.k} "
                             "micro-batches: call pop() first")
        if isinstance(grads, (list, tuple)) and any(g is None for g in grads):
            raise TypeError("grads must be numpy arrays, not None: "
                            "every micro-batch has every gradient")
        grads = _as_grad_list(grads, writeable=False)
        if self._sum is not None:
            if len(grads) != len(self._sum):
                raise ValueError(f"grads has {len(grads)} arrays, "
                                 f"earlier micro-batches had {len(self._sum)}")
            for i, (g, s) in enumerate(zip(grads, self._sum)):
                if g.shape != s.shape:
                    raise ValueError(f"grads[{i}] has shape {g.shape}, "
                                     f"earlier micro-batches had {s.shape}")
            for g, s in zip(grads, self._sum):
                s += weight * g
        else:
            # the sum is kept in float32 at least (float16 sums lose the small
            # micro-batches)
            self._sum = [np.multiply(g, weight,
                                     dtype=np.promote_types(g.dtype, np.float32))
                         for g in grads]
            self._dtypes = [g.dtype for g in grads]
        self._weight += weight
        self.count += 1

    def pop(self):
        """Weighted mean of the accumulated gradients; empties the accumulator."""
        if self.count == 0:
            raise ValueError("the accumulator is empty: "
                             "add() at least one micro-batch before pop()")
        mean = [(s / self._weight).astype(d, copy=False)
                for s, d in zip(self._sum, self._dtypes)]
        self._sum, self._weight, self.count = None, 0.0, 0
        return mean
