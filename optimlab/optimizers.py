"""The optimizers of the course, each one update rule in the book's notation.

Notation (the book's notation page): θ parameters, g gradient, η learning rate (``lr``), t step (1 on the first
update), β momentum coefficients (β₁, β₂ for the two moments; RMSprop's β₂ is torch's ``alpha``), m and v first
and second moments, ε ``eps``, λ ``weight_decay``, τ ``dampening``.
Every rule works in place on arrays of one shape (a parameter, or a chunk of a flat buffer of parameters);
``s`` is the parameter's state, ``tmp`` two scratch arrays, ``h`` the hyperparameters of its group.
Maximize and weight decay are applied before the rule, once, by :class:`optimlab._base.Optimizer`:
L2 (g ← g + λθ) or decoupled (θ ← θ(1 − ηλ)), as in ``torch.optim``.

Names, defaults and the order of operations follow ``torch.optim`` 2.13; the tests check every optimizer against
it number for number. Options for the conventions of other libraries are named where they apply
(``eps_inside_sqrt``, ``weight_decay_scale="schedule"``).
"""

from __future__ import annotations

import numpy as np

from ._base import (
    Optimizer,
    _nonzero,
    betas_pair,
    boolean,
    check_number,
    closed_unit_interval,
    finite,
    nonnegative,
    one_of,
)

__all__ = ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "Lion", "SophiaG"]


class SGD(Optimizer):
    r"""Stochastic gradient descent with (heavy-ball or Nesterov) momentum.

    .. math::
        m_t = \beta m_{t-1} + (1-\tau) g_t \quad (m_1 = g_1), \qquad
        \theta_t = \theta_{t-1} - \eta\, d_t,\quad d_t = m_t \text{ or } g_t + \beta m_t \text{ (Nesterov)}

    The learning rate stays outside the buffer, so a schedule that changes η rescales the whole velocity at
    once. Nesterov is the re-parameterised form (gradient at the stored point) of Sutskever et al. (2013).
    Polyak (1964); Nesterov (1983); ``torch.optim.SGD``.
    """

    hyper = {
        "lr": (1e-3, nonnegative),
        "momentum": (0.0, nonnegative),
        "dampening": (0.0, finite),
        "weight_decay": (0.0, nonnegative),
        "nesterov": (False, boolean),
        "maximize": (False, boolean),
    }

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, *,
                 maximize=False):
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                         nesterov=nesterov, maximize=maximize)

    def state_arrays(self, group):
        return ["momentum_buffer"] if _any_nonzero(group["momentum"]) else []

    def _begin_step(self, state, group, t):
        # torch starts the buffer at g (not at zero) the first time momentum is used, whenever that is
        active = "momentum_buffer" in state and _nonzero(group["momentum"])
        state["_fresh_buffer"] = active and "_buffer_used" not in state
        if active:
            state["_buffer_used"] = True

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        # a saved buffer has been used: the run continues it (βm + (1−τ)g), it does not restart it at g
        for units in self._units:
            for unit in units:
                if unit.state["step"] > 0 and "momentum_buffer" in unit.state:
                    unit.state["_buffer_used"] = True

    def _check_group(self, group, prefix):
        if group["nesterov"] and (not np.all(np.asarray(group["momentum"]) > 0)
                                  or np.any(np.asarray(group["dampening"]) != 0)):
            raise ValueError(f"{prefix.format('nesterov')}=True requires momentum > 0 and dampening = 0, got "
                             f"momentum={group['momentum']!r}, dampening={group['dampening']!r}")

    @staticmethod
    def rule(theta, g, s, tmp, t, h):
        beta, lr = h["momentum"], h["lr"]
        d = g
        # β = 0: plain SGD, buffer kept
        if "momentum_buffer" in s and _nonzero(beta):
            m = s["momentum_buffer"]
            if s["_fresh_buffer"]:
                # the first buffer is g itself
                m[...] = g
            else:
                tau = h["dampening"]
                # runs of a sweep with β = 0: d = g
                if np.ndim(beta):
                    tau = np.where(beta != 0, tau, 0.0)
                # m ← βm + (1−τ)g
                m *= beta
                m += np.multiply(g, 1 - tau, out=tmp[0])
            if h["nesterov"]:
                # d = g + βm
                d = np.add(g, np.multiply(m, beta, out=tmp[0]), out=tmp[0])
            else:
                d = m
        # θ ← θ − ηd
        theta -= np.multiply(d, lr, out=tmp[1])


