"""The editions generated from the chapters: the plain edition (notebooks/, for Colab and any Jupyter) and the student
edition (_build/student/). Tests marked `book` read the last build (`make book`; `make test` runs them after it)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import editions  # noqa: E402

HTML = ROOT / "_build" / "html"
MYST = re.compile(r"\{(eq|numref|ref|cite|cite:p|cite:t|doc|glue|glue:text|fas)\}`|^[ \t]*(`{3,}|:{3,})\{|"
                  r"^:(label|class|name):|^\([\w\-]+\)=[ \t]*$|\$\$[ \t]*\([\w\-]+\)[ \t]*$", re.M)


def _md(nb: dict) -> list[str]:
    return [c["source"] for c in nb["cells"] if c["cell_type"] == "markdown"]


def _source_md(path: Path) -> list[str]:
    return ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "markdown"]


def _solutions(path: Path) -> list[str]:
    """Labels of every solution of a chapter, single-cell ({solution}) and gated ({solution-start})."""
    text = "\n".join(_source_md(path))
    return re.findall(r"^`{3,}\{solution(?:-start)?\}[ \t]*([\w\-]+)", text, re.M)


def _exercises(path: Path) -> list[str]:
    text = "\n".join(_source_md(path))
    return re.findall(r"^`{3,}\{exercise\}[^\n]*\n:label:[ \t]*([\w\-]+)", text, re.M)


# ------------------------------------------------------------------------------------------ without a build
SOLUTION = '''import numpy as np


def adam_step(theta, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    """One step of Adam."""
    b1, b2 = betas
    m = b1 * m + (1 - b1) * grad
    return theta, m, v


def helper(x,
           y):
    return x + y


print(adam_step(1, 2, 3, 4, 1))
'''


def test_skeleton_keeps_imports_signatures_and_docstrings_only():
    out = editions.skeleton(SOLUTION)
    assert "import numpy as np" in out
    assert 'def adam_step(theta, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):\n    """One step of Adam."""' \
        in out
    assert "def helper(x,\n           y):\n    # Your code here.\n    ..." in out
    assert "b1 * m" not in out and "print(" not in out and "return x + y" not in out
    namespace = {}
    exec(compile(out, "<skeleton>", "exec"), namespace)  # it runs, and the functions return None
    assert namespace["adam_step"](1, 2, 3, 4, 1) is None


def test_check_cells_are_recognised():
    assert editions.is_check_cell("check.adam_step(adam_step)")
    assert editions.is_check_cell("optimlab.check.clip_grad_norm(my_clip)\n")
    assert not editions.is_check_cell("x = check.adam_step(adam_step)")
    assert not editions.is_check_cell("def check(x): pass")


@pytest.mark.parametrize("path", editions.chapters(), ids=lambda p: p.stem)
def test_every_chapter_has_two_checked_code_exercises_whose_solutions_pass(path):
    """Two check cells or more per chapter, each stored passing (nbval re-runs them, so the checker accepts the
    chapter's solution), and each inside a solution written across cells (so the editions make it a skeleton)."""
    cells = json.loads(path.read_text())["cells"]
    gated = [range(start, end + 1) for start, end, _ in editions.gated_solutions(cells)]
    checks = [i for i, c in enumerate(cells) if c["cell_type"] == "code" and editions.is_check_cell(_src(c))]
    assert len(checks) >= 2, f"{path.name}: {len(checks)} checked code exercises"
    for i in checks:
        printed = "".join("".join(o.get("text", "")) for o in cells[i]["outputs"])
        returned = [o["data"]["text/plain"] for o in cells[i]["outputs"] if o["output_type"] == "execute_result"]
        assert ": correct on all " in printed, (path.name, _src(cells[i]), printed)
        assert ["".join(r) for r in returned] == ["True"], (path.name, _src(cells[i]), returned)
        assert any(i in span for span in gated), f"{path.name}: {_src(cells[i])!r} is outside a solution"


def _src(cell: dict) -> str:
    return "".join(cell["source"])


def test_every_chapter_has_the_configured_install_cell():
    expected = editions.install_cell_source(editions.config())
    for path in editions.chapters():
        code = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
        assert "".join(code[0]["source"]) == expected, f"{path.name}: run `python scripts/editions.py stamp`"
        assert "remove-cell" in code[0]["metadata"].get("tags", []), path.name


def test_plain_edition_exists_for_every_chapter():
    assert sorted(p.name for p in editions.PLAIN.glob("*.ipynb")) == [p.name for p in editions.chapters()]


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.stem)
def test_plain_edition_has_no_myst(path):
    for text in _md(json.loads(path.read_text())):
        m = MYST.search(text)
        assert not m, f"{path.name}: MyST left in the plain edition: {text[max(0, m.start() - 80):m.end() + 80]!r}"


