"""optimlab.plotting: each figure draws what it promises, survives divergence, renders reproducibly."""

import io
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
PIL = pytest.importorskip("PIL")
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import PathPatch  # noqa: E402
from PIL import Image  # noqa: E402

from optimlab import plotting  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
CURVATURE = np.array([1.0, 10.0])
BOUNDS = ((-3.0, 3.0), (-2.0, 2.0))


def quadratic(x):
    return 0.5 * (CURVATURE * x**2).sum(axis=-1)


def descent(lr, steps=30, start=(-2.5, 1.5)):
    x = np.array(start, dtype=float)
    out = [x.copy()]
    with np.errstate(all="ignore"):
        for _ in range(steps):
            x = x - lr * CURVATURE * x
            out.append(x.copy())
    return np.array(out)


def path_lines(ax):
    return [line for line in ax.get_lines() if str(line.get_gid()).startswith("path:")]


def curve_lines(ax):
    return [line for line in ax.get_lines() if str(line.get_gid()).startswith("curve:")]


def png_image(data):
    return Image.open(io.BytesIO(data))


# -- style ---------------------------------------------------------------------------------------------------


def test_every_optimizer_has_a_fixed_distinct_look():
    looks = {}
    for name, s in plotting.OPTIMIZER_STYLES.items():
        looks.setdefault((s.color, s.marker, s.linestyle), []).append(name)
    assert all(len(names) == 1 or set(names) == {"SGD", "GD"} for names in looks.values())
    # Names match loosely, so chapters need not agree on capitalisation.
    rmsprop = plotting.OPTIMIZER_STYLES["RMSprop"]
    assert plotting.style_for("rmsprop") == plotting.style_for("RMSProp") == rmsprop
    assert plotting.style_for("adam-w") == plotting.OPTIMIZER_STYLES["AdamW"]
    assert plotting.style_for("my variant") is None


def test_line_styles_never_reuse_a_colour_within_a_figure():
    styles = plotting.line_styles(["Adam", "lr = 0.1", "lr = 0.01", "SGD", "warmup"])
    assert styles["Adam"] == plotting.OPTIMIZER_STYLES["Adam"]
    assert styles["SGD"] == plotting.OPTIMIZER_STYLES["SGD"]
    colours = [s.color for s in styles.values()]
    assert len(set(colours)) == len(colours)


def test_same_optimizer_same_colour_in_every_kind_of_figure():
    adam = plotting.OPTIMIZER_STYLES["Adam"].color
    fig = plotting.contour_paths(quadratic, BOUNDS, {"Adam": descent(0.05), "Lion": descent(0.1)})
    (line,) = [ln for ln in path_lines(fig.axes[0]) if ln.get_gid() == "path:Adam"]
    assert to_hex(line.get_color()) == to_hex(adam)
    fig = plotting.loss_curves({"SGD": np.ones(5), "Adam": np.ones(5)})
    (line,) = [ln for ln in curve_lines(fig.axes[0]) if ln.get_gid() == "curve:Adam"]
    assert to_hex(line.get_color()) == to_hex(adam)


def test_style_context_sets_and_restores_rcparams():
    before = matplotlib.rcParams["axes.grid"]
    with plotting.style():
        assert matplotlib.rcParams["axes.grid"] is True
        assert matplotlib.rcParams["font.size"] == plotting.STYLE["font.size"]
    assert matplotlib.rcParams["axes.grid"] == before


# -- contours ------------------------------------------------------------------------------------------------


def test_contour_paths_draws_one_line_per_path_with_start_end_and_minimum():
    paths = {"SGD": descent(0.05), "Momentum": descent(0.1), "Adam": descent(0.15)}
    fig = plotting.contour_paths(quadratic, BOUNDS, paths, mark=(0, 0), title="ravine")
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    lines = path_lines(ax)
    assert len(lines) == len(paths)
    assert [ln.get_label() for ln in lines] == list(paths)
    np.testing.assert_allclose(lines[0].get_xydata(), paths["SGD"])
    assert len(ax.images) == 1 and len(ax.collections) >= 1  # the bands between levels and contour lines
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["SGD", "Momentum", "Adam", "start", "minimum"]
    assert ax.get_title() == "ravine"
    assert ax.get_xlim() == (-3.0, 3.0) and ax.get_ylim() == (-2.0, 2.0)


