"""Tests of the network problems (DigitsMLP, DigitsCNN, AddingGRU, TinyTransformer) through their shared
protocol: gradients against finite differences, stacked runs against runs one by one, seeds, dtypes, the
sharpness, and argument checking; and of experiments.sweep on a network."""

import numpy as np
import pytest

import optimlab
from optimlab import experiments as ex
from optimlab.problems import AddingGRU, DigitsCNN, DigitsMLP, TinyTransformer

NETWORKS = {
    "mlp": lambda dtype=np.float64: DigitsMLP(hidden=(8, 6), dtype=dtype),
    "mlp_relu": lambda dtype=np.float64: DigitsMLP(hidden=(7,), activation="relu", dtype=dtype),
    "cnn": lambda dtype=np.float64: DigitsCNN(channels=(4, 6), dtype=dtype),
    "cnn_one_block": lambda dtype=np.float64: DigitsCNN(channels=(3,), dtype=dtype),
    "gru": lambda dtype=np.float64: AddingGRU(T=12, hidden=5, n_train=200, n_test=50, dtype=dtype),
    "transformer_pre": lambda dtype=np.float64: TinyTransformer(norm="pre", blocks=2, d_model=8, heads=2, d_ff=12,
                                                                n_train=200, n_test=50, dtype=dtype),
    "transformer_post": lambda dtype=np.float64: TinyTransformer(norm="post", blocks=2, d_model=6, heads=3, d_ff=10,
                                                                 n_train=200, n_test=50, dtype=dtype),
}
BATCH = np.arange(3, 120, 4)  # 30 rows


@pytest.fixture(params=sorted(NETWORKS), scope="module")
def network(request):
    return NETWORKS[request.param]()


def directional_difference(model, params, batch, direction, h=1e-6):
    """(f(θ + h v) − f(θ − h v)) / 2h for a flat direction v: the gradient along v, to O(h²). h is small so that
    the segment seldom crosses a kink of ReLU or max pooling (where the difference would mean nothing)."""
    flat = model.flatten_params(params)
    plus = model.loss(model.unflatten_params(flat + h * direction), batch)
    minus = model.loss(model.unflatten_params(flat - h * direction), batch)
    return (plus - minus) / (2 * h)


def test_gradients_match_finite_differences_in_random_directions(network):
    params = network.init_params(1)
    loss, grads = network.loss_and_grads(params, BATCH)
    assert loss == pytest.approx(network.loss(params, BATCH), rel=1e-14)
    assert [g.shape for g in grads] == [p.shape for p in params]
    rng = np.random.default_rng(0)
    flat_grad = network.flatten_params(grads)
    for _ in range(5):
        direction = rng.standard_normal(network.n_params)
        numeric = directional_difference(network, params, BATCH, direction)
        assert abs(flat_grad @ direction - numeric) <= 1e-6 * abs(numeric)
    # and each array on its own (a wrong gradient of a small array hides in a random direction over all)
    for i, shape in enumerate(network.param_shapes):
        direction = [np.zeros(s) for s in network.param_shapes]
        direction[i] = rng.standard_normal(shape)
        flat_direction = network.flatten_params(direction)
        numeric = directional_difference(network, params, BATCH, flat_direction)
        assert abs(flat_grad @ flat_direction - numeric) <= 1e-6 * abs(numeric) + 1e-12, f"array {i}"


def test_stacked_runs_equal_runs_one_by_one(network):
    runs = [network.init_params(seed) for seed in range(3)]
    stacked = [np.stack(arrays) for arrays in zip(*runs)]
    losses, grads = network.loss_and_grads(stacked, BATCH)
    assert losses.shape == (3,)
    metric = network.metric(stacked)
    assert metric.shape == (3,)
    for run, params in enumerate(runs):
        loss, grad = network.loss_and_grads(params, BATCH)
        assert losses[run] == pytest.approx(loss, rel=1e-12)
        for a, b in zip(grads, grad):
            np.testing.assert_allclose(a[run], b, rtol=1e-10, atol=1e-14)
        assert metric[run] == pytest.approx(network.metric(params), rel=1e-12)
    # two leading dimensions work too
    grid = [np.stack([s, s]) for s in stacked]
    np.testing.assert_allclose(network.loss(grid, BATCH), np.stack([losses, losses]), rtol=1e-12)


