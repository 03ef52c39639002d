"""Unit tests of the matrix optimizers (optimlab.matrix) that need no reference library: bad input is named and
changes nothing, state dicts resume bit for bit, float32 stays float32, Muon/Shampoo/SOAP take matrices only,
and what each rule promises on its own (Newton–Schulz orthogonalises, Shampoo's step is L^-1/4 g R^-1/4)."""

import re

import numpy as np
import pytest

import optimlab as ol
from tests.test_optimizers import ROUNDTRIPS, assert_same, assert_unchanged, snapshot

NAMES = ["Muon", "Adafactor", "Shampoo", "SOAP"]
OPTIONS = {
    "Muon": dict(lr=0.02, weight_decay=0.01, momentum=0.9),
    "Adafactor": dict(lr=0.05, weight_decay=0.01, d=2.0),
    "Shampoo": dict(lr=0.05, eps=1e-3, weight_decay=0.01, precondition_frequency=2),
    "SOAP": dict(lr=0.01, betas=(0.9, 0.95), weight_decay=0.01, precondition_frequency=2),
}
SECOND = {
    "Muon": dict(lr=0.01, nesterov=False, adjust_lr_fn="match_rms_adamw"),
    "Adafactor": dict(lr=0.02, maximize=True, eps=(1e-20, 1e-3)),
    "Shampoo": dict(lr=0.02, maximize=True),
    "SOAP": dict(lr=0.02, shampoo_beta=0.9, maximize=True),
}
SHAPES = {name: [(3, 4), (5, 2), (4, 4)] for name in NAMES}
SHAPES["Adafactor"] = [(3, 4), (5,), (2, 3, 2)]


def make(name, params, dtype=np.float64):
    return getattr(ol, name)([{"params": params[:1]}, {"params": params[1:], **SECOND[name]}], **OPTIONS[name])


def stream(seed, shapes, steps, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(steps)]


def fresh(name, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES[name]]


@pytest.mark.parametrize("how", list(ROUNDTRIPS))
@pytest.mark.parametrize("name", NAMES)
def test_state_dict_resumes_bit_for_bit(name, how, tmp_path):
    params = fresh(name)
    opt = make(name, params)
    grads = stream(1, SHAPES[name], 10)
    for g in grads[:5]:
        opt.step(g)
    copies = [p.copy() for p in params]
    other = make(name, copies)
    other.load_state_dict(ROUNDTRIPS[how](opt.state_dict(), tmp_path))
    for g in grads[5:]:
        opt.step(g)
        other.step(g)
    for p, q in zip(params, copies):
        assert np.array_equal(p, q)
    assert_same(other.state_dict(), opt.state_dict())


def test_state_arrays_have_the_shapes_of_their_matrices():
    m, n = 5, 3
    assert {k: v.shape for k, v in ol.SOAP([np.zeros((m, n))]).state[0].items() if k != "step"} == {
        "exp_avg": (m, n), "exp_avg_sq": (m, n), "L": (m, m), "R": (n, n), "Q_L": (m, m), "Q_R": (n, n)}
    assert {k: v.shape for k, v in ol.Shampoo([np.zeros((m, n))]).state[0].items() if k != "step"} == {
        "L": (m, m), "R": (n, n), "L_inv_root": (m, m), "R_inv_root": (n, n)}
    state = ol.Adafactor([np.zeros((2, m, n)), np.zeros(7)]).state
    assert {k: v.shape for k, v in state[0].items() if k != "step"} == {"row_var": (2, m, 1), "col_var": (2, 1, n)}
    assert {k: v.shape for k, v in state[1].items() if k != "step"} == {"variance": (7,)}


def test_a_state_dict_with_wrong_matrix_shapes_is_refused_and_changes_nothing():
    params = [np.ones((3, 4))]
    opt = ol.Shampoo(params, lr=0.1)
    opt.step([np.ones((3, 4))])
    sd = opt.state_dict()
    sd["state"][0]["L"] = np.zeros((4, 4))
    before = snapshot(opt, params)
    with pytest.raises(ValueError, match=r"\['L'\] has shape \(4, 4\), expected \(3, 3\)"):
        opt.load_state_dict(sd)
    assert_unchanged(opt, params, before)


