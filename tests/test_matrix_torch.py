"""Reference tests of the matrix optimizers: Muon and Adafactor against torch.optim 2.13.0, Shampoo and SOAP
against pytorch-optimizer 4.1.0.

Each runs side by side with its reference from the same start on the same random gradients, with seeded random
hyperparameters, two parameter groups, several shapes and a learning rate cut mid-run, in float64, and must
agree to 1e-10 in the relative measure of tests/test_optimizers_torch.py (``Worst``). Three references are made
exact first, each by a patch that changes arithmetic precision only, never the algorithm:

* torch's Muon runs Newton–Schulz in bfloat16 (optimlab: in the parameter's dtype). The float64 test makes
  torch's ``Tensor.bfloat16`` the identity for the test; a second test runs torch unpatched and checks each
  step's update against bfloat16's rounding (see ``BF16_TOL``).
* pytorch-optimizer's SOAP does its QR in float32 (as the authors' code does); the test makes that float32 a
  float64.
* SOAP's eigenbases are only defined up to the order and sign of their vectors, and up to any rotation within a
  repeated eigenvalue. Signs cancel in the update (it rotates by Q and back by Qᵀ) and the order is by
  eigenvalue; but for an m×n gradient with m ≠ n, the first L = ggᵀ (or R) is singular, and its null space has a
  basis that each LAPACK picks its own way, which then changes the steps. The SOAP reference test therefore uses
  square parameters (their first L and R have distinct positive eigenvalues); tests/test_matrix.py checks
  rectangular ones against Adam (a one-dimensional null space) and shows how the steps depend on the null-space
  basis otherwise.
"""

import types

import numpy as np
import pytest

import optimlab as ol
from tests.reference import require
from tests.test_optimizers_torch import (  # noqa: F401  (fixtures: float64, and _report_worst prints the table)
    RTOL,
    Worst,
    _report_worst,
    float64,
    loguniform,
    random_grads,
    record,
    step_both,
    torch_params,
)

torch = require("torch")
pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("float64")]   # every test in float64
STEPS = 120


def run(opt, ref, ours, theirs, rng, *, steps=STEPS, none_rate=0.05, zero_rate=0.03):
    """Step both from the same gradients (random scales per parameter), cutting every lr by 0.3 half-way."""
    shapes = [a.shape for a in ours]
    scales = [loguniform(rng, 1e-2, 3.0) for _ in shapes]
    worst = Worst(len(ours))
    for t in range(steps):
        if t == steps // 2:
            for group, tgroup in zip(opt.param_groups, ref.param_groups):
                group["lr"] = tgroup["lr"] = tgroup["lr"] * 0.3
        grads = random_grads(rng, shapes, scales, np.float64, none_rate if t else 0.0, zero_rate)
        step_both(opt, ref, grads, theirs)
        worst.update(ours, theirs)
    return worst.value


def pair(ours_class, ref_class, shapes, split, defaults, second, rng, **ref_options):
    init = [rng.standard_normal(s) for s in shapes]
    ours = [a.copy() for a in init]
    theirs = torch_params(init)
    opt = ours_class([{"params": ours[:split]}, {"params": ours[split:], **second}], **defaults)
    ref = ref_class([{"params": theirs[:split]}, {"params": theirs[split:], **second}], **defaults, **ref_options)
    return opt, ref, ours, theirs


# ----------------------------------------------------------------------------------------------------------------
# Muon


MUON_SHAPES = [(4, 3), (3, 5), (6, 6), (2, 7)]


def muon_setting(rng):
    return {"lr": loguniform(rng, 1e-4, 5e-2),
            "weight_decay": 0.0 if rng.random() < 0.3 else loguniform(rng, 1e-4, 0.2),
            "momentum": float(rng.uniform(0.0, 0.99)), "nesterov": bool(rng.random() < 0.6),
            "adjust_lr_fn": [None, "original", "match_rms_adamw"][int(rng.integers(3))],
            "ns_steps": int(rng.integers(1, 8)), "eps": loguniform(rng, 1e-9, 1e-5)}


@pytest.mark.parametrize("k", range(10))
def test_muon_matches_torch_with_float64_newton_schulz(k, monkeypatch):
    monkeypatch.setattr(torch.Tensor, "bfloat16", lambda self: self.clone())
    rng = np.random.default_rng([80, k])
    defaults, second = muon_setting(rng), muon_setting(rng)
    opt, ref, ours, theirs = pair(ol.Muon, torch.optim.Muon, MUON_SHAPES, 2, defaults, second, rng)
    worst = run(opt, ref, ours, theirs, rng)
    record("Muon", "torch, NS in float64", worst)
    assert worst <= RTOL, f"{defaults} / {second}: worst relative difference {worst:.3g}"
    for i, p in enumerate(theirs):
        if p in ref.state:
            np.testing.assert_allclose(opt.state[i]["momentum_buffer"], ref.state[p]["momentum_buffer"].numpy(),
                                       rtol=1e-12, atol=1e-300)


