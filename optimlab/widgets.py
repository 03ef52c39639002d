"""Sliders that work without a kernel: one line in a notebook, interactive in the static HTML book too.

Every frame is drawn in advance: ``draw(value)`` returns a matplotlib figure for each slider position,
rendered to a small palette PNG. The frames go into an ``ipywidgets.Stack`` whose ``selected_index`` is tied
to the slider by ``ipywidgets.jslink``. That link runs in the browser, so the built book responds to the
slider with no kernel, and the same widget works live in Jupyter or on Binder. Two sliders nest Stacks: an
outer Stack over the first slider holds one inner Stack per value of it, each tied to the second slider.

Goal-directed readouts ("steps to reach loss 1e-6: 37", "diverged") are text that belongs to a frame: ``draw``
may return ``(figure, readout)``, and the readouts sit in their own Stack, switched by the same slider, so
they change with the picture, need no kernel, and (unlike text drawn into the image) are read by screen
readers. Images carry no alt text, so the builders take a ``description`` shown as text under the widget.

A page holds every frame: 15 frames of 480 x 360 pixels (contours and a path) weigh about 0.2 MB, 64 frames
about 0.9 MB (:func:`page_bytes` measures a widget).

matplotlib and ipywidgets are imported here, never by ``import optimlab``.
"""

from __future__ import annotations

import html
import json
import sys
from collections.abc import Callable, Sequence

import ipywidgets
from ipywidgets.widgets.widget_link import Link
from matplotlib.figure import Figure

from .plotting import _freeze_layout, to_png

__all__ = ["page_bytes", "png_bytes", "slider", "slider2"]


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

    def __init__(self, dpi: float | None, palette: bool, colors: int):
        self.dpi, self.palette, self.colors = dpi, palette, colors
        self.size: tuple[int, int] | None = None
        self.has_readout: bool | None = None
        self.layout: list | None = None

    def _share_layout(self, fig: Figure) -> None:
        """Lay out the first frame (constrained or tight layout) and place every later frame's axes exactly
        where the first frame's are: the picture does not jitter as the slider moves, and the layout, about
        half the time of rendering a frame, is computed once."""
        if fig.get_layout_engine() is None:
            return
        if self.layout is None:
            self.layout = _freeze_layout(fig, dpi=self.dpi)
        elif len(self.layout) == len(fig.axes):
            _freeze_layout(fig, self.layout)

    def render(self, result, where: str) -> tuple[bytes, str | None]:
        fig, readout = result if isinstance(result, tuple) else (result, None)
        if not isinstance(fig, Figure):
            raise TypeError(
                f"draw must return a matplotlib Figure or (Figure, readout text); {where} it returned "
                f"{type(result).__name__}"
            )
        try:
            self._share_layout(fig)
            png = to_png(fig, dpi=self.dpi, palette=self.palette, colors=self.colors)
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

    def image(self, png: bytes) -> ipywidgets.Image:
        # Natural size on a wide page, shrunk to fit a narrow one.
        layout = ipywidgets.Layout(max_width="100%", height="auto")
        return ipywidgets.Image(value=png, format="png", layout=layout)


def _readout(text: str) -> ipywidgets.HTML:
    span = '<span class="optimlab-readout" style="font-weight: 600">{}</span>'
    return ipywidgets.HTML(value=span.format(html.escape(text)))


def _description(text: str, width: int) -> ipywidgets.HTML:
    # Wrapped to the picture's width, right under it: the text alternative to the images.
    return ipywidgets.HTML(value=f'<p class="optimlab-description">{html.escape(text)}</p>',
                           layout=ipywidgets.Layout(max_width=f"{width}px"))


