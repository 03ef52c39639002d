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
import numbers

import numpy as np

__all__ = ["clip_grad_norm_", "clip_grad_value_", "clip_by_norm_", "global_norm", "GradientAccumulator"]

_EPS = 1e-6  # torch adds this to the norm in the denominator, so the clipped norm is just below max_norm


def _as_grad_list(grads, name="grads"):
    if isinstance(grads, np.ndarray):
        grads = [grads]
    try:
        grads = list(grads)
    except TypeError:
        raise TypeError(f"{name} must be an array or a list of arrays, got {type(grads).__name__}") from None
    for i, g in enumerate(grads):
        if g is None:
            continue
        if not isinstance(g, np.ndarray) or g.dtype.kind != "f":
            kind = g.dtype if isinstance(g, np.ndarray) else type(g).__name__
            raise TypeError(f"{name}[{i}] must be a float numpy array, got {kind}")
        if not g.flags.writeable:
            raise ValueError(f"{name}[{i}] must be writeable: clipping works in place")
    return [g for g in grads if g is not None]


def _norm_type(norm_type):
    if isinstance(norm_type, str) and norm_type.lower() == "inf":
        return math.inf
    if isinstance(norm_type, bool) or not isinstance(norm_type, numbers.Real) or math.isnan(norm_type) \
            or norm_type <= 0:
        raise ValueError(f"norm_type must be a positive number or 'inf', got {norm_type!r}")
    return float(norm_type)


def _check_bound(name, value):
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.ndarray)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not np.all(np.asarray(value, dtype=float) >= 0):
        raise ValueError(f"{name} must be >= 0 (and not NaN), got {value!r}")


def _vector_norm(g, p, axis=None, keepdims=False):
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
    grads = _as_grad_list(grads)
    if not grads:
        return 0.0
    norms = np.array([_vector_norm(g, p) for g in grads])
    return float(_vector_norm(norms, p))


def clip_grad_norm_(grads, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale every gradient in place by min(1, max_norm / (‖g‖ + 1e-6)), ‖g‖ the global norm; returns ‖g‖.

    Exactly ``torch.nn.utils.clip_grad_norm_``: the total is the norm of the per-array norms; every array is
    multiplied (by 1 when the norm is already small); a NaN or infinite total raises a ValueError with
    ``error_if_nonfinite=True``, and otherwise propagates (a NaN total turns every gradient into NaN).
    ``None`` entries are skipped.
    """
    _check_bound("max_norm", max_norm)
    if not isinstance(error_if_nonfinite, (bool, np.bool_)):
        raise TypeError(f"error_if_nonfinite must be True or False, got {error_if_nonfinite!r}")
    p = _norm_type(norm_type)
    grads = _as_grad_list(grads)
    if not grads:
        return 0.0
    total = global_norm(grads, p)
    if error_if_nonfinite and not math.isfinite(total):
        raise ValueError(f"the total norm of order {norm_type} of the gradients is {total}: "
                         "not finite, so they cannot be clipped (error_if_nonfinite=True)")
    coef = min(float(max_norm) / (total + _EPS), 1.0) if not math.isnan(total) else math.nan
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
    norms = []
    for i, g in enumerate(grads):
        if axis is not None and not -g.ndim <= (axis if isinstance(axis, int) else min(axis)) < g.ndim:
            raise ValueError(f"axis {axis!r} is out of range for grads[{i}] of shape {g.shape}")
        norm = _vector_norm(g, p, axis=axis, keepdims=axis is not None)
        coef = np.minimum(np.asarray(max_norm) / (norm + _EPS), 1.0)
        g *= coef
        norms.append(float(norm) if axis is None else np.squeeze(norm, axis=axis))
    return norms


def clip_grad_value_(grads, clip_value):
    """Clamp every gradient coordinate in place to [−clip_value, clip_value] (``clip_grad_value_``)."""
    _check_bound("clip_value", clip_value)
    for g in _as_grad_list(grads):
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
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        self.k = int(k)
        self._sum = None
        self._weight = 0.0
        self.count = 0

    @property
    def ready(self) -> bool:
        return self.count >= self.k

    def add(self, grads, weight=None):
        grads = list(grads) if not isinstance(grads, np.ndarray) else [grads]
        if weight is None:
            weight = 1.0
        if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or not weight > 0 \
                or not math.isfinite(weight):
            raise ValueError(f"weight must be a positive finite number, got {weight!r}")
        if self.ready:
            raise ValueError(f"the accumulator already holds k={self.k} micro-batches: call pop() first")
        for i, g in enumerate(grads):
            if not isinstance(g, np.ndarray) or g.dtype.kind != "f":
                raise TypeError(f"grads[{i}] must be a float numpy array, got {type(g).__name__}")
        if self._sum is not None:
            if len(grads) != len(self._sum):
                raise ValueError(f"grads has {len(grads)} arrays, earlier micro-batches had {len(self._sum)}")
            for i, (g, s) in enumerate(zip(grads, self._sum)):
                if g.shape != s.shape:
                    raise ValueError(f"grads[{i}] has shape {g.shape}, earlier micro-batches had {s.shape}")
            for g, s in zip(grads, self._sum):
                s += weight * g
        else:
            self._sum = [weight * g for g in grads]
        self._weight += weight
        self.count += 1

    def pop(self):
        """The weighted mean of the accumulated gradients; empties the accumulator."""
        if self.count == 0:
            raise ValueError("the accumulator is empty: add() at least one micro-batch before pop()")
        mean = [s / self._weight for s in self._sum]
        self._sum, self._weight, self.count = None, 0.0, 0
        return mean