@pytest.mark.parametrize("name", NAMES)
def test_float32_stays_float32(name):
    params = fresh(name, dtype=np.float32)
    opt = make(name, params)
    for g in stream(2, SHAPES[name], 6, np.float32):
        opt.step(g)
    assert all(p.dtype == np.float32 and np.all(np.isfinite(p)) for p in params)
    for entry in opt.state.values():
        for key, value in entry.items():
            if isinstance(value, np.ndarray):
                assert value.dtype == np.float32, key


# Muon, like torch.optim.Muon, takes matrices only unless stacked=True (see the stacked tests below).
@pytest.mark.parametrize(
    "name, shape",
    [("Muon", shape) for shape in [(3,), (2, 3, 4), (3, 3, 2, 2), ()]]
    + [(name, shape) for name in ("Shampoo", "SOAP") for shape in [(5,), (2, 3, 4), ()]],
)
def test_matrix_only_optimizers_refuse_other_shapes(name, shape):
    with pytest.raises(ValueError, match=re.escape(f"params[1] has shape {shape}: {name} updates 2-D matrices only")):
        getattr(ol, name)([np.zeros((2, 2)), np.zeros(shape)])
    opt = getattr(ol, name)([np.zeros((2, 2))])
    before = snapshot(opt, opt.param_groups[0]["params"])
    with pytest.raises(ValueError, match=re.escape(f"param_groups[1]['params'][0] has shape {shape}")):
        opt.add_param_group({"params": [np.zeros(shape)]})
    assert len(opt.param_groups) == 1
    assert_unchanged(opt, opt.param_groups[0]["params"], before)


@pytest.mark.parametrize("shape", [(3,), ()])
def test_stacked_muon_still_refuses_vectors_and_scalars(shape):
    with pytest.raises(ValueError, match=re.escape(f"params[1] has shape {shape}: Muon updates 2-D matrices only")):
        ol.Muon([np.zeros((2, 3, 4)), np.zeros(shape)], stacked=True)
    with pytest.raises(ValueError, match=re.escape(f"param_groups[1]['params'][0] has shape {shape}")):
        ol.Muon([{"params": [np.zeros((2, 2))]}, {"params": [np.zeros(shape)], "stacked": True}])


@pytest.mark.parametrize("value", [1, 0, "yes", None, np.array([True])])
def test_stacked_must_be_true_or_false(value):
    """Refused wherever it is given (the constructor, a group, a group changed by hand, a state dict), as a
    TypeError that names it and its value; a refused change changes nothing."""
    named = re.escape(f"stacked must be True or False, got {value!r}")
    with pytest.raises(TypeError, match=named):
        ol.Muon([np.zeros((2, 3))], stacked=value)
    params = [np.ones((2, 3))]
    opt = ol.Muon(params, lr=0.1)
    opt.step([np.ones((2, 3))])
    before = snapshot(opt, params)
    with pytest.raises(TypeError, match=re.escape("param_groups[1]['stacked'] must be True or False")):
        opt.add_param_group({"params": [np.zeros((3, 3))], "stacked": value})
    sd = opt.state_dict()
    sd["param_groups"][0]["stacked"] = value
    with pytest.raises(TypeError, match=re.escape("state_dict['param_groups'][0]['stacked'] must be True or False")):
        opt.load_state_dict(sd)
    assert len(opt.param_groups) == 1
    assert_unchanged(opt, params, before)
    opt.param_groups[0]["stacked"] = value
    with pytest.raises(TypeError, match=re.escape("param_groups[0]['stacked'] must be True or False")):
        opt.step([np.ones((2, 3))])
    assert np.array_equal(params[0], before[0][0])
    assert_same(opt.state_dict()["state"], before[1]["state"])


