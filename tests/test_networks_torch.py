"""The network problems against torch 2.13.0, in float64: DigitsMLP (with its exact Hessian-vector and
Gauss-Newton products), DigitsCNN (``conv2d``, ``relu``, ``max_pool2d``), AddingGRU (``nn.GRU``) and
TinyTransformer (``layer_norm``, tanh-form ``gelu``, causal softmax attention), each on the same weights: outputs,
loss and gradients, one network at a time and within a stack of runs.

Finite differences (tests/test_networks.py) check that a backward pass is the derivative of its forward pass,
not that the forward pass is the network the docstring describes: gates swapped in both, or a kernel flipped in
both, would pass them. The docstrings promise torch's conventions: the GRU's gates r, z, n in that order, the
reset gate applied to the recurrent part of the candidate with its bias; the CNN's 3×3 convolutions with zero
padding 1 (a cross-correlation, as torch's), 2×2 max pooling whose gradient goes to the first maximum of a
window, features flattened in (row, column, channel) order; the transformer's heads taken from consecutive
columns of q, k and v, its LayerNorm's ε = 1e-5, GELU's tanh form. These tests load the same weights into torch
and compare.
"""

import numpy as np
import pytest

from optimlab.problems import AddingGRU, DigitsCNN, DigitsMLP, TinyTransformer
from tests.reference import require

torch = require("torch")

# torch.func's first use compiles helpers with torch.jit.script, which torch 2.13 calls deprecated (its own code)
pytestmark = [pytest.mark.torch,
              pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")]


def perturbed_runs(model, rng, scale):
    """Three networks: the model's initial weights, and two random perturbations of them."""
    start = model.init_params(seed=1)
    return [start] + [[p + scale * rng.standard_normal(p.shape) for p in start] for _ in range(2)]


def assert_gradients(names, stacked, k, single, reference):
    """Run ``k`` of the stacked gradients equals the same network's alone to the bit, and the reference's."""
    for name, ours, one, ref in zip(names, stacked, single, reference):
        assert np.array_equal(ours[k], one), name
        np.testing.assert_allclose(ours[k], ref, rtol=1e-10, atol=1e-12 * np.abs(ref).max(), err_msg=name)


def assert_matches_torch(model, runs, batch, outputs, reference, names):
    """Each network of ``runs``, within their stack and alone, against ``reference(params) -> (loss, outputs,
    grads)`` on the training rows ``batch``: outputs (``outputs(stacked)``) and loss to 1e-12, gradients as
    :func:`assert_gradients` says."""
    stacked = [np.stack(arrays) for arrays in zip(*runs)]
    losses, grads = model.loss_and_grads(stacked, batch)
    values = outputs(stacked)
    for k, params in enumerate(runs):
        ref_loss, ref_values, ref_grads = reference(params)
        np.testing.assert_allclose(values[k], ref_values, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(losses[k], ref_loss, rtol=1e-12)
        one_loss, one_grads = model.loss_and_grads(params, batch)
        assert one_loss == losses[k]
        assert_gradients(names, grads, k, one_grads, ref_grads)


def torch_gru(params):
    """``torch.nn.GRU`` and ``torch.nn.Linear`` (float64) holding one network's ``[W_x, W_h, b_x, b_h, w, c]``."""
    W_x, W_h, b_x, b_h, w, c = (torch.tensor(p, dtype=torch.float64) for p in params)
    gru = torch.nn.GRU(input_size=2, hidden_size=W_h.shape[0], batch_first=True, dtype=torch.float64)
    head = torch.nn.Linear(W_h.shape[0], 1, dtype=torch.float64)
    with torch.no_grad():
        gru.weight_ih_l0.copy_(W_x.T)
        gru.weight_hh_l0.copy_(W_h.T)
        gru.bias_ih_l0.copy_(b_x)
        gru.bias_hh_l0.copy_(b_h)
        head.weight.copy_(w.T)
        head.bias.copy_(c)
    return gru, head


def torch_gru_loss_and_grads(params, X, y):
    """The mean squared error of the torch network on ``X`` (n, T, 2), its predictions and its gradients, in our
    parameters' order and shapes."""
    gru, head = torch_gru(params)
    _, h_T = gru(torch.tensor(X))
    prediction = head(h_T[0])[:, 0]
    loss = ((prediction - torch.tensor(y)) ** 2).mean()
    loss.backward()
    grads = [gru.weight_ih_l0.grad.T, gru.weight_hh_l0.grad.T, gru.bias_ih_l0.grad, gru.bias_hh_l0.grad,
             head.weight.grad.T, head.bias.grad]
    return loss.item(), prediction.detach().numpy(), [g.numpy() for g in grads]


@pytest.mark.parametrize("T, hidden, scale", [(12, 5, 1.0), (30, 16, 1.0), (20, 8, 3.0), (2, 1, 1.0)])
def test_gru_equals_torch_nn_gru(T, hidden, scale):
    model = AddingGRU(T=T, hidden=hidden, n_train=64, n_test=8, recurrent_scale=scale)
    rng = np.random.default_rng(T * 10 + hidden)
    batch = rng.choice(model.n_train, 24, replace=False)
    X, y = model.X_train[batch], model.y_train[batch]
    runs = perturbed_runs(model, rng, 0.5)  # gates away from their start
    assert_matches_torch(model, runs, batch, lambda stacked: model.predict(stacked, X),
                         lambda params: torch_gru_loss_and_grads(params, X, y), ("W_x", "W_h", "b_x", "b_h", "w", "c"))


def torch_cnn_loss_and_grads(model, params, X, y):
    """The mean cross-entropy of ``params`` as a torch network on standardized images ``X`` (n, 64), its logits and
    its gradients in our order and layout (kernels (3, 3, C_in, C_out), torch's are (C_out, C_in, 3, 3))."""
    tensors = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in params]
    side = model.image_size
    z = torch.tensor(X).reshape(-1, 1, side, side)
    for block in range(len(model.channels)):
        K, b = tensors[2 * block], tensors[2 * block + 1]
        z = torch.nn.functional.conv2d(z, K.permute(3, 2, 0, 1), b, padding=1)
        z = torch.nn.functional.max_pool2d(torch.relu(z), 2)
    features = z.permute(0, 2, 3, 1).reshape(z.shape[0], -1)  # (row, column, channel) order
    logits = features @ tensors[-2] + tensors[-1]
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor(y))
    loss.backward()
    return loss.item(), logits.detach().numpy(), [t.grad.numpy() for t in tensors]


