"""A chapter in JupyterLab, as a reader who ran ``pip install -r requirements.txt`` (or ``make lab``) sees it.

JupyterLab is started from the reader's environment alone (_build/reader-venv, made from requirements.txt by
scripts/reader_venv.py: so the test proves that those requirements give a working JupyterLab, with jupyterlab-myst
rendering the markdown) on 127.0.0.1 with a token, and Debian's Chromium (the browser fixture of
tests/test_book.py) opens a chapter. The rendered markdown must show no MyST source, every exercise's title,
no solution until the reader opens it, and no reference key that the chapter itself defines. After Run All
(the kernel of that same environment) a kernel-free slider must change its picture when moved, and where the
chapter has a playground, its script must run and redraw when a slider moves.

``LAB_NOTEBOOKS`` lists the notebooks opened, as paths relative to the repository; ``OPTIMLAB_LAB_NOTEBOOKS``
(comma-separated) overrides it, e.g. to open an edition of the chapters. Exercise titles and solution texts are
taken from the chapter's source in chapters/ (same file name), so every edition is held to the same content.
A chapter written in MyST may show the keys jupyterlab-myst cannot resolve (citations, figures, labels of other
chapters); a notebook written without MyST roles (the plain edition) may show none.

The server runs with windowing off (every cell is rendered, so text checks see the whole notebook), autosave
off (Run All must not write outputs into the repository; the test checks the file is unchanged), and its own
settings, workspace, data and runtime folders, so neither a reader's Jupyter set-up nor a saved workspace
interferes. Without Chromium the test skips with the reason, except when ``CI`` is set: then it fails.
``OPTIMLAB_SCREENSHOTS=DIR`` saves screenshots there. In the same environment, ``jupyter labextension list`` must
report every extension enabled and compatible with its JupyterLab.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import reader_venv  # noqa: E402

from tests.test_book import (  # noqa: E402
    REPO,
    _notebook,
    _pictures,
    _pictures_after_drag,
    _source,
    _tags,
)

LAB_NOTEBOOKS = ["notebooks/02_momentum.ipynb", "chapters/06_adam.ipynb"]
NOTEBOOKS = [n.strip() for n in os.environ.get("OPTIMLAB_LAB_NOTEBOOKS", ",".join(LAB_NOTEBOOKS)).split(",")]
NOTEBOOKS = [n for n in NOTEBOOKS if n]
SCREENSHOTS = os.environ.get("OPTIMLAB_SCREENSHOTS")
START_TIMEOUT_S = 60
RUN_ALL_TIMEOUT_MS = 180_000

# JupyterLab's user settings for the test server: every cell rendered (no windowing), no autosave, no news.
SETTINGS = {
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}

# MyST source that must never reach the reader: directive fences, roles and directive options.
RAW_MYST = ["```{", ":::{", "{eq}`", "{numref}`", "{ref}`", "{doc}`", "{cite", ":label:", ":class: dropdown"]
MYST_ROLE = re.compile(r"\{(eq|numref|ref|doc|cite(:[a-z]+)?)\}`")
EXERCISE = re.compile(r"^(`{3,}|:{3,})\{exercise\}[ \t]*(?P<title>[^\n]*)$", re.M)
SOLUTION = re.compile(r"^(?P<fence>`{3,}|:{3,})\{solution\}[^\n]*\n(?P<body>.*?)^(?P=fence)[ \t]*$", re.M | re.S)
LABELS = re.compile(r"\$\$\s*\((?P<eq>[\w-]+)\)|^:label:[ \t]*(?P<opt>\S+)|^\((?P<target>[\w-]+)\)=", re.M)


# ---------------------------------------------------------------------------------------------------------
# What the chapter's source says


def _markdown(nb: dict) -> list[str]:
    return [_source(c) for c in nb["cells"] if c["cell_type"] == "markdown"]


def _source_chapter(path: Path) -> dict:
    """The chapter an edition was made from (chapters/ holds the sources), or the notebook itself."""
    source = REPO / "chapters" / path.name
    return _notebook(source if source.exists() else path)


def _labels(nb: dict) -> set[str]:
    """Labels a notebook's markdown defines: equations, directive labels (exercises) and targets (sections)."""
    return {next(v for v in m.groupdict().values() if v) for text in _markdown(nb) for m in LABELS.finditer(text)}