def test_contour_paths_survives_diverged_paths():
    nan_path = descent(0.05)
    nan_path[10:] = np.nan
    inf_path = descent(0.05)
    inf_path[5] = [np.inf, -np.inf]
    exploding = descent(0.25, steps=400)  # |1 - 0.25 * 10| = 1.5: reaches 1e70 and beyond, then inf and nan
    all_nan = np.full((10, 2), np.nan)
    paths = {"SGD": nan_path, "Adam": inf_path, "Lion": exploding, "RMSprop": all_nan,
             "AdaGrad": descent(0.05)}
    fig = plotting.contour_paths(quadratic, BOUNDS, paths)
    ax = fig.axes[0]
    labels = {ln.get_gid(): ln.get_label() for ln in path_lines(ax)}
    assert labels == {
        "path:SGD": "SGD (diverged)", "path:Adam": "Adam (diverged)", "path:Lion": "Lion (diverged)",
        "path:RMSprop": "RMSprop (diverged)", "path:AdaGrad": "AdaGrad",
    }
    for line in ax.get_lines():
        assert np.all(np.isfinite(line.get_xydata()))
    # The exploding path stops near the plot, along its own last direction, instead of at 1e70.
    (lion,) = [ln for ln in path_lines(ax) if ln.get_gid() == "path:Lion"]
    xy = lion.get_xydata()
    assert np.abs(xy).max() <= 101 * 6
    a, b = exploding[len(xy) - 2], exploding[len(xy) - 1]
    u, v = xy[-1] - a, b - a
    assert abs(u[0] * v[1] - u[1] * v[0]) <= 1e-9 * np.hypot(*u) * np.hypot(*v)
    assert plotting.to_png(fig)  # and it renders


def test_contour_paths_levels_and_odd_losses():
    # Negative losses: log levels sit above the minimum.
    saddle = lambda x: x[..., 0] ** 2 - x[..., 1] ** 2  # noqa: E731
    for kwargs in ({}, {"log_levels": False}, {"levels": [-1.0, 0.0, 1.0, 2.0]}):
        fig = plotting.contour_paths(saddle, BOUNDS, {"SGD": descent(0.01)}, **kwargs)
        assert len(path_lines(fig.axes[0])) == 1
    flat = lambda x: np.zeros(x.shape[:-1])  # noqa: E731 (no contour to draw: still a valid figure)
    assert len(plotting.contour_paths(flat, BOUNDS).axes) == 1
    holes = lambda x: np.where(x[..., 0] > 0, np.nan, quadratic(x))  # noqa: E731
    plotting.to_png(plotting.contour_paths(holes, BOUNDS, {"SGD": descent(0.05)}))


def test_contour_paths_draws_into_a_given_axis():
    fig = plotting.figure(9, 3.6)
    left, right = fig.subplots(1, 2)
    assert plotting.contour_paths(quadratic, BOUNDS, {"SGD": descent(0.05)}, ax=right) is fig
    assert len(path_lines(right)) == 1 and not path_lines(left)


def test_contour_paths_names_bad_arguments():
    with pytest.raises(ValueError, match="bounds"):
        plotting.contour_paths(quadratic, (1, 0, 0, 1))
    with pytest.raises(ValueError, match="loss_fn"):
        plotting.contour_paths(lambda x: x, BOUNDS)
    with pytest.raises(ValueError, match=r"\(T, 2\)"):
        plotting.contour_paths(quadratic, BOUNDS, {"SGD": np.zeros((5, 3))})


# -- curves --------------------------------------------------------------------------------------------------


