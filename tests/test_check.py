"""optimlab.check: the self-checking exercises.

Every check accepts an answer written here independently, in plain numpy (often in another form than the
module's reference, and computing float32 inputs in float32); rejects typical mistakes with a message that names
them; reports a crash without raising; and prints the same verdict on every call.
"""

import math

import numpy as np
import pytest

from optimlab import check

# ----------------------------------------------------------------------------------------------------------------
# Answers, written from the definitions


def gd_rate(lr, eigenvalues):
    return max(abs(1 - lr * h) for h in eigenvalues)


def best_gd_lr(mu, L):
    kappa = L / mu
    return 2 / (L + mu), (kappa - 1) / (kappa + 1)


def sgd_momentum_step(theta, grad, buf, lr, momentum=0.9, nesterov=False):
    buf = momentum * buf + grad
    step = grad + momentum * buf if nesterov else buf
    return theta - lr * step, buf


def heavy_ball_tuning(mu, L):
    r = (math.sqrt(L) - math.sqrt(mu)) / (math.sqrt(L) + math.sqrt(mu))
    return (2 / (math.sqrt(L) + math.sqrt(mu))) ** 2, r * r


def nesterov_step(theta, grad, buf, lr, momentum=0.9):
    buf = momentum * buf + grad
    return theta - lr * grad - lr * momentum * buf, buf


def nesterov_lookahead_step(theta, velocity, grad_fn, lr, momentum=0.9):
    velocity = momentum * velocity - lr * grad_fn(theta + momentum * velocity)
    return theta + velocity, velocity


def adagrad_step(theta, grad, sum_sq, lr=1e-2, eps=1e-10):
    sum_sq = sum_sq + grad * grad
    return theta - lr * grad / (np.sqrt(sum_sq) + eps), sum_sq


def adagrad_eps_inside_step(theta, grad, sum_sq, lr=1e-2, eps=1e-10):
    sum_sq = sum_sq + grad**2
    return theta - lr / np.sqrt(sum_sq + eps) * grad, sum_sq


def rmsprop_step(theta, grad, sq_avg, lr=1e-2, alpha=0.99, eps=1e-8):
    sq_avg = sq_avg + (1 - alpha) * (grad**2 - sq_avg)
    return theta - lr * grad / (np.sqrt(sq_avg) + eps), sq_avg


def rmsprop_centered_step(theta, grad, sq_avg, grad_avg, lr=1e-2, alpha=0.99, eps=1e-8):
    sq_avg = alpha * sq_avg + (1 - alpha) * grad**2
    grad_avg = alpha * grad_avg + (1 - alpha) * grad
    return theta - lr * grad / (np.sqrt(sq_avg - grad_avg**2) + eps), sq_avg, grad_avg


