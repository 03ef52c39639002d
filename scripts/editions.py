"""The course's editions, generated from the chapter sources and the numbers of the web book's build.

One source of truth: `chapters/*.ipynb` (MyST Markdown, executed and stored with outputs). From it and the Sphinx
environment of the last `make book` (equation, figure, section and exercise numbers; citations as the book renders
them), this script writes:

- **the plain edition**, `notebooks/NN_name.ipynb`: every MyST role and directive turned into plain Jupyter
  Markdown, so that a chapter reads right in Colab, in JupyterLab without extensions and on Binder. Numbers are the
  web book's ("(6.3)", "Figure 6.2", "Exercise 6.4"), citations read "Kingma and Ba (2015)" and link to the
  bibliography page, links to other chapters go to the web book, exercises are headed blocks, and solutions sit in
  collapsed `<details>`. A code exercise gets a skeleton cell and a check cell that the reader can run.
  It is committed, so that the Colab and Binder buttons (and a clone) find it; `check` tells when it is stale.
- **the student edition**, `_build/student/`: the same notebooks without any solution (`chapters/`), and the web book
  without solutions (`html/`, built from the executed chapters of the last build, so that sliders work).

    python scripts/editions.py plain            # write notebooks/ (after `make book`)
    python scripts/editions.py check            # fail if notebooks/ differs from what `plain` would write
    python scripts/editions.py student          # write _build/student/chapters and its book sources
    python scripts/editions.py stamp            # write the install cell of every chapter from _config.yml

The repository named in every install cell comes from one value, `repository.url` (and `repository.branch`) of
`_config.yml`; links to the web book come from `html.baseurl`.
"""

from __future__ import annotations

import argparse
import ast
import copy
import html
import json
import pickle
import re
import shutil
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ROOT / "chapters"
PLAIN = ROOT / "notebooks"
BUILD = ROOT / "_build"
STUDENT = BUILD / "student"
ENVIRONMENT = BUILD / ".doctrees" / "environment.pickle"

INSTALL_MARK = "# Colab and other fresh environments: install optimlab when it is missing."


def config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text())


def install_cell_source(cfg: dict) -> str:
    """The first code cell of every chapter: installs optimlab where it is missing (Colab), nothing elsewhere."""
    url, branch = cfg["repository"]["url"].rstrip("/"), cfg["repository"].get("branch", "main")
    return (f"{INSTALL_MARK}\ntry:\n    import optimlab\nexcept ImportError:\n"
            f'    %pip install --quiet "optimlab[widgets] @ git+{url}@{branch}"\n    import optimlab')


