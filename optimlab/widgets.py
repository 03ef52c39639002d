"""Sliders that work without a kernel: one line in a notebook, interactive in the static HTML book too.

Every frame is drawn in advance: ``draw(value)`` returns a matplotlib figure for each slider position,
rendered to a small palette PNG. The frames go into an ``ipywidgets.Stack`` whose ``selected_index`` is tied
to the slider by ``ipywidgets.jslink``. That link runs in the browser, so the built book responds to the
slider with no kernel, and the same widget works live in Jupyter or on Binder. Two sliders nest Stacks: an
outer Stack over the first slider holds one inner Stack per value of it, each tied to the second slider.

Goal-directed readouts ("steps to reach loss 1e-6: 37", "diverged") are text that belongs to a frame: ``draw``
may return ``(figure, readout)``, and the readouts sit in their own Stack under the picture, switched by the same
slider, so they change with the picture, need no kernel, and (unlike text drawn into the image) are read by
screen readers.

One look in every chapter: every frame is rendered :data:`FRAME_WIDTH` (720) pixels wide, whatever the figure's
size in inches, as an ``<img>`` with alt text saying what it shows at that position (the description's first
sentence, the sliders' values, the readout) that shrinks with the column on a phone; text in it is never below
:func:`optimlab.plotting.min_font_size`; slider names take the same width in every widget, readouts have room
for their longest value, and values are written to the precision that tells them apart. The page's stylesheet
(``_static/optimlab.css``) styles the classes ``optimlab-widget`` and ``optimlab-slider`` (dark mode included).

A page holds every frame: 15 frames of 720 x 540 pixels (contours and a path) weigh about 0.4 MB, 64 frames
about 2 MB (:func:`page_bytes` measures a widget).

matplotlib and ipywidgets are imported here, never by ``import optimlab``.
"""

from __future__ import annotations

import base64
import html
import json
import math
import sys
from collections.abc import Callable, Sequence

import ipywidgets
from ipywidgets.widgets.widget_link import Link
from matplotlib.figure import Figure

from .plotting import _freeze_layout, _legible, _number, _place_legends, style_for, to_png

__all__ = ["FRAME_WIDTH", "page_bytes", "playground", "playground_path", "png_bytes", "slider", "slider2"]

#: Every widget's pictures are this many pixels wide, shown at that width on a wide screen and shrunk to the
#: column on a narrow one, whatever the figure's size in inches: one picture width in every chapter.
FRAME_WIDTH = 720
#: The room for a slider's name, the same in every widget, so that every slider's track starts at the same x.
DESCRIPTION_WIDTH = "10em"