class Adagrad(Optimizer):
    r"""AdaGrad: per-coordinate steps from the sum of squared gradients (Duchi, Hazan & Singer 2011).

    .. math::
        v_t = v_{t-1} + g_t^2, \qquad
        \theta_t = \theta_{t-1} - \frac{\eta_t}{\sqrt{v_t} + \epsilon}\, g_t, \qquad
        \eta_t = \frac{\eta}{1 + (t-1)\,\text{lr\_decay}}

    ``eps_inside_sqrt=True`` gives the form of the course outline, Keras and optax: η/√(v + ε).
    ``initial_accumulator_value`` is v₀ (Keras and optax use 0.1). State is created at construction, as in torch.
    """

    hyper = {
        "lr": (1e-2, nonnegative),
        "lr_decay": (0.0, nonnegative),
        "weight_decay": (0.0, nonnegative),
        "initial_accumulator_value": (0.0, nonnegative),
        "eps": (1e-10, nonnegative),
        "maximize": (False, boolean),
        "eps_inside_sqrt": (False, boolean),
    }

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10,
                 *, maximize=False, eps_inside_sqrt=False):
        super().__init__(params, lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                         initial_accumulator_value=initial_accumulator_value, eps=eps, maximize=maximize,
                         eps_inside_sqrt=eps_inside_sqrt)

    def state_arrays(self, group):
        return ["sum"]

    def _init_state(self, unit, group):
        super()._init_state(unit, group)
        unit.state["sum"][...] = group["initial_accumulator_value"]

    def _has_state(self, entry):
        return True  # torch creates AdaGrad's state in the constructor

    @staticmethod
    def rule(theta, g, s, tmp, t, h):
        v, eps = s["sum"], h["eps"]
        lr_t = h["lr"] / (1 + (t - 1) * h["lr_decay"])
        # v ← v + g²
        v += np.multiply(g, g, out=tmp[0])
        if h["eps_inside_sqrt"]:
            # √(v + ε)
            denom = np.sqrt(np.add(v, eps, out=tmp[0]), out=tmp[0])
        else:
            # √v + ε
            denom = np.add(np.sqrt(v, out=tmp[0]), eps, out=tmp[0])
        theta -= np.multiply(np.divide(g, denom, out=tmp[0]), lr_t, out=tmp[0])


