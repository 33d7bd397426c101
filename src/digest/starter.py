"""What ``digest init`` writes: ``config.yaml`` and a welcome item in the site's language (from
the catalogue), and copies of the default templates.

The files in ``digest/scaffold/`` are Jinja templates with ``[[ ]]`` / ``[% %]`` delimiters, so
the ``{{ }}`` of the subject line they hold is written as it is; ``[[ _("...") ]]`` is a message
of the catalogue like any other."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import PurePosixPath

import jinja2

from digest.catalogue import Translator

SCAFFOLD_DELIMITERS = {
    "block_start_string": "[%",
    "block_end_string": "%]",
    "variable_start_string": "[[",
    "variable_end_string": "]]",
    "comment_start_string": "[#",
    "comment_end_string": "#]",
}


def _yaml_string(value: str) -> str:
    """A YAML double-quoted scalar (JSON's string syntax is a subset of YAML's)."""
    return json.dumps(value, ensure_ascii=False)


def scaffold_files(locale: str, t: Translator) -> list[tuple[PurePosixPath, bytes]]:
    """(path relative to the new site, content) of every file ``digest init`` writes."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("digest", "scaffold"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        **SCAFFOLD_DELIMITERS,  # type: ignore[arg-type]
    )
    t.install(env)
    env.filters["yaml"] = _yaml_string
    context = {
        "locale": locale,
        # Translators: the subject line of the scaffold's weekly digest: a Jinja template.
        # Keep {{ }}, items|length and the quotes; translate the two words in quotes.
        "subject": t.gettext(
            "{{ site.title }}: {{ items|length }} {{ 'new post' if items|length == 1 "
            "else 'new posts' }}"
        ),
    }
    plan = [
        (PurePosixPath(name), env.get_template(name).render(context).encode("utf-8"))
        for name in ("config.yaml", "content/welcome.md")
    ]
    templates = files("digest") / "templates"
    for entry in sorted(templates.iterdir(), key=lambda entry: entry.name):
        if entry.is_file() and entry.name.endswith((".mjml", ".txt")):
            plan.append((PurePosixPath("templates", entry.name), entry.read_bytes()))
    return plan
