"""Unit tests of optimlab's optimizers that need no reference library: state dicts (resume bit for bit),
honest errors (a step that raises changes nothing), vectorized sweeps (a sweep is exactly its runs), the options
that differ from PyTorch (epsilon inside the square root, the paper's AdamW decay), skipped parameters, aliases.
"""

import copy
import math
import pickle

import numpy as np
import pytest

import optimlab as ol
from optimlab._base import THREAD_MIN

NAMES = ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "Lion", "SophiaG"]

# Options that switch every state array and code path on (momentum, centering, AMSGrad, both decays, ...).
OPTIONS = {
    "SGD": dict(lr=0.05, momentum=0.9, dampening=0.2, weight_decay=0.01),
    "Adagrad": dict(lr=0.1, lr_decay=0.01, weight_decay=0.01, initial_accumulator_value=0.1),
    "RMSprop": dict(lr=0.01, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.01),
    "Adam": dict(lr=0.01, betas=(0.8, 0.99), amsgrad=True, weight_decay=0.01),
    "AdamW": dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1, weight_decay_scale="schedule"),
    "Adamax": dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.01),
    "NAdam": dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.01, decoupled_weight_decay=True),
    "RAdam": dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.01),
    "Lion": dict(lr=1e-3, betas=(0.8, 0.95), weight_decay=0.1),
    "SophiaG": dict(lr=1e-2, betas=(0.9, 0.95), rho=0.05, weight_decay=0.1),
}
# Second group: other values of a few hyperparameters (and nesterov for SGD).
SECOND = {
    "SGD": dict(lr=0.02, momentum=0.5, dampening=0.0, nesterov=True),
    "Adagrad": dict(lr=0.05, lr_decay=0.0),
    "RMSprop": dict(lr=0.02, centered=False, momentum=0.0),
    "Adam": dict(lr=0.02, amsgrad=False, maximize=True),
    "AdamW": dict(lr=0.02, weight_decay=0.05),
    "Adamax": dict(lr=0.02, betas=(0.5, 0.9)),
    "NAdam": dict(lr=0.02, momentum_decay=0.01),
    "RAdam": dict(lr=0.02, decoupled_weight_decay=True),
    "Lion": dict(lr=2e-3, betas=(0.9, 0.99)),
    "SophiaG": dict(lr=2e-2, rho=0.1),
}
SHAPES = [(1,), (5,), (3, 4), (2, 2, 3)]


def make(name, params, split=2, **overrides):
    options = {**OPTIONS[name], **overrides}
    return getattr(ol, name)([{"params": params[:split]}, {"params": params[split:], **SECOND[name]}], **options)


def layout(kind, arrays):
    """The same values as separate arrays, or as views of one flat buffer per group (first two, last two)."""
    if kind == "arrays":
        return [a.copy() for a in arrays]
    _, first = ol.as_flat(arrays[:2])
    _, rest = ol.as_flat(arrays[2:])
    return first + rest


def drive(opt, grads):
    """One step; SophiaG also refreshes its Hessian estimate every third step of parameter 0 (with g * g, as
    its Gauss-Newton-Bartlett estimator does); the tests never skip parameter 0."""
    if isinstance(opt, ol.SophiaG):
        opt.step(grads, bs=16)
        if opt.state[0]["step"] % 3 == 0:
            opt.update_hessian([None if g is None else g * g for g in grads])
    else:
        opt.step(grads)


def gradient_stream(seed, shapes, steps, skip=None):
    """Seeded random gradients; ``skip`` maps a step to a parameter whose gradient is None at that step."""
    rng = np.random.default_rng(seed)
    stream = []
    for t in range(steps):
        grads = [rng.standard_normal(s) for s in shapes]
        if skip and t in skip:
            grads[skip[t]] = None
        stream.append(grads)
    return stream