def _labels(values: Sequence, format, name: str) -> list[str]:
    def auto(v) -> str:
        if isinstance(v, str):
            return v
        if isinstance(v, (bool, int)) or (hasattr(v, "dtype") and getattr(v.dtype, "kind", "") in "iub"):
            return str(v)
        try:
            return f"{float(v):.3g}"
        except (TypeError, ValueError):
            return str(v)

    if format is None:
        fmt = auto
    elif callable(format):
        fmt = format
    else:
        fmt = format.format
    labels = [str(fmt(v)) for v in values]
    if len(set(labels)) != len(labels):
        dup = sorted({lab for lab in labels if labels.count(lab) > 1})
        raise ValueError(f"{name}: the values' labels must be distinct, but {dup} repeat; use a finer format")
    return labels


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
    return ipywidgets.SelectionSlider(
        options=list(zip(labels, range(len(values)), strict=True)),
        index=index,
        description=label,
        continuous_update=True,
        readout=True,
        style={"description_width": "initial"},
        layout=ipywidgets.Layout(width=f"{width}px", max_width="100%"),
    )


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
    children = [*sliders]
    if readouts is not None:
        children.append(readouts)
    children.append(stacks)
    if description:
        children.append(_description(description, width))
    box = ipywidgets.VBox(children=children)
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
) -> ipywidgets.VBox:
    """A slider over ``values`` showing the precomputed figure ``draw(value)``; works without a kernel.

    Args:
      draw: ``draw(value) -> Figure`` or ``-> (Figure, readout text)``. Each figure is rendered once, then
        closed; every frame must have the same pixel size. A readout (e.g. ``"steps to reach loss 1e-6: 37"``)
        is shown as text above the picture and switches with it.
      values: the slider's positions (numbers, strings, anything ``draw`` takes).
      label: the slider's name, shown to its left (e.g. ``"learning rate"``).
      format: how a value is shown next to the slider: a format string (``"{:.0e}"``), a callable, or None for
        ``3`` significant digits for floats and ``str`` otherwise. Labels must be distinct.
      initial: the value shown first (default: the first).
      description: what the widget shows, as text under it (the images themselves carry no alt text).
      dpi, palette, colors: how frames are rendered, see :func:`optimlab.plotting.to_png`.

    Returns:
      A ``VBox`` to display. Its attributes ``sliders`` (one ``SelectionSlider``), ``stack`` (the Stack of
      images), ``readouts`` (the Stack of readouts, or None) and ``links`` (the ``jslink`` objects) expose the
      parts.
    """
    values = _values(values, "values")
    labels = _labels(values, format, "values")
    i0 = _index(values, initial, "values")
    frames = _Frames(dpi, palette, colors)
    rendered = [frames.render(draw(v), f"for value {lab}") for v, lab in zip(values, labels, strict=True)]
    images = ipywidgets.Stack(children=[frames.image(png) for png, _ in rendered], selected_index=i0)
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
) -> ipywidgets.VBox:
    """Two sliders over ``values_a`` x ``values_b`` showing the precomputed ``draw(a, b)``; no kernel needed.

    The frames are ``len(values_a) * len(values_b)`` figures: an outer Stack over slider A holds one inner
    Stack per value of A, each linked to slider B. Arguments are as for :func:`slider`, in pairs (A, B):
    ``labels``, ``formats`` and ``initial``. An 8 x 8 grid (64 frames) weighs about 0.9 MB in the page.

    Returns:
      A ``VBox`` whose ``sliders`` are the two ``SelectionSlider``; ``stack`` is the outer Stack, ``readouts``
      the outer Stack of readouts (or None), ``links`` all the ``jslink`` objects.
    """
    values_a, values_b = _values(values_a, "values_a"), _values(values_b, "values_b")
    labels_a, labels_b = _labels(values_a, formats[0], "values_a"), _labels(values_b, formats[1], "values_b")
    ia, ib = _index(values_a, initial[0], "values_a"), _index(values_b, initial[1], "values_b")
    frames = _Frames(dpi, palette, colors)
    rendered = [
        [frames.render(draw(a, b), f"for ({la}, {lb})") for b, lb in zip(values_b, labels_b, strict=True)]
        for a, la in zip(values_a, labels_a, strict=True)
    ]
    width = frames.size[0]
    sa = _slider(values_a, labels_a, ia, labels[0], width)
    sb = _slider(values_b, labels_b, ib, labels[1], width)

    def nest(make) -> tuple[ipywidgets.Stack, list[Link]]:
        inner = [ipywidgets.Stack(children=[make(f) for f in row], selected_index=ib) for row in rendered]
        outer = ipywidgets.Stack(children=inner, selected_index=ia)
        return outer, [_link(sa, outer)] + [_link(sb, s) for s in inner]

    images, links = nest(lambda f: frames.image(f[0]))
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
    return sum(len(w.value) for w in _tree(widget) if isinstance(w, ipywidgets.Image))


def page_bytes(widget) -> int:
    """About the bytes the widget adds to a built page: the JSON of its embedded state (images base64-encoded)
    and view, including its links."""
    from ipywidgets.embed import dependency_state, embed_data

    roots = [widget, *getattr(widget, "links", ())]
    data = embed_data(views=[widget], state=dependency_state(roots, drop_defaults=True))
    return len(json.dumps(data["manager_state"])) + len(json.dumps(data["view_specs"]))
