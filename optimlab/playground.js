// optimlab's playground: every optimizer of the course on the 2-D problems, in the browser.
//
// The update rules below follow optimlab/optimizers.py line for line, in the book's notation (θ parameters,
// g gradient, η learning rate, t step from 1, β momentum coefficients, m and v moments, ε eps, λ weight decay),
// with the same order of operations, so a path computed here is optimlab's path to rounding
// (tests/test_playground.py checks every optimizer on every problem against optimlab, in node and in Chromium).
// The problems follow optimlab/problems.py, the schedules optimlab/schedules.py (closed forms), and the loop
// optimlab/experiments.py's run(): the learning rate of step t is lr·schedule(t); Sophia refreshes its Hessian
// estimate every `hessian_every` steps (t = 0, k, 2k, ... before the step) and steps with bs = 1, its estimate
// being the exact Hessian diagonal clamped at 0 (experiments.run draws a Hutchinson estimate instead).
//
// No dependency, no network. The page gets `window.optimlabPlayground`:
//   run(optimizer, problem, hyperparameters, x0, steps) -> [[x, y], ...]   (steps + 1 points, the start first)
// with torch's names ("Adam", {lr: 0.01, betas: [0.9, 0.999]}) and the course's ("Momentum", "Nesterov",
// "Sophia"); `problem` is "ravine", "rosenbrock", "beale" or "saddle", or {name: "ravine", condition_number,
// angle}. hyperparameters.schedule is "constant" (default), "cosine" or "warmup_cosine" (with warmup_steps,
// default steps/10): the multiplier cosine_schedule(1, T_max=steps) or
// warmup_cosine_schedule(1, warmup_steps, total_steps=steps) of optimlab.schedules.
// mount(element, config) builds the interactive figure; optimlab.widgets.playground() writes both inline.
(function (global) {
  "use strict";


  // ------------------------------------------------------------------------------------- exact arithmetic
  // The rules use + − × ÷ and √, which are correctly rounded in JavaScript as in numpy, so they agree bit for
  // bit. Three primitives would not: Math.pow, Math.cos and Math.sin may differ from the C library's (which
  // Python's `**` and math.cos use) in the last bit, and numpy's 2×2 matrix products use fused multiply-adds.
  // A last-bit difference can grow along a path (an adaptive method circling a minimum amplifies it), so these
  // are computed here in double-double arithmetic (about 106 bits), then rounded once; sin and cos exactly as
  // optimlab/_trig.py computes them (the ravine's rotation uses those), and powers of the problems'
  // coordinates as products (y·y·y), as optimlab's problems write them. The schedules' cosine and the
  // optimizers' βᵗ are rounded correctly here, as the C library rounds them but for about one argument in a
  // thousand (an isolated step, a last-bit change the cross-check has not seen grow).

  function twoSum(a, b) { const s = a + b, bb = s - a; return [s, (a - (s - bb)) + (b - bb)]; }
  function quick(hi, lo) { const s = hi + lo; return [s, lo - (s - hi)]; }
  function split(a) { const c = 134217729 * a, hi = c - (c - a); return [hi, a - hi]; }
  function twoProd(a, b) {
    const p = a * b, [ah, al] = split(a), [bh, bl] = split(b);
    return [p, ((ah * bh - p) + ah * bl + al * bh) + al * bl];
  }
  function ddMul(a, b) { const [p, e] = twoProd(a[0], b[0]); return quick(p, e + (a[0] * b[1] + a[1] * b[0])); }
  function ddAdd(a, b) { const [s, e] = twoSum(a[0], b[0]); return quick(s, e + a[1] + b[1]); }
  function ddDiv(a, d) {                                     // a / d, d a small integer
    const q = a[0] / d, [p, e] = twoProd(q, d);
    return quick(q, ((a[0] - p) - e + a[1]) / d);
  }
  // fma(a, b, c) = a·b + c rounded once
  function fma(a, b, c) { const [p, e] = twoProd(a, b), [s, t] = twoSum(p, c); return s + (t + e); }

  function powInt(b, n) {                                    // bⁿ for an integer n >= 0, by squaring
    let r = [1, 0], x = [b, 0];
    for (; n > 0; n >>= 1) { if (n & 1) r = ddMul(r, x); if (n > 1) x = ddMul(x, x); }
    return r[0];
  }

  const LN2 = [0.6931471805599453, 2.3190468138462996e-17];
  function ddExp(z) {                                        // e^z: z = k ln2 + r, e^r = (e^(r/1024))^1024
    const k = Math.round(z[0] / LN2[0]);
    let r = ddAdd(z, [-k * LN2[0], -k * LN2[1]]);
    r = [r[0] / 1024, r[1] / 1024];
    let sum = [1, 0], term = [1, 0];
    for (let n = 1; n <= 14; n++) { term = ddDiv(ddMul(term, r), n); sum = ddAdd(sum, term); }
    for (let i = 0; i < 10; i++) sum = ddMul(sum, sum);
    return [sum[0] * 2 ** k, sum[1] * 2 ** k];
  }
  function pow(b, y) {                                       // b^y for b > 0, as C's pow
    if (Number.isInteger(y) && y >= 0 && y <= 1e6) return powInt(b, y);
    if (b === 0.96) return quick(...ddExp(ddMul([y, 0], [-0.040821994520255166, -8.893492737632459e-19])))[0];
    return Math.pow(b, y);
  }

  // (1 − β₂ᵗ)^0.5 as optimlab (and torch) compute it, with the C library's pow: that is √, rounded correctly,
  // except at 1 − 2⁻⁵³ (reached for many steps in a row once β₂ᵗ < 1.7e-16), which pow rounds up to 1; elsewhere
  // pow and √ differ in the last bit for about one argument in a thousand, an isolated step
  const rootOfBiasCorrection = x => (x === 1 - 2 ** -53 ? 1 : Math.sqrt(x));

  // sin and cos, as optimlab/_trig.py computes them (the same operations, so the same bits): x = kπ/2 + r with
  // |r| <= π/4 in double-double, then the Taylor series of sin r and cos r, rounded once
  const HALF_PI = [1.5707963267948966, 6.123233995736766e-17];
  function sinCos(x) {                                       // [sin x, cos x]
    if (!(Math.abs(x) <= 1e5)) return [Math.sin(x), Math.cos(x)];
    const k = Math.floor(x / HALF_PI[0] + 0.5);
    const r = ddAdd(ddAdd([x, 0], twoProd(-k, HALF_PI[0])), [-k * HALF_PI[1], 0]), r2 = ddMul(r, r);
    let sin = r, cos = [1, 0], term = r, cterm = [1, 0];
    for (let n = 1; n <= 13; n++) {
      term = ddDiv(ddMul(term, r2), -(2 * n) * (2 * n + 1)); sin = ddAdd(sin, term);
      cterm = ddDiv(ddMul(cterm, r2), -(2 * n - 1) * (2 * n)); cos = ddAdd(cos, cterm);
    }
    const S = sin[0] + sin[1], C = cos[0] + cos[1], q = ((k % 4) + 4) % 4;
    return [[S, C, -S][q] ?? -C, [C, -S, -C][q] ?? S];
  }
  const cos = x => sinCos(x)[1];

  // ---------------------------------------------------------------------------------------------- problems

  function ravine(spec) {
    const kappa = spec.condition_number === undefined ? 10.0 : spec.condition_number;
    const angle = spec.angle === undefined ? 0.0 : spec.angle;
    if (!(kappa >= 1) || !Number.isFinite(kappa)) throw new Error(`condition_number must be >= 1, got ${kappa}`);
    if (!Number.isFinite(angle)) throw new Error(`angle must be finite, got ${angle}`);
    // eigenvalues μ = 1/κ and μκ, rotated by the angle: A = Q diag(μ, μκ) Qᵀ
    const mu = 1.0 / kappa, L = mu * kappa, [s, c] = sinCos(angle);
    // as numpy's matrix products compute them: (Q diag) Qᵀ, each entry one fused multiply-add
    const a00 = fma(-s * L, -s, c * mu * c), a01 = fma(-s * L, c, c * mu * s);
    const a10 = fma(c * L, -s, s * mu * c), a11 = fma(c * L, c, s * mu * s);
    const corners = [[5, 2], [5, -2], [-5, 2], [-5, -2]].map(([u, w]) => [u * c + w * -s, u * s + w * c]);
    const hx = Math.max(...corners.map(p => Math.abs(p[0]))), hy = Math.max(...corners.map(p => Math.abs(p[1])));
    return {
      name: "ravine", x0: [c * -4.0 + -s * 1.5, s * -4.0 + c * 1.5], xStar: [0, 0], fStar: 0,
      bounds: [[-hx, hx], [-hy, hy]],
      loss: (x, y) => 0.5 * (x * (x * a00 + y * a10) + y * (x * a01 + y * a11)),
      grad: (x, y) => [fma(y, a10, x * a00), fma(y, a11, x * a01)],      // g = (θ − θ*) A
      hessianDiagonal: () => [a00, a11],
    };
  }

  function rosenbrock() {
    const a = 1.0, b = 100.0;
    return {
      name: "rosenbrock", x0: [-1.2, 1.0], xStar: [1, 1], fStar: 0, bounds: [[-2, 2], [-1, 3]],
      loss: (x, y) => (a - x) ** 2 + b * (y - x * x) ** 2,
      grad: (x, y) => {
        const valley = y - x * x;
        return [-2.0 * (a - x) - 4.0 * b * x * valley, 2.0 * b * valley];
      },
      hessianDiagonal: (x, y) => [2.0 - 4.0 * b * (y - x * x) + 8.0 * b * x * x, 2.0 * b],
    };
  }

  function beale() {
    const cs = [1.5, 2.25, 2.625];
    // r_i = c_i − x + x yⁱ, with ∂r_i/∂x = yⁱ − 1 and ∂r_i/∂y = i x yⁱ⁻¹; powers as products (y·y·y), as optimlab
    const parts = (x, y) => {
      const y2 = y * y, ys = [1.0, y, y2, y2 * y];
      return cs.map((c, k) => {
        const i = k + 1;
        return {r: c - x + x * ys[i], du: ys[i] - 1.0, dv: i * x * ys[i - 1], i, yi2: ys[Math.max(i - 2, 0)]};
      });
    };
    const sum = (ps, f) => ps.reduce((acc, p) => acc + f(p), 0.0);
    return {
      name: "beale", x0: [1.0, 1.5], xStar: [3, 0.5], fStar: 0, bounds: [[-4.5, 4.5], [-4.5, 4.5]],
      loss: (x, y) => sum(parts(x, y), p => p.r * p.r),
      grad: (x, y) => {
        const ps = parts(x, y);
        return [2.0 * sum(ps, p => p.r * p.du), 2.0 * sum(ps, p => p.r * p.dv)];
      },
      hessianDiagonal: (x, y) => {
        const ps = parts(x, y);
        return [2.0 * sum(ps, p => p.du * p.du), 2.0 * sum(ps, p => p.dv * p.dv + p.r * (p.i * (p.i - 1) * x * p.yi2))];
      },
    };
  }

  function saddle() {
    const a = 1.0, c = 1.0;
    return {
      name: "saddle", x0: [2.0, 1e-3], xStar: [0, 1], fStar: -c / 4.0, bounds: [[-2.5, 2.5], [-1.6, 1.6]],
      loss: (x, y) => 0.5 * a * x * x + c * (0.25 * (y * y) * (y * y) - 0.5 * (y * y)),
      grad: (x, y) => [a * x, c * (y * y * y - y)],
      hessianDiagonal: (x, y) => [a, c * (3.0 * y * y - 1.0)],
    };
  }

  const PROBLEMS = {ravine, rosenbrock, beale, saddle};

  function problem(spec) {
    const s = typeof spec === "string" ? {name: spec} : spec;
    const make = s && PROBLEMS[String(s.name).toLowerCase()];
    if (!make) throw new Error(`problem must be one of ${Object.keys(PROBLEMS).join(", ")}, got ${JSON.stringify(spec)}`);
    return make(s);
  }

  // ------------------------------------------------------------------------------------------- optimizers
  // Each optimizer: defaults (torch's names and values, the course's for Momentum and Nesterov), the state
  // it starts with, and its rule, which updates θ (a 2-array) in place from g. `decay` says how
  // weight_decay acts: "l2" (g ← g + λθ), "decoupled" (θ ← θ(1 − ηλ)) or the name of the switch.

  const ADAM_LIKE = {betas: [0.9, 0.999], eps: 1e-8, weight_decay: 0.0};
  const sqr = g => g * g;

  function ema(m, g, beta) {            // m ← m + (1−β)(g − m), as optimlab.optimizers.ema (torch's lerp)
    for (let i = 0; i < 2; i++) m[i] += (g[i] - m[i]) * (1 - beta);
  }

  function emaOfSquare(v, g, beta) {    // v ← βv + (1−β)g²
    for (let i = 0; i < 2; i++) { v[i] *= beta; v[i] += sqr(g[i]) * (1 - beta); }
  }

  const sgd = {
    defaults: {lr: 1e-3, momentum: 0.0, dampening: 0.0, weight_decay: 0.0, nesterov: false},
    decay: "l2",
    init: h => (h.momentum !== 0 ? {m: null} : {}),
    rule(theta, g, s, t, h) {
      const beta = h.momentum;
      let d = g;
      if ("m" in s && beta !== 0) {
        if (s.m === null) {
          s.m = [g[0], g[1]];                      // the first buffer is g itself
        } else {
          for (let i = 0; i < 2; i++) { s.m[i] *= beta; s.m[i] += g[i] * (1 - h.dampening); }  // m ← βm + (1−τ)g
        }
        d = h.nesterov ? [g[0] + s.m[0] * beta, g[1] + s.m[1] * beta] : s.m;               // d = g + βm
      }
      for (let i = 0; i < 2; i++) theta[i] -= d[i] * h.lr;                                   // θ ← θ − ηd
    },
  };

  const OPTIMIZERS = {
    SGD: sgd,
    Momentum: {...sgd, defaults: {...sgd.defaults, momentum: 0.9}},
    Nesterov: {...sgd, defaults: {...sgd.defaults, momentum: 0.9, nesterov: true}},

    Adagrad: {
      defaults: {lr: 1e-2, lr_decay: 0.0, weight_decay: 0.0, initial_accumulator_value: 0.0, eps: 1e-10,
        eps_inside_sqrt: false},
      decay: "l2",
      init: h => ({v: [h.initial_accumulator_value, h.initial_accumulator_value]}),
      rule(theta, g, s, t, h) {
        const lr = h.lr / (1 + (t - 1) * h.lr_decay);
        for (let i = 0; i < 2; i++) {
          s.v[i] += sqr(g[i]);                                                               // v ← v + g²
          const denom = h.eps_inside_sqrt ? Math.sqrt(s.v[i] + h.eps) : Math.sqrt(s.v[i]) + h.eps;
          theta[i] -= (g[i] / denom) * lr;                                                   // θ ← θ − η g/(√v + ε)
        }
      },
    },

    RMSprop: {
      defaults: {lr: 1e-2, alpha: 0.99, eps: 1e-8, weight_decay: 0.0, momentum: 0.0, centered: false,
        eps_inside_sqrt: false},
      decay: "l2",
      init: h => ({v: [0, 0], m: h.momentum !== 0 ? [0, 0] : null, gbar: h.centered ? [0, 0] : null}),
      rule(theta, g, s, t, h) {
        const alpha = h.alpha;
        for (let i = 0; i < 2; i++) {
          s.v[i] *= alpha; s.v[i] += sqr(g[i]) * (1 - alpha);                              // v ← αv + (1−α)g²
          let variance = s.v[i];
          if (s.gbar) {
            s.gbar[i] += (g[i] - s.gbar[i]) * (1 - alpha);                                  // ḡ ← ḡ + (1−α)(g − ḡ)
            variance = s.v[i] - s.gbar[i] * s.gbar[i];                                      // v − ḡ²
          }
          const denom = h.eps_inside_sqrt ? Math.sqrt(variance + h.eps) : Math.sqrt(variance) + h.eps;
          let step = g[i] / denom;
          if (s.m) { s.m[i] *= h.momentum; s.m[i] += step; step = s.m[i]; }                 // m ← βm + g/(√v + ε)
          theta[i] -= step * h.lr;
        }
      },
    },

    Adam: {
      defaults: {lr: 1e-3, ...ADAM_LIKE, amsgrad: false, decoupled_weight_decay: false},
      decay: "decoupled_weight_decay",
      init: h => ({m: [0, 0], v: [0, 0], vmax: h.amsgrad ? [0, 0] : null}),
      rule(theta, g, s, t, h) {
        const [beta1, beta2] = h.betas;
        ema(s.m, g, beta1);                                                                  // m ← m + (1−β₁)(g − m)
        emaOfSquare(s.v, g, beta2);                                                          // v ← β₂v + (1−β₂)g²
        let v = s.v;
        if (s.vmax) { for (let i = 0; i < 2; i++) s.vmax[i] = Math.max(s.vmax[i], s.v[i]); v = s.vmax; }
        const bc1 = 1 - pow(beta1, t), rootBc2 = rootOfBiasCorrection(1 - pow(beta2, t));
        // θ ← θ − η√(1−β₂ᵗ)/(1−β₁ᵗ) · m/(√v + ε√(1−β₂ᵗ))
        for (let i = 0; i < 2; i++) theta[i] -= (s.m[i] / (Math.sqrt(v[i]) + h.eps * rootBc2)) * (h.lr * (rootBc2 / bc1));
      },
    },

    Adamax: {
      defaults: {lr: 2e-3, ...ADAM_LIKE},
      decay: "l2",
      init: () => ({m: [0, 0], u: [0, 0]}),
      rule(theta, g, s, t, h) {
        const [beta1, beta2] = h.betas;
        ema(s.m, g, beta1);
        for (let i = 0; i < 2; i++) {
          s.u[i] *= beta2; s.u[i] = Math.max(s.u[i], Math.abs(g[i]) + h.eps);               // u ← max(β₂u, |g| + ε)
          theta[i] -= (s.m[i] / s.u[i]) * (h.lr / (1 - pow(beta1, t)));                        // θ ← θ − η/(1−β₁ᵗ)·m/u
        }
      },
    },

    NAdam: {
      defaults: {lr: 2e-3, ...ADAM_LIKE, momentum_decay: 4e-3, decoupled_weight_decay: false},
      decay: "decoupled_weight_decay",
      init: () => ({m: [0, 0], v: [0, 0], muProduct: 1.0}),
      begin(s, t, h) {                                   // μ_t = β₁(1 − ½·0.96^(tψ)), Π_t = Π_{t−1} μ_t
        const beta1 = h.betas[0], psi = h.momentum_decay;
        s.mu = beta1 * (1 - 0.5 * pow(0.96, t * psi));
        s.muNext = beta1 * (1 - 0.5 * pow(0.96, (t + 1) * psi));
        s.muProduct = s.muProduct * s.mu;
      },
      rule(theta, g, s, t, h) {
        const [beta1, beta2] = h.betas, lr = h.lr, prod = s.muProduct;
        ema(s.m, g, beta1);
        emaOfSquare(s.v, g, beta2);
        const c1 = lr * (1 - s.mu) / (1 - prod), c2 = lr * s.muNext / (1 - prod * s.muNext);
        for (let i = 0; i < 2; i++) {
          const d = Math.sqrt(s.v[i] / (1 - pow(beta2, t))) + h.eps;                           // d = √(v/(1−β₂ᵗ)) + ε
          theta[i] -= (g[i] / d) * c1;                                                       // the gradient's share
          theta[i] -= (s.m[i] / d) * c2;                                                     // the momentum's
        }
      },
    },

    RAdam: {
      defaults: {lr: 1e-3, ...ADAM_LIKE, decoupled_weight_decay: false},
      decay: "decoupled_weight_decay",
      init: () => ({m: [0, 0], v: [0, 0]}),
      rule(theta, g, s, t, h) {
        const [beta1, beta2] = h.betas;
        ema(s.m, g, beta1);
        emaOfSquare(s.v, g, beta2);
        const bc1 = 1 - pow(beta1, t), bc2 = 1 - pow(beta2, t);
        const rhoInf = 2 / (1 - beta2) - 1, rho = rhoInf - 2 * t * pow(beta2, t) / bc2;
        const rectified = rho > 5;
        const r = rectified ? Math.sqrt((rho - 4) * (rho - 2) * rhoInf / ((rhoInf - 4) * (rhoInf - 2) * rho)) : 0;
        for (let i = 0; i < 2; i++) {
          // d = r·√(1−β₂ᵗ)/(√v + ε) once ρ_t > 5, else 1 (a plain momentum step);  θ ← θ − η m̂ d
          const d = rectified ? (rootOfBiasCorrection(bc2) / (Math.sqrt(s.v[i]) + h.eps)) * r : 1.0;
          theta[i] -= ((s.m[i] / bc1) * h.lr) * d;
        }
      },
    },

    Lion: {
      defaults: {lr: 1e-4, betas: [0.9, 0.99], weight_decay: 0.0},
      decay: "decoupled",
      init: () => ({m: [0, 0]}),
      rule(theta, g, s, t, h) {
        const [beta1, beta2] = h.betas;
        for (let i = 0; i < 2; i++) {
          const c = s.m[i] * beta1 + g[i] * (1 - beta1);                                    // c = β₁m + (1−β₁)g
          theta[i] -= Math.sign(c) * h.lr;                                                   // θ ← θ − η sign(c)
          s.m[i] *= beta2; s.m[i] += g[i] * (1 - beta2);                                    // m ← β₂m + (1−β₂)g
        }
      },
    },

    Sophia: {
      defaults: {lr: 1e-4, betas: [0.965, 0.99], rho: 0.04, weight_decay: 1e-1, hessian_every: 10},
      decay: "decoupled",
      init: () => ({m: [0, 0], hess: [0, 0]}),
      refresh(s, estimate, h) {                                                              // h ← β₂h + (1−β₂)ĥ
        for (let i = 0; i < 2; i++) { s.hess[i] *= h.betas[1]; s.hess[i] += (1 - h.betas[1]) * estimate[i]; }
      },
      rule(theta, g, s, t, h) {
        const beta1 = h.betas[0], bs = 1;
        for (let i = 0; i < 2; i++) {
          s.m[i] *= beta1; s.m[i] += g[i] * (1 - beta1);                                    // m ← β₁m + (1−β₁)g
          const d = Math.min(Math.abs(s.m[i]) / (s.hess[i] * (h.rho * bs) + 1e-15), 1);     // min(|m|/(ρbh), 1)
          theta[i] -= d * Math.sign(s.m[i]) * h.lr;                                          // θ ← θ − η sign(m) d
        }
      },
    },
  };
  OPTIMIZERS.AdamW = {
    ...OPTIMIZERS.Adam,
    defaults: {lr: 1e-3, ...ADAM_LIKE, weight_decay: 1e-2, amsgrad: false},
    decay: "decoupled",
  };
  const ALIASES = {adagrad: "Adagrad", sophiag: "Sophia", "heavy-ball": "Momentum"};
  const BY_LOWER = Object.fromEntries(Object.keys(OPTIMIZERS).map(k => [k.toLowerCase(), k]));

  function optimizerName(name) {
    const key = ALIASES[String(name).toLowerCase()] || BY_LOWER[String(name).toLowerCase()];
    if (!key) throw new Error(`optimizer must be one of ${Object.keys(OPTIMIZERS).join(", ")}, got ${JSON.stringify(name)}`);
    return key;
  }

  // ------------------------------------------------------------------------------------------- schedules

  const cosineBetween = (lr, etaMin, t, T) => etaMin + (lr - etaMin) * (1 + cos(Math.PI * t / T)) / 2;

  function schedule(h, steps) {
    const name = h.schedule || "constant";
    if (name === "constant") return null;
    if (name === "cosine") return k => cosineBetween(1.0, 0.0, k, steps);       // cosine_schedule(1, T_max=steps)
    if (name === "warmup_cosine") {                   // warmup_cosine_schedule(1, warmup_steps=W, total_steps=steps)
      const W = h.warmup_steps === undefined ? Math.round(steps / 10) : h.warmup_steps;
      if (!(Number.isInteger(W) && W >= 0 && W < steps)) throw new Error(`warmup_steps must be an integer in [0, steps), got ${W}`);
      return k => (k < W ? 1.0 * (0.0 + (1 - 0.0) * k / Math.max(W, 1))
        : cosineBetween(1.0, 0.0, Math.min(Math.max(k - W, 0), steps - W), steps - W));
    }
    throw new Error(`schedule must be "constant", "cosine" or "warmup_cosine", got ${JSON.stringify(name)}`);
  }

  // ---------------------------------------------------------------------------------------------- the run

  const LOOP_KEYS = ["schedule", "warmup_steps"];

  function hyperparameters(opt, given) {
    const h = {...opt.defaults};
    for (const [k, v] of Object.entries(given || {})) {
      if (LOOP_KEYS.includes(k)) continue;
      if (!(k in h) && k !== "maximize") throw new Error(`unknown hyperparameter ${k} (this optimizer takes ${Object.keys(h).join(", ")})`);
      h[k] = Array.isArray(v) ? v.slice() : v;
    }
    h.maximize = Boolean(h.maximize);
    return h;
  }

  function run(optimizer, problemSpec, given, x0, steps) {
    const name = optimizerName(optimizer);
    const opt = OPTIMIZERS[name], p = problem(problemSpec);
    if (!(Number.isInteger(steps) && steps >= 1)) throw new Error(`steps must be a positive integer, got ${steps}`);
    const h = hyperparameters(opt, given);
    const sched = schedule(given || {}, steps), baseLr = h.lr;
    const theta = x0 ? [Number(x0[0]), Number(x0[1])] : p.x0.slice();
    const s = opt.init(h);
    const decoupled = opt.decay === "decoupled" || (opt.decay !== "l2" && Boolean(h[opt.decay]));
    const path = [theta.slice()];
    for (let t = 0; t < steps; t++) {
      if (sched) h.lr = baseLr * sched(t);
      let g = p.grad(theta[0], theta[1]);
      if (opt.refresh && t % h.hessian_every === 0) {
        opt.refresh(s, p.hessianDiagonal(theta[0], theta[1]).map(e => Math.max(e, 0.0)), h);
      }
      const step = t + 1;
      if (opt.begin) opt.begin(s, step, h);
      if (h.maximize) g = [-g[0], -g[1]];
      const wd = h.weight_decay || 0;
      if (wd !== 0) {
        if (decoupled) { const f = 1 - h.lr * wd; theta[0] *= f; theta[1] *= f; }   // θ ← θ(1 − ηλ)
        else g = [g[0] + theta[0] * wd, g[1] + theta[1] * wd];                         // g ← g + λθ
      }
      opt.rule(theta, g, s, step, h);
      path.push(theta.slice());
    }
    return path;
  }

  function losses(problemSpec, path) {
    const p = problem(problemSpec);
    return path.map(([x, y]) => p.loss(x, y));
  }


  // ------------------------------------------------------------------------------------- the interactive figure
  // mount(root, config) fills `root` (it holds a static picture until then) with the controls and two canvases.
  // config: {problem, condition_number, angle, steps, schedule, x0, slots: [{optimizer, hyper}], styles, lrs}
  // (written by optimlab.widgets.playground). Every change recomputes the paths and redraws at once.

  const KNOBS = {                 // the sliders each optimizer shows: [key, label, kind]
    SGD: [["lr", "learning rate η", "log"]],
    Momentum: [["lr", "learning rate η", "log"], ["momentum", "momentum β", "beta"]],
    Adagrad: [["lr", "learning rate η", "log"]],
    RMSprop: [["lr", "learning rate η", "log"], ["alpha", "decay α (β₂)", "beta2"]],
    Adam: [["lr", "learning rate η", "log"], ["betas.0", "β₁", "beta"], ["betas.1", "β₂", "beta2"]],
    Lion: [["lr", "learning rate η", "log"], ["betas.0", "β₁", "beta"], ["betas.1", "β₂", "beta2"]],
    Sophia: [["lr", "learning rate η", "log"], ["betas.0", "β₁", "beta"], ["rho", "clip ρ", "log"]],
  };
  KNOBS.Nesterov = KNOBS.Momentum;
  for (const n of ["AdamW", "Adamax", "NAdam", "RAdam"]) KNOBS[n] = KNOBS.Adam;
  // weight decay λ, as optimlab applies it: decoupled (θ ← θ(1 − ηλ)) for AdamW, Lion and Sophia, added to the
  // gradient (g ← g + λθ, torch's weight_decay) for the others
  for (const n of Object.keys(KNOBS)) {
    const decoupled = ["AdamW", "Lion", "Sophia"].includes(n);
    KNOBS[n] = [...KNOBS[n], ["weight_decay", `weight decay λ (${decoupled ? "decoupled" : "in the gradient"})`, "wd"]];
  }
  const RANGES = {log: [-5, 1], rho: [-3, 1]};

  const fmt = {                   // values at the precision that matters
    log: v => (v >= 0.01 ? Number(v.toPrecision(3)).toString() : v.toExponential(2).replace("e", "e")),
    beta: v => v.toFixed(3),
    beta2: v => v.toFixed(Math.max(2, Math.ceil(-Math.log10(Math.max(1 - v, 1e-9))) + 1)),
    wd: v => (v === 0 ? "0 (off)" : Number(v.toPrecision(2)).toString()),
  };
  // slider position (0..1000) <-> value
  const scale = {
    log: (key) => { const [a, b] = key === "rho" ? RANGES.rho : RANGES.log;
      return {to: u => 10 ** (a + (b - a) * u / 1000), from: v => Math.round(1000 * (Math.log10(v) - a) / (b - a))}; },
    beta: () => ({to: u => 0.999 * u / 1000, from: v => Math.round(1000 * v / 0.999)}),
    beta2: () => ({to: u => 1 - 10 ** (-0.3 - 3.7 * u / 1000), from: v => Math.round(1000 * (-Math.log10(1 - v) - 0.3) / 3.7)}),
    // 0 at the left end (off), then 10⁻⁴ to 1 on a log scale
    wd: () => ({to: u => (u <= 0 ? 0 : 10 ** (-4 + 4 * (u - 1) / 999)),
      from: v => (v <= 0 ? 0 : Math.min(1000, Math.max(1, 1 + Math.round(999 * (Math.log10(v) + 4) / 4))))}),
  };

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c);
    return e;
  }

  function getKnob(h, key) { const [a, i] = key.split("."); return i === undefined ? h[a] : h[a][Number(i)]; }
  function setKnob(h, key, v) { const [a, i] = key.split("."); if (i === undefined) h[a] = v; else h[a][Number(i)] = v; }

  function marker(ctx, shape, x, y, r) {
    ctx.beginPath();
    const poly = (n, rot, rr = r) => { for (let k = 0; k <= n; k++) { const a = rot + 2 * Math.PI * k / n; ctx.lineTo(x + rr * Math.cos(a), y + rr * Math.sin(a)); } };
    if (shape === "o") ctx.arc(x, y, r, 0, 2 * Math.PI);
    else if (shape === "s") poly(4, Math.PI / 4, r * 1.2);
    else if (shape === "D") poly(4, 0, r * 1.3);
    else if (shape === "^") poly(3, -Math.PI / 2, r * 1.3);
    else if (shape === "v") poly(3, Math.PI / 2, r * 1.3);
    else if (shape === "<") poly(3, Math.PI, r * 1.3);
    else if (shape === ">") poly(3, 0, r * 1.3);
    else if (shape === "h") poly(6, Math.PI / 2, r * 1.2);
    else if (shape === "*" || shape === "P" || shape === "X") {
      const n = shape === "*" ? 5 : 4, rot = shape === "X" ? Math.PI / 4 : -Math.PI / 2;
      for (let k = 0; k <= 2 * n; k++) { const a = rot + Math.PI * k / n, rr = k % 2 ? r * 0.55 : r * 1.4; ctx.lineTo(x + rr * Math.cos(a), y + rr * Math.sin(a)); }
    } else ctx.arc(x, y, r, 0, 2 * Math.PI);
    ctx.closePath();
  }

  function mount(root, config) {
    const live = root.querySelector(".olp-live"), still = root.querySelector(".olp-static");
    const styles = config.styles, lrs = config.lrs;
    const state = {
      problem: config.problem, condition_number: config.condition_number, angle: config.angle,
      steps: config.steps, schedule: config.schedule, x0: config.x0 ? config.x0.slice() : null,
      slots: [0, 1, 2].map(i => {
        const s = config.slots[i];
        return s ? {optimizer: s.optimizer, hyper: {...defaultsFor(s.optimizer, config.problem), ...clone(s.hyper)}} : {optimizer: "", hyper: {}};
      }),
    };
    function clone(h) { return JSON.parse(JSON.stringify(h || {})); }
    function defaultsFor(name, prob) {
      const d = clone(OPTIMIZERS[name].defaults);
      d.lr = (lrs[prob] && lrs[prob][name]) || d.lr;
      return d;
    }
    const uid = root.id;
    const field = (label, control, out) => el("div", {class: "olp-field"}, el("label", {for: control.id, text: label}), control, out || "");

    // problem controls
    const problemSelect = el("select", {id: uid + "-problem"});
    for (const n of ["ravine", "rosenbrock", "beale", "saddle"]) problemSelect.append(el("option", {value: n, text: n}));
    const kappa = el("input", {type: "range", id: uid + "-kappa", min: 0, max: 1000, "aria-label": "condition number κ"});
    const kappaOut = el("output", {for: uid + "-kappa"});
    const angle = el("input", {type: "range", id: uid + "-angle", min: -90, max: 90, step: 1, "aria-label": "angle of the valley"});
    const angleOut = el("output", {for: uid + "-angle"});
    const steps = el("input", {type: "range", id: uid + "-steps", min: 10, max: 1000, step: 10});
    const stepsOut = el("output", {for: uid + "-steps"});
    const sched = el("select", {id: uid + "-schedule"});
    for (const [v, t] of [["constant", "constant"], ["cosine", "cosine"], ["warmup_cosine", "warm-up + cosine"]]) sched.append(el("option", {value: v, text: t}));
    const ravineFields = el("div", {class: "olp-row"}, field("condition number κ", kappa, kappaOut), field("valley angle", angle, angleOut));
    const reset = el("button", {type: "button", text: "reset start"});
    const top = el("div", {class: "olp-row"}, field("problem", problemSelect), field("steps", steps, stepsOut),
      field("learning-rate schedule", sched), reset);
    const slotBox = el("div", {class: "olp-slots"});
    const plot = el("canvas", {width: 480, height: 384, class: "olp-plot", tabindex: 0, role: "img"});
    const lossPlot = el("canvas", {width: 480, height: 210, class: "olp-loss", role: "img"});
    // the contour plot's frame inside its canvas: room on the left and below for the ticks and the axis labels
    const frame = {left: 44, top: 8, right: 462, bottom: 346};
    const frameW = frame.right - frame.left, frameH = frame.bottom - frame.top;
    const readout = el("p", {class: "olp-readout", "aria-live": "polite"});
    const hint = el("p", {class: "olp-hint", text: "Drag the start point (or focus the plot and use the arrow keys); every change redraws at once."});
    live.append(top, ravineFields, slotBox, el("div", {class: "olp-plots"}, plot, lossPlot), readout, hint);

    function slotControls(i) {
      const slot = state.slots[i], box = el("fieldset", {class: "olp-slot"});
      const select = el("select", {id: `${uid}-opt${i}`});
      select.append(el("option", {value: "", text: "(none)"}));
      for (const n of Object.keys(OPTIMIZERS)) select.append(el("option", {value: n, text: n}));
      select.value = slot.optimizer;
      const swatch = el("span", {class: "olp-swatch", "aria-hidden": "true"});
      if (slot.optimizer) swatch.style.background = styles[slot.optimizer].color;
      box.append(el("legend", {}, swatch, `optimizer ${i + 1}`), field("method", select));
      select.addEventListener("change", () => {
        state.slots[i] = select.value ? {optimizer: select.value, hyper: defaultsFor(select.value, state.problem)} : {optimizer: "", hyper: {}};
        buildSlots(); update();
      });
      for (const [key, label, kind] of (slot.optimizer ? KNOBS[slot.optimizer] : [])) {
        const id = `${uid}-opt${i}-${key.replace(".", "")}`;
        const sc = scale[kind](key), input = el("input", {type: "range", id, min: 0, max: 1000, step: 1});
        const out = el("output", {for: id});
        const format = key === "rho" ? fmt.log : fmt[kind];
        input.value = sc.from(getKnob(slot.hyper, key));
        out.textContent = format(getKnob(slot.hyper, key));
        input.addEventListener("input", () => {
          const v = sc.to(Number(input.value));
          setKnob(slot.hyper, key, v); out.textContent = format(v);
          input.setAttribute("aria-valuetext", out.textContent);
          update();
        });
        input.setAttribute("aria-valuetext", out.textContent);
        box.append(field(label, input, out));
      }
      return box;
    }
    function buildSlots() { slotBox.replaceChildren(...[0, 1, 2].map(slotControls)); }

    let P = null, background = null, box = null, stars = null;
    function problemSpec() { return {name: state.problem, condition_number: state.condition_number, angle: state.angle * Math.PI / 180}; }
    function setProblem() {
      P = problem(problemSpec());
      box = P.bounds;
      if (!state.x0) state.x0 = P.x0.slice();
      ravineFields.hidden = state.problem !== "ravine";
      background = drawBackground();
      plot.setAttribute("aria-label", `contours of the ${state.problem} problem with the optimizers' paths; start at (${state.x0.map(v => v.toFixed(2)).join(", ")})`);
    }
    const toPx = (x, y) => [frame.left + (x - box[0][0]) / (box[0][1] - box[0][0]) * frameW,
      frame.top + (box[1][1] - y) / (box[1][1] - box[1][0]) * frameH];
    const fromPx = (px, py) => [box[0][0] + (px - frame.left) / frameW * (box[0][1] - box[0][0]),
      box[1][1] - (py - frame.top) / frameH * (box[1][1] - box[1][0])];

    // The contours: the loss at every pixel of the frame, banded between 14 levels spaced geometrically above
    // the minimum, in plotting's greys, a darker pixel where the band changes. Redrawn when the problem changes
    // (a move of κ or the angle): one pass for the loss, one for the bands (a logarithm, not a search through
    // the levels), one writing whole pixels, so it stays a few milliseconds.
    const z = new Float64Array(frameW * frameH), band = new Uint8Array(frameW * frameH);
    const image = new ImageData(frameW, frameH), pixels = new Uint32Array(image.data.buffer);
    const offscreen = document.createElement("canvas");
    offscreen.width = frameW; offscreen.height = frameH;
    function drawBackground() {
      const W = frameW, H = frameH, loss = P.loss;
      const x0 = box[0][0], dx = (box[0][1] - box[0][0]) / W, y1 = box[1][1], dy = (box[1][1] - box[1][0]) / H;
      let zmin = Infinity, zmax = -Infinity;
      for (let j = 0, k = 0; j < H; j++) {
        const y = y1 - (j + 0.5) * dy;
        for (let i = 0; i < W; i++, k++) {
          const v = loss(x0 + (i + 0.5) * dx, y);
          z[k] = v; if (v < zmin) zmin = v; if (v > zmax) zmax = v;
        }
      }
      // level k (0..n−1) = zmin + floor·(span/floor)^(k/(n−1)); a pixel's band is the number of levels below it
      const n = 14, span = zmax - zmin, floor = span * 1e-4, perLevel = (n - 1) / Math.log(span / floor);
      for (let k = 0; k < W * H; k++) {
        const above = (z[k] - zmin) / floor;
        band[k] = above <= 1 ? 0 : Math.min(n, Math.ceil(Math.log(above) * perLevel));
      }
      const grey = Array.from({length: n + 1}, (_, b) => Math.round(255 - (255 - 205) * b / n)).concat([150]);
      const rgba = grey.map(g => (255 << 24 | g << 16 | g << 8 | g) >>> 0);       // little-endian RGBA
      for (let k = 0; k < W * H; k++) {
        const b = band[k], edge = ((k + 1) % W !== 0 && band[k + 1] !== b) || (k + W < W * H && band[k + W] !== b);
        pixels[k] = rgba[edge ? n + 1 : b];
      }
      offscreen.getContext("2d").putImageData(image, 0, 0);
      return offscreen;
    }

    const niceStep = span => {                  // 1, 2 or 5 × 10^k, giving about five ticks over the span
      const raw = span / 5, p = 10 ** Math.floor(Math.log10(raw)), r = raw / p;
      return p * (r < 1.5 ? 1 : r < 3.5 ? 2 : 5);
    };
    function drawAxes(ctx) {
      ctx.fillStyle = "#333"; ctx.strokeStyle = "#555"; ctx.lineWidth = 1; ctx.font = "12px sans-serif";
      ctx.strokeRect(frame.left - 0.5, frame.top - 0.5, frameW + 1, frameH + 1);
      for (const axis of [0, 1]) {
        const [lo, hi] = box[axis], step = niceStep(hi - lo), digits = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
        for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + 1e-9 * step; v += step) {
          const label = (Math.abs(v) < step / 2 ? 0 : v).toFixed(digits);
          ctx.beginPath();
          if (axis === 0) {
            const [px] = toPx(v, 0);
            ctx.moveTo(px, frame.bottom); ctx.lineTo(px, frame.bottom + 4); ctx.stroke();
            ctx.textAlign = "center"; ctx.textBaseline = "top"; ctx.fillText(label, px, frame.bottom + 5);
          } else {
            const [, py] = toPx(0, v);
            ctx.moveTo(frame.left - 4, py); ctx.lineTo(frame.left, py); ctx.stroke();
            ctx.textAlign = "right"; ctx.textBaseline = "middle"; ctx.fillText(label, frame.left - 6, py);
          }
        }
      }
      ctx.font = "italic 13px serif"; ctx.textAlign = "center"; ctx.textBaseline = "bottom";
      ctx.fillText("x", frame.left + frameW / 2, plot.height - 1);
      ctx.textBaseline = "middle"; ctx.fillText("y", 8, frame.top + frameH / 2);
      ctx.textAlign = "start"; ctx.textBaseline = "alphabetic";
    }

    function compute() {
      const spec = problemSpec(), hyperOf = slot => ({...slot.hyper, schedule: state.schedule});
      return state.slots.filter(s => s.optimizer).map(s => {
        const path = run(s.optimizer, spec, hyperOf(s), state.x0, state.steps);
        return {name: s.optimizer, path, losses: path.map(([x, y]) => P.loss(x, y) - P.fStar)};
      });
    }

    function drawPaths(runs) {
      const ctx = plot.getContext("2d");
      ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, plot.width, plot.height);
      ctx.drawImage(background, frame.left, frame.top);
      drawAxes(ctx);
      ctx.save();
      ctx.beginPath(); ctx.rect(frame.left, frame.top, frameW, frameH); ctx.clip();
      for (const r of runs) {
        const st = styles[r.name];
        ctx.strokeStyle = st.color; ctx.fillStyle = st.color; ctx.lineWidth = 2;
        ctx.setLineDash(st.dash);
        ctx.beginPath();
        let last = null;
        for (const [x, y] of r.path) {
          if (!Number.isFinite(x) || !Number.isFinite(y) || Math.abs(x) > 1e6 || Math.abs(y) > 1e6) break;
          const [px, py] = toPx(x, y); ctx.lineTo(px, py); last = [px, py];
        }
        ctx.stroke(); ctx.setLineDash([]);
        const every = Math.max(1, Math.floor(r.path.length / 40));
        for (let k = 0; k < r.path.length; k += every) {
          const [x, y] = r.path[k]; if (!Number.isFinite(x + y)) break;
          const [px, py] = toPx(x, y); marker(ctx, st.marker, px, py, 2.5); ctx.fill();
        }
        if (last) { marker(ctx, st.marker, last[0], last[1], 5.5); ctx.fill(); ctx.strokeStyle = "#fff"; ctx.lineWidth = 1; ctx.stroke(); }
      }
      const [sx, sy] = toPx(...state.x0);
      ctx.beginPath(); ctx.arc(sx, sy, 7, 0, 2 * Math.PI); ctx.fillStyle = "#fff"; ctx.fill();
      ctx.lineWidth = 2; ctx.strokeStyle = "#000"; ctx.stroke();
      const [mx, my] = toPx(...P.xStar);
      marker(ctx, "*", mx, my, 7); ctx.fillStyle = "#fff"; ctx.fill(); ctx.strokeStyle = "#000"; ctx.lineWidth = 1; ctx.stroke();
      ctx.restore();
    }

    function drawLosses(runs) {
      // the frame: tick labels on the left, the title above it, the step axis below (nothing overlaps the curves)
      const ctx = lossPlot.getContext("2d"), W = lossPlot.width, H = lossPlot.height, left = 48, bottom = 22, pad = 8, top = 26;
      ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, H);
      let lo = Infinity, hi = -Infinity;
      for (const r of runs) for (const f of r.losses) if (f > 0 && Number.isFinite(f)) { lo = Math.min(lo, f); hi = Math.max(hi, f); }
      if (!(lo < Infinity)) { lo = 1e-8; hi = 1; }
      let a = Math.floor(Math.log10(Math.max(lo, 1e-16))), b = Math.ceil(Math.log10(hi));
      if (b <= a) b = a + 1;
      const X = k => left + (W - left - pad) * k / state.steps, Y = f => top + (H - top - bottom) * (b - Math.log10(Math.max(f, 1e-300))) / (b - a);
      ctx.strokeStyle = "#e3e3e3"; ctx.lineWidth = 1; ctx.fillStyle = "#333"; ctx.font = "12px sans-serif";
      const every = Math.max(1, Math.ceil((b - a) / 5));
      ctx.textAlign = "right"; ctx.textBaseline = "middle";
      for (let e = a; e <= b; e += every) {
        ctx.beginPath(); ctx.moveTo(left, Y(10 ** e)); ctx.lineTo(W - pad, Y(10 ** e)); ctx.stroke();
        ctx.fillText(`1e${e}`, left - 5, Y(10 ** e));
      }
      ctx.textBaseline = "bottom";
      ctx.textAlign = "left"; ctx.fillText("0", left, H - 3);
      ctx.textAlign = "center"; ctx.fillText("step", left + (W - left - pad) / 2, H - 3);
      ctx.textAlign = "right"; ctx.fillText(String(state.steps), W - pad, H - 3);
      ctx.textAlign = "left"; ctx.textBaseline = "top"; ctx.fillText("f − f*, log scale", left, 4);
      ctx.textAlign = "start"; ctx.textBaseline = "alphabetic";
      ctx.save(); ctx.beginPath(); ctx.rect(left, top - 4, W - left, H - top - bottom + 8); ctx.clip();
      for (const r of runs) {
        const st = styles[r.name];
        ctx.strokeStyle = st.color; ctx.lineWidth = 1.8; ctx.setLineDash(st.dash); ctx.beginPath();
        r.losses.forEach((f, k) => { if (Number.isFinite(f)) ctx.lineTo(X(k), Y(f)); });
        ctx.stroke();
      }
      ctx.restore(); ctx.setLineDash([]);
    }

    const instance = {lastUpdateMs: 0, updates: 0, state};
    function update() {
      const t0 = performance.now();
      const runs = compute();
      drawPaths(runs); drawLosses(runs);
      instance.lastUpdateMs = performance.now() - t0; instance.updates += 1;
      readout.textContent = runs.map(r => {
        const f = r.losses[r.losses.length - 1];
        return `${r.name}: f − f* = ${Number.isFinite(f) && Math.abs(f) < 1e12 ? f.toExponential(2) : "diverged"}`;
      }).join("; ") + ` after ${state.steps} steps.`;
      lossPlot.setAttribute("aria-label", "loss curves: " + readout.textContent);
    }
    instance.update = update;

    function syncProblemControls() {
      problemSelect.value = state.problem;
      kappa.value = Math.round(1000 * Math.log10(state.condition_number) / 3);
      kappaOut.textContent = Number(state.condition_number.toPrecision(3)).toString();
      angle.value = state.angle; angleOut.textContent = `${state.angle}°`;
      steps.value = state.steps; stepsOut.textContent = String(state.steps);
      sched.value = state.schedule;
    }
    problemSelect.addEventListener("change", () => {
      state.problem = problemSelect.value; state.x0 = null;
      for (const s of state.slots) if (s.optimizer) s.hyper.lr = defaultsFor(s.optimizer, state.problem).lr;
      buildSlots(); setProblem(); update();
    });
    kappa.addEventListener("input", () => {
      state.condition_number = Number((10 ** (3 * kappa.value / 1000)).toPrecision(3));
      kappaOut.textContent = String(state.condition_number); setProblem(); update();
    });
    angle.addEventListener("input", () => { state.angle = Number(angle.value); angleOut.textContent = `${state.angle}°`; state.x0 = null; setProblem(); update(); });
    steps.addEventListener("input", () => { state.steps = Number(steps.value); stepsOut.textContent = steps.value; update(); });
    sched.addEventListener("change", () => { state.schedule = sched.value; update(); });
    reset.addEventListener("click", () => { state.x0 = P.x0.slice(); update(); });

    let pending = null;
    function moveTo(ev) {
      const r = plot.getBoundingClientRect();
      const p = fromPx((ev.clientX - r.left) * plot.width / r.width, (ev.clientY - r.top) * plot.height / r.height);
      pending = p;
      requestAnimationFrame(() => { if (pending) { state.x0 = pending; pending = null; update(); } });
    }
    plot.addEventListener("pointerdown", ev => {
      plot.setPointerCapture(ev.pointerId); plot.focus({preventScroll: true}); moveTo(ev); ev.preventDefault();
    });
    // Keys pressed in the playground are the playground's: JupyterLab's notebook shortcuts (arrow keys move
    // between cells) would otherwise take them from a focused slider or the plot.
    root.addEventListener("keydown", ev => ev.stopPropagation());
    plot.addEventListener("pointermove", ev => { if (plot.hasPointerCapture(ev.pointerId)) moveTo(ev); });
    plot.addEventListener("keydown", ev => {
      const d = {ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1]}[ev.key];
      if (!d) return;
      const f = ev.shiftKey ? 0.1 : 0.01;
      state.x0 = [state.x0[0] + d[0] * f * (box[0][1] - box[0][0]), state.x0[1] + d[1] * f * (box[1][1] - box[1][0])];
      ev.preventDefault(); update();
    });

    syncProblemControls(); buildSlots(); setProblem(); update();
    if (still) still.hidden = true;
    live.hidden = false;
    root.optimlabPlayground = instance;
    return instance;
  }

  const api = {
    run, losses, problem, mount, _sinCos: sinCos, _pow: pow,
    optimizers: Object.keys(OPTIMIZERS),
    defaults: name => ({...OPTIMIZERS[optimizerName(name)].defaults}),
    problems: Object.keys(PROBLEMS),
  };
  global.optimlabPlayground = Object.assign(global.optimlabPlayground || {}, api);
})(globalThis);
