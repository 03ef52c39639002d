"""Optimizers whose preconditioner is not diagonal: Muon, Shampoo, SOAP, and Adafactor's factored second moment.

Notation as in :mod:`optimlab.optimizers` (θ, g, η, β, m, v, ε, λ), and for a matrix parameter θ ∈ ℝ^{m×n}:
L (m×m) and R (n×n) the left and right statistics of the gradients (sums or averages of ggᵀ and gᵀg),
Q_L, Q_R their eigenbases, O = NS₅(·) the Newton–Schulz orthogonalisation.

These rules see a whole matrix at once (a norm, a matrix product, an eigendecomposition), so they set
``elementwise = False``: each parameter is updated on its own, never flattened together with others nor split
into chunks (see :class:`optimlab._base.Optimizer`). Muon, Shampoo and SOAP take 2-D parameters only (a
ValueError otherwise; Muon with ``stacked=True`` also takes stacks (..., m, n) of matrices, one per run of a
sweep); the usual split gives them the hidden weight matrices and AdamW the rest (embeddings, biases, gains, the
output head), as two optimizers or as parameter groups of a model. ``lr`` and ``weight_decay`` may be arrays
that broadcast against a parameter (they scale the update elementwise); every other hyperparameter enters the
matrix arithmetic and must be a number (or, for flags, True or False).
"""

from __future__ import annotations

import numbers

import numpy as np

from ._base import Optimizer, _nonzero, boolean, describe, nonnegative, number_error, one_of
from .optimizers import ema

__all__ = ["Muon", "Adafactor", "Shampoo", "SOAP", "newton_schulz", "split_hidden_matrices"]

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


# ----------------------------------------------------------------------------------------------------------------
# Checks for hyperparameters that must be plain numbers (they enter the matrix arithmetic)


def _number(x) -> bool:
    """A finite real that fits a float64 (not a bool, Fraction, complex, huge int or 0-d array)."""
    return number_error("x", x, array=False, numpy_ints=True) is None


def scalar(check):
    """A check that also insists on a plain number (not an array)."""
    def checked(x):
        if not _number(x):
            return "must be a number (it enters the matrix arithmetic, so it cannot be an array)"
        return check(x)
    checked.__name__ = f"scalar_{check.__name__}"
    return checked


def _in_unit_interval(x):
    return None if 0 <= x < 1 else "must be in [0, 1)"


def _at_least_one(x):
    return None if np.all(np.asarray(x, dtype=np.float64) >= 1) else "must be >= 1 (and not NaN)"


def _nonpositive(x):
    return None if x <= 0 else "must be <= 0 (and not NaN)"


def _positive_int(limit=None):
    def check(x):
        if not isinstance(x, numbers.Integral) or isinstance(x, (bool, np.bool_)) or x < 1:
            return "must be an integer >= 1"
        return None if limit is None or x < limit else f"must be below {limit}"
    return check


def _ns_steps(x):
    if not isinstance(x, numbers.Integral) or isinstance(x, (bool, np.bool_)) or not 0 <= x < 100:
        return "must be an integer in [0, 100)"
    return None


def _triple(x):
    if not isinstance(x, tuple) or len(x) != 3 or not all(_number(c) and np.isfinite(c) for c in x):
        return "must be a tuple of three finite numbers (a, b, c)"
    return None


def _scalar_betas(x):
    if not isinstance(x, tuple) or len(x) != 2 or not all(_number(b) and 0 <= b < 1 for b in x):
        return "must be a pair of numbers (beta1, beta2) in [0, 1)"
    return None


def _adafactor_eps(x):
    if not isinstance(x, tuple) or len(x) != 2:
        return "must be a pair (eps1 or None, eps2)"
    if not (x[0] is None or (_number(x[0]) and x[0] >= 0)):
        return "[0] must be None or a number >= 0"
    if not (_number(x[1]) and x[1] >= 0):
        return "[1] must be a number >= 0"
    return None


def _shampoo_beta(x):
    return None if x is None or (_number(x) and 0 <= x < 1) else "must be None (use beta2) or a number in [0, 1)"