def assert_same(a, b, where="state_dict"):
    """Exact equality of nested state dicts / param groups (arrays bit for bit, same types of containers)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and sorted(map(str, a)) == sorted(map(str, b)), f"{where}: {a.keys()} {b.keys()}"
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        assert np.array_equal(a, b, equal_nan=True) and np.shape(a) == np.shape(b), where
    else:
        assert a == b or (a != a and b != b), f"{where}: {a!r} != {b!r}"


def snapshot(opt, params):
    return [p.copy() for p in params], opt.state_dict()


def assert_unchanged(opt, params, before):
    saved_params, saved_state = before
    for p, q in zip(params, saved_params):
        assert np.array_equal(p, q, equal_nan=True)
    assert_same(opt.state_dict(), saved_state)


def test_friendly_aliases_are_the_same_classes():
    assert ol.AdaGrad is ol.Adagrad
    assert ol.RMSProp is ol.RMSprop
    assert ol.Nadam is ol.NAdam
    assert ol.Sophia is ol.SophiaG
    for name in ["AdaGrad", "RMSProp", "Nadam", "Sophia"]:
        assert name in ol.__all__


# ----------------------------------------------------------------------------------------------------------------
# State dicts


def roundtrip_direct(sd, tmp_path):
    return sd


def roundtrip_pickle(sd, tmp_path):
    return pickle.loads(pickle.dumps(sd))


def roundtrip_npz(sd, tmp_path):
    path = tmp_path / "optimizer.npz"
    np.savez(path, **ol.flatten_state_dict(sd))
    with np.load(path) as loaded:      # no pickle needed: every entry is a plain array
        return ol.unflatten_state_dict(loaded)


ROUNDTRIPS = {"direct": roundtrip_direct, "pickle": roundtrip_pickle, "npz": roundtrip_npz}


@pytest.mark.parametrize("kind", ["arrays", "flat"])
@pytest.mark.parametrize("how", list(ROUNDTRIPS))
@pytest.mark.parametrize("name", NAMES)
def test_state_dict_resumes_bit_for_bit(name, how, kind, tmp_path):
    """Run 6 steps (parameter 1 skipped at step 2, so parameters have different step counts), save, load into a
    fresh optimizer over fresh copies of the parameters, and continue both for 6 steps: identical."""
    rng = np.random.default_rng(NAMES.index(name))
    init = [rng.standard_normal(s) for s in SHAPES]
    stream = gradient_stream(NAMES.index(name), SHAPES, 12, skip={2: 1, 8: 3})
    params = layout(kind, init)
    opt = make(name, params)
    for grads in stream[:6]:
        drive(opt, grads)
    snapshot = opt.state_dict()
    frozen = copy.deepcopy(snapshot)
    saved = ROUNDTRIPS[how](snapshot, tmp_path)
    assert_same(saved, frozen)                  # the round trip is exact

    copies = layout(kind, params)
    fresh = getattr(ol, name)([{"params": copies[:2]}, {"params": copies[2:]}])   # constructor defaults
    fresh.load_state_dict(saved)
    assert_same(fresh.state_dict(), opt.state_dict())
    for grads in stream[6:]:
        drive(opt, grads)
        drive(fresh, grads)
    for p, q in zip(params, copies):
        assert np.array_equal(p, q), f"{name}: the resumed run differs by {np.max(np.abs(p - q)):.3g}"
    assert_same(snapshot, frozen)               # a snapshot is a copy: the steps since did not reach into it
    assert_same(fresh.state_dict(), opt.state_dict())


def test_state_dict_is_a_snapshot_and_state_is_live():
    theta = np.ones(3)
    opt = ol.Adam([theta], lr=0.1)
    opt.step([np.ones(3)])
    sd = opt.state_dict()
    live = opt.state[0]["exp_avg"]
    opt.step([np.ones(3)])
    assert not np.array_equal(sd["state"][0]["exp_avg"], live)
    assert sd["state"][0]["step"] == 1 and opt.state[0]["step"] == 2
    assert sd["param_groups"][0]["params"] == [0]


def test_state_dicts_share_no_arrays_with_the_optimizer():
    """Array hyperparameters (betas too) are copied into a snapshot and out of it on loading."""
    lr, beta1 = np.full((2, 1), 0.1), np.full((2, 1), 0.9)
    opt = ol.Adam([np.ones((2, 3))], lr=lr, betas=(beta1, 0.99))
    opt.step([np.ones((2, 3))])
    sd = opt.state_dict()
    lr *= 0.5
    beta1[:] = 0.5
    assert np.array_equal(sd["param_groups"][0]["lr"], np.full((2, 1), 0.1))
    assert np.array_equal(sd["param_groups"][0]["betas"][0], np.full((2, 1), 0.9))
    other = ol.Adam([np.ones((2, 3))])
    other.load_state_dict(sd)
    sd["param_groups"][0]["lr"][:] = 7.0
    sd["param_groups"][0]["betas"][0][:] = 0.1
    assert np.array_equal(other.param_groups[0]["lr"], np.full((2, 1), 0.1))
    assert np.array_equal(other.param_groups[0]["betas"][0], np.full((2, 1), 0.9))


def test_adagrad_state_exists_before_the_first_step_like_torch():
    opt = ol.Adagrad([np.zeros(2)], initial_accumulator_value=0.5)
    sd = opt.state_dict()
    assert sd["state"][0]["step"] == 0 and np.array_equal(sd["state"][0]["sum"], [0.5, 0.5])


def test_sophia_hessian_refreshed_before_any_step_is_saved():
    theta = np.ones(3)
    opt = ol.SophiaG([theta])
    opt.update_hessian([np.full(3, 2.0)])
    copy = theta.copy()
    fresh = ol.SophiaG([copy])
    fresh.load_state_dict(opt.state_dict())
    opt.step([np.ones(3)])
    fresh.step([np.ones(3)])
    assert np.array_equal(theta, copy)


def other_layouts():
    """(description, params factory, expected words in the message) for parameter layouts that do not match."""
    return [
        ("other shapes", lambda: [np.zeros(1), np.zeros(5), np.zeros((4, 3)), np.zeros((2, 2, 3))], ["shape"]),
        ("one group", lambda: [np.zeros(s) for s in SHAPES], ["parameter groups"]),
        ("fewer params", lambda: [{"params": [np.zeros(1), np.zeros(5)]}, {"params": [np.zeros((3, 4))]}],
         ["parameters"]),
        ("three groups", lambda: [{"params": [np.zeros(s)]} for s in SHAPES[:3]], ["parameter groups"]),
    ]


@pytest.mark.parametrize("case", range(len(other_layouts())))
@pytest.mark.parametrize("name", ["SGD", "Adam", "SophiaG"])
def test_load_state_dict_from_another_layout_raises_and_changes_nothing(name, case):
    description, factory, words = other_layouts()[case]
    rng = np.random.default_rng(0)
    source = make(name, [rng.standard_normal(s) for s in SHAPES])
    for grads in gradient_stream(1, SHAPES, 3):
        drive(source, grads)
    params = factory()
    groups = params if isinstance(params[0], dict) else [{"params": params[:2]}, {"params": params[2:]}]
    if description == "one group":
        groups = [{"params": params}]
    target = getattr(ol, name)(groups, **OPTIONS[name])
    flat = [p for g in target.param_groups for p in g["params"]]
    before = snapshot(target, flat)
    groups_before = [dict(g) for g in target.param_groups]
    with pytest.raises(ValueError) as error:
        target.load_state_dict(source.state_dict())
    assert any(w in str(error.value) for w in words), str(error.value)
    assert_unchanged(target, flat, before)
    assert [dict(g) for g in target.param_groups] == groups_before


@pytest.mark.parametrize("source_name, target_name", [
    ("Adam", "AdamW"), ("AdamW", "Adam"), ("Adam", "RAdam"), ("NAdam", "Adam"), ("SGD", "RMSprop"),
    ("Adamax", "Adam"), ("Lion", "SophiaG"), ("Adagrad", "RMSprop"), ("RAdam", "NAdam"),
])
def test_load_state_dict_from_another_optimizer_raises_and_changes_nothing(source_name, target_name):
    rng = np.random.default_rng(1)
    source = make(source_name, [rng.standard_normal(s) for s in SHAPES])
    for grads in gradient_stream(2, SHAPES, 3):
        drive(source, grads)
    params = [rng.standard_normal(s) for s in SHAPES]
    target = make(target_name, params)
    for grads in gradient_stream(3, SHAPES, 2):
        drive(target, grads)
    before = snapshot(target, params)
    with pytest.raises(ValueError, match="another optimizer|hyperparameters"):
        target.load_state_dict(source.state_dict())
    assert_unchanged(target, params, before)


def test_load_state_dict_rejects_broken_entries_and_changes_nothing():
    params = [np.ones(3), np.ones(2)]
    opt = ol.Adam(params, lr=0.1)
    opt.step([np.ones(3), np.ones(2)])
    good = opt.state_dict()
    before = snapshot(opt, params)

    def broken(edit):
        sd = pickle.loads(pickle.dumps(good))
        edit(sd)
        return sd

    cases = [
        (broken(lambda sd: sd["state"][0].pop("exp_avg_sq")), "keys"),
        (broken(lambda sd: sd["state"][1].__setitem__("exp_avg", np.zeros(3))), "shape"),
        (broken(lambda sd: sd["state"][0].__setitem__("step", -1)), "step"),
        (broken(lambda sd: sd["state"].__setitem__(7, sd["state"][0])), "7"),
        (broken(lambda sd: sd["param_groups"][0].__setitem__("lr", -1.0)), "lr"),
        (broken(lambda sd: sd.pop("state")), "keys"),
    ]
    for sd, word in cases:
        with pytest.raises(ValueError, match=word):
            opt.load_state_dict(sd)
        assert_unchanged(opt, params, before)


# ----------------------------------------------------------------------------------------------------------------
# Bad input: errors that name the argument and the value


BAD_CONSTRUCTION = [
    # (optimizer, keyword arguments, exception, words the message must contain)
    ("SGD", dict(lr=-0.1), ValueError, ["lr", "-0.1"]),
    ("Adam", dict(lr=float("nan")), ValueError, ["lr", "nan"]),
    ("Adam", dict(betas=(1.0, 0.999)), ValueError, ["betas[0]", "1.0"]),
    ("Adam", dict(betas=(-0.1, 0.999)), ValueError, ["betas[0]", "-0.1"]),
    ("Adam", dict(betas=(0.9, 1.0)), ValueError, ["betas[1]", "1.0"]),
    ("NAdam", dict(betas=(0.9, float("nan"))), ValueError, ["betas[1]", "nan"]),
    ("Lion", dict(betas=(0.9, 1.5)), ValueError, ["betas[1]", "1.5"]),
    ("SophiaG", dict(betas=(2.0, 0.99)), ValueError, ["betas[0]", "2.0"]),
    ("Adam", dict(betas=0.9), ValueError, ["betas", "0.9"]),
    ("Adam", dict(eps=-1e-8), ValueError, ["eps", "-1e-08"]),
    ("RMSprop", dict(eps=-1.0), ValueError, ["eps", "-1.0"]),
    ("Adagrad", dict(weight_decay=-0.01), ValueError, ["weight_decay", "-0.01"]),
    ("AdamW", dict(weight_decay=-0.5), ValueError, ["weight_decay", "-0.5"]),
    ("SGD", dict(momentum=-0.9), ValueError, ["momentum", "-0.9"]),
    ("RMSprop", dict(momentum=-0.1), ValueError, ["momentum", "-0.1"]),
    ("SGD", dict(lr=0.1, nesterov=True), ValueError, ["nesterov", "momentum"]),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.5, nesterov=True), ValueError, ["nesterov", "dampening", "0.5"]),
    ("Adagrad", dict(lr_decay=-1.0), ValueError, ["lr_decay", "-1.0"]),
    ("RMSprop", dict(alpha=1.5), ValueError, ["alpha", "1.5"]),
    ("SophiaG", dict(rho=-0.04), ValueError, ["rho", "-0.04"]),
    ("AdamW", dict(weight_decay_scale="paper"), ValueError, ["weight_decay_scale", "paper"]),
    ("Adam", dict(lr="0.1"), TypeError, ["lr", "0.1"]),
    ("Adam", dict(amsgrad=1), ValueError, ["amsgrad", "1"]),
    ("SGD", dict(lr=np.full((3, 1), 0.1)), ValueError, ["lr", "(3, 1)", "(2, 5)"]),
    ("Adam", dict(betas=(np.full((4, 1), 0.9), 0.999)), ValueError, ["betas", "(4, 1)"]),
    ("Adam", dict(betas=(np.array([[0.9], [1.0]]), 0.999)), ValueError, ["betas[0]"]),
    ("SGD", dict(lr=np.array([[0.1], [-0.1]])), ValueError, ["lr", "-0.1"]),
]


@pytest.mark.parametrize("name, kwargs, error, words", BAD_CONSTRUCTION,
                         ids=[f"{c[0]}-{'-'.join(c[1])}-{i}" for i, c in enumerate(BAD_CONSTRUCTION)])
def test_invalid_hyperparameters_are_named_with_their_value(name, kwargs, error, words):
    with pytest.raises(error) as caught:
        getattr(ol, name)([np.zeros((2, 5))], **kwargs)
    for word in words:
        assert word in str(caught.value), f"{word!r} not in {caught.value}"


@pytest.mark.parametrize("name", NAMES)
def test_every_optimizer_rejects_bad_params_and_unknown_arguments(name):
    cls = getattr(ol, name)
    with pytest.raises(ValueError, match="empty"):
        cls([])
    with pytest.raises(TypeError, match=r"params\[0\].*int64"):
        cls([np.zeros(3, dtype=np.int64)])
    with pytest.raises(TypeError, match=r"params\[1\].*list"):
        cls([np.zeros(3), [1.0, 2.0]])
    with pytest.raises(TypeError, match="single array.*wrap it in a list"):
        cls(np.zeros(3))
    with pytest.raises(TypeError, match="float32 or float64"):
        cls([np.zeros(3, dtype=np.float16)])
    with pytest.raises(TypeError, match="learning_rate"):
        cls([np.zeros(3)], learning_rate=0.1)
    with pytest.raises(TypeError, match="momentun"):
        cls([{"params": [np.zeros(3)], "momentun": 0.9}])
    with pytest.raises(ValueError, match="lr.*-1.0"):
        cls([np.zeros(3)], lr=-1.0)
    with pytest.raises(ValueError, match="lr.*nan"):
        cls([{"params": [np.zeros(3)]}, {"params": [np.zeros(2)], "lr": float("nan")}])
    with pytest.raises(ValueError, match="more than one parameter group"):
        theta = np.zeros(3)
        cls([{"params": [theta]}, {"params": [theta]}])
    frozen = np.zeros(3)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        cls([frozen])


def failing_steps(name):
    """(description, action on (opt, params, grads), exception, words): each must raise and change nothing."""
    g = gradient_stream(9, SHAPES, 1)[0]

    def with_group(key, value, gi=1):
        def action(opt, params):
            opt.param_groups[gi][key] = value
            opt_step(opt, g)
        return action

    def opt_step(opt, grads):
        if isinstance(opt, ol.SophiaG):
            opt.step(grads, bs=16)
        else:
            opt.step(grads)

    cases = [
        ("too few grads", lambda o, p: opt_step(o, g[:3]), ValueError, ["expected 4", "got 3"]),
        ("too many grads", lambda o, p: opt_step(o, g + [g[0]]), ValueError, ["expected 4", "got 5"]),
        ("wrong shape", lambda o, p: opt_step(o, g[:2] + [g[2].T, g[3]]), ValueError, ["grads[2]", "(4, 3)"]),
        ("wrong dtype", lambda o, p: opt_step(o, g[:3] + [g[3].astype(np.float32)]), TypeError,
         ["grads[3]", "float32"]),
        ("not an array", lambda o, p: opt_step(o, g[:3] + [g[3].tolist()]), TypeError, ["grads[3]", "list"]),
        ("a single array", lambda o, p: opt_step(o, g[1]), TypeError, ["list"]),
        ("scheduler writes NaN", with_group("lr", float("nan")), ValueError, ["param_groups[1]['lr']", "nan"]),
        ("negative lr", with_group("lr", -0.5, gi=0), ValueError, ["param_groups[0]['lr']", "-0.5"]),
        ("array lr that does not broadcast", with_group("lr", np.full((5, 1), 0.1)), ValueError,
         ["param_groups[1]['lr']", "(5, 1)"]),
        ("negative weight decay", with_group("weight_decay", -1.0), ValueError, ["weight_decay", "-1.0"]),
        ("lr of the wrong type", with_group("lr", None), TypeError, ["lr", "None"]),
    ]
    if "betas" in OPTIONS[name]:
        cases.append(("beta1 = 1", with_group("betas", (1.0, 0.9)), ValueError,
                      ["param_groups[1]['betas'][0]", "1.0"]))
        cases.append(("beta2 NaN", with_group("betas", (0.9, float("nan"))), ValueError,
                      ["param_groups[1]['betas'][1]", "nan"]))
    if "eps" in ol.__dict__[name].hyper:
        cases.append(("negative eps", with_group("eps", -1e-8), ValueError, ["eps", "-1e-08"]))
    if name == "SGD":
        cases.append(("nesterov without momentum", with_group("momentum", 0.0), ValueError,
                      ["nesterov", "momentum"]))
    if name == "SophiaG":
        cases.append(("bs zero", lambda o, p: o.step(g, bs=0), ValueError, ["bs", "0"]))
        cases.append(("bs infinite", lambda o, p: o.step(g, bs=float("inf")), ValueError, ["bs", "inf"]))
        cases.append(("bs NaN", lambda o, p: o.step(g, bs=float("nan")), ValueError, ["bs", "nan"]))
        cases.append(("hessian estimate of the wrong shape",
                      lambda o, p: o.update_hessian(g[:2] + [g[2].T, g[3]]), ValueError, ["estimates[2]"]))
    return cases


def assert_each_raises_and_changes_nothing(opt, params, cases):
    """Each (description, action(opt, params), exception, words) raises, says the words, and changes nothing."""
    for description, action, error, words in cases:
        groups = [dict(g) for g in opt.param_groups]
        before = snapshot(opt, params)
        with pytest.raises(error) as caught:
            action(opt, params)
        for word in words:
            assert word in str(caught.value), f"{description}: {word!r} not in {caught.value}"
        for group, saved in zip(opt.param_groups, groups):   # undo what the test (the "scheduler") wrote
            group.clear()
            group.update(saved)
        assert_unchanged(opt, params, before)


@pytest.mark.parametrize("kind", ["arrays", "flat"])
@pytest.mark.parametrize("name", NAMES)
def test_a_step_that_raises_changes_nothing(name, kind):
    """Every failing step leaves parameters, state and step counts exactly as they were; after the cause is
    removed, the run continues exactly as one that never failed."""
    rng = np.random.default_rng(5)
    init = [rng.standard_normal(s) for s in SHAPES]
    stream = gradient_stream(6, SHAPES, 4)
    params, clean = layout(kind, init), layout(kind, init)
    opt, reference = make(name, params), make(name, clean)
    for grads in stream[:2]:
        drive(opt, grads)
    for grads in stream[:2]:
        drive(reference, grads)
    assert_each_raises_and_changes_nothing(opt, params, failing_steps(name))
    for grads in stream[2:]:
        drive(opt, grads)
        drive(reference, grads)
    for p, q in zip(params, clean):
        assert np.array_equal(p, q)


@pytest.mark.parametrize("name", NAMES)
def test_a_none_gradient_skips_the_parameter_entirely(name):
    """As torch: no decay, no moment update, no step count for a parameter whose gradient is None."""
    rng = np.random.default_rng(7)
    for kind in ("arrays", "flat"):
        params = layout(kind, [rng.standard_normal(s) for s in SHAPES])
        opt = make(name, params)
        for grads in gradient_stream(8, SHAPES, 2):
            drive(opt, grads)
        before = opt.state_dict()["state"][2]
        theta = params[2].copy()
        grads = gradient_stream(9, SHAPES, 1)[0]
        grads[2] = None
        drive(opt, grads)
        assert np.array_equal(params[2], theta)
        assert_same(opt.state_dict()["state"][2], before)
        assert opt.state[3]["step"] == 3


# ----------------------------------------------------------------------------------------------------------------
# Vectorized sweeps: B runs as one optimizer over a (B, d) array


B, D = 5, 3


def sweep_hypers(name, rng, lr_only=False):
    """Per-run hyperparameters as (B, 1) arrays; returns (sweep kwargs, list of B per-run kwargs).
    With ``lr_only`` only the learning rate varies per run; the rest are the optimizer's test options."""
    lr = np.exp(rng.uniform(np.log(1e-3), np.log(1e-1), (B, 1)))
    arrays = {"lr": lr}
    if name in ("SGD", "RMSprop"):
        arrays["momentum"] = rng.uniform(0.1, 0.9, (B, 1))
        arrays["momentum"][1] = 0.0        # a run without momentum (SGD: no dampening factor then, as torch)
    if name == "RMSprop":
        arrays["alpha"] = rng.uniform(0.5, 0.99, (B, 1))
    if "betas" in OPTIONS[name]:
        arrays["betas"] = (rng.uniform(0.5, 0.95, (B, 1)), rng.uniform(0.95, 0.999, (B, 1)))
    if name not in ("SGD",):
        arrays["weight_decay"] = rng.uniform(0.0, 0.1, (B, 1))
    fixed = {k: v for k, v in OPTIONS[name].items() if k not in arrays}
    if name == "AdamW":
        fixed["weight_decay_scale"] = "lr"

    def row(i):
        out = {}
        for k, v in arrays.items():
            out[k] = tuple(float(b[i, 0]) for b in v) if isinstance(v, tuple) else float(v[i, 0])
        return {**fixed, **out}

    if lr_only:
        return {**OPTIONS[name], "lr": lr}, [{**OPTIONS[name], "lr": float(lr[i, 0])} for i in range(B)]
    return {**fixed, **arrays}, [row(i) for i in range(B)]