def _close(fig: Figure) -> None:
    """Release a frame's figure from pyplot if a draw function made it there; our own figures are not in
    pyplot and are freed when dropped."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close(fig)


def _png_size(png: bytes) -> tuple[int, int]:
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


class _Frames:
    """Renders the frames of one widget: PNG bytes and readout text per frame, all of one pixel size."""

    def __init__(self, dpi: float | None, palette: bool, colors: int, width: int = FRAME_WIDTH):
        self.dpi, self.palette, self.colors, self.width = dpi, palette, colors, width
        self.size: tuple[int, int] | None = None
        self.has_readout: bool | None = None
        self.layout: list | None = None

    def _share_layout(self, fig: Figure, dpi: float) -> None:
        """Lay out the first frame (constrained or tight layout) and place every later frame's axes exactly
        where the first frame's are: the picture does not jitter as the slider moves, and the layout, about
        half the time of rendering a frame, is computed once."""
        if fig.get_layout_engine() is None:
            return
        if self.layout is None:
            self.layout = _freeze_layout(fig, dpi=dpi)
        elif len(self.layout) == len(fig.axes):
            _freeze_layout(fig, self.layout)

    def render(self, result, where: str) -> tuple[bytes, str | None]:
        fig, readout = result if isinstance(result, tuple) else (result, None)
        if not isinstance(fig, Figure):
            raise TypeError(
                f"draw must return a matplotlib Figure or (Figure, readout text); {where} it returned "
                f"{type(result).__name__}"
            )
        # Rendered FRAME_WIDTH pixels wide unless a dpi is given: one picture width in every chapter.
        dpi = self.dpi if self.dpi is not None else self.width / fig.get_figwidth()
        try:
            _legible(fig)
            self._share_layout(fig, dpi)
            # Legends stay inside the axes (the frames share one layout), where they cover the least data.
            _place_legends(fig, outside=False, dpi=dpi)
            png = to_png(fig, dpi=dpi, palette=self.palette, colors=self.colors)
        finally:
            _close(fig)
        size = _png_size(png)
        if self.size is None:
            self.size = size
        elif size != self.size:
            raise ValueError(
                f"every frame must have the same size so the page does not jump; {where} the figure is "
                f"{size[0]}x{size[1]} pixels, the first was {self.size[0]}x{self.size[1]}"
            )
        if self.has_readout is None:
            self.has_readout = readout is not None
        elif self.has_readout != (readout is not None):
            raise ValueError(f"draw must return a readout for every frame or for none; {where} it did not")
        return png, (None if readout is None else str(readout))

    def image(self, png: bytes, alt: str) -> _Picture:
        return _Picture(png, alt)


class _Picture(ipywidgets.HTML):
    """One frame: an ``<img>`` with its alt text, natural size on a wide page (its width and height attributes
    reserve its shape before it loads), shrunk with its aspect ratio kept on a narrow one. ``png`` holds the
    bytes."""

    def __init__(self, png: bytes, alt: str):
        w, h = _png_size(png)
        data = base64.b64encode(png).decode("ascii")
        super().__init__(value=(f'<img class="optimlab-frame" src="data:image/png;base64,{data}" '
                                f'width="{w}" height="{h}" alt="{html.escape(alt, quote=True)}" '
                                'style="max-width: 100%; height: auto">'))
        self.png, self.alt = png, alt


def _readout(text: str) -> ipywidgets.HTML:
    span = '<span class="optimlab-readout" style="font-weight: 600">{}</span>'
    return ipywidgets.HTML(value=span.format(html.escape(text)))


def _description(text: str, width: int) -> ipywidgets.HTML:
    # Wrapped to the picture's width, right under it: the text alternative to the images.
    return ipywidgets.HTML(value=f'<p class="optimlab-description">{html.escape(text)}</p>',
                           layout=ipywidgets.Layout(max_width=f"{width}px"))


def _alt(description: str | None, position: list[tuple[str, str]], readout: str | None) -> str:
    """What a frame shows: the description's first sentence, the sliders' values, the frame's readout."""
    first = ""
    if description:
        first = description.strip().split(". ")[0].rstrip(".") + ". "
    where = ", ".join(f"{name or 'slider'} = {value}" for name, value in position)
    return f"{first}Shown for {where}." + (f" {readout}" if readout else "")


def _frame_alt(alt, values: tuple, description, position, readout) -> str:
    if alt is None:
        return _alt(description, position, readout)
    return str(alt(*values)) if callable(alt) else str(alt)


def _auto_label(v) -> str | None:
    """A number as short as it can be written exactly (0.9999, 3e-4, 250), or None if six significant digits
    do not write it exactly."""
    x = float(v)
    if not math.isfinite(x) or x == 0:
        return _number(x)
    for digits in range(1, 7):
        if float(f"{x:.{digits}g}") == x:
            return _plain(x, digits)
    return None


def _plain(x: float, digits: int) -> str:
    """``x`` to ``digits`` significant digits, positional from 1e-4 to 1e6 (0.0003, 250000), else 3e-7."""
    import numpy as np

    if x != 0 and not 1e-4 <= abs(x) < 1e6:
        return _number(float(f"{x:.{digits}g}"))
    return np.format_float_positional(x, precision=digits, unique=False, fractional=False, trim="-")


def _labels(values: Sequence, format, name: str) -> list[str]:
    if format is None:
        fmt = _auto_format(values)
    elif callable(format):
        fmt = format
    else:
        fmt = format.format
    labels = [str(fmt(v)) for v in values]
    if len(set(labels)) != len(labels):
        dup = sorted({lab for lab in labels if labels.count(lab) > 1})
        raise ValueError(f"{name}: the values' labels must be distinct, but {dup} repeat; use a finer format")
    return labels


