"""Figures for the course: contours with optimizer paths, loss and learning-rate curves, sweep heatmaps.

One style everywhere. Every optimizer has a fixed colour, marker and line style (:data:`OPTIMIZER_STYLES`),
taken from the Okabe-Ito palette and, past its eight colours, from Paul Tol's colour-blind-safe "muted"
scheme; marker and dash tell two lines apart even without colour. Adam is the same blue in every chapter.

Every figure function takes plain arrays and callables (nothing from the rest of optimlab), draws into ``ax=``
when given one, and otherwise creates a new figure; it returns the :class:`~matplotlib.figure.Figure`. Figures
are built with matplotlib's object-oriented API only, never with pyplot, so a notebook does not display a
frame twice and nothing is left open. A figure this module creates shows itself in a notebook as a PNG, even
when pyplot was never imported.

:func:`to_png` renders a figure to PNG bytes reproducibly (the same bytes on every run), optionally quantised
to a small palette, which is how the kernel-free widgets in :mod:`optimlab.widgets` keep pages light.

matplotlib is imported here and in the widgets built on it, never by ``import optimlab``.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import matplotlib
import numpy as np
from matplotlib import patheffects
from matplotlib.colors import BoundaryNorm, LinearSegmentedColormap, LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Patch, PathPatch
from matplotlib.path import Path
from matplotlib.ticker import LogFormatter

__all__ = [
    "OKABE_ITO",
    "OPTIMIZER_STYLES",
    "STYLE",
    "LineStyle",
    "contour_paths",
    "figure",
    "line_styles",
    "loss_curves",
    "lr_curves",
    "math_label",
    "min_font_size",
    "place_legend",
    "style",
    "style_for",
    "sweep_heatmap",
    "to_png",
]

# -- palette and per-optimizer styles ------------------------------------------------------------------------

#: The Okabe-Ito palette (Okabe and Ito, "Color Universal Design", 2008), safe for the common colour-vision
#: deficiencies. Yellow is listed for completeness: too light for lines on white, it is not used.
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky blue": "#56B4E9",
    "bluish green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish purple": "#CC79A7",
}
# Past eight lines, colours from Paul Tol's colour-blind-safe "muted" scheme (and a dark grey), always paired
# with a distinct marker and dash so that no two optimizers differ by colour alone.
_TOL = {"indigo": "#332288", "teal": "#44AA99", "olive": "#999933", "wine": "#882255", "grey": "#666666"}
# A few more, chosen so that every two optimizers differ by CIE76 ΔE > 20, and the pairs the chapters compare
# also under simulated deuteranopia and protanopia (tests/test_plotting.py measures both): a crimson for
# Nesterov (orange and vermillion merge for a deuteranope), a brown, a blue-grey and a dark grey.
_MORE = {"crimson": "#A50021", "brown": "#8C510A", "blue grey": "#7A8FA6", "dark grey": "#444444"}


@dataclass(frozen=True)
class LineStyle:
    """How one optimizer (or any labelled line) is drawn: colour, marker and dash."""

    color: str
    marker: str = "o"
    linestyle: str = "-"


_O, _T, _M = OKABE_ITO, _TOL, _MORE
#: Fixed style per optimizer name, so the same optimizer looks the same in every chapter. Names are matched
#: ignoring case, spaces, hyphens and underscores ("rmsprop", "RMSProp" and "RMS-prop" are the same).
OPTIMIZER_STYLES: dict[str, LineStyle] = {
    "SGD": LineStyle(_O["black"], "o", "-"),
    "GD": LineStyle(_O["black"], "o", "-"),
    "Momentum": LineStyle(_O["orange"], "s", "-"),
    "Nesterov": LineStyle(_M["crimson"], "D", "--"),
    "AdaGrad": LineStyle(_O["bluish green"], "^", "-"),
    "RMSprop": LineStyle(_O["sky blue"], "v", "-"),
    "Adam": LineStyle(_O["blue"], "o", "-"),
    "AdamW": LineStyle(_O["reddish purple"], "P", "-"),
    "AMSGrad": LineStyle(_M["dark grey"], "s", ":"),
    "Adamax": LineStyle(_T["indigo"], "X", "--"),
    "NAdam": LineStyle(_M["blue grey"], "<", "--"),
    "RAdam": LineStyle(_T["olive"], ">", "--"),
    "Lion": LineStyle(_T["wine"], "*", "-"),
    "Sophia": LineStyle(_M["brown"], "h", "-."),
}

# Lines whose label is not an optimizer name take these, in order, skipping colours already in the figure.
_FALLBACK = [
    LineStyle(_O["blue"], "o"),
    LineStyle(_O["orange"], "s"),
    LineStyle(_O["bluish green"], "^"),
    LineStyle(_O["vermillion"], "D"),
    LineStyle(_O["reddish purple"], "P"),
    LineStyle(_O["sky blue"], "v"),
    LineStyle(_O["black"], "X"),
    LineStyle(_T["indigo"], "<", "--"),
    LineStyle(_T["wine"], ">", "--"),
    LineStyle(_T["olive"], "h", "--"),
    LineStyle(_T["teal"], "*", "--"),
    LineStyle(_T["grey"], "p", "-."),
]


def _key(name: str) -> str:
    return re.sub(r"[\s_\-]", "", str(name)).lower()


_BY_KEY = {_key(name): s for name, s in OPTIMIZER_STYLES.items()}


def style_for(label: str) -> LineStyle | None:
    """The fixed style of an optimizer name (``"Adam"``, ``"rmsprop"``), or None for any other label."""
    return _BY_KEY.get(_key(label))


def line_styles(labels) -> dict[str, LineStyle]:
    """Styles for the lines of one figure: optimizer names get their fixed style, other labels the next unused
    palette colour (in the order given), so no two lines of the figure share a colour while colours last."""
    labels = list(labels)
    out: dict[str, LineStyle] = {}
    used: set[str] = set()
    for label in labels:
        s = style_for(label)
        if s is not None and s.color not in used:
            out[label] = s
            used.add(s.color)
    spare = [s for s in _FALLBACK if s.color not in used]
    i = 0
    for label in labels:
        if label in out:
            continue
        out[label] = spare[i % len(spare)] if spare else _FALLBACK[i % len(_FALLBACK)]
        i += 1
    return out


# -- style ---------------------------------------------------------------------------------------------------

_FONT = {"title": 11, "label": 10, "tick": 9, "legend": 8.5}
_GRID = {"color": "#e3e3e3", "linewidth": 0.6}

#: rcParams of the course style, for readers' own pyplot figures (``with style(): ...``). The functions of
#: this module set the same sizes explicitly on what they draw, so they look the same inside or outside it.
STYLE: dict[str, object] = {
    "figure.figsize": (4.8, 3.6),
    "figure.dpi": 100,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "font.size": 10,
    "axes.titlesize": _FONT["title"],
    "axes.labelsize": _FONT["label"],
    "xtick.labelsize": _FONT["tick"],
    "ytick.labelsize": _FONT["tick"],
    "legend.fontsize": _FONT["legend"],
    "legend.framealpha": 0.9,
    "legend.edgecolor": "#cccccc",
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": _GRID["color"],
    "grid.linewidth": _GRID["linewidth"],
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": matplotlib.cycler(color=[s.color for s in _FALLBACK]),
    "lines.linewidth": 1.8,
    "lines.markersize": 4,
    "image.cmap": "viridis",
    "mathtext.fontset": "dejavusans",
}


@contextlib.contextmanager
def style() -> Iterator[None]:
    """Context manager applying :data:`STYLE` to matplotlib (pyplot included) inside the ``with`` block."""
    with matplotlib.rc_context(STYLE):
        yield


class _CourseFigure(Figure):
    """A Figure that shows itself as a crisp PNG in a notebook, with or without pyplot's inline backend."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _use_our_png_in_ipython()

    def _repr_png_(self):
        # Twice the pixels, displayed at the nominal size: sharp on high-density screens, same layout.
        w, h = self.get_size_inches() * self.dpi
        return to_png(self, dpi=2 * self.dpi, palette=False), {"width": round(w), "height": round(h)}

    def __repr__(self):
        # The text a notebook stores next to the picture: the same as for any matplotlib figure.
        return super().__repr__().replace(type(self).__name__, "Figure", 1)