@pytest.mark.parametrize("path", editions.chapters(), ids=lambda p: p.stem)
def test_plain_edition_folds_every_solution(path):
    nb = json.loads((editions.PLAIN / path.name).read_text())
    text = "\n".join(_md(nb))
    folded = re.findall(r"^<details>\n<summary>Solution to Exercise \d+\.\d+ \(click to show\)</summary>\n"
                        r"(.*?)^</details>$", text, re.M | re.S)
    assert len(folded) == len(_solutions(path)) == text.count("<details>") == text.count("</details>")
    # no solution text outside its <details>
    outside = re.sub(r"^<details>.*?^</details>$", "", text, flags=re.M | re.S)
    assert "Solution to" not in outside and "<summary>" not in outside


@pytest.mark.parametrize("path", editions.chapters(), ids=lambda p: p.stem)
def test_plain_edition_code_is_the_chapters_code(path):
    """Every code cell of the chapter is in the plain edition, in order (the install cell names the repository)."""
    source = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    plain = [c for c in json.loads((editions.PLAIN / path.name).read_text())["cells"] if c["cell_type"] == "code"]
    plain_sources = iter(c["source"] for c in plain)
    for cell in source[1:]:
        text = "".join(cell["source"])
        if any(text == s for s in plain_sources):
            continue
        # a solution's code is folded into its <details>, as a code block
        assert any(f"```python\n{text.strip()}\n```" in m for m in _md(json.loads(
            (editions.PLAIN / path.name).read_text()))), f"{path.name}: cell missing: {text[:80]!r}"


# ------------------------------------------------------------------------------------------ against the build
def _built(doc: str) -> str:
    page = HTML / f"{doc}.html"
    if not page.exists():
        pytest.fail(f"{page} is missing: run `make book` first")
    return page.read_text()


@pytest.mark.book
def test_plain_edition_is_fresh():
    assert editions.check_plain() == 0


@pytest.mark.book
@pytest.mark.parametrize("path", editions.chapters(), ids=lambda p: p.stem)
def test_plain_numbers_equal_the_web_books(path):
    page = _built(f"chapters/{path.stem}")
    text = "\n".join(_md(json.loads((editions.PLAIN / path.name).read_text())))
    equations = re.findall(r'<span class="eqno">\((\d+\.\d+)\)', page)
    figures = re.findall(r'<span class="caption-number">Figure (\d+\.\d+) </span>', page)
    exercises = sorted(set(re.findall(r'<span class="caption-number">Exercise (\d+\.\d+) </span>', page)),
                       key=lambda n: [int(x) for x in n.split(".")])
    sections = re.findall(r'<h2><span class="section-number">(\d+\.\d+)\. </span>', page)
    assert sections and exercises, f"{path.name}: nothing numbered in the page?"
    assert re.findall(r"\\tag\{(\d+\.\d+)\}", text) == equations
    assert re.findall(r"^\*\*Figure (\d+\.\d+)\.\*\*", text, re.M) == figures
    assert re.findall(r"^#### Exercise (\d+\.\d+)", text, re.M) == exercises
    assert re.findall(r"^## (\d+\.\d+) ", text, re.M) == sections