def _auto_format(values: Sequence) -> Callable[[object], str]:
    """The default format, chosen from all the values: integers and strings as they are; a number as short as
    it is exactly written (0.9999 reads 0.9999, not 1); numbers that are not short (``geomspace``) to the fewest
    significant digits, from 3, that tell every value apart."""

    def is_int(v) -> bool:
        return isinstance(v, (bool, int)) or (hasattr(v, "dtype") and getattr(v.dtype, "kind", "") in "iub")

    def number(v) -> float | None:
        if isinstance(v, str) or is_int(v):
            return None
        try:
            return float(v)
        except (TypeError, ValueError):
            return None

    numbers = [x for x in map(number, values) if x is not None]
    long = [x for x in numbers if _auto_label(x) is None]
    digits = 3
    while digits < 12 and len({_plain(x, digits) for x in long}) < len(set(long)):
        digits += 1

    def fmt(v) -> str:
        x = number(v)
        if x is None:
            return str(v)
        return _auto_label(x) or _plain(x, digits)

    return fmt


def _index(values: Sequence, initial, name: str) -> int:
    if initial is None:
        return 0
    for i, v in enumerate(values):
        try:
            if v == initial:
                return i
            if not isinstance(v, str) and abs(float(v) - float(initial)) <= 1e-9 * abs(float(v)):
                return i
        except (TypeError, ValueError):
            continue
    raise ValueError(f"{name}: initial value {initial!r} is not one of the slider's values")


def _slider(values: Sequence, labels: list[str], index: int, label: str, width: int):
    # The name in a fixed width (the tracks of all widgets line up), the readout in room for its longest label
    # (the track does not change length as the value does).
    readout = max(len(lab) for lab in labels)
    s = ipywidgets.SelectionSlider(
        options=list(zip(labels, range(len(values)), strict=True)),
        index=index,
        description=label,
        description_allow_html=False,
        continuous_update=True,
        readout=True,
        style={"description_width": DESCRIPTION_WIDTH},
        layout=ipywidgets.Layout(width=f"{width}px", max_width="100%"),
    )
    s.add_class("optimlab-slider")
    s.add_class(f"optimlab-readout-{min(readout, 16)}ch")
    return s


def _link(slider: ipywidgets.SelectionSlider, stack: ipywidgets.Stack) -> Link:
    # SelectionSlider: link its index (its value is the option's payload). The Link is a widget model the page
    # embeds, so the link runs in the browser.
    return ipywidgets.jslink((slider, "index"), (stack, "selected_index"))


def _values(values, name: str) -> list:
    values = list(values)
    if not values:
        raise ValueError(f"{name} must hold at least one value")
    return values


def _box(sliders, stacks, readouts, links, description, width: int) -> ipywidgets.VBox:
    # The readout goes under the picture, in room for its longest text at the picture's width: a readout that
    # wraps onto another line moves nothing above it.
    children = [*sliders, stacks]
    if readouts is not None:
        longest = max(len(w.value) for w in _tree(readouts) if isinstance(w, ipywidgets.HTML)) - 60
        lines = max(1, math.ceil(longest / (width / 8.0)))
        readouts.layout = ipywidgets.Layout(min_height=f"{1.5 * lines}em", max_width=f"{width}px")
        children.append(readouts)
    if description:
        children.append(_description(description, width))
    box = ipywidgets.VBox(children=children)
    box.add_class("optimlab-widget")
    # For tests and for readers who want to drive the widget from Python.
    box.sliders, box.stack, box.readouts, box.links = tuple(sliders), stacks, readouts, tuple(links)
    return box