# ------------------------------------------------------------------------------------------ the book's numbers
class Book:
    """What the last build numbered and how it rendered citations, read from its Sphinx environment and HTML."""

    def __init__(self, build: Path = BUILD):
        if not (build / ".doctrees" / "environment.pickle").exists():
            sys.exit("editions: no build found: run `make book` first (the editions take the book's numbers)")
        with open(build / ".doctrees" / "environment.pickle", "rb") as f:
            self.env = pickle.load(f)
        self.html = build / "html"
        self.formats = self.env.config.numfig_format
        self.labels = self.env.domaindata["std"]["labels"]
        self.url = config()["html"]["baseurl"].rstrip("/") + "/"
        self.citations = self._citations()

    def number(self, doc: str, kind: str, ident: str) -> str | None:
        numbers = self.env.toc_fignumbers.get(doc, {}).get(kind, {}).get(ident)
        return ".".join(map(str, numbers)) if numbers else None

    def equation(self, label: str) -> tuple[str, str]:
        doc = self.env.domaindata["math"]["objects"][label][0]
        return doc, f"({self.number(doc, 'displaymath', 'equation-' + label)})"

    def target(self, label: str) -> tuple[str, str, str | None]:
        """(document, anchor, title) of a label: a section, figure or exercise."""
        doc, anchor, title = self.labels[label]
        return doc, anchor, title

    def numbered(self, label: str, fmt: str | None = None) -> tuple[str, str]:
        """What {numref} shows for a label ("Figure 6.2", "Exercise 6.4", "Section 6.3")."""
        doc, anchor, _ = self.target(label)
        for kind in ("figure", "exercise", "table", "code-block"):
            number = self.number(doc, kind, anchor)
            if number:
                return doc, (fmt or self.formats[kind]).replace("%s", number)
        sec = self.env.toc_secnumbers.get(doc, {}).get("#" + anchor)
        if sec:
            return doc, (fmt or self.formats["section"]).replace("%s", ".".join(map(str, sec)))
        raise KeyError(f"no number for {label!r}")

    def section_number(self, doc: str, anchor: str) -> str | None:
        sec = self.env.toc_secnumbers.get(doc, {}).get(anchor)
        return ".".join(map(str, sec)) if sec else None

    def link(self, doc: str, anchor: str = "") -> str:
        return f"{self.url}{doc}.html" + (f"#{anchor}" if anchor else "")

    def _citations(self) -> dict:
        """(role, keys) -> Markdown of the citation as the book renders it, taken from the built pages."""
        rendered, pages = {}, {}
        for ref in self.env.domaindata["cite"]["citation_refs"]:
            page = pages.get(ref.docname)
            if page is None:
                page = pages[ref.docname] = (self.html / f"{ref.docname}.html").read_text()
            m = re.search(rf'<span class="bibtex-citation" id="{ref.citation_ref_id}">(.*?)</span>', page, re.S)
            if not m:
                continue
            text = self._markdown_of(m.group(1), ref.docname)
            role = "p" if text.startswith("(") or text.startswith("[(") else "t"
            rendered[(role, tuple(t.key for t in ref.targets))] = text
        return rendered

    def _markdown_of(self, fragment: str, doc: str) -> str:
        base = self.link(doc).rsplit("/", 1)[0] + "/"

        def anchor(m):
            href = m.group(1)
            target = href if href.startswith("http") else _join(base, href)
            return f"[{_plain_text(m.group(2))}]({target})"

        text = re.sub(r'<a [^>]*href="([^"]+)"[^>]*>(.*?)</a>', anchor, fragment, flags=re.S)
        text = re.sub(r"</?em>", "*", text)
        return html.unescape(re.sub(r"<[^>]+>", "", text))


def _join(base: str, relative: str) -> str:
    parts = base.rstrip("/").split("/")
    for piece in relative.split("/"):
        if piece == "..":
            parts.pop()
        elif piece != ".":
            parts.append(piece)
    return "/".join(parts)


def _plain_text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment.replace("<em>", "*").replace("</em>", "*")))


# ------------------------------------------------------------------------------------------ MyST to Markdown
ROLE = re.compile(r"\{(eq|numref|ref|cite:p|cite:t|doc|glue|glue:text|glue:)\}`([^`]+)`")
DISPLAY_MATH = re.compile(r"^([ \t]*)\$\$((?:(?!\$\$).)*?)\$\$[ \t]*\(([\w:\-]+)\)[ \t]*$", re.M | re.S)
TARGET = re.compile(r"^\(([\w\-]+)\)=[ \t]*\n", re.M)
LINK = re.compile(r"\]\((?!https?:|#|mailto:)([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*$", re.M)