class _MatrixOptimizer(Optimizer):
    """Shared by the rules below: not elementwise; ``two_d`` restricts the parameters to matrices (a group whose
    ``stacked`` is True, Muon's option, also takes stacks of them)."""

    elementwise = False
    two_d = True

    def _check_group(self, group, prefix):
        stacked = group.get("stacked", False)
        if not isinstance(stacked, (bool, np.bool_)):
            raise TypeError(f"{prefix.format('stacked')} must be True or False, got {describe(stacked)}")
        if not self.two_d:
            return
        label = prefix.format("params").replace("param_groups[0]['params']", "params")   # as _base labels them
        for i, p in enumerate(group.get("params", ())):
            if p.ndim != 2 and not (stacked and p.ndim > 2):
                also = " (and, with stacked=True, stacks (..., m, n) of them)" if "stacked" in self.hyper else ""
                raise ValueError(f"{label}[{i}] has shape {p.shape}: {type(self).__name__} updates 2-D matrices "
                                 f"only{also}; give vectors, scalars and tensors to another optimizer (AdamW)")


def split_hidden_matrices(params, head=()):
    """The usual split, as two lists of parameters: the hidden weight matrices (for Muon, Shampoo or SOAP) and the
    rest (for AdamW): vectors (biases, norm gains), scalars, and the matrices listed in ``head`` (the output head,
    embeddings: their rows are looked up or read out one by one, so an orthogonalised step does not suit them).

    >>> matrices, rest = split_hidden_matrices(params, head=[params[-2]])            # doctest: +SKIP
    >>> opts = [Muon(matrices, lr=0.02), AdamW(rest, lr=3e-3)]                       # doctest: +SKIP
    """
    head = {id(p) for p in head}
    matrices = [p for p in params if np.ndim(p) == 2 and id(p) not in head]
    rest = [p for p in params if np.ndim(p) != 2 or id(p) in head]
    return matrices, rest


def _matrices(shape):
    m, n = shape
    return {"L": (m, m), "R": (n, n), "Q_L": (m, m), "Q_R": (n, n)}


def newton_schulz(x, coefficients=NS_COEFFICIENTS, steps=5, eps=1e-7):
    """O = NS₅(x): the quintic Newton–Schulz iteration that maps x = USVᵀ to about
    UVᵀ, in x's dtype.

    X ← x/max(‖x‖_F, ε) (wide orientation: transposed when x has more rows than
    columns), then ``steps`` times X ← aX + (bA + cA²)X with A = XXᵀ. The
    coefficients (3.4445, −4.7750, 2.0315) make the slope at zero large, so the
    singular values land in about [0.7, 1.2] after five steps instead of exactly 1.
    Jordan et al. (2024). A stack of matrices (..., m, n) is orthogonalised matrix
    by matrix (each normalised by its own norm).
    """
    a, b, c = coefficients
    tall = x.shape[-2] > x.shape[-1]
    X = np.swapaxes(x, -1, -2) if tall else x
    if X.ndim == 2:
        X = X / max(float(np.linalg.norm(X)), eps)
    else:
        X = X / np.maximum(np.linalg.norm(X, axis=(-2, -1), keepdims=True), eps)
    for _ in range(steps):
        A = X @ np.swapaxes(X, -1, -2)
        X = a * X + (b * A + c * (A @ A)) @ X
    return np.swapaxes(X, -1, -2) if tall else X


