"""Problems on data: sparse-feature logistic regression, and the handwritten digits the networks learn."""

from __future__ import annotations

import functools

import numpy as np

from ._base import Problem, _check_int, _check_number, _read_only, _sigmoid

# ----------------------------------------------------------------------------------------------------------------
# Sparse features: where per-coordinate step sizes pay off


class SparseLogistic(Problem):
    r"""Logistic regression on binary features with long-tailed frequencies, the home ground of AdaGrad.

    Feature *j* (0-based) is on in each sample independently with probability
    :math:`p_j = p_{\max}\,(j + 1)^{-\text{exponent}}`: a few features occur in most samples, most features
    in very few (a power law, as words in text). Labels are drawn from a planted model,
    :math:`y \sim \text{Bernoulli}(\sigma(x^\top w^\dagger))`, whose weights have random signs and magnitudes
    :math:`|w^\dagger_j| = \text{signal} / \sqrt{d\,p_j}`: every feature contributes about the same to
    :math:`\sum_j p_j (w_j^\dagger)^2 = \text{signal}^2`, so the rare features carry the *large* weights and
    matter, yet their gradients are small and seldom non-zero.

    The objective, for a weight vector ``w`` (batched as ``(..., d)``), is the mean cross-entropy plus a small
    ridge term, which keeps the minimizer finite when a rare feature happens to occur only in samples of one
    class:

    .. math:: f(w) = \frac1n \sum_{k=1}^{n} \big[\log(1 + e^{z_k}) - y_k z_k\big]
              + \tfrac{\ell_2}{2}\|w\|^2, \qquad z_k = x_k^\top w

    ``grad(w, t, rng)`` is the full-batch gradient when ``rng`` is None, else the gradient on a minibatch of
    ``batch_size`` samples drawn without replacement; all runs of a batch of weight vectors see the same
    minibatch (common random numbers: differences between runs come from the optimizers, not the sampling).
    On a minibatch the data part of the gradient is exactly zero for every feature absent from it.
    ``x_star`` and ``f_star`` are found by Newton's method on first use. Memory per call is
    ``batch × n_samples`` floats.

    Parameters
    ----------
    n_samples, n_features : int >= 1
    exponent : float >= 0
        Power-law exponent of the feature frequencies (0: every feature equally frequent).
    max_frequency : float in (0, 1]
        Frequency of the most common feature.
    signal : float >= 0
        Size of the planted weights (0: labels are coin flips).
    l2 : float >= 0
        Ridge coefficient.
    batch_size : int in [1, n_samples]
        Minibatch size of the stochastic gradient.
    seed : int
        Seed of the data set.
    """

    name = "sparse_logistic"

    def __init__(
        self,
        n_samples=2000,
        n_features=50,
        exponent=1.0,
        max_frequency=0.9,
        signal=3.0,
        l2=1e-3,
        batch_size=32,
        seed=0,
    ):
        self.n_samples = _check_int("n_samples", n_samples, low=1)
        self.dim = self.n_features = _check_int("n_features", n_features, low=1)
        self.exponent = _check_number("exponent", exponent, low=0.0)
        self.max_frequency = _check_number("max_frequency", max_frequency, low=0.0, low_inclusive=False, high=1.0)
        self.signal = _check_number("signal", signal, low=0.0)
        self.l2 = _check_number("l2", l2, low=0.0)
        self.batch_size = _check_int("batch_size", batch_size, low=1)
        if self.batch_size > self.n_samples:
            raise ValueError(f"batch_size must be <= n_samples ({self.n_samples}), got {batch_size}")
        self.seed = _check_int("seed", seed, low=0)

        rng = np.random.default_rng(self.seed)
        ranks = np.arange(1, self.n_features + 1)
        self.target_frequency = _read_only(self.max_frequency * ranks ** (-self.exponent))
        self.X = _read_only(rng.random((self.n_samples, self.n_features)) < self.target_frequency)
        self.feature_frequency = _read_only(self.X.mean(axis=0))
        signs = rng.choice([-1.0, 1.0], size=self.n_features)
        self.planted_weights = _read_only(signs * self.signal / np.sqrt(self.n_features * self.target_frequency))
        planted_probability = _sigmoid(self.X @ self.planted_weights)
        self.y = _read_only(rng.random(self.n_samples) < planted_probability)

        self.x0 = _read_only(np.zeros(self.n_features))
        self._solution = None

    def _describe(self):
        return (
            f"n_samples={self.n_samples}, n_features={self.n_features}, exponent={self.exponent:g}, "
            f"max_frequency={self.max_frequency:g}, signal={self.signal:g}, l2={self.l2:g}, "
            f"batch_size={self.batch_size}, seed={self.seed}"
        )

    def _rows(self, batch, dtype):
        """Features and labels of the rows ``batch`` (None: all rows), in the dtype of the weights."""
        X, y = self.X, self.y
        if batch is not None:
            batch = np.asarray(batch)
            X, y = X[batch], y[batch]
        return X.astype(dtype, copy=False), y.astype(dtype, copy=False)

    def loss(self, w, t=0, batch=None):
        """Mean cross-entropy plus ridge, on all samples or on the rows ``batch`` (an index array)."""
        w = self._points(w, "w")
        X, y = self._rows(batch, w.dtype)
        z = w @ X.T
        data = (np.logaddexp(0.0, z) - y * z).mean(axis=-1)
        return data + 0.5 * self.l2 * np.einsum("...i,...i->...", w, w)

    def grad(self, w, t=0, rng=None, batch=None):
        """Full-batch gradient (``rng`` None), a minibatch of ``batch_size`` rows drawn with ``rng``, or the
        gradient on the rows ``batch``: :math:`\\frac1m X_B^\\top(\\sigma(X_B w) - y_B) + \\ell_2 w`."""
        w = self._points(w, "w")
        if batch is None and rng is not None:
            batch = rng.choice(self.n_samples, size=self.batch_size, replace=False)
        X, y = self._rows(batch, w.dtype)
        residual = _sigmoid(w @ X.T) - y
        return residual @ X / X.shape[0] + self.l2 * w

    def hvp(self, w, v):
        r"""Full-batch Hessian-vector product, :math:`\frac1n X^\top D X v + \ell_2 v`,
        :math:`D = \mathrm{diag}(\sigma(z)(1 - \sigma(z)))`."""
        w, v = self._points(w, "w"), self._points(v, "v")
        X, _ = self._rows(None, np.result_type(w, v))
        s = _sigmoid(w @ X.T)
        return (s * (1.0 - s) * (v @ X.T)) @ X / self.n_samples + self.l2 * v

    def hessian(self, w):
        w = self._points(w, "w")
        X, _ = self._rows(None, w.dtype)
        s = _sigmoid(w @ X.T)
        weighted_rows = X.T * (s * (1.0 - s))[..., None, :]  # X^T D, shape (..., d, n)
        return weighted_rows @ X / self.n_samples + self.l2 * np.eye(self.n_features, dtype=w.dtype)

    def accuracy(self, w):
        """Fraction of samples whose label the sign of :math:`x^\\top w` predicts, shape ``(...)``."""
        w = self._points(w, "w")
        return ((w @ self.X.T > 0) == self.y).mean(axis=-1)

    # -- the minimizer, on demand ------------------------------------------------------------------------------

    @property
    def x_star(self):
        return self._solve()[0]

    @property
    def f_star(self):
        return self._solve()[1]

    def _solve(self, max_iterations=100):
        """Newton's method with backtracking. Gives (None, None) when it does not reach an isolated minimizer,
        which can happen only with ``l2 = 0``: if a feature occurs in samples of one class only, the loss keeps
        falling as its weight grows and the infimum is not attained."""
        if self._solution is not None:
            return self._solution
        w = np.zeros(self.n_features)
        f = float(self.loss(w))
        for _ in range(max_iterations):
            g = self.grad(w)
            if np.linalg.norm(g) <= 1e-11:
                break
            try:
                step = np.linalg.solve(self.hessian(w), g)
            except np.linalg.LinAlgError:  # a feature that never occurs, without ridge: a flat direction
                break
            size = 1.0
            while float(self.loss(w - size * step)) > f - 1e-4 * size * float(g @ step):
                size *= 0.5
                if size < 1e-10:
                    break
            w = w - size * step
            f = float(self.loss(w))
        converged = np.linalg.norm(self.grad(w)) <= 1e-9
        # strictly positive curvature: an isolated minimizer, not a point far out on a flattening slope
        curved = np.linalg.eigvalsh(self.hessian(w)).min() > 1e-9
        self._solution = (_read_only(w), f) if converged and curved else (None, None)
        return self._solution


# ----------------------------------------------------------------------------------------------------------------
# Real data: scikit-learn's handwritten digits


@functools.lru_cache(maxsize=1)
def _digits():
    """scikit-learn's bundled 8×8 digits (1797 images, no download), imported only when a chapter asks."""
    from sklearn.datasets import load_digits

    data = load_digits()
    images, labels = data.data.astype(np.float64), data.target.astype(np.int64)
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def digits_split(test_size, seed):
    """Row indices ``(train, test)`` of the digits, split by class (each class in proportion), deterministic
    given ``seed``; a ValueError if a split would be empty."""
    _, labels = _digits()
    rng = np.random.default_rng(seed)
    train_rows, test_rows = [], []
    for digit in range(10):
        rows = rng.permutation(np.flatnonzero(labels == digit))
        n_test = int(round(test_size * rows.size))
        test_rows.append(rows[:n_test])
        train_rows.append(rows[n_test:])
    train_rows, test_rows = np.sort(np.concatenate(train_rows)), np.sort(np.concatenate(test_rows))
    if train_rows.size == 0 or test_rows.size == 0:
        raise ValueError(f"test_size leaves an empty split, got {test_size}")
    return train_rows, test_rows
