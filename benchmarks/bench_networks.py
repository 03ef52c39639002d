"""The network problems' speed: a gradient per example, a sweep of 64 networks against a loop over 64, and a run
with the sharpness along training; reports figures, asserts nothing.

    python benchmarks/bench_networks.py

1. ``loss_and_grads`` of DigitsMLP, DigitsCNN, AddingGRU and TinyTransformer (pre- and post-LN) on a minibatch
   of 32 rows, float64 and float32: microseconds per example.
2. The networks as the chapters train them (float32, their sizes and minibatch sizes), 64 of them stacked on a
   leading run axis as ``experiments.sweep`` does it (every run on the same minibatch), against a loop over 64
   single networks running the same code: ``loss_and_grads`` alone, an AdamW step alone (one optimizer over
   the stacked arrays, a learning rate per run, against 64 optimizers), and 10 training steps of both.
   Target: the stacked runs at least 5x faster. Then one ``experiments.sweep`` end to end.

Sections 1 and 2 time the process's CPU time, not the wall clock, and report the median of several repeats:
on a shared machine the wall clock counts the time other processes hold the core, and the median of CPU time
moved by a few per cent between runs where the wall clock moved by a factor of two. The machine's load
average is printed before and after. Run with ``OPENBLAS_NUM_THREADS=1`` (as the course's CI does); the BLAS
thread count is printed.
3. What a chapter on the edge of stability runs: DigitsMLP, 300 steps of full-batch gradient descent with the
   sharpness (20 power iterations) every 10 steps. Target: every experiment a chapter runs within 10 s.
4. What the chapters run on TinyTransformer (300 Adam steps, minibatches of 64, one network; four learning rates
   stacked) and on the games: a round of GaussianMixtureGAN (a discriminator and a generator Adam step on 64
   points), per point, 64 stacked games against a loop over 64, 1,500 rounds; 10,000 bilinear games × 300 steps;
   REINFORCE on ShortCorridor, 300 steps of 4 episodes, one run and 64 stacked.
5. What bounds section 2's speed-ups. For each network of section 2: one network's ``loss_and_grads`` (the
   loop's cost per network) and a network's share of 64 and of 128 stacked runs; the same for a round of the
   GAN (both players' gradients and Adam steps, float64, as the chapters play it). The CNN, the GRU and the
   transformer compute a stack in blocks of a few runs, so their share does not fall with more runs: one
   network's time over it is the most any number of stacked runs can gain with this code. Then
   what numpy charges per float32 value for one addition, on a contiguous array and on a slice that takes 16
   values out of every 48 (a GRU's gate, when the three gates sit side by side in a row).
"""

from __future__ import annotations

import os
import time

import numpy as np

from optimlab import Adam, AdamW, experiments
from optimlab.problems import (
    AddingGRU,
    BilinearGame,
    DigitsCNN,
    DigitsMLP,
    GaussianMixtureGAN,
    ShortCorridor,
    TinyTransformer,
)
from optimlab.problems.games import play

NETWORKS = {
    "DigitsMLP(hidden=(32,))": lambda dtype: DigitsMLP(hidden=(32,), dtype=dtype),
    "DigitsCNN(channels=(8, 16))": lambda dtype: DigitsCNN(channels=(8, 16), dtype=dtype),
    "AddingGRU(T=30, hidden=16)": lambda dtype: AddingGRU(T=30, hidden=16, dtype=dtype),
    "TinyTransformer(norm='pre')": lambda dtype: TinyTransformer(norm="pre", dtype=dtype),
    "TinyTransformer(norm='post')": lambda dtype: TinyTransformer(norm="post", dtype=dtype),
}
BATCH, RUNS = 32, 64


def per_call(fn, repeat, number, clock, pick):
    """``pick`` (min or median) over ``repeat`` blocks of ``number`` calls of the time per call by ``clock``."""
    times = []
    for _ in range(repeat):
        start = clock()
        for _ in range(number):
            fn()
        times.append((clock() - start) / number)
    return float(pick(times))


def cpu_median(fn, repeat=7, number=1):
    """The median over ``repeat`` blocks of ``number`` calls of the process's CPU time per call."""
    return per_call(fn, repeat, number, time.process_time, np.median)


def best_of(fn, repeat=5, number=1):
    """The fastest of ``repeat`` blocks of ``number`` calls, per call: other work only ever adds time."""
    return per_call(fn, repeat, number, time.perf_counter, min)


def per_example():
    print(f"1. loss_and_grads on {BATCH} rows, per example")
    print(f"   {'network':30s} {'float64':>10s} {'float32':>10s}")
    for name, make in NETWORKS.items():
        row = []
        for dtype in (np.float64, np.float32):
            model = make(dtype)
            params, batch = model.init_params(0), np.arange(BATCH)
            row.append(cpu_median(lambda m=model, p=params, b=batch: m.loss_and_grads(p, b), number=10) / BATCH)
        print(f"   {name:30s} {row[0] * 1e6:8.1f} µs {row[1] * 1e6:8.1f} µs")