@pytest.mark.parametrize("name", ["cnn", "gru", "transformer_post"])
def test_blocks_of_runs_equal_the_runs_together(name):
    model = NETWORKS[name]()
    stacked = [np.stack(a) for a in zip(*(model.init_params(s) for s in range(5)))]
    model.TRAINING_ROWS = None
    whole = model.loss_and_grads(stacked, BATCH)
    model.TRAINING_ROWS = 2 * BATCH.size  # blocks of two runs: 2 + 2 + 1
    assert model.n_runs_per_block(BATCH.size) == 2
    blocks = model.loss_and_grads(stacked, BATCH)
    np.testing.assert_allclose(blocks[0], whole[0], rtol=1e-13)
    for a, b in zip(blocks[1], whole[1]):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_reductions_over_short_axes_equal_numpys_bit_for_bit(dtype):
    """The column-by-column reductions of a stack of runs (softmax, LayerNorm, attention, bias gradients) give
    numpy's own results exactly, on arrays large enough to take them and on small ones left to numpy."""
    from optimlab.problems._base import _ROWS, _max_last, _mean_last, _sum_last, _sum_rows
    rng = np.random.default_rng(0)
    for k in (1, 2, 5, 7, 8, 9, 10, 12, 16, 17, 24, 32, 33, 64, 100, 128, 129):
        for lead in ((3, 5), (2, _ROWS // 2 + 1)):  # left to numpy; rows enough for the columns
            shape = lead + (k,)
            x = (rng.standard_normal(shape) * rng.uniform(0.01, 100.0, shape)).astype(dtype)
            for ours, numpys in ((_max_last, x.max(axis=-1, keepdims=True)),
                                 (_sum_last, x.sum(axis=-1, keepdims=True)),
                                 (_mean_last, x.mean(axis=-1, keepdims=True))):
                got = ours(x)
                assert got.dtype == numpys.dtype and got.shape == numpys.shape
                np.testing.assert_array_equal(got, numpys, err_msg=f"{ours.__name__}, shape {shape}")
    for shape in ((4, 1024, 16), (64, 32, 32), (2, 7, 300, 3), (70, 64, 1), (5, 3000, 63), (5, 3000, 64), (30, 8)):
        x = (rng.standard_normal(shape) * rng.uniform(0.01, 100.0, shape)).astype(dtype)
        np.testing.assert_array_equal(_sum_rows(x), x.sum(axis=-2), err_msg=f"shape {shape}")


@pytest.mark.parametrize("name", ["mlp", "cnn", "gru", "transformer_pre", "transformer_post"])
def test_a_large_stack_equals_runs_one_by_one(name):
    """40 runs on 30 rows: enough rows for the column-by-column reductions of the stack, not of one run."""
    model = NETWORKS[name]()
    model.TRAINING_ROWS = None
    runs = [model.init_params(seed) for seed in range(40)]
    losses, grads = model.loss_and_grads([np.stack(arrays) for arrays in zip(*runs)], BATCH)
    for run in (0, 17, 39):
        loss, grad = model.loss_and_grads(runs[run], BATCH)
        assert losses[run] == pytest.approx(loss, rel=1e-12)
        for a, b in zip(grads, grad):
            np.testing.assert_allclose(a[run], b, rtol=1e-10, atol=1e-14)


def test_init_is_seeded_and_bounded(network):
    first, again, other = network.init_params(3), network.init_params(3), network.init_params(4)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(network.flatten_params(first), network.flatten_params(other))
    for p, fan_in in zip(first, network.fan_ins):
        assert np.abs(p).max() <= 1 / np.sqrt(fan_in) * getattr(network, "recurrent_scale", 1.0)


def test_data_is_deterministic_given_the_seed():
    a, b, c = (AddingGRU(T=10, n_train=50, n_test=10, seed=s) for s in (2, 2, 3))
    np.testing.assert_array_equal(a.X_train, b.X_train)
    assert not np.array_equal(a.X_train, c.X_train)
    cnn, again = DigitsCNN(seed=1), DigitsCNN(seed=1)
    np.testing.assert_array_equal(cnn.X_test, again.X_test)
    np.testing.assert_array_equal(cnn.X_test, DigitsMLP(seed=1).X_test)  # one split for every digits network


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_float32_stays_float32(name):
    model = NETWORKS[name](np.float32)
    params = model.init_params(0)
    assert all(p.dtype == np.float32 for p in params)
    loss, grads = model.loss_and_grads(params, BATCH)
    assert loss.dtype == np.float32 and all(g.dtype == np.float32 for g in grads)
    assert all(v.dtype == np.float32 for v in model.hvp(params, params, BATCH))
    reference = NETWORKS[name]()
    assert loss == pytest.approx(reference.loss([p.astype(np.float64) for p in params], BATCH), rel=1e-4)


def test_adding_problem_data_and_baseline():
    gru = AddingGRU(T=20, n_train=4000, n_test=10)
    X, y = gru.X_train, gru.y_train
    assert X.shape == (4000, 20, 2) and y.shape == (4000,)
    markers = X[..., 1]
    assert np.all(markers.sum(axis=1) == 2)
    assert np.all(markers[:, :10].sum(axis=1) == 1)  # one marker in each half
    np.testing.assert_allclose(y, (X[..., 0] * markers).sum(axis=1))
    # predicting the mean 1 costs Var(u1 + u2) = 1/6
    assert np.mean((y - 1.0) ** 2) == pytest.approx(gru.baseline_mse, rel=0.05)


def test_gru_gradient_grows_with_the_recurrent_scale():
    """Larger recurrent weights: the product of Jacobians through time no longer shrinks."""
    norms = []
    for scale in (0.5, 4.0):
        gru = AddingGRU(T=30, hidden=16, n_train=64, recurrent_scale=scale)
        grads = gru.loss_and_grads(gru.init_params(0))[1]
        norms.append(np.linalg.norm(grads[1]))  # the recurrent weights' gradient
    assert norms[1] > 3 * norms[0]


def test_cnn_max_pooling_sends_the_gradient_to_one_element_of_tied_windows():
    """The blank border of the digits gives windows of equal values; the bias gradient counts each window once."""
    cnn = DigitsCNN(channels=(2,))
    params = cnn.init_params(0)
    params[1] = np.array([5.0, 5.0])  # large biases: every output positive, ties stay ties
    batch = np.arange(10)
    grads = cnn.loss_and_grads(params, batch)[1]
    direction = [np.zeros(s) for s in cnn.param_shapes]
    direction[1] = np.array([1.0, -0.5])
    numeric = directional_difference(cnn, params, batch, cnn.flatten_params(direction))
    assert grads[1] @ direction[1] == pytest.approx(numeric, rel=1e-6)


def test_cnn_training_learns_the_digits():
    cnn = DigitsCNN()
    params = cnn.init_params(0)
    rng = np.random.default_rng(0)
    before = cnn.accuracy(params)
    for _ in range(2):
        for batch in cnn.minibatches(32, rng):
            params = [p - 0.3 * g for p, g in zip(params, cnn.loss_and_grads(params, batch)[1])]
    assert before < 0.3 and cnn.accuracy(params) > 0.85


@pytest.mark.parametrize("name", ["cnn", "gru"])
def test_finite_difference_hvp_matches_the_exact_one_where_known(name):
    """The base class's hvp by differences of gradients, checked on the MLP against its exact product, and
    symmetric on the others."""
    mlp = DigitsMLP(hidden=(6,))
    params = mlp.init_params(2)
    vecs = mlp.init_params(3)
    exact = mlp.flatten_params(mlp.hvp(params, vecs, BATCH))
    approx = mlp.flatten_params(super(DigitsMLP, mlp).hvp(params, vecs, BATCH))
    np.testing.assert_allclose(approx, exact, rtol=1e-5, atol=1e-8)
    model = NETWORKS[name]()
    params = model.init_params(0)
    rng = np.random.default_rng(1)
    u, v = (model.unflatten_params(rng.standard_normal(model.n_params)) for _ in range(2))
    uHv = model.flatten_params(u) @ model.flatten_params(model.hvp(params, v, BATCH))
    vHu = model.flatten_params(v) @ model.flatten_params(model.hvp(params, u, BATCH))
    assert uHv == pytest.approx(vHu, rel=1e-5)


def test_sharpness_is_the_largest_eigenvalue_and_batched():
    mlp = DigitsMLP(hidden=(3,))
    params = mlp.init_params(0)
    batch = np.arange(40)
    columns = []
    for k in range(mlp.n_params):  # the dense Hessian, one exact product per coordinate
        e = np.zeros(mlp.n_params)
        e[k] = 1.0
        columns.append(mlp.flatten_params(mlp.hvp(params, mlp.unflatten_params(e), batch)))
    eigenvalues = np.linalg.eigvalsh(np.array(columns))
    dominant = eigenvalues[np.argmax(np.abs(eigenvalues))]
    assert mlp.sharpness(params, batch, iters=200) == pytest.approx(dominant, rel=1e-6)
    runs = [mlp.init_params(s) for s in range(2)]
    stacked = [np.stack(a) for a in zip(*runs)]
    together = mlp.sharpness(stacked, batch, iters=30)
    assert together.shape == (2,)
    for run, p in enumerate(runs):
        assert together[run] == pytest.approx(mlp.sharpness(p, batch, iters=30), rel=1e-9)
    assert mlp.sharpness(params, batch, seed=4) == mlp.sharpness(params, batch, seed=4)


def test_top_eigenpair_returns_the_unit_vector_and_warm_starts():
    mlp = DigitsMLP(hidden=(3,))
    params, batch = mlp.init_params(0), np.arange(40)
    value, vector = mlp.top_eigenpair(params, batch, iters=200)
    assert value == mlp.sharpness(params, batch, iters=200)
    flat = mlp.flatten_params(vector)
    assert np.linalg.norm(flat) == pytest.approx(1.0, rel=1e-12)
    hv = mlp.flatten_params(mlp.hvp(params, vector, batch))
    np.testing.assert_allclose(hv, value * flat, atol=1e-4 * abs(value))   # an eigenvector
    warm, _ = mlp.top_eigenpair(params, batch, iters=2, start=vector)      # two steps from it suffice
    assert warm == pytest.approx(value, rel=1e-9)
    assert abs(mlp.sharpness(params, batch, iters=2) - value) > 1e-3 * abs(value)  # from a random start not
    runs = mlp.repeat_params(params, 2)
    with pytest.raises(ValueError, match="start must have the runs of params"):
        mlp.top_eigenpair(runs, batch, start=vector)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: DigitsCNN(channels=(4, 0)), r"channels\[1\] must be >= 1, got 0"),
        (lambda: DigitsCNN(channels=(2, 2, 2, 2)), "channels must be a tuple of one to three"),
        (lambda: DigitsCNN(test_size=0.0), "test_size must be > 0, got 0.0"),
        (lambda: DigitsCNN(dtype=np.int64), "dtype must be float32 or float64"),
        (lambda: DigitsCNN(seed=-1), "seed must be >= 0, got -1"),
        (lambda: AddingGRU(T=1), "T must be >= 2, got 1"),
        (lambda: AddingGRU(hidden=0), "hidden must be >= 1, got 0"),
        (lambda: AddingGRU(n_train=2.5), "n_train must be an integer, got 2.5"),
        (lambda: AddingGRU(n_test=0), "n_test must be >= 1, got 0"),
        (lambda: AddingGRU(recurrent_scale=0), "recurrent_scale must be > 0, got 0"),
        (lambda: AddingGRU(dtype="float16"), "dtype must be float32 or float64, got 'float16'"),
        (lambda: AddingGRU(dtype="x"), "dtype must be float32 or float64, got 'x'"),
        (lambda: DigitsCNN(dtype=None), "dtype must be float32 or float64, got None"),
        (lambda: DigitsMLP(dtype=2.5), "dtype must be float32 or float64, got 2.5"),
        (lambda: DigitsMLP(hidden=2.5), "hidden must be an integer or a sequence of integers, got 2.5"),
        (lambda: DigitsMLP(hidden="32"), "hidden must be an integer or a sequence of integers, got '32'"),
        (lambda: DigitsMLP().loss(DigitsMLP().init_params(), [0, 10**6]),
         "batch must hold row indices from 0 to 1346, got values from 0 to 1000000"),
        (lambda: DigitsCNN().loss_and_grads(DigitsCNN().init_params(), np.array([0.5])),
         "batch must be an array of row indices .integers., got dtype float64"),
        (lambda: AddingGRU(T=5, n_train=20).loss(AddingGRU(T=5).init_params(), [3, 20]),
         "batch must hold row indices from 0 to 19, got values from 3 to 20"),
        (lambda: AddingGRU(T=5, n_train=20).loss_and_grads(AddingGRU(T=5).init_params(), [-1, 2]),
         "batch must hold row indices from 0 to 19, got values from -1 to 2"),
        (lambda: AddingGRU(T=5).loss(AddingGRU(T=5).init_params(), np.array([1.5])),
         "batch must be an array of row indices .integers., got dtype float64"),
        (lambda: AddingGRU(T=5).init_params(seed=-2), "seed must be >= 0, got -2"),
        (lambda: AddingGRU(T=5).loss([np.zeros(3)]), "params must be a list of 6 arrays, got 1"),
        (lambda: AddingGRU(T=5).loss(np.zeros(3)), "params must be a list of 6 arrays, got ndarray"),
        (lambda: AddingGRU(T=5).mse(AddingGRU(T=5).init_params(), "valid"), "split must be 'train' or 'test'"),
        (lambda: next(DigitsCNN().minibatches(0, np.random.default_rng())), "batch_size must be >= 1, got 0"),
        (lambda: next(DigitsCNN().minibatches(8, 3)), "rng must be a numpy.random.Generator, got 3"),
        (lambda: DigitsMLP().sharpness(DigitsMLP().init_params(), iters=0), "iters must be >= 1, got 0"),
        (lambda: DigitsMLP().repeat_params(DigitsMLP().init_params(), 0), "runs must be >= 1, got 0"),
        (lambda: DigitsMLP(hidden=(4,)).loss([np.zeros((64, 4), dtype=int), np.zeros(4), np.zeros((4, 10)),
                                              np.zeros(10)]), r"params\[0\] must be a float array, got dtype int"),
    ],
)
def test_bad_arguments_raise_value_error_naming_argument_and_value(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# ----------------------------------------------------------------------------------------------------------------
# experiments.run and experiments.sweep on a network


@pytest.mark.parametrize("name, optimizer, swept", [
    ("mlp", "Momentum", {"lr": [0.01, 0.1, 0.5]}),
    ("cnn", "AdamW", {"lr": [1e-3, 1e-2, 3e-2], "weight_decay": [0.0, 0.01, 0.1]}),
    ("gru", "Adam", {"lr": [1e-3, 1e-2, 1e-2], "beta1": [0.9, 0.5, 0.0]}),
])
def test_a_network_sweep_is_its_runs_done_at_once(name, optimizer, swept):
    model = NETWORKS[name]()
    result = ex.sweep(model, optimizer, steps=12, batch_size=16, seed=3, clip_norm=1.0, **swept)
    tr = result.trajectory
    assert tr.losses.shape == (13, 3) and tr.grad_norms.shape == (12, 3) and tr.path is None
    np.testing.assert_allclose(tr.lrs[0], swept["lr"])
    assert np.all(tr.grad_norms <= 1.0 + 1e-9)
    for i in range(3):
        one = {k: float(v[i]) for k, v in swept.items()}
        if "beta1" in one:
            one["betas"] = (one.pop("beta1"), 0.999)
        alone = ex.run(model, optimizer, steps=12, batch_size=16, seed=3, clip_norm=1.0, **one)
        np.testing.assert_allclose(tr.losses[:, i], alone.losses, rtol=1e-10)
        for a, b in zip(tr.info["params"], alone.info["params"]):
            np.testing.assert_allclose(a[i], b, rtol=1e-9, atol=1e-12)
        assert tr.info["metric"][i] == pytest.approx(alone.info["metric"], rel=1e-9)


@pytest.mark.parametrize("name", ["cnn", "gru", "transformer_post"])
def test_a_network_run_is_determined_by_its_seed(name):
    model = NETWORKS[name]()
    first, again, other = (ex.sweep(model, "AdamW", steps=6, batch_size=8, seed=s, lr=[1e-3, 1e-2]).trajectory
                           for s in (5, 5, 6))
    np.testing.assert_array_equal(first.losses, again.losses)
    for a, b in zip(first.info["params"], again.info["params"]):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first.losses, other.losses)