def test_stacked_is_kept_per_group_and_in_state_dicts():
    """stacked is a key of each group (torch's Muon has none): saved and restored; a saved group without it (as
    torch's are) keeps the loading optimizer's; a flat group cannot load stacks."""
    stack, matrix = np.ones((4, 2, 3)), np.ones((3, 3))
    opt = ol.Muon([{"params": [stack], "stacked": True}, {"params": [matrix]}], lr=0.1)
    assert [g["stacked"] for g in opt.param_groups] == [True, False]
    opt.step([np.ones((4, 2, 3)), np.ones((3, 3))])
    sd = opt.state_dict()
    assert [g["stacked"] for g in sd["param_groups"]] == [True, False]
    for g in sd["param_groups"]:
        del g["stacked"]
    other = ol.Muon([{"params": [stack.copy()], "stacked": True}, {"params": [matrix.copy()]}], lr=0.1)
    other.load_state_dict(sd)
    assert [g["stacked"] for g in other.param_groups] == [True, False]
    assert_same(other.state_dict(), opt.state_dict())
    sd = opt.state_dict()
    sd["param_groups"][0]["stacked"] = False
    before = snapshot(other, [g["params"][0] for g in other.param_groups])
    with pytest.raises(ValueError, match=re.escape("has shape (4, 2, 3): Muon updates 2-D matrices only")):
        other.load_state_dict(sd)
    assert_unchanged(other, [g["params"][0] for g in other.param_groups], before)
    assert "stacked: True" in repr(opt)


BAD = [
    ("Muon", dict(lr=-1.0), ValueError, ["lr", "-1.0"]),
    ("Muon", dict(momentum=1.5), ValueError, ["momentum", "1.5"]),
    ("Muon", dict(momentum=np.array([0.9])), ValueError, ["momentum", "cannot be an array"]),
    ("Muon", dict(ns_steps=100), ValueError, ["ns_steps", "100"]),
    ("Muon", dict(ns_steps=2.5), ValueError, ["ns_steps", "2.5"]),
    ("Muon", dict(ns_coefficients=(1.0, 2.0)), ValueError, ["ns_coefficients", "(1.0, 2.0)"]),
    ("Muon", dict(adjust_lr_fn="rms"), ValueError, ["adjust_lr_fn", "'rms'"]),
    ("Muon", dict(nesterov=1), ValueError, ["nesterov", "1"]),
    ("Muon", dict(eps=-1e-7), ValueError, ["eps", "-1e-07"]),
    ("Adafactor", dict(beta2_decay=0.5), ValueError, ["beta2_decay", "0.5"]),
    ("Adafactor", dict(d=0.5), ValueError, ["d", "0.5"]),
    ("Adafactor", dict(eps=(-1.0, 1e-3)), ValueError, ["eps", "-1.0"]),
    ("Adafactor", dict(eps=1e-3), ValueError, ["eps", "0.001"]),
    ("Adafactor", dict(weight_decay=float("nan")), ValueError, ["weight_decay", "nan"]),
    ("Shampoo", dict(eps=0.0), ValueError, ["eps", "0.0"]),
    ("Shampoo", dict(precondition_frequency=0), ValueError, ["precondition_frequency", "0"]),
    ("SOAP", dict(betas=(0.9, 1.0)), ValueError, ["betas", "1.0"]),
    ("SOAP", dict(betas=(np.array([0.9]), 0.9)), ValueError, ["betas"]),
    ("SOAP", dict(shampoo_beta=1.0), ValueError, ["shampoo_beta", "1.0"]),
    ("SOAP", dict(lr="fast"), TypeError, ["lr", "'fast'"]),
]


@pytest.mark.parametrize("name, kwargs, error, words", BAD, ids=[f"{n}-{sorted(k)[0]}" for n, k, _, _ in BAD])
def test_invalid_hyperparameters_are_named_with_their_value(name, kwargs, error, words):
    with pytest.raises(error) as info:
        getattr(ol, name)([np.zeros((2, 3))], **kwargs)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