# What the chapters train (all float32): the network, its minibatch size, and where
CHAPTER_NETWORKS = {
    "DigitsMLP(hidden=(32,)), 32 rows": (lambda: DigitsMLP(hidden=(32,), dtype=np.float32), 32, "ch. 10, 14"),
    "DigitsCNN(), 32 rows": (lambda: DigitsCNN(dtype=np.float32), 32, "ch. 10, 15"),
    "AddingGRU(T=30, hidden=16), 32 rows": (lambda: AddingGRU(T=30, hidden=16, dtype=np.float32), 32, "ch. 9"),
    "AddingGRU(T=20, hidden=8), 32 rows": (lambda: AddingGRU(T=20, hidden=8, dtype=np.float32), 32, "ch. 15"),
    "TinyTransformer(16, pre), 16 rows": (lambda: TinyTransformer(d_model=16, d_ff=32, length=4, dtype=np.float32),
                                          16, "ch. 8, 12, 15"),
    "TinyTransformer(16, post), 16 rows": (lambda: TinyTransformer(norm="post", d_model=16, d_ff=32, length=4,
                                                                   dtype=np.float32), 16, "ch. 8"),
}


def adamw(model, params, lrs):
    """AdamW on ``params``: stacked arrays with one learning rate per run (as experiments.sweep sets them up), or
    one network's arrays with one learning rate."""
    lrs = np.asarray(lrs, dtype=float)
    stacked = params[0].ndim > len(model.param_shapes[0])
    return AdamW([{"params": [p], "lr": lrs.reshape((-1,) + (1,) * len(shape)) if stacked else float(lrs)}
                  for p, shape in zip(params, model.param_shapes)])


def training_steps(model, params, lrs, batch_size, steps, seed=0):
    """``steps`` AdamW steps on ``params`` (updated in place) on minibatches of ``batch_size`` rows drawn with
    ``seed``."""
    opt = adamw(model, params, lrs)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        opt.step(model.loss_and_grads(params, rng.choice(model.n_train, batch_size, replace=False))[1])


def stacked_and_loop(model, batch_size, lrs, steps):
    """CPU seconds of the stacked runs and of the loop over single networks: loss_and_grads, an AdamW step, and
    ``steps`` training steps, as three pairs."""
    start = model.init_params(0)
    stacked = model.repeat_params(start, len(lrs))
    singles = [[p.copy() for p in start] for _ in lrs]
    batch = np.random.default_rng(0).choice(model.n_train, batch_size, replace=False)
    grads = model.loss_and_grads(stacked, batch)[1]
    single_grads = model.loss_and_grads(singles[0], batch)[1]
    opt = adamw(model, stacked, lrs)
    opts = [adamw(model, params, lr) for params, lr in zip(singles, lrs)]
    return [
        (cpu_median(lambda: model.loss_and_grads(stacked, batch)),
         cpu_median(lambda: [model.loss_and_grads(params, batch) for params in singles], repeat=5)),
        (cpu_median(lambda: opt.step(grads), number=20),
         cpu_median(lambda: [o.step(single_grads) for o in opts], repeat=5)),
        (cpu_median(lambda: training_steps(model, model.repeat_params(start, len(lrs)), lrs, batch_size, steps),
                    repeat=3),
         cpu_median(lambda: [training_steps(model, [p.copy() for p in start], lr, batch_size, steps) for lr in lrs],
                    repeat=3)),
    ]


def sweep_against_loop(steps=10):
    print(f"\n2. {RUNS} networks stacked against a loop over {RUNS} single networks (the same code), float32, "
          f"CPU time, median of repeats; AdamW with one learning rate per run")
    print(f"   {'network, minibatch':36s} {'loss_and_grads':>28s} {'AdamW step':>28s} {steps:>14d} training steps")
    print(f"   {'':36s}" + f"{'stacked     loop':>24s}    " * 3 + "  target ≥ 5x")
    lrs = np.geomspace(1e-4, 1e-1, RUNS)
    make, batch_size, _ = next(iter(CHAPTER_NETWORKS.values()))
    stacked_and_loop(make(), batch_size, lrs, 1)  # warm-up: the first row measured in a process read ~1.8x slow
    for name, (make, batch_size, where) in CHAPTER_NETWORKS.items():
        pairs = stacked_and_loop(make(), batch_size, lrs, steps)
        cells = [f"{together * 1e3:9.2f} {one_by_one * 1e3:9.2f} ms {one_by_one / together:4.1f}x"
                 for together, one_by_one in pairs]
        verdict = "met" if pairs[2][1] >= 5 * pairs[2][0] else "not met"
        print(f"   {name:36s} {'  '.join(cells)}  {verdict} ({where})", flush=True)
    model = NETWORKS["DigitsMLP(hidden=(32,))"](np.float64)
    end_to_end = best_of(lambda: experiments.sweep(model, "AdamW", steps=100, lr=lrs), repeat=2)
    print(f"   experiments.sweep, DigitsMLP, 64 learning rates x 100 steps, with its bookkeeping and the final "
          f"test accuracy: {end_to_end:.2f} s (wall clock)")