def test_a_network_run_is_the_optimizer_driven_by_hand():
    mlp = DigitsMLP(hidden=(5,))
    tr = ex.run(mlp, "SGD", steps=30, lr=0.2, batch_size=50, seed=1)
    params = mlp.init_params(1)
    opt = optimlab.SGD(params, lr=0.2)
    rng = np.random.default_rng(1)
    batches = [b for _ in range(2) for b in mlp.minibatches(50, rng)]  # 27 per epoch: two epochs cover 30 steps
    for t in range(30):
        loss, grads = mlp.loss_and_grads(params, batches[t])
        assert tr.losses[t] == loss
        opt.step(grads)
    for a, b in zip(tr.info["params"], params):
        np.testing.assert_array_equal(a, b)
    assert tr.losses[-1] == mlp.loss(params, batches[30])
    assert tr.info["metric"] == mlp.accuracy(params)


def test_full_batch_run_records_the_sharpness():
    mlp = DigitsMLP(hidden=(4,))
    tr = ex.run(mlp, "SGD", steps=20, lr=0.5, batch_size=None, sharpness_every=10)
    np.testing.assert_array_equal(tr.info["sharpness_steps"], [0, 10, 20])
    assert tr.info["sharpness"][0] == pytest.approx(mlp.sharpness(mlp.init_params(0)))
    assert tr.info["sharpness"][-1] == pytest.approx(mlp.sharpness(tr.info["params"]))
    assert tr.losses[0] == pytest.approx(mlp.loss(mlp.init_params(0)))


