"""Small networks with hand-written backpropagation, vectorized over a leading batch of runs."""

from __future__ import annotations

import math
import numbers

import numpy as np

from ._base import _check_int, _check_number
from .data import _digits

# ----------------------------------------------------------------------------------------------------------------
# A small multilayer perceptron on handwritten digits


_ACTIVATIONS = {
    # name: (phi, phi', phi''), each a function of the pre-activation a
    "tanh": (
        np.tanh,
        lambda a: 1.0 - np.tanh(a) ** 2,
        lambda a: -2.0 * np.tanh(a) * (1.0 - np.tanh(a) ** 2),
    ),
    "relu": (
        lambda a: np.maximum(a, 0.0),
        lambda a: (a > 0).astype(a.dtype),
        np.zeros_like,
    ),
}


class DigitsMLP:
    r"""A multilayer perceptron with hand-written backpropagation on scikit-learn's handwritten digits.

    The data are the 1797 8×8 images of ``sklearn.datasets.load_digits`` (shipped with scikit-learn),
    split into train and test sets stratified by class and deterministic given ``seed``, and standardized
    with the training set's per-pixel mean and standard deviation (constant pixels are only centred).

    **Parameters are a list of arrays** ``[W1, b1, W2, b2, ..., WL, bL]``, ``W`` of shape
    ``(fan_in, fan_out)`` and ``b`` of shape ``(fan_out,)``, so per-layer learning rates are per-array
    learning rates. There is no weight decay in the loss: that is the optimizer's business. The network
    computes

    .. math:: a_l = z_{l-1} W_l + b_l, \quad z_l = \phi(a_l), \quad z_0 = X,
              \qquad \text{logits} = a_L, \qquad
              f = \frac1m \sum_k \Big[\log\sum_c e^{a_{L,kc}} - a_{L,k y_k}\Big]

    Every method also accepts parameters with leading batch dimensions (``W`` of shape ``(..., fan_in,
    fan_out)``, ``b`` of shape ``(..., fan_out)``): a sweep of B networks is one call, and losses then have
    shape ``(...)``. Arrays may be float64 (default) or float32 (``dtype``).

    Curvature: :meth:`hvp` is the *exact* Hessian-vector product by forward-over-reverse differentiation
    (Pearlmutter 1994's R-operator, written out by hand); :meth:`gnvp` is the Gauss-Newton product
    :math:`J^\top H_{\text{softmax}} J v`; :meth:`sampled_label_grads` is the gradient Sophia's
    Gauss-Newton-Bartlett estimator squares (Liu et al. 2023).

    Parameters
    ----------
    hidden : tuple of int
        Widths of the hidden layers (``()`` gives softmax regression).
    activation : "tanh" or "relu"
    test_size : float in (0, 1)
        Fraction of each class held out for testing.
    seed : int
        Seed of the train/test split.
    dtype : float64 or float32
    """

    name = "digits_mlp"
    n_classes = 10

    def __init__(self, hidden=(32,), activation="tanh", test_size=0.25, seed=0, dtype=np.float64):
        if isinstance(hidden, numbers.Integral):
            hidden = (hidden,)
        hidden = tuple(hidden)
        for i, width in enumerate(hidden):
            _check_int(f"hidden[{i}]", width, low=1)
        self.hidden = tuple(int(width) for width in hidden)
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        self.activation = activation
        self._phi, self._dphi, self._ddphi = _ACTIVATIONS[activation]
        self.test_size = _check_number("test_size", test_size, low=0.0, high=1.0, low_inclusive=False,
                                       high_inclusive=False)
        self.seed = _check_int("seed", seed, low=0)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")

        images, labels = _digits()
        rng = np.random.default_rng(self.seed)
        train_rows, test_rows = [], []
        for digit in range(self.n_classes):
            rows = rng.permutation(np.flatnonzero(labels == digit))
            n_test = int(round(self.test_size * rows.size))
            test_rows.append(rows[:n_test])
            train_rows.append(rows[n_test:])
        train_rows, test_rows = np.sort(np.concatenate(train_rows)), np.sort(np.concatenate(test_rows))
        if train_rows.size == 0 or test_rows.size == 0:
            raise ValueError(f"test_size leaves an empty split, got {test_size}")

        self.feature_mean = images[train_rows].mean(axis=0)
        scale = images[train_rows].std(axis=0)
        self.feature_scale = np.where(scale > 0, scale, 1.0)
        self.X_train = self.scale_features(images[train_rows])
        self.X_test = self.scale_features(images[test_rows])
        self.y_train, self.y_test = labels[train_rows], labels[test_rows]
        for array in (self.X_train, self.X_test, self.y_train, self.y_test):
            array.flags.writeable = False

        self.n_features = images.shape[1]
        self.layer_sizes = (self.n_features, *self.hidden, self.n_classes)
        self.n_layers = len(self.layer_sizes) - 1
        self.param_shapes = []
        for fan_in, fan_out in zip(self.layer_sizes[:-1], self.layer_sizes[1:]):
            self.param_shapes += [(fan_in, fan_out), (fan_out,)]
        self.n_params = sum(math.prod(shape) for shape in self.param_shapes)

    def __repr__(self):
        return (f"DigitsMLP(hidden={self.hidden}, activation={self.activation!r}, test_size={self.test_size:g}, "
                f"seed={self.seed}, dtype={self.dtype.name})")

    @property
    def n_train(self):
        return self.y_train.size

    def scale_features(self, images):
        """Raw pixel values (0..16) to the standardized inputs the network sees."""
        return ((np.asarray(images, dtype=np.float64) - self.feature_mean) / self.feature_scale).astype(self.dtype)

    # -- parameters --------------------------------------------------------------------------------------------

    def init_params(self, seed=0):
        """Fresh parameters, drawn as ``torch.nn.Linear`` draws them: W and b uniform in
        :math:`\\pm 1/\\sqrt{\\text{fan\\_in}}`. To start a sweep of B runs from the same point, tile them:
        ``[np.repeat(p[None], B, axis=0) for p in params]``."""
        rng = np.random.default_rng(seed)
        params = []
        for fan_in, fan_out in zip(self.layer_sizes[:-1], self.layer_sizes[1:]):
            bound = 1.0 / math.sqrt(fan_in)
            params.append(rng.uniform(-bound, bound, size=(fan_in, fan_out)).astype(self.dtype))
            params.append(rng.uniform(-bound, bound, size=fan_out).astype(self.dtype))
        return params

    def _check_params(self, params, name="params"):
        if len(params) != len(self.param_shapes):
            raise ValueError(f"{name} must be a list of {len(self.param_shapes)} arrays, got {len(params)}")
        params = [np.asarray(p) for p in params]
        batch_shape = params[0].shape[: params[0].ndim - 2]
        for i, (p, shape) in enumerate(zip(params, self.param_shapes)):
            if p.shape != batch_shape + shape:
                raise ValueError(f"{name}[{i}] must have shape {batch_shape + shape}, got {p.shape}")
        return params

    def flatten_params(self, params):
        """The parameters as one vector per run, shape ``(..., n_params)``."""
        params = self._check_params(params)
        batch_shape = params[0].shape[:-2]
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

    # -- forward and backward ----------------------------------------------------------------------------------

    def _split(self, split):
        if split == "train":
            return self.X_train, self.y_train
        if split == "test":
            return self.X_test, self.y_test
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")

    def _rows(self, batch, split="train"):
        X, y = self._split(split)
        if batch is None:
            return X, y
        batch = np.asarray(batch)
        return X[batch], y[batch]

    def _forward(self, params, X):
        """Pre-activations a_1..a_L and layer inputs z_0..z_{L-1}."""
        inputs, pre_activations = [X], []
        for layer in range(self.n_layers):
            W, b = params[2 * layer], params[2 * layer + 1]
            a = inputs[-1] @ W + b[..., None, :]
            pre_activations.append(a)
            if layer < self.n_layers - 1:
                inputs.append(self._phi(a))
        return pre_activations, inputs

    def _backward(self, params, pre_activations, inputs, d_logits):
        """Gradients of the loss from its gradient with respect to the logits (standard backpropagation)."""
        grads = [None] * len(params)
        d_pre = d_logits
        for layer in reversed(range(self.n_layers)):
            grads[2 * layer] = np.swapaxes(inputs[layer], -1, -2) @ d_pre
            grads[2 * layer + 1] = d_pre.sum(axis=-2)
            if layer > 0:
                d_pre = (d_pre @ np.swapaxes(params[2 * layer], -1, -2)) * self._dphi(pre_activations[layer - 1])
        return grads

    @staticmethod
    def _softmax(logits):
        shifted = logits - logits.max(axis=-1, keepdims=True)
        e = np.exp(shifted)
        return e / e.sum(axis=-1, keepdims=True)

    def _cross_entropy(self, logits, y):
        shifted = logits - logits.max(axis=-1, keepdims=True)
        log_normalizer = np.log(np.exp(shifted).sum(axis=-1))
        picked = np.take_along_axis(shifted, np.broadcast_to(y, shifted.shape[:-1])[..., None], axis=-1)
        return (log_normalizer - picked[..., 0]).mean(axis=-1)

    def _one_hot(self, labels):
        return (labels[..., None] == np.arange(self.n_classes)).astype(self.dtype)

    def logits(self, params, X):
        """Network outputs before the softmax for inputs ``X`` (standardized, e.g. ``self.X_test``),
        shape ``(..., n, 10)``."""
        params = self._check_params(params)
        return self._forward(params, np.asarray(X))[0][-1]

    def loss(self, params, batch=None, split="train"):
        """Mean cross-entropy on a split (``"train"`` or ``"test"``), or on its rows ``batch``."""
        params = self._check_params(params)
        X, y = self._rows(batch, split)
        return self._cross_entropy(self._forward(params, X)[0][-1], y)

    def loss_and_grads(self, params, batch=None):
        """Mean training cross-entropy on the rows ``batch`` (None: the whole training set) and its gradients,
        a list shaped like ``params``."""
        params = self._check_params(params)
        X, y = self._rows(batch)
        pre_activations, inputs = self._forward(params, X)
        logits = pre_activations[-1]
        d_logits = (self._softmax(logits) - self._one_hot(y)) / X.shape[0]
        return self._cross_entropy(logits, y), self._backward(params, pre_activations, inputs, d_logits)

    def accuracy(self, params, split="test"):
        """Fraction of a split classified correctly, shape ``(...)``."""
        params = self._check_params(params)
        X, y = self._split(split)
        return (self._forward(params, X)[0][-1].argmax(axis=-1) == y).mean(axis=-1)

    def minibatches(self, batch_size, rng, drop_last=False):
        """One epoch of training-row index arrays, shuffled with ``rng`` (like a shuffling DataLoader)."""
        batch_size = _check_int("batch_size", batch_size, low=1)
        order = rng.permutation(self.n_train)
        stop = self.n_train - self.n_train % batch_size if drop_last else self.n_train
        for start in range(0, stop, batch_size):
            yield order[start:start + batch_size]

    # -- curvature ---------------------------------------------------------------------------------------------

    def _curvature_product(self, params, vecs, batch, exact):
        """Forward-over-reverse: the directional derivative R{.} = d/de (.)(params + e vecs) of every quantity
        of the backward pass. The Gauss-Newton product drops the terms that carry the loss gradient itself."""
        params = self._check_params(params)
        vecs = self._check_params(vecs, "vecs")
        X, y = self._rows(batch)
        n = X.shape[0]
        pre_activations, inputs = self._forward(params, X)

        # R-forward: how the pre-activations and layer inputs move along vecs
        r_pre, r_inputs = [], [None]
        for layer in range(self.n_layers):
            W, dW, db = params[2 * layer], vecs[2 * layer], vecs[2 * layer + 1]
            r_a = inputs[layer] @ dW + db[..., None, :]
            if layer > 0:
                r_a = r_a + r_inputs[layer] @ W
            r_pre.append(r_a)
            if layer < self.n_layers - 1:
                r_inputs.append(self._dphi(pre_activations[layer]) * r_a)

        # the loss's curvature in the logits: d(softmax)/da applied to R{a_L}
        p = self._softmax(pre_activations[-1])
        d_pre = (p - self._one_hot(y)) / n
        r_d_pre = p * (r_pre[-1] - (p * r_pre[-1]).sum(axis=-1, keepdims=True)) / n

        # R-backward
        products = [None] * len(params)
        for layer in reversed(range(self.n_layers)):
            inputs_T = np.swapaxes(inputs[layer], -1, -2)
            products[2 * layer] = inputs_T @ r_d_pre
            if exact and layer > 0:
                products[2 * layer] = products[2 * layer] + np.swapaxes(r_inputs[layer], -1, -2) @ d_pre
            products[2 * layer + 1] = r_d_pre.sum(axis=-2)
            if layer > 0:
                W_T = np.swapaxes(params[2 * layer], -1, -2)
                slope = self._dphi(pre_activations[layer - 1])
                d_inputs = d_pre @ W_T
                r_d_inputs = r_d_pre @ W_T
                if exact:
                    r_d_inputs = r_d_inputs + d_pre @ np.swapaxes(vecs[2 * layer], -1, -2)
                r_d_pre_next = r_d_inputs * slope
                if exact:
                    r_d_pre_next = r_d_pre_next + d_inputs * self._ddphi(pre_activations[layer - 1]) * r_pre[layer - 1]
                d_pre, r_d_pre = d_inputs * slope, r_d_pre_next
        return products

    def hvp(self, params, vecs, batch=None):
        """Exact Hessian-vector product of the training loss (rows ``batch``) with ``vecs`` (a list shaped like
        ``params``), by forward-over-reverse differentiation."""
        return self._curvature_product(params, vecs, batch, exact=True)

    def gnvp(self, params, vecs, batch=None):
        r"""Gauss-Newton product :math:`J^\top H_{\text{softmax}} J v`: the Hessian without the terms from
        the network's own curvature; positive semi-definite."""
        return self._curvature_product(params, vecs, batch, exact=False)

    def sampled_label_grads(self, params, batch, rng):
        r"""Gradient of the mean cross-entropy on rows ``batch`` (None: all training rows) with each label
        replaced by a draw :math:`\hat y \sim \text{softmax}(\text{logits})` from the model itself.

        Sophia's Gauss-Newton-Bartlett estimator is :math:`m\,\hat g \odot \hat g` for a batch of m rows: in
        expectation :math:`m\,\mathbb E[\hat g \hat g^\top]` is the Gauss-Newton matrix (Bartlett's identity).
        Each run of a batch of parameters draws its own labels.
        """
        params = self._check_params(params)
        X, _ = self._rows(batch)
        pre_activations, inputs = self._forward(params, X)
        p = self._softmax(pre_activations[-1])
        # inverse-CDF sampling of one class per row and run; the clip guards against cumsum rounding below 1
        uniform = rng.random(p.shape[:-1] + (1,))
        sampled = np.minimum((np.cumsum(p, axis=-1) < uniform).sum(axis=-1), self.n_classes - 1)
        d_logits = (p - self._one_hot(sampled)) / X.shape[0]
        return self._backward(params, pre_activations, inputs, d_logits)