def _figure_names(nb: dict) -> set[str]:
    return {
        c["metadata"]["mystnb"]["figure"]["name"]
        for c in nb["cells"]
        if c["cell_type"] == "code" and c.get("metadata", {}).get("mystnb", {}).get("figure", {}).get("name")
    }


def _book_keys() -> set[str]:
    """Every key a reference can name: bibliography keys, and every chapter's labels and figure names."""
    keys = set(re.findall(r"^@\w+\{([^,\s]+),", (REPO / "references.bib").read_text(), re.M))
    for path in sorted((REPO / "chapters").glob("*.ipynb")):
        keys |= _labels(_notebook(path)) | _figure_names(_notebook(path))
    return keys


def _prose(markdown: str) -> str:
    """The longest stretch of plain prose in some markdown: it reads the same rendered (no markup, no math)."""
    pieces = re.split(r"\$[^$]*\$|`[^`]*`|\*+|_|\[|\]\([^)]*\)|\n\s*\n|^\s*:.*$|[()]", markdown, flags=re.M)
    plain = [" ".join(p.split()) for p in pieces if re.fullmatch(r"[\sA-Za-z0-9,;.'’:?!-]+", p or "-")]
    return max(plain, key=len, default="")[:60]


def _squeeze(text: str) -> str:
    """White space folded, and typographic quotes as typed ones (renderers turn ' into ’)."""
    return " ".join(text.split()).translate(str.maketrans("‘’“”", "''\"\""))


# ---------------------------------------------------------------------------------------------------------
# The server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_settings(folder: Path) -> None:
    for plugin, values in SETTINGS.items():
        path = folder / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def _stop(process: subprocess.Popen) -> None:
    """Stop the server and its kernels (one process group): SIGTERM, then SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _reader_env(home: Path, bin_: Path) -> dict:
    """The environment variables of a reader's JupyterLab: the reader's environment first on PATH, nothing of the
    tests' (no PYTHONPATH, no other virtual environment) and no Jupyter set-up of the user's."""
    env = {k: v for k, v in os.environ.items() if k not in ("JUPYTER_PATH", "PYTHONPATH", "VIRTUAL_ENV")}
    env.update(
        JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),  # no user kernelspec shadows the environment's python3
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        PATH=f"{bin_}{os.pathsep}{os.environ.get('PATH', '')}",
        VIRTUAL_ENV=str(bin_.parent),
        OPENBLAS_NUM_THREADS="1",
    )
    return env


@pytest.fixture(scope="module")
def reader_bin() -> Path:
    """bin/ of the reader's environment (requirements.txt alone), made when missing or stale."""
    return reader_venv.ensure()


