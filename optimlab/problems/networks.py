"""Small networks with hand-written backpropagation, vectorized over leading run dimensions.

Every network follows the protocol of :class:`optimlab.problems._base.NetworkProblem`: parameters are a list of
arrays, ``init_params(seed)``, ``loss(params, batch=None)``, ``loss_and_grads(params, batch=None)``, a task metric
``metric(params, split="test")`` (named by ``metric_name``), ``minibatches(batch_size, rng)``, ``hvp`` and
``sharpness``. Every array may carry the same leading run dimensions, so a sweep of B networks is one call.

* :class:`DigitsMLP`: a multilayer perceptron on the 8×8 digits, with exact curvature products.
* :class:`DigitsCNN`: a small convolutional network on the same digits.
* :class:`AddingGRU`: a gated recurrent network on the adding problem, where gradients vanish and explode.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable

import numpy as np

from ._base import NetworkProblem, _check_dtype, _check_int, _check_number, _check_rows, _max_last, _sum_last, _sum_rows
from .data import _digits, digits_split

# ----------------------------------------------------------------------------------------------------------------
# Classifiers of the handwritten digits: the data, the cross-entropy and the accuracy, shared


def _softmax(logits):
    shifted = logits - _max_last(logits)
    e = np.exp(shifted)
    return e / _sum_last(e)


class DigitsClassifier(NetworkProblem):
    """Base of the networks on scikit-learn's handwritten digits: the split, the standardization, the mean
    cross-entropy and its gradient, the accuracy. A subclass defines ``_forward(params, X) -> (logits, cache)``
    and ``_backward(params, cache, d_logits) -> grads``.

    The data are the 1797 8×8 images of ``sklearn.datasets.load_digits`` (shipped with scikit-learn), split
    into train and test sets stratified by class and deterministic given ``seed``, and standardized with the
    training set's per-pixel mean and standard deviation (constant pixels are only centred). ``X_train`` and
    ``X_test`` have one row of 64 pixels per image.
    """

    n_classes = 10
    metric_name = "accuracy"

    def _load_digits(self, test_size, seed, dtype):
        self.test_size = _check_number("test_size", test_size, low=0.0, high=1.0, low_inclusive=False,
                                       high_inclusive=False)
        self.seed = _check_int("seed", seed, low=0)
        self.dtype = _check_dtype(dtype)
        images, labels = _digits()
        train_rows, test_rows = digits_split(self.test_size, self.seed)
        self.feature_mean = images[train_rows].mean(axis=0)
        scale = images[train_rows].std(axis=0)
        self.feature_scale = np.where(scale > 0, scale, 1.0)
        self.X_train = self.scale_features(images[train_rows])
        self.X_test = self.scale_features(images[test_rows])
        self.y_train, self.y_test = labels[train_rows], labels[test_rows]
        for array in (self.X_train, self.X_test, self.y_train, self.y_test):
            array.flags.writeable = False
        self.n_features = images.shape[1]

    @property
    def n_train(self):
        return self.y_train.size

    def scale_features(self, images):
        """Raw pixel values (0..16) to the standardized inputs the network sees."""
        return ((np.asarray(images, dtype=np.float64) - self.feature_mean) / self.feature_scale).astype(self.dtype)

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
        rows = _check_rows(batch, len(X))
        return X[rows], y[rows]

    _softmax = staticmethod(_softmax)

    def _cross_entropy(self, logits, y):
        shifted = logits - _max_last(logits)
        log_normalizer = np.log(_sum_last(np.exp(shifted))[..., 0])
        picked = np.take_along_axis(shifted, np.broadcast_to(y, shifted.shape[:-1])[..., None], axis=-1)
        return (log_normalizer - picked[..., 0]).mean(axis=-1)

    def _one_hot(self, labels):
        return (labels[..., None] == np.arange(self.n_classes)).astype(self.dtype)

    def logits(self, params, X):
        """Network outputs before the softmax for inputs ``X`` (standardized, e.g. ``self.X_test``),
        shape ``(..., n, 10)``."""
        params = self._check_params(params)
        return self._outputs(params, np.asarray(X), axis=-2)

    def loss(self, params, batch=None, split="train"):
        """Mean cross-entropy on a split (``"train"`` or ``"test"``), or on its rows ``batch``."""
        params = self._check_params(params)
        X, y = self._rows(batch, split)
        return self._cross_entropy(self._outputs(params, X, axis=-2), y)

    def _loss_and_grads(self, params, batch):
        """Mean training cross-entropy on the rows ``batch`` (None: the whole training set) and its gradients."""
        X, y = self._rows(batch)
        logits, cache = self._forward(params, X)
        d_logits = (self._softmax(logits) - self._one_hot(y)) / X.shape[0]
        return self._cross_entropy(logits, y), self._backward(params, cache, d_logits)

    def accuracy(self, params, split="test"):
        """Fraction of a split classified correctly, shape ``(...)``."""
        params = self._check_params(params)
        X, y = self._split(split)
        return (self._outputs(params, X, axis=-2).argmax(axis=-1) == y).mean(axis=-1)

    def metric(self, params, split="test"):
        """The task's measure: :meth:`accuracy`."""
        return self.accuracy(params, split)

    def sampled_label_grads(self, params, batch, rng):
        r"""Gradient of the mean cross-entropy on rows ``batch`` (None: all training rows) with each label
        replaced by a draw :math:`\hat y \sim \text{softmax}(\text{logits})` from the model itself.

        Sophia's Gauss-Newton-Bartlett estimator is :math:`m\,\hat g \odot \hat g` for a batch of m rows: in
        expectation :math:`m\,\mathbb E[\hat g \hat g^\top]` is the Gauss-Newton matrix (Bartlett's identity).
        Each run of a batch of parameters draws its own labels.
        """
        params = self._check_params(params)
        X, _ = self._rows(batch)
        logits, cache = self._forward(params, X)
        p = self._softmax(logits)
        # inverse-CDF sampling of one class per row and run; the clip guards against cumsum rounding below 1
        uniform = rng.random(p.shape[:-1] + (1,))
        sampled = np.minimum((np.cumsum(p, axis=-1) < uniform).sum(axis=-1), self.n_classes - 1)
        d_logits = (p - self._one_hot(sampled)) / X.shape[0]
        return self._backward(params, cache, d_logits)


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