def test_warm_started_sharpness_follows_the_run():
    mlp = DigitsMLP(hidden=(4,))
    options = dict(lr=[0.5, 1.0], batch_size=None, sharpness_every=10)
    warm = ex.sweep(mlp, "SGD", steps=20, sharpness_iters=3, **options).trajectory.info["sharpness"]
    cold = ex.sweep(mlp, "SGD", steps=20, **options).trajectory.info["sharpness"]
    np.testing.assert_array_equal(warm[0], cold[0])   # the first estimate is the cold one
    assert not np.allclose(warm[1], cold[1])
    # the second: 3 iterations from the first estimate's vector, at the parameters of step 10
    start = mlp.repeat_params(mlp.init_params(0), 2)
    _, vector = mlp.top_eigenpair(start)
    at_10 = ex.sweep(mlp, "SGD", steps=10, lr=[0.5, 1.0], batch_size=None).trajectory.info["params"]
    np.testing.assert_allclose(warm[1], mlp.top_eigenpair(at_10, iters=3, start=vector)[0], rtol=1e-12)


def test_a_diverging_network_run_is_marked_and_leaves_the_others():
    mlp = DigitsMLP(hidden=(4,), activation="relu")  # unbounded activations: the logits blow up
    result = ex.sweep(mlp, "SGD", steps=30, lr=[0.1, 1e3], batch_size=None)
    assert list(result.diverged) == [False, True]
    assert np.isfinite(result.final_loss[0])


@pytest.mark.parametrize("kwargs, message", [
    ({"batch_size": 0}, "batch_size must be a positive integer, got 0"),
    ({"sharpness_every": -1}, "sharpness_every must be a positive integer, got -1"),
    ({"sharpness_every": 5, "sharpness_iters": 0}, "sharpness_iters must be a positive integer, got 0"),
    ({"seed": -1}, "seed must be a non-negative integer, got -1"),
    ({"accumulate": 2}, "accumulate is for vector problems"),
    ({"x0": np.zeros(3)}, "x0 must be a list of parameter arrays"),
])
def test_network_runs_reject_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ex.run(DigitsMLP(hidden=(3,)), "SGD", steps=2, lr=0.1, **kwargs)
