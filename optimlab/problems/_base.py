"""Shared pieces of the problems: argument checks, read-only arrays, batches of points, and the base of
the vector problems (see :mod:`optimlab.problems` for the protocol)."""

from __future__ import annotations

import math
import numbers

import numpy as np

# ----------------------------------------------------------------------------------------------------------------
# Small shared helpers


def _check_number(name, value, *, low=None, high=None, low_inclusive=True, high_inclusive=True):
    """``value`` as a float, or a ValueError naming ``name`` and ``value`` if it is not finite and in range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (number < low or (number == low and not low_inclusive)):
        raise ValueError(f"{name} must be {'>=' if low_inclusive else '>'} {low:g}, got {value}")
    if high is not None and (number > high or (number == high and not high_inclusive)):
        raise ValueError(f"{name} must be {'<=' if high_inclusive else '<'} {high:g}, got {value}")
    return number


def _check_int(name, value, *, low):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


def _read_only(array):
    array = np.array(array, dtype=np.float64)
    array.flags.writeable = False
    return array


def _as_points(x, dim, name="x"):
    """``x`` as a floating array of shape ``(..., dim)``."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    if x.ndim == 0 or x.shape[-1] != dim:
        raise ValueError(f"{name} must have shape (..., {dim}), got shape {x.shape}")
    return x


def _expand(array, shape):
    """``array`` broadcast to ``shape`` as a writable array (a Hessian of a quadratic does not depend on x)."""
    return array if array.shape == tuple(shape) else np.broadcast_to(array, shape).copy()


def _scalar_if_0d(array):
    return array[()] if np.ndim(array) == 0 else array


def _sigmoid(a):
    """Logistic function 1 / (1 + exp(-a)), accurate and free of overflow warnings for any a."""
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


class Problem:
    """Base of the vector problems: the attributes of the protocol and the shape check of a batch of points."""

    name: str = "problem"
    dim: int = 2
    x0: np.ndarray
    bounds: tuple | None = None
    x_star: np.ndarray | None = None
    f_star: float | None = None

    def loss(self, x, t=0):
        raise NotImplementedError

    def grad(self, x, t=0, rng=None):
        raise NotImplementedError

    def _points(self, x, name="x"):
        return _as_points(x, self.dim, name)

    def __repr__(self):
        return f"{type(self).__name__}({self._describe()})"

    def _describe(self):
        return f"dim={self.dim}"