def test_muon_groups_are_torchs_plus_stacked(monkeypatch):
    """optimlab's groups are torch's plus ``stacked`` (torch has no such option); a saved state whose groups are
    torch's (no ``stacked``) loads, keeps the loading group's ``stacked``, and the run goes on as torch's."""
    rng = np.random.default_rng(82)
    defaults, second = muon_setting(rng), muon_setting(rng)
    opt, ref, ours, theirs = pair(ol.Muon, torch.optim.Muon, MUON_SHAPES, 2, defaults, second, rng)
    monkeypatch.setattr(torch.Tensor, "bfloat16", lambda self: self.clone())
    run(opt, ref, ours, theirs, rng, steps=6, none_rate=0.0)
    saved, torchs = opt.state_dict(), ref.state_dict()["param_groups"]
    for group, tgroup in zip(saved["param_groups"], torchs):
        assert group.pop("stacked") is False
        assert group == tgroup
    copies = [a.copy() for a in ours]
    loaded = ol.Muon([{"params": copies[:2]}, {"params": copies[2:]}])
    loaded.load_state_dict({"state": saved["state"], "param_groups": torchs})
    assert [g["stacked"] for g in loaded.param_groups] == [False, False]
    assert run(loaded, ref, copies, theirs, rng, steps=6, none_rate=0.0) <= RTOL


# bfloat16 keeps 8 significant bits: each rounding is off by up to u = 2^-8 ≈ 3.9e-3 of the value. torch rounds
# the input and every matrix product of the iteration to bfloat16, and NS₅ does not damp these errors: after the
# Frobenius normalisation the small singular values of u sit where the quintic is steepest (slope a = 3.4445 per
# iteration, a^5 ≈ 490 after five), so a rounding along a weak direction comes out hundreds of times larger.
# Measured, as the Frobenius norm of the difference of the two updates over that of torch's (each step from the
# same state, 12 seeds x 30 steps x 4 shapes): at most 0.12. A wrong formula gives at least 0.45 (nesterov
# flipped 0.47, four iterations instead of five 0.45, the other lr adjustment 0.66). Bound: 0.2.
BF16_TOL = 0.2


@pytest.mark.parametrize("k", range(6))
def test_muon_matches_unpatched_torch_within_bfloat16_rounding(k):
    """Each step starts both from the same parameters and momentum (copied from torch), so rounding does not
    accumulate: ‖our update − torch's‖_F / ‖torch's update‖_F."""
    rng = np.random.default_rng([81, k])
    defaults = {**muon_setting(rng), "ns_steps": 5, "eps": 1e-7}
    opt, ref, ours, theirs = pair(ol.Muon, torch.optim.Muon, MUON_SHAPES, 2, defaults, {"lr": 0.01}, rng)
    worst = 0.0
    for _ in range(30):
        grads = [rng.standard_normal(s) for s in MUON_SHAPES]
        before = [p.detach().numpy().copy() for p in theirs]
        step_both(opt, ref, grads, theirs)
        for a, p, b in zip(ours, theirs, before):
            theirs_update = p.detach().numpy() - b
            worst = max(worst, float(np.linalg.norm((a - b) - theirs_update) / np.linalg.norm(theirs_update)))
            a[...] = p.detach().numpy()
        for i, p in enumerate(theirs):
            opt.state[i]["momentum_buffer"][...] = ref.state[p]["momentum_buffer"].numpy()
    record("Muon", "torch, NS in bfloat16", worst)
    assert worst <= BF16_TOL, f"{defaults}: worst update difference {worst:.3g}"


# ----------------------------------------------------------------------------------------------------------------
# Adafactor


ADAFACTOR_SHAPES = [(5,), (4, 3), (2, 3, 4), (1, 6)]


def adafactor_setting(rng):
    return {"lr": loguniform(rng, 1e-4, 0.5), "beta2_decay": -float(rng.uniform(0.1, 1.0)),
            "eps": (None if rng.random() < 0.5 else loguniform(rng, 1e-30, 1e-3), loguniform(rng, 1e-5, 1e-1)),
            "d": float(rng.uniform(1.0, 3.0)),
            "weight_decay": 0.0 if rng.random() < 0.4 else loguniform(rng, 1e-4, 0.2),
            "maximize": bool(rng.random() < 0.25)}


@pytest.mark.parametrize("k", range(12))
def test_adafactor_matches_torch(k):
    rng = np.random.default_rng([82, k])
    defaults, second = adafactor_setting(rng), adafactor_setting(rng)
    opt, ref, ours, theirs = pair(ol.Adafactor, torch.optim.Adafactor, ADAFACTOR_SHAPES, 2, defaults, second,
                                  rng, foreach=False)
    worst = run(opt, ref, ours, theirs, rng, steps=200)
    record("Adafactor", "torch", worst)
    assert worst <= RTOL, f"{defaults} / {second}: worst relative difference {worst:.3g}"
    for i, p in enumerate(theirs):
        for key, value in ref.state[p].items():
            if key != "step" and value is not None:
                np.testing.assert_allclose(opt.state[i][key], value.numpy(), rtol=1e-10, atol=1e-300)
        assert opt.state[i]["step"] == int(ref.state[p]["step"])


