"""Pages without sphinx-thebe's scripts.

Jupyter Book always loads sphinx-thebe, which adds its configuration script twice to every page (a console error,
"Identifier 'THEBE_JS_URL' has already been declared") and a loader that fetches Thebe from a CDN. The course has no
"Live code" (`launch_buttons.thebe: false`): Binder and Colab run the chapters in full. So both scripts go.
"""


def _is_thebe(script) -> bool:
    filename = str(getattr(script, "filename", None) or "")
    body = (getattr(script, "attributes", None) or {}).get("body", "")
    return filename.endswith("sphinx-thebe.js") or "THEBE_JS_URL" in body


def drop_thebe(app, pagename, templatename, context, doctree):
    if "script_files" in context:
        context["script_files"] = [s for s in context["script_files"] if not _is_thebe(s)]


def setup(app):
    app.connect("html-page-context", drop_thebe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