@pytest.mark.parametrize("name", NAMES)
def test_a_step_that_raises_changes_nothing(name):
    """A bad gradient (shape, dtype, count) or a hyperparameter made invalid between steps: the step raises,
    naming it, and parameters and state are exactly as before."""
    params = fresh(name)
    opt = make(name, params)
    good = stream(3, SHAPES[name], 3)
    opt.step(good[0])
    before = snapshot(opt, params)
    wrong_shape = [g.copy() for g in good[1]]
    wrong_shape[1] = np.zeros((7, 7))
    wrong_dtype = [g.copy() for g in good[1]]
    wrong_dtype[2] = wrong_dtype[2].astype(np.float32)
    for grads, error, words in [(wrong_shape, ValueError, "grads[1] has shape (7, 7)"),
                                (wrong_dtype, TypeError, "grads[2] has dtype float32"),
                                (good[1][:2], ValueError, "expected 3, got 2")]:
        with pytest.raises(error, match=re.escape(words)):
            opt.step(grads)
        assert_unchanged(opt, params, before)
    opt.param_groups[1]["lr"] = -0.5
    with pytest.raises(ValueError, match=r"param_groups\[1\]\['lr'\].*-0.5"):
        opt.step(good[1])
    assert all(np.array_equal(p, q) for p, q in zip(params, before[0]))
    assert_same(opt.state_dict()["state"], before[1]["state"])


@pytest.mark.parametrize("name", NAMES)
def test_array_learning_rates_scale_the_update_elementwise(name):
    """lr and weight_decay may be arrays broadcasting against a parameter: each row moves as it does with its own
    scalar rate. Muon's, Shampoo's and SOAP's directions depend on the gradients only, so this holds at every
    step; Adafactor's step size depends on RMS(θ) over the whole matrix, so only for the first step."""
    shape = (3, 4)
    lrs, wds = np.array([[0.01], [0.02], [0.03]]), np.array([[0.0], [0.1], [0.01]])
    if name == "Shampoo":   # its weight decay is L2: λθ joins g in L and R, which then depend on θ (and η)
        wds = 0.0
    theta = np.random.default_rng(5).standard_normal(shape)
    runs = [theta.copy() for _ in range(3)]
    kwargs = {k: v for k, v in OPTIONS[name].items() if k not in ("lr", "weight_decay")}
    opt = getattr(ol, name)([theta], lr=lrs, weight_decay=wds, **kwargs)
    alone = [getattr(ol, name)([runs[i]], lr=float(lrs[i, 0]), weight_decay=float(np.ravel(wds)[i % np.size(wds)]),
                            **kwargs)
             for i in range(3)]
    for g in stream(6, [shape], 1 if name == "Adafactor" else 6):
        opt.step(g)
        for o in alone:
            o.step([g[0].copy()])
    for i in range(3):
        np.testing.assert_allclose(theta[i], runs[i][i], rtol=1e-13, atol=1e-15)
    assert not np.allclose(theta[0], runs[1][0])