# ----------------------------------------------------------------------------------------------------------------
# Shampoo and SOAP against pytorch-optimizer


SHAMPOO_SHAPES = [(4, 3), (3, 5), (5, 5), (2, 6)]


@pytest.mark.parametrize("k", range(8))
def test_shampoo_matches_pytorch_optimizer(k):
    """pytorch-optimizer's Shampoo with momentum 0, roots every step, L2 decay is the paper's Algorithm 1:
    L₀ = εI, L ← L + ggᵀ, θ ← θ − η L^{-1/4} g R^{-1/4} (it takes the roots by SVD, optimlab by eigh).
    ε is kept >= 1e-3 here: an inverse fourth root of an eigenvalue ε amplifies the rounding of L (about 1e-16
    of its largest eigenvalue) by ε^{-5/4}, so a tiny ε makes any two correct implementations differ."""
    pytorch_optimizer = require("pytorch_optimizer")
    rng = np.random.default_rng([83, k])

    def setting():
        return {"lr": loguniform(rng, 1e-4, 0.1),
                "weight_decay": 0.0 if rng.random() < 0.4 else loguniform(rng, 1e-4, 0.1)}

    defaults, second = setting(), setting()
    defaults["eps"], second["eps"] = loguniform(rng, 1e-3, 1.0), loguniform(rng, 1e-3, 1.0)
    maximize = bool(k % 3 == 2)
    init = [rng.standard_normal(s) for s in SHAMPOO_SHAPES]
    ours, theirs = [a.copy() for a in init], torch_params(init)
    opt = ol.Shampoo([{"params": ours[:2]}, {"params": ours[2:], **second}], **defaults, maximize=maximize)
    rename = {"eps": "matrix_eps"}
    ref = pytorch_optimizer.Shampoo([{"params": theirs[:2]}, {"params": theirs[2:],
                                                               **{rename.get(a, a): v for a, v in second.items()}}],
                                    **{rename.get(a, a): v for a, v in defaults.items()}, maximize=maximize,
                                    momentum=0.0, preconditioning_compute_steps=1)
    worst = run(opt, ref, ours, theirs, rng)
    record("Shampoo", "pytorch-optimizer", worst)
    assert worst <= RTOL, f"{defaults} / {second}: worst relative difference {worst:.3g}"


SOAP_SHAPES = [(3, 3), (4, 4), (5, 5), (2, 2)]


class _Float64QR:
    """torch, except that its float32 is float64: pytorch-optimizer's SOAP casts to float32 for its QR only."""

    float32 = torch.float64

    def __getattr__(self, name):
        return getattr(torch, name)


@pytest.mark.parametrize("k", range(8))
def test_soap_matches_pytorch_optimizer(k, monkeypatch):
    """pytorch-optimizer's SOAP follows the paper's Algorithm 3 (m in the original coordinates, rotated each
    step) and the authors' code otherwise (step 1 only sets up the bases; power iteration with the eigenvalue
    sort). It counts steps per group, so no gradient is None here (optimlab counts per parameter)."""
    pytorch_optimizer = require("pytorch_optimizer")
    monkeypatch.setattr(pytorch_optimizer.optimizer.soap, "torch", _Float64QR())
    rng = np.random.default_rng([84, k])

    def setting():
        return {"lr": loguniform(rng, 1e-4, 3e-2),
                "betas": (float(rng.uniform(0.5, 0.99)), float(1 - loguniform(rng, 1e-3, 0.3))),
                "shampoo_beta": None if rng.random() < 0.5 else float(rng.uniform(0.5, 0.999)),
                "eps": loguniform(rng, 1e-10, 1e-4),
                "weight_decay": 0.0 if rng.random() < 0.3 else loguniform(rng, 1e-4, 0.1),
                "precondition_frequency": int(rng.integers(1, 6))}

    defaults, second = setting(), setting()
    maximize = bool(k % 3 == 2)
    init = [rng.standard_normal(s) for s in SOAP_SHAPES]
    ours, theirs = [a.copy() for a in init], torch_params(init)
    opt = ol.SOAP([{"params": ours[:2]}, {"params": ours[2:], **second}], **defaults, maximize=maximize)
    ref = pytorch_optimizer.SOAP([{"params": theirs[:2]}, {"params": theirs[2:], **second}], **defaults,
                                 maximize=maximize)
    worst = run(opt, ref, ours, theirs, rng, none_rate=0.0)
    record("SOAP", "pytorch-optimizer", worst)
    assert worst <= RTOL, f"{defaults} / {second}: worst relative difference {worst:.3g}"
    for i, p in enumerate(theirs):
        np.testing.assert_allclose(opt.state[i]["exp_avg"], ref.state[p]["exp_avg"].numpy(), rtol=1e-9, atol=1e-14)


def test_reference_patches_change_precision_only():
    """The float64 patch of pytorch-optimizer's SOAP reaches only dtype lookups (the module's torch)."""
    patched = _Float64QR()
    assert patched.float32 is torch.float64 and patched.linalg is torch.linalg
    assert isinstance(patched, object) and not isinstance(patched, types.ModuleType)