@pytest.mark.book
@pytest.mark.parametrize("path", editions.chapters(), ids=lambda p: p.stem)
def test_plain_citations_read_as_the_web_books(path):
    page = _built(f"chapters/{path.stem}")
    text = "\n".join(_md(json.loads((editions.PLAIN / path.name).read_text())))
    shown = {re.sub(r"<[^>]+>", "", s).replace("<em>", "") for s in
             re.findall(r'<span class="bibtex-citation" id="id\d+">(.*?)</span>', page, re.S)}
    for cited in shown:
        words = re.sub(r"\s+", " ", cited).replace("et al.", "*et al.*")
        plain = re.sub(r"\]\([^)]*\)", "", text).replace("[", "")
        assert words in re.sub(r"\s+", " ", plain), f"{path.name}: {words!r} not in the plain edition"
    assert "/pages/bibliography.html#" in text


@pytest.mark.book
def test_launch_buttons_open_the_plain_edition():
    page = _built("chapters/06_adam")
    assert "colab.research.google.com/github/" in page
    assert re.search(r"colab\.research\.google\.com/github/[^\"]+/blob/[^\"/]+/notebooks/06_adam\.ipynb", page)
    assert re.search(r"urlpath=lab/tree/notebooks/06_adam\.ipynb", page)
    assert "/chapters/06_adam.ipynb" not in re.sub(r'href="[^"]*_sources[^"]*"', "", page.split("download")[0])


# ------------------------------------------------------------------------------------------ the student edition
# What makes a launch button (sphinx-book-theme adds the buttons when one of these is set).
LAUNCH_KEYS = ("binderhub_url", "jupyterhub_url", "thebe", "colab_url", "jupyterlite_url", "deepnote_url")


def _launch_options(cfg: dict, tmp_path: Path) -> dict:
    """The launch buttons' options that Sphinx gets from a _config.yml (Jupyter Book's defaults merged in)."""
    from jupyter_book.config import get_final_config

    path = tmp_path / "_config.yml"
    path.write_text(editions.yaml.safe_dump(cfg))
    sphinx, _ = get_final_config(user_yaml=path, cli_config={"latex_individualpages": False}, sourcedir=tmp_path)
    return sphinx["html_theme_options"].get("launch_buttons", {})


def test_student_book_config_has_no_launch_button(tmp_path):
    """The student book's buttons would open the repository's notebooks/, solutions included: it has none."""
    cfg = editions.config()
    assert {k for k in LAUNCH_KEYS if _launch_options(cfg, tmp_path).get(k)} >= {"binderhub_url", "colab_url"}
    student = editions.student_config(cfg)
    assert not [k for k in LAUNCH_KEYS if _launch_options(student, tmp_path).get(k)]
    assert student["execute"]["execute_notebooks"] == "off" and "(student edition)" in student["title"]
    assert cfg["launch_buttons"]["colab_url"], "student_config changed the instructor edition's configuration"