def slider(
    draw: Callable[[object], Figure | tuple[Figure, str]],
    values: Sequence,
    *,
    label: str = "",
    format: str | Callable[[object], str] | None = None,
    initial=None,
    description: str | None = None,
    dpi: float | None = None,
    palette: bool = True,
    colors: int = 96,
    alt: str | Callable[..., str] | None = None,
    width: int = FRAME_WIDTH,
) -> ipywidgets.VBox:
    """A slider over ``values`` showing the precomputed figure ``draw(value)``; works without a kernel.

    Args:
      draw: ``draw(value) -> Figure`` or ``-> (Figure, readout text)``. Each figure is rendered once, then
        closed; every frame must have the same pixel size. A readout (e.g. ``"steps to reach loss 1e-6: 37"``)
        is shown as text under the picture, in room kept for the longest one, and switches with it.
      values: the slider's positions (numbers, strings, anything ``draw`` takes).
      label: the slider's name with its symbol, shown to its left in a width shared by every widget
        (e.g. ``"learning rate η"``). Every slider should have one.
      format: how a value is shown next to the slider: a format string (``"{:.0e}"``), a callable, or None to
        choose from the values: integers and strings as they are, numbers as short as they are exactly written
        (0.9999 reads 0.9999), other numbers to the fewest digits, from 3, that tell them apart. Labels must
        be distinct.
      initial: the value shown first (default: the first).
      description: what the widget shows, as text under it; its first sentence also begins each frame's alt
        text.
      dpi, palette, colors: how frames are rendered, see :func:`optimlab.plotting.to_png`. By default a frame
        is rendered ``width`` pixels wide whatever its size in inches (text is scaled to stay legible on a phone,
        see :func:`optimlab.plotting.min_font_size`).
      alt: each frame's alt text: a string, or ``alt(value) -> str``; by default the description's first
        sentence, the slider's name and value, and the frame's readout.
      width: the frames' width in pixels (:data:`FRAME_WIDTH`); pictures shrink with the column below it.

    Returns:
      A ``VBox`` to display. Its attributes ``sliders`` (one ``SelectionSlider``), ``stack`` (the Stack of
      images), ``readouts`` (the Stack of readouts, or None) and ``links`` (the ``jslink`` objects) expose the
      parts.
    """
    values = _values(values, "values")
    labels = _labels(values, format, "values")
    i0 = _index(values, initial, "values")
    frames = _Frames(dpi, palette, colors, width)
    rendered = [frames.render(draw(v), f"for value {lab}") for v, lab in zip(values, labels, strict=True)]
    alts = [_frame_alt(alt, (v,), description, [(label, lab)], text)
            for v, lab, (_, text) in zip(values, labels, rendered, strict=True)]
    images = ipywidgets.Stack(children=[frames.image(png, a) for (png, _), a in zip(rendered, alts, strict=True)],
                              selected_index=i0)
    s = _slider(values, labels, i0, label, frames.size[0])
    links = [_link(s, images)]
    readouts = None
    if frames.has_readout:
        readouts = ipywidgets.Stack(children=[_readout(text) for _, text in rendered], selected_index=i0)
        links.append(_link(s, readouts))
    return _box([s], images, readouts, links, description, frames.size[0])


def slider2(
    draw: Callable[[object, object], Figure | tuple[Figure, str]],
    values_a: Sequence,
    values_b: Sequence,
    *,
    labels: tuple[str, str] = ("", ""),
    formats: tuple = (None, None),
    initial: tuple = (None, None),
    description: str | None = None,
    dpi: float | None = None,
    palette: bool = True,
    colors: int = 96,
    alt: str | Callable[..., str] | None = None,
    width: int = FRAME_WIDTH,
) -> ipywidgets.VBox:
    """Two sliders over ``values_a`` x ``values_b`` showing the precomputed ``draw(a, b)``; no kernel needed.

    The frames are ``len(values_a) * len(values_b)`` figures: an outer Stack over slider A holds one inner
    Stack per value of A, each linked to slider B. Arguments are as for :func:`slider`, in pairs (A, B):
    ``labels``, ``formats`` and ``initial``; ``alt`` may be ``alt(a, b) -> str``. An 8 x 8 grid (64 frames of
    720 pixels) weighs about 2 MB in the page.

    Returns:
      A ``VBox`` whose ``sliders`` are the two ``SelectionSlider``; ``stack`` is the outer Stack, ``readouts``
      the outer Stack of readouts (or None), ``links`` all the ``jslink`` objects.
    """
    values_a, values_b = _values(values_a, "values_a"), _values(values_b, "values_b")
    labels_a, labels_b = _labels(values_a, formats[0], "values_a"), _labels(values_b, formats[1], "values_b")
    ia, ib = _index(values_a, initial[0], "values_a"), _index(values_b, initial[1], "values_b")
    frames = _Frames(dpi, palette, colors, width)
    rendered = [
        [(*frames.render(draw(a, b), f"for ({la}, {lb})"),
          (a, b, [(labels[0], la), (labels[1], lb)])) for b, lb in zip(values_b, labels_b, strict=True)]
        for a, la in zip(values_a, labels_a, strict=True)
    ]
    width = frames.size[0]
    sa = _slider(values_a, labels_a, ia, labels[0], width)
    sb = _slider(values_b, labels_b, ib, labels[1], width)

    def nest(make) -> tuple[ipywidgets.Stack, list[Link]]:
        inner = [ipywidgets.Stack(children=[make(f) for f in row], selected_index=ib) for row in rendered]
        outer = ipywidgets.Stack(children=inner, selected_index=ia)
        return outer, [_link(sa, outer)] + [_link(sb, s) for s in inner]

    images, links = nest(lambda f: frames.image(f[0], _frame_alt(alt, f[2][:2], description, f[2][2], f[1])))
    readouts = None
    if frames.has_readout:
        readouts, more = nest(lambda f: _readout(f[1]))
        links += more
    return _box([sa, sb], images, readouts, links, description, width)


