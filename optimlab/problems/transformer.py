"""A tiny decoder-only transformer with hand-written backpropagation, vectorized over leading run dimensions.

:class:`TinyTransformer` follows the protocol of :class:`optimlab.problems._base.NetworkProblem`.
"""

from __future__ import annotations

import math

import numpy as np

from ._base import NetworkProblem, _check_dtype, _check_int, _max_last, _mean_last, _sum_last, _sum_rows

_GELU_C = math.sqrt(2.0 / math.pi)
_LN_EPS = 1e-5


def _gelu(a):
    """GELU, tanh form (Hendrycks & Gimpel 2016), and what its derivative needs."""
    t = np.tanh(_GELU_C * (a + 0.044715 * a * a * a))
    return 0.5 * a * (1.0 + t), t


def _gelu_slope(a, t):
    return 0.5 * (1.0 + t) + 0.5 * a * (1.0 - t * t) * _GELU_C * (1.0 + 3 * 0.044715 * a * a)


def _layer_norm(x, g, b):
    """LayerNorm over the last axis with gain g and bias b (Ba et al. 2016); returns y and (x̂, 1/σ)."""
    centred = x - _mean_last(x)
    inv_sigma = 1.0 / np.sqrt(_mean_last(centred * centred) + _LN_EPS)
    x_hat = centred * inv_sigma
    return x_hat * g[..., None, :] + b[..., None, :], (x_hat, inv_sigma)


def _layer_norm_backward(dy, g, cache):
    """Gradients of a LayerNorm: with respect to its input, its gain and its bias (rows on axis -2)."""
    x_hat, inv_sigma = cache
    d_hat = dy * g[..., None, :]
    dx = inv_sigma * (d_hat - _mean_last(d_hat) - x_hat * _mean_last(d_hat * x_hat))
    return dx, _sum_rows(dy * x_hat), _sum_rows(dy)


def _linear(u, W, b):
    return u @ W + b[..., None, :]


def _linear_backward(d_out, u, W):
    """Gradients of u @ W + b: with respect to u, W and b (rows on axis -2)."""
    return d_out @ np.swapaxes(W, -1, -2), np.swapaxes(u, -1, -2) @ d_out, _sum_rows(d_out)


# the arrays of one block, in order
_BLOCK = ("ln1_g", "ln1_b", "W_qkv", "b_qkv", "W_o", "b_o", "ln2_g", "ln2_b", "W_1", "b_1", "W_2", "b_2")