class RMSprop(Optimizer):
    r"""RMSprop: divide by a moving root-mean-square of recent gradients (Tieleman & Hinton 2012).

    α is torch's ``alpha``, the decay the notation page calls β₂.

    .. math::
        v_t = \alpha v_{t-1} + (1-\alpha) g_t^2, \qquad
        \theta_t = \theta_{t-1} - \eta\, \frac{g_t}{\sqrt{v_t} + \epsilon}

    ``centered`` subtracts the squared mean gradient ḡ² from v (an estimate of the variance); ``momentum`` β > 0
    keeps a buffer m ← βm + g/denom (starting at zero) and steps θ ← θ − ηm. No bias correction, so the first
    steps are about 1/√(1−α) times larger than later ones. ``eps_inside_sqrt=True`` gives √(v + ε)
    (Keras, optax and the course outline).
    """

    hyper = {
        "lr": (1e-2, nonnegative),
        "alpha": (0.99, closed_unit_interval),
        "eps": (1e-8, nonnegative),
        "weight_decay": (0.0, nonnegative),
        "momentum": (0.0, nonnegative),
        "centered": (False, boolean),
        "maximize": (False, boolean),
        "eps_inside_sqrt": (False, boolean),
    }

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
                 *, maximize=False, eps_inside_sqrt=False):
        super().__init__(params, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                         centered=centered, maximize=maximize, eps_inside_sqrt=eps_inside_sqrt)

    def state_arrays(self, group):
        names = ["square_avg"]
        if _any_nonzero(group["momentum"]):
            names.append("momentum_buffer")
        if group["centered"]:
            names.append("grad_avg")
        return names

    @staticmethod
    def rule(theta, g, s, tmp, t, h):
        v, alpha, eps = s["square_avg"], h["alpha"], h["eps"]
        # v ← αv + (1−α)g²
        v *= alpha
        v += np.multiply(np.multiply(g, g, out=tmp[0]), 1 - alpha, out=tmp[0])
        var = v
        if h["centered"]:
            # ḡ ← ḡ + (1−α)(g − ḡ)
            gbar = s["grad_avg"]
            diff = np.subtract(g, gbar, out=tmp[0])
            gbar += np.multiply(diff, 1 - alpha, out=tmp[0])
            # v − ḡ²
            var = np.subtract(v, np.multiply(gbar, gbar, out=tmp[0]), out=tmp[0])
        if h["eps_inside_sqrt"]:
            denom = np.sqrt(np.add(var, eps, out=tmp[0]), out=tmp[0])
        else:
            denom = np.add(np.sqrt(var, out=tmp[0]), eps, out=tmp[0])
        # g / (√v + ε)
        step = np.divide(g, denom, out=tmp[0])
        if "momentum_buffer" in s:
            m = s["momentum_buffer"]
            # m ← βm + g/(√v + ε)
            m *= h["momentum"]
            m += step
            step = m
        theta -= np.multiply(step, h["lr"], out=tmp[1])


class Adam(Optimizer):
    r"""Adam: momentum on the gradient and on its square, both bias-corrected (Kingma & Ba 2015).

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2, \quad
        \theta_t = \theta_{t-1} - \eta\, \frac{m_t / (1-\beta_1^t)}{\sqrt{v_t / (1-\beta_2^t)} + \epsilon}

    ``amsgrad`` divides by the running maximum of v instead (Reddi, Kale & Kumar 2018), taken on the raw v.
    ``decoupled_weight_decay=True`` is AdamW. The arithmetic is torch's: √v/√(1−β₂ᵗ) + ε, then a step of
    η/(1−β₁ᵗ)·m/denominator; m is updated as a linear interpolation toward g, as torch's ``lerp``.
    """

    hyper = {
        "lr": (1e-3, nonnegative),
        "betas": ((0.9, 0.999), betas_pair),
        "eps": (1e-8, nonnegative),
        "weight_decay": (0.0, nonnegative),
        "amsgrad": (False, boolean),
        "maximize": (False, boolean),
        "decoupled_weight_decay": (False, boolean),
    }
    decay = "decoupled_weight_decay"

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, *,
                 maximize=False, decoupled_weight_decay=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         maximize=maximize, decoupled_weight_decay=decoupled_weight_decay)

    def state_arrays(self, group):
        return ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"] if group["amsgrad"] else ["exp_avg", "exp_avg_sq"]

    @staticmethod
    def rule(theta, g, s, tmp, t, h):
        m, v, d = s["exp_avg"], s["exp_avg_sq"], tmp[0]
        (beta1, beta2), eps = h["betas"], h["eps"]
        ema(m, g, beta1, d)                     # m ← m + (1−β₁)(g − m)
        ema_of_square(v, g, beta2, d)           # v ← β₂v + (1−β₂)g²
        if h["amsgrad"]:
            # v ← max(v_max, v)
            v = np.maximum(s["max_exp_avg_sq"], v, out=s["max_exp_avg_sq"])
        bc1, root_bc2 = 1 - beta1**t, (1 - beta2**t) ** 0.5
        # θ ← θ − η/(1−β₁ᵗ) · m/(√v/√(1−β₂ᵗ) + ε), with √(1−β₂ᵗ) moved out of the
        # denominator (one pass fewer): d = √v + ε√(1−β₂ᵗ);  θ ← θ − lr_t · m/d
        lr_t = h["lr"] * (root_bc2 / bc1)               # η√(1−β₂ᵗ)/(1−β₁ᵗ)
        np.sqrt(v, out=d)
        d += eps * root_bc2
        theta -= np.multiply(np.divide(m, d, out=d), lr_t, out=d)