class Converter:
    """Turns one chapter's MyST Markdown into plain Markdown with the book's numbers."""

    def __init__(self, book: Book, doc: str, glued: dict | None = None):
        self.book, self.doc, self.glued = book, doc, glued or {}

    def glue(self, content: str) -> str:
        """A value glued by a code cell, formatted as myst-nb formats it in the web book."""
        from myst_nb.core.variables import format_plain_text

        key, _, fmt = content.rpartition(":") if ":" in content else (content, "", "")
        if key not in self.glued:
            raise KeyError(f"{self.doc}: nothing glued under {key!r}")
        return format_plain_text(self.glued[key], fmt)

    def role(self, m: re.Match) -> str:
        kind, content = m.group(1), m.group(2)
        if kind.startswith("glue"):
            return self.glue(content)
        explicit = re.fullmatch(r"(.*?)\s*<([^>]+)>", content, re.S)
        text, label = (explicit.group(1), explicit.group(2)) if explicit else (None, content)
        if kind == "eq":
            doc, number = self.book.equation(label)
            return number if doc == self.doc else f"[{number}]({self.book.link(doc, 'equation-' + label)})"
        if kind.startswith("cite"):
            keys = tuple(k.strip() for k in label.split(","))
            return self.book.citations[(kind[-1], keys)]
        if kind == "doc":
            doc = str(Path(self.doc).parent / label) if not label.startswith("/") else label.lstrip("/")
            doc = str(Path(doc).resolve().relative_to(ROOT.resolve())) if ".." in doc else doc
            title = text or self.book.env.titles[doc].astext()
            return f"[{title}]({self.book.link(doc)})"
        doc, anchor, title = self.book.target(label)
        if kind == "numref":
            shown = self.book.numbered(label, text.replace("{number}", "%s") if text else None)[1]
        elif anchor.startswith("ex-") or title == "Exercise":
            shown = text or self.book.numbered(label)[1]
        else:
            shown = text or title
        return shown if doc == self.doc else f"[{shown}]({self.book.link(doc, anchor)})"

    def link(self, m: re.Match) -> str:
        target = m.group(1)
        path, _, anchor = target.partition("#")
        if not path.endswith((".ipynb", ".md")):
            return m.group(0)
        doc = (Path(self.doc).parent / path).with_suffix("")
        doc = Path(*[p for p in doc.parts])
        resolved = str((ROOT / doc).resolve().relative_to(ROOT.resolve()))
        return f"]({self.book.link(resolved, anchor)})"

    def heading(self, m: re.Match) -> str:
        hashes, title = m.group(1), m.group(2)
        from docutils.nodes import make_id

        anchor = "" if len(hashes) == 1 else "#" + make_id(_heading_words(title))
        number = self.book.section_number(self.doc, anchor)
        if number and len(hashes) == 1:
            return f"{hashes} {number}. {title}"
        return f"{hashes} {number} {title}" if number else m.group(0)

    def markdown(self, text: str) -> str:
        text = TARGET.sub("", text)
        text = DISPLAY_MATH.sub(self.display_math, text)
        text = ROLE.sub(self.role, text)
        text = LINK.sub(self.link, text)
        text = _outside_code(text, lambda part: HEADING.sub(self.heading, part))
        return self.directives(text)

    def display_math(self, m: re.Match) -> str:
        indent, body, label = m.groups()
        number = self.book.equation(label)[1]
        return f"{indent}$${body.rstrip()}\n{indent}\\tag{{{number[1:-1]}}}\n{indent}$$"

    def directives(self, text: str) -> str:
        """{exercise} as a headed block, {solution} as collapsed <details>."""
        out, pos = [], 0
        for block in _directive_blocks(text):
            out.append(text[pos:block["start"]])
            out.append(self.directive(block))
            pos = block["end"]
        out.append(text[pos:])
        return "".join(out)

    def directive(self, block: dict) -> str:
        name, argument, options, body = block["name"], block["argument"], block["options"], block["body"]
        body = self.directives(body)
        if name == "exercise":
            number = self.book.numbered(options["label"])[1]
            title = f"{number} ({argument})" if argument else number
            return f"#### {title}\n\n{body.strip()}\n"
        if name == "solution":
            return self.solution_open(argument) + f"{body.strip()}\n\n</details>\n"
        raise ValueError(f"{self.doc}: no plain form for the directive {name!r}")

    def solution_open(self, label: str) -> str:
        number = self.book.numbered(label)[1]
        title = self.exercise_title(label)
        return f"<details>\n<summary>Solution to {number}{title} (click to show)</summary>\n\n"

    def exercise_title(self, label: str) -> str:
        return ""


def glued(nb: dict) -> dict:
    """name -> text/plain of every value a chapter glues (myst-nb's `glue(name, value, display=False)`)."""
    values = {}
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            name = out.get("metadata", {}).get("scrapbook", {}).get("name")
            if name:
                values[name] = "".join(out["data"]["text/plain"])
    return values


def _heading_words(title: str) -> str:
    # In math an underscore separates words of the anchor (docutils: $\\beta_1$ → beta-1); outside, it is markup.
    title = re.sub(r"\$([^$]+)\$", lambda m: m.group(1).replace("_", " "), title)
    return re.sub(r"[`*_]", "", title)


def _outside_code(text: str, transform) -> str:
    """Apply transform to the parts of text that are not inside fenced code blocks."""
    parts = re.split(r"(^(?:`{3,}|~{3,})[^\n]*\n.*?^(?:`{3,}|~{3,})[ \t]*$)", text, flags=re.M | re.S)
    return "".join(p if i % 2 else transform(p) for i, p in enumerate(parts))