def test_loss_curves_lines_target_and_divergence():
    steps = np.arange(50)
    losses = {
        "SGD": 10 * 0.9**steps,
        "Adam": 10 * 0.7**steps,
        "Lion": np.concatenate([10 * 2.0 ** steps[:20], [np.inf] * 30]),
        "RMSprop": np.full(50, np.nan),
    }
    fig = plotting.loss_curves(losses, target=1e-6)
    ax = fig.axes[0]
    lines = curve_lines(ax)
    assert len(lines) == len(losses)
    assert [ln.get_label() for ln in lines] == ["SGD", "Adam", "Lion (diverged)", "RMSprop (diverged)"]
    assert ax.get_yscale() == "log"
    assert any(ln.get_label() == "target 1e-6" for ln in ax.get_lines())
    # Lion is cut where it passes 10^4 x the starting loss, not at 1e6 or inf.
    (lion,) = [ln for ln in lines if ln.get_gid() == "curve:Lion"]
    assert lion.get_ydata().max() <= 1e5
    assert plotting.to_png(fig)


def test_loss_curves_linear_axis_and_steps():
    fig = plotting.loss_curves({"a": [3.0, 2.0, 1.0]}, log=False, steps=[0, 10, 20])
    ax = fig.axes[0]
    assert ax.get_yscale() == "linear"
    np.testing.assert_array_equal(curve_lines(ax)[0].get_xdata(), [0, 10, 20])


def test_lr_curves_one_line_per_schedule():
    t = np.arange(100)
    schedules = {"cosine": 0.5 * (1 + np.cos(np.pi * t / 100)), "constant": np.full(100, 0.5)}
    fig = plotting.lr_curves(schedules, title="schedules")
    ax = fig.axes[0]
    assert [ln.get_label() for ln in curve_lines(ax)] == ["cosine", "constant"]
    assert ax.get_ylim()[0] == 0
    assert plotting.lr_curves(schedules, log=True).axes[0].get_yscale() == "log"


# -- sweeps --------------------------------------------------------------------------------------------------


def sweep():
    lrs = np.geomspace(1e-3, 1.0, 12)
    betas = np.linspace(0.0, 0.9, 7)
    eta, beta = np.meshgrid(lrs, betas)
    loss = np.exp(-50 * eta * (1 + beta))
    loss[eta * 10 > 2 + 2 * beta] = np.inf  # the heavy-ball stability boundary, eta * lambda < 2 + 2 beta
    return lrs, betas, loss


def test_sweep_heatmap_colorbar_and_diverged_cells():
    lrs, betas, loss = sweep()
    loss[0, 0] = np.nan
    extra = np.zeros_like(loss, dtype=bool)
    extra[1, 1] = True
    fig = plotting.sweep_heatmap(lrs, betas, loss, diverged=extra, xlog=True, xlabel="lr", ylabel="beta",
                                 overlay=lambda eta: 10 * eta / 2 - 1, overlay_label="boundary")
    assert isinstance(fig, Figure)
    ax, cax = fig.axes
    mesh = ax.collections[0]
    assert mesh.colorbar is not None and mesh.colorbar.ax is cax
    (patch,) = [p for p in ax.patches if p.get_gid() == "diverged"]
    assert isinstance(patch, PathPatch) and patch.get_hatch() == "///"
    n_bad = int((~np.isfinite(loss) | extra).sum())
    assert len(patch.get_path().vertices) == 5 * n_bad
    assert mesh.get_array().mask.sum() == n_bad  # diverged cells take no colour from the loss scale
    assert ax.get_xscale() == "log" and ax.get_yscale() == "linear"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["diverged", "boundary"]
    (overlay,) = [ln for ln in ax.get_lines() if ln.get_gid() == "overlay"]
    assert np.all(np.diff(overlay.get_xdata()) > 0)
    assert plotting.to_png(fig, colors=256)


def test_sweep_heatmap_overlay_as_arrays_and_given_axis():
    lrs, betas, loss = sweep()
    fig = plotting.figure()
    ax = fig.add_subplot()
    out = plotting.sweep_heatmap(lrs, betas, np.nan_to_num(loss, posinf=1.0), ax=ax, xlog=True, zlog=False,
                                 overlay=([1e-3, 1.0], [0.0, 0.9]), legend=False)
    assert out is fig
    assert not [p for p in ax.patches if p.get_gid() == "diverged"]
    assert ax.get_legend() is None
    assert any(ln.get_gid() == "overlay" for ln in ax.get_lines())