class DigitsMLP(DigitsClassifier):
    r"""A multilayer perceptron with hand-written backpropagation on scikit-learn's handwritten digits.

    The data are those of :class:`DigitsClassifier`: the 1797 8×8 images of ``sklearn.datasets.load_digits``,
    split into train and test sets stratified by class and standardized per pixel. It is the course's real-data
    network: fast enough for sweeps of hundreds of runs, with exact curvature for Sophia and for the sharpness.

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

    def __init__(self, hidden=(32,), activation="tanh", test_size=0.25, seed=0, dtype=np.float64):
        if isinstance(hidden, numbers.Integral):
            hidden = (hidden,)
        if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Iterable):
            raise ValueError(f"hidden must be an integer or a sequence of integers, got {hidden!r}")
        hidden = tuple(hidden)
        for i, width in enumerate(hidden):
            _check_int(f"hidden[{i}]", width, low=1)
        self.hidden = tuple(int(width) for width in hidden)
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        self.activation = activation
        self._phi, self._dphi, self._ddphi = _ACTIVATIONS[activation]
        self._load_digits(test_size, seed, dtype)

        self.layer_sizes = (self.n_features, *self.hidden, self.n_classes)
        self.n_layers = len(self.layer_sizes) - 1
        self.param_shapes, self.fan_ins = [], []
        for fan_in, fan_out in zip(self.layer_sizes[:-1], self.layer_sizes[1:]):
            self.param_shapes += [(fan_in, fan_out), (fan_out,)]
            self.fan_ins += [fan_in, fan_in]

    def __repr__(self):
        return (f"DigitsMLP(hidden={self.hidden}, activation={self.activation!r}, test_size={self.test_size:g}, "
                f"seed={self.seed}, dtype={self.dtype.name})")

    # -- forward and backward ----------------------------------------------------------------------------------

    def _layers(self, params, X):
        """Pre-activations a_1..a_L and layer inputs z_0..z_{L-1}."""
        inputs, pre_activations = [X], []
        for layer in range(self.n_layers):
            W, b = params[2 * layer], params[2 * layer + 1]
            a = inputs[-1] @ W + b[..., None, :]
            pre_activations.append(a)
            if layer < self.n_layers - 1:
                inputs.append(self._phi(a))
        return pre_activations, inputs

    def _forward(self, params, X):
        pre_activations, inputs = self._layers(params, X)
        return pre_activations[-1], (pre_activations, inputs)

    def _backward(self, params, cache, d_logits):
        """Gradients of the loss from its gradient with respect to the logits (standard backpropagation)."""
        pre_activations, inputs = cache
        grads = [None] * len(params)
        d_pre = d_logits
        for layer in reversed(range(self.n_layers)):
            grads[2 * layer] = np.swapaxes(inputs[layer], -1, -2) @ d_pre
            grads[2 * layer + 1] = _sum_rows(d_pre)
            if layer > 0:
                d_pre = (d_pre @ np.swapaxes(params[2 * layer], -1, -2)) * self._dphi(pre_activations[layer - 1])
        return grads

    # -- curvature ---------------------------------------------------------------------------------------------

    def _curvature_product(self, params, vecs, batch, exact):
        """Forward-over-reverse: the directional derivative R{.} = d/de (.)(params + e vecs) of every quantity
        of the backward pass. The Gauss-Newton product drops the terms that carry the loss gradient itself."""
        params = self._check_params(params)
        vecs = self._check_params(vecs, "vecs")
        X, y = self._rows(batch)
        n = X.shape[0]
        pre_activations, inputs = self._layers(params, X)

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
        r_d_pre = p * (r_pre[-1] - _sum_last(p * r_pre[-1])) / n

        # R-backward
        products = [None] * len(params)
        for layer in reversed(range(self.n_layers)):
            inputs_T = np.swapaxes(inputs[layer], -1, -2)
            products[2 * layer] = inputs_T @ r_d_pre
            if exact and layer > 0:
                products[2 * layer] = products[2 * layer] + np.swapaxes(r_inputs[layer], -1, -2) @ d_pre
            products[2 * layer + 1] = _sum_rows(r_d_pre)
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


# ----------------------------------------------------------------------------------------------------------------
# A small convolutional network on the same digits


def _im2col(Z):
    """3×3 patches of ``Z`` (..., n, S, S, C) with zero padding 1, shape (..., n, S, S, 9 C), ordered (i, j, c)."""
    S = Z.shape[-2]
    padded = np.zeros(Z.shape[:-3] + (S + 2, S + 2, Z.shape[-1]), dtype=Z.dtype)
    padded[..., 1:-1, 1:-1, :] = Z
    return np.concatenate([padded[..., i:i + S, j:j + S, :] for i in range(3) for j in range(3)], axis=-1)


def _col2im(d_patches, channels):
    """Adjoint of :func:`_im2col`: each patch gradient added back where the patch came from."""
    S = d_patches.shape[-2]
    padded = np.zeros(d_patches.shape[:-3] + (S + 2, S + 2, channels), dtype=d_patches.dtype)
    for k, (i, j) in enumerate((i, j) for i in range(3) for j in range(3)):
        padded[..., i:i + S, j:j + S, :] += d_patches[..., k * channels:(k + 1) * channels]
    return padded[..., 1:-1, 1:-1, :]


_CORNERS = ((0, 0), (0, 1), (1, 0), (1, 1))


def _corners(A):
    """The four corners of the 2×2 windows of ``A`` (..., S, S, C), each of shape (..., S/2, S/2, C)."""
    return [A[..., i::2, j::2, :] for i, j in _CORNERS]


class DigitsCNN(DigitsClassifier):
    r"""A small convolutional network with hand-written backpropagation on the 8×8 digits.

    What it is for: the other kind of network. Its parameters are few and shared across the image (a 3×3
    kernel sees every position), its layers differ in scale, and its loss surface differs from the MLP's, so
    "SGD with momentum against AdamW on a CNN" is a real experiment, fast enough to sweep (a whole epoch of 64
    networks is one call per minibatch). Each block is a 3×3 convolution (stride 1, zero padding 1), a ReLU and a
    2×2 max pooling, which halves the image; a linear layer maps the last block's features to the 10 logits:

    .. math:: Z_l = \text{pool}\big(\text{relu}(K_l * Z_{l-1} + b_l)\big), \quad Z_0 = X, \qquad
              \text{logits} = \text{vec}(Z_L)\, W + c

    with the mean cross-entropy of :class:`DigitsMLP`. (ReLU and max pooling commute, and the code pools
    first, on a quarter of the values.) The convolutions are matrix products over 3×3 patches gathered with
    numpy (im2col), channels last.

    **Parameters** ``[K1, b1, ..., KL, bL, W, c]``: kernels ``K`` of shape ``(3, 3, C_in, C_out)`` (torch keeps
    ``(C_out, C_in, 3, 3)``), biases ``(C_out,)``, ``W`` of shape ``(features, 10)`` where the features of one
    image are the last block's output flattened in (row, column, channel) order, and ``c`` of shape ``(10,)``.
    Every array may carry the same leading run dimensions (a sweep of B networks is one call). Initial values
    are uniform in :math:`\pm 1/\sqrt{\text{fan\_in}}` (``fan_in = 9 C_in`` for a convolution), as torch draws
    them. :meth:`hvp` (and so :meth:`sharpness`) uses central differences of gradients.

    Parameters
    ----------
    channels : tuple of int
        Output channels of each convolution block, one to three blocks (the image is 8, 4, 2, 1 pixels wide
        after 0, 1, 2, 3 poolings). Default ``(8, 16)``: 8×8×1 → 4×4×8 → 2×2×16 → 64 features → 10.
    test_size : float in (0, 1)
        Fraction of each class held out for testing.
    seed : int
        Seed of the train/test split.
    dtype : float64 or float32
    """

    name = "digits_cnn"
    image_size = 8
    TRAINING_ROWS = 256  # rows × runs per block of loss_and_grads: see NetworkProblem.loss_and_grads

    def __init__(self, channels=(8, 16), test_size=0.25, seed=0, dtype=np.float64):
        if isinstance(channels, numbers.Integral):
            channels = (channels,)
        if not isinstance(channels, (tuple, list)) or not 1 <= len(channels) <= 3:
            raise ValueError(f"channels must be a tuple of one to three channel counts, got {channels!r}")
        for i, width in enumerate(channels):
            _check_int(f"channels[{i}]", width, low=1)
        self.channels = tuple(int(width) for width in channels)
        self._load_digits(test_size, seed, dtype)

        self.param_shapes, self.fan_ins = [], []
        c_in = 1
        for c_out in self.channels:
            self.param_shapes += [(3, 3, c_in, c_out), (c_out,)]
            self.fan_ins += [9 * c_in, 9 * c_in]
            c_in = c_out
        side = self.image_size >> len(self.channels)
        self.n_hidden = side * side * c_in
        self.param_shapes += [(self.n_hidden, self.n_classes), (self.n_classes,)]
        self.fan_ins += [self.n_hidden, self.n_hidden]

    def __repr__(self):
        return (f"DigitsCNN(channels={self.channels}, test_size={self.test_size:g}, seed={self.seed}, "
                f"dtype={self.dtype.name})")

    def _forward(self, params, X):
        """Logits, and what the backward pass needs: each block's patches, pooling windows and output."""
        n, S = X.shape[-2], self.image_size
        Z = X.reshape(X.shape[:-1] + (S, S, 1))
        cache = []
        for block in range(len(self.channels)):
            K, b = params[2 * block], params[2 * block + 1]
            runs = K.shape[:-4]
            patches = _im2col(Z)
            lead = np.broadcast_shapes(patches.shape[:-4], runs)
            flat = patches.reshape(patches.shape[:-4] + (n * S * S, -1))
            conv = flat @ K.reshape(runs + (-1, K.shape[-1])) + b[..., None, :]
            corners = _corners(conv.reshape(lead + (n, S, S, K.shape[-1])))
            pooled = np.maximum(np.maximum(corners[0], corners[1]), np.maximum(corners[2], corners[3]))
            Z = np.maximum(pooled, 0.0)
            cache.append((flat, corners, pooled))
            S //= 2
        features = Z.reshape(Z.shape[:-3] + (self.n_hidden,))
        W, c = params[-2], params[-1]
        return features @ W + c[..., None, :], (cache, features)

    def _backward(self, params, cache, d_logits):
        blocks, features = cache
        grads = [None] * len(params)
        grads[-2] = np.swapaxes(features, -1, -2) @ d_logits
        grads[-1] = _sum_rows(d_logits)
        d_Z = (d_logits @ np.swapaxes(params[-2], -1, -2)).reshape(features.shape[:-1] + blocks[-1][2].shape[-3:])
        for block in reversed(range(len(self.channels))):
            flat, corners, pooled = blocks[block]
            K = params[2 * block]
            d_pooled = d_Z * (pooled > 0)
            # the gradient goes to the first maximum of each window, as torch's max pooling sends it: windows
            # of the blank border hold equal values
            S = 2 * pooled.shape[-2]
            d_conv = np.zeros(pooled.shape[:-3] + (S, S, K.shape[-1]), dtype=d_pooled.dtype)
            taken = np.zeros(pooled.shape, dtype=bool)
            for corner, (i, j) in zip(corners, _CORNERS):
                first = (corner == pooled) & ~taken
                taken |= first
                d_conv[..., i::2, j::2, :] = d_pooled * first
            d_conv = d_conv.reshape(d_conv.shape[:-4] + (-1, K.shape[-1]))
            grads[2 * block] = (np.swapaxes(flat, -1, -2) @ d_conv).reshape(d_conv.shape[:-2] + K.shape[-4:])
            grads[2 * block + 1] = _sum_rows(d_conv)
            if block > 0:
                runs = K.shape[:-4]
                d_flat = d_conv @ np.swapaxes(K.reshape(runs + (-1, K.shape[-1])), -1, -2)
                d_patches = d_flat.reshape(d_flat.shape[:-2] + (-1, S, S, d_flat.shape[-1]))
                d_Z = _col2im(d_patches, K.shape[-2])
        return grads