def _directive_blocks(text: str):
    """Top-level ```{name} argument ... ``` blocks (any fence length of 3 or more backticks)."""
    pattern = re.compile(r"^(?P<fence>`{3,})\{(?P<name>[\w\-]+)\}[ \t]*(?P<arg>[^\n]*)\n", re.M)
    pos = 0
    while True:
        m = pattern.search(text, pos)
        if not m:
            return
        fence = m.group("fence")
        close = re.compile(rf"^{fence}[ \t]*$", re.M)
        end = close.search(text, m.end())
        if not end:
            raise ValueError(f"unclosed directive {m.group('name')!r}")
        inner = text[m.end():end.start()]
        options, lines = {}, inner.split("\n")
        while lines and re.match(r"^:[\w\-]+:", lines[0]):
            key, _, value = lines.pop(0)[1:].partition(":")
            options[key] = value.strip()
        yield {"name": m.group("name"), "argument": m.group("arg").strip(), "options": options,
               "body": "\n".join(lines), "start": m.start(), "end": end.end() + (1 if text[end.end():end.end() + 1]
                                                                                 == "\n" else 0)}
        pos = end.end()


# ------------------------------------------------------------------------------------------ notebooks
GATE_START = re.compile(r"^```\{solution-start\}[ \t]*([\w\-]+)[ \t]*\n(?::[\w\-]+:[^\n]*\n)*```[ \t]*$", re.M)
GATE_END = re.compile(r"^```\{solution-end\}[ \t]*\n```[ \t]*$", re.M)