class Muon(_MatrixOptimizer):
    r"""Muon: momentum, orthogonalised. For the hidden weight matrices of a network (AdamW for the rest).

    .. math::
        m_t = \beta m_{t-1} + (1-\beta) g_t, \qquad u_t = (1-\beta) g_t + \beta m_t \text{ (Nesterov) or } m_t,
        \qquad O_t = \mathrm{NS}_5(u_t),

        \theta_t = \theta_{t-1}(1 - \eta\lambda) - \eta' O_t, \qquad
        \eta' = \eta\sqrt{\max(1, m/n)} \text{ ("original") or } 0.2\,\eta\sqrt{\max(m, n)}
        \text{ ("match\_rms\_adamw")}

    O is about UVᵀ for u = USVᵀ: every direction of the update gets the same size, whatever the gradient's
    spectrum. Weight decay uses the unadjusted η, as torch does. Newton–Schulz runs in the parameter's dtype
    (torch runs it in bfloat16, so the two agree to bfloat16's rounding; see the tests).
    Jordan et al. (2024), *Muon: an optimizer for hidden layers*; Liu et al. (2025), *Muon is scalable for LLM
    training* (the AdamW-matched scale); ``torch.optim.Muon``.

    Parameters must be 2-D, as torch.optim.Muon's (a ValueError names any other). With ``stacked=True`` (the
    course's sweeps), a parameter of shape (..., m, n) is a stack of m×n matrices, each updated as its own
    parameter (its own normalisation and η′): B runs of a sweep in one array, with ``lr`` and ``weight_decay`` of
    shape (B, 1, 1); vectors and scalars are still refused. ``stacked`` is a key of each parameter group (torch
    has none: a saved group without it, torch's, keeps the group's own value when loaded).

    Args:
        params: 2-D arrays (or parameter groups of them); with ``stacked=True``, also stacks (..., m, n).
        lr: η (default 1e-3). weight_decay: λ, decoupled, times η (default 0.1).
        momentum: β in [0, 1] (default 0.95). nesterov: use the look-ahead u (default True).
        ns_coefficients: (a, b, c) of the quintic iteration. eps: ε of the normalisation (default 1e-7).
        ns_steps: iterations (default 5). adjust_lr_fn: None or "original" (√max(1, m/n)), or "match_rms_adamw".
        stacked: keyword only, True or False (a TypeError otherwise): parameters of 3 or more dimensions are
            stacks of matrices over their leading axes (default False: 2-D only).
    """

    hyper = {
        "lr": (1e-3, nonnegative),
        "weight_decay": (0.1, nonnegative),
        "momentum": (0.95, scalar(lambda x: None if 0 <= x <= 1 else "must be in [0, 1]")),
        "nesterov": (True, boolean),
        "ns_coefficients": (NS_COEFFICIENTS, _triple),
        "eps": (1e-7, scalar(nonnegative)),
        "ns_steps": (5, _ns_steps),
        "adjust_lr_fn": (None, one_of(None, "original", "match_rms_adamw")),
        "stacked": (False, lambda x: None),   # not torch's; a bool, checked (TypeError) with the shapes
    }
    decay = "decoupled"

    def __init__(self, params, lr=1e-3, weight_decay=0.1, momentum=0.95, nesterov=True,
                 ns_coefficients=NS_COEFFICIENTS, eps=1e-7, ns_steps=5, adjust_lr_fn=None, *, stacked=False):
        super().__init__(params, lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov,
                         ns_coefficients=ns_coefficients, eps=eps, ns_steps=ns_steps, adjust_lr_fn=adjust_lr_fn,
                         stacked=stacked)

    def load_state_dict(self, state_dict: dict):
        """As :meth:`Optimizer.load_state_dict`; a saved group without ``stacked`` (torch.optim.Muon's) keeps
        this optimizer's group's value."""
        groups = state_dict.get("param_groups") if isinstance(state_dict, dict) else None
        if isinstance(groups, (list, tuple)) and len(groups) == len(self.param_groups):
            groups = [{"stacked": mine.get("stacked", False), **saved} if isinstance(saved, dict) else saved
                      for saved, mine in zip(groups, self.param_groups)]
            state_dict = {**state_dict, "param_groups": groups}
        super().load_state_dict(state_dict)

    def state_arrays(self, group):
        return ["momentum_buffer"]

    @staticmethod
    def rule(theta, g, s, tmp, t, h):
        m, beta = s["momentum_buffer"], h["momentum"]
        ema(m, g, beta, tmp[0])                             # m ← m + (1−β)(g − m)
        u = g + beta * (m - g) if h["nesterov"] else m      # u ← (1−β)g + βm
        O = newton_schulz(u, h["ns_coefficients"], h["ns_steps"], h["eps"])
        rows, cols = theta.shape[-2:]
        if h["adjust_lr_fn"] == "match_rms_adamw":
            scale = 0.2 * max(rows, cols) ** 0.5
        else:
            scale = max(1.0, rows / cols) ** 0.5
        # θ ← θ − η′O  (θ(1 − ηλ) done before)
        theta -= (h["lr"] * scale) * O