def test_sweep_heatmap_names_bad_shapes():
    lrs, betas, loss = sweep()
    with pytest.raises(ValueError, match="final_loss"):
        plotting.sweep_heatmap(lrs, betas, loss.T)
    with pytest.raises(ValueError, match="x_values"):
        plotting.sweep_heatmap(lrs[::-1], betas, loss)
    with pytest.raises(ValueError, match="diverged"):
        plotting.sweep_heatmap(lrs, betas, loss, diverged=np.zeros(3, dtype=bool))


# -- rendering -----------------------------------------------------------------------------------------------


def contour_figure():
    paths = {"SGD": descent(0.05), "Adam": descent(0.15)}
    return plotting.contour_paths(quadratic, BOUNDS, paths, mark=(0, 0))


def test_to_png_is_byte_identical_across_calls_and_figures():
    fig = contour_figure()
    first = plotting.to_png(fig)
    assert plotting.to_png(fig) == first
    assert plotting.to_png(contour_figure()) == first
    assert plotting.to_png(fig, palette=False) == plotting.to_png(contour_figure(), palette=False)


def test_palette_png_is_smaller_indexed_and_keeps_the_course_colours():
    fig = contour_figure()
    rgba = plotting.to_png(fig, palette=False)
    small = plotting.to_png(fig, colors=64)
    assert len(small) < len(rgba) / 2
    im = png_image(small)
    assert im.mode == "P" and im.size == (480, 360)
    assert len(im.getpalette()) // 3 <= 64
    # Adam's blue survives exactly as rendered (a generic quantiser shifts a thin line's colour).
    adam = np.array([int(plotting.OPTIMIZER_STYLES["Adam"].color[i : i + 2], 16) for i in (1, 3, 5)])
    rendered = png_image(rgba).convert("RGB").getcolors(1 << 18)
    _, line = max((n, c) for n, c in rendered if np.abs(np.array(c) - adam).max() <= 1)
    assert line in {c for _, c in im.convert("RGB").getcolors(1 << 16)}
    assert len(plotting.to_png(fig, colors=16)) < len(small)
    # Flat areas (background, contour bands) keep their exact colour, so no band takes a tint.
    default = png_image(plotting.to_png(fig))
    assert default.mode == "P" and len(default.getpalette()) // 3 <= 96
    default = default.convert("RGB")
    flat = {c for n, c in png_image(rgba).convert("RGB").getcolors(1 << 18) if n >= 0.002 * 480 * 360}
    assert flat <= {c for _, c in default.getcolors(1 << 16)}
    with pytest.raises(ValueError, match="colors"):
        plotting.to_png(fig, colors=1)


def test_to_png_size_dpi_and_white_background():
    fig = Figure(figsize=(2, 1), dpi=50)
    fig.patch.set_alpha(0)
    im = png_image(plotting.to_png(fig, dpi=100))
    assert im.size == (200, 100)
    assert im.convert("RGB").getpixel((0, 0)) == (255, 255, 255)


def test_to_png_keeps_the_layout_engine_and_closes_nothing():
    import matplotlib.pyplot as plt

    fig = plt.figure(layout="constrained")
    fig.add_subplot().plot([0, 1])
    engine = fig.get_layout_engine()
    try:
        plotting.to_png(fig)
        assert fig.get_layout_engine() is engine
        assert fig.number in plt.get_fignums()
    finally:
        plt.close(fig)


def test_course_figures_show_themselves_as_sharp_png():
    fig = contour_figure()
    data, meta = fig._repr_png_()
    assert meta == {"width": 480, "height": 360}
    assert png_image(data).size == (960, 720)


def test_import_optimlab_does_not_load_matplotlib():
    code = "import sys, optimlab; sys.exit(int('matplotlib' in sys.modules or 'ipywidgets' in sys.modules))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env).returncode == 0


# -- every screen: colours apart, subscripts, legends off the data, legible text -------------------------------