def sharpness_run():
    model = DigitsMLP(hidden=(32,))
    print("\n3. DigitsMLP(hidden=(32,)), 300 steps of full-batch gradient descent (lr 0.5)")
    plain = best_of(lambda: experiments.run(model, "SGD", steps=300, lr=0.5, batch_size=None), repeat=2)
    tracked = best_of(lambda: experiments.run(model, "SGD", steps=300, lr=0.5, batch_size=None,
                                              sharpness_every=10), repeat=2)
    one = best_of(lambda: model.sharpness(model.init_params(0)), repeat=3)
    print(f"   without the sharpness: {plain:.2f} s; with it every 10 steps (31 estimates): {tracked:.2f} s "
          f"(target ≤ 10 s: {'met' if tracked <= 10 else 'not met'}); one estimate: {one * 1e3:.0f} ms")


def gan_rounds(gan, runs, steps):
    """``steps`` rounds of ``play`` (Adam, β₁ = 0.5, for both players) of ``runs`` stacked games (0: one game)."""
    starts = [gan.init_params(s) for s in range(max(runs, 1))]
    if runs:
        D = [np.stack(a) for a in zip(*(s[0] for s in starts))]
        G = [np.stack(a) for a in zip(*(s[1] for s in starts))]
    else:
        D, G = starts[0]
    play(gan, Adam(D, lr=1e-3, betas=(0.5, 0.999)), Adam(G, lr=1e-3, betas=(0.5, 0.999)), D, G, steps,
         rng=np.random.default_rng(0))


def chapter_runs():
    print("\n4. What the chapters run on the transformer and the games")
    for norm in ("pre", "post"):
        model = TinyTransformer(norm=norm)
        one = best_of(lambda m=model: experiments.run(m, "Adam", steps=300, lr=3e-3, batch_size=64), repeat=2)
        four = best_of(lambda m=model: experiments.sweep(m, "Adam", steps=300, lr=[1e-3, 3e-3, 1e-2, 3e-2],
                                                         batch_size=64), repeat=2)
        print(f"   TinyTransformer(norm={norm!r}), 300 Adam steps on 64 sequences: one run {one:.2f} s, four learning "
              f"rates stacked {four:.2f} s (target ≤ 10 s: {'met' if max(one, four) <= 10 else 'not met'})")
    gan = GaussianMixtureGAN()
    one_round = best_of(lambda: gan_rounds(gan, 0, 20), repeat=3) / 20
    print(f"   GaussianMixtureGAN(), one round (both players' loss_and_grads and Adam steps, 64 points): "
          f"{one_round * 1e3:.2f} ms, {one_round / gan.batch_size * 1e6:.1f} µs per point")
    together = best_of(lambda: gan_rounds(gan, RUNS, 20), repeat=3)
    one_by_one = best_of(lambda: [gan_rounds(gan, 0, 20) for _ in range(RUNS)], repeat=2)
    print(f"   {RUNS} games x 20 rounds: stacked {together:.3f} s, loop {one_by_one:.3f} s: "
          f"{one_by_one / together:.1f}x (target ≥ 5x: {'met' if one_by_one >= 5 * together else 'not met'})")
    long = best_of(lambda: gan_rounds(gan, 4, 1500), repeat=1)
    print(f"   four games stacked x 1,500 rounds (a chapter's β₁ comparison): {long:.1f} s "
          f"(target ≤ 10 s: {'met' if long <= 10 else 'not met'})")
    game = BilinearGame()
    spiral = best_of(lambda: game.trajectory(300, lr=0.2, momentum=np.linspace(-0.9, 0.9, 10_000),
                                             alternating=True), repeat=3)
    print(f"   BilinearGame.trajectory, 10,000 momenta x 300 steps: {spiral * 1e3:.0f} ms")
    corridor = ShortCorridor(episodes=4)
    one = best_of(lambda: experiments.run(corridor, "SGD", steps=300, lr=2e-3), repeat=3)
    many = best_of(lambda: experiments.sweep(corridor, "SGD", steps=300, lr=np.geomspace(1e-4, 1e-2, RUNS)), repeat=3)
    print(f"   ShortCorridor(episodes=4), 300 REINFORCE steps: one run {one:.2f} s, {RUNS} learning rates "
          f"stacked {many:.2f} s")


