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


def _check_rows(batch, n):
    """``batch`` as an array of row indices into ``n`` rows, or a ValueError naming ``batch``."""
    rows = np.asarray(batch)
    if rows.dtype.kind not in "iu":
        raise ValueError(f"batch must be an array of row indices (integers), got dtype {rows.dtype}")
    if rows.size and (rows.min() < 0 or rows.max() >= n):
        raise ValueError(f"batch must hold row indices from 0 to {n - 1}, got values from {rows.min()} to "
                         f"{rows.max()}")
    return rows


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


# Reductions over a short last axis (the 10 classes of a softmax, the 8 keys of an attention row, the 16 features
# of a LayerNorm): numpy's own reduce walks such an axis row by row, about 60 ns a row for a sum and 200 ns for a
# max, which a stack of 64 networks' rows turns into milliseconds. Across rows, one column at a time, the same
# results take a few numpy calls. Below ``_ROWS`` rows numpy's own reduce is the faster of the two.
_ROWS = 256


def _max_last(x):
    """``x.max(axis=-1, keepdims=True)``, exactly (a maximum does not depend on its order)."""
    k = x.shape[-1]
    if k < 2 or k > 64 or x.size < _ROWS * k:
        return x.max(axis=-1, keepdims=True)
    top = np.maximum(x[..., 0], x[..., 1])
    for i in range(2, k):
        np.maximum(top, x[..., i], out=top)
    return top[..., None]


def _sum_last(x):
    """``x.sum(axis=-1, keepdims=True)``, bit for bit: numpy adds a contiguous row of up to 128 values in eight
    interleaved partial sums, added pairwise, then the leftover values one by one (its pairwise summation), and
    this adds the columns in that order."""
    k = x.shape[-1]
    if k < 2 or k > 128 or x.size < _ROWS * k or not x.flags.c_contiguous:
        return x.sum(axis=-1, keepdims=True)
    if k < 8:
        total = x[..., 0] + x[..., 1]
        for i in range(2, k):
            total += x[..., i]
        return total[..., None]
    full = k - k % 8
    if full > 8:
        partial = [x[..., j] + x[..., j + 8] for j in range(8)]
        for start in range(16, full, 8):
            for j in range(8):
                partial[j] += x[..., start + j]
    else:
        partial = [x[..., j] for j in range(8)]
    total = ((partial[0] + partial[1]) + (partial[2] + partial[3])) + ((partial[4] + partial[5])
                                                                      + (partial[6] + partial[7]))
    for i in range(full, k):
        total += x[..., i]
    return total[..., None]


def _sum_rows(x):
    """``x.sum(axis=-2)``, bit for bit: numpy adds the rows one after the other, each a call of its inner loop over
    the last axis, which is slow when that axis is short (16 bias gradients) and the stack of runs makes many
    rows; with the rows first in memory, one call adds a row of every run at once, in the same order. (A last
    axis of one value is no axis to numpy, which then sums each column pairwise: left to numpy.)"""
    if x.ndim < 3 or not 2 <= x.shape[-1] < 64 or x.size < 16 * _ROWS or not x.flags.c_contiguous:
        return x.sum(axis=-2)
    return np.ascontiguousarray(np.moveaxis(x, -2, 0)).sum(axis=0)


def _mean_last(x):
    """``x.mean(axis=-1, keepdims=True)``, bit for bit."""
    return _sum_last(x) / x.shape[-1]


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


# ----------------------------------------------------------------------------------------------------------------
# The base of the network problems


def _check_dtype(dtype):
    """float32 or float64 as a numpy dtype, or a ValueError naming ``dtype``."""
    try:
        # np.dtype(None) is float64, and None compares equal to it: None is refused here, not taken as a default
        checked = None if dtype is None else np.dtype(dtype)
    except TypeError:
        checked = None
    if checked is None or checked not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    return checked