class AdamW(Adam):
    r"""AdamW: Adam with decoupled weight decay θ ← θ(1 − ηλ) (Loshchilov & Hutter 2019).

    torch multiplies the decay by the current learning rate η. The paper multiplies it by the schedule
    multiplier η_t only: θ ← θ − η_t(α·m̂/(√v̂ + ε) + λθ), so λ is not scaled by the base rate α.
    ``weight_decay_scale="schedule"`` gives the paper's form, with η_t = lr/lr₀, lr₀ the group's
    ``decay_base_lr`` (by default its lr when the optimizer was built; schedulers leave it alone, unlike torch's
    ``initial_lr``, which OneCycleLR overwrites); to convert, λ_torch = λ_paper/lr₀.
    """

    hyper = {**Adam.hyper, "weight_decay": (1e-2, nonnegative),
             "weight_decay_scale": ("lr", one_of("lr", "schedule"))}
    decay = "decoupled"

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False, weight_decay_scale="lr"):
        Optimizer.__init__(self, params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                           maximize=maximize, decoupled_weight_decay=True, weight_decay_scale=weight_decay_scale)

    def _check_group(self, group, prefix):
        if group["decoupled_weight_decay"] is not True:
            raise ValueError(f"{prefix.format('decoupled_weight_decay')} must be True for AdamW, "
                             f"got {group['decoupled_weight_decay']!r}")
        _check_schedule_scale(group, prefix)

    def _prepare_group(self, group):
        group.setdefault("decay_base_lr", group["lr"])

    def _decay_lr(self, h):
        if h["weight_decay_scale"] == "schedule":
            return h["lr"] / h["decay_base_lr"]
        return h["lr"]


class Adamax(Optimizer):
    r"""Adamax: Adam with the infinity norm in place of the root mean square (Kingma & Ba 2015, §7.1).

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad u_t = \max(\beta_2 u_{t-1}, |g_t| + \epsilon), \quad
        \theta_t = \theta_{t-1} - \frac{\eta}{1-\beta_1^t} \frac{m_t}{u_t}

    torch adds ε to |g| inside the maximum.
    """

    hyper = {
        "lr": (2e-3, nonnegative),
        "betas": ((0.9, 0.999), betas_pair),
        "eps": (1e-8, nonnegative),
        "weight_decay": (0.0, nonnegative),
        "maximize": (False, boolean),
    }

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, *, maximize=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, maximize=maximize)

    def state_arrays(self, group):
        return ["exp_avg", "exp_inf"]

    @staticmethod
    def rule(theta, g, s, tmp, t, h):
        m, u, d = s["exp_avg"], s["exp_inf"], tmp[0]
        beta1, beta2 = h["betas"]
        ema(m, g, beta1, d)                     # m ← m + (1−β₁)(g − m)
        # u ← max(β₂u, |g| + ε)
        u *= beta2
        np.maximum(u, np.add(np.abs(g, out=d), h["eps"], out=d), out=u)
        # θ ← θ − η/(1−β₁ᵗ) · m/u
        theta -= np.multiply(np.divide(m, u, out=d), h["lr"] / (1 - beta1**t), out=d)