# ----------------------------------------------------------------------------------------------------------------
# A gated recurrent network on the adding problem: long-range memory, vanishing and exploding gradients


def _logistic(a):
    """σ(a) = (1 + tanh(a/2)) / 2: free of overflow for any a, and keeps float32 float32."""
    return 0.5 + 0.5 * np.tanh(0.5 * a)


class AddingGRU(NetworkProblem):
    r"""A gated recurrent unit (GRU) trained by hand-written backpropagation through time on the adding
    problem (Hochreiter & Schmidhuber 1997, "Long short-term memory", experiment 4; the GRU of Cho et al. 2014).

    What it is for: long-range credit assignment, where gradients vanish and explode. Each input is a sequence
    of ``T`` pairs (value, marker): values uniform in [0, 1], the marker 1 at exactly two steps, one in each
    half of the sequence, and 0 elsewhere. The target is the sum of the two marked values. Predicting the mean,
    1, gives the mean squared error :math:`\mathrm{Var}(u_1 + u_2) = 1/6 \approx 0.167`
    (``baseline_mse``): a network has learnt something only once it goes below that, which takes carrying a
    value across up to T steps. The gradient that teaches it is a product of up to T Jacobians of the
    recurrence: it vanishes while the gates forget, and grows by orders of magnitude when they learn to
    remember, so the gradient norm along training shows the spikes that gradient clipping is for.

    The network, with torch's ``nn.GRU`` conventions (gates r, z, n stacked in that order)::

        r_t = σ(x_t W_xr + b_xr + h_{t-1} W_hr + b_hr)
        z_t = σ(x_t W_xz + b_xz + h_{t-1} W_hz + b_hz)
        n_t = tanh(x_t W_xn + b_xn + r_t ⊙ (h_{t-1} W_hn + b_hn))
        h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1},    h_0 = 0,    ŷ = h_T w + c

    and the loss is the mean squared error :math:`\frac1m \sum_k (\hat y_k - y_k)^2`.

    **Parameters** ``[W_x, W_h, b_x, b_h, w, c]`` of shapes ``(2, 3H)``, ``(H, 3H)``, ``(3H,)``, ``(3H,)``,
    ``(H, 1)``, ``(1,)``, every one optionally with the same leading run dimensions (a sweep of B networks is
    one call). Initial values are uniform in :math:`\pm 1/\sqrt H`, as torch draws them; ``recurrent_scale``
    multiplies the initial ``W_h`` (larger: a recurrence nearer to chaos, larger gradients from the start).
    :meth:`hvp` (and so :meth:`sharpness`) uses central differences of gradients.

    Parameters
    ----------
    T : int >= 2
        Sequence length: the longest distance a value must be carried.
    hidden : int >= 1
        Width H of the state.
    n_train, n_test : int >= 1
        Number of training and test sequences (drawn once, from ``seed``).
    seed : int
        Seed of the data.
    recurrent_scale : float > 0
        Factor on the initial recurrent weights.
    dtype : float64 or float32
    """

    name = "adding_gru"
    metric_name = "mse"
    baseline_mse = 1.0 / 6.0
    # rows × runs per block of loss_and_grads (see NetworkProblem.loss_and_grads) at 16 hidden units; __init__
    # scales it to hold the same number of state values (a narrower network gets more runs per block)
    TRAINING_ROWS = 256

    def __init__(self, T=30, hidden=16, n_train=2000, n_test=500, seed=0, recurrent_scale=1.0, dtype=np.float64):
        self.T = _check_int("T", T, low=2)
        self.hidden = _check_int("hidden", hidden, low=1)
        n_train = _check_int("n_train", n_train, low=1)
        n_test = _check_int("n_test", n_test, low=1)
        self.seed = _check_int("seed", seed, low=0)
        self.recurrent_scale = _check_number("recurrent_scale", recurrent_scale, low=0.0, low_inclusive=False)
        self.dtype = _check_dtype(dtype)
        self.TRAINING_ROWS = max(1, AddingGRU.TRAINING_ROWS * 16 // self.hidden)
        rng = np.random.default_rng(self.seed)
        self.X_train, self.y_train = self.sequences(n_train, rng)
        self.X_test, self.y_test = self.sequences(n_test, rng)
        H = self.hidden
        self.param_shapes = [(2, 3 * H), (H, 3 * H), (3 * H,), (3 * H,), (H, 1), (1,)]
        self.fan_ins = [H] * 6

    def __repr__(self):
        return (f"AddingGRU(T={self.T}, hidden={self.hidden}, n_train={self.n_train}, n_test={self.y_test.size}, "
                f"seed={self.seed}, recurrent_scale={self.recurrent_scale:g}, dtype={self.dtype.name})")

    @property
    def n_train(self):
        return self.y_train.size

    def sequences(self, n, rng):
        """``n`` fresh sequences of the adding problem drawn with ``rng``: inputs ``(n, T, 2)``, targets ``(n,)``."""
        values = rng.random((n, self.T))
        half = self.T // 2
        first = rng.integers(0, half, size=n)
        second = rng.integers(half, self.T, size=n)
        markers = np.zeros((n, self.T))
        rows = np.arange(n)
        markers[rows, first] = markers[rows, second] = 1.0
        X = np.stack([values, markers], axis=-1).astype(self.dtype)
        y = (values[rows, first] + values[rows, second]).astype(self.dtype)
        X.flags.writeable = y.flags.writeable = False
        return X, y

    def init_params(self, seed=0):
        params = super().init_params(seed)
        params[1] = (params[1] * self.recurrent_scale).astype(self.dtype)
        return params

    init_params.__doc__ = NetworkProblem.init_params.__doc__

    def _forward(self, params, X):
        """Predictions, and the gates and states of every step for the backward pass."""
        W_x, W_h, b_x, b_h, w, c = params
        H, (n, T) = self.hidden, X.shape[:2]
        runs = W_x.shape[:-2]
        # Every gate's values are kept in a block of their own, (..., 3, n, H), not side by side in rows of 3H:
        # numpy adds H values out of every 3H (a gate in a row) at about 1.2 ns a value, a block at 0.25 ns.
        # The input part of every gate at every step, in one product, time first: (T, ..., 3, n, H)
        steps_first = np.moveaxis(X, 1, 0).reshape(T * n, 2)
        inputs = (steps_first @ W_x).reshape(runs + (T, n, 3 * H)) + b_x[..., None, None, :]
        inputs = np.ascontiguousarray(np.moveaxis(inputs.reshape(runs + (T, n, 3, H)), (-4, -2), (0, -3)))
        W_gates = np.moveaxis(W_h.reshape(W_h.shape[:-1] + (3, H)), -2, -3)  # (..., 3, H, H)
        b_gates = np.broadcast_to(b_h.reshape(b_h.shape[:-1] + (3, 1, H)), runs + (3, n, H)).copy()
        h = np.zeros(runs + (n, H), dtype=inputs.dtype)
        states, gates, recurrent_n = [], [], []
        for t in range(T):
            a_x = inputs[t]
            a_h = h[..., None, :, :] @ W_gates
            a_h += b_gates
            rz = _logistic(a_x[..., :2, :, :] + a_h[..., :2, :, :])  # the reset and update gates together
            r, z = rz[..., 0, :, :], rz[..., 1, :, :]
            candidate = np.tanh(a_x[..., 2, :, :] + r * a_h[..., 2, :, :])
            states.append(h)
            gates.append((r, z, candidate))
            recurrent_n.append(a_h[..., 2, :, :])
            h = candidate + z * (h - candidate)
        prediction = (h @ w)[..., 0] + c
        return prediction, (states, gates, recurrent_n, h)

    def _backward(self, params, X, cache, d_prediction):
        W_x, W_h, b_x, b_h, w, c = params
        states, gates, recurrent_n, h_T = cache
        H, (n, T) = self.hidden, X.shape[:2]
        d_w = np.swapaxes(h_T, -1, -2) @ d_prediction[..., None]
        d_c = d_prediction.sum(axis=-1, keepdims=True)
        d_h = d_prediction[..., None] * np.swapaxes(w, -1, -2)          # (..., n, H)
        # gradients of every gate's pre-activation, time first: (T, ..., n, 3H); the recurrent part differs from
        # the input part only in the candidate's, which the reset gate scales
        d_inputs = np.empty((T,) + d_h.shape[:-1] + (3 * H,), dtype=d_h.dtype)
        d_recurrent = np.empty_like(d_inputs)
        W_h_T = np.swapaxes(W_h, -1, -2)
        for t in reversed(range(T)):
            r, z, candidate = gates[t]
            d_candidate = d_h * (1.0 - z)
            d_z = d_h * (states[t] - candidate)
            d_a_n = d_candidate * (1.0 - candidate * candidate)
            d_in, d_rec = d_inputs[t], d_recurrent[t]
            d_in[..., :H] = d_a_n * recurrent_n[t] * r * (1.0 - r)
            d_in[..., H:2 * H] = d_z * z * (1.0 - z)
            d_in[..., 2 * H:] = d_a_n
            d_rec[..., :2 * H] = d_in[..., :2 * H]
            d_rec[..., 2 * H:] = d_a_n * r
            # back one step: through z ⊙ h_{t-1} directly, and through every gate's recurrent product
            d_h = d_h * z + d_rec @ W_h_T
        runs = d_inputs.shape[1:-2]

        def runs_first(a):  # (T, ..., n, k) -> (..., T n, k), rows in the order of steps_first below
            return np.moveaxis(a, 0, -3).reshape(runs + (T * n, a.shape[-1]))

        steps_first = np.moveaxis(X, 1, 0).reshape(T * n, 2)
        d_inputs, d_recurrent = runs_first(d_inputs), runs_first(d_recurrent)
        previous = runs_first(np.stack(states))
        return [steps_first.T @ d_inputs, np.swapaxes(previous, -1, -2) @ d_recurrent,
                _sum_rows(d_inputs), _sum_rows(d_recurrent), d_w, d_c]

    def predict(self, params, X):
        """The network's outputs ŷ for sequences ``X`` (n, T, 2), shape ``(..., n)``."""
        params = self._check_params(params)
        return self._outputs(params, np.asarray(X, dtype=self.dtype), axis=-1)

    def loss(self, params, batch=None, split="train"):
        """Mean squared error on a split (``"train"`` or ``"test"``), or on its rows ``batch``."""
        params = self._check_params(params)
        X, y = self._rows(batch, split)
        error = self._outputs(params, X, axis=-1) - y
        return (error * error).mean(axis=-1)

    def _loss_and_grads(self, params, batch):
        """Mean squared error on the training rows ``batch`` (None: all) and its gradients, by backpropagation
        through time."""
        X, y = self._rows(batch)
        prediction, cache = self._forward(params, X)
        error = prediction - y
        grads = self._backward(params, X, cache, 2.0 * error / X.shape[0])
        return (error * error).mean(axis=-1), grads

    def mse(self, params, split="test"):
        """Mean squared error on a split, shape ``(...)``; below ``baseline_mse`` (1/6) means learning."""
        return self.loss(params, None, split)

    def metric(self, params, split="test"):
        """The task's measure: :meth:`mse`."""
        return self.mse(params, split)