@pytest.mark.reader
def test_reader_jupyterlab_extensions_are_enabled_and_compatible(reader_bin, tmp_path):
    """`jupyter labextension list` in the reader's environment: MyST and widgets there, none disabled or refused."""
    result = subprocess.run([str(reader_bin / "jupyter"), "labextension", "list"], capture_output=True, text=True,
                            env=_reader_env(tmp_path, reader_bin), timeout=120)
    report = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
    assert result.returncode == 0, report
    listed = re.findall(r"^[ \t]+(\S+) v(\S+) (\w+) +(\S+)", report, re.M)
    names = {name for name, *_ in listed}
    assert {"jupyterlab-myst", "@jupyter-widgets/jupyterlab-manager"} <= names, report
    bad = [(name, version, state, ok) for name, version, state, ok in listed if state != "enabled" or ok != "OK"]
    assert not bad, f"extensions disabled or incompatible with the reader's JupyterLab: {bad}\n{report}"
    assert not re.search(r"not compatible|incompatible|disabled|Conflicting", report, re.I), report


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory, reader_bin):
    """A JupyterLab server on the repository, from the reader's environment: its base URL and token."""
    home = tmp_path_factory.mktemp("jupyterlab")
    _write_settings(home / "settings")
    token, port = secrets.token_hex(16), _free_port()
    env = _reader_env(home, reader_bin)
    log = home / "server.log"
    command = [str(reader_bin / "jupyter-lab"), "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={REPO}"]  # fmt: skip
    with open(log, "w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(f"{base}api/status?token={token}", timeout=5):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start; its log:\n{log.read_text()[-3000:]}")
                time.sleep(0.5)
        yield base, token
    finally:
        _stop(process)


# ---------------------------------------------------------------------------------------------------------
# The page

MARKDOWN_TEXT = "() => [...document.querySelectorAll('.jp-Notebook .jp-MarkdownCell')].map(c => c.innerText).join(' ')"
KERNEL_STATE = """() => {
  const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')].map(p => p.textContent);
  return {busy: prompts.filter(p => p.includes('*')).length, unrun: prompts.filter(p => /\\[\\s*\\]/.test(p)).length,
          errors: document.querySelectorAll('.jp-Notebook [data-mime-type="application/vnd.jupyter.error"]').length,
          sliders: document.querySelectorAll('.jp-Notebook .widget-slider').length};
}"""


def _settled_text(page, cells: int) -> str:
    """The rendered markdown once every cell shows text and two readings a second apart agree."""
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-Notebook .jp-MarkdownCell.jp-mod-rendered')]"
        f"  .filter(c => c.innerText.trim()).length >= {cells}",
        timeout=90_000,
    )
    before = None
    for _ in range(60):
        text = page.evaluate(MARKDOWN_TEXT)
        if text == before:
            return text
        before = text
        page.wait_for_timeout(1000)
    return text


def _shot(page, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"jupyterlab-{name}.png"))


PLAYGROUND_CANVAS = "() => [...document.querySelectorAll('.jp-Notebook .olp canvas')].map(c => c.toDataURL())"


def _playground_is_live(page, name: str) -> None:
    """After Run All, the chapter's playground runs its script in JupyterLab: live, a slider moved by a click or
    by the arrow keys, and the drawing follows."""
    page.wait_for_function("() => [...document.querySelectorAll('.jp-Notebook .olp')]"
                           ".some(e => e.optimlabPlayground)", timeout=30_000)
    playground = page.locator(".jp-Notebook .olp").first
    playground.scroll_into_view_if_needed()
    assert playground.locator(".olp-live").first.is_visible(), "the playground's live controls are not shown"
    before = page.evaluate(PLAYGROUND_CANVAS)
    slider = playground.locator(".olp-slot input[type=range]").first
    value = slider.input_value()
    box = slider.bounding_box()
    # A click on the track, as a reader would (JupyterLab keeps the keyboard focus on the notebook).
    slider.click(position={"x": box["width"] * 0.2, "y": box["height"] / 2})
    page.wait_for_timeout(200)
    assert slider.input_value() != value, "clicking the playground's slider did not move it"
    # the arrow keys then move it too: the playground keeps its keys from the notebook's shortcuts
    clicked = int(slider.input_value())
    slider.focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    assert int(slider.input_value()) == clicked + 3, "the arrow keys did not move the focused slider in JupyterLab"
    _shot(page, f"{name}-playground")
    assert page.evaluate(PLAYGROUND_CANVAS) != before, "moving a playground slider in JupyterLab did not redraw"