def _source(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _markdown_cell(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": text.strip("\n")}


def _code_cell(text: str, tags=()) -> dict:
    meta = {"tags": list(tags)} if tags else {}
    return {"cell_type": "code", "execution_count": None, "metadata": meta, "outputs": [], "source": text}


def is_check_cell(source: str) -> bool:
    return bool(re.match(r"^(optimlab\.)?check\.\w+\(", source.strip()))


def skeleton(source: str) -> str:
    """A solution's code cell with every function body replaced by a place for the reader's code.

    Imports stay, functions keep their signature and docstring, and everything else goes: the reader starts from
    the interface the check calls.
    """
    tree, lines, kept = ast.parse(source), source.split("\n"), []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            kept.append("\n".join(lines[node.lineno - 1:node.end_lineno]))
        elif isinstance(node, ast.FunctionDef):
            first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
            body = node.body[0]
            has_doc = isinstance(body, ast.Expr) and isinstance(body.value, ast.Constant) \
                and isinstance(body.value.value, str)
            header_end = body.end_lineno if has_doc else body.lineno - 1
            indent = " " * body.col_offset
            kept.append("\n".join(lines[first - 1:header_end]) + f"\n{indent}# Your code here.\n{indent}...")
    return "\n\n\n".join(kept)


def gated_solutions(cells: list) -> list:
    """[(start, end, label)] cell ranges of the solutions written across cells (solution-start ... solution-end)."""
    spans, start, label = [], None, None
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "markdown":
            continue
        text = _source(cell)
        m = GATE_START.search(text)
        if m:
            start, label = i, m.group(1)
        if GATE_END.search(text) and start is not None:
            spans.append((start, i, label))
            start = None
    return spans


class Edition:
    """Writes one chapter in plain Markdown (`with_solutions=True`: the reader's edition; False: the student's)."""

    def __init__(self, book: Book, cfg: dict, with_solutions: bool):
        self.book, self.cfg, self.with_solutions = book, cfg, with_solutions

    def notebook(self, path: Path) -> dict:
        nb = json.loads(path.read_text())
        doc = f"chapters/{path.stem}"
        conv = Converter(self.book, doc, glued(nb))
        cells, spans = nb["cells"], gated_solutions(nb["cells"])
        out, i = [], 0
        while i < len(cells):
            span = next((s for s in spans if s[0] == i), None)
            if span:
                out.extend(self.gated(conv, cells[span[0]:span[1] + 1], span[2]))
                i = span[1] + 1
                continue
            out.extend(self.cell(conv, cells[i]))
            i += 1
        result = {k: v for k, v in nb.items() if k != "cells"}
        result["metadata"] = {k: v for k, v in nb["metadata"].items() if k in ("kernelspec", "language_info")}
        result["metadata"]["colab"] = {"provenance": []}
        result["cells"] = [self.tidy(c) for c in out]
        return result

    def tidy(self, cell: dict) -> dict:
        cell = copy.deepcopy(cell)
        cell.pop("id", None)
        cell["source"] = _source(cell)
        return cell

    def cell(self, conv: Converter, cell: dict) -> list:
        if cell["cell_type"] == "markdown":
            text = _source(cell)
            if not self.with_solutions:
                text = _drop_solutions(text)
            return [_markdown_cell(conv.markdown(text))] if text.strip() else []
        cell = copy.deepcopy(cell)
        # values glued for the prose are not shown under their cell in the web book: nor here
        cell["outputs"] = [o for o in cell.get("outputs", []) if "scrapbook" not in o.get("metadata", {})]
        source = _source(cell)
        meta = cell["metadata"]
        tags = meta.get("tags", [])
        if source.startswith(INSTALL_MARK):
            cell["source"] = install_cell_source(self.cfg)
        figure = meta.get("mystnb", {}).get("figure")
        cell["metadata"] = {}
        if "hide-input" in tags:
            cell["metadata"]["jupyter"] = {"source_hidden": True}
        if "raises-exception" in tags:
            cell["metadata"]["tags"] = ["raises-exception"]
        out = [cell]
        if figure:
            label = figure["name"]
            number = self.book.numbered(label)[1]
            out.append(_markdown_cell(f"**{number}.** {conv.markdown(figure['caption'])}"))
        return out

    def gated(self, conv: Converter, cells: list, label: str) -> list:
        """A solution written across cells: skeleton and check cells, then the solution folded in <details>. Text
        before the solution's start (the exercise, in the same cell) and after its end stays outside."""
        lead, cells, tail = split_gate(cells)
        out = self.cell(conv, _markdown_cell(lead)) if lead.strip() else []
        out += self._gated(conv, cells, label)
        return out + (self.cell(conv, _markdown_cell(tail)) if tail.strip() else [])

    def _gated(self, conv: Converter, cells: list, label: str) -> list:
        code = [c for c in cells if c["cell_type"] == "code"]
        checks = [c for c in code if is_check_cell(_source(c))]
        solution_code = [c for c in code if not is_check_cell(_source(c))]
        out = []
        if checks:
            skeletons = [skeleton(_source(c)) for c in solution_code]
            out.append(_code_cell("\n\n\n".join(s for s in skeletons if s)))
            out.extend(_code_cell(_source(c)) for c in checks)
        if not self.with_solutions:
            return out
        parts = [conv.solution_open(label)]
        for c in cells:
            text = _source(c)
            if c["cell_type"] == "markdown":
                text = text.strip()
                if text:
                    parts.append(conv.markdown(text) + "\n\n")
            else:
                parts.append(f"```python\n{text.strip()}\n```\n\n")
                printed = "".join("".join(o.get("text", "")) for o in c.get("outputs", [])
                                  if o.get("output_type") == "stream")
                if printed.strip():
                    parts.append(f"```\n{printed.rstrip()}\n```\n\n")
        parts.append("</details>")
        out.append(_markdown_cell("".join(parts)))
        return out


def split_gate(cells: list) -> tuple[str, list, str]:
    """A gated solution's cells as (the text before its start, the solution's own cells, the text after its end):
    the first and last markdown cells may hold more than the opening and closing directives."""
    cells = copy.deepcopy(cells)
    first, last = _source(cells[0]), _source(cells[-1])
    start, end = GATE_START.search(first), GATE_END.search(last)
    if len(cells) == 1:
        return first[:start.start()], [_markdown_cell(first[start.end():end.start()])], first[end.end():]
    cells[0]["source"], cells[-1]["source"] = first[start.end():], last[:end.start()]
    return first[:start.start()], cells, last[end.end():]


def _drop_solutions(text: str) -> str:
    out, pos = [], 0
    for block in _directive_blocks(text):
        if block["name"] == "solution":
            out.append(text[pos:block["start"]])
            pos = block["end"]
    out.append(text[pos:])
    return re.sub(r"\n{3,}", "\n\n", "".join(out))


def chapters() -> list[Path]:
    return sorted(CHAPTERS.glob("*.ipynb"))


def dumps(nb: dict) -> str:
    return json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def write_plain(out: Path = PLAIN) -> list[Path]:
    book, cfg = Book(), config()
    edition = Edition(book, cfg, with_solutions=True)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in chapters():
        target = out / path.name
        target.write_text(dumps(edition.notebook(path)))
        written.append(target)
    for stale in set(out.glob("*.ipynb")) - set(written):
        stale.unlink()
    return written


def check_plain() -> int:
    book, cfg = Book(), config()
    edition = Edition(book, cfg, with_solutions=True)
    stale = [p.name for p in chapters()
             if not (PLAIN / p.name).exists() or (PLAIN / p.name).read_text() != dumps(edition.notebook(p))]
    extra = sorted({p.name for p in PLAIN.glob("*.ipynb")} - {p.name for p in chapters()})
    if stale or extra:
        print(f"editions: notebooks/ is stale ({', '.join(stale + extra)}): run `make editions` and commit it")
        return 1
    print(f"editions: notebooks/ matches the {len(chapters())} chapters and the last build")
    return 0


# ------------------------------------------------------------------------------------------ the student edition
def student_myst(executed: dict) -> dict:
    """An executed chapter (MyST, with outputs and widget state) without its solutions; code exercises get a
    skeleton cell and a check cell in their place."""
    nb = copy.deepcopy(executed)
    cells, spans, out, i = nb["cells"], gated_solutions(nb["cells"]), [], 0
    while i < len(cells):
        span = next((s for s in spans if s[0] == i), None)
        if span:
            lead, block, tail = split_gate(cells[span[0]:span[1] + 1])
            if _drop_solutions(lead).strip():
                out.append(_markdown_cell(_drop_solutions(lead)))
            code = [c for c in block if c["cell_type"] == "code"]
            checks = [c for c in code if is_check_cell(_source(c))]
            if checks:
                sol = [c for c in code if not is_check_cell(_source(c))]
                out.append(_code_cell("\n\n\n".join(skeleton(_source(c)) for c in sol)))
                out.extend(_code_cell(_source(c)) for c in checks)
            if _drop_solutions(tail).strip():
                out.append(_markdown_cell(_drop_solutions(tail)))
            i = span[1] + 1
            continue
        cell = cells[i]
        if cell["cell_type"] == "markdown":
            text = _drop_solutions(_source(cell))
            if text.strip():
                cell["source"] = text
                out.append(cell)
        else:
            out.append(cell)
        i += 1
    for cell in out:
        cell["source"] = _source(cell)
    nb["cells"] = out
    return nb


def executed(path: Path) -> dict:
    """The chapter as the last build executed it, outputs and widget state included (from its execution cache)."""
    import nbformat
    from jupyter_cache import get_cache

    _, nb = get_cache(BUILD / ".jupyter_cache").merge_match_into_notebook(nbformat.read(path, as_version=4))
    return json.loads(nbformat.writes(nb))


# The student edition has no Colab or Binder button: both would open the repository's notebooks/, which hold the
# solutions, and neither service opens a notebook from a web book. Its pages say instead how the handed-out
# notebooks are opened, in place of the instructor edition's text about the buttons.
STUDENT_LAUNCH = """## Open the chapters of this edition

This is the student edition of the course: every exercise, and no solution. Its pages have no Binder or Colab
button (the full course's buttons open notebooks that hold the solutions). Your teacher hands out the chapters as
notebooks, one `.ipynb` file per chapter, with the numbers of these pages and the cells that check your answers.
The first cell of each installs optimlab where it is missing.

Colab
: *File › Upload notebook* in Colab, then choose the chapter's notebook (or open it from Google Drive). Run the
  cells from the top.

A JupyterHub, Binder or a course repository
: Open the notebooks where your teacher put them.

Your computer
: Set up the reader's environment as in *Run it on your computer* below, then run `jupyter lab` in the folder
  that holds the notebooks.

For teachers
: `make student`, in a clone of the course's repository, writes these notebooks to
  `_build/student/chapters/*.ipynb` and this web book to `_build/student/html/`. Hand the notebooks out on the
  course's learning platform, in a shared Google Drive folder (Colab opens them from there), on a JupyterHub,
  or in a repository of your own that holds them without the full course's `notebooks/`: Colab opens a
  notebook of a public GitHub repository at
  `https://colab.research.google.com/github/OWNER/REPOSITORY/blob/BRANCH/NAME.ipynb`.

"""

STUDENT_INTRO_LAUNCH = """Run a chapter
: Your teacher hands out the chapters as notebooks, without solutions: open them in Colab, on a JupyterHub or
  on your computer ({doc}`pages/how-to-run` says how). These pages have no Binder or Colab button.

"""


def student_config(cfg: dict) -> dict:
    """The student book's _config.yml: titled as such, not executed (the chapters come executed), no launch button."""
    cfg = copy.deepcopy(cfg)
    cfg["title"] = cfg["title"] + " (student edition)"
    cfg["execute"]["execute_notebooks"] = "off"
    cfg["exclude_patterns"] = [p for p in cfg["exclude_patterns"] if p != "_vendor"] + ["_build"]
    launch = cfg.setdefault("launch_buttons", {})
    for key in [k for k in launch if k.endswith("_url")] + ["binderhub_url", "colab_url", "jupyterhub_url"]:
        launch[key] = ""
    launch["thebe"] = False
    return cfg


def _replace(text: str, pattern: str, replacement: str, where: str) -> str:
    """text with the one match of pattern (a multi-line regex) replaced; a source that lost it is an error."""
    new, count = re.subn(pattern, lambda _: replacement, text, count=1, flags=re.M | re.S)
    if count != 1:
        raise ValueError(f"editions: {where} no longer has the text the student edition replaces ({pattern!r})")
    return new


def student_pages(src: Path) -> None:
    """The student book's pages, edited in src: no instructors' page, no launch buttons promised."""
    # The teachers' page (plans, grading advice) stays in the instructor edition; links to it become plain words.
    (src / "pages" / "instructors.md").unlink()
    toc = src / "_toc.yml"
    toc.write_text(re.sub(r"^[ \t]*- file: pages/instructors[ \t]*\n", "", toc.read_text(), flags=re.M))
    for page in [src / "intro.md", *(src / "pages").glob("*.md")]:
        page.write_text(re.sub(r"\{doc\}`(?:pages/|\.\./pages/)?instructors`", "the instructors' page of the web book",
                               page.read_text()))
    how = src / "pages" / "how-to-run.md"
    how.write_text(_replace(how.read_text(), r"^## Launch a chapter in Binder or Colab\n.*?(?=^## )", STUDENT_LAUNCH,
                            "pages/how-to-run.md"))
    intro = src / "intro.md"
    intro.write_text(_replace(intro.read_text(), r"^Run a chapter in the cloud\n:.*?\n\n", STUDENT_INTRO_LAUNCH,
                              "intro.md"))


def write_student() -> None:
    book, cfg = Book(), config()
    edition = Edition(book, cfg, with_solutions=False)
    notebooks = STUDENT / "chapters"
    if notebooks.exists():
        shutil.rmtree(notebooks)
    notebooks.mkdir(parents=True)
    for path in chapters():
        (notebooks / path.name).write_text(dumps(edition.notebook(path)))
    # The web book without solutions: the executed chapters of the last build, stripped, built without executing.
    src = STUDENT / "src"
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    for name in ("_toc.yml", "intro.md", "references.bib"):
        shutil.copy(ROOT / name, src / name)
    for name in ("pages", "_static", "_ext"):
        shutil.copytree(ROOT / name, src / name)
    student_pages(src)
    if (ROOT / "_vendor").exists():
        (src / "_vendor").symlink_to(ROOT / "_vendor")
    (src / "chapters").mkdir()
    for path in chapters():
        (src / "chapters" / path.name).write_text(dumps(student_myst(executed(path))))
    (src / "_config.yml").write_text(yaml.safe_dump(student_config(cfg), sort_keys=False, allow_unicode=True))


def stamp() -> int:
    """Write the install cell of every chapter from _config.yml; say which changed."""
    source, changed = install_cell_source(config()), []
    for path in chapters():
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code" and _source(cell).startswith(INSTALL_MARK):
                if _source(cell) != source:
                    cell["source"] = source
                    changed.append(path.name)
                break
        else:
            sys.exit(f"editions: {path.name} has no install cell")
        if path.name in changed:
            path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    print(f"editions: install cell written in {len(changed)} chapters" if changed else
          "editions: every install cell already names the configured repository")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["plain", "check", "student", "stamp"])
    args = parser.parse_args(argv)
    if args.what == "plain":
        print(f"editions: wrote {len(write_plain())} notebooks to notebooks/")
        return 0
    if args.what == "check":
        return check_plain()
    if args.what == "student":
        write_student()
        print("editions: wrote _build/student/chapters and _build/student/src")
        return 0
    return stamp()


if __name__ == "__main__":
    sys.exit(main())