class NAdam(Optimizer):
    r"""NAdam: Adam with Nesterov momentum and Dozat's momentum schedule (Dozat 2016).

    .. math::
        \mu_t = \beta_1\,(1 - \tfrac12\, 0.96^{t\psi}), \qquad \Pi_t = \prod_{k \le t} \mu_k, \\
        \theta_t = \theta_{t-1} - \eta \frac{1-\mu_t}{1-\Pi_t} \frac{g_t}{d_t}
                                - \eta \frac{\mu_{t+1}}{1-\Pi_t\mu_{t+1}} \frac{m_t}{d_t}, \qquad
        d_t = \sqrt{v_t/(1-\beta_2^t)} + \epsilon

    ψ is ``momentum_decay``. ``decoupled_weight_decay=True`` gives NAdamW. Π is kept in double precision (torch
    keeps it in the default dtype: equal when that is float64).
    """

    hyper = {
        "lr": (2e-3, nonnegative),
        "betas": ((0.9, 0.999), betas_pair),
        "eps": (1e-8, nonnegative),
        "weight_decay": (0.0, nonnegative),
        "momentum_decay": (4e-3, nonnegative),
        "decoupled_weight_decay": (False, boolean),
        "maximize": (False, boolean),
    }
    decay = "decoupled_weight_decay"

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, momentum_decay=4e-3, *,
                 decoupled_weight_decay=False, maximize=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         momentum_decay=momentum_decay, decoupled_weight_decay=decoupled_weight_decay,
                         maximize=maximize)

    def state_arrays(self, group):
        return ["exp_avg", "exp_avg_sq"]

    def _init_scalar_state(self, state, group):
        state["mu_product"] = 1.0

    def _scalar_state_names(self):
        return ["mu_product"]

    def _begin_step(self, state, group, t):
        beta1, psi = group["betas"][0], group["momentum_decay"]
        state["_mu"] = beta1 * (1 - 0.5 * 0.96 ** (t * psi))
        state["_mu_next"] = beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * psi))
        state["mu_product"] = state["mu_product"] * state["_mu"]

    @staticmethod
    def rule(theta, g, s, tmp, t, h):
        m, v, d = s["exp_avg"], s["exp_avg_sq"], tmp[0]
        (beta1, beta2), lr = h["betas"], h["lr"]
        mu, mu_next, prod = s["_mu"], s["_mu_next"], s["mu_product"]
        ema(m, g, beta1, d)                     # m ← m + (1−β₁)(g − m)
        ema_of_square(v, g, beta2, d)           # v ← β₂v + (1−β₂)g²
        # d = √(v/(1−β₂ᵗ)) + ε
        np.divide(v, 1 - beta2**t, out=d)
        np.sqrt(d, out=d)
        d += h["eps"]
        # θ ← θ − c₁ g/d − c₂ m/d: the gradient's share, then the momentum's
        c1 = lr * (1 - mu) / (1 - prod)
        c2 = lr * mu_next / (1 - prod * mu_next)
        theta -= np.multiply(np.divide(g, d, out=tmp[1]), c1, out=tmp[1])
        theta -= np.multiply(np.divide(m, d, out=tmp[1]), c2, out=tmp[1])


class RAdam(Optimizer):
    r"""RAdam: Adam whose adaptive step is switched on as the variance of v becomes tractable (Liu et al. 2020).

    .. math::
        \rho_\infty = \frac{2}{1-\beta_2} - 1, \quad \rho_t = \rho_\infty - \frac{2t\beta_2^t}{1-\beta_2^t},
        \quad r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)\rho_\infty}{(\rho_\infty-4)(\rho_\infty-2)\rho_t}} \\
        \theta_t = \theta_{t-1} - \eta\,\hat m_t \cdot
            \begin{cases} r_t\, \sqrt{1-\beta_2^t} / (\sqrt{v_t} + \epsilon) & \rho_t > 5 \\ 1 & \text{else} \end{cases}

    While ρ_t ≤ 5 (the first five steps with β₂ = 0.999) the step is plain momentum. ε is added to the
    uncorrected √v, as torch does.
    """

    hyper = {
        "lr": (1e-3, nonnegative),
        "betas": ((0.9, 0.999), betas_pair),
        "eps": (1e-8, nonnegative),
        "weight_decay": (0.0, nonnegative),
        "decoupled_weight_decay": (False, boolean),
        "maximize": (False, boolean),
    }
    decay = "decoupled_weight_decay"

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, *,
                 decoupled_weight_decay=False, maximize=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)

    def state_arrays(self, group):
        return ["exp_avg", "exp_avg_sq"]

    @staticmethod
    def rule(theta, g, s, tmp, t, h):
        m, v, d = s["exp_avg"], s["exp_avg_sq"], tmp[0]
        (beta1, beta2), lr = h["betas"], h["lr"]
        ema(m, g, beta1, d)                     # m ← m + (1−β₁)(g − m)
        ema_of_square(v, g, beta2, d)           # v ← β₂v + (1−β₂)g²
        bc1, bc2 = 1 - beta1**t, 1 - beta2**t
        # ρ_t, and the rectification r_t where ρ_t > 5 (elsewhere r is unused: ρ's set to 5.5 to keep √ real)
        rho_inf = 2 / (1 - beta2) - 1
        rho = rho_inf - 2 * t * beta2**t / bc2
        rectified = rho > 5
        rho, rho_inf = np.where(rectified, rho, 5.5), np.where(rectified, rho_inf, 5.5)
        r = np.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
        # d = r·√(1−β₂ᵗ)/(√v + ε) where rectified, 1 where not (a plain momentum step)
        np.sqrt(v, out=d)
        d += h["eps"]
        np.divide(bc2**0.5, d, out=d)
        d *= r
        if not np.all(rectified):
            np.copyto(d, 1.0, where=~np.broadcast_to(rectified, d.shape))
        # θ ← θ − η m̂ d
        theta -= np.multiply(np.multiply(np.divide(m, bc1, out=tmp[1]), lr, out=tmp[1]), d, out=tmp[1])