# Pairs of optimizers the chapters draw side by side and compare: apart also for the common colour-vision
# deficiencies, not only for a reader with full colour vision.
COMPARED = [("SGD", "Momentum"), ("Momentum", "Nesterov"), ("SGD", "Nesterov"), ("AdaGrad", "RMSprop"),
            ("RMSprop", "Adam"), ("Momentum", "Adam"), ("Momentum", "RMSprop"), ("Adam", "AdamW"),
            ("Lion", "AdamW"), ("Lion", "Sophia"), ("Sophia", "AdamW"), ("Adam", "NAdam"), ("Adam", "AMSGrad"),
            ("SGD", "Adam"), ("SGD", "AdaGrad"), ("Lion", "Adam"), ("SGD", "RMSprop"), ("SGD", "AdamW"),
            ("Momentum", "AdamW"), ("RMSprop", "AdamW"), ("AdaGrad", "Adam"), ("Adam", "Adamax"),
            ("Adam", "RAdam"), ("NAdam", "RAdam"), ("Lion", "SGD"), ("Sophia", "Adam"), ("Sophia", "SGD")]
ALIASES = {"GD": "SGD"}
# Machado, Oliveira and Fernandes (2009), severity 1, on linear RGB.
CVD = {
    "deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                     [-0.011820, 0.042940, 0.968881]],
    "protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                   [-0.003882, -0.048116, 1.051998]],
}


def _linear(hex_colour: str) -> np.ndarray:
    rgb = np.array([int(hex_colour.lstrip("#")[i:i + 2], 16) / 255 for i in (0, 2, 4)])
    return np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)