def _rms(x) -> float:
    return float(np.linalg.norm(x)) / x.size ** 0.5


class Adafactor(_MatrixOptimizer):
    r"""Adafactor: Adam's second moment, factored into row and column averages; no first moment.

    For a matrix gradient (the last two axes; leading axes are a batch), with c_t = t^{β₂decay} and
    ρ_t = min(η, 1/√t):

    .. math::
        R_t = (1-c_t) R_{t-1} + c_t\,\overline{g^2}^{\text{row}}, \quad
        C_t = (1-c_t) C_{t-1} + c_t\,\overline{g^2}^{\text{col}}, \quad
        \hat v_t = \frac{R_t C_t}{\max(\overline{R_t}, \varepsilon_1)}, \quad
        u_t = \frac{g_t}{\sqrt{\max(\hat v_t, \varepsilon_1^2)}},

        \theta_t = \theta_{t-1}(1-\eta\lambda) - \frac{\alpha_t}{\max(1, \mathrm{RMS}(u_t)/d)}\, u_t, \qquad
        \alpha_t = \max(\varepsilon_2, \mathrm{RMS}(\theta_{t-1}))\,\rho_t

    A vector keeps v_t = (1−c_t)v_{t−1} + c_t g² instead. The state of an m×n matrix is m + n numbers, not mn.
    α uses θ before the weight decay. ε₁ None is the dtype's machine epsilon. Shazeer & Stern (2018);
    ``torch.optim.Adafactor`` (which caps ρ_t by η where the paper uses 0.01).

    Args:
        params: arrays of any shape. lr: η (default 1e-2). beta2_decay: the exponent of c_t, <= 0 (default −0.8).
        eps: (ε₁ or None, ε₂) (default (None, 1e-3)). d: the clipping threshold, >= 1 (default 1).
        weight_decay: λ, decoupled, times η (default 0). maximize: ascend (default False).
    """

    hyper = {
        "lr": (1e-2, nonnegative),
        "beta2_decay": (-0.8, scalar(_nonpositive)),
        "eps": ((None, 1e-3), _adafactor_eps),
        "d": (1.0, scalar(_at_least_one)),
        "weight_decay": (0.0, nonnegative),
        "maximize": (False, boolean),
    }
    decay = None          # applied by the rule, after α is computed from θ
    two_d = False

    def __init__(self, params, lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0, weight_decay=0.0, *,
                 maximize=False):
        super().__init__(params, lr=lr, beta2_decay=beta2_decay, eps=eps, d=d, weight_decay=weight_decay,
                         maximize=maximize)

    def state_arrays(self, group):
        return ["row_var", "col_var", "variance"]

    def state_shape(self, key, shape):
        if len(shape) < 2:
            return shape if key == "variance" else None
        return {"row_var": (*shape[:-1], 1), "col_var": (*shape[:-2], 1, shape[-1])}.get(key)

    @staticmethod
    def rule(theta, g, s, tmp, t, h):
        eps1, eps2 = h["eps"]
        eps1 = np.finfo(theta.dtype).eps if eps1 is None else eps1
        c, lr = float(t) ** h["beta2_decay"], h["lr"]
        alpha = np.maximum(eps2, _rms(theta)) * np.minimum(lr, float(t) ** -0.5)   # α ← max(ε₂, RMS(θ))ρ
        if _nonzero(h["weight_decay"]):
            theta *= 1 - lr * h["weight_decay"]                                      # θ ← θ(1 − ηλ)
        g2 = np.multiply(g, g, out=tmp[0])
        if theta.ndim >= 2:
            R, C = s["row_var"], s["col_var"]
            R += c * (g2.mean(axis=-1, keepdims=True) - R)                # R ← lerp(R, mean_row g², c)
            C += c * (g2.mean(axis=-2, keepdims=True) - C)                # C ← lerp(C, mean_col g², c)
            v = (R @ C) / np.maximum(R.mean(axis=-2, keepdims=True), eps1)
        else:
            v = s["variance"]
            v += c * (g2 - v)                                             # v ← lerp(v, g², c)
        u = g / np.sqrt(np.maximum(v, eps1 * eps1))                       # u ← g/√max(v̂, ε₁²)
        theta -= alpha / np.maximum(1.0, _rms(u) / h["d"]) * u