class Lion(Optimizer):
    r"""Lion: the sign of an interpolated momentum (Chen et al. 2023, found by program search).

    .. math::
        u_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad
        \theta_t = \theta_{t-1} - \eta\,\mathrm{sign}(u_t), \qquad
        m_t = \beta_2 m_{t-1} + (1-\beta_2) g_t

    Every coordinate moves by exactly η (plus decoupled decay), so Lion wants a learning rate 3–10× smaller than
    AdamW's and a weight decay 3–10× larger. One state array instead of Adam's two.
    ``weight_decay_scale="schedule"`` divides the decay by the initial lr (the paper-style convention).
    """

    hyper = {
        "lr": (1e-4, nonnegative),
        "betas": ((0.9, 0.99), betas_pair),
        "weight_decay": (0.0, nonnegative),
        "maximize": (False, boolean),
        "weight_decay_scale": ("lr", one_of("lr", "schedule")),
    }
    decay = "decoupled"

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, *, maximize=False,
                 weight_decay_scale="lr"):
        super().__init__(params, lr=lr, betas=betas, weight_decay=weight_decay, maximize=maximize,
                         weight_decay_scale=weight_decay_scale)

    def state_arrays(self, group):
        return ["exp_avg"]

    _prepare_group = AdamW._prepare_group
    _decay_lr = AdamW._decay_lr

    def _check_group(self, group, prefix):
        _check_schedule_scale(group, prefix)

    @staticmethod
    def rule(theta, g, s, tmp, t, h):
        m, u = s["exp_avg"], tmp[0]
        beta1, beta2 = h["betas"]
        # u = β₁m + (1−β₁)g, with the old m
        np.multiply(m, beta1, out=u)
        u += np.multiply(g, 1 - beta1, out=tmp[1])
        # θ ← θ − η sign(u)
        theta -= np.multiply(np.sign(u, out=u), h["lr"], out=u)
        # m ← β₂m + (1−β₂)g
        m *= beta2
        m += np.multiply(g, 1 - beta2, out=tmp[1])