def _tree(widget) -> list:
    """The widget and everything displayed inside it (depth first)."""
    out, todo = [], [widget]
    while todo:
        w = todo.pop()
        out.append(w)
        todo.extend(reversed(getattr(w, "children", ())))
    return out


def png_bytes(widget) -> int:
    """Total size of the PNG frames inside a widget built here."""
    return sum(len(w.png) for w in _tree(widget) if isinstance(w, _Picture))


def page_bytes(widget) -> int:
    """About the bytes the widget adds to a built page: the JSON of its embedded state (images base64-encoded)
    and view, including its links."""
    from ipywidgets.embed import dependency_state, embed_data

    roots = [widget, *getattr(widget, "links", ())]
    data = embed_data(views=[widget], state=dependency_state(roots, drop_defaults=True))
    return len(json.dumps(data["manager_state"])) + len(json.dumps(data["view_specs"]))


# ----------------------------------------------------------------------------------------------------------------
# The playground: every optimizer on the 2-D problems, computed in the reader's browser


PLAYGROUND_OPTIMIZERS = ("SGD", "Momentum", "Nesterov", "Adagrad", "RMSprop", "Adam", "AdamW", "Adamax", "NAdam",
                         "RAdam", "Lion", "Sophia")
PLAYGROUND_PROBLEMS = ("ravine", "rosenbrock", "beale", "saddle")
PLAYGROUND_SCHEDULES = ("constant", "cosine", "warmup_cosine")
# The learning rate each optimizer starts with on each problem: a path that shows the optimizer's character.
_PLAYGROUND_LRS = {
    "ravine": {"SGD": 1.5, "Momentum": 0.3, "Nesterov": 0.3, "Adagrad": 1.0, "RMSprop": 0.1, "Adam": 0.1,
               "AdamW": 0.1, "Adamax": 0.1, "NAdam": 0.1, "RAdam": 0.3, "Lion": 0.03, "Sophia": 0.03},
    "rosenbrock": {"SGD": 1e-3, "Momentum": 1e-3, "Nesterov": 1e-3, "Adagrad": 1.0, "RMSprop": 0.1, "Adam": 0.3,
                   "AdamW": 0.3, "Adamax": 1.0, "NAdam": 0.1, "RAdam": 3e-4, "Lion": 0.03, "Sophia": 0.03},
    "beale": {"SGD": 1e-2, "Momentum": 1e-3, "Nesterov": 1e-3, "Adagrad": 1.0, "RMSprop": 0.1, "Adam": 0.3,
              "AdamW": 0.1, "Adamax": 1.0, "NAdam": 0.3, "RAdam": 3e-3, "Lion": 0.03, "Sophia": 0.1},
    "saddle": {"SGD": 0.1, "Momentum": 0.03, "Nesterov": 0.03, "Adagrad": 0.3, "RMSprop": 0.03, "Adam": 0.03,
               "AdamW": 0.03, "Adamax": 0.1, "NAdam": 0.03, "RAdam": 0.1, "Lion": 0.01, "Sophia": 0.03},
}
_DASHES = {"-": [], "--": [6, 4], "-.": [6, 3, 1.5, 3], ":": [1.5, 3]}
_playground_count = 0