class TinyTransformer(NetworkProblem):
    r"""One or two blocks of a decoder-only transformer (GPT-style), with hand-written backpropagation, learning
    to sort short sequences of digits.

    **What it is for.** The architecture every large model uses, small enough to train in seconds on a CPU and
    to sweep: the optimizers and schedules of the course meet attention, LayerNorm and embeddings, whose
    gradients differ in scale from one array to the next (which is what Adam's per-coordinate steps are for).
    ``norm="post"`` puts LayerNorm after each residual addition, as the original transformer did (Vaswani et al.
    2017); ``norm="pre"`` puts it at the entrance of each branch, with one more LayerNorm before the output, as
    GPT-2 and today's models do. Xiong et al. (2020, "On layer normalization in the transformer architecture",
    ICML) show that at initialization post-LN's gradients near the output are large, so Adam without a warmup
    of the learning rate can go astray, while pre-LN trains without one: the schedules chapter runs that
    experiment here.

    **The task: sorting.** A sequence is ``length`` digits drawn uniformly from ``0..vocab-1``, a separator
    token ``vocab``, then the same digits sorted: ``3 1 4 1 5 2 | 1 1 2 3 4 5``. The model reads the sequence
    without its last token and predicts each next token; the loss is the mean cross-entropy on the ``length``
    predictions after the separator only (the input half is random: nothing to learn there). Sorting, rather
    than copying or reversing, because the output at a position cannot be found from positions alone: the
    model must attend by content (which digits are there, how many times, which come next), and a model that
    has not learnt that is plainly wrong; yet it is learnt in a few hundred Adam steps. With 8 digits and
    length 6 there are 8⁶ = 262,144 inputs, far more than the training set: the held-out accuracy measures
    sorting, not memory.

    **Metric**: sequence accuracy, the fraction of held-out sequences whose ``length`` predictions are all
    right. With the true prefix fed in (teacher forcing) this equals the accuracy of greedy decoding: if every
    prediction is right given the true prefix, greedy decoding produces exactly that prefix, and conversely.

    The network, for inputs :math:`s_1..s_{2L}` (one row of d_model per position), block by block::

        x   = E[s] + P                                   (token and learned position embeddings)
        pre:   x ← x + Attn(LN₁(x));   x ← x + MLP(LN₂(x));   logits = LN_f(x) W_out + b_out
        post:  x ← LN₁(x + Attn(x));   x ← LN₂(x + MLP(x));   logits = x W_out + b_out
        Attn(u) = concat_h softmax(q_h k_hᵀ / √d_h + causal mask) v_h · W_o + b_o,  [q k v] = u W_qkv + b_qkv
        MLP(u)  = GELU(u W_1 + b_1) W_2 + b_2

    **Parameters** ``[E, P, (block: ln1_g, ln1_b, W_qkv, b_qkv, W_o, b_o, ln2_g, ln2_b, W_1, b_1, W_2, b_2)
    × blocks, (pre only: lnf_g, lnf_b), W_out, b_out]``: ``E`` of shape ``(vocab + 1, d_model)``, ``P`` of
    shape ``(2 length, d_model)``, ``W`` of shape ``(fan_in, fan_out)``; ``param_names`` names them. Every
    array may carry the same leading run dimensions (a sweep of B networks is one call). Initial values:
    embeddings uniform in ±1, weights and biases uniform in :math:`\pm 1/\sqrt{\text{fan\_in}}` as torch draws
    a linear layer's, LayerNorm gains 1 and biases 0. :meth:`hvp` (and so :meth:`sharpness`) uses central
    differences of gradients.

    Parameters
    ----------
    norm : "pre" or "post"
        Where the LayerNorms go.
    blocks : int, 1 or 2
        Number of transformer blocks.
    d_model : int >= 1
        Width of the residual stream; a multiple of ``heads``.
    heads : int >= 1
        Number of attention heads.
    d_ff : int >= 1
        Width of the MLP's hidden layer.
    vocab : int >= 2
        Number of digits.
    length : int >= 2
        Number of digits to sort.
    n_train, n_test : int >= 1
        Number of training and held-out sequences (drawn once, from ``seed``).
    seed : int
        Seed of the data.
    dtype : float64 or float32
    """

    name = "tiny_transformer"
    metric_name = "sequence accuracy"
    # sequences × runs per block of loss_and_grads (see NetworkProblem.loss_and_grads) for the default model: 64
    # sequences make 768 rows of 32 features, which stay in cache; 64 stacked runs at once were slower than a loop
    # over them. __init__ scales it to hold as many values (positions × d_model) for other sizes
    TRAINING_ROWS = 64

    def __init__(self, norm="pre", blocks=1, d_model=32, heads=2, d_ff=64, vocab=8, length=6, n_train=2000,
                 n_test=500, seed=0, dtype=np.float64):
        if norm not in ("pre", "post"):
            raise ValueError(f"norm must be 'pre' or 'post', got {norm!r}")
        self.norm = norm
        self.blocks = _check_int("blocks", blocks, low=1)
        if self.blocks > 2:
            raise ValueError(f"blocks must be 1 or 2, got {blocks}")
        self.d_model = _check_int("d_model", d_model, low=1)
        self.heads = _check_int("heads", heads, low=1)
        if self.d_model % self.heads:
            raise ValueError(f"heads must divide d_model={self.d_model}, got {heads}")
        self.d_ff = _check_int("d_ff", d_ff, low=1)
        self.vocab = _check_int("vocab", vocab, low=2)
        self.length = _check_int("length", length, low=2)
        n_train = _check_int("n_train", n_train, low=1)
        n_test = _check_int("n_test", n_test, low=1)
        self.seed = _check_int("seed", seed, low=0)
        self.dtype = _check_dtype(dtype)
        self.TRAINING_ROWS = max(1, TinyTransformer.TRAINING_ROWS * 12 * 32 // (2 * self.length * self.d_model))
        rng = np.random.default_rng(self.seed)
        self.X_train, self.y_train = self.sequences(n_train, rng)
        self.X_test, self.y_test = self.sequences(n_test, rng)

        d, f, T = self.d_model, self.d_ff, 2 * self.length
        block = {"ln1_g": ((d,), 1), "ln1_b": ((d,), 1), "W_qkv": ((d, 3 * d), d), "b_qkv": ((3 * d,), d),
                 "W_o": ((d, d), d), "b_o": ((d,), d), "ln2_g": ((d,), 1), "ln2_b": ((d,), 1),
                 "W_1": ((d, f), d), "b_1": ((f,), d), "W_2": ((f, d), f), "b_2": ((d,), f)}
        layout = [("E", (self.vocab + 1, d), 1), ("P", (T, d), 1)]
        for k in range(self.blocks):
            layout += [(f"{name}{k}", *block[name]) for name in _BLOCK]
        if norm == "pre":
            layout += [("lnf_g", (d,), 1), ("lnf_b", (d,), 1)]
        layout += [("W_out", (d, self.vocab), d), ("b_out", (self.vocab,), d)]
        self.param_names = [name for name, _, _ in layout]
        self.param_shapes = [shape for _, shape, _ in layout]
        self.fan_ins = [fan_in for _, _, fan_in in layout]

    def __repr__(self):
        return (f"TinyTransformer(norm={self.norm!r}, blocks={self.blocks}, d_model={self.d_model}, "
                f"heads={self.heads}, d_ff={self.d_ff}, vocab={self.vocab}, length={self.length}, "
                f"n_train={self.n_train}, n_test={self.y_test.shape[0]}, seed={self.seed}, dtype={self.dtype.name})")

    @property
    def n_train(self):
        return self.y_train.shape[0]

    def sequences(self, n, rng):
        """``n`` fresh sorting examples drawn with ``rng``: the model's input tokens ``(n, 2 length)`` (digits,
        separator, sorted digits but the last) and the targets ``(n, length)`` (the sorted digits)."""
        digits = rng.integers(0, self.vocab, size=(n, self.length))
        ordered = np.sort(digits, axis=1)
        X = np.concatenate([digits, np.full((n, 1), self.vocab), ordered[:, :-1]], axis=1)
        X.flags.writeable = ordered.flags.writeable = False
        return X, ordered

    def init_params(self, seed=0):
        params = super().init_params(seed)
        for i, name in enumerate(self.param_names):
            if name.startswith("ln"):
                params[i] = np.full_like(params[i], 1.0 if "_g" in name else 0.0)
        return params

    init_params.__doc__ = NetworkProblem.init_params.__doc__ + " LayerNorm gains start at 1, their biases at 0."

    # -- forward and backward ----------------------------------------------------------------------------------

    def _attention(self, u, W_qkv, b_qkv, W_o, b_o, n):
        """Causal multi-head self-attention on rows ``u`` (..., n T, d); returns the output and a cache."""
        d, H = self.d_model, self.heads
        T, dh = u.shape[-2] // n, d // H
        qkv = _linear(u, W_qkv, b_qkv)
        # (..., n T, 3d) -> three of (..., n, H, T, dh)
        heads = np.moveaxis(qkv.reshape(qkv.shape[:-2] + (n, T, 3, H, dh)), -4, -2)
        q, k, v = heads[..., 0, :, :, :], heads[..., 1, :, :, :], heads[..., 2, :, :, :]
        scores = (q @ np.swapaxes(k, -1, -2)) / math.sqrt(dh)
        scores = np.where(np.tri(T, dtype=bool), scores, -np.inf)
        scores = scores - _max_last(scores)
        probs = np.exp(scores)
        probs /= _sum_last(probs)
        mixed = probs @ v  # (..., n, H, T, dh)
        merged = np.moveaxis(mixed, -3, -2).reshape(u.shape)
        return _linear(merged, W_o, b_o), (u, q, k, v, probs, merged)

    def _attention_backward(self, d_out, W_qkv, W_o, cache):
        u, q, k, v, probs, merged = cache
        d_merged, d_W_o, d_b_o = _linear_backward(d_out, merged, W_o)
        d_mixed = np.moveaxis(d_merged.reshape(q.shape[:-4] + (q.shape[-4], q.shape[-2], self.heads,
                                                               q.shape[-1])), -2, -3)
        d_probs = d_mixed @ np.swapaxes(v, -1, -2)
        d_v = np.swapaxes(probs, -1, -2) @ d_mixed
        d_scores = probs * (d_probs - _sum_last(d_probs * probs)) / math.sqrt(q.shape[-1])
        d_q = d_scores @ k
        d_k = np.swapaxes(d_scores, -1, -2) @ q
        d_heads = np.stack([d_q, d_k, d_v], axis=-4)  # (..., n, 3, H, T, dh)
        d_qkv = np.moveaxis(d_heads, -2, -4).reshape(u.shape[:-1] + (3 * self.d_model,))
        d_u, d_W_qkv, d_b_qkv = _linear_backward(d_qkv, u, W_qkv)
        return d_u, d_W_qkv, d_b_qkv, d_W_o, d_b_o

    def _forward(self, params, X):
        """Logits at the ``length`` output positions, (..., n, length, vocab), and the cache of the backward pass."""
        n, T = X.shape
        E, P = params[0], params[1]
        x = np.take(E, X, axis=-2) + P[..., None, :, :]  # (..., n, T, d)
        x = x.reshape(x.shape[:-3] + (n * T, self.d_model))
        caches = []
        for k in range(self.blocks):
            p = dict(zip(_BLOCK, params[2 + 12 * k: 14 + 12 * k]))
            if self.norm == "pre":
                u, ln1 = _layer_norm(x, p["ln1_g"], p["ln1_b"])
                a, attention = self._attention(u, p["W_qkv"], p["b_qkv"], p["W_o"], p["b_o"], n)
                x = x + a
                u, ln2 = _layer_norm(x, p["ln2_g"], p["ln2_b"])
                hidden = _linear(u, p["W_1"], p["b_1"])
                z, t = _gelu(hidden)
                x = x + _linear(z, p["W_2"], p["b_2"])
            else:
                a, attention = self._attention(x, p["W_qkv"], p["b_qkv"], p["W_o"], p["b_o"], n)
                x, ln1 = _layer_norm(x + a, p["ln1_g"], p["ln1_b"])
                u = x
                hidden = _linear(u, p["W_1"], p["b_1"])
                z, t = _gelu(hidden)
                x, ln2 = _layer_norm(x + _linear(z, p["W_2"], p["b_2"]), p["ln2_g"], p["ln2_b"])
            caches.append((ln1, attention, ln2, u, hidden, z, t))
        # only the positions after the separator are read out
        out = x.reshape(x.shape[:-2] + (n, T, self.d_model))[..., self.length:, :]
        out = out.reshape(out.shape[:-3] + (n * self.length, self.d_model))
        lnf = None
        if self.norm == "pre":
            out, lnf = _layer_norm(out, params[-4], params[-3])
        logits = _linear(out, params[-2], params[-1])
        logits = logits.reshape(logits.shape[:-2] + (n, self.length, self.vocab))
        return logits, (X, caches, out, lnf)

    def _backward(self, params, cache, d_logits):
        X, caches, out, lnf = cache
        n, T = X.shape
        d, L = self.d_model, self.length
        grads = [None] * len(params)
        d_logits = d_logits.reshape(d_logits.shape[:-3] + (n * L, self.vocab))
        d_out, grads[-2], grads[-1] = _linear_backward(d_logits, out, params[-2])
        if self.norm == "pre":
            d_out, grads[-4], grads[-3] = _layer_norm_backward(d_out, params[-4], lnf)
        d_x = np.zeros(d_out.shape[:-2] + (n, T, d), dtype=d_out.dtype)
        d_x[..., L:, :] = d_out.reshape(d_out.shape[:-2] + (n, L, d))
        d_x = d_x.reshape(d_out.shape[:-2] + (n * T, d))
        for k in reversed(range(self.blocks)):
            first = 2 + 12 * k
            p = dict(zip(_BLOCK, params[first:first + 12]))
            ln1, attention, ln2, u, hidden, z, t = caches[k]
            g = {}
            if self.norm == "pre":
                d_z, g["W_2"], g["b_2"] = _linear_backward(d_x, z, p["W_2"])
                d_u, g["W_1"], g["b_1"] = _linear_backward(d_z * _gelu_slope(hidden, t), u, p["W_1"])
                d_u, g["ln2_g"], g["ln2_b"] = _layer_norm_backward(d_u, p["ln2_g"], ln2)
                d_x = d_x + d_u
                d_u, g["W_qkv"], g["b_qkv"], g["W_o"], g["b_o"] = self._attention_backward(
                    d_x, p["W_qkv"], p["W_o"], attention)
                d_u, g["ln1_g"], g["ln1_b"] = _layer_norm_backward(d_u, p["ln1_g"], ln1)
                d_x = d_x + d_u
            else:
                d_sum, g["ln2_g"], g["ln2_b"] = _layer_norm_backward(d_x, p["ln2_g"], ln2)
                d_z, g["W_2"], g["b_2"] = _linear_backward(d_sum, z, p["W_2"])
                d_u, g["W_1"], g["b_1"] = _linear_backward(d_z * _gelu_slope(hidden, t), u, p["W_1"])
                d_sum, g["ln1_g"], g["ln1_b"] = _layer_norm_backward(d_sum + d_u, p["ln1_g"], ln1)
                d_u, g["W_qkv"], g["b_qkv"], g["W_o"], g["b_o"] = self._attention_backward(
                    d_sum, p["W_qkv"], p["W_o"], attention)
                d_x = d_sum + d_u
            grads[first:first + 12] = [g[name] for name in _BLOCK]
        d_x = d_x.reshape(d_x.shape[:-2] + (n, T, d))
        grads[1] = d_x.sum(axis=-3)
        one_hot = (X.reshape(-1)[:, None] == np.arange(self.vocab + 1)).astype(d_x.dtype)
        grads[0] = one_hot.T @ d_x.reshape(d_x.shape[:-3] + (n * T, d))
        return grads

    # -- loss and metric ---------------------------------------------------------------------------------------

    def _cross_entropy(self, logits, y):
        shifted = logits - _max_last(logits)
        log_normalizer = np.log(_sum_last(np.exp(shifted))[..., 0])
        picked = np.take_along_axis(shifted, np.broadcast_to(y, shifted.shape[:-1])[..., None], axis=-1)[..., 0]
        return (log_normalizer - picked).mean(axis=(-2, -1))

    def logits(self, params, X):
        """The logits at the output positions for input tokens ``X`` (n, 2 length), shape
        ``(..., n, length, vocab)``."""
        params = self._check_params(params)
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != 2 * self.length or not np.issubdtype(X.dtype, np.integer):
            raise ValueError(f"X must be integer tokens of shape (n, {2 * self.length}), got {X.dtype} {X.shape}")
        if X.size and (X.min() < 0 or X.max() > self.vocab):
            raise ValueError(f"X must hold tokens 0..{self.vocab}, got values from {X.min()} to {X.max()}")
        return self._outputs(params, X, axis=-3)

    def loss(self, params, batch=None, split="train"):
        """Mean cross-entropy of the sorted digits on a split (``"train"`` or ``"test"``), or on its rows
        ``batch``, shape ``(...)``."""
        params = self._check_params(params)
        X, y = self._rows(batch, split)
        return self._cross_entropy(self._outputs(params, X, axis=-3), y)

    def _loss_and_grads(self, params, batch):
        X, y = self._rows(batch)
        logits, cache = self._forward(params, X)
        shifted = logits - _max_last(logits)
        p = np.exp(shifted)
        p /= _sum_last(p)
        d_logits = (p - (y[..., None] == np.arange(self.vocab))) / (y.size)
        return self._cross_entropy(logits, y), self._backward(params, cache, d_logits.astype(logits.dtype))

    def sequence_accuracy(self, params, split="test"):
        """Fraction of a split's sequences sorted entirely right (equal to greedy decoding's), shape ``(...)``."""
        params = self._check_params(params)
        X, y = self._rows(None, split)
        return (self._outputs(params, X, axis=-3).argmax(axis=-1) == y).all(axis=-1).mean(axis=-1)

    def token_accuracy(self, params, split="test"):
        """Fraction of a split's output tokens predicted right, shape ``(...)``."""
        params = self._check_params(params)
        X, y = self._rows(None, split)
        return (self._outputs(params, X, axis=-3).argmax(axis=-1) == y).mean(axis=(-2, -1))

    def metric(self, params, split="test"):
        """The task's measure: :meth:`sequence_accuracy`."""
        return self.sequence_accuracy(params, split)
