"""optimlab.widgets: kernel-free sliders are Stacks of precomputed frames linked in the browser, and light."""

import gc
import weakref

import numpy as np
import pytest

ipywidgets = pytest.importorskip("ipywidgets")
pytest.importorskip("matplotlib")

from ipywidgets.widgets.widget_link import Link  # noqa: E402

from optimlab import plotting, widgets  # noqa: E402


def tiny(value, readout=True):
    """A trivial frame: a small figure whose picture depends on the value."""
    fig = plotting.figure(2.0, 1.5)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, float(value)])
    ax.set_ylim(-1, 10)
    return (fig, f"value {value}") if readout else fig


def tiny2(a, b):
    fig = plotting.figure(2.0, 1.5)
    fig.add_subplot().plot([0, 1, 2], [0, float(a), float(b)])
    return fig, f"{a},{b}"


def images(stack):
    return [w.png for w in stack.children]


def is_picture(w) -> bool:
    return isinstance(w, ipywidgets.HTML) and w.value.startswith("<img ") and hasattr(w, "png")


def link_ends(link):
    (src, src_trait), (dst, dst_trait) = link.source, link.target
    return src, src_trait, dst, dst_trait


# -- one slider ----------------------------------------------------------------------------------------------


def test_slider_structure_links_and_initial_frame():
    values = [1, 2, 3, 5, 8]
    box = widgets.slider(tiny, values, label="steps", initial=3, description="A line whose end is the value.")
    assert isinstance(box, ipywidgets.VBox)
    (s,) = box.sliders
    assert isinstance(s, ipywidgets.SelectionSlider)
    assert box.children[0] is s and box.children[1] is box.stack and box.children[2] is box.readouts
    assert [label for label, _ in s.options] == ["1", "2", "3", "5", "8"]
    assert s.description == "steps" and s.index == 2 and s.label == "3"

    stack = box.stack
    assert isinstance(stack, ipywidgets.Stack) and len(stack.children) == len(values)
    assert all(is_picture(w) and w.png.startswith(b"\x89PNG") for w in stack.children)
    assert len(set(images(stack))) == len(values)  # every frame is its own picture
    assert stack.selected_index == 2 and box.readouts.selected_index == 2

    assert all(isinstance(link, Link) for link in box.links)  # what ipywidgets.jslink returns
    assert [link_ends(link) for link in box.links] == [
        (s, "index", stack, "selected_index"),
        (s, "index", box.readouts, "selected_index"),
    ]

    texts = [w.value for w in box.readouts.children]
    assert len(texts) == len(values) and len(set(texts)) == len(values)
    assert "value 5" in texts[3]
    description = box.children[-1]
    assert isinstance(description, ipywidgets.HTML) and "whose end is the value" in description.value


def test_slider_without_readouts_or_description():
    box = widgets.slider(lambda v: tiny(v, readout=False), [0.1, 0.2])
    assert box.readouts is None
    assert len(box.links) == 1
    assert box.children == (box.sliders[0], box.stack)
    assert box.sliders[0].index == 0 and box.stack.selected_index == 0


def test_slider_labels_formats_and_initial_values():
    values = np.geomspace(1e-3, 1e-1, 3)
    box = widgets.slider(lambda v: tiny(v, readout=False), values, format="{:.0e}", initial=1e-2)
    assert [label for label, _ in box.sliders[0].options] == ["1e-03", "1e-02", "1e-01"]
    assert box.sliders[0].index == 1  # 1e-2 matched despite float rounding in geomspace
    box = widgets.slider(lambda v: tiny(1, readout=False), ["SGD", "Adam"], format=str.upper, initial="Adam")
    assert [label for label, _ in box.sliders[0].options] == ["SGD", "ADAM"]
    assert box.stack.selected_index == 1
    default = widgets.slider(lambda v: tiny(v, readout=False), [0.5, 0.25])
    assert [label for label, _ in default.sliders[0].options] == ["0.5", "0.25"]


def test_readouts_and_description_are_escaped_text():
    box = widgets.slider(lambda v: (tiny(v, readout=False), "loss < 1e-6 & <b>"), [1], description="x < y")
    assert "&lt;b&gt;" in box.readouts.children[0].value and "&amp;" in box.readouts.children[0].value
    assert "x &lt; y" in box.children[-1].value


def test_slider_names_its_mistakes():
    with pytest.raises(ValueError, match="distinct"):
        widgets.slider(tiny, [0.1001, 0.1002], format="{:.2f}")
    with pytest.raises(ValueError, match="initial"):
        widgets.slider(tiny, [1, 2], initial=3)
    with pytest.raises(ValueError, match="at least one"):
        widgets.slider(tiny, [])
    with pytest.raises(TypeError, match="Figure"):
        widgets.slider(lambda v: "not a figure", [1])
    with pytest.raises(ValueError, match="same size"):
        widgets.slider(lambda v: plotting.figure(2.0 * v, 1.5), [1, 2])
    with pytest.raises(ValueError, match="readout"):
        widgets.slider(lambda v: tiny(v, readout=v == 1), [1, 2])


