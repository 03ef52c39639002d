"""Training without a schedule and without a tuned learning rate: Schedule-Free SGD and AdamW, and Prodigy.

Notation as in :mod:`optimlab.optimizers`, plus Schedule-Free's three sequences: z (the base optimizer's iterate),
x (a weighted average of the z's: the point to evaluate) and y = (1−β)z + βx (the point where gradients are
taken); the parameter θ the model sees is y in train mode and x in eval mode. Prodigy's d is its running
estimate of the distance from the start to a solution, which sets the step size.

Names, defaults and the order of operations follow the authors' packages (``schedulefree`` 1.4.1 and
``prodigyopt`` 1.1.2), checked number for number in ``tests/test_schedule_free_torch.py``. Like the packages, the
counters and estimates that belong to a whole group (Schedule-Free's ``k``, ``weight_sum``, ``lr_max``,
``scheduled_lr``, ``train_mode``; Prodigy's ``d``, ``d_max``, ``d_numerator``, ...) live in the group's dict, so
``opt.param_groups[0]["d"]`` is where a log reads d, and :meth:`state_dict` saves them with the groups.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ._base import (
    INT_MAX,
    Optimizer,
    _is_array_hyper,
    betas_pair,
    boolean,
    describe,
    nonnegative,
    number_error,
    positive,
)
from .optimizers import ema_of_square

__all__ = ["SGDScheduleFree", "AdamWScheduleFree", "Prodigy"]


class _ScheduleFree(Optimizer):
    """What Schedule-Free SGD and AdamW share: the averaging weights, the counters of each group, train/eval.

    Per group and step (k counts the group's steps, 1 on the first, whichever parameters had a gradient):
    γ_k = η·min(1, k/warmup_steps); γ_max = max of the γ so far; w_k = k^r · γ_max^weight_lr_power;
    c_k = w_k / Σ_{i≤k} w_i (1 on the first step: x₁ = z₁).
    """

    GROUP_STATE = {"k": 0, "train_mode": False, "weight_sum": 0.0, "lr_max": -1.0, "scheduled_lr": 0.0}

    def _momentum(self, group):  # pragma: no cover - each variant says where β is
        raise NotImplementedError

    def _prepare_group(self, group):
        # a group added later takes the optimizer's mode (the package leaves it in eval mode: see the tests)
        mode = self.param_groups[0]["train_mode"] if self.param_groups else False
        for key, value in {**self.GROUP_STATE, "train_mode": mode}.items():
            group.setdefault(key, value)

    def state_arrays(self, group):
        return ["z"]

    @property
    def training(self) -> bool:
        """True in train mode (the parameters hold y), False in eval mode (they hold x)."""
        return bool(self.param_groups[0]["train_mode"])

    def train(self):
        """Train mode: the parameters move to y = βx + (1−β)z, where gradients are taken. Idempotent."""
        self._switch(True)
        return self

    def eval(self):
        """Eval mode: the parameters move to x = (y − (1−β)z)/β, the average to evaluate and save. Idempotent."""
        self._switch(False)
        return self

    def _switch(self, train):
        self._revalidate()
        self._check_counters()
        if self.training == train:
            return

        def move(unit, g, group):
            # θ ← θ + w(z − θ): to y with w = 1 − β, to x with w = 1 − 1/β (before any step there is no z)
            if unit.state["step"] > 0:
                beta = self._momentum(group)
                w = 1 - beta if train else 1 - 1 / beta
                unit.theta += np.multiply(np.subtract(unit.state["z"], unit.theta), w)

        self._each(move)
        for group in self.param_groups:
            group["train_mode"] = train

    def step(self, grads):
        """One update from ``grads``, in train mode only (call :meth:`train` first, as with the package)."""
        self._revalidate(grads)   # the gradients and any group changed by hand, checked before anything changes
        self._check_counters()
        if not self.training:
            raise RuntimeError(f"{type(self).__name__}.step() needs train mode: call opt.train() before training "
                               f"(the parameters then hold y) and opt.eval() before evaluating or saving")
        for group in self.param_groups:
            k = group["k"] + 1
            warmup = group["warmup_steps"]
            group["scheduled_lr"] = group["lr"] * np.where(k <= warmup, k / np.maximum(warmup, 1), 1.0)[()]
            group["lr_max"] = np.maximum(group["scheduled_lr"], group["lr_max"])[()]
            group["weight_sum"] = group["weight_sum"] + _weight(group, k)
            group["k"] = k
        self._step(grads)

    def _begin_step(self, state, group, t):
        state["_lr"] = group["scheduled_lr"]
        state["_c"] = _ratio(_weight(group, group["k"]), group["weight_sum"])
        state["_k"] = group["k"]

    def _check_group(self, group, prefix):
        _check_warmup(group, prefix)
        if not _has_counters(self, group, prefix, self.GROUP_STATE):
            return  # a group being added: its counters are set next
        _check_count(group, prefix)
        if not isinstance(group["train_mode"], (bool, np.bool_)):
            raise ValueError(f"{prefix.format('train_mode')} must be True or False, got {group['train_mode']!r}")
        for key in ("weight_sum", "lr_max", "scheduled_lr"):
            # (inf is what the package computes after an lr of 1e308: a state it writes must load again)
            error = number_error(prefix.format(key), group[key], numpy_ints=True, finite=False)
            if error is not None:
                raise error

    def _check_counters(self):
        _check_counters(self)

    def load_state_dict(self, state_dict):
        """As :meth:`Optimizer.load_state_dict`; the saved groups carry their counters and the mode."""
        groups = _saved_groups(state_dict, self.GROUP_STATE)
        if len({bool(g["train_mode"]) for g in groups}) > 1:
            raise ValueError("state_dict['param_groups'] mix train and eval mode ('train_mode'): the "
                             "optimizer is in one mode")
        super().load_state_dict(state_dict)


def _saved_groups(state_dict, keys):
    """The groups of a state dict, checked to carry the counters ``keys`` of every group (none if malformed:
    :meth:`Optimizer.load_state_dict` then says what is wrong)."""
    groups = state_dict.get("param_groups") if isinstance(state_dict, dict) else None
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        return []
    for gi, group in enumerate(groups):
        missing = sorted(set(keys) - set(group))
        if missing:
            raise ValueError(f"state_dict['param_groups'][{gi}] lacks {missing}: is it from another optimizer?")
    return groups


def _check_counters(self):
    """The counters of every group, checked (they are not hyperparameters: a step re-checks them each time)."""
    for gi, group in enumerate(self.param_groups):
        if type(group) is dict:
            self._check_group(group, f"param_groups[{gi}]['{{}}']")


def _has_counters(opt, group, prefix, keys) -> bool:
    """Whether ``group`` carries the counters ``keys``: a group of ``opt`` must keep all of them (a named error
    for one deleted by hand); a group being added has none yet."""
    missing = [key for key in keys if key not in group]
    if missing and (len(missing) < len(keys) or any(group is g for g in getattr(opt, "param_groups", ()))):
        raise ValueError(f"{prefix.format(missing[0])} is missing: the group's counters {list(keys)} are "
                         f"{type(opt).__name__}'s state (was it deleted?)")
    return not missing


def _check_count(group, prefix):
    k = group["k"]
    if not isinstance(k, numbers.Integral) or isinstance(k, (bool, np.bool_)) or not 0 <= k <= INT_MAX:
        raise ValueError(f"{prefix.format('k')} must be an integer in [0, 2^53], got {describe(k)}")


def _weight(group, k):
    """w_k = k^r · γ_max^p, the weight of step k in the average x."""
    # (k as a float64: a Python int to an integer power r is computed exactly, without bound)
    return np.float64(k) ** group["r"] * group["lr_max"] ** group["weight_lr_power"]


def _ratio(w, total):
    """c = w / Σw, and 0 while the sum is 0 (a learning rate of 0 with weight_lr_power > 0)."""
    if isinstance(total, np.ndarray) or isinstance(w, np.ndarray):
        w, total = np.broadcast_arrays(np.asarray(w, dtype=np.float64), np.asarray(total, dtype=np.float64))
        return np.divide(w, total, out=np.zeros(w.shape), where=total != 0)
    return w / total if total != 0 else 0.0


def _check_warmup(group, prefix):
    steps = np.asarray(group["warmup_steps"], dtype=np.float64)
    if not np.all(np.isfinite(steps) & (steps == np.floor(steps)) & (steps <= INT_MAX)):
        raise ValueError(f"{prefix.format('warmup_steps')} must be a whole number of steps, at most 2^53, "
                         f"got {group['warmup_steps']!r}")


class SGDScheduleFree(_ScheduleFree):
    r"""Schedule-Free SGD: no schedule, the average of the iterates instead (Defazio et al. 2024).

    .. math::
        z_{k} = z_{k-1} - \gamma_k g_k, \qquad x_k = (1-c_k)\, x_{k-1} + c_k z_k, \qquad
        y_k = \beta x_k + (1-\beta) z_k,

    with the gradient g_k taken at y_{k−1} (the parameter in train mode), z₀ = x₀ = y₀ = θ₀, and γ_k, c_k as in
    the class docstring above (warm-up and weights). The rule keeps y and z only (x = (y − (1−β)z)/β), and moves
    y in closed form: y ← y + c(z − y) + γ(β(1−c) − 1)g, then z ← z − γg. β is ``momentum`` in (0, 1);
    ``weight_decay`` λ adds λy to g (at y, where the gradient is). Call :meth:`train` before training and
    :meth:`eval` before evaluating or saving: the parameters hold y in train mode and x in eval mode.

    Arguments (the ``schedulefree`` package's): ``lr`` η (1.0), ``momentum`` β (0.9), ``weight_decay`` λ (0),
    ``warmup_steps`` (0: a linear warm-up of γ over that many steps), ``r`` (0: the power of k in the weights),
    ``weight_lr_power`` (2: the power of γ_max in the weights); ``maximize`` as in torch.

    Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky (2024), "The road less scheduled", NeurIPS.
    """

    hyper = {
        "lr": (1.0, nonnegative),
        "momentum": (0.9, positive),      # and < 1: _check_group
        "weight_decay": (0.0, nonnegative),
        "warmup_steps": (0, nonnegative),
        "r": (0.0, nonnegative),
        "weight_lr_power": (2.0, nonnegative),
        "maximize": (False, boolean),
    }

    def __init__(self, params, lr=1.0, momentum=0.9, weight_decay=0.0, warmup_steps=0, r=0.0, weight_lr_power=2.0,
                 *, maximize=False):
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay, warmup_steps=warmup_steps,
                         r=r, weight_lr_power=weight_lr_power, maximize=maximize)

    def _momentum(self, group):
        return group["momentum"]

    def _check_group(self, group, prefix):
        if not np.all(np.asarray(group["momentum"], dtype=np.float64) < 1):
            raise ValueError(f"{prefix.format('momentum')} must be in (0, 1), got {group['momentum']!r}")
        super()._check_group(group, prefix)

    @staticmethod
    def rule(theta, g, s, tmp, t, h):
        if t == 1:
            s["z"][...] = theta                           # z₀ = θ₀
        average_step(theta, s["z"], g, s["_c"], s["_lr"], h["momentum"], tmp[0])


class AdamWScheduleFree(_ScheduleFree):
    r"""Schedule-Free AdamW: Schedule-Free SGD on Adam's normalised gradient (Defazio et al. 2024).

    .. math::
        v_k = \beta_2 v_{k-1} + (1-\beta_2) g_k^2, \qquad
        \hat g_k = \frac{g_k}{\sqrt{v_k/(1-\beta_2^k)} + \epsilon} + \lambda y_{k-1}, \\
        z_k = z_{k-1} - \gamma_k \hat g_k, \qquad x_k = (1-c_k)\, x_{k-1} + c_k z_k, \qquad
        y_k = \beta_1 x_k + (1-\beta_1) z_k

    There is no first moment: β₁ is the interpolation between x and z that Schedule-Free uses in place of momentum
    (so β₁ must be in (0, 1)). The weight decay is applied at y to the normalised gradient. k is the group's
    step count, as in the package: a parameter's first gradient arriving at a later step is bias-corrected with
    that k. Call :meth:`train` before training and :meth:`eval` before evaluating or saving.

    Arguments (the ``schedulefree`` package's): ``lr`` η (0.0025), ``betas`` (β₁, β₂) ((0.9, 0.999)), ``eps`` ε
    (1e-8), ``weight_decay`` λ (0), ``warmup_steps`` (0), ``r`` (0), ``weight_lr_power`` (2); ``maximize``.

    Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky (2024), "The road less scheduled", NeurIPS.
    """

    hyper = {
        "lr": (2.5e-3, nonnegative),
        "betas": ((0.9, 0.999), betas_pair),
        "eps": (1e-8, nonnegative),
        "weight_decay": (0.0, nonnegative),
        "warmup_steps": (0, nonnegative),
        "r": (0.0, nonnegative),
        "weight_lr_power": (2.0, nonnegative),
        "maximize": (False, boolean),
    }
    decay = None  # at y, on the normalised gradient: in the rule

    def __init__(self, params, lr=2.5e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, warmup_steps=0, r=0.0,
                 weight_lr_power=2.0, *, maximize=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, warmup_steps=warmup_steps,
                         r=r, weight_lr_power=weight_lr_power, maximize=maximize)

    def state_arrays(self, group):
        return ["z", "exp_avg_sq"]

    def _momentum(self, group):
        return group["betas"][0]

    def _check_group(self, group, prefix):
        if not np.all(np.asarray(group["betas"][0], dtype=np.float64) > 0):
            raise ValueError(f"{prefix.format('betas')}[0] must be in (0, 1): x is recovered from y and z by "
                             f"dividing by beta1, got {group['betas'][0]!r}")
        super()._check_group(group, prefix)

    @staticmethod
    def rule(theta, g, s, tmp, t, h):
        y, v, d = theta, s["exp_avg_sq"], tmp[0]
        (beta1, beta2), k = h["betas"], s["_k"]
        if t == 1:
            s["z"][...] = y                               # z₀ = θ₀
        ema_of_square(v, g, beta2, d)                     # v ← β₂v + (1−β₂)g²
        # ĝ = g / (√(v/(1−β₂ᵏ)) + ε) + λy
        np.sqrt(np.divide(v, 1 - beta2**k, out=d), out=d)
        d += h["eps"]
        ghat = np.divide(g, d, out=d)
        if np.any(h["weight_decay"]):
            ghat += np.multiply(y, h["weight_decay"], out=tmp[1])
        average_step(y, s["z"], ghat, s["_c"], s["_lr"], beta1, tmp[1])


def average_step(y, z, g, c, lr, beta, tmp):
    """Schedule-Free's step from the gradient g taken at y, in place, with x
    implicit (x = (y − (1−β)z)/β): z ← z − γg, x ← (1−c)x + cz, y ← βx + (1−β)z,
    that is y ← y + c(z − y) + γ(β(1−c) − 1)g, then z ← z − γg."""
    # y ← y + c(z − y)
    y += np.multiply(np.subtract(z, y, out=tmp), c, out=tmp)
    # y ← y + γ(β(1−c) − 1)g
    y += np.multiply(g, lr * (beta * (1 - c) - 1), out=tmp)
    # z ← z − γg
    z -= np.multiply(g, lr, out=tmp)


# ----------------------------------------------------------------------------------------------------------------
# Prodigy


def beta3_check(x):
    if x is None:
        return None
    if number_error("beta3", x, array=False) or betas_pair((x, 0.0)):
        return "must be None or a real number in [0, 1)"
    return None


def slice_check(x):
    ok = isinstance(x, numbers.Integral) and not isinstance(x, bool) and x >= 1
    return None if ok else "must be an integer >= 1"


def single_process(x):
    if boolean(x):
        return boolean(x)
    return None if not x else "must be False: optimlab runs in one process (no sharded parameters)"


class Prodigy(Optimizer):
    r"""Prodigy: Adam whose step size d·η is learned, from an estimate d of the distance to the solution
    (Mishchenko & Defazio 2024).

    With θ₀ the parameters at the start, each step first updates, over every parameter of every group,

    .. math::
        m_k = \beta_1 m_{k-1} + d_k(1-\beta_1) g_k, \qquad v_k = \beta_2 v_{k-1} + d_k^2(1-\beta_2) g_k^2, \\
        r_k = \beta_3 r_{k-1} + \tfrac{d_k}{d_0}\,\eta_k d_k \langle g_k, \theta_0 - \theta_k\rangle, \qquad
        s_k = \beta_3 s_{k-1} + \tfrac{d_k}{d_0}\,\eta_k d_k\, g_k, \qquad
        \hat d = d_{\text{coef}}\,\frac{r_k}{\lVert s_k \rVert_1},

    then d_{k+1} = min(max(d_k, d̂), d_k·growth_rate) (the first growth is not limited), and steps with the
    d_k of before: θ ← θ − η_k d_k m_k/(√v_k + d_{k+1}ε), with η_k = η√(1−β₂^k)/(1−β₁^k) when
    ``use_bias_correction`` and η otherwise. d only grows: its estimate r/‖s‖₁ is a lower bound on the distance
    from θ₀ to the solution. β₁ = 0 steps with d_{k+1} g in place of m.

    Arguments (``prodigyopt``'s): ``lr`` η (1.0: a multiplier of the learned step, leave it at 1), ``betas``
    ((0.9, 0.999)), ``beta3`` (None: √β₂), ``eps`` (1e-8), ``weight_decay`` λ (0), ``decouple`` (True:
    θ ← θ(1 − λη_k d_k) as AdamW; False: g ← g + λθ), ``use_bias_correction`` (False), ``safeguard_warmup``
    (False: True uses d_k in place of η_k d_k in s, so that a warm-up of η does not inflate d), ``d0`` (1e-6,
    the first d), ``d_coef`` (1.0), ``growth_rate`` (inf), ``fsdp_in_use`` (False only: one process),
    ``slice_p`` (1: r and s from every slice_p-th element of each parameter, to save memory in the package);
    ``maximize``. d is one number for all parameters, so the hyperparameters are numbers (no sweep arrays), and
    the ones the package reads from the first group only (betas, beta3, d0, d_coef, growth_rate, decouple,
    use_bias_correction) must be the same in every group; a group's ``lr`` is the others' or 0 (a group with
    lr 0 adds nothing to d and its m, v stay as they are, but it still steps with them, as in the package).

    Mishchenko & Defazio (2024), "Prodigy: an expeditiously adaptive parameter-free learner", ICML.
    """

    hyper = {
        "lr": (1.0, nonnegative),
        "betas": ((0.9, 0.999), betas_pair),
        "beta3": (None, beta3_check),
        "eps": (1e-8, positive),
        "weight_decay": (0.0, nonnegative),
        "decouple": (True, boolean),
        "use_bias_correction": (False, boolean),
        "safeguard_warmup": (False, boolean),
        "d0": (1e-6, positive),
        "d_coef": (1.0, positive),
        "growth_rate": (math.inf, positive),
        "fsdp_in_use": (False, single_process),
        "slice_p": (1, slice_check),
        "maximize": (False, boolean),
    }
    decay = "decouple"
    couples_rows = True  # d sums over every element: optimlab.experiments.sweep runs each row on its own
    SHARED = ("betas", "beta3", "d0", "d_coef", "growth_rate", "decouple", "use_bias_correction")
    GROUP_STATE = ("d", "d_max", "d_numerator", "d_denom", "d_hat", "k")

    def __init__(self, params, lr=1.0, betas=(0.9, 0.999), beta3=None, eps=1e-8, weight_decay=0.0, decouple=True,
                 use_bias_correction=False, safeguard_warmup=False, d0=1e-6, d_coef=1.0, growth_rate=math.inf,
                 fsdp_in_use=False, slice_p=1, *, maximize=False):
        super().__init__(params, lr=lr, betas=betas, beta3=beta3, eps=eps, weight_decay=weight_decay,
                         decouple=decouple, use_bias_correction=use_bias_correction,
                         safeguard_warmup=safeguard_warmup, d0=d0, d_coef=d_coef, growth_rate=growth_rate,
                         fsdp_in_use=fsdp_in_use, slice_p=slice_p, maximize=maximize)
        self._check_shared()

    def state_arrays(self, group):
        return (["exp_avg"] if group["betas"][0] > 0 else []) + ["exp_avg_sq", "s", "p0"]

    def _prepare_group(self, group):
        first = self.param_groups[0] if self.param_groups else {"d": group["d0"], "d_max": group["d0"]}
        for key in self.GROUP_STATE:
            group.setdefault(key, first.get(key, 0))

    def _check_group(self, group, prefix):
        for key in self.hyper:
            value = group[key]
            if _is_array_hyper(value) or (key == "betas" and any(_is_array_hyper(b) for b in value)):
                raise TypeError(f"{prefix.format(key)} must be a number for Prodigy, got an array: d is one "
                                f"number shared by every parameter, so runs cannot be swept as array rows")
        if not _has_counters(self, group, prefix, self.GROUP_STATE):
            return  # a group being added: its counters are set next
        for key in self.GROUP_STATE:
            error = (number_error(prefix.format(key), group[key], array=False, numpy_ints=True, finite=False)
                     if key in group else None)
            if error is not None:
                raise error
        if "k" in group:
            _check_count(group, prefix)

    def _check_shared(self):
        first = self.param_groups[0]
        lr = max(g["lr"] for g in self.param_groups)
        for gi, group in enumerate(self.param_groups[1:], 1):
            for key in self.SHARED:
                if group[key] != first[key]:
                    raise ValueError(f"param_groups[{gi}]['{key}'] must equal param_groups[0]['{key}'] for "
                                     f"Prodigy (one d for every group), got {group[key]!r} and {first[key]!r}")
        for gi, group in enumerate(self.param_groups):
            if group["lr"] not in (lr, 0):
                raise ValueError(f"param_groups[{gi}]['lr'] must be the largest lr ({lr!r}) or 0 for Prodigy "
                                 f"(the step is d times one lr), got {group['lr']!r}")

    def _check_counters(self):
        _check_counters(self)

    def load_state_dict(self, state_dict):
        """As :meth:`Optimizer.load_state_dict`; the saved groups carry d and its companions."""
        _saved_groups(state_dict, self.GROUP_STATE)
        super().load_state_dict(state_dict)

    def _decay_lr(self, h):
        return h["dlr"]                                   # θ ← θ(1 − λη_k d)

    def step(self, grads):
        """One Prodigy update: first d, from every parameter of every group; then each parameter's step."""
        self._revalidate(grads)   # the gradients and any group changed by hand, checked before anything changes
        self._check_counters()
        self._check_shared()
        first = self.param_groups[0]
        beta1, beta2 = first["betas"]
        beta3 = math.sqrt(beta2) if first["beta3"] is None else first["beta3"]
        lr, d, k = max(g["lr"] for g in self.param_groups), first["d"], first["k"] + 1
        dlr = d * lr * ((1 - beta2**k) ** 0.5 / (1 - beta1**k) if first["use_bias_correction"] else 1)

        def estimate(unit, g, group):
            """m, v and s updated; returns this unit's part of the numerator r and of ‖s‖₁."""
            theta, st, d0 = unit.theta, unit.state, group["d0"]
            if st["step"] == 0:
                st["p0"][...] = theta                                # θ₀, even in a group with lr 0
            if group["lr"] == 0:
                return 0.0, 0.0
            if group["maximize"]:
                g = -g
            if group["weight_decay"] != 0 and not group["decouple"]:
                g = g + group["weight_decay"] * theta
            r = 0.0
            coef = d / d0 * (d if group["safeguard_warmup"] else dlr)
            for gs, p0, th, s in _sampled(unit, (g, st["p0"], theta, st["s"]), group["slice_p"]):
                r += d / d0 * dlr * float(np.dot(gs, p0 - th))      # ⟨g, θ₀ − θ⟩
                s *= beta3
                s += coef * gs                                       # s ← β₃s + (d/d₀)·η_k d·g
            if beta1 > 0:
                m = st["exp_avg"]
                m *= beta1
                m += g * (d * (1 - beta1))                           # m ← β₁m + d(1−β₁)g
            v = st["exp_avg_sq"]
            v *= beta2
            v += g * g * (d * d * (1 - beta2))                       # v ← β₂v + d²(1−β₂)g²
            return r, float(np.abs(st["s"]).sum())

        parts = self._each(estimate, grads)
        numerator = first["d_numerator"] * beta3 + sum(p[0] for p in parts)
        denominator = sum(p[1] for p in parts)
        if denominator == 0:
            return  # no gradient yet (the package returns here: no step, no count)
        d_hat = first["d_coef"] * numerator / denominator
        if d == first["d0"]:
            d = max(d, d_hat)
        d_max = max(first["d_max"], d_hat)
        d = min(d_max, d * first["growth_rate"])
        for group in self.param_groups:
            group.update(d=d, d_max=d_max, d_numerator=numerator, d_denom=denominator, d_hat=d_hat, k=k)
        self._step(grads, dlr=dlr, d=d)

    @staticmethod
    def rule(theta, g, s, tmp, t, h):
        dlr, d = h["dlr"], h["d"]
        # √v + dε
        denom = np.add(np.sqrt(s["exp_avg_sq"], out=tmp[0]), d * h["eps"], out=tmp[0])
        if "exp_avg" in s and h["betas"][0] > 0:
            # θ ← θ − η_k d · m/(√v + dε)
            theta -= np.multiply(np.divide(s["exp_avg"], denom, out=tmp[1]), dlr, out=tmp[1])
        else:
            theta -= np.multiply(np.divide(g, denom, out=tmp[1]), dlr * d, out=tmp[1])


def _sampled(unit, arrays, slice_p):
    """The arrays (shaped like the unit) restricted to the elements that estimate d: all of them, or every
    slice_p-th element of each parameter (flattened), as the package's ``slice_p``."""
    if slice_p == 1 or not unit.flat:
        yield tuple(a.reshape(-1)[::slice_p] for a in arrays)
        return
    start = unit.theta.reshape(-1)
    for view in unit.views:
        offset = (view.__array_interface__["data"][0] - start.__array_interface__["data"][0]) // view.itemsize
        yield tuple(a.reshape(-1)[offset:offset + view.size][::slice_p] for a in arrays)