def _playground_problem(problem, condition_number=10.0, angle=0.0):
    from . import problems

    if problem == "ravine":
        return problems.Ravine(condition_number=condition_number, angle=angle)
    return {"rosenbrock": problems.Rosenbrock, "beale": problems.Beale, "saddle": problems.Saddle}[problem]()


def _playground_schedule(hyperparameters: dict, steps: int):
    from . import schedules

    name = hyperparameters.get("schedule", "constant")
    if name == "constant":
        return None
    if name == "cosine":
        return schedules.cosine_schedule(1.0, T_max=steps)
    warmup = hyperparameters.get("warmup_steps", round(steps / 10))
    return schedules.warmup_cosine_schedule(1.0, warmup_steps=warmup, total_steps=steps)


def playground_path(optimizer: str, problem, hyperparameters: dict, x0=None, steps: int = 200):
    """optimlab's path for what the playground's ``run(optimizer, problem, hyperparameters, x0, steps)`` draws.

    ``problem`` is a name (``"ravine"``, ``"rosenbrock"``, ``"beale"``, ``"saddle"``) or a dict with ``name`` and,
    for the ravine, ``condition_number`` and ``angle`` (radians). ``hyperparameters`` has torch's names, plus
    ``schedule`` (``"constant"``, ``"cosine"`` or ``"warmup_cosine"``, a multiplier of lr from
    :mod:`optimlab.schedules` over ``steps``) and ``warmup_steps`` (default steps/10).

    Every optimizer but Sophia is :func:`optimlab.experiments.run`. Sophia is its loop with one change: the
    Hessian estimate refreshed every ``hessian_every`` (10) steps is the problem's exact Hessian diagonal clamped
    at zero, not a random Hutchinson draw, so the path is reproducible in the browser. Returns (steps + 1, 2).
    """
    import numpy as np

    from . import experiments
    from .optimizers import SophiaG

    spec = {"name": problem} if isinstance(problem, str) else dict(problem)
    name = spec.pop("name", None)
    if name not in PLAYGROUND_PROBLEMS:
        raise ValueError(f"problem must be one of {', '.join(PLAYGROUND_PROBLEMS)}, got {problem!r}")
    prob = _playground_problem(name, **spec)
    if hyperparameters.get("schedule", "constant") not in PLAYGROUND_SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(PLAYGROUND_SCHEDULES)}, "
                         f"got {hyperparameters['schedule']!r}")
    schedule = _playground_schedule(hyperparameters, steps)
    hyper = {k: (tuple(v) if k == "betas" else v) for k, v in hyperparameters.items()
             if k not in ("schedule", "warmup_steps", "hessian_every")}
    start = prob.x0 if x0 is None else x0
    if experiments.optimizer_class(optimizer)[0] is not SophiaG:
        return experiments.run(prob, optimizer, steps=steps, x0=start, schedule=schedule, **hyper).path
    every = hyperparameters.get("hessian_every", 10)
    x = np.array(start, dtype=np.float64)
    opt = SophiaG([x], **hyper)
    base_lr = opt.param_groups[0]["lr"]
    path = [x.copy()]
    with np.errstate(all="ignore"):
        for t in range(steps):
            if schedule is not None:
                opt.param_groups[0]["lr"] = base_lr * schedule(t)
            g = prob.grad(x)
            if t % every == 0:
                opt.update_hessian([np.maximum(np.diagonal(prob.hessian(x)), 0.0)])
            opt.step([g], bs=1)
            path.append(x.copy())
    return np.array(path)


def _playground_picture(config: dict) -> bytes:
    import numpy as np

    from .plotting import contour_paths

    radians = config["angle"] * np.pi / 180
    prob = _playground_problem(config["problem"], config["condition_number"], radians)
    spec = {"name": config["problem"], "condition_number": config["condition_number"], "angle": radians}
    paths = {}
    for slot in config["slots"]:
        hyper = {**slot["hyper"], "schedule": config["schedule"]}
        hyper.setdefault("lr", _PLAYGROUND_LRS[config["problem"]][slot["optimizer"]])
        paths[slot["optimizer"]] = playground_path(slot["optimizer"], spec, hyper, config["x0"], config["steps"])
    mark = prob.x_star if prob.x_star is not None else prob.minima[0]
    fig = contour_paths(prob.loss, prob.bounds, paths, mark=mark, title=f"{config['problem']}, {config['steps']} steps")
    try:
        return to_png(fig, dpi=70)
    finally:
        _close(fig)