def test_default_format_is_chosen_from_the_values():
    def labels(values):
        return [label for label, _ in widgets.slider(lambda v: tiny(1, readout=False), values).sliders[0].options]

    # exact short values as written: 0.9999 is not "1", and 1e-4 is not 0.0001 rounded away
    assert labels([0.5, 0.9, 0.99, 0.999, 0.9999]) == ["0.5", "0.9", "0.99", "0.999", "0.9999"]
    assert labels([1e-7, 3e-4, 0.01, 250, 2e6]) == ["1e-7", "0.0003", "0.01", "250", "2e6"]
    assert labels([1, 2, 30]) == ["1", "2", "30"]
    assert labels(["linear", "cosine"]) == ["linear", "cosine"]
    # numbers that are not short: the fewest digits from 3 that tell them apart
    assert labels(np.geomspace(0.005, 0.11, 4)) == ["0.005", "0.014", "0.0393", "0.11"]
    assert labels([1 / 3, 1 / 3 + 1e-4]) == ["0.3333", "0.3334"]


def test_every_slider_has_its_name_in_a_shared_width_and_room_for_its_readout():
    box = widgets.slider2(tiny2, [1, 2], [0.9, 0.9999], labels=("a", "decay β₂"))
    for s, name in zip(box.sliders, ("a", "decay β₂"), strict=True):
        assert s.description == name
        assert s.style.description_width == widgets.DESCRIPTION_WIDTH
        assert "optimlab-slider" in s._dom_classes
        assert s.layout.width == f"{widgets.FRAME_WIDTH}px" and s.layout.max_width == "100%"
    assert "optimlab-readout-6ch" in box.sliders[1]._dom_classes   # "0.9999"
    assert "optimlab-widget" in box._dom_classes


def test_frames_are_one_width_whatever_the_figure_size():
    for inches in (2.0, 4.8, 8.6):
        box = widgets.slider(lambda v, w=inches: tiny2(v, v)[0] if w == 0 else _sized(w, v), [1, 2])
        for w in box.stack.children:
            width = int.from_bytes(w.png[16:20], "big")
            assert width == widgets.FRAME_WIDTH
            assert f'width="{widgets.FRAME_WIDTH}"' in w.value and "max-width: 100%" in w.value


def _sized(inches, v):
    fig = plotting.figure(inches, inches * 0.6)
    fig.add_subplot().plot([0, 1], [0, v])
    return fig


def test_alt_text_says_what_each_frame_shows():
    box = widgets.slider(tiny, [1, 2], label="steps k", description="A line. It ends at the value.")
    alts = [w.alt for w in box.stack.children]
    assert alts == ["A line. Shown for steps k = 1. value 1", "A line. Shown for steps k = 2. value 2"]
    assert all(f'alt="{a}"' in w.value for a, w in zip(alts, box.stack.children, strict=True))
    box = widgets.slider2(tiny2, [1, 2], [3], labels=("a", "b"), alt=lambda a, b: f"line to {a} & {b}")
    texts = [w.value for inner in box.stack.children for w in inner.children]
    assert ['alt="line to 1 &amp; 3"' in texts[0], 'alt="line to 2 &amp; 3"' in texts[1]] == [True, True]


def test_readout_sits_under_the_picture_in_room_for_the_longest():
    long = "x" * 300
    box = widgets.slider(lambda v: (tiny(v, readout=False), long if v == 2 else "short"), [1, 2])
    assert box.children.index(box.readouts) == box.children.index(box.stack) + 1
    lines = float(box.readouts.layout.min_height.removesuffix("em")) / 1.5
    assert lines >= 300 / (widgets.FRAME_WIDTH / 8.0)


def test_frame_text_is_legible_on_a_phone():
    def wide(v):
        fig = plotting.figure(8.6, 3.5)
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, v], label="η_max")
        ax.tick_params(labelsize=6)
        ax.legend(fontsize=5)
        return fig

    widgets.slider(wide, [1])   # renders; the sizes are set on the figure before the layout
    fig = wide(1)
    plotting.to_png(fig)
    floor = plotting.min_font_size(8.6)
    ax = fig.axes[0]
    assert ax.xaxis.get_major_ticks()[0].label1.get_fontsize() >= floor
    legend_text = ax.get_legend().get_texts()[0]
    assert legend_text.get_fontsize() >= floor and legend_text.get_text() == r"$\eta_{\mathrm{max}}$"


# -- two sliders ---------------------------------------------------------------------------------------------


