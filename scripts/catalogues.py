"""Keep the message catalogues in step with the code.

Extracts every msgid the code and the packaged templates use (the ``[tool.babel]`` mappings in
pyproject.toml), merges them into ``src/digest/locale/<lang>/LC_MESSAGES/digest.po`` (new
entries empty, gone ones dropped, never fuzzy), copies msgids into the English catalogue (its
msgstr is the msgid unless someone wrote a better one) and lists what is left to translate::

    python3 scripts/catalogues.py            # update the .po files, list open entries
    python3 scripts/catalogues.py --check    # change nothing; exit 1 if anything is open
    python3 scripts/catalogues.py --union    # after a git merge conflict in a .po file: take
                                             # the entries of both sides, then update

Then write the German (and any other) msgstr into the .po file by hand. tests/test_catalogue.py
runs the same check.
"""

from __future__ import annotations

import argparse
import io
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import _parse_mapping_toml
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
LOCALE_DIR = ROOT / "src" / "digest" / "locale"
DOMAIN = "digest"
_PLACEHOLDER = re.compile(r"%\((\w+)\)[-#0 +]*\d*(?:\.\d+)?[sdifr]|\{(\w+)\}")


def extract(root: Path = ROOT) -> Catalog:
    """Every msgid used in the code and packaged templates, as a template catalogue."""
    with (root / "pyproject.toml").open("rb") as config:
        method_map, options_map = _parse_mapping_toml(config, "pyproject.toml", "pyproject.toml")
    template = Catalog(domain=DOMAIN, project="digest")
    for filename, lineno, message, comments, context in extract_from_dir(
        str(root), method_map, options_map, strip_comment_tags=True
    ):
        template.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return template


def catalogue_files() -> dict[str, Path]:
    return {
        path.parent.parent.name: path
        for path in sorted(LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))
    }


def read(path: Path, language: str) -> Catalog:
    with path.open("rb") as po_file:
        return read_po(po_file, locale=language, domain=DOMAIN)


def write(catalog: Catalog, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as po_file:
        # sorted, without file:line comments: a change elsewhere in the code (or a merge of two
        # branches that both add messages) touches only the entries it adds
        write_po(
            po_file,
            catalog,
            width=100,
            no_location=True,
            omit_header=False,
            sort_output=True,
            ignore_obsolete=True,
            include_previous=False,
        )


def update(template: Catalog, catalog: Catalog, language: str) -> None:
    catalog.update(
        template, no_fuzzy_matching=True, update_header_comment=False, update_creation_date=False
    )
    catalog.obsolete.clear()
    if language == "en":
        for message in catalog:
            if message.id and not _translated(message):
                message.string = message.id


def _translated(message: Message) -> bool:
    strings = message.string if isinstance(message.string, (list, tuple)) else [message.string]
    return all(strings)


def _placeholders(text: str) -> set[str]:
    return {a or b for a, b in _PLACEHOLDER.findall(text)}


def problems(template: Catalog, catalog: Catalog, language: str) -> Iterator[str]:
    """What is missing, untranslated, fuzzy or inconsistent in one catalogue."""
    for message in template:
        if message.id and catalog.get(message.id, message.context) is None:
            yield f"{language}: missing {message.id!r} ({_where(message)})"
    for message in catalog:
        if not message.id:
            continue
        where = f"{language}: {message.id!r}"
        if message.fuzzy:
            yield f"{where} is fuzzy"
        if not _translated(message):
            yield f"{where} is not translated"
            continue
        ids = message.id if isinstance(message.id, (list, tuple)) else [message.id]
        strings = message.string if isinstance(message.string, (list, tuple)) else [message.string]
        wanted = set().union(*(_placeholders(text) for text in ids))
        for text in strings:
            if _placeholders(text) - wanted:
                yield f"{where}: translation {text!r} has placeholders the msgid has not"
        if len(ids) == 1 and _placeholders(strings[0]) != wanted:
            yield f"{where}: translation {strings[0]!r} does not use the same placeholders"
    for message, errors in catalog.check():
        for error in errors:
            yield f"{language}: {message.id!r}: {error}"


def _where(message: Message) -> str:
    return ", ".join(f"{file}:{line}" for file, line in message.locations[:2])


def union_of_merge_sides(path: Path, language: str) -> Catalog:
    """Both sides of a conflicted ``.po`` (git's stages 2 and 3): every entry of either, ours
    where both translated one."""

    def side(stage: int) -> Catalog:
        relative = path.relative_to(ROOT).as_posix()
        text = subprocess.check_output(["git", "show", f":{stage}:{relative}"], cwd=ROOT)
        return read_po(io.BytesIO(text), locale=language, domain=DOMAIN)

    ours, theirs = side(2), side(3)
    for message in theirs:
        mine = ours.get(message.id, message.context) if message.id else None
        if message.id and (mine is None or not _translated(mine)):
            ours.add(message.id, message.string, context=message.context, flags=message.flags)
    return ours


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing, report only")
    parser.add_argument("--union", action="store_true", help="resolve a git merge conflict")
    args = parser.parse_args(argv)
    template = extract()
    found = []
    for language, path in catalogue_files().items():
        if args.union and b"\n<<<<<<< " in b"\n" + path.read_bytes():
            catalog = union_of_merge_sides(path, language)
        else:
            catalog = read(path, language)
        if not args.check:
            update(template, catalog, language)
            write(catalog, path)
        found += list(problems(template, read(path, language), language))
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