_PLAYGROUND_CSS = """
.olp{font:14px/1.4 system-ui,sans-serif;max-width:980px;color:#222}
.olp [hidden]{display:none!important}
.olp-row,.olp-slots{display:flex;flex-wrap:wrap;gap:6px 14px;align-items:flex-end;margin:4px 0}
.olp-slots{align-items:flex-start}
.olp-field{display:flex;flex-direction:column;min-width:130px;flex:1 1 130px}
.olp-field label{font-size:12px;color:#444}
.olp-field output{font-variant-numeric:tabular-nums;font-size:12px}
.olp input[type=range]{width:100%;min-height:24px}
.olp select,.olp button{font:inherit;min-height:28px}
.olp-slot{flex:1 1 200px;min-width:0;border:1px solid #ccc;border-radius:4px;padding:2px 8px 6px}
.olp-slot legend{font-size:13px;font-weight:600}
.olp-slot select{width:100%}
.olp-swatch{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
.olp-plots{display:flex;flex-wrap:wrap;gap:8px;align-items:flex-start}
.olp-plots canvas{flex:1 1 300px;min-width:0;width:100%;max-width:480px;height:auto;border:1px solid #ddd}
.olp-plot{touch-action:none}
.olp-plot:focus{outline:2px solid #0072B2}
.olp-readout{font-variant-numeric:tabular-nums;margin:4px 0}
.olp-hint,.olp-static p{font-size:12px;color:#555;margin:2px 0}
.olp-static img{max-width:100%;height:auto}
""".strip()


def _playground_script() -> str:
    from importlib.resources import files

    return files("optimlab").joinpath("playground.js").read_text(encoding="utf-8")


class PlaygroundHTML:
    """The playground's HTML output: shown by Jupyter (``_repr_html_``); ``.html`` is the text, ``len()`` its size."""

    def __init__(self, html_text: str):
        self.html = html_text

    def _repr_html_(self) -> str:
        return self.html

    def __len__(self) -> int:
        return len(self.html.encode("utf-8"))

    def __repr__(self):
        return f"<optimlab playground, {len(self)} bytes of HTML>"