def stacked_call(model, runs, batch):
    """A function that computes ``loss_and_grads`` of ``runs`` stacked copies of the model's first network (None:
    the network alone)."""
    params = model.init_params(0) if runs is None else model.repeat_params(model.init_params(0), runs)
    return lambda: model.loss_and_grads(params, batch)


def per_value_add(shape, view):
    """Nanoseconds per value of ``np.add`` into ``out``, float32, on ``view`` of arrays of ``shape``."""
    rng = np.random.default_rng(0)
    a, b, out = (view(rng.random(shape, dtype=np.float32)) for _ in range(3))
    return cpu_median(lambda: np.add(a, b, out=out), number=2000) / a.size * 1e9


def cnn_products(model, images, runs=RUNS):
    """CPU seconds per run of the matrix products of one ``loss_and_grads`` of ``model`` (a DigitsCNN) on
    ``images`` images: ``runs`` stacked runs in the model's blocks, or one network alone (``runs=None``). They are
    each convolution's product, its kernel's gradient and (but the first) its input's gradient, and the linear
    head's three."""
    rng = np.random.default_rng(0)
    lead = () if runs is None else (min(runs, model.n_runs_per_block(images)),)
    shapes, side, c_in = [], model.image_size, 1
    for c_out in model.channels:
        rows, patch = images * side * side, 9 * c_in
        shapes += [(rows, patch, c_out), (patch, rows, c_out)] + ([(rows, c_out, patch)] if c_in > 1 else [])
        side, c_in = side // 2, c_out
    shapes += [(images, model.n_hidden, 10), (model.n_hidden, images, 10), (images, 10, model.n_hidden)]
    products = []
    for m, k, n in shapes:
        a, b = (rng.random(lead + shape, dtype=np.float32) for shape in ((m, k), (k, n)))
        products.append((a, b, np.empty(lead + (m, n), dtype=np.float32)))
    return cpu_median(lambda: [np.matmul(a, b, out=out) for a, b, out in products], number=10) / max(lead, default=1)


def bounds():
    print(f"\n5. What bounds section 2: one network's loss_and_grads alone against a network's share of a stack of "
          f"{RUNS} and of {2 * RUNS} (CPU time, float32)")
    print(f"   {'network, minibatch':36s} {'alone':>9s} {'in ' + str(RUNS):>10s} {'in ' + str(2 * RUNS):>10s} "
          f"{'speed-up':>9s}")

    def row(name, alone, share):
        """alone: one network's time; share(runs): a run's share of ``runs`` stacked."""
        one, shares = alone(), [share(runs) for runs in (RUNS, 2 * RUNS)]
        print(f"   {name:36s} {one * 1e6:6.0f} µs {shares[0] * 1e6:7.0f} µs {shares[1] * 1e6:7.0f} µs "
              f"{one / min(shares):8.1f}x", flush=True)

    for name, (make, batch_size, _) in CHAPTER_NETWORKS.items():
        model = make()
        batch = np.random.default_rng(0).choice(model.n_train, batch_size, replace=False)
        row(name, lambda m=model, b=batch: cpu_median(stacked_call(m, None, b), number=20),
            lambda runs, m=model, b=batch: cpu_median(stacked_call(m, runs, b)) / runs)
    gan, steps = GaussianMixtureGAN(), 20
    row("GaussianMixtureGAN(), a round", lambda: cpu_median(lambda: gan_rounds(gan, 0, steps)) / steps,
        lambda runs: cpu_median(lambda: gan_rounds(gan, runs, steps)) / steps / runs)
    cnn = DigitsCNN(dtype=np.float32)
    alone, stacked = cnn_products(cnn, 32, None), cnn_products(cnn, 32)
    print(f"   DigitsCNN(), 32 images, its matrix products alone (np.matmul into out): one network "
          f"{alone * 1e6:.0f} µs; {RUNS} stacked in its blocks {stacked * 1e6:.0f} µs a run")
    print("   np.add, float32, in cache: 16,384 contiguous values "
          f"{per_value_add((16384,), lambda a: a):.2f} ns a value; 16 of every 48 (a GRU's gate, 4,096 values) "
          f"{per_value_add((8, 32, 48), lambda a: a[..., :16]):.2f} ns a value")


if __name__ == "__main__":
    print(f"numpy {np.__version__}, OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, "
          f"load average {os.getloadavg()[0]:.1f}\n")
    per_example()
    sweep_against_loop()
    sharpness_run()
    chapter_runs()
    bounds()
    print(f"\nload average {os.getloadavg()[0]:.1f}")
