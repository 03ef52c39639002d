"""Launch buttons that open the plain edition of a chapter.

Colab renders no MyST, and JupyterLab on Binder has no numbers for figures, citations or other chapters, so the
Colab and Binder buttons of a chapter page open `notebooks/<chapter>.ipynb` (written by `scripts/editions.py` from
the chapter and this build's numbers) instead of the MyST source in `chapters/`. The download button still gives
the source.
"""

SOURCE, PLAIN = "/chapters/", "/notebooks/"


def use_plain_edition(app, pagename, templatename, context, doctree):
    if not pagename.startswith("chapters/"):
        return
    for group in context.get("header_buttons", []):
        if group.get("label") != "launch-buttons":
            continue
        for button in group["buttons"]:
            if button.get("text") in ("Colab", "Binder") and SOURCE in button.get("url", ""):
                button["url"] = button["url"].replace(SOURCE, PLAIN, 1)


def setup(app):
    # after sphinx-book-theme has made the buttons (priority 501)
    app.connect("html-page-context", use_plain_edition, priority=502)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
