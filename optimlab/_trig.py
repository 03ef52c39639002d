"""Sine and cosine rounded correctly, computed the same way as the playground's JavaScript.

The C library's sin and cos, and the browser's, are right to within one unit in the last place, but not the
same unit: about one argument in a thousand gives a different last bit. A last bit is enough for an adaptive
method circling a minimum to drift, so the ravine's rotation takes its sine and cosine from here, and
optimlab/playground.js computes them with the same operations (only + − × ÷, which IEEE
arithmetic rounds the same on every machine and in every browser): the same bits everywhere.

x = kπ/2 + r with |r| <= π/4 in double-double arithmetic (about 106 bits), then the Taylor series of sin r and
cos r in double-double, rounded once.
"""

from __future__ import annotations

import numpy as np

_HALF_PI = (1.5707963267948966, 6.123233995736766e-17)  # π/2 as a sum of two doubles
_LARGEST = 1e5  # beyond, the reduction above loses accuracy: numpy's sin and cos are used


def _two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _quick(hi, lo):
    s = hi + lo
    return s, lo - (s - hi)


def _split(a):
    c = 134217729.0 * a
    hi = c - (c - a)
    return hi, a - hi


def _two_prod(a, b):
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _mul(a, b):
    p, e = _two_prod(a[0], b[0])
    return _quick(p, e + (a[0] * b[1] + a[1] * b[0]))


def _add(a, b):
    s, e = _two_sum(a[0], b[0])
    return _quick(s, e + a[1] + b[1])


def _div(a, d):
    """a / d for a double-double a and a small integer d."""
    q = a[0] / d
    p, e = _two_prod(q, d)
    return _quick(q, ((a[0] - p) - e + a[1]) / d)


def sin_cos(x):
    """``(sin x, cos x)`` rounded correctly (to about 2⁻⁵⁰ of a unit in the last place), elementwise."""
    x = np.asarray(x, dtype=np.float64)
    near = np.abs(x) <= _LARGEST
    xs = np.where(near, x, 0.0)
    k = np.floor(xs / _HALF_PI[0] + 0.5)
    r = _add(_add((xs, 0.0 * xs), _two_prod(-k, _HALF_PI[0])), (-k * _HALF_PI[1], 0.0 * xs))
    r2 = _mul(r, r)
    sin, cos, term, cterm = r, (1.0 + 0.0 * xs, 0.0 * xs), r, (1.0 + 0.0 * xs, 0.0 * xs)
    for n in range(1, 14):
        term = _div(_mul(term, r2), -(2 * n) * (2 * n + 1))
        sin = _add(sin, term)
        cterm = _div(_mul(cterm, r2), -(2 * n - 1) * (2 * n))
        cos = _add(cos, cterm)
    s, c, q = sin[0] + sin[1], cos[0] + cos[1], np.mod(k, 4)
    out_sin = np.select([q == 0, q == 1, q == 2], [s, c, -s], -c)
    out_cos = np.select([q == 0, q == 1, q == 2], [c, -s, -c], s)
    with np.errstate(invalid="ignore"):
        out_sin, out_cos = np.where(near, out_sin, np.sin(x)), np.where(near, out_cos, np.cos(x))
    if out_sin.ndim == 0:
        return float(out_sin), float(out_cos)
    return out_sin, out_cos


def cos(x):
    """cos x rounded correctly, elementwise (see :func:`sin_cos`)."""
    return sin_cos(x)[1]