def test_student_pages_say_how_the_notebooks_are_handed_out(tmp_path):
    for name in ("_toc.yml", "intro.md"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    editions.shutil.copytree(ROOT / "pages", tmp_path / "pages")
    editions.student_pages(tmp_path)
    assert not (tmp_path / "pages" / "instructors.md").exists()
    assert "pages/instructors" not in (tmp_path / "_toc.yml").read_text()
    how, intro = (tmp_path / "pages" / "how-to-run.md").read_text(), (tmp_path / "intro.md").read_text()
    assert editions.STUDENT_LAUNCH in how and "_build/student/chapters/*.ipynb" in how
    assert editions.STUDENT_INTRO_LAUNCH in intro
    for page in (how, intro):  # no button promised, and the rest of the page kept
        assert "rocket" not in page and "{doc}`instructors`" not in page and "{doc}`pages/instructors`" not in page
    assert "## Run it on your computer" in how and "## How to use it" in intro
    with pytest.raises(ValueError, match="intro.md no longer has"):  # a page that lost the text: said, not skipped
        editions._replace(intro, r"^Run a chapter in the cloud\n", "", "intro.md")


STUDENT = ROOT / "_build" / "student"


@pytest.fixture(scope="module")
def student():
    editions.write_student()
    return STUDENT / "chapters"


@pytest.mark.book
@pytest.mark.parametrize("path", editions.chapters(), ids=lambda p: p.stem)
def test_student_edition_has_every_exercise_and_no_solution(student, path):
    nb = json.loads((student / path.name).read_text())
    text = "\n".join(_md(nb))
    assert "<details>" not in text and "Solution to" not in text
    assert len(re.findall(r"^#### Exercise \d+\.\d+", text, re.M)) == len(_exercises(path))
    cells = json.loads(path.read_text())["cells"]
    rest = "\n".join(editions._drop_solutions("".join(c["source"])) if c["cell_type"] == "markdown"
                     else "".join(c["source"]) for c in cells)
    student_text = "\n".join(c["source"] for c in nb["cells"])
    for cell in cells:
        if cell["cell_type"] != "markdown":
            continue
        for block in editions._directive_blocks("".join(cell["source"])):
            if block["name"] == "solution":
                # a line of the solution that the rest of the chapter does not also contain
                line = next((ln.strip() for ln in block["body"].split("\n")
                             if len(ln.strip()) > 30 and ln.strip() not in rest), None)
                assert line is None or line not in student_text, f"{path.name}: {line!r}"


@pytest.mark.book
@pytest.mark.parametrize("path", editions.chapters(), ids=lambda p: p.stem)
def test_student_code_exercises_get_skeleton_and_check(student, path):
    nb = json.loads((student / path.name).read_text())
    gated = editions.gated_solutions(json.loads(path.read_text())["cells"])
    checks = [c["source"] for c in nb["cells"] if c["cell_type"] == "code" and editions.is_check_cell(c["source"])]
    skeletons = [c["source"] for c in nb["cells"] if c["cell_type"] == "code" and "# Your code here." in c["source"]]
    assert len(checks) == len(skeletons) <= len(gated)
    for text in skeletons:
        compile(text, path.name, "exec")


@pytest.mark.book
def test_student_book_has_no_solutions():
    html = STUDENT / "html"
    if not (html / "index.html").exists():
        pytest.fail("_build/student/html is missing: run `make student` first")
    assert not (html / "pages" / "instructors.html").exists()  # plans and grading advice: the instructor edition
    for path in editions.chapters():
        page = (html / "chapters" / f"{path.stem}.html").read_text()
        assert 'class="solution' not in page, path.name
        exercises = set(re.findall(r'<span class="caption-number">Exercise (\d+\.\d+) </span>', page))
        assert len(exercises) == len(_exercises(path)), path.name


# A link that launches a notebook of the repository (Binder's urlpath, Colab's GitHub path), or Binder or Colab at all.
LAUNCH_LINK = re.compile(r'href="[^"]*(?:mybinder\.org/v2/|[?&]urlpath=|colab\.research\.google\.com/github/)[^"]*"')


@pytest.mark.book
def test_student_book_launches_no_notebook_with_solutions():
    html = STUDENT / "html"
    if not (html / "index.html").exists():
        pytest.fail("_build/student/html is missing: run `make student` first")
    pages = sorted(html.rglob("*.html"))
    assert len([p for p in pages if p.parent.name == "chapters"]) == len(editions.chapters())
    launches = {str(p.relative_to(html)): LAUNCH_LINK.findall(p.read_text()) for p in pages}
    assert not {page: links for page, links in launches.items() if links}
    # and the instructor edition has them, so the pattern finds what the buttons make
    assert LAUNCH_LINK.search(_built("chapters/06_adam"))


def test_glued_values_read_as_the_web_book_formats_them():
    nb = {"cells": [{"cell_type": "code", "source": "glue('rate', 0.123456, display=False)", "metadata": {},
                     "outputs": [{"output_type": "display_data", "data": {"text/plain": "0.123456"},
                                  "metadata": {"scrapbook": {"name": "rate", "mime_prefix": ""}}}]}]}
    conv = editions.Converter(None, "chapters/x", editions.glued(nb))
    assert conv.markdown("a rate of {glue:text}`rate:.2f` per step ({glue}`rate`)") == \
        "a rate of 0.12 per step (0.123456)"
    with pytest.raises(KeyError, match="nothing glued under 'missing'"):
        conv.markdown("{glue:text}`missing:.2f`")