def adam_step(theta, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    b1, b2 = betas
    m = b1 * m + (1 - b1) * grad
    v = b2 * v + (1 - b2) * grad**2
    m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
    return theta - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def amsgrad_step(theta, grad, m, v, v_max, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    b1, b2 = betas
    m = b1 * m + (1 - b1) * grad
    v = b2 * v + (1 - b2) * grad**2
    v_max = np.maximum(v_max, v)
    return theta - lr / (1 - b1**t) * m / (np.sqrt(v_max / (1 - b2**t)) + eps), m, v, v_max


def adamw_step(theta, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
    theta = theta - lr * weight_decay * theta
    return adam_step(theta, grad, m, v, t, lr, betas, eps)


def adam_l2_step(theta, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
    return adam_step(theta, grad + weight_decay * theta, m, v, t, lr, betas, eps)


def warmup_cosine(step, total_steps, warmup_steps, peak_lr, final_lr=0.0):
    if step < warmup_steps:
        return peak_lr * step / warmup_steps
    progress = min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))
    return final_lr + 0.5 * (peak_lr - final_lr) * (1 + math.cos(math.pi * progress))


def cosine_restarts(step, lr_max, T_0, T_mult=1, lr_min=0.0):
    T_i, T_cur = T_0, step
    while T_cur >= T_i:
        T_cur, T_i = T_cur - T_i, T_i * T_mult
    return lr_min + (lr_max - lr_min) * (1 + math.cos(math.pi * T_cur / T_i)) / 2


def clip_grad_norm(grads, max_norm):
    total = math.sqrt(sum(float(np.sum(g * g)) for g in grads))
    coef = min(1.0, max_norm / (total + 1e-6))
    return [g * coef for g in grads], total


def clip_grad_value(grads, clip_value):
    return [np.clip(g, -clip_value, clip_value) for g in grads]


def accumulate_grads(micro_grads, counts):
    n = sum(counts)
    return [sum(c / n * grads[i] for grads, c in zip(micro_grads, counts)) for i in range(len(micro_grads[0]))]


def paired_difference(a, b):
    d = np.asarray(a) - np.asarray(b)
    return d.mean(), math.sqrt(np.sum((d - d.mean()) ** 2) / (len(d) - 1) / len(d))


def lr_tolerance_width(lrs, scores, tolerance):
    best = int(np.argmin(scores))
    lo = hi = best
    while lo > 0 and scores[lo - 1] <= scores[best] + tolerance:
        lo -= 1
    while hi + 1 < len(scores) and scores[hi + 1] <= scores[best] + tolerance:
        hi += 1
    return math.log10(lrs[hi] / lrs[lo])


def lion_step(theta, grad, m, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0):
    b1, b2 = betas
    update = np.sign(b1 * m + (1 - b1) * grad)
    theta = theta * (1 - lr * weight_decay) - lr * update
    return theta, b2 * m + (1 - b2) * grad


def sophia_step(theta, grad, m, hessian, lr=1e-4, beta1=0.965, rho=0.04, weight_decay=1e-1, eps=1e-15, bs=5120):
    theta = theta * (1 - lr * weight_decay)
    m = beta1 * m + (1 - beta1) * grad
    step = np.clip(m / (rho * bs * hessian + eps), -1, 1)
    return theta - lr * step, m


def newton_schulz(G, steps=5, coefficients=(3.4445, -4.7750, 2.0315), eps=1e-7):
    a, b, c = coefficients
    X = np.array(G, dtype=float)
    if X.shape[0] > X.shape[1]:
        return newton_schulz(X.T, steps, coefficients, eps).T
    X /= max(np.sqrt(np.sum(X * X)), eps)
    for _ in range(steps):
        A = X @ X.T
        X = a * X + b * (A @ X) + c * (A @ (A @ X))
    return X


def muon_update(theta, grad, buf, lr=1e-3, momentum=0.95, nesterov=True, weight_decay=0.1, adjust_lr_fn=None):
    theta, grad, buf = (np.asarray(x, dtype=float) for x in (theta, grad, buf))
    buf = buf + (1 - momentum) * (grad - buf)
    u = grad + momentum * (buf - grad) if nesterov else buf
    rows, cols = theta.shape
    if adjust_lr_fn == "match_rms_adamw":
        adjusted = lr * 0.2 * math.sqrt(max(rows, cols))
    else:
        adjusted = lr * math.sqrt(max(1, rows / cols))
    return theta - lr * weight_decay * theta - adjusted * newton_schulz(u), buf


def schedule_free_step(y, z, x, grad, t, lr, beta=0.9):
    z = z - lr * grad
    x = x + (z - x) / t
    return beta * x + (1 - beta) * z, z, x


def average_weights(avg, params, n_averaged, decay=None):
    if n_averaged == 0:
        return [np.copy(p) for p in params]
    keep = n_averaged / (n_averaged + 1) if decay is None else decay
    return [keep * a + (1 - keep) * p for a, p in zip(avg, params)]
def scaled_lr(lr, batch, base_batch, rule="linear", critical_batch=None):
    if critical_batch is not None:
        batch, base_batch = min(batch, critical_batch), min(base_batch, critical_batch)
    return lr * {"linear": batch / base_batch, "sqrt": math.sqrt(batch / base_batch)}[rule]


def noise_scale(per_example_grads):
    g = np.asarray(per_example_grads, dtype=float).reshape(len(per_example_grads), -1)
    trace = g.var(axis=0, ddof=1).sum()
    mean = g.mean(axis=0)
    return trace / (mean @ mean - trace / len(g))


def lr_against_optimizer(scores, higher_is_better=True):
    spreads = [max(row) - min(row) for row in scores]
    bests = [max(row) if higher_is_better else min(row) for row in scores]
    return min(spreads), max(bests) - min(bests)


def refined_grid(lrs, scores, higher_is_better=True):
    best = int(np.argmax(scores)) if higher_is_better else int(np.argmin(scores))
    factor = lrs[1] / lrs[0]
    if 0 < best < len(lrs) - 1:
        factor = math.sqrt(factor)
    half = len(lrs) // 2
    return np.array([lrs[best] * factor ** (i - half) for i in range(len(lrs))])


ANSWERS = {name: globals()[name] for name in check.__all__}


def verdict(capsys, name, fn):
    ok = getattr(check, name)(fn)
    return ok, capsys.readouterr().out


# ----------------------------------------------------------------------------------------------------------------
# Typical mistakes, written here: (check, answer, words the verdict must contain)


def _adam_no_correction(theta, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    m = betas[0] * m + (1 - betas[0]) * grad
    v = betas[1] * v + (1 - betas[1]) * grad**2
    return theta - lr * m / (np.sqrt(v) + eps), m, v


def _adam_off_by_one(theta, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    return adam_step(theta, grad, m, v, t + 1, lr, betas, eps)[0], *adam_step(theta, grad, m, v, t, lr, betas, eps)[1:]


def _adam_eps_inside(theta, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    m = betas[0] * m + (1 - betas[0]) * grad
    v = betas[1] * v + (1 - betas[1]) * grad**2
    return theta - lr * m / (1 - betas[0] ** t) / np.sqrt(v / (1 - betas[1] ** t) + eps), m, v


def _sgd_lr_inside(theta, grad, buf, lr, momentum=0.9, nesterov=False):
    buf = momentum * buf + lr * grad
    return theta - (lr * grad + momentum * buf if nesterov else buf), buf


def _restart_one_late(step, lr_max, T_0, T_mult=1, lr_min=0.0):
    T_i, T_cur = T_0, step
    while T_cur > T_i:  # > instead of >=
        T_cur, T_i = T_cur - T_i - 1, T_i * T_mult
    return lr_min + (lr_max - lr_min) * (1 + math.cos(math.pi * T_cur / T_i)) / 2


def _refine_always(lrs, scores, higher_is_better=True):
    best = int(np.argmax(scores)) if higher_is_better else int(np.argmin(scores))
    return lrs[best] * math.sqrt(lrs[1] / lrs[0]) ** (np.arange(len(lrs)) - len(lrs) // 2)


def _linear_width(lrs, scores, tolerance):
    best = int(np.argmin(scores))
    inside = [i for i in range(len(lrs)) if all(scores[j] <= scores[best] + tolerance
                                                 for j in range(min(i, best), max(i, best) + 1))]
    return float(lrs[max(inside)] - lrs[min(inside)])


def _clip_after(grads, max_norm):
    clipped, _ = clip_grad_norm(grads, max_norm)
    return clipped, math.sqrt(sum(float(np.sum(g * g)) for g in clipped))


def _ns_unnormalised(G, steps=5, coefficients=(3.4445, -4.7750, 2.0315), eps=1e-7):
    a, b, c = coefficients
    X = np.array(G, dtype=float)
    for _ in range(steps):
        X = a * X + b * (X @ X.T @ X) + c * (X @ X.T @ X @ X.T @ X)
    return X


def _ns_keller(G, steps=5, coefficients=(3.4445, -4.7750, 2.0315), eps=1e-7):
    a, b, c = coefficients
    X = np.array(G, dtype=float)
    X = (X.T if X.shape[0] > X.shape[1] else X) / (np.linalg.norm(X) + eps)
    for _ in range(steps):
        A = X @ X.T
        X = a * X + (b * A + c * A @ A) @ X
    return X.T if np.shape(G)[0] > np.shape(G)[1] else X


def _ns_wrong_side(G, steps=5, coefficients=(3.4445, -4.7750, 2.0315), eps=1e-7):
    a, b, c = coefficients
    X = np.array(G, dtype=float)
    X = (X.T if X.shape[0] > X.shape[1] else X) / max(np.linalg.norm(X), eps)
    for _ in range(steps):
        A = X.T @ X
        X = a * X + (b * A + c * A @ A) @ X
    return X.T if np.shape(G)[0] > np.shape(G)[1] else X


def _muon_undamped(theta, grad, buf, lr=1e-3, momentum=0.95, nesterov=True, weight_decay=0.1, adjust_lr_fn=None):
    buf = momentum * buf + grad
    u = grad + momentum * buf if nesterov else buf
    rows, cols = theta.shape
    scale = 0.2 * math.sqrt(max(rows, cols)) if adjust_lr_fn == "match_rms_adamw" else math.sqrt(max(1, rows / cols))
    return theta * (1 - lr * weight_decay) - lr * scale * newton_schulz(u), buf


def _muon_decay_adjusted(theta, grad, buf, lr=1e-3, momentum=0.95, nesterov=True, weight_decay=0.1,
                         adjust_lr_fn=None):
    rows, cols = theta.shape
    adjusted = 0.2 * math.sqrt(max(rows, cols)) if adjust_lr_fn == "match_rms_adamw" else math.sqrt(max(1, rows / cols))
    theta = theta * (1 - lr * adjusted * weight_decay) / (1 - lr * weight_decay)
    return muon_update(theta, grad, buf, lr, momentum, nesterov, weight_decay, adjust_lr_fn)


MISTAKES = [
    ("gd_rate", lambda lr, e: max(1 - lr * h for h in e), "absolute value"),
    ("gd_rate", lambda lr, e: abs(1 - lr * max(e)), "only the largest eigenvalue"),
    ("gd_rate", lambda lr, e: abs(1 - lr * min(e)), "only the smallest eigenvalue"),
    ("best_gd_lr", lambda mu, L: (2 / L, (L - mu) / (L + mu)), "2/L"),
    ("best_gd_lr", lambda mu, L: (1 / L, (L - mu) / (L + mu)), "1/L"),
    ("best_gd_lr", lambda mu, L: (2 / (L + mu), (L - mu) / L), "(L − μ)/L"),
    ("sgd_momentum_step", _sgd_lr_inside, "learning rate is inside the buffer"),
    ("sgd_momentum_step", lambda th, g, b, lr, momentum=0.9, nesterov=False:
        sgd_momentum_step(th, g, b, lr, momentum, False), "nesterov=True seems to be ignored"),
    ("sgd_momentum_step", lambda th, g, b, lr, momentum=0.9, nesterov=False:
        (th - lr * b, momentum * b + g), "old buffer"),
    ("heavy_ball_tuning", lambda mu, L: (heavy_ball_tuning(mu, L)[0], math.sqrt(heavy_ball_tuning(mu, L)[1])),
     "β is its square"),
    ("heavy_ball_tuning", lambda mu, L: (2 / (L + mu), heavy_ball_tuning(mu, L)[1]), "2/(L + μ)"),
    ("heavy_ball_tuning", lambda mu, L: (heavy_ball_tuning(mu, L)[0],
                                         (math.sqrt(mu / L) - 1) / (math.sqrt(mu / L) + 1)), "κ is L/μ"),
    ("nesterov_step", lambda th, g, b, lr, momentum=0.9: (th - lr * (momentum * b + g), momentum * b + g),
     "heavy-ball step"),
    ("nesterov_step", lambda th, g, b, lr, momentum=0.9: _sgd_lr_inside(th, g, b, lr, momentum, True),
     "learning rate is inside the buffer"),
    ("nesterov_step", lambda th, g, b, lr, momentum=0.9: (th - lr * (g + momentum * b), momentum * b + g),
     "g + βm with the old m"),
    ("nesterov_lookahead_step", lambda th, v, gf, lr, momentum=0.9: (th + momentum * v - lr * gf(th),
                                                                     momentum * v - lr * gf(th)), "heavy ball"),
    ("nesterov_lookahead_step", lambda th, v, gf, lr, momentum=0.9: (th + momentum * v - lr * gf(th - momentum * v),
                                                                     momentum * v - lr * gf(th - momentum * v)),
     "wrong way"),
    ("nesterov_lookahead_step", lambda th, v, gf, lr, momentum=0.9:
        (th + momentum * v + nesterov_lookahead_step(th, v, gf, lr, momentum)[1],
         nesterov_lookahead_step(th, v, gf, lr, momentum)[1]), "θ + βv was stored as θ"),
    ("adagrad_step", adagrad_eps_inside_step, "ε is inside the square root"),
    ("adagrad_step", lambda th, g, s, lr=1e-2, eps=1e-10: (th - lr * g / (np.sqrt(s) + eps), s + g * g), "old sum"),
    ("adagrad_step", lambda th, g, s, lr=1e-2, eps=1e-10: (th - lr * g / (s + g * g + eps), s + g * g),
     "square root seems to be missing"),
    ("adagrad_eps_inside_step", adagrad_step, "ε is outside the square root"),
    ("adagrad_eps_inside_step", lambda th, g, s, lr=1e-2, eps=1e-10: (th - lr * g / np.sqrt(s + eps), s + g * g),
     "old sum"),
    ("adagrad_eps_inside_step", lambda th, g, s, lr=1e-2, eps=1e-10:
        (th - lr * g / np.sqrt(s + lr * g * g + eps), s + lr * g * g), "learning rate seems to be inside the sum"),
    ("rmsprop_step", lambda th, g, s, lr=1e-2, alpha=0.99, eps=1e-8:
        (th - lr * g / np.sqrt(alpha * s + (1 - alpha) * g * g + eps), alpha * s + (1 - alpha) * g * g),
     "ε is inside the square root"),
    ("rmsprop_step", lambda th, g, s, lr=1e-2, alpha=0.99, eps=1e-8:
        rmsprop_step(th, g, s, lr, 1 - alpha, eps), "swapped"),
    ("rmsprop_step", lambda th, g, s, lr=1e-2, alpha=0.99, eps=1e-8:
        (th - lr * g / (np.sqrt(s) + eps), alpha * s + (1 - alpha) * g * g), "old average"),
    ("rmsprop_centered_step", lambda th, g, s, a, lr=1e-2, alpha=0.99, eps=1e-8:
        rmsprop_step(th, g, s, lr, alpha, eps) + (alpha * a + (1 - alpha) * g,), "not centered"),
    ("rmsprop_centered_step", lambda th, g, s, a, lr=1e-2, alpha=0.99, eps=1e-8:
        (rmsprop_step(th, g, s, lr, alpha, eps)[0] * 0 + th - lr * g / (np.sqrt(
            alpha * s + (1 - alpha) * g * g + (alpha * a + (1 - alpha) * g) ** 2) + eps),
         alpha * s + (1 - alpha) * g * g, alpha * a + (1 - alpha) * g), "added"),
    ("rmsprop_centered_step", lambda th, g, s, a, lr=1e-2, alpha=0.99, eps=1e-8:
        (th - lr * g / np.sqrt(alpha * s + (1 - alpha) * g * g - (alpha * a + (1 - alpha) * g) ** 2 + eps),
         alpha * s + (1 - alpha) * g * g, alpha * a + (1 - alpha) * g), "ε is inside the square root"),
    ("adam_step", _adam_no_correction, "bias correction missing"),
    ("adam_step", _adam_no_correction, "3.16× too large"),
    ("adam_step", _adam_off_by_one, "off by one"),
    ("adam_step", _adam_eps_inside, "ε is inside the square root"),
    ("amsgrad_step", lambda th, g, m, v, vm, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8:
        (lambda m2, v2: (lambda vh: (th - lr * m2 / (1 - betas[0] ** t) / (np.sqrt(vh) + eps), m2, v2, vh))(
            np.maximum(vm, v2 / (1 - betas[1] ** t))))(betas[0] * m + (1 - betas[0]) * g,
                                                       betas[1] * v + (1 - betas[1]) * g * g),
     "that is optax's convention"),
    ("amsgrad_step", lambda th, g, m, v, vm, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8:
        adam_step(th, g, m, v, t, lr, betas, eps) + (np.maximum(vm, betas[1] * v + (1 - betas[1]) * g * g),),
     "not by the running maximum"),
    ("amsgrad_step", lambda th, g, m, v, vm, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8:
        amsgrad_step(th, g, m, v, vm, 1e9, lr, betas, eps), "bias correction missing"),
    ("adamw_step", lambda th, g, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2:
        adam_l2_step(th, g, m, v, t, lr, betas, eps, weight_decay), "L2"),
    ("adamw_step", lambda th, g, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2:
        adam_step(th * (1 - weight_decay), g, m, v, t, lr, betas, eps), "not to be scaled by the learning rate"),
    ("adamw_step", lambda th, g, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2:
        _adam_no_correction(th * (1 - lr * weight_decay), g, m, v, t, lr, betas, eps), "bias correction missing"),
    ("adam_l2_step", adamw_step, "decoupled decay"),
    ("adam_l2_step", lambda th, g, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2:
        adam_l2_step(th, g, m, v, t, lr, betas, eps, -weight_decay), "wrong sign"),
    ("adam_l2_step", lambda th, g, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2:
        (lambda out: (th - lr * (out[1] / (1 - betas[0] ** t) + weight_decay * th)
                      / (np.sqrt(out[2] / (1 - betas[1] ** t)) + eps), out[1], out[2]))(
            adam_step(th, g, m, v, t, lr, betas, eps)), "after the moments"),
    ("warmup_cosine", lambda k, T, W, peak, final_lr=0.0: warmup_cosine(k + 1, T, W, peak, final_lr)
        if k < W else warmup_cosine(k, T, W, peak, final_lr), "warm-up is off by one"),
    ("warmup_cosine", lambda k, T, W, peak, final_lr=0.0: warmup_cosine(k, T, W, peak, 0.0), "final_lr"),
    ("warmup_cosine", lambda k, T, W, peak, final_lr=0.0: warmup_cosine(k, T + W, W, peak, final_lr)
        if k <= T else final_lr, "runs over total_steps"),
    ("cosine_restarts", lambda k, lr_max, T_0, T_mult=1, lr_min=0.0: cosine_restarts(k, lr_max, T_0, 1, lr_min),
     "T_mult seems to be ignored"),
    ("cosine_restarts", _restart_one_late, "off by one"),
    ("cosine_restarts", lambda k, lr_max, T_0, T_mult=1, lr_min=0.0:
        lr_min + (lr_max - lr_min) * (1 + math.cos(math.pi * (k % T_0) / (T_0 - 1))) / 2, "T_i − 1"),
    ("clip_grad_norm", lambda grads, c: ([clip_grad_norm([g], c)[0][0] for g in grads], clip_grad_norm(grads, c)[1]),
     "its own norm"),
    ("clip_grad_norm", _clip_after, "norm after clipping"),
    ("clip_grad_norm", lambda grads, c: ([g * c / (clip_grad_norm(grads, c)[1] + 1e-6) for g in grads],
                                         clip_grad_norm(grads, c)[1]), "capped at 1"),
    ("clip_grad_value", lambda grads, c: clip_grad_norm(grads, c)[0], "scaled down"),
    ("clip_grad_value", lambda grads, c: [np.minimum(g, c) for g in grads], "below as well as above"),
    ("clip_grad_value", lambda grads, c: [np.clip(np.abs(g), -c, c) for g in grads], "signs are lost"),
    ("clip_grad_value", lambda grads, c: [g * (np.abs(g) <= c) for g in grads], "set to zero"),
    ("accumulate_grads", lambda mg, counts: [np.mean([g[i] for g in mg], axis=0) for i in range(len(mg[0]))],
     "plain mean"),
    ("accumulate_grads", lambda mg, counts: [np.sum([g[i] for g in mg], axis=0) for i in range(len(mg[0]))],
     "without dividing"),
    ("accumulate_grads", lambda mg, counts: [sum(c * g[i] for g, c in zip(mg, counts)) / len(mg)
                                             for i in range(len(mg[0]))], "number of micro-batches"),
    ("paired_difference", lambda a, b: (np.mean(a - b), np.std(a - b) / math.sqrt(len(a))), "ddof=0"),
    ("paired_difference", lambda a, b: (np.mean(a - b), math.sqrt(np.var(a, ddof=1) / len(a)
                                                                  + np.var(b, ddof=1) / len(b))), "paired"),
    ("paired_difference", lambda a, b: (np.mean(b - a), np.std(a - b, ddof=1) / math.sqrt(len(a))), "sign"),
    ("lr_tolerance_width", lambda lrs, s, tol: math.log10(lrs[-1] / lrs[0]), "whole grid"),
    ("lr_tolerance_width", lambda lrs, s, tol: _linear_width(lrs, s, tol), "linear"),
    ("lr_tolerance_width", lambda lrs, s, tol: (lambda ok: math.log10(lrs[ok[-1]] / lrs[ok[0]]))(
        np.flatnonzero(s <= np.min(s) + tol)), "contiguous"),
    ("lion_step", lambda th, g, m, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0:
        (lambda m2: (th * (1 - lr * weight_decay) - lr * np.sign(m2), m2))(betas[1] * m + (1 - betas[1]) * g),
     "sign(m)"),
    ("lion_step", lambda th, g, m, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0:
        (lion_step(th, g, m, lr, betas, weight_decay)[0], betas[0] * m + (1 - betas[0]) * g), "updated with β₁"),
    ("lion_step", lambda th, g, m, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0:
        lion_step(th * (1 - weight_decay) / (1 - lr * weight_decay), g, m, lr, betas, weight_decay),
     "not to be scaled by the learning rate"),
    ("sophia_step", lambda th, g, m, h, lr=1e-4, beta1=0.965, rho=0.04, weight_decay=1e-1, eps=1e-15, bs=5120:
        (lambda m2: (th * (1 - lr * weight_decay) - lr * m2 / (rho * bs * h + eps), m2))(beta1 * m + (1 - beta1) * g),
     "not to be clipped"),
    ("sophia_step", lambda th, g, m, h, lr=1e-4, beta1=0.965, rho=0.04, weight_decay=1e-1, eps=1e-15, bs=5120:
        (lambda m2: (th * (1 - lr * weight_decay) - lr * np.minimum(np.abs(m2) / (rho * bs * h + eps), 1), m2))(
            beta1 * m + (1 - beta1) * g), "lost its sign"),
    ("sophia_step", lambda th, g, m, h, lr=1e-4, beta1=0.965, rho=0.04, weight_decay=1e-1, eps=1e-15, bs=5120:
        sophia_step(th * (1 - weight_decay) / (1 - lr * weight_decay), g, m, h, lr, beta1, rho, weight_decay, eps, bs),
     "not to be scaled by the learning rate"),
    ("newton_schulz", _ns_unnormalised, "normalisation seems to be missing"),
    ("newton_schulz", _ns_keller, "Keller Jordan's code"),
    ("newton_schulz", lambda G, steps=5, coefficients=(3.4445, -4.7750, 2.0315), eps=1e-7:
        newton_schulz(G, steps, (coefficients[0], coefficients[2], coefficients[1]), eps),
     "b and c seem to be swapped"),
    ("newton_schulz", _ns_wrong_side, "XᵀX on the wrong side"),
    ("muon_update", _muon_undamped, "βm + g"),
    ("muon_update", lambda th, g, b, lr=1e-3, momentum=0.95, nesterov=True, weight_decay=0.1, adjust_lr_fn=None:
        muon_update(th, g, b, lr, momentum, False, weight_decay, adjust_lr_fn), "nesterov=True seems to be ignored"),
    ("muon_update", _muon_decay_adjusted, "adjusted learning rate"),
    ("muon_update", lambda th, g, b, lr=1e-3, momentum=0.95, nesterov=True, weight_decay=0.1, adjust_lr_fn=None:
        muon_update(th, g, b, lr, momentum, nesterov, weight_decay, "original"), "ignore its argument adjust_lr_fn"),
    ("schedule_free_step", lambda y, z, x, g, t, lr, beta=0.9: schedule_free_step(y, z, x, g, t + 1, lr, beta),
     "c = 1/(t + 1)"),
    ("schedule_free_step", lambda y, z, x, g, t, lr, beta=0.9: schedule_free_step(y, z, x, g, t, lr, 1 - beta),
     "β seems to weight z instead of x"),
    ("schedule_free_step", lambda y, z, x, g, t, lr, beta=0.9:
        (lambda z2, x2: (beta * x2 + (1 - beta) * z2, z2, x2))(z - lr * g, x + (z - x) / t), "old z"),
    ("schedule_free_step", lambda y, z, x, g, t, lr, beta=0.9:
        (lambda z2: (beta * x + (1 - beta) * z2, z2, x + (z2 - x) / t))(z - lr * g), "old x"),
    ("schedule_free_step", lambda y, z, x, g, t, lr, beta=0.9: schedule_free_step(y, z, x, g, t, lr),
     "ignore its argument beta"),
    ("average_weights", lambda a, p, n, decay=None: [q.copy() for q in p] if n == 0 else
        [ai + (q - ai) * ((1 / n) if decay is None else 1 - decay) for ai, q in zip(a, p)],
     "instead of n_averaged + 1"),
    ("average_weights", lambda a, p, n, decay=None: average_weights(a, p, n, None if decay is None else 1 - decay),
     "seem to be swapped"),
    ("average_weights", lambda a, p, n, decay=None:
        [ai + (q - ai) * (1 / (n + 1) if decay is None else 1 - decay) for ai, q in zip(a, p)],
     "first update seems not to copy"),
    ("average_weights", lambda a, p, n, decay=None: average_weights(a, p, n), "ignore its argument decay"),
    ("scaled_lr", lambda lr, B, B0, rule="linear", critical_batch=None:
        scaled_lr(lr, B0, B, rule, critical_batch), "upside down"),
    ("scaled_lr", lambda lr, B, B0, rule="linear", critical_batch=None:
        scaled_lr(lr, B, B0, "linear", critical_batch), "rule='sqrt' seems to scale linearly"),
    ("scaled_lr", lambda lr, B, B0, rule="linear", critical_batch=None:
        lr * (min(B, critical_batch or B) / B0) ** (1 if rule == "linear" else 0.5), "cap the base batch too"),
    ("scaled_lr", lambda lr, B, B0, rule="linear", critical_batch=None: scaled_lr(lr, B, B0, rule),
     "ignore its argument critical_batch"),
    ("noise_scale", lambda g: (lambda g: g.var(axis=0).sum() / (g.mean(0) @ g.mean(0) - g.var(axis=0).sum() / len(g)))(
        np.reshape(g, (len(g), -1))), "ddof=0"),
    ("noise_scale", lambda g: (lambda g: g.var(axis=0, ddof=1).sum() / (g.mean(0) @ g.mean(0)))(
        np.reshape(g, (len(g), -1))), "‖ḡ‖² − tr Σ/n"),
    ("noise_scale", lambda g: noise_scale(g) / len(g), "noise of the *mean* gradient"),
    ("noise_scale", lambda g: 1 / noise_scale(g), "upside down"),
    ("lr_against_optimizer", lambda s, higher_is_better=True: (max(np.ptp(s, axis=1)),
                                                               lr_against_optimizer(s, higher_is_better)[1]),
     "most* sensitive"),
    ("lr_against_optimizer", lambda s, higher_is_better=True: (lr_against_optimizer(s, higher_is_better)[0],
                                                               np.ptp(np.mean(s, axis=1))), "row's mean"),
    ("lr_against_optimizer", lambda s, higher_is_better=True: lr_against_optimizer(s), "not its maximum"),
    ("refined_grid", _refine_always, "refine only when the best is inside"),
    ("refined_grid", lambda lrs, s, higher_is_better=True: refined_grid(lrs, s), "the minimum (a loss)"),
    ("refined_grid", lambda lrs, s, higher_is_better=True:
        refined_grid(lrs, s, higher_is_better) / refined_grid(lrs, s, higher_is_better)[len(lrs) // 2]
        * lrs[len(lrs) // 2], "centred on the old grid's middle"),
]


# ----------------------------------------------------------------------------------------------------------------
# Tests


@pytest.mark.parametrize("name", check.__all__)
def test_an_answer_written_independently_passes(capsys, name):
    ok, out = verdict(capsys, name, ANSWERS[name])
    assert ok is True, out
    assert out.startswith(f"{name}: correct on all"), out


def test_every_check_has_an_answer_here_and_two_per_chapter():
    assert set(ANSWERS) == set(check.__all__)
    assert len(check.__all__) == 31
    for name in check.__all__:
        assert f":func:`{name}`" in check.__doc__


@pytest.mark.parametrize("name, answer, words", MISTAKES, ids=[f"{n}-{w}" for n, _, w in MISTAKES])
def test_a_typical_mistake_fails_and_is_named(capsys, name, answer, words):
    ok, out = verdict(capsys, name, answer)
    assert ok is False, out
    assert out.startswith(f"{name}: not yet."), out
    assert words in out, out


def test_at_least_three_mistakes_per_check():
    counts = {name: sum(n == name for n, _, _ in MISTAKES) for name in check.__all__}
    assert min(counts.values()) >= 3, counts


@pytest.mark.parametrize("name", check.__all__)
def test_every_named_mistake_of_the_module_is_recognised(capsys, name):
    spec = check._SPECS[name]()
    assert len(spec.mistakes) >= 3
    for mistake in spec.mistakes:
        ok, out = verdict(capsys, name, mistake.fn)
        assert ok is False and mistake.message in out, out


@pytest.mark.parametrize("name", check.__all__)
def test_a_crash_is_reported_not_raised(capsys, name):
    def crashes(*args, **kwargs):
        raise ZeroDivisionError("my bug")
    ok, out = verdict(capsys, name, crashes)
    assert ok is False
    assert "crashed" in out and "ZeroDivisionError: my bug" in out, out


@pytest.mark.parametrize("bad", [None, 3, "adam", [adam_step]])
def test_something_that_is_not_a_function_raises_a_type_error_naming_fn(bad):
    with pytest.raises(TypeError, match="fn must be"):
        check.adam_step(bad)


@pytest.mark.parametrize("name", check.__all__)
def test_the_verdict_is_the_same_on_every_call(capsys, name):
    wrong = MISTAKES[[n for n, _, _ in MISTAKES].index(name)][1]
    first, second = verdict(capsys, name, wrong), verdict(capsys, name, wrong)
    assert first == second


STEPS = [name for name in check.__all__ if name.endswith("_step")]


@pytest.mark.parametrize("name", STEPS)
def test_an_optimizer_step_is_checked_on_the_cases_the_issue_asks_for(name):
    cases = check._SPECS[name]().cases
    labels = " | ".join(case.label for case in cases)
    assert any(case.f32 for case in cases) and any(not case.f32 for case in cases)
    assert "shape (5,)" in labels and "shape (3, 4)" in labels
    assert "first step" in labels and "zero gradients" in labels
    assert len({tuple(sorted(case.kwargs)) for case in cases}) >= 2   # defaults and explicit hyperparameters


@pytest.mark.parametrize("name", check.__all__)
def test_every_check_documents_its_signature(name):
    doc = getattr(check, name).__doc__
    assert doc.startswith("Check ``fn(") and check._SPECS[name]().signature.split(" ->")[0] in " ".join(doc.split())


def test_an_answer_that_changes_its_input_in_place_fails(capsys):
    def in_place(theta, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        new_theta, m2, v2 = adam_step(theta, grad, m, v, t, lr, betas, eps)
        theta[...] = new_theta
        return theta, m2, v2

    ok, out = verdict(capsys, "adam_step", in_place)
    assert ok is False and "changed its input theta in place" in out, out

    def clips_in_place(grads, clip_value):
        for g in grads:
            np.clip(g, -clip_value, clip_value, out=g)
        return grads

    ok, out = verdict(capsys, "clip_grad_value", clips_in_place)
    assert ok is False and "changed its input grads in place" in out, out


def test_wrong_return_values_get_clear_messages(capsys):
    ok, out = verdict(capsys, "adam_step", lambda *a, **k: None)
    assert not ok and "returned None" in out
    ok, out = verdict(capsys, "adam_step", lambda *a, **k: adam_step(*a, **k)[:2])
    assert not ok and "should return 3 values (theta, m, v), got 2" in out
    ok, out = verdict(capsys, "adam_step", lambda *a, **k: (adam_step(*a, **k)[0][None],) + adam_step(*a, **k)[1:])
    assert not ok and "theta has shape (1, 5), expected (5,)" in out
    ok, out = verdict(capsys, "adam_step", lambda *a, **k: tuple(x.astype(np.float32) for x in adam_step(*a, **k)))
    assert not ok and "float32 although the inputs are float64" in out
    ok, out = verdict(capsys, "warmup_cosine", lambda *a, **k: "0.1")
    assert not ok and "lr should be a number, got a str" in out


def test_a_wrong_signature_is_pointed_at(capsys):
    def other_names(theta, grad, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        return adam_step(theta, grad, m, v, t, lr, (beta1, beta2), eps)

    ok, out = verdict(capsys, "adam_step", other_names)
    assert not ok and "TypeError" in out and "Check the signature: fn(theta, grad, m, v, t" in out, out


def test_correct_answers_written_another_way_pass(capsys):
    # The issue's "exactly zero" differing by 4e-16: tolerances accept rounding of another order of operations.
    def adam_other_order(theta, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        b1, b2 = betas
        m = m + (1 - b1) * (grad - m)
        v = v * b2 + grad * grad * (1 - b2)
        step_size = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        return theta - step_size * m / (np.sqrt(v) + eps * math.sqrt(1 - b2**t)), m, v

    def adam_in_float64(theta, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        return adam_step(*(np.asarray(x, np.float64) for x in (theta, grad, m, v)), t, lr, betas, eps)

    assert verdict(capsys, "adam_step", adam_other_order)[0]
    assert verdict(capsys, "adam_step", adam_in_float64)[0]

    def clip_lists(grads, max_norm):  # returns a tuple of arrays and a numpy scalar
        total = np.sqrt(sum(np.vdot(g, g) for g in grads))
        return tuple(g * min(1.0, max_norm / (total + 1e-6)) for g in grads), total

    assert verdict(capsys, "clip_grad_norm", clip_lists)[0]


def test_a_step_that_is_off_says_by_how_much(capsys):
    ok, out = verdict(capsys, "adam_step", lambda *a, **k: (2 * adam_step(*a, **k)[0] - a[0],)
                      + adam_step(*a, **k)[1:])
    assert not ok and "your step is 2× too large" in out, out


def test_importing_optimlab_does_not_import_check():
    import subprocess
    import sys

    code = "import sys, optimlab; print('optimlab.check' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_an_ignored_argument_is_named(capsys):
    def fixed_betas(theta, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        return adam_step(theta, grad, m, v, t, lr, (0.9, 0.999), eps)

    ok, out = verdict(capsys, "adam_step", fixed_betas)
    assert not ok and "ignore its argument betas" in out, out


def test_right_first_steps_and_wrong_later_ones_are_told_apart(capsys):
    def always_t1(theta, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        return adam_step(theta, grad, m, v, 1, lr, betas, eps)

    ok, out = verdict(capsys, "adam_step", always_t1)
    assert not ok and "Your first steps are right; later steps" in out, out


def test_a_constant_answer_is_not_mistaken_for_a_named_mistake(capsys):
    ok, out = verdict(capsys, "lr_tolerance_width", lambda lrs, scores, tolerance: 1.0)
    assert not ok and "It looks like" not in out and "seems" not in out, out


def test_newton_schulz_with_the_gram_matrix_on_the_wrong_side_crashes_with_a_hint(capsys):
    def wrong_side(G, steps=5, coefficients=(3.4445, -4.7750, 2.0315), eps=1e-7):
        a, b, c = coefficients
        X = np.asarray(G, float) / max(np.linalg.norm(G), eps)
        for _ in range(steps):
            A = X.T @ X                       # n×n, multiplied on the left of an m×n X: fails unless m = n
            X = a * X + (b * A + c * A @ A) @ X
        return X

    ok, out = verdict(capsys, "newton_schulz", wrong_side)
    assert not ok and "crashed" in out and "XᵀX on the wrong side" in out, out


def test_the_schedule_free_reference_is_optimlab_sgd_schedule_free():
    """The check's reference, and the answer above, take the steps optimlab.SGDScheduleFree takes: y is the
    parameter in train mode, z its state, x the parameter in eval mode."""
    from optimlab import SGDScheduleFree

    reference = check._SPECS["schedule_free_step"]().reference
    rng = np.random.default_rng(5)
    for lr, beta, shape in ((0.3, 0.9, (5,)), (1.0, 0.5, (3, 4)), (0.05, 0.98, (7,))):
        theta = rng.standard_normal(shape)
        mine = ours = (theta.copy(), theta.copy(), theta.copy())
        opt = SGDScheduleFree([theta], lr=lr, momentum=beta).train()
        for t in range(1, 13):
            g = rng.standard_normal(shape)
            opt.step([g])
            mine, ours = schedule_free_step(*mine, g, t, lr, beta), reference(*ours, g, t, lr, beta)
            for y, z, x in (mine, ours):
                np.testing.assert_allclose(y, theta, rtol=1e-12, atol=1e-12)
                np.testing.assert_allclose(z, opt.state[0]["z"], rtol=1e-12, atol=1e-12)
                np.testing.assert_allclose(x, (theta - (1 - beta) * opt.state[0]["z"]) / beta, rtol=1e-10,
                                           atol=1e-12)
        opt.eval()
        np.testing.assert_allclose(mine[2], theta, rtol=1e-10, atol=1e-12)