def test_slider2_nests_stacks_and_links_each_inner_stack():
    a_values, b_values = [1, 2, 3], [4, 5]
    box = widgets.slider2(tiny2, a_values, b_values, labels=("a", "b"), initial=(2, 5), description="grid")
    sa, sb = box.sliders
    assert (sa.description, sb.description) == ("a", "b")
    assert (sa.index, sb.index) == (1, 1)

    outer = box.stack
    assert len(outer.children) == len(a_values) and outer.selected_index == 1
    for inner in outer.children:
        assert isinstance(inner, ipywidgets.Stack)
        assert len(inner.children) == len(b_values) and inner.selected_index == 1
        assert all(is_picture(w) for w in inner.children)
    assert len({png for inner in outer.children for png in images(inner)}) == 6

    # Readouts follow the same nesting: frame (i, j) is draw(a_i, b_j).
    readouts = box.readouts
    texts = [[w.value for w in inner.children] for inner in readouts.children]
    assert [[t.split(">")[1].split("<")[0] for t in row] for row in texts] == [
        ["1,4", "1,5"], ["2,4", "2,5"], ["3,4", "3,5"]
    ]

    ends = [link_ends(link) for link in box.links]
    assert len(ends) == 2 * (1 + len(a_values))
    assert ends[0] == (sa, "index", outer, "selected_index")
    assert ends[1:4] == [(sb, "index", inner, "selected_index") for inner in outer.children]
    assert ends[4] == (sa, "index", readouts, "selected_index")
    assert ends[5:] == [(sb, "index", inner, "selected_index") for inner in readouts.children]


# -- rendering: deterministic, shared layout, nothing left open ----------------------------------------------


def test_frames_are_deterministic():
    first = widgets.slider(tiny, [1, 2, 3])
    second = widgets.slider(tiny, [1, 2, 3])
    assert images(first.stack) == images(second.stack)


def test_frames_share_the_first_frames_layout_without_changing_the_picture():
    def heat(scale):
        x = np.geomspace(1e-3, 1, 6)
        z = np.outer(np.linspace(1, 2, 4), x) * scale
        return plotting.sweep_heatmap(x, np.arange(4.0), z, xlog=True, title=f"scale {scale}")

    box = widgets.slider(heat, [1, 10, 100])
    dpi = widgets.FRAME_WIDTH / 4.8
    assert images(box.stack) == [plotting.to_png(heat(s), dpi=dpi) for s in (1, 10, 100)]


def test_figures_are_closed_and_freed():
    import matplotlib.pyplot as plt

    plt.close("all")
    made = []

    def pyplot_frame(v):
        fig, ax = plt.subplots(figsize=(2, 1.5))
        ax.plot([0, v])
        return fig

    def own_frame(v):
        fig = tiny(v, readout=False)
        made.append(weakref.ref(fig))
        return fig

    widgets.slider(pyplot_frame, [1, 2, 3])
    assert plt.get_fignums() == []
    widgets.slider(own_frame, [1, 2, 3])
    gc.collect()
    assert all(ref() is None for ref in made)


def test_page_bytes_counts_frames_and_links():
    box = widgets.slider(tiny, [1, 2, 3])
    png = widgets.png_bytes(box)
    assert png == sum(len(p) for p in images(box.stack))
    assert widgets.page_bytes(box) > png * 4 / 3  # frames are base64 in the page, plus the widgets' JSON


# -- page weight of realistic widgets (a size check, not a timing check) -------------------------------------

CURVATURE = np.array([1.0, 20.0])


def quadratic(x):
    return 0.5 * (CURVATURE * x**2).sum(axis=-1)


def realistic(lr, beta=0.0):
    """Contours of a ravine with a 100-step heavy-ball path and a goal-directed readout."""
    x, v, path = np.array([-4.0, 1.5]), np.zeros(2), []
    with np.errstate(all="ignore"):
        for _ in range(101):
            path.append(x.copy())
            v = beta * v + CURVATURE * x
            x = x - lr * v
    path = np.array(path)
    loss = quadratic(path)
    hit = np.flatnonzero(loss <= 1e-6)
    text = "diverged" if not np.isfinite(loss[-1]) or loss[-1] > loss[0] else (
        f"steps to reach loss 1e-6: {hit[0]}" if hit.size else f"loss after 100 steps: {loss[-1]:.1e}")
    fig = plotting.contour_paths(quadratic, ((-5, 5), (-3, 3)), {"Momentum": path}, mark=(0, 0),
                                 title=f"lr = {lr:.3g}, β = {beta:.2g}")
    return fig, text


def test_fifteen_realistic_frames_weigh_under_one_megabyte():
    # 720 x 540 pixels each
    box = widgets.slider(realistic, np.geomspace(0.005, 0.11, 15), label="learning rate")
    assert len(box.stack.children) == 15
    assert len({w.value for w in box.readouts.children}) > 5
    assert "diverged" in box.readouts.children[-1].value
    assert widgets.png_bytes(box) < 1_000_000
    assert widgets.page_bytes(box) < 1_000_000


def test_sixty_four_realistic_frames_weigh_under_three_megabytes():
    # 720 x 540 pixels each
    box = widgets.slider2(realistic, np.geomspace(0.005, 0.1, 8), np.linspace(0, 0.9, 8),
                          labels=("learning rate", "momentum"))
    assert sum(len(inner.children) for inner in box.stack.children) == 64
    assert widgets.png_bytes(box) < 3_000_000
    assert widgets.page_bytes(box) < 3_000_000