def _inverse_root(M, p):
    """M^(−1/p) of a symmetric positive definite matrix, from its eigendecomposition (NaN once M is not finite:
    a diverged run goes on as NaN, as in torch, instead of raising from the eigensolver)."""
    if not np.all(np.isfinite(M)):
        return np.full_like(M, np.nan)
    w, Q = np.linalg.eigh(M)
    return (Q * w ** (-1.0 / p)) @ Q.T


class Shampoo(_MatrixOptimizer):
    r"""Shampoo: a left and a right preconditioner for a matrix, a Kronecker-factored full-matrix AdaGrad.

    .. math::
        L_t = L_{t-1} + g_t g_t^\top, \qquad R_t = R_{t-1} + g_t^\top g_t \qquad (L_0 = \varepsilon I_m,\
        R_0 = \varepsilon I_n),

        \theta_t = \theta_{t-1} - \eta\, L_t^{-1/4}\, g_t\, R_t^{-1/4}

    (L^{−1/4} ⊗ R^{−1/4} approximates full-matrix AdaGrad's (Σ vec(g)vec(g)ᵀ)^{−1/2} at the cost of an m×m and an
    n×n matrix.) The inverse roots are recomputed every ``precondition_frequency`` steps (on the parameter's own
    steps 1, 1 + f, ...) and reused in between, while L and R take in every gradient. Weight decay is L2 (added
    to g, so it enters L and R). This is Algorithm 1 of Gupta, Koren & Singer (2018), *Shampoo: preconditioned
    stochastic tensor optimization*, with the roots taken every f steps.

    Verified (tests/test_matrix.py) against a dense float64 computation of the paper's equations written in the
    test, roots every f steps, their inverse roots by SVD (agreement about 1e-13 over 300 steps), and
    (tests/test_matrix_torch.py) against pytorch-optimizer's Shampoo with momentum 0 and roots at every step.

    Where Distributed Shampoo (Shi et al. 2023, arXiv:2309.06497, the AlgoPerf entry) differs:

    * grafting: it takes each block's step size from a diagonal method (AdaGrad or Adam) and only the direction
      from Shampoo, and runs the grafted method alone before its first roots; here the step is η L^{−1/4} g R^{−1/4}
      as it stands;
    * blocking: it splits a side longer than ``max_preconditioner_dim`` (1024) into blocks, each with its own
      statistics; here every matrix is preconditioned whole (memory and an eigendecomposition of m³ + n³);
    * ε: here εI is added to the sums L and R when their roots are taken, which is the paper's L₀ = εI exactly;
      it adds its ε (1e-12 by default) at root time too, but to statistics it may average exponentially
      (β₂ < 1) and bias-correct, so ε weighs differently as training goes on;
    * stale roots: both reuse roots for f steps; it computes them in float32 (falling back to the previous
      roots if a decomposition fails), here in the parameter's dtype. It also adds momentum and decoupled
      weight decay.

    Args:
        params: 2-D arrays. lr: η (default 1e-3). eps: ε, the initial diagonal of L and R, > 0 (default 1e-6).
        weight_decay: λ, L2 (default 0). precondition_frequency: f (default 1). maximize: ascend (default False).
    """

    hyper = {
        "lr": (1e-3, nonnegative),
        "eps": (1e-6, scalar(lambda x: None if x > 0 else "must be > 0")),
        "weight_decay": (0.0, nonnegative),
        "precondition_frequency": (1, _positive_int()),
        "maximize": (False, boolean),
    }

    def __init__(self, params, lr=1e-3, eps=1e-6, weight_decay=0.0, precondition_frequency=1, *,
                 maximize=False):
        super().__init__(params, lr=lr, eps=eps, weight_decay=weight_decay,
                         precondition_frequency=precondition_frequency, maximize=maximize)

    def state_arrays(self, group):
        return ["L", "R", "L_inv_root", "R_inv_root"]

    def state_shape(self, key, shape):
        shapes = _matrices(shape)
        return shapes[key.replace("_inv_root", "")]

    @staticmethod
    def rule(theta, g, s, tmp, t, h):
        L, R = s["L"], s["R"]
        L += g @ g.T                                    # L ← L + ggᵀ
        R += g.T @ g                                    # R ← R + gᵀg
        if (t - 1) % h["precondition_frequency"] == 0:
            eps = h["eps"]
            L_eps = L + eps * np.eye(len(L), dtype=L.dtype)  # L + εI
            R_eps = R + eps * np.eye(len(R), dtype=R.dtype)  # R + εI
            s["L_inv_root"][...] = _inverse_root(L_eps, 4)   # (L + εI)^{−1/4}
            s["R_inv_root"][...] = _inverse_root(R_eps, 4)   # (R + εI)^{−1/4}
        # θ ← θ − η L^{−1/4} g R^{−1/4}
        theta -= h["lr"] * (s["L_inv_root"] @ g @ s["R_inv_root"])