def run_sweep(name, sweep_kwargs, runs, grads, steps):
    """The sweep (one optimizer over a (B, D) array) and the B separate runs, from zeros-plus-one."""
    theta = np.ones((B, D))
    opt = getattr(ol, name)([theta], **sweep_kwargs)
    alone = [np.ones(D) for _ in range(B)]
    opts = [getattr(ol, name)([alone[i]], **runs[i]) for i in range(B)]
    for t in range(steps):
        drive_sweep(opt, [grads[t]], t)
        for i in range(B):
            drive_sweep(opts[i], [grads[t][i].copy()], t)
    return theta, alone


def drive_sweep(opt, grads, t):
    if isinstance(opt, ol.SophiaG):
        opt.step(grads, bs=8)
        if t % 2 == 1:
            opt.update_hessian([g * g for g in grads])
    else:
        opt.step(grads)


@pytest.mark.parametrize("what", ["lr", "all"])
@pytest.mark.parametrize("name", NAMES)
def test_a_sweep_is_exactly_its_separate_runs(name, what):
    """With (B, 1) arrays of lr (and betas, momentum, alpha, weight decay), each row of the sweep follows its own
    scalar run: bit for bit with an lr array. With other arrays too, up to 1e-15 relative: numpy's vectorized
    power (β**t in the bias corrections) may round differently from Python's scalar ** by one unit in the
    last place, and such rows then differ by a few 1e-16."""
    rng = np.random.default_rng(NAMES.index(name))
    sweep_kwargs, runs = sweep_hypers(name, rng, lr_only=what == "lr")
    steps = 30
    grads = [rng.standard_normal((B, D)) for _ in range(steps)]
    grads[3] = np.zeros((B, D))
    theta, alone = run_sweep(name, sweep_kwargs, runs, grads, steps)
    for i in range(B):
        if what == "lr":
            assert np.array_equal(theta[i], alone[i]), f"row {i} differs by {np.max(np.abs(theta[i] - alone[i]))}"
        else:   # parameters start at 1 and stay O(1): 1e-15 absolute is a few units in the last place
            np.testing.assert_allclose(theta[i], alone[i], rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("what", ["lr", "all"])
@pytest.mark.parametrize("bad", [np.inf, np.nan, 1e308])
@pytest.mark.parametrize("name", NAMES)
def test_a_diverging_row_leaves_every_other_row_untouched(name, bad, what):
    """An infinite, NaN or overflowing gradient in row 2 poisons row 2 only: every other row is bit for bit the
    row of the same sweep without the bad gradient, and (lr arrays) its own separate run."""
    rng = np.random.default_rng(20 + NAMES.index(name))
    sweep_kwargs, runs = sweep_hypers(name, rng, lr_only=what == "lr")
    steps = 12
    grads = [rng.standard_normal((B, D)) for _ in range(steps)]
    clean_theta, alone = run_sweep(name, sweep_kwargs, runs, grads, steps)
    poisoned = [g.copy() for g in grads]
    poisoned[4][2, 1] = bad
    poisoned[5][2] = bad
    theta = np.ones((B, D))
    opt = getattr(ol, name)([theta], **sweep_kwargs)
    with np.errstate(all="ignore"):
        for t in range(steps):
            drive_sweep(opt, [poisoned[t]], t)
    others = [i for i in range(B) if i != 2]
    assert np.array_equal(theta[others], clean_theta[others])
    if what == "lr":
        for i in others:
            assert np.array_equal(theta[i], alone[i])
    for key, value in opt.state[0].items():
        if isinstance(value, np.ndarray) and value.shape == theta.shape:
            clean_opt_rows = value[others]
            assert np.all(np.isfinite(clean_opt_rows)), key
    if bad != 1e308:   # row 2 is poisoned: its parameters or (Lion: sign(inf) is finite) its momentum
        state = [v[2] for v in opt.state[0].values() if isinstance(v, np.ndarray) and v.shape == theta.shape]
        assert not all(np.all(np.isfinite(a)) for a in [theta[2], *state])


@pytest.mark.parametrize("name", NAMES)
def test_a_large_sweep_takes_the_chunked_path_and_still_equals_its_runs(name):
    """B * d above the size where updates are split into chunks on threads: the array hyperparameters must be
    split with the arrays (rows checked against separate runs)."""
    b = 256
    d = THREAD_MIN // b + 3
    rng = np.random.default_rng(40 + NAMES.index(name))
    lr = np.exp(rng.uniform(np.log(1e-3), np.log(1e-1), (b, 1)))
    kwargs = dict(OPTIONS[name])
    if "betas" in kwargs:
        kwargs["betas"] = (rng.uniform(0.5, 0.95, (b, 1)), kwargs["betas"][1])
    theta = np.ones((b, d))
    opt = getattr(ol, name)([theta], **{**kwargs, "lr": lr})
    rows = [0, 1, 77, b - 1]
    alone = {i: np.ones(d) for i in rows}
    opts = {}
    for i in rows:
        row_kwargs = {**kwargs, "lr": float(lr[i, 0])}
        if "betas" in kwargs:
            row_kwargs["betas"] = (float(kwargs["betas"][0][i, 0]), kwargs["betas"][1])
        opts[i] = getattr(ol, name)([alone[i]], **row_kwargs)
    for t in range(3):
        g = rng.standard_normal((b, d))
        drive_sweep(opt, [g], t)
        for i in rows:
            drive_sweep(opts[i], [g[i].copy()], t)
    for i in rows:
        np.testing.assert_allclose(theta[i], alone[i], rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("how", list(ROUNDTRIPS))
@pytest.mark.parametrize("name", NAMES)
def test_a_sweeps_state_dict_resumes_bit_for_bit(name, how, tmp_path):
    """Array hyperparameters (and NAdam's per-run running product) survive a state dict round trip."""
    rng = np.random.default_rng(30 + NAMES.index(name))
    sweep_kwargs, _ = sweep_hypers(name, rng)
    grads = [rng.standard_normal((B, D)) for _ in range(10)]
    theta = np.ones((B, D))
    opt = getattr(ol, name)([theta], **sweep_kwargs)
    for t in range(5):
        drive_sweep(opt, [grads[t]], t)
    copy = theta.copy()
    fresh = getattr(ol, name)([copy])
    fresh.load_state_dict(ROUNDTRIPS[how](opt.state_dict(), tmp_path))
    for t in range(5, 10):
        drive_sweep(opt, [grads[t]], t)
        drive_sweep(fresh, [grads[t]], t)
    assert np.array_equal(theta, copy)
    assert_same(fresh.state_dict(), opt.state_dict())


def test_array_hyperparameters_changed_in_place_are_used_and_checked():
    """A vectorized schedule may write into a group's lr array in place: the next step uses the new values,
    and an invalid one (NaN) is refused like a reassigned one, changing nothing."""
    lr = np.array([[0.1], [0.2]])
    theta = np.zeros((2, 3))
    opt = ol.SGD([theta], lr=lr)
    opt.step([np.ones((2, 3))])
    lr *= 0.5                                   # in place: the group holds the very same array
    opt.step([np.ones((2, 3))])
    np.testing.assert_allclose(theta[:, 0], [-0.15, -0.3], rtol=1e-15)
    saved_theta, saved_state = theta.copy(), opt.state_dict()["state"]
    lr[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"param_groups\[0\]\['lr'\]"):
        opt.step([np.ones((2, 3))])
    assert np.array_equal(theta, saved_theta)
    assert_same(opt.state_dict()["state"], saved_state)
    lr[0, 0] = 0.0
    opt.step([np.ones((2, 3))])
    np.testing.assert_allclose(theta[:, 0], [-0.15, -0.4], rtol=1e-15)


# ----------------------------------------------------------------------------------------------------------------
# Options that differ from PyTorch


def test_adagrad_eps_inside_sqrt_is_the_keras_optax_form():
    """γ/√(G + ε) with G₀ = 0.1 and ε = 1e-7 (Keras' and optax's defaults), against the formula in numpy."""
    rng = np.random.default_rng(0)
    theta = rng.standard_normal((4, 3))
    expected = theta.copy()
    lr, eps, lr_decay = 0.1, 1e-7, 0.01
    opt = ol.Adagrad([theta], lr=lr, lr_decay=lr_decay, initial_accumulator_value=0.1, eps=eps,
                     eps_inside_sqrt=True)
    G = np.full_like(theta, 0.1)
    for t in range(1, 51):
        g = rng.standard_normal(theta.shape) if t != 5 else np.zeros(theta.shape)
        opt.step([g])
        G += g * g
        expected -= lr / (1 + (t - 1) * lr_decay) * g / np.sqrt(G + eps)
    np.testing.assert_allclose(theta, expected, rtol=1e-14)
    # and it is not torch's form: ε outside the root moves the iterate differently
    other = expected.copy()
    ol.Adagrad([other], lr=lr, eps=0.5).step([np.ones_like(other)])
    ours = expected.copy()
    ol.Adagrad([ours], lr=lr, eps=0.5, eps_inside_sqrt=True).step([np.ones_like(ours)])
    np.testing.assert_allclose(other, expected - lr / (1 + 0.5), rtol=1e-15)
    np.testing.assert_allclose(ours, expected - lr / math.sqrt(1.5), rtol=1e-15)


@pytest.mark.parametrize("centered", [False, True])
def test_rmsprop_eps_inside_sqrt_matches_the_formula(centered):
    """v ← αv + (1−α)g², θ ← θ − γ g/√(v + ε) (centered: √(v − ḡ² + ε)), the Keras/optax placement."""
    rng = np.random.default_rng(1)
    theta = rng.standard_normal(6)
    expected = theta.copy()
    lr, alpha, eps = 0.01, 0.9, 1e-7
    opt = ol.RMSprop([theta], lr=lr, alpha=alpha, eps=eps, centered=centered, eps_inside_sqrt=True)
    v = np.zeros(6)
    gbar = np.zeros(6)
    for _ in range(50):
        g = rng.standard_normal(6)
        opt.step([g])
        v = alpha * v + (1 - alpha) * g * g
        gbar = gbar + (1 - alpha) * (g - gbar)
        expected -= lr * g / np.sqrt((v - gbar * gbar if centered else v) + eps)
    np.testing.assert_allclose(theta, expected, rtol=1e-13)
    # the first step from zero gradients' history is γ/√(1−α) in size with either placement, ε aside
    one = np.zeros(1)
    ol.RMSprop([one], lr=lr, alpha=alpha, eps=0.0, eps_inside_sqrt=True).step([np.ones(1)])
    np.testing.assert_allclose(-one, lr / math.sqrt(1 - alpha), rtol=1e-15)


def test_adamw_schedule_scale_is_the_papers_update():
    """Loshchilov & Hutter: θ ← θ − η_t(α m̂/(√v̂ + ε) + λθ), η_t the schedule multiplier = lr/decay_base_lr.
    The decay follows η_t, not lr: halving lr mid-run halves the decay per step; α = the initial lr."""
    rng = np.random.default_rng(2)
    theta = rng.standard_normal(5)
    expected = theta.copy()
    alpha, lam, (b1, b2), eps = 1e-2, 0.1, (0.9, 0.999), 1e-8
    opt = ol.AdamW([theta], lr=alpha, betas=(b1, b2), eps=eps, weight_decay=lam, weight_decay_scale="schedule")
    m = np.zeros(5)
    v = np.zeros(5)
    for t in range(1, 61):
        eta = 1.0 if t <= 20 else 0.5 if t <= 40 else 0.1
        opt.param_groups[0]["lr"] = eta * alpha
        g = rng.standard_normal(5)
        opt.step([g])
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mhat, vhat = m / (1 - b1**t), v / (1 - b2**t)
        expected = expected - eta * (alpha * mhat / (np.sqrt(vhat) + eps) + lam * expected)
    np.testing.assert_allclose(theta, expected, rtol=1e-13)

    # torch's convention multiplies λ by lr instead: with λ_torch = λ_paper/α the two agree while lr = α ...
    a, b = np.ones(3), np.ones(3)
    paper = ol.AdamW([a], lr=alpha, weight_decay=lam, weight_decay_scale="schedule")
    torch_style = ol.AdamW([b], lr=alpha, weight_decay=lam / alpha)
    for _ in range(3):
        paper.step([np.zeros(3)])
        torch_style.step([np.zeros(3)])
    np.testing.assert_allclose(a, b, rtol=1e-15)
    np.testing.assert_allclose(a, (1 - lam) ** 3, rtol=1e-15)


def test_schedule_scale_needs_a_positive_base_lr():
    """η_t = lr/decay_base_lr is undefined for a zero initial rate: refused up front (not a ZeroDivisionError
    half-way through a step)."""
    with pytest.raises(ValueError, match="decay_base_lr"):
        ol.AdamW([np.ones(2)], lr=0.0, weight_decay_scale="schedule")
    with pytest.raises(ValueError, match="decay_base_lr"):
        ol.Lion([np.ones(2)], lr=0.0, weight_decay=0.1, weight_decay_scale="schedule")
    ol.AdamW([np.ones(2)], lr=0.0, weight_decay=0.0, weight_decay_scale="schedule")  # no decay: nothing to scale


def test_lion_moves_every_coordinate_by_exactly_lr():
    theta = np.zeros(4)
    opt = ol.Lion([theta], lr=0.1, betas=(0.9, 0.99))
    opt.step([np.array([3.0, -1e-8, 0.0, 1e6])])
    assert np.array_equal(theta, [-0.1, 0.1, 0.0, -0.1])


def test_sophia_steps_are_sign_steps_until_the_first_hessian_refresh():
    theta = np.zeros(3)
    opt = ol.SophiaG([theta], lr=0.1, weight_decay=0.0)
    opt.step([np.array([1e-6, -5.0, 0.0])], bs=100)
    assert np.array_equal(theta, [-0.1, 0.1, 0.0])
    opt.update_hessian([np.full(3, 1e6)])       # a large curvature makes the step |m|/(ρ·bs·h) < 1
    before = theta.copy()
    opt.step([np.array([1.0, 1.0, 1.0])], bs=100)
    # by hand: β₁ = 0.965, β₂ = 0.99, ρ = 0.04; m = β₁(1−β₁)g₁ + (1−β₁)g₂, h = (1−β₂)·1e6, step η·m/(ρ·bs·h)
    m = 0.965 * 0.035 * np.array([1e-6, -5.0, 0.0]) + 0.035 * 1.0
    expected = 0.1 * np.sign(m) * np.minimum(np.abs(m) / (0.04 * 100 * 0.01 * 1e6), 1.0)
    step = before - theta
    assert np.all(step != 0) and np.all(np.abs(step) < 0.1)
    np.testing.assert_allclose(step, expected, rtol=0, atol=3e-17)  # θ ≈ ±0.1: its ulp bounds the difference


def test_sgd_first_step_has_no_dampening_and_lr_stays_outside_the_buffer():
    theta = np.zeros(1)
    opt = ol.SGD([theta], lr=0.1, momentum=0.9, dampening=0.5)
    opt.step([np.ones(1)])
    assert theta[0] == -0.1                       # b₁ = g (no 1 − τ factor)
    opt.param_groups[0]["lr"] = 1.0                # the whole velocity is rescaled at once
    opt.step([np.ones(1)])
    np.testing.assert_allclose(theta, -0.1 - (0.9 * 1 + 0.5 * 1), rtol=1e-15)


def test_sgd_momentum_switched_off_mid_run_uses_the_plain_gradient():
    """As torch: momentum 0 means θ ← θ − γg (no dampening factor), the old buffer kept for later."""
    theta = np.zeros(1)
    opt = ol.SGD([theta], lr=1.0, momentum=0.9, dampening=0.5)
    opt.step([np.ones(1)])                         # b = 1, θ = −1
    opt.param_groups[0]["momentum"] = 0.0
    opt.step([np.ones(1)])                         # θ = −2
    assert theta[0] == -2.0
    opt.param_groups[0]["momentum"] = 0.9
    opt.step([np.ones(1)])                         # b = 0.9·1 + 0.5·1 (not a fresh buffer), θ = −3.4
    np.testing.assert_allclose(theta, -3.4, rtol=1e-15)


def test_params_may_be_float32_and_stay_float32():
    for name in NAMES:
        theta = np.ones((2, 3), dtype=np.float32)
        opt = make(name, [theta, np.ones(2, np.float32)], split=1)
        for _ in range(3):
            drive(opt, [np.full((2, 3), 0.5, np.float32), np.ones(2, np.float32)])
        assert theta.dtype == np.float32
        assert all(v.dtype == np.float32 for v in opt.state[0].values() if isinstance(v, np.ndarray))


def test_a_parameter_group_is_the_callers_own_dict_as_in_torch():
    group = {"params": [np.ones(3)], "lr": 0.1}
    opt = ol.SGD([group], momentum=0.9)
    assert opt.param_groups[0] is group and group["momentum"] == 0.9
    group["lr"] = 0.0   # a change on the caller's dict reaches the optimizer
    before = group["params"][0].copy()
    opt.step([np.ones(3)])
    np.testing.assert_array_equal(group["params"][0], before)


# ----------------------------------------------------------------------------------------------------------------
# Gaps that mutation testing found: each test below fails if the line it names is changed


@pytest.mark.parametrize("name", NAMES)
def test_bools_are_not_numbers_for_any_hyperparameter(name):
    cls = getattr(ol, name)
    numeric = [k for k, (default, _) in cls.hyper.items()
               if isinstance(default, (int, float)) and not isinstance(default, bool)]
    assert numeric
    for key in numeric:
        for flag in (True, np.bool_(False)):
            with pytest.raises(TypeError, match=rf"{key} must be a real number.*not a bool"):
                cls([np.zeros(2)], **{key: flag})
    if "betas" in cls.hyper:
        with pytest.raises(TypeError, match=r"betas\[1\] must be a real number.*not a bool"):
            cls([np.zeros(2)], betas=(0.9, True))


@pytest.mark.parametrize("value, error, pattern", [
    (10**400, ValueError, "lr must fit in a float64"), (float("inf"), ValueError, "lr must be finite"),
    (np.array(0.1), TypeError, "0-d array"), (1 + 0j, TypeError, "complex"),
    (np.longdouble("1e400"), ValueError, "fit in a float64"), (np.array([0.1, np.inf]), ValueError, "finite"),
])
def test_numbers_that_do_not_fit_a_float64_are_refused_by_name(value, error, pattern):
    with pytest.raises(error, match=pattern):
        ol.Adam([np.zeros(2)], lr=value)


def test_error_messages_state_the_range():
    cases = [(ol.Adam, {"betas": (1.0, 0.9)}, r"betas\[0\] must be in \[0, 1\), got \(1.0, 0.9\)"),
             (ol.Adam, {"betas": (0.9, -0.1)}, r"betas\[1\] must be in \[0, 1\)"),
             (ol.RMSprop, {"alpha": 1.5}, r"alpha must be in \[0, 1\], got 1.5"),
             (ol.SGD, {"lr": -1.0}, r"lr must be >= 0, got -1.0"),
             (ol.Adagrad, {"eps": -1e-10}, r"eps must be >= 0, got -1e-10"),
             (ol.SophiaG, {"rho": -0.5}, r"rho must be >= 0, got -0.5")]
    for cls, kwargs, pattern in cases:
        with pytest.raises(ValueError, match=pattern):
            cls([np.zeros(2)], **kwargs)


@pytest.mark.parametrize("name", ["SGD", "Adam", "NAdam", "Adagrad"])
def test_loading_a_flat_group_with_a_parameter_that_was_never_stepped(name):
    """A flat group whose second parameter never had a gradient: no saved state for it (Adagrad: step 0), so
    the loaded group must be split, and the resumed run continue exactly."""
    rng = np.random.default_rng(5)
    init = [rng.standard_normal(3), rng.standard_normal(4)]
    _, params = ol.as_flat(init)
    opt = getattr(ol, name)(params, lr=0.01)
    for _ in range(3):
        opt.step([rng.standard_normal(3), None])
    saved = opt.state_dict()
    assert saved["state"][0]["step"] == 3 and (1 not in saved["state"] or saved["state"][1]["step"] == 0)
    _, copies = ol.as_flat(params)
    fresh = getattr(ol, name)(copies, lr=0.01)
    fresh.load_state_dict(saved)
    for _ in range(3):
        grads = [rng.standard_normal(3), rng.standard_normal(4)]
        opt.step(grads)
        fresh.step(grads)
    for p, q in zip(params, copies):
        assert np.array_equal(p, q)
    assert_same(fresh.state_dict(), opt.state_dict())


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("name", NAMES)
def test_chunked_update_equals_the_whole_one_on_one_worker_and_on_two(name, workers, monkeypatch):
    """The chunked update forced on a small buffer (chunks of 7 elements) on one worker (the branch that runs
    the chunks in this thread) and on two: bit for bit the unchunked update."""
    import optimlab._base as base

    rng = np.random.default_rng(11)
    init = [rng.standard_normal(s) for s in SHAPES]
    stream = gradient_stream(3, SHAPES, 6)
    whole = [a.copy() for a in init]
    reference = make(name, whole)
    for grads in stream:
        drive(reference, grads)
    chunked = []
    original = ol.Optimizer._chunked

    def spy(self, unit, *args):
        chunked.append(unit.theta.size)
        return original(self, unit, *args)

    monkeypatch.setattr(base, "THREAD_MIN", 8)
    monkeypatch.setattr(base, "CHUNK", 7)
    monkeypatch.setattr(base, "_threads", lambda: workers)
    monkeypatch.setattr(ol.Optimizer, "_chunked", spy)
    parts = [a.copy() for a in init]
    opt = make(name, parts)
    for grads in stream:
        drive(opt, grads)
    assert chunked, "the chunked path did not run"
    for p, q in zip(parts, whole):
        assert np.array_equal(p, q)


def test_a_params_list_replaced_by_hand_is_the_one_updated_and_keeps_states_by_identity():
    a, b, c = np.ones(3), np.ones(2), np.ones(4)
    opt = ol.SGD([a, b], lr=0.1, momentum=0.9)
    opt.step([np.ones(3), np.ones(2)])
    opt.param_groups[0]["params"] = [c, a]            # b dropped, c new, a kept (with its buffer)
    opt.step([np.ones(4), np.ones(3)])
    np.testing.assert_allclose(a, 1 - 0.1 - 0.1 * 1.9, rtol=1e-15)   # m = 0.9·1 + 1
    np.testing.assert_allclose(c, 1 - 0.1, rtol=1e-15)               # a fresh buffer: m = g
    assert np.array_equal(b, np.full(2, 0.9))
    assert [e["step"] for e in opt.state.values()] == [1, 2]
    saved = {k: v.copy() for k, v in opt.state[1].items() if isinstance(v, np.ndarray)}
    for bad, error in [(None, TypeError), ([a, a], ValueError), ([np.ones(2, int)], TypeError), ([], ValueError)]:
        opt.param_groups[0]["params"] = bad
        with pytest.raises(error, match=r"param_groups\[0\]\['params'\]"):
            opt.step([np.ones(4), np.ones(3)])
        assert np.array_equal(opt.state[1]["momentum_buffer"], saved["momentum_buffer"])
    del opt.param_groups[0]["params"]
    with pytest.raises(ValueError, match=r"param_groups\[0\] has no 'params'"):
        opt.step([np.ones(4), np.ones(3)])
    opt.param_groups[0]["params"] = [c, a]
    del opt.param_groups[0]["momentum"]
    with pytest.raises(ValueError, match=r"param_groups\[0\]\['momentum'\] is missing"):
        opt.step([np.ones(4), np.ones(3)])
    opt.param_groups.append({"params": [np.ones(1)], **opt.defaults})
    with pytest.raises(ValueError, match="add_param_group"):
        opt.step([np.ones(4), np.ones(3)])