@pytest.mark.parametrize("shape", [(3, 4), (5, 2), (4, 4)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_muon_on_a_stack_is_muon_on_each_matrix(shape, dtype):
    """With stacked=True, a (2, 3, m, n) parameter is six runs: each matrix moves as a 2-D Muon with its own η
    and λ moves it (own normalisation, η′ from (m, n)), over steps, with and without Nesterov, under both
    conventions."""
    rng = np.random.default_rng(12)
    lead = (2, 3)
    lrs = rng.uniform(0.005, 0.05, lead + (1, 1))
    wds = rng.uniform(0.0, 0.2, lead + (1, 1))
    for options in (dict(), dict(nesterov=False, adjust_lr_fn="match_rms_adamw", momentum=0.8)):
        theta = rng.standard_normal(lead + shape).astype(dtype)
        alone = [theta[i, j].copy() for i in range(2) for j in range(3)]
        opt = ol.Muon([theta], lr=lrs, weight_decay=wds, stacked=True, **options)
        opts = [ol.Muon([alone[3 * i + j]], lr=float(lrs[i, j, 0, 0]), weight_decay=float(wds[i, j, 0, 0]),
                        **options) for i in range(2) for j in range(3)]
        for _ in range(5):
            # gradients of very different sizes per run: each is normalised by its own norm
            g = (rng.standard_normal(lead + shape) * np.logspace(-3, 3, 6).reshape(lead + (1, 1))).astype(dtype)
            opt.step([g])
            for k, o in enumerate(opts):
                o.step([g[k // 3, k % 3].copy()])
        assert theta.dtype == dtype
        tolerance = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
        for k in range(6):
            np.testing.assert_allclose(theta[k // 3, k % 3], alone[k], **tolerance)
    X = rng.standard_normal((4,) + shape)
    np.testing.assert_allclose(ol.matrix.newton_schulz(X), [ol.matrix.newton_schulz(x) for x in X],
                               rtol=1e-12, atol=1e-14)


def test_newton_schulz_orthogonalises():
    """NS₅ maps the singular values of any full-rank matrix into about [0.7, 1.2] and keeps its singular
    vectors: the orientation (wide or tall) does not matter."""
    rng = np.random.default_rng(8)
    for shape in [(4, 9), (9, 4), (6, 6)]:
        x = rng.standard_normal(shape) @ np.diag(np.logspace(0, 2, shape[1]))
        O = ol.matrix.newton_schulz(x)
        s = np.linalg.svd(O, compute_uv=False)
        assert 0.6 < s.min() and s.max() < 1.25, s
        U, _, Vt = np.linalg.svd(x, full_matrices=False)
        np.testing.assert_allclose(U.T @ O @ Vt.T, np.diag(np.diag(U.T @ O @ Vt.T)), atol=1e-10)


def test_shampoo_first_step_is_the_inverse_fourth_roots_of_g():
    """Step 1: L = εI + ggᵀ, R = εI + gᵀg, θ₁ = θ₀ − η L^{-1/4} g R^{-1/4}; for ε → 0 that is η UVᵀ (g = USVᵀ)."""
    rng = np.random.default_rng(9)
    g = rng.standard_normal((4, 3))
    theta = np.zeros((4, 3))
    ol.Shampoo([theta], lr=1.0, eps=1e-12).step([g])
    U, _, Vt = np.linalg.svd(g, full_matrices=False)
    np.testing.assert_allclose(-theta, U @ Vt, atol=1e-5)


@pytest.mark.parametrize("shape", [(3, 3), (3, 2), (2, 3)])
def test_soap_with_identity_basis_is_adam(shape):
    """With precondition_frequency beyond the run and a diagonal first gradient, Q_L = Q_R = I (up to order and
    sign, which cancel): SOAP is then Adam (from step 2, with the bias corrections of step t − 1). For 3×2 (2×3)
    the first L (R) is singular, but its null space has one dimension, so the basis is still unique up to sign."""
    g0 = np.eye(*shape) * np.array([3.0, 2.0, 1.0])[:shape[1]]
    theta = np.zeros(shape)
    opt = ol.SOAP([theta], lr=0.1, betas=(0.9, 0.99), eps=0.0, weight_decay=0.0, precondition_frequency=1000)
    opt.step([g0])
    ref = np.zeros(shape)
    adam = ol.Adam([ref], lr=0.1, betas=(0.9, 0.99), eps=0.0)
    for g in stream(10, [shape], 5):
        opt.step(g)
        adam.step(g)
    np.testing.assert_allclose(theta, ref, rtol=1e-12, atol=1e-14)


def test_runs_and_sweeps_refuse_matrix_optimizers_that_would_mix_their_runs():
    """A batch of B runs is one (B, d) array to optimlab.experiments; a matrix rule would precondition across the
    runs. Adafactor on one starting point (a vector) is fine."""
    from optimlab import experiments as ex
    from optimlab.problems import Ravine

    with pytest.raises(ValueError, match=re.escape("'Adafactor' preconditions whole matrices")):
        ex.sweep(Ravine(condition_number=10.0), ol.Adafactor, lr=[0.01, 0.1], steps=5)
    with pytest.raises(ValueError, match=re.escape("'Muon' preconditions whole matrices")):
        ex.run(Ravine(condition_number=10.0), ol.Muon, x0=np.ones((3, 2)), steps=5)
    trajectory = ex.run(Ravine(condition_number=10.0), ol.Adafactor, lr=0.1, steps=20)
    assert trajectory.final_loss < trajectory.losses[0]


@pytest.mark.parametrize("name", NAMES)
def test_a_none_gradient_skips_the_parameter_entirely(name):
    """A parameter whose gradient is None at a step keeps its values and state, and its step count (SOAP's bias
    corrections count the parameter's own steps, as the authors' code does): afterwards it follows exactly an
    optimizer that never saw that step."""
    params = fresh(name)
    opt = make(name, params)
    alone = [p.copy() for p in params[1:2]]
    solo = getattr(ol, name)([{"params": [np.zeros((1, 1)) if name != "Adafactor" else np.zeros(1)]},
                              {"params": alone, **SECOND[name]}], **OPTIONS[name])
    for t, grads in enumerate(stream(11, SHAPES[name], 8)):
        if t in (2, 5):
            grads[1] = None
        opt.step(grads)
        if grads[1] is not None:
            solo.step([None, grads[1].copy()])
    assert np.array_equal(params[1], alone[0])
    assert opt.state[1]["step"] == 6



def _inverse_fourth_root(M):
    """M^(−1/4) of a symmetric positive definite M, by SVD (optimlab's Shampoo uses eigh)."""
    U, s, _ = np.linalg.svd(M)
    return (U * s ** -0.25) @ U.T


@pytest.mark.parametrize("k", range(4))
def test_shampoo_matches_the_papers_equations_with_roots_every_f_steps(k):
    """Gupta, Koren & Singer (2018), Algorithm 1, written out densely in float64: L₀ = εI_m, R₀ = εI_n,
    L_t = L_{t−1} + g_t g_tᵀ, R_t = R_{t−1} + g_tᵀ g_t, θ_t = θ_{t−1} − η L^{−1/4} g_t R^{−1/4}, with g_t the
    gradient plus λθ (L2) and negated under maximize, and the inverse roots taken afresh only on a parameter's
    own steps 1, 1 + f, 1 + 2f, ... (optimlab's precondition_frequency f) and reused in between. Several shapes, two
    groups, a learning-rate cut mid-run and skipped (None) gradients, 300 steps, to 1e-10 of each parameter."""
    rng = np.random.default_rng([13, k])
    shapes = [(4, 3), (3, 5), (5, 5), (2, 6), (1, 4)]

    def setting():
        return {"lr": float(10 ** rng.uniform(-3, -1)), "eps": float(10 ** rng.uniform(-3, 0)),
                "weight_decay": 0.0 if rng.random() < 0.4 else float(10 ** rng.uniform(-4, -1)),
                "precondition_frequency": int(rng.integers(1, 8))}

    groups = [setting(), {**setting(), "maximize": bool(k % 2)}]
    split = 2
    thetas = [rng.standard_normal(s) for s in shapes]
    ours = [a.copy() for a in thetas]
    opt = ol.Shampoo([{"params": ours[:split], **groups[0]}, {"params": ours[split:], **groups[1]}])
    h = [groups[0 if i < split else 1] for i in range(len(shapes))]
    L = [h[i]["eps"] * np.eye(m) for i, (m, n) in enumerate(shapes)]
    R = [h[i]["eps"] * np.eye(n) for i, (m, n) in enumerate(shapes)]
    roots, steps = [None] * len(shapes), [0] * len(shapes)
    lrs = [hi["lr"] for hi in h]
    for t in range(300):
        if t == 150:
            for group in opt.param_groups:
                group["lr"] *= 0.3
            lrs = [lr * 0.3 for lr in lrs]
        grads = [None if t and rng.random() < 0.05 else rng.standard_normal(s) * 0.5 for s in shapes]
        opt.step(grads)
        for i, g in enumerate(grads):
            if g is None:
                continue
            g = (-g if h[i].get("maximize") else g) + h[i]["weight_decay"] * thetas[i]
            L[i] += g @ g.T
            R[i] += g.T @ g
            if steps[i] % h[i]["precondition_frequency"] == 0:
                roots[i] = (_inverse_fourth_root(L[i]), _inverse_fourth_root(R[i]))
            steps[i] += 1
            thetas[i] = thetas[i] - lrs[i] * roots[i][0] @ g @ roots[i][1]
        for a, b in zip(ours, thetas):
            assert np.abs(a - b).max() <= 1e-10 * np.abs(b).max(), (t, groups)
    assert [opt.state[i]["step"] for i in range(len(shapes))] == steps


def _soap_after_one_step(g1, basis_change=None):
    """A SOAP (m > n: its first L = ggᵀ is singular) after its first step, which only sets up L, R and their
    eigenbases; ``basis_change(Q_L)`` may then replace Q_L by another eigenbasis of the same L."""
    theta = np.zeros(g1.shape)
    opt = ol.SOAP([theta], lr=0.01, betas=(0.9, 0.95), weight_decay=0.0, precondition_frequency=5)
    opt.step([g1])
    if basis_change is not None:
        Q = opt.state[0]["Q_L"]
        Q[...] = basis_change(Q.copy())
    return opt, theta


def test_soaps_update_on_a_rectangular_matrix_depends_on_the_null_space_basis():
    """For a 6×2 gradient, the first L (6×6) has rank 2: eigh picks a basis of its 4-dimensional null space, and any
    rotation of it is an eigenbasis too. Signs of the eigenvectors cancel (rotate by Q, back by Qᵀ); a rotation of
    the null space does not, since Adam's division by √v is coordinatewise: the next update changes, in the null
    space of the first L only (its component along the first gradient's columns is the same), and the runs stay
    apart after the bases are refreshed (the refresh is one power iteration from the basis in use)."""
    rng = np.random.default_rng(21)
    m, n = 6, 2
    grads = [rng.standard_normal((m, n)) for _ in range(40)]
    rotation = np.linalg.qr(rng.standard_normal((m - n, m - n)))[0]
    signs = np.where(rng.random(m) < 0.5, -1.0, 1.0)

    def rotate_null_space(Q):
        Q[:, n:] = Q[:, n:] @ rotation
        return Q

    opt, theta = _soap_after_one_step(grads[0])
    L, Q = opt.state[0]["L"], opt.state[0]["Q_L"]
    eigenvalues = np.diag(Q.T @ L @ Q)
    assert np.all(eigenvalues[n:] <= 1e-14 * eigenvalues[0])          # four zero eigenvalues, last
    alternatives = {"signs flipped": lambda Q: Q * signs, "null space rotated": rotate_null_space}
    runs = {"eigh's basis": (opt, theta)}
    for label, change in alternatives.items():
        other, other_theta = _soap_after_one_step(grads[0], change)
        Q2 = other.state[0]["Q_L"]
        np.testing.assert_allclose(Q2.T @ Q2, np.eye(m), atol=1e-14)
        np.testing.assert_allclose(L @ Q2, Q2 * eigenvalues, atol=1e-14 * eigenvalues[0])   # an eigenbasis of L
        runs[label] = (other, other_theta)
    for opt_, _ in runs.values():
        opt_.step([grads[1]])
    step = {label: theta_.copy() for label, (_, theta_) in runs.items()}   # each first update, from θ = 0
    base = step["eigh's basis"]
    np.testing.assert_allclose(step["signs flipped"], base, rtol=1e-12, atol=1e-15 * np.abs(base).max())
    difference = step["null space rotated"] - base
    assert np.linalg.norm(difference) > 0.1 * np.linalg.norm(base)
    range_of_L = np.linalg.svd(grads[0], full_matrices=False)[0]        # the columns of the first gradient
    assert np.linalg.norm(range_of_L.T @ difference) <= 1e-12 * np.linalg.norm(base)
    for g in grads[2:]:
        for opt_, _ in runs.values():
            opt_.step([g])
    final = {label: theta_ for label, (_, theta_) in runs.items()}
    np.testing.assert_allclose(final["signs flipped"], final["eigh's basis"], rtol=1e-9, atol=1e-12)
    assert np.linalg.norm(final["null space rotated"] - final["eigh's basis"]) > 1e-3 * np.linalg.norm(
        final["eigh's basis"])
