"""Tests of what is particular to TinyTransformer (its generic protocol is tested with the other networks in
test_networks.py): the sorting data, the layout of pre- and post-LN, sequence accuracy as greedy decoding, and
that it learns."""

import numpy as np
import pytest

from optimlab import experiments as ex
from optimlab.problems import TinyTransformer


def test_sorting_data_is_sorted_and_seeded():
    model = TinyTransformer(vocab=5, length=4, n_train=300, n_test=40, seed=3)
    X, y = model.X_train, model.y_train
    assert X.shape == (300, 8) and y.shape == (300, 4)
    np.testing.assert_array_equal(np.sort(X[:, :4], axis=1), y)  # the targets are the inputs sorted
    assert np.all(X[:, 4] == 5)                                    # then the separator
    np.testing.assert_array_equal(X[:, 5:], y[:, :-1])             # then the targets shifted by one
    assert X[:, :4].max() == 4 and X[:, :4].min() == 0
    again, other = TinyTransformer(vocab=5, length=4, n_train=300, seed=3), TinyTransformer(seed=4)
    np.testing.assert_array_equal(again.X_train, X)
    assert not np.array_equal(other.X_train, TinyTransformer(seed=3).X_train)
    with pytest.raises(ValueError):
        X[0, 0] = 1  # read-only


def test_pre_and_post_layouts_and_the_initial_layer_norms():
    pre, post = TinyTransformer(norm="pre", blocks=2), TinyTransformer(norm="post", blocks=2)
    assert pre.param_names[-4:] == ["lnf_g", "lnf_b", "W_out", "b_out"]
    assert "lnf_g" not in post.param_names and len(post.param_names) == len(pre.param_names) - 2
    assert pre.param_names[2:14] == [n + "0" for n in ("ln1_g", "ln1_b", "W_qkv", "b_qkv", "W_o", "b_o", "ln2_g",
                                                        "ln2_b", "W_1", "b_1", "W_2", "b_2")]
    params = pre.init_params(0)
    shapes = dict(zip(pre.param_names, (p.shape for p in params)))
    assert shapes["E"] == (9, 32) and shapes["P"] == (12, 32) and shapes["W_qkv1"] == (32, 96)
    for name, p in zip(pre.param_names, params):
        if name.startswith("ln"):
            assert np.all(p == (1.0 if "_g" in name else 0.0)), name


def test_the_mask_is_causal():
    """Changing a token changes no prediction at an earlier position."""
    model = TinyTransformer(blocks=2, length=5)
    params = model.init_params(1)
    X = model.X_test[:20].copy()
    before = model.logits(params, X)
    X[:, 7] = (X[:, 7] + 1) % model.vocab  # position 7 is output position 2 (outputs start at 5)
    after = model.logits(params, X)
    np.testing.assert_array_equal(after[:, :2], before[:, :2])
    assert not np.allclose(after[:, 2:], before[:, 2:])


def greedy_decode(model, params, digits):
    """Sort by generating: each prediction fed back as the next input."""
    n, L = digits.shape
    X = np.concatenate([digits, np.full((n, 1), model.vocab), np.zeros((n, L - 1), dtype=int)], axis=1)
    for i in range(L):
        prediction = model.logits(params, X)[:, i].argmax(axis=-1)
        if i < L - 1:
            X[:, L + 1 + i] = prediction
    return np.concatenate([X[:, L + 1:], prediction[:, None]], axis=1)


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_it_learns_to_sort_and_sequence_accuracy_is_greedy_decoding(norm):
    model = TinyTransformer(norm=norm, n_train=1000, n_test=200)
    before = model.metric(model.init_params(0))
    tr = ex.run(model, "Adam", steps=200, lr=3e-3, batch_size=64, seed=0)
    params = tr.info["params"]
    accuracy = model.sequence_accuracy(params)
    assert before < 0.01 and accuracy > 0.5 and model.token_accuracy(params) > 0.9
    assert tr.info["metric"] == accuracy
    decoded = greedy_decode(model, params, model.X_test[:, :model.length])
    assert np.mean(np.all(decoded == model.y_test, axis=1)) == accuracy


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: TinyTransformer(norm="mid"), "norm must be 'pre' or 'post', got 'mid'"),
        (lambda: TinyTransformer(blocks=3), "blocks must be 1 or 2, got 3"),
        (lambda: TinyTransformer(blocks=0), "blocks must be >= 1, got 0"),
        (lambda: TinyTransformer(d_model=0), "d_model must be >= 1, got 0"),
        (lambda: TinyTransformer(d_model=10, heads=3), "heads must divide d_model=10, got 3"),
        (lambda: TinyTransformer(heads=0), "heads must be >= 1, got 0"),
        (lambda: TinyTransformer(d_ff=1.5), "d_ff must be an integer, got 1.5"),
        (lambda: TinyTransformer(vocab=1), "vocab must be >= 2, got 1"),
        (lambda: TinyTransformer(length=1), "length must be >= 2, got 1"),
        (lambda: TinyTransformer(n_train=0), "n_train must be >= 1, got 0"),
        (lambda: TinyTransformer(n_test=-1), "n_test must be >= 1, got -1"),
        (lambda: TinyTransformer(seed=-1), "seed must be >= 0, got -1"),
        (lambda: TinyTransformer(dtype=np.int32), "dtype must be float32 or float64"),
        (lambda: TinyTransformer().init_params(seed=1.5), "seed must be an integer, got 1.5"),
        (lambda: TinyTransformer().metric(TinyTransformer().init_params(), "valid"), "split must be 'train' or"),
        (lambda: TinyTransformer().logits(TinyTransformer().init_params(), np.zeros((3, 11), dtype=int)),
         r"X must be integer tokens of shape \(n, 12\), got int64 \(3, 11\)"),
        (lambda: TinyTransformer().logits(TinyTransformer().init_params(), np.full((3, 12), 9)),
         "X must hold tokens 0..8, got values from 9 to 9"),
        (lambda: TinyTransformer(dtype="x"), "dtype must be float32 or float64, got 'x'"),
        (lambda: TinyTransformer(n_train=50).loss(TinyTransformer().init_params(), np.array([0, 50])),
         "batch must hold row indices from 0 to 49, got values from 0 to 50"),
        (lambda: TinyTransformer().loss(TinyTransformer(norm="post").init_params()),
         "params must be a list of 18 arrays, got 16"),
        (lambda: TinyTransformer().loss_and_grads(TinyTransformer(d_model=16).init_params()),
         r"params\[0\] must have shape \(9, 32\), got \(9, 16\)"),
    ],
)
def test_bad_arguments_raise_value_error_naming_argument_and_value(make, message):
    with pytest.raises(ValueError, match=message):
        make()