class SophiaG(Optimizer):
    r"""Sophia: momentum preconditioned by a diagonal Hessian estimate, clipped per coordinate (Liu et al. 2023).

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad
        \theta_t = \theta_{t-1} - \eta\, \mathrm{sign}(m_t)\,
            \min\!\Big(\frac{|m_t|}{\rho\, b\, h_t + 10^{-15}},\ 1\Big)

    h is the estimate of the Hessian diagonal, refreshed by :meth:`update_hessian` every k steps (k = 10 in
    the paper): h ← β₂h + (1−β₂)ĥ. Until the first refresh h = 0, so every step is η·sign(m).
    ``b`` is ``bs``, the batch size in tokens, passed to :meth:`step` as in the authors' code, where the
    Gauss-Newton-Bartlett estimate ĥ = ĝ⊙ĝ is stored per example and scaled by the batch size here.
    The authors' SophiaG: no bias correction, decoupled weight decay ηλ. See :mod:`optimlab.hessian` for ĥ.
    """

    hyper = {
        "lr": (1e-4, nonnegative),
        "betas": ((0.965, 0.99), betas_pair),
        "rho": (0.04, nonnegative),
        "weight_decay": (1e-1, nonnegative),
        "maximize": (False, boolean),
    }
    decay = "decoupled"

    def __init__(self, params, lr=1e-4, betas=(0.965, 0.99), rho=0.04, weight_decay=1e-1, *, maximize=False):
        super().__init__(params, lr=lr, betas=betas, rho=rho, weight_decay=weight_decay, maximize=maximize)

    def state_arrays(self, group):
        return ["exp_avg", "hessian"]

    def _has_state(self, entry):
        return entry["step"] > 0 or bool(np.any(entry["hessian"] != 0))  # refreshed before the first step

    def step(self, grads, bs=5120):
        """One Sophia update; ``bs`` is the batch size (tokens per step) that scales the Hessian estimate."""
        check_number("bs", bs, array=False, numpy_ints=True)
        if not bs > 0:
            raise ValueError(f"bs must be a positive finite number, got {bs!r}")
        bs = bs if type(bs) in (int, float) else float(bs)  # a numpy integer would wrap around in ρ·bs
        self._revalidate(grads)
        self._step(grads, bs=bs)

    def update_hessian(self, estimates):
        """h ← β₂h + (1−β₂)ĥ for each parameter (``estimates`` in parameter order; None leaves one alone)."""
        self._revalidate(estimates, name="estimates")

        def refresh(unit, estimate, group):
            h, beta2 = unit.state["hessian"], group["betas"][1]
            h *= beta2
            h += (1 - beta2) * estimate

        self._each(refresh, estimates)

    @staticmethod
    def rule(theta, g, s, tmp, t, h):
        m, hess, d = s["exp_avg"], s["hessian"], tmp[0]
        beta1 = h["betas"][0]
        # m ← β₁m + (1−β₁)g
        m *= beta1
        m += np.multiply(g, 1 - beta1, out=d)
        # d = min(|m| / (ρ·b·h + 1e-15), 1)
        np.multiply(hess, h["rho"] * h["bs"], out=d)
        d += 1e-15
        np.divide(np.abs(m, out=tmp[1]), d, out=d)
        np.minimum(d, 1, out=d)
        # θ ← θ − η sign(m) d
        d *= np.sign(m, out=tmp[1])
        d *= h["lr"]
        theta -= d


def _any_nonzero(x) -> bool:
    return bool(np.any(np.asarray(x) != 0))


def _check_schedule_scale(group, prefix):
    """weight_decay_scale="schedule" multiplies the decay by η_t = lr/decay_base_lr, which must be > 0."""
    if group["weight_decay_scale"] == "schedule" and _any_nonzero(group["weight_decay"]):
        base = group.get("decay_base_lr", group["lr"])
        if not np.all(np.asarray(base, dtype=np.float64) > 0):
            raise ValueError(f"{prefix.format('weight_decay_scale')}='schedule' scales the decay by "
                             f"lr/decay_base_lr, so decay_base_lr (the lr at construction) must be > 0, got {base!r}")


def ema(m, g, beta, tmp):
    """m ← m + (1−β)(g − m) in place: the exponential moving average of Adam's first moment, computed as
    torch's ``lerp`` (which rounds differently from βm + (1−β)g)."""
    m += np.multiply(np.subtract(g, m, out=tmp), 1 - beta, out=tmp)


def ema_of_square(v, g, beta, tmp):
    """v ← βv + (1−β)g² in place: the moving average of squared gradients (Adam's v, RMSprop's E[g²])."""
    v *= beta
    v += np.multiply(np.multiply(g, g, out=tmp), 1 - beta, out=tmp)