def _lab(linear_rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of a linear sRGB colour."""
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = m @ np.clip(linear_rgb, 0, 1) / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def delta_e(a: str, b: str, vision: str | None = None) -> float:
    """CIE76 colour difference of two hex colours, as seen with full colour vision or with ``vision``."""
    sim = np.eye(3) if vision is None else np.array(CVD[vision])
    return float(np.linalg.norm(_lab(sim @ _linear(a)) - _lab(sim @ _linear(b))))


def test_delta_e_reference_values():
    assert delta_e("#000000", "#FFFFFF") == pytest.approx(100, abs=0.1)
    assert delta_e("#FF0000", "#FF0000") == 0
    assert delta_e("#FF0000", "#00FF00", "deuteranopia") < delta_e("#FF0000", "#00FF00") / 2


def test_every_two_optimizers_differ_in_colour_by_delta_e_over_20():
    names = [n for n in plotting.OPTIMIZER_STYLES if n not in ALIASES]
    close = [(a, b, round(delta_e(plotting.style_for(a).color, plotting.style_for(b).color), 1))
             for i, a in enumerate(names) for b in names[i + 1:]
             if delta_e(plotting.style_for(a).color, plotting.style_for(b).color) <= 20]
    assert not close, f"optimizer colours too close (CIE76 ΔE ≤ 20): {close}"
    for alias, name in ALIASES.items():
        assert plotting.style_for(alias) == plotting.style_for(name)


@pytest.mark.parametrize("vision", sorted(CVD))
def test_compared_optimizers_differ_for_colour_blind_readers(vision):
    close = [(a, b, round(delta_e(plotting.style_for(a).color, plotting.style_for(b).color, vision), 1))
             for a, b in COMPARED
             if delta_e(plotting.style_for(a).color, plotting.style_for(b).color, vision) <= 20]
    assert not close, f"compared optimizers too close under {vision} (CIE76 ΔE ≤ 20): {close}"


def test_nesterov_and_lion_are_far_from_their_neighbours():
    momentum, nesterov, lion = (plotting.style_for(n).color for n in ("Momentum", "Nesterov", "Lion"))
    assert delta_e(momentum, nesterov, "deuteranopia") > 30 and delta_e(momentum, nesterov) > 40
    for other in ("AdamW", "Sophia", "Adam", "Nesterov"):
        assert delta_e(lion, plotting.style_for(other).color) > 25


@pytest.mark.parametrize("text, expected", [
    ("η_max", r"$\eta_{\mathrm{max}}$"),
    ("SGDR (T₀ = 100, T_mult = 2)", r"SGDR (T₀ = 100, $T_{\mathrm{mult}}$ = 2)"),
    ("η(k) / η_max", r"η(k) / $\eta_{\mathrm{max}}$"),
    ("x_1", "$x_{1}$"),
    ("β_2 = 0.999", r"$\beta_{2}$ = 0.999"),
    ("already $a_b$", "already $a_b$"),
    ("_hidden", "_hidden"),
    ("record_path", "record_path"),
    ("no subscript", "no subscript"),
])
def test_math_label_writes_subscripts_as_mathtext(text, expected):
    assert plotting.math_label(text) == expected


def test_raw_underscores_in_any_text_become_subscripts_when_rendered():
    fig = plotting.figure()
    ax = fig.add_subplot()
    ax.plot([1, 2], [1, 2], label="T_mult = 2")
    ax.set_ylabel("η(k) / η_max")
    ax.legend()
    plotting.to_png(fig)
    assert ax.get_ylabel() == r"η(k) / $\eta_{\mathrm{max}}$"
    assert ax.get_legend().get_texts()[0].get_text() == r"$T_{\mathrm{mult}}$ = 2"


def _covered(ax) -> int:
    box = ax.get_legend().get_window_extent(ax.figure._get_renderer())
    return plotting._covered(box, plotting._data_points(ax))


def test_legend_moves_off_the_data():
    t = np.linspace(0, 1, 50)
    fig = plotting.loss_curves({"Adam": 10 ** (-3 * t), "SGD": 10 ** (-3 * (1 - t))}, legend="upper right")
    plotting.to_png(fig)
    ax = fig.axes[0]
    assert _covered(ax) == 0
    assert ax.get_legend()._loc != 1   # upper right held data: it moved


def test_legend_goes_beside_the_axes_when_every_place_inside_holds_data():
    fig = plotting.figure()
    ax = fig.add_subplot()
    x = np.linspace(0, 1, 400)
    for k in range(12):   # horizontal lines over the whole height: no free corner
        ax.plot(x, np.full_like(x, k), label=f"line {k}")
    ax.legend(loc="upper right")
    plotting.to_png(fig)
    leg = ax.get_legend()
    assert leg.get_window_extent(fig._get_renderer()).x0 >= ax.get_window_extent().x1
    assert plotting.place_legend(fig.add_subplot(212)) is None   # no legend, nothing to do


def test_legend_stays_inside_its_panel_when_the_figure_has_several():
    fig = plotting.figure(8, 3)
    left, right = fig.subplots(1, 2)
    x = np.linspace(0, 1, 400)
    for k in range(12):
        left.plot(x, np.full_like(x, k), label=f"line {k}")
    right.plot(x, x)
    left.legend(loc="upper right")
    plotting.to_png(fig)
    box = left.get_legend().get_window_extent(fig._get_renderer())
    assert box.x1 <= left.get_window_extent().x1 + 1   # inside its own panel, not beside it
    assert left.get_window_extent().width > 0.95 * right.get_window_extent().width   # the panel not squeezed


def test_text_is_never_below_the_minimum_size():
    assert plotting.min_font_size(4.8) == 8.0
    # on a phone's column text of the minimum size is PHONE_TEXT_PX high
    for width in (7.0, 8.6, 9.6):
        px = plotting.min_font_size(width) * plotting.PHONE_COLUMN_PX / (72 * width)
        assert px == pytest.approx(plotting.PHONE_TEXT_PX)
    fig = plotting.figure(8.6, 3.5)
    ax = fig.add_subplot()
    ax.plot([1, 2], [1, 2])
    ax.text(1.5, 1.5, "tiny", fontsize=4)
    ax.set_title("title", fontsize=5)
    plotting.to_png(fig)
    floor = plotting.min_font_size(8.6)
    sizes = [t.get_fontsize() for t in fig.findobj(plotting.matplotlib.text.Text) if t.get_text()]
    assert min(sizes) >= floor
    assert ax.xaxis.get_major_ticks()[0].label1.get_fontsize() >= floor


def test_paths_carry_a_dozen_markers_not_one_per_step():
    fig = plotting.contour_paths(lambda p: (p**2).sum(-1), ((-1, 1), (-1, 1)),
                                 {"Momentum": np.c_[np.linspace(-1, 0, 200), np.zeros(200)]})
    line = next(ln for ln in fig.axes[0].lines if ln.get_gid() == "path:Momentum")
    assert 200 // line.get_markevery() <= 12