def playground(problem: str = "rosenbrock", optimizers: Sequence[str] = ("SGD", "Adam"), **initial) -> PlaygroundHTML:
    """An interactive figure computed in the reader's browser: contours, paths and loss curves of up to three
    optimizers on a 2-D problem, redrawn at once as sliders move or the start point is dragged.

    It needs no kernel and no network: the HTML carries optimlab's rules in JavaScript (``playground.js``, checked
    against optimlab in the tests), so it works in the static book, and in Jupyter once the cell has run. Where
    scripts do not run (an untrusted notebook) it shows a picture of the initial setting and says how to make it
    live.

    Args:
      problem: ``"ravine"``, ``"rosenbrock"``, ``"beale"`` or ``"saddle"``.
      optimizers: up to three of SGD, Momentum, Nesterov, Adagrad, RMSprop, Adam, AdamW, Adamax, NAdam, RAdam,
        Lion, Sophia.
      **initial: the starting setting: ``steps`` (10 to 1000, default 200), ``x0`` (the start point, default the
        problem's), ``schedule`` (``"constant"``, ``"cosine"``, ``"warmup_cosine"``), ``condition_number``
        (1 to 1000) and ``angle`` (degrees, -90 to 90) for the ravine, and ``hyperparameters``, a dict
        ``{optimizer: {torch name: value}}`` (``{"Adam": {"lr": 0.01, "betas": (0.9, 0.999)}}``).
    """
    global _playground_count
    import hashlib

    if problem not in PLAYGROUND_PROBLEMS:
        raise ValueError(f"problem must be one of {', '.join(PLAYGROUND_PROBLEMS)}, got {problem!r}")
    if isinstance(optimizers, str) or not isinstance(optimizers, Sequence) or not 1 <= len(optimizers) <= 3:
        raise ValueError(f"optimizers must be a sequence of 1 to 3 optimizer names, got {optimizers!r}")
    by_lower = {n.lower(): n for n in PLAYGROUND_OPTIMIZERS}
    names = []
    for name in optimizers:
        if not isinstance(name, str) or name.lower() not in by_lower:
            raise ValueError(f"optimizers must be names among {', '.join(PLAYGROUND_OPTIMIZERS)}, got {name!r}")
        names.append(by_lower[name.lower()])
    known = {"steps", "x0", "schedule", "condition_number", "angle", "hyperparameters"}
    unknown = set(initial) - known
    if unknown:
        raise TypeError(f"playground() got unexpected arguments {sorted(unknown)}; it takes {sorted(known)}")
    steps = initial.get("steps", 200)
    if isinstance(steps, bool) or not isinstance(steps, int) or not 10 <= steps <= 1000:
        raise ValueError(f"steps must be an integer from 10 to 1000, got {steps!r}")
    schedule = initial.get("schedule", "constant")
    if schedule not in PLAYGROUND_SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(PLAYGROUND_SCHEDULES)}, got {schedule!r}")
    kappa, angle = initial.get("condition_number", 10.0), initial.get("angle", 0.0)
    if isinstance(kappa, bool) or not isinstance(kappa, (int, float)) or not 1 <= kappa <= 1000:
        raise ValueError(f"condition_number must be a number from 1 to 1000, got {kappa!r}")
    if isinstance(angle, bool) or not isinstance(angle, (int, float)) or not -90 <= angle <= 90:
        raise ValueError(f"angle must be a number of degrees from -90 to 90, got {angle!r}")
    hypers = initial.get("hyperparameters", {}) or {}
    if not isinstance(hypers, dict) or any(k not in names for k in hypers):
        raise ValueError(f"hyperparameters must be a dict keyed by the chosen optimizers {names}, got {hypers!r}")
    x0 = initial.get("x0")
    if x0 is None:
        x0 = [float(v) for v in _playground_problem(problem, kappa, angle * 3.141592653589793 / 180).x0]
    else:
        try:
            x0 = [float(v) for v in x0]
        except (TypeError, ValueError):
            x0 = None
        if x0 is None or len(x0) != 2 or not all(abs(v) < 1e6 for v in x0):
            raise ValueError(f"x0 must be a point (x, y) of finite numbers, got {initial.get('x0')!r}")
    slots = []
    for name in names:
        hyper = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(hypers.get(name, {})).items()}
        slots.append({"optimizer": name, "hyper": hyper})
    config = {"problem": problem, "condition_number": float(kappa), "angle": float(angle), "steps": steps,
              "schedule": schedule, "x0": x0, "slots": slots}
    picture = _playground_picture(config)   # also checks the hyperparameters, through optimlab
    config["styles"] = {}
    for name in PLAYGROUND_OPTIMIZERS:
        st = style_for(name)
        config["styles"][name] = {"color": st.color, "marker": st.marker, "dash": _DASHES.get(st.linestyle, [])}
    config["lrs"] = _PLAYGROUND_LRS
    config_json = json.dumps(config, sort_keys=True, separators=(",", ":"))
    _playground_count += 1
    uid = f"olp-{hashlib.sha1(config_json.encode()).hexdigest()[:8]}-{_playground_count}"
    script = _playground_script()
    if "</script" in script.lower():
        raise RuntimeError("playground.js must not contain a closing script tag")
    alt = (f"{problem}: paths of {', '.join(names)} over {steps} steps from ({x0[0]:.3g}, {x0[1]:.3g}), "
           "on the contours of the loss")
    png = base64.b64encode(picture).decode("ascii")
    config_js = config_json.replace("</", "<\\/")
    text = (
        f'<div class="olp" id="{uid}"><style>{_PLAYGROUND_CSS}</style>'
        f'<div class="olp-static"><img src="data:image/png;base64,{png}" alt="{html.escape(alt)}">'
        '<p>A still picture of the first setting. To make it live, run this cell (Jupyter shows a saved '
        'notebook\'s outputs without their scripts until they run), or open the course\'s web book.</p></div>'
        '<div class="olp-live" hidden></div>'
        f'<script type="module">\n{script}\nglobalThis.optimlabPlayground.mount(document.getElementById("{uid}"), '
        f'{config_js});\n</script></div>'
    )
    return PlaygroundHTML(text)