@pytest.mark.parametrize("channels", [(8, 16), (3,), (2, 3, 4)])
def test_cnn_equals_torch(channels):
    model = DigitsCNN(channels=channels)
    rng = np.random.default_rng(len(channels))
    batch = rng.choice(model.n_train, 40, replace=False)
    X, y = model.X_train[batch], model.y_train[batch]
    runs = perturbed_runs(model, rng, 0.3)
    # and one whose first kernel is zero: every pooling window of the first block holds equal values (its bias),
    # where the gradient must go to the first one as torch sends it
    runs.append([np.zeros_like(p) if i == 0 else p for i, p in enumerate(runs[1])])
    names = [f"{kind}{block}" for block in range(len(channels)) for kind in ("K", "b")] + ["W", "c"]
    assert_matches_torch(model, runs, batch, lambda stacked: model.logits(stacked, X),
                         lambda params: torch_cnn_loss_and_grads(model, params, X, y), names)



def torch_transformer_loss_and_grads(model, params, X, y):
    """The mean cross-entropy of ``params`` as a torch transformer on tokens ``X`` (n, 2 length), its logits and
    its gradients: written from the architecture the docstring states, with torch's own layer_norm (ε = 1e-5),
    tanh-form GELU, softmax and cross-entropy."""
    F = torch.nn.functional
    t = {name: torch.tensor(p, dtype=torch.float64, requires_grad=True) for name, p in zip(model.param_names, params)}
    n, T = X.shape
    d, H = model.d_model, model.heads
    future = ~torch.ones(T, T, dtype=torch.bool).tril()

    def norm(x, name, k=""):
        return F.layer_norm(x, (d,), t[f"{name}_g{k}"], t[f"{name}_b{k}"], eps=1e-5)

    def attention(u, k):
        q, key, v = (u @ t[f"W_qkv{k}"] + t[f"b_qkv{k}"]).split(d, dim=-1)
        q, key, v = (a.reshape(n, T, H, d // H).transpose(1, 2) for a in (q, key, v))  # (n, H, T, d_h)
        scores = (q @ key.transpose(-1, -2) / (d // H) ** 0.5).masked_fill(future, float("-inf"))
        mixed = scores.softmax(dim=-1) @ v
        return mixed.transpose(1, 2).reshape(n, T, d) @ t[f"W_o{k}"] + t[f"b_o{k}"]

    def mlp(u, k):
        return F.gelu(u @ t[f"W_1{k}"] + t[f"b_1{k}"], approximate="tanh") @ t[f"W_2{k}"] + t[f"b_2{k}"]

    x = t["E"][torch.tensor(X)] + t["P"]
    for k in range(model.blocks):
        if model.norm == "pre":
            x = x + attention(norm(x, "ln1", k), k)
            x = x + mlp(norm(x, "ln2", k), k)
        else:
            x = norm(x + attention(x, k), "ln1", k)
            x = norm(x + mlp(x, k), "ln2", k)
    out = x[:, model.length:]  # the positions from the separator on predict the sorted digits
    if model.norm == "pre":
        out = norm(out, "lnf")
    logits = out @ t["W_out"] + t["b_out"]
    loss = F.cross_entropy(logits.reshape(-1, model.vocab), torch.tensor(y).reshape(-1))
    loss.backward()
    return loss.item(), logits.detach().numpy(), [t[name].grad.numpy() for name in model.param_names]


@pytest.mark.parametrize("norm, blocks, heads", [("pre", 1, 2), ("post", 1, 2), ("pre", 2, 4), ("post", 2, 1)])
def test_transformer_equals_torch(norm, blocks, heads):
    model = TinyTransformer(norm=norm, blocks=blocks, d_model=8, heads=heads, d_ff=12, length=4, n_train=64,
                            n_test=8)
    rng = np.random.default_rng(blocks * 10 + heads)
    batch = rng.choice(model.n_train, 20, replace=False)
    X, y = model.X_train[batch], model.y_train[batch]
    assert_matches_torch(model, perturbed_runs(model, rng, 0.3), batch, lambda stacked: model.logits(stacked, X),
                         lambda params: torch_transformer_loss_and_grads(model, params, X, y), model.param_names)



def torch_mlp(model, X, y):
    """The mean cross-entropy of an MLP on ``X`` as a torch function of its arrays, and its logits."""
    phi = torch.tanh if model.activation == "tanh" else torch.relu

    def logits(*tensors):
        z = torch.tensor(X)
        for layer in range(model.n_layers):
            a = z @ tensors[2 * layer] + tensors[2 * layer + 1]
            z = phi(a) if layer < model.n_layers - 1 else a
        return z

    def loss(*tensors):
        return torch.nn.functional.cross_entropy(logits(*tensors), torch.tensor(y))

    return loss, logits


def torch_curvature_products(model, params, vecs, X, y):
    """The Hessian-vector product (forward over reverse) and the Gauss-Newton product Jᵀ H J v (J the Jacobian of
    the logits, H the cross-entropy's Hessian in the logits) of one network, by torch.func."""
    loss, logits = torch_mlp(model, X, y)
    primals = tuple(torch.tensor(p) for p in params)
    tangents = tuple(torch.tensor(v) for v in vecs)
    arrays = tuple(range(len(primals)))
    hvp = torch.func.jvp(torch.func.grad(loss, argnums=arrays), primals, tangents)[1]
    values, J_v = torch.func.jvp(logits, primals, tangents)
    probs = values.softmax(dim=-1)
    H_J_v = (probs * J_v - probs * (probs * J_v).sum(dim=-1, keepdim=True)) / len(y)
    gnvp = torch.func.vjp(logits, *primals)[1](H_J_v)
    return [h.numpy() for h in hvp], [g.numpy() for g in gnvp]


@pytest.mark.parametrize("hidden, activation", [((8, 6), "tanh"), ((7,), "relu"), ((), "tanh")])
def test_mlp_equals_torch_with_its_curvature_products(hidden, activation):
    model = DigitsMLP(hidden=hidden, activation=activation)
    rng = np.random.default_rng(len(hidden))
    batch = rng.choice(model.n_train, 40, replace=False)
    X, y = model.X_train[batch], model.y_train[batch]
    runs = perturbed_runs(model, rng, 0.3)
    stacked = [np.stack(arrays) for arrays in zip(*runs)]
    vecs = [rng.standard_normal(p.shape) for p in stacked]
    losses, grads = model.loss_and_grads(stacked, batch)
    hvps, gnvps = model.hvp(stacked, vecs, batch), model.gnvp(stacked, vecs, batch)
    names = [f"{kind}{layer + 1}" for layer in range(model.n_layers) for kind in ("W", "b")]
    loss_of, _ = torch_mlp(model, X, y)
    for k, params in enumerate(runs):
        primals = [torch.tensor(p, requires_grad=True) for p in params]
        ref_loss = loss_of(*primals)
        np.testing.assert_allclose(losses[k], ref_loss.item(), rtol=1e-12)
        ref_grads = [g.numpy() for g in torch.autograd.grad(ref_loss, primals)]
        one_loss, one_grads = model.loss_and_grads(params, batch)
        assert one_loss == losses[k]
        assert_gradients(names, grads, k, one_grads, ref_grads)
        one_vecs = [v[k] for v in vecs]
        ref_hvp, ref_gnvp = torch_curvature_products(model, params, one_vecs, X, y)
        assert_gradients(names, hvps, k, model.hvp(params, one_vecs, batch), ref_hvp)
        assert_gradients(names, gnvps, k, model.gnvp(params, one_vecs, batch), ref_gnvp)