class NetworkProblem:
    r"""Base of the network problems: the bookkeeping of their protocol, written once.

    A network's parameters are a **list of arrays** (``param_shapes`` gives one run's shapes); every array may
    carry the same leading run dimensions, so a sweep of B networks is one call with arrays of shape
    ``(B, *shape)``, and every result then has those leading dimensions. A subclass sets ``name``,
    ``param_shapes``, ``fan_ins`` (one per array: the initial values are uniform in
    :math:`\pm 1/\sqrt{\text{fan\_in}}`, as ``torch.nn`` draws them), ``dtype`` and ``n_train``, and defines

    * ``loss(params, batch=None, split="train")``: the mean loss, shape ``(...)``;
    * ``_loss_and_grads(params, batch) -> (loss, grads)``: the training loss on rows ``batch`` (an index
      array; None: the whole training set) and its gradient, a list shaped like ``params`` (the public
      :meth:`loss_and_grads` checks the parameters and calls it on blocks of runs);
    * ``metric(params, split="test")``: the task's measure (named by ``metric_name``), shape ``(...)``;
    * ``_forward(params, X) -> (outputs, cache)``, which :meth:`_outputs` calls on blocks of rows to evaluate a
      whole split (the loss and the metric on a split use it).

    It inherits :meth:`loss_and_grads` (in blocks of ``TRAINING_ROWS`` rows × runs), :meth:`init_params`,
    :meth:`repeat_params`, :meth:`flatten_params`, :meth:`unflatten_params`,
    :meth:`minibatches`, a Hessian-vector product :meth:`hvp` by central differences of gradients (a subclass
    with an exact one overrides it) and :meth:`sharpness`, the largest Hessian eigenvalue by power iteration.
    """

    name = "network"
    metric_name = "metric"
    param_shapes: list
    fan_ins: list
    dtype: np.dtype
    n_train: int

    @property
    def n_params(self):
        return sum(math.prod(shape) for shape in self.param_shapes)

    # -- parameters --------------------------------------------------------------------------------------------

    def init_params(self, seed=0):
        """Fresh parameters, seeded: each array uniform in :math:`\\pm 1/\\sqrt{\\text{fan\\_in}}`, drawn in
        order from ``numpy.random.default_rng(seed)``. :meth:`repeat_params` tiles them for a sweep."""
        seed = _check_int("seed", seed, low=0)
        rng = np.random.default_rng(seed)
        params = []
        for shape, fan_in in zip(self.param_shapes, self.fan_ins):
            bound = 1.0 / math.sqrt(fan_in)
            params.append(rng.uniform(-bound, bound, size=shape).astype(self.dtype))
        return params

    def repeat_params(self, params, runs):
        """``runs`` copies of one network's parameters stacked on a new leading axis: B runs from one start."""
        runs = _check_int("runs", runs, low=1)
        return [np.repeat(p[None], runs, axis=0) for p in self._check_params(params)]

    def _check_params(self, params, name="params"):
        """``params`` as a list of arrays of the right shapes, sharing one shape of leading run dimensions."""
        if not isinstance(params, (list, tuple)):
            raise ValueError(f"{name} must be a list of {len(self.param_shapes)} arrays, got {type(params).__name__}")
        if len(params) != len(self.param_shapes):
            raise ValueError(f"{name} must be a list of {len(self.param_shapes)} arrays, got {len(params)}")
        params = [np.asarray(p) for p in params]
        first = self.param_shapes[0]
        batch_shape = params[0].shape[: max(params[0].ndim - len(first), 0)]
        for i, (p, shape) in enumerate(zip(params, self.param_shapes)):
            if p.shape != batch_shape + shape:
                raise ValueError(f"{name}[{i}] must have shape {batch_shape + shape}, got {p.shape}")
            if not np.issubdtype(p.dtype, np.floating):
                raise ValueError(f"{name}[{i}] must be a float array, got dtype {p.dtype}")
        return params

    def _batch_shape(self, params):
        return params[0].shape[: params[0].ndim - len(self.param_shapes[0])]

    def flatten_params(self, params):
        """The parameters as one vector per run, shape ``(..., n_params)``."""
        params = self._check_params(params)
        batch_shape = self._batch_shape(params)
        return np.concatenate([p.reshape(batch_shape + (-1,)) for p in params], axis=-1)

    def unflatten_params(self, vector):
        """Inverse of :meth:`flatten_params`: views into ``vector`` shaped like the parameters."""
        vector = np.asarray(vector)
        if vector.ndim == 0 or vector.shape[-1] != self.n_params:
            raise ValueError(f"vector must have shape (..., {self.n_params}), got {vector.shape}")
        params, start = [], 0
        for shape in self.param_shapes:
            size = math.prod(shape)
            params.append(vector[..., start:start + size].reshape(vector.shape[:-1] + shape))
            start += size
        return params

    def _run_norm(self, arrays):
        """The norm of each run over all arrays, shape (...)."""
        batch_shape = self._batch_shape(arrays)
        return np.sqrt(sum((a * a).reshape(batch_shape + (-1,)).sum(axis=-1) for a in arrays))

    def _per_run(self, value, shape):
        """A value per run, shape (...), made to broadcast against an array of one run's ``shape``."""
        return np.reshape(value, np.shape(value) + (1,) * len(shape))

    # Rows × runs per block of loss_and_grads (None: all runs at once). Sweeping 64 networks is fast when one
    # network's step is mostly Python overhead (the MLP); when it is mostly arithmetic (the CNN, the GRU's 30
    # steps), 64 runs at once make activations of tens of megabytes, slower per run than blocks that stay in cache.
    TRAINING_ROWS = None

    def loss_and_grads(self, params, batch=None):
        """The training loss on the rows ``batch`` (an index array; None: the whole training set), shape
        ``(...)``, and its gradients, a list shaped like ``params``."""
        params = self._check_params(params)
        batch_shape = self._batch_shape(params)
        rows = self.n_train if batch is None else np.size(batch)
        block = self.n_runs_per_block(rows)
        if len(batch_shape) != 1 or batch_shape[0] <= block:
            return self._loss_and_grads(params, batch)
        parts = [self._loss_and_grads([p[start:start + block] for p in params], batch)
                 for start in range(0, batch_shape[0], block)]
        return (np.concatenate([loss for loss, _ in parts]),
                [np.concatenate(arrays) for arrays in zip(*(grads for _, grads in parts))])

    def n_runs_per_block(self, rows):
        """How many runs :meth:`loss_and_grads` computes together on ``rows`` rows."""
        return math.inf if self.TRAINING_ROWS is None else max(1, self.TRAINING_ROWS // max(rows, 1))

    # Rows per call of an evaluation, divided by the number of runs: a whole split for 64 runs at once would make
    # arrays of hundreds of megabytes, slower than the same work in pieces that stay in cache.
    EVALUATION_ROWS = 1024

    def _outputs(self, params, X, axis):
        """The network's outputs (``self._forward(params, X)[0]``) on the rows of ``X``, computed a block of rows
        at a time and joined along ``axis``, the row axis of the outputs."""
        runs = math.prod(self._batch_shape(params))
        rows = max(1, self.EVALUATION_ROWS // max(runs, 1))
        if X.shape[0] <= rows:
            return self._forward(params, X)[0]
        return np.concatenate([self._forward(params, X[start:start + rows])[0]
                               for start in range(0, X.shape[0], rows)], axis=axis)

    # -- data --------------------------------------------------------------------------------------------------

    def _rows(self, batch, split="train"):
        """Inputs and targets of a split (``X_train``, ``y_train`` or ``X_test``, ``y_test``), or its rows
        ``batch``."""
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        X, y = (self.X_train, self.y_train) if split == "train" else (self.X_test, self.y_test)
        if batch is None:
            return X, y
        batch = _check_rows(batch, X.shape[0])
        return X[batch], y[batch]

    def minibatches(self, batch_size, rng, drop_last=False):
        """One epoch of training-row index arrays, shuffled with ``rng`` (like a shuffling DataLoader)."""
        batch_size = _check_int("batch_size", batch_size, low=1)
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng must be a numpy.random.Generator, got {rng!r}")
        order = rng.permutation(self.n_train)
        stop = self.n_train - self.n_train % batch_size if drop_last else self.n_train
        for start in range(0, stop, batch_size):
            yield order[start:start + batch_size]

    # -- curvature ---------------------------------------------------------------------------------------------

    def hvp(self, params, vecs, batch=None):
        r"""Hessian-vector product of the training loss (rows ``batch``) with ``vecs`` (a list shaped like
        ``params``), by central differences of gradients:
        :math:`H v \approx (\nabla f(\theta + h v) - \nabla f(\theta - h v)) / 2h`, with
        :math:`h = \epsilon^{1/3} \max(1, \|\theta\|) / \|v\|` per run (:math:`\epsilon` the dtype's machine
        epsilon), which balances rounding against truncation. Two gradients per product; relative error about
        1e-6 in float64 (use float64 when the digits matter)."""
        params = self._check_params(params)
        vecs = self._check_params(vecs, "vecs")
        scale = np.finfo(self.dtype).eps ** (1.0 / 3.0)
        v_norm = self._run_norm(vecs)
        h = scale * np.maximum(self._run_norm(params), 1.0) / np.where(v_norm > 0, v_norm, 1.0)
        h = h.astype(self.dtype)
        steps = [self._per_run(h, shape) * v for v, shape in zip(vecs, self.param_shapes)]
        plus = self.loss_and_grads([p + s for p, s in zip(params, steps)], batch)[1]
        minus = self.loss_and_grads([p - s for p, s in zip(params, steps)], batch)[1]
        return [(a - b) / (2 * self._per_run(h, shape)) for a, b, shape in zip(plus, minus, self.param_shapes)]

    def sharpness(self, params, batch=None, iters=20, seed=0):
        r"""The sharpness: the largest eigenvalue of the Hessian of the training loss (rows ``batch``; None: the
        whole training set), by ``iters`` steps of power iteration on Hessian-vector products from a seeded
        random start (the same for every run), one estimate per run, shape ``(...)``.

        Gradient descent with step size :math:`\eta` is stable on a quadratic only while the sharpness is below
        :math:`2/\eta`; Cohen et al. (2021, "Gradient descent on neural networks typically occurs at the edge of
        stability", ICLR) found that full-batch training drives the sharpness up to :math:`2/\eta` and holds it
        there. Power iteration finds the eigenvalue of largest *magnitude*; along training the top of the
        spectrum dominates, but at a saddle a negative eigenvalue can win (the value returned is then negative).
        The estimate is the Rayleigh quotient :math:`v^\top H v` of the last unit vector, a lower bound of the
        dominant magnitude that converges at the rate :math:`|\lambda_2/\lambda_1|` per iteration.
        """
        return self.top_eigenpair(params, batch, iters, seed)[0]

    def top_eigenpair(self, params, batch=None, iters=20, seed=0, start=None):
        """The sharpness, as :meth:`sharpness` computes it, and the unit vector whose Rayleigh quotient it is (a
        list shaped like ``params``): ``(estimate, vector)``. ``start`` (a list shaped like ``params``, such as
        the vector of an earlier call) replaces the seeded random start: along a training run the top
        eigenvector moves little between two estimates, so a few iterations from the last one do the work of
        many from a random start."""
        params = self._check_params(params)
        iters = _check_int("iters", iters, low=1)
        seed = _check_int("seed", seed, low=0)
        batch_shape = self._batch_shape(params)
        if start is None:
            rng = np.random.default_rng(seed)
            # one start for every run, so that a run's estimate does not depend on the runs beside it
            v = [np.broadcast_to(rng.standard_normal(shape).astype(self.dtype), batch_shape + shape)
                 for shape in self.param_shapes]
        else:
            v = self._check_params(start, "start")
            if self._batch_shape(v) != batch_shape:
                raise ValueError(f"start must have the runs of params, {batch_shape}, got {self._batch_shape(v)}")
        for _ in range(iters):
            norm = self._run_norm(v)
            norm = np.where(norm > 0, norm, 1.0)
            v = [a / self._per_run(norm, shape) for a, shape in zip(v, self.param_shapes)]
            hv = self.hvp(params, v, batch)
            estimate = sum((a * b).reshape(batch_shape + (-1,)).sum(axis=-1) for a, b in zip(v, hv))
            v, unit = hv, v
        return estimate, unit