@pytest.mark.browser
@pytest.mark.parametrize("rel", NOTEBOOKS)
def test_chapter_reads_and_runs_in_jupyterlab(browser, jupyterlab, rel):
    base, token = jupyterlab
    path = REPO / rel
    assert path.exists(), f"{rel} does not exist"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    nb, source = _notebook(path), _source_chapter(path)
    name = path.stem

    page = browser.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(f"{base}lab/tree/{rel}?reset&token={token}", wait_until="load")
        text = _settled_text(page, sum(bool(m.strip()) for m in _markdown(nb)))
        _shot(page, f"{name}-top")
        problems = []

        raw = sorted({marker for marker in RAW_MYST if marker in text})
        if raw:
            problems.append(f"raw MyST in the rendered markdown: {raw}")

        titles = [_prose(m["title"]) for text_ in _markdown(source) for m in EXERCISE.finditer(text_)]
        missing = [t for t in titles if t and _squeeze(t) not in _squeeze(text)]
        if missing:
            problems.append(f"exercise titles not shown: {missing}")

        # No solution's prose is shown until the reader opens it (and opening every solution shows them all).
        # A solution is checked by its longest stretch of prose, if that is long and said nowhere else.
        outside = _squeeze(SOLUTION.sub("", "\n".join(_markdown(source))))
        snippets = [_prose(m["body"]) for t in _markdown(source) for m in SOLUTION.finditer(t)]
        snippets = [s for s in snippets if len(s) >= 20 and s not in outside]
        assert snippets, f"{rel}: no solution prose found in its chapter source to check"
        shown = [s for s in snippets if s in _squeeze(text)]
        if shown:
            problems.append(f"solutions shown before the reader opens them: {shown}")

        # References: a key the chapter defines must read as its number. jupyterlab-myst cannot resolve
        # citations, figures and other chapters' labels: a MyST chapter may show those keys, a plain one none.
        words = set(re.findall(r"[\w-]+", text))
        visible = _book_keys() & words
        allowed = visible - _labels(nb) if MYST_ROLE.search("\n".join(_markdown(nb))) else set()
        if visible - allowed:
            problems.append(f"reference keys shown instead of numbers or names: {sorted(visible - allowed)}")
        assert not problems, f"{rel}:\n  " + "\n  ".join(problems)

        summaries = page.locator(".jp-Notebook .jp-MarkdownCell details > summary")
        for i in range(summaries.count()):
            summaries.nth(i).click()
        page.wait_for_timeout(500)
        opened = _squeeze(page.evaluate(MARKDOWN_TEXT))
        hidden = [s for s in snippets if s not in opened]
        assert not hidden, f"{rel}: solutions still not shown after opening every one: {hidden}"
        _shot(page, f"{name}-solutions-opened")

        # Run All with the environment's kernel, then move a kernel-free slider.
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        started = time.monotonic()
        page.wait_for_function(
            f"() => {{ const s = ({KERNEL_STATE})(); return s.busy === 0 && s.unrun === 0 && s.sliders > 0; }}",
            timeout=RUN_ALL_TIMEOUT_MS,
        )
        state = page.evaluate(KERNEL_STATE)
        expected_errors = sum("raises-exception" in _tags(c) for c in nb["cells"] if c["cell_type"] == "code")
        assert state["errors"] == expected_errors, (
            f"Run All: {state['errors']} cells raised, {expected_errors} are tagged raises-exception "
            f"({time.monotonic() - started:.1f} s)"
        )
        slider = page.locator(".jp-Notebook .widget-slider").first
        slider.scroll_into_view_if_needed()
        before = _pictures(slider)
        assert before, "the slider has no picture next to it"
        _shot(page, f"{name}-slider-before")
        after = _pictures_after_drag(page, slider, before)
        _shot(page, f"{name}-slider-after")
        assert after != before, "moving the slider after Run All did not change its picture"
        if any("widgets.playground(" in "".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"):
            _playground_is_live(page, name)
    finally:
        page.close()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, f"{rel} was modified by the test"