def _use_our_png_in_ipython() -> None:
    """In IPython, show course figures with :meth:`_CourseFigure._repr_png_` even after pyplot's inline
    backend has registered its own printer for every Figure, so a figure looks the same whether or not the
    notebook imported pyplot."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        return
    formatter = shell.display_formatter.formatters["image/png"]
    if _CourseFigure not in formatter.type_printers:
        formatter.for_type(_CourseFigure, _CourseFigure._repr_png_)


def figure(width: float = 4.8, height: float = 3.6, *, dpi: float = 100) -> Figure:
    """A new empty figure in the course style (size in inches; ``width*dpi`` pixels wide), with a constrained
    layout. Add axes with ``fig.add_subplot()`` or ``fig.subplots(nrows, ncols)`` and pass them as ``ax=``."""
    with style():
        fig = _CourseFigure(figsize=(width, height), dpi=dpi, layout="constrained")
        # room at the edges for the last tick label, which the constrained layout would otherwise cut off
        fig.get_layout_engine().set(w_pad=0.08)
        return fig


def _axes(ax, *, grid: bool, box: bool = False):
    """The axes to draw into (a new figure's when ``ax`` is None) with the course's sizes set explicitly."""
    if ax is None:
        ax = figure().add_subplot()
    ax.tick_params(labelsize=_FONT["tick"])
    ax.xaxis.label.set_fontsize(_FONT["label"])
    ax.yaxis.label.set_fontsize(_FONT["label"])
    ax.title.set_fontsize(_FONT["title"])
    if grid:
        ax.grid(True, **_GRID)
        ax.set_axisbelow(True)
    else:
        ax.grid(False)
    for side in ("top", "right"):
        ax.spines[side].set_visible(box)
    return ax


def _number(x: float) -> str:
    """A number as a reader writes it: 1e-6, 0.001, 250."""
    return re.sub(r"e([+-])0*(\d)", lambda m: "e" + ("-" if m.group(1) == "-" else "") + m.group(2), f"{x:g}")


def _title(ax, text: str, pad: float = 6) -> None:
    # An explicit y spares matplotlib searching, on every draw, for tick labels above the axes (we put none
    # there): a large share of the time to render a frame.
    ax.set_title(text, y=1.0, pad=pad, fontsize=_FONT["title"])


def _legend(ax, loc, **kwargs):
    if loc is False or loc is None:
        return None
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    loc = "best" if loc is True else loc
    return ax.legend(loc=loc, fontsize=_FONT["legend"], framealpha=0.9, edgecolor="#cccccc", **kwargs)


# -- legible on every screen: text size, subscripts, legends off the data --------------------------------------

#: The narrowest column a figure is shown in (a 390 px phone, less the page's margins), in CSS pixels, and the
#: smallest text, in pixels, a reader should meet there. Pictures shrink to the column, so text of ``s`` points
#: on a figure ``w`` inches wide appears ``s * PHONE_COLUMN_PX / (72 * w)`` pixels high on a phone, whatever
#: the resolution it was rendered at.
PHONE_COLUMN_PX = 358
PHONE_TEXT_PX = 7.0
_FONT_FLOOR = 8.0


def min_font_size(width: float) -> float:
    """The smallest font size (points) on a figure ``width`` inches wide: 8 points, and more on wide figures so
    that text shown on a phone (:data:`PHONE_COLUMN_PX`) is still :data:`PHONE_TEXT_PX` pixels high."""
    return max(_FONT_FLOOR, PHONE_TEXT_PX * 72.0 * float(width) / PHONE_COLUMN_PX)


_GREEK = {
    "α": "alpha", "β": "beta", "γ": "gamma", "δ": "delta", "ε": "epsilon", "ζ": "zeta", "η": "eta", "θ": "theta",
    "κ": "kappa", "λ": "lambda", "μ": "mu", "ν": "nu", "ξ": "xi", "π": "pi", "ρ": "rho", "σ": "sigma", "τ": "tau",
    "φ": "phi", "χ": "chi", "ψ": "psi", "ω": "omega", "Γ": "Gamma", "Δ": "Delta", "Θ": "Theta", "Λ": "Lambda",
    "Σ": "Sigma", "Φ": "Phi", "Ψ": "Psi", "Ω": "Omega",
}
_SUBSCRIPTED = re.compile(r"(?<![\w\\])([A-Za-z\u0370-\u03ff])_(\{[^{}$]*\}|[A-Za-z0-9\u0370-\u03ff]+)")


def _tex_symbol(text: str) -> str:
    return "".join(f"\\{_GREEK[c]} " if c in _GREEK else c for c in text).replace(" }", "}").strip()


def math_label(text: str) -> str:
    """``text`` with every plain ``x_sub`` written as a mathtext subscript: ``"η_max"`` becomes
    ``"$\\eta_{\\mathrm{max}}$"``, ``"T_mult = 2"`` becomes ``"$T_{\\mathrm{mult}}$ = 2"`` (one letter or digits
    stay italic: ``"x_1"`` is ``"$x_{1}$"``). Parts already between ``$`` signs, and labels that start with
    ``_`` (matplotlib's hidden ones), are left alone."""
    text = str(text)
    if "_" not in text or text.startswith("_"):
        return text
    parts = re.split(r"(\$[^$]*\$)", text)

    def sub(m: re.Match) -> str:
        base, index = m.group(1), m.group(2).strip("{}")
        inner = index if len(index) == 1 or index.isdigit() else f"\\mathrm{{{index}}}"
        return f"${_tex_symbol(base)}_{{{_tex_symbol(inner)}}}$"

    return "".join(p if p.startswith("$") else _SUBSCRIPTED.sub(sub, p) for p in parts)


def _legible(fig: Figure) -> None:
    """Before the layout: no text below :func:`min_font_size`, tick labels included, and subscripts as
    mathtext, on every text of the figure (the chapters' own included). Done once per figure."""
    if getattr(fig, "_optimlab_legible", False):
        return
    fig._optimlab_legible = True
    from matplotlib.text import Text

    floor = min_font_size(fig.get_figwidth())
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            ticks = axis.get_major_ticks()
            size = ticks[0].label1.get_fontsize() if ticks else floor
            if size < floor:
                axis.set_tick_params(which="both", labelsize=floor)
    for text in fig.findobj(Text):
        content = text.get_text()
        if not content:
            continue
        if "_" in content and not content.startswith("_"):
            text.set_text(math_label(content))
        if text.get_fontsize() < floor:
            text.set_fontsize(floor)


_INSIDE = ("upper right", "upper left", "lower left", "lower right", "center right", "center left",
           "upper center", "lower center")


def _data_points(ax) -> np.ndarray:
    """Display coordinates of what the axes show as data: lines (densified, so a segment crossing a box counts),
    markers, scatter points and filled bands; not the background (contours, images, reference lines)."""
    from matplotlib.collections import PathCollection, PolyCollection

    out = [np.empty((0, 2))]

    def dense(xy):
        xy = xy[np.all(np.isfinite(xy), axis=1)]
        if len(xy) < 2:
            return xy
        seg = np.diff(xy, axis=0)
        n = np.maximum(1, np.ceil(np.hypot(*seg.T) / 4.0)).astype(int).clip(max=400)
        t = np.concatenate([np.arange(k) / k for k in n])
        start = np.repeat(xy[:-1], n, axis=0)
        return np.vstack([start + np.repeat(seg, n, axis=0) * t[:, None], xy[-1:]])

    for line in ax.lines:
        if not line.get_visible() or line.get_transform() != ax.transData:
            continue
        with np.errstate(all="ignore"):
            xy = ax.transData.transform(np.asarray(line.get_xydata(), dtype=float))
        out.append(dense(xy) if line.get_linestyle() not in ("None", "none", "") else xy)
    for coll in ax.collections:
        if not coll.get_visible():
            continue
        if isinstance(coll, PathCollection) and len(coll.get_offsets()):
            out.append(coll.get_offset_transform().transform(np.asarray(coll.get_offsets(), dtype=float)))
        elif isinstance(coll, PolyCollection):
            for path in coll.get_paths():
                out.append(dense(coll.get_transform().transform(path.vertices)))
    pts = np.vstack(out)
    return pts[np.all(np.isfinite(pts), axis=1)]


def _covered(box, pts: np.ndarray) -> int:
    return int(np.count_nonzero((pts[:, 0] >= box.x0 - 2) & (pts[:, 0] <= box.x1 + 2)
                                & (pts[:, 1] >= box.y0 - 2) & (pts[:, 1] <= box.y1 + 2)))


def place_legend(ax, *, outside: bool = True, renderer=None) -> str | None:
    """Move the legend of ``ax`` off the data: keep its place if it covers no data point, else take the first
    corner or side (upper right, upper left, lower left, ...) that covers none; if every place inside the axes
    covers data, put it beside the axes on the right (``outside=True``) or where it covers the fewest points
    (``outside=False``, for the frames of a widget, whose axes must not move). Returns where it went (a
    matplotlib ``loc``, ``"outside right"``), or None when the axes have no legend or it sits where it was
    explicitly anchored. Needs the axes laid out (call it after the layout, before drawing)."""
    leg = ax.get_legend()
    if leg is None or getattr(leg, "_bbox_to_anchor", None) is not None:
        return None
    fig = ax.figure
    renderer = renderer or fig._get_renderer()
    pts = _data_points(ax)
    codes = {v: k for k, v in leg.codes.items()}
    first = codes.get(leg._loc, "upper right")
    tried = {}
    for loc in (first, *(loc for loc in _INSIDE if loc != first)):
        leg.set_loc(loc)
        tried[loc] = _covered(leg.get_window_extent(renderer), pts)
        if tried[loc] == 0:
            return loc
    if outside:
        leg.set_loc("upper left")
        leg.set_bbox_to_anchor((1.02, 1.0), transform=ax.transAxes)
        leg.borderaxespad = 0.0
        return "outside right"
    best = min(tried, key=tried.get)
    leg.set_loc(best)
    return best


def _place_legends(fig: Figure, *, outside: bool, dpi: float | None = None) -> bool:
    """:func:`place_legend` on every axes of a laid-out figure; True if a legend moved out of its axes."""
    if getattr(fig, "_optimlab_legends", False):
        return False
    fig._optimlab_legends = True
    if not any(ax.get_legend() is not None for ax in fig.axes):
        return False
    # Beside the axes only on a figure of one panel: in a row of panels a legend moved out squeezes its own
    # panel and runs into the next one, so there it takes the place inside that covers the fewest points.
    panels = [ax for ax in fig.axes if not hasattr(ax, "_colorbar")]
    outside = outside and len(panels) == 1
    saved = fig.dpi
    fig.dpi = saved if dpi is None else dpi
    try:
        renderer = fig._get_renderer()
        return any(place_legend(ax, outside=outside, renderer=renderer) == "outside right" for ax in fig.axes)
    finally:
        fig.dpi = saved


# -- contours with paths -------------------------------------------------------------------------------------

# Light neutral greys, lighter towards the minimum: every palette colour (black included) stands out on them.
_CONTOUR_CMAP = LinearSegmentedColormap.from_list("optimlab_contour", ["#ffffff", "#d9d9d9", "#9e9e9e"])


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


class _PlainLogFormatter(LogFormatter):
    """matplotlib's choice of log-axis labels, written as plain text (10⁻⁶, 2×10⁻³) instead of mathtext, whose
    parsing was about 60% of the time to draw a frame of loss curves (0.27 s against 0.11 s)."""

    def _num_to_string(self, x, vmin, vmax):
        exponent = math.floor(math.log10(x) + 1e-9)
        power = "10" + str(exponent).translate(_SUPERSCRIPT)
        coeff = x / 10.0**exponent
        return power if abs(coeff - 1) < 1e-6 else f"{coeff:.3g}×{power}"


def _plain_log_labels(axis) -> None:
    axis.set_major_formatter(_PlainLogFormatter(labelOnlyBase=False))
    axis.set_minor_formatter(_PlainLogFormatter(labelOnlyBase=False))


def _log_axis(ax, which: str, **kwargs) -> None:
    """Make the ``which`` ("x" or "y") axis of ``ax`` logarithmic, with plain-text labels."""
    getattr(ax, f"set_{which}scale")("log", **kwargs)
    _plain_log_labels(getattr(ax, f"{which}axis"))


def _finish(ax, xlabel: str, ylabel: str, title: str | None, legend) -> Figure:
    """Axis labels, title and legend, the last touch of every curve and contour figure; returns the figure."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        _title(ax, title)
    _legend(ax, legend)
    return ax.figure


def _bounds(bounds) -> tuple[float, float, float, float]:
    b = np.asarray(bounds, dtype=float).ravel()
    if b.shape != (4,) or not np.all(np.isfinite(b)) or b[0] >= b[1] or b[2] >= b[3]:
        raise ValueError(
            "bounds must be ((xmin, xmax), (ymin, ymax)) or (xmin, xmax, ymin, ymax), finite with "
            f"min < max; got {bounds!r}"
        )
    return tuple(float(v) for v in b)


def _visible_path(path, box) -> tuple[np.ndarray, bool]:
    """The drawable part of a path and whether it diverged.

    A path is cut at its first non-finite point. A point far outside the plotted region (100 spans away) ends
    it too, the last segment shortened to where it crosses that far box, so the direction the reader sees is
    exact and no renderer meets coordinates like 1e300.
    """
    p = np.asarray(path, dtype=float)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"each path must be a (T, 2) array of points; got shape {p.shape}")
    xmin, xmax, ymin, ymax = box
    wx, wy = xmax - xmin, ymax - ymin
    lo = np.array([xmin - 100 * wx, ymin - 100 * wy])
    hi = np.array([xmax + 100 * wx, ymax + 100 * wy])
    finite = np.all(np.isfinite(p), axis=1)
    inside = finite & np.all((p >= lo) & (p <= hi), axis=1)
    bad = np.flatnonzero(~inside)
    if bad.size == 0:
        return p, False
    k = int(bad[0])
    kept = p[:k]
    if k > 0 and finite[k]:
        a, b = p[k - 1], p[k]
        d = b - a
        with np.errstate(divide="ignore", invalid="ignore"):
            t_hi = np.where(d > 0, (hi - a) / d, np.inf)
            t_lo = np.where(d < 0, (lo - a) / d, np.inf)
        t = float(np.min(np.minimum(t_hi, t_lo)))
        kept = np.vstack([kept, a + min(t, 1.0) * d])
    return kept, True


def contour_paths(
    loss_fn: Callable[[np.ndarray], np.ndarray],
    bounds,
    paths: Mapping[str, np.ndarray] | None = None,
    *,
    levels: int | np.ndarray = 14,
    log_levels: bool = True,
    resolution: int = 160,
    mark=None,
    mark_label: str = "minimum",
    title: str | None = None,
    xlabel: str = "x₁",
    ylabel: str = "x₂",
    legend: bool | str = "upper right",
    ax=None,
) -> Figure:
    """Contours of a 2-D loss with optimizer paths on top.

    Args:
      loss_fn: vectorized loss; maps an ``(..., 2)`` array of points to the ``(...)`` array of their losses.
      bounds: the plotted region, ``((xmin, xmax), (ymin, ymax))`` or ``(xmin, xmax, ymin, ymax)``.
      paths: ``{label: (T, 2) array}``, the iterates of each run, drawn as a line with a marker per iterate
        (the optimizer's own marker) and a larger marker at the end. All paths start at the hollow circle (one
        per distinct start point). A path with a NaN or inf, or that flies off far beyond the region, is drawn
        up to there and labelled "(diverged)"; it never breaks the plot.
      levels: the number of contour levels, or the levels themselves.
      log_levels: space the levels geometrically above the minimum seen on the grid (dense near the minimum,
        as a reader needs for ill-conditioned or Rosenbrock-like losses); False for evenly spaced levels.
      resolution: grid points per side on which ``loss_fn`` is evaluated.
      mark: a point to mark with a star, typically the minimizer ``x*``; ``mark_label`` names it.
      title, xlabel, ylabel: text of the axes.
      legend: where to put the legend (a matplotlib ``loc``), True for "best", False for none. A fixed place
        keeps frames of a widget steady.
      ax: draw into these axes instead of a new figure.

    Returns:
      The figure. The path lines have ``gid`` ``"path:<label>"``.
    """
    ax = _axes(ax, grid=False, box=True)
    xmin, xmax, ymin, ymax = box = _bounds(bounds)
    n = int(resolution)
    gx, gy = np.meshgrid(np.linspace(xmin, xmax, n), np.linspace(ymin, ymax, n))
    with np.errstate(all="ignore"):
        z = np.asarray(loss_fn(np.stack([gx, gy], axis=-1)), dtype=float)
    if z.shape != gx.shape:
        raise ValueError(
            "loss_fn must map an (..., 2) array of points to an (...) array of losses: given points of "
            f"shape {(n, n, 2)}, it returned shape {z.shape}"
        )
    z = np.ma.masked_invalid(z)
    if z.count() >= 2 and z.min() < z.max():
        zmin, zmax = float(z.min()), float(z.max())
        if np.ndim(levels) == 0:
            count = int(levels)
            if log_levels:
                span = zmax - zmin
                positive = (z - zmin).compressed()
                positive = positive[positive > 0]
                floor = max(span * 1e-4, float(positive.min()) if positive.size else span * 1e-4)
                lv = zmin + np.geomspace(floor, span, count)
            else:
                lv = np.linspace(zmin, zmax, count + 2)[1:-1]
        else:
            lv = np.unique(np.asarray(levels, dtype=float))
        # The bands between levels, as filled contours would draw them, but rasterised: the loss is
        # interpolated to the output's pixels, then binned. It looks the same and renders in a third of the
        # time, which matters for widgets of many frames.
        if lv.size >= 2:
            norm = BoundaryNorm(lv, _CONTOUR_CMAP.N, extend="both")
            ax.imshow(z, extent=(xmin, xmax, ymin, ymax), origin="lower", aspect="auto", cmap=_CONTOUR_CMAP,
                      norm=norm, interpolation="bilinear", interpolation_stage="data", zorder=0)
        ax.contour(gx, gy, z, levels=lv, colors="#8a8a8a", linewidths=0.5, zorder=1)

    paths = dict(paths or {})
    styles = line_styles(paths)
    starts: list[np.ndarray] = []
    for label, raw in paths.items():
        s = styles[label]
        p, diverged = _visible_path(raw, box)
        text = f"{label} (diverged)" if diverged else str(label)
        if len(p) == 0:
            # Nothing finite to draw: keep the legend entry so the reader still learns the run diverged.
            ax.plot([], [], color=s.color, linestyle=s.linestyle, marker=s.marker, label=text,
                    gid=f"path:{label}")
            continue
        # A dozen markers tell the line apart without colour; one per step would smear an oscillating path
        # (momentum) into a band.
        every = max(1, math.ceil(len(p) / 12))
        ax.plot(
            p[:, 0], p[:, 1], color=s.color, linestyle=s.linestyle, linewidth=1.6, marker=s.marker,
            markersize=3.2, markevery=every, markeredgewidth=0, label=text, gid=f"path:{label}", zorder=3,
        )
        if not any(np.array_equal(p[0], q) for q in starts):
            starts.append(p[0])
        end = p[-1]
        ax.plot(
            end[0], end[1], linestyle="none", marker="X" if diverged else s.marker, markersize=8,
            color=s.color, markeredgecolor="white", markeredgewidth=1.0, zorder=5, label="_end",
        )
    for i, p0 in enumerate(starts):
        ax.plot(
            p0[0], p0[1], linestyle="none", marker="o", markersize=7, markerfacecolor="white",
            markeredgecolor="black", markeredgewidth=1.3, zorder=6, label="start" if i == 0 else "_start",
        )
    if mark is not None:
        m = np.asarray(mark, dtype=float).ravel()
        ax.plot(
            m[0], m[1], linestyle="none", marker="*", markersize=13, color="white", markeredgecolor="black",
            markeredgewidth=1.0, zorder=6, label=mark_label,
        )
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(ymin, ymax)
    return _finish(ax, xlabel, ylabel, title, legend)


# -- curves --------------------------------------------------------------------------------------------------


def loss_curves(
    losses: Mapping[str, np.ndarray],
    *,
    log: bool = True,
    target: float | None = None,
    steps: np.ndarray | None = None,
    title: str | None = None,
    xlabel: str = "step",
    ylabel: str = "loss",
    ylim: tuple[float, float] | None = None,
    legend: bool | str = "upper right",
    ax=None,
) -> Figure:
    """Loss against step, one line per run.

    Args:
      losses: ``{label: (T,) array}``; runs may have different lengths.
      log: logarithmic loss axis (zero or negative losses leave a gap there).
      target: draw this loss as a dashed reference line (a goal such as 1e-6).
      steps: the x values, shared by all runs (default ``0, 1, ..., T-1``).
      ylim: the loss axis range. By default a run is cut, and marked "(diverged)" with an x, at its first
        non-finite loss or (on a log axis) where the loss exceeds 10^4 times the largest starting loss, so one
        blow-up does not flatten the other curves.
      legend: where to put the legend (a matplotlib ``loc``), True for "best", False for none.
      ax: draw into these axes instead of a new figure.
    """
    ax = _axes(ax, grid=True)
    curves = {k: np.asarray(v, dtype=float).ravel() for k, v in losses.items()}
    firsts = [c[np.isfinite(c)][0] for c in curves.values() if np.isfinite(c).any()]
    cap = np.inf
    if log and ylim is None and firsts:
        cap = 1e4 * max(abs(f) for f in firsts) if max(abs(f) for f in firsts) > 0 else np.inf
    styles = line_styles(curves)
    for label, c in curves.items():
        s = styles[label]
        x = np.arange(len(c)) if steps is None else np.asarray(steps, dtype=float).ravel()[: len(c)]
        ok = np.isfinite(c) & (np.abs(c) <= cap)
        k = len(c) if ok.all() else int(np.argmin(ok))
        diverged = k < len(c)
        ax.plot(x[:k], c[:k], color=s.color, linestyle=s.linestyle, label=f"{label} (diverged)" if diverged
                else str(label), gid=f"curve:{label}")
        if diverged and k > 0:
            ax.plot(x[k - 1], c[k - 1], linestyle="none", marker="X", markersize=8, color=s.color,
                    markeredgecolor="white", label="_diverged", zorder=4)
    if target is not None:
        ax.axhline(target, color="#555555", linestyle="--", linewidth=1.0, label=f"target {_number(target)}",
                   zorder=1)
    if log:
        _log_axis(ax, "y", nonpositive="mask")
    if ylim is not None:
        ax.set_ylim(*ylim)
    return _finish(ax, xlabel, ylabel, title, legend)


def lr_curves(
    schedules: Mapping[str, np.ndarray],
    *,
    log: bool = False,
    steps: np.ndarray | None = None,
    title: str | None = None,
    xlabel: str = "step",
    ylabel: str = "learning rate",
    legend: bool | str = "best",
    ax=None,
) -> Figure:
    """Learning rate against step, one line per schedule (``{label: (T,) array}``); ``log`` for a log axis."""
    ax = _axes(ax, grid=True)
    curves = {k: np.asarray(v, dtype=float).ravel() for k, v in schedules.items()}
    styles = line_styles(curves)
    for label, c in curves.items():
        s = styles[label]
        x = np.arange(len(c)) if steps is None else np.asarray(steps, dtype=float).ravel()[: len(c)]
        ax.plot(x, c, color=s.color, linestyle=s.linestyle, label=str(label), gid=f"curve:{label}")
    if log:
        _log_axis(ax, "y", nonpositive="mask")
    else:
        ax.set_ylim(bottom=0)
    return _finish(ax, xlabel, ylabel, title, legend)


# -- sweeps --------------------------------------------------------------------------------------------------


def _edges(v: np.ndarray, log: bool) -> np.ndarray:
    """Cell edges around sorted centres (midpoints, geometric on a log axis)."""
    u = np.log10(v) if log else v
    if len(u) == 1:
        half = 0.5 if log else (abs(u[0]) * 0.5 or 0.5)
        e = np.array([u[0] - half, u[0] + half])
    else:
        mid = (u[1:] + u[:-1]) / 2
        e = np.concatenate([[2 * u[0] - mid[0]], mid, [2 * u[-1] - mid[-1]]])
    return 10**e if log else e


def _axis_values(v, name: str, log: bool) -> np.ndarray:
    v = np.asarray(v, dtype=float).ravel()
    if v.size == 0 or not np.all(np.isfinite(v)) or (v.size > 1 and not np.all(np.diff(v) > 0)):
        raise ValueError(f"{name} must be finite and strictly increasing; got {v!r}")
    if log and np.any(v <= 0):
        raise ValueError(f"{name} must be positive on a log axis; got {v!r}")
    return v


def sweep_heatmap(
    x_values,
    y_values,
    final_loss,
    *,
    diverged=None,
    xlabel: str = "",
    ylabel: str = "",
    xlog: bool = False,
    ylog: bool = False,
    zlog: bool = True,
    vmin: float | None = None,
    vmax: float | None = None,
    overlay=None,
    overlay_label: str | None = None,
    cbar_label: str = "final loss",
    title: str | None = None,
    legend: bool | str = True,
    ax=None,
) -> Figure:
    """A hyperparameter sweep as a heatmap of the final loss, diverged runs hatched grey, with a colorbar.

    Args:
      x_values, y_values: the swept values (increasing), ``nx`` and ``ny`` of them.
      final_loss: ``(ny, nx)`` array, row ``i`` for ``y_values[i]``. NaN or inf counts as diverged.
      diverged: optional ``(ny, nx)`` boolean mask of further runs to mark as diverged.
      xlog, ylog: logarithmic hyperparameter axes (e.g. a learning rate), with geometrically centred cells.
      zlog: logarithmic colour scale for the loss (non-positive losses clip to the smallest positive one).
      vmin, vmax: the colour scale's range (default: that of the finite, non-diverged losses).
      overlay: a curve to draw on top, such as a theoretical stability boundary: a callable ``y = f(x)``
        (vectorized; evaluated densely across the x range) or a pair of arrays ``(xs, ys)``;
        ``overlay_label`` names it in the legend.
      legend: where to put the legend (a matplotlib ``loc``); True puts it above the plot, False omits it.
      ax: draw into these axes instead of a new figure (the colorbar takes room from them).

    Returns:
      The figure. The diverged cells are one hatched patch with ``gid`` ``"diverged"``.
    """
    ax = _axes(ax, grid=False, box=True)
    x = _axis_values(x_values, "x_values", xlog)
    y = _axis_values(y_values, "y_values", ylog)
    z = np.asarray(final_loss, dtype=float)
    if z.shape != (len(y), len(x)):
        raise ValueError(f"final_loss must have shape (len(y_values), len(x_values)) = {(len(y), len(x))}; "
                         f"got {z.shape}")
    bad = ~np.isfinite(z)
    if diverged is not None:
        mask = np.asarray(diverged, dtype=bool)
        if mask.shape != z.shape:
            raise ValueError(f"diverged must have the shape of final_loss {z.shape}; got {mask.shape}")
        bad |= mask
    good = z[~bad]
    if zlog:
        pos = good[good > 0]
        floor = float(pos.min()) if pos.size else 1e-300
        z = np.where(bad, np.nan, np.maximum(z, floor))
        lo = vmin if vmin is not None else (float(pos.min()) if pos.size else 1e-3)
        hi = vmax if vmax is not None else (float(pos.max()) if pos.size else 1.0)
        norm = LogNorm(lo, max(hi, lo * 10 if hi <= lo else hi))
    else:
        z = np.where(bad, np.nan, z)
        lo = vmin if vmin is not None else (float(good.min()) if good.size else 0.0)
        hi = vmax if vmax is not None else (float(good.max()) if good.size else 1.0)
        norm = Normalize(lo, hi if hi > lo else lo + 1)
    xe, ye = _edges(x, xlog), _edges(y, ylog)
    mesh = ax.pcolormesh(xe, ye, np.ma.masked_invalid(z), cmap="viridis", norm=norm, shading="flat")
    cbar = ax.figure.colorbar(mesh, ax=ax, label=cbar_label)
    if zlog:
        _plain_log_labels(cbar.ax.yaxis)
    cbar.ax.tick_params(labelsize=_FONT["tick"])
    cbar.ax.yaxis.label.set_fontsize(_FONT["label"])

    handles = []
    rows, cols = np.nonzero(bad)
    if rows.size:
        x0, x1, y0, y1 = xe[cols], xe[cols + 1], ye[rows], ye[rows + 1]
        corners = ((x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0))
        verts = np.stack([np.stack(c, axis=-1) for c in corners], 1)
        codes = np.tile([Path.MOVETO, Path.LINETO, Path.LINETO, Path.LINETO, Path.CLOSEPOLY], rows.size)
        patch = PathPatch(Path(verts.reshape(-1, 2), codes), facecolor="#c8c8c8", edgecolor="none",
                          hatch="///", hatchcolor="#6e6e6e", linewidth=0, gid="diverged", zorder=2)
        ax.add_patch(patch)
        handles.append(Patch(facecolor="#c8c8c8", hatch="///", edgecolor="#6e6e6e", label="diverged"))
    if overlay is not None:
        if callable(overlay):
            ox = np.geomspace(xe[0], xe[-1], 400) if xlog else np.linspace(xe[0], xe[-1], 400)
            with np.errstate(all="ignore"):
                oy = np.broadcast_to(np.asarray(overlay(ox), dtype=float), ox.shape)
        else:
            ox, oy = (np.asarray(a, dtype=float).ravel() for a in overlay)
        # Black dashes on a white halo: visible on every colour of the map and on the hatching.
        (line,) = ax.plot(ox, oy, color="black", linestyle=(0, (5, 2)), linewidth=1.6, zorder=3,
                          label=overlay_label or "_overlay", gid="overlay")
        line.set_path_effects([patheffects.withStroke(linewidth=4, foreground="white"), patheffects.Normal()])
        if overlay_label:
            handles.append(line)
    if xlog:
        _log_axis(ax, "x")
    if ylog:
        _log_axis(ax, "y")
    ax.set_xlim(xe[0], xe[-1])
    ax.set_ylim(ye[0], ye[-1])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    above = bool(handles) and legend is True
    if handles and legend is not False:
        if above:
            # Between the title and the plot, hiding no cell.
            ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0, 1.0), ncols=len(handles),
                      fontsize=_FONT["legend"], frameon=False, borderaxespad=0.2, handlelength=2.2)
        else:
            ax.legend(handles=handles, loc=legend, fontsize=_FONT["legend"], framealpha=0.9)
    if title:
        _title(ax, title, pad=24 if above else 6)
    return ax.figure


# -- rendering -----------------------------------------------------------------------------------------------


def to_png(fig: Figure, *, dpi: float | None = None, palette: bool = True, colors: int = 96) -> bytes:
    """Render a figure to PNG bytes, the same bytes on every run for the same figure.

    Args:
      fig: the figure; it is rendered as is (no tight bounding box, so every frame of a widget has the size
        ``figsize * dpi``) and left open: the caller closes what it created.
      dpi: resolution (default: the figure's own).
      palette: quantise to an indexed palette of ``colors`` colours, without dithering. The course's line
        colours are kept exact and the rest of the palette adapts to the picture, so contour plots and curves
        look the same at a third of the size. False keeps full RGBA.
      colors: palette size, 2 to 256. Pass 256 for figures with a continuous colour scale (heatmaps,
        colorbars), which would otherwise show bands.
    """
    dpi = float(fig.dpi if dpi is None else dpi)
    if palette and not 2 <= int(colors) <= 256:
        raise ValueError(f"colors must be between 2 and 256; got {colors!r}")
    _legible(fig)
    engine = fig.get_layout_engine()
    if engine is not None and any(ax.get_legend() is not None for ax in fig.axes) and not getattr(
            fig, "_optimlab_legends", False):
        # Lay out, move legends off the data (perhaps out of the axes), and lay out again below.
        _freeze_layout(fig, dpi=dpi)
        fig.set_layout_engine(engine)
        _place_legends(fig, outside=True, dpi=dpi)
    elif engine is None:
        _place_legends(fig, outside=False, dpi=dpi)
    if engine is not None:
        # Lay out once, then render with the layout switched off: savefig would otherwise lay the figure out
        # in a whole extra drawing pass. The figure's engine is restored afterwards.
        _freeze_layout(fig, dpi=dpi)
    try:
        with style():
            if not palette:
                buf = io.BytesIO()
                # No software version or date in the file: the bytes depend only on the picture.
                fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
                return buf.getvalue()
            raw = io.BytesIO()
            fig.savefig(raw, format="rgba", dpi=dpi)  # raw pixels: no PNG encoding and decoding in between
    finally:
        if engine is not None:
            fig.set_layout_engine(engine)
    from PIL import Image  # Pillow is a dependency of matplotlib

    data = raw.getvalue()
    w = int(fig.get_figwidth() * dpi)  # the size the Agg renderer uses
    w = next((c for c in (w, w + 1, w - 1) if c > 0 and len(data) % (4 * c) == 0), w)
    rgba = Image.frombuffer("RGBA", (w, len(data) // (4 * w)), data, "raw", "RGBA", 0, 1)
    if rgba.getextrema()[3][0] < 255:
        # Composite over white, so a transparent figure does not turn black without its alpha channel.
        rgba = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
    rgb = rgba.convert("RGB")
    return _quantise(rgb, int(colors))


def _freeze_layout(fig: Figure, positions=None, *, dpi: float | None = None) -> list:
    """Fix the axes where the figure's layout engine (constrained, tight) puts them at ``dpi``, and switch the
    engine off; return the positions. Given ``positions`` (from a figure with as many axes), put the axes
    there instead, without laying out: frames of a widget then share one layout and do not jitter."""
    if positions is None:
        engine = fig.get_layout_engine()
        if engine is not None and fig.axes:
            saved = fig.dpi
            fig.dpi = saved if dpi is None else dpi
            try:
                with style():
                    engine.execute(fig)
            finally:
                fig.dpi = saved
        positions = [ax.get_position(original=True) for ax in fig.axes]
    else:
        if len(positions) != len(fig.axes):
            raise ValueError(f"{len(positions)} positions for a figure with {len(fig.axes)} axes")
        for ax, box in zip(fig.axes, positions, strict=True):
            ax.set_position(box)
    with matplotlib.rc_context({"figure.autolayout": False, "figure.constrained_layout.use": False}):
        fig.set_layout_engine(None)
    return positions


# The course's line colours are kept exact in palette PNGs: a generic quantiser would merge a thin line's few
# pixels into a nearby shade (orange turns brown).
_KEY_COLOURS = sorted(
    {int(c.lstrip("#"), 16) for c in [*OKABE_ITO.values(), *_TOL.values(), *_MORE.values(),
                                      *(s.color for s in _FALLBACK)]}
    | {0xFFFFFF}
)


def _quantise(rgb, colors: int) -> bytes:
    """PNG bytes of an RGB image with an indexed palette: exact course colours and the picture's flat areas
    (background, contour bands: every colour covering 0.2% of the pixels), then adaptive colours for the rest,
    mostly anti-aliased edges, where a small error does not show."""
    from PIL import Image

    counts = sorted(rgb.getcolors(rgb.width * rgb.height), reverse=True)
    seen = np.array([c for _, c in counts], dtype=np.int16)
    # Agg may render a colour one unit off in a channel: a course colour counts as present when some pixel is
    # within one unit of it in every channel.
    course = np.array([((k >> 16) & 255, (k >> 8) & 255, k & 255) for k in _KEY_COLOURS], dtype=np.int16)
    course = course[(np.abs(course[:, None, :] - seen[None, :, :]).max(axis=2) <= 1).any(axis=1)]
    flat = np.array([c for n, c in counts if n >= 0.002 * rgb.width * rgb.height], dtype=np.int16)
    keys = np.concatenate([course, flat.reshape(-1, 3)])
    keys = keys[np.sort(np.unique(keys, axis=0, return_index=True)[1])][: max(colors - 16, colors // 2)]
    adaptive = rgb.quantize(colors - len(keys), method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    extra = np.array(adaptive.getpalette()[: 3 * (colors - len(keys))], dtype=np.int16).reshape(-1, 3)
    # Pillow maps pixels to the palette through a coarse colour cache, so an adaptive colour close to a key
    # colour could capture that colour's pixels: leave those out.
    extra = extra[(np.abs(extra[:, None, :] - keys[None, :, :]).max(axis=2) > 6).all(axis=1)]
    palette = Image.new("P", (1, 1))
    palette.putpalette(np.concatenate([keys, extra]).astype(np.uint8).ravel().tolist())
    out = io.BytesIO()
    rgb.quantize(palette=palette, dither=Image.Dither.NONE).save(out, format="PNG")
    return out.getvalue()
