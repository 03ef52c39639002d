"""AddingGRU and DigitsCNN against torch 2.13.0 (``nn.GRU``; ``conv2d``, ``relu``, ``max_pool2d``): the same
networks, outputs, loss and gradients, in float64.

Finite differences (tests/test_networks.py) check that a backward pass is the derivative of its forward pass,
not that the forward pass is the network the docstring describes: gates swapped in both, or a kernel flipped in
both, would pass them. The docstrings promise torch's conventions: the GRU's gates r, z, n in that order, the
reset gate applied to the recurrent part of the candidate with its bias; the CNN's 3×3 convolutions with zero
padding 1 (a cross-correlation, as torch's), 2×2 max pooling whose gradient goes to the first maximum of a
window, features flattened in (row, column, channel) order. These tests load the same weights into torch and
compare, one network at a time and within a stack of runs.
"""

import numpy as np
import pytest

from optimlab.problems import AddingGRU, DigitsCNN
from tests.reference import require

torch = require("torch")

pytestmark = pytest.mark.torch


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


def torch_loss_and_grads(params, X, y):
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
    stacked = [np.stack(arrays) for arrays in zip(*runs)]
    losses, grads = model.loss_and_grads(stacked, batch)
    predictions = model.predict(stacked, X)
    for k, params in enumerate(runs):
        ref_loss, ref_prediction, ref_grads = torch_loss_and_grads(params, X, y)
        np.testing.assert_allclose(predictions[k], ref_prediction, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(losses[k], ref_loss, rtol=1e-12)
        one_loss, one_grads = model.loss_and_grads(params, batch)
        assert one_loss == losses[k]
        assert_gradients(("W_x", "W_h", "b_x", "b_h", "w", "c"), grads, k, one_grads, ref_grads)


def perturbed_runs(model, rng, scale):
    """Three networks: the model's initial weights, and two random perturbations of them."""
    start = model.init_params(seed=1)
    return [start] + [[p + scale * rng.standard_normal(p.shape) for p in start] for _ in range(2)]


def assert_gradients(names, stacked, k, single, reference):
    """Run ``k`` of the stacked gradients equals the same network's alone to the bit, and the reference's."""
    for name, ours, one, ref in zip(names, stacked, single, reference):
        assert np.array_equal(ours[k], one), name
        np.testing.assert_allclose(ours[k], ref, rtol=1e-10, atol=1e-12 * np.abs(ref).max(), err_msg=name)


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
    stacked = [np.stack(arrays) for arrays in zip(*runs)]
    losses, grads = model.loss_and_grads(stacked, batch)
    logits = model.logits(stacked, X)
    names = [f"{kind}{block}" for block in range(len(channels)) for kind in ("K", "b")] + ["W", "c"]
    for k, params in enumerate(runs):
        ref_loss, ref_logits, ref_grads = torch_cnn_loss_and_grads(model, params, X, y)
        np.testing.assert_allclose(logits[k], ref_logits, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(losses[k], ref_loss, rtol=1e-12)
        one_loss, one_grads = model.loss_and_grads(params, batch)
        assert one_loss == losses[k]
        assert_gradients(names, grads, k, one_grads, ref_grads)
