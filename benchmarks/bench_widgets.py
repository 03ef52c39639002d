"""How long a kernel-free widget takes to build, and how much it weighs in a page.

A realistic frame: contours of a 2-D ill-conditioned quadratic with a 100-step heavy-ball path (plain numpy)
and a goal-directed readout. 15 frames: one slider over the learning rate; 64 frames: learning rate x
momentum, 8 x 8. Reports wall-clock and CPU seconds (after one warm-up frame; imports excluded), the PNG
bytes, and the bytes of embedded widget state the page carries. Targets: 15 frames under 1.5 s and 1 MB,
64 frames under 5 s and 3 MB. On a shared machine the wall clock also counts other people's work; the CPU
time is this process's own.

    python benchmarks/bench_widgets.py
"""

from __future__ import annotations

import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from optimlab import plotting, widgets  # noqa: E402

CURVATURE = np.array([1.0, 20.0])  # f(x) = (x1^2 + 20 x2^2) / 2
START = np.array([-4.0, 1.5])
BOUNDS = ((-5.0, 5.0), (-3.0, 3.0))
TARGET = 1e-6


def loss(x: np.ndarray) -> np.ndarray:
    return 0.5 * (CURVATURE * x**2).sum(axis=-1)


def heavy_ball(lr: float, beta: float, steps: int = 100) -> np.ndarray:
    """Gradient descent with momentum (v <- beta v + g, x <- x - lr v), all iterates."""
    x, v = START.copy(), np.zeros(2)
    path = [x.copy()]
    with np.errstate(all="ignore"):
        for _ in range(steps):
            v = beta * v + CURVATURE * x
            x = x - lr * v
            path.append(x.copy())
    return np.array(path)


def readout(path: np.ndarray) -> str:
    with np.errstate(all="ignore"):
        f = loss(path)
    if not np.all(np.isfinite(f)) or f[-1] > f[0]:
        return "diverged"
    hit = np.flatnonzero(f <= TARGET)
    return f"steps to reach loss {TARGET:g}: {hit[0]}" if hit.size else f"loss after 100 steps: {f[-1]:.2e}"


def draw(lr: float, beta: float = 0.0):
    path = heavy_ball(lr, beta)
    name = "SGD" if beta == 0 else "Momentum"
    title = f"lr = {lr:.3g}, β = {beta:.2g}"
    return plotting.contour_paths(loss, BOUNDS, {name: path}, mark=(0, 0), title=title), readout(path)


def one_slider():
    return widgets.slider(draw, np.geomspace(0.005, 0.11, 15), label="learning rate")


def two_sliders():
    lrs, betas = np.geomspace(0.005, 0.1, 8), np.linspace(0, 0.9, 8)
    return widgets.slider2(draw, lrs, betas, labels=("learning rate", "momentum"))


def measure(build):
    wall, cpu = time.perf_counter(), time.process_time()
    w = build()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    frames = sum(isinstance(c, widgets.ipywidgets.Image) for c in widgets._tree(w))
    return frames, wall, cpu, widgets.png_bytes(w), widgets.page_bytes(w)


def main() -> None:
    plotting.to_png(draw(0.05)[0])  # warm-up: font cache, first contour
    head = ("widget", "frames", "wall s", "CPU s", "ms/frame", "PNG MB", "page MB")
    print("{:<10} {:>6} {:>7} {:>6} {:>8} {:>7} {:>8}  target".format(*head))
    cases = [("1 slider", one_slider, (1.5, 1e6)), ("2 sliders", two_sliders, (5.0, 3e6))]
    for name, build, (t_s, t_b) in cases:
        frames, wall, cpu, png, page = measure(build)
        ok = "ok" if wall < t_s and page < t_b else ("ok (CPU)" if cpu < t_s and page < t_b else "OVER")
        print(f"{name:<10} {frames:>6} {wall:>7.2f} {cpu:>6.2f} {1e3 * wall / frames:>8.1f} {png / 1e6:>7.2f}"
              f" {page / 1e6:>8.2f}  < {t_s:g} s, < {t_b / 1e6:g} MB: {ok}")


if __name__ == "__main__":
    main()