def _eigenbasis(M):
    """The eigenvectors of a symmetric M, by decreasing eigenvalue (NaN once M is not finite, as above)."""
    if not np.all(np.isfinite(M)):
        return np.full_like(M, np.nan)
    return np.linalg.eigh(M)[1][:, ::-1]


class SOAP(_MatrixOptimizer):
    r"""SOAP: Adam run in the eigenbasis of Shampoo's preconditioner, the basis refreshed every f steps.

    With g' = Q_Lᵀ g Q_R the gradient in the eigenbasis (k = t − 1: step 1 only sets up L, R, Q_L, Q_R):

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g'^{\,2}_t, \qquad
        n_t = Q_L \frac{Q_L^\top m_t Q_R}{\sqrt{v_t} + \varepsilon} Q_R^\top,

        \theta_t = \theta_{t-1} - \eta \frac{\sqrt{1-\beta_2^k}}{1-\beta_1^k}\, n_t, \qquad
        \theta_t \leftarrow \theta_t (1 - \eta\lambda),

        L_t = \beta_s L_{t-1} + (1-\beta_s) g_t g_t^\top, \qquad R_t = \beta_s R_{t-1} + (1-\beta_s) g_t^\top g_t

    Q_L, Q_R start as the eigenvectors of the first L and R; every f steps one power iteration refreshes them,
    Q ← QR(L Q), with v's rows (columns) reordered by the estimated eigenvalues diag(QᵀLQ). m stays in the
    original coordinates and is rotated at every step, as in the paper's Algorithm 3 (the authors' code now keeps
    m in the rotated coordinates instead). Everything runs in the parameter's dtype (the authors' code does the
    QR in float32). Vyas et al. (2024), *SOAP: improving and stabilizing Shampoo using Adam*.

    Verified (tests/test_matrix_torch.py) against pytorch-optimizer's SOAP, which follows Algorithm 3, with its
    float32 QR made float64, on square parameters; and (tests/test_matrix.py) against Adam when the bases are
    the identity.

    **A rectangular matrix.** For an m×n gradient with m > n the first L = ggᵀ has rank n: its eigenbasis is
    unique only up to a rotation of the (m − n)-dimensional null space (up to signs when m − n = 1; likewise R
    when n > m), and ``eigh`` picks one, as LAPACK happens to. The update depends on that choice: signs cancel
    (Q rotates in and Qᵀ out), but a rotation does not, since Adam's division by √v is coordinatewise. The
    next update changes in the null space of the first L only (its part along the first gradient's columns is
    the same), and the runs then stay apart, because each refresh is one power iteration from the basis in use
    (tests/test_matrix.py shows both). Any implementation that takes the first basis from an eigensolver, the
    authors' and pytorch-optimizer's included, shares this; it is why the reference test uses square matrices.

    Where it differs from Distributed Shampoo (Shi et al. 2023): no grafting (Adam in the eigenbasis sets the
    step size: Vyas et al. show that Shampoo with the power 1/2 is Adafactor run in this eigenbasis, and SOAP
    runs Adam there instead); no blocking (every
    matrix whole; the authors' code leaves a side longer than ``max_precond_dim``, 10000, unrotated); ε is
    Adam's, added to √v in the rotated coordinates, while L and R, used only for their eigenvectors, get none;
    and the stale part is the basis, not a root: m and v move at every step, the basis every f steps by one
    power iteration instead of a full eigendecomposition.

    Args:
        params: 2-D arrays. lr: η (default 3e-3). betas: (β₁, β₂) (default (0.95, 0.95)).
        shampoo_beta: β_s of L and R, None for β₂ (default). eps: ε (default 1e-8).
        weight_decay: λ, decoupled, after the update (default 0.01).
        precondition_frequency: f (default 10). maximize: ascend (default False).
    """

    hyper = {
        "lr": (3e-3, nonnegative),
        "betas": ((0.95, 0.95), _scalar_betas),
        "shampoo_beta": (None, _shampoo_beta),
        "eps": (1e-8, scalar(nonnegative)),
        "weight_decay": (1e-2, nonnegative),
        "precondition_frequency": (10, _positive_int()),
        "maximize": (False, boolean),
    }
    decay = None          # decoupled, applied by the rule after the update (as in the paper)

    def __init__(self, params, lr=3e-3, betas=(0.95, 0.95), shampoo_beta=None, eps=1e-8, weight_decay=1e-2,
                 precondition_frequency=10, *, maximize=False):
        super().__init__(params, lr=lr, betas=betas, shampoo_beta=shampoo_beta, eps=eps, weight_decay=weight_decay,
                         precondition_frequency=precondition_frequency, maximize=maximize)

    def state_arrays(self, group):
        return ["exp_avg", "exp_avg_sq", "L", "R", "Q_L", "Q_R"]

    def state_shape(self, key, shape):
        return _matrices(shape).get(key, shape)

    @staticmethod
    def rule(theta, g, s, tmp, t, h):
        (beta1, beta2), lr = h["betas"], h["lr"]
        beta_s = beta2 if h["shampoo_beta"] is None else h["shampoo_beta"]
        keys = ("exp_avg", "exp_avg_sq", "L", "R", "Q_L", "Q_R")
        m, v, L, R, QL, QR = (s[k] for k in keys)
        if t > 1:
            k = t - 1
            m += (1 - beta1) * (g - m)                      # m ← β₁m + (1−β₁)g
            v += (1 - beta2) * ((QL.T @ g @ QR) ** 2 - v)   # v ← β₂v + (1−β₂)g'²
            # n ← Q_L (m'/(√v + ε)) Q_Rᵀ
            n = QL @ ((QL.T @ m @ QR) / (np.sqrt(v) + h["eps"])) @ QR.T
            theta -= lr * ((1 - beta2**k) ** 0.5 / (1 - beta1**k)) * n
            theta *= 1 - lr * h["weight_decay"]             # θ ← θ(1 − ηλ)
        L += (1 - beta_s) * (g @ g.T - L)                   # L ← β_s L + (1−β_s)ggᵀ
        R += (1 - beta_s) * (g.T @ g - R)                   # R ← β_s R + (1−β_s)gᵀg
        if t == 1:
            QL[...], QR[...] = _eigenbasis(L), _eigenbasis(R)
        elif (t - 1) % h["precondition_frequency"] == 0:
            # one power iteration Q ← QR(PQ), columns by diag(QᵀPQ), descending
            for axis, (P, Q) in enumerate(((L, QL), (R, QR))):
                PQ = P @ Q
                diag = np.einsum("ij,ij->j", Q, PQ)         # diag(QᵀPQ)
                order = np.argsort(-diag, kind="stable")
                v[...] = np.take(v, order, axis=axis)
                Q[...] = np.linalg.qr(PQ[:, order])[0]
