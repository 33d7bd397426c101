"""The ``content/`` folder source: front matter, ids, hashes, sanitising, and bad files.

A bad file is reported with its name and skipped; the rest of the folder still builds.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from digest.errors import SourceError
from digest.models import Collection
from digest.sources.folder import FolderSource
from tests.conftest import AT, AT_TEXT, SAMPLE_WEEK_TITLES, CliRunner, Site

BERLIN = ZoneInfo("Europe/Berlin")


def source(root: Path) -> FolderSource:
    return FolderSource(
        name="folder:content",
        root=root,
        pattern="**/*.md",
        base_url="https://www.example.org/site",
        timezone=BERLIN,
    )


def collect(site: Site) -> Collection:
    return source(site.content).collect(AT)


def test_sample_content_reads_without_problems(site: Site) -> None:
    result = collect(site)
    assert result.problems == ()
    assert len(result.items) == 10
    week = [item for item in result.items if item.title in SAMPLE_WEEK_TITLES]
    assert [item.published_at.date().isoformat() for item in week] == [
        "2017-11-14",
        "2017-11-16",
        "2017-11-17",
    ]
    for item in result.items:
        assert item.url and item.url.startswith("https://www.example.org/")
        assert item.image is None or item.image.alt
        assert item.summary and "\n" not in item.summary
        assert item.published_at.tzinfo is not None


def test_front_matter_fields(site: Site) -> None:
    site.write(
        "content/sub/full.md",
        """
        ---
        title: "  Ein   Titel  "
        date: 2017-11-15T09:30:00+01:00
        url: https://www.example.org/a
        summary: Kurz.
        image: {src: "https://www.example.org/a.jpg", alt: Bild, width: 600, height: 300}
        tags: [Schule, 2017]
        id: eigene-id
        ---
        Text mit **fett**.
        """,
    )
    item, warnings = source(site.content).read_file(site.content / "sub" / "full.md")
    assert warnings == []
    assert item.title == "Ein   Titel"
    assert item.key == "eigene-id" and item.uid == "folder:content:eigene-id"
    assert item.published_at == datetime(2017, 11, 15, 9, 30, tzinfo=BERLIN)
    assert item.url == "https://www.example.org/a"
    assert item.summary == "Kurz."
    assert item.image is not None
    assert (item.image.src, item.image.alt, item.image.width, item.image.height) == (
        "https://www.example.org/a.jpg",
        "Bild",
        600,
        300,
    )
    assert item.tags == ("Schule", "2017")
    assert item.body_html == "<p>Text mit <strong>fett</strong>.</p>\n"
    assert not item.draft


def test_defaults_id_from_path_date_in_site_zone_summary_from_body(site: Site) -> None:
    site.write(
        "content/2017/minimal.md",
        """
        ---
        title: Minimal
        date: 2017-11-15
        tags: "a, b"
        image: https://www.example.org/b.png
        ---
        Erster Absatz, der länger ist.

        Zweiter Absatz.
        """,
    )
    item, warnings = source(site.content).read_file(site.content / "2017" / "minimal.md")
    assert item.key == "2017/minimal"
    assert item.published_at == datetime(2017, 11, 15, 0, 0, tzinfo=BERLIN)
    assert item.summary == "Erster Absatz, der länger ist."
    assert item.tags == ("a", "b")
    assert item.url is None
    assert warnings == ["image has no alt text: screen readers will skip it"]


def test_naive_datetime_is_site_local(site: Site) -> None:
    site.write("content/n.md", "---\ntitle: N\ndate: 2017-11-15 10:00:00\n---\nx\n")
    item, _ = source(site.content).read_file(site.content / "n.md")
    assert item.published_at == datetime(2017, 11, 15, 10, 0, tzinfo=BERLIN)


def test_content_hash_is_stable_and_changes_with_content(site: Site) -> None:
    path = site.write("content/h.md", "---\ntitle: H\ndate: 2017-11-15\n---\nBody\n")
    first, _ = source(site.content).read_file(path)
    again, _ = source(site.content).read_file(path)
    assert first.content_hash == again.content_hash and len(first.content_hash) == 64
    path.write_text("---\ntitle: H\ndate: 2017-11-15\n---\nBody, edited\n", encoding="utf-8")
    edited, _ = source(site.content).read_file(path)
    assert edited.content_hash != first.content_hash
    assert edited.key == first.key


def test_html_in_content_is_sanitised_and_links_made_absolute(site: Site) -> None:
    site.write(
        "content/x.md",
        """
        ---
        title: X
        date: 2017-11-15
        ---
        <script>alert(1)</script><p onclick="evil()">Hallo <a href="/pfad">Link</a>
        <a href="javascript:alert(1)">js</a> <img src="bild.png" alt="B" onerror="x()"></p>
        <iframe src="https://evil.example"></iframe><style>p{}</style>
        """,
    )
    item, _ = source(site.content).read_file(site.content / "x.md")
    body = item.body_html
    for bad in ("<script", "alert(1)", "onclick", "javascript:", "onerror", "<iframe", "<style"):
        assert bad not in body, bad
    assert 'href="https://www.example.org/pfad"' in body
    assert 'src="https://www.example.org/site/bild.png"' in body


def test_drafts_unknown_keys_and_hidden_files(site: Site) -> None:
    site.write("content/d.md", "---\ntitle: D\ndate: 2017-11-15\ndraft: true\nfoo: 1\n---\nx\n")
    site.write("content/.hidden.md", "not even front matter")
    site.write("content/notes.txt", "ignored: not *.md")
    result = collect(site)
    drafts = [item for item in result.items if item.title == "D"]
    assert len(drafts) == 1 and drafts[0].draft
    assert [str(problem) for problem in result.problems] == [
        f"warning: {site.content / 'd.md'}: unknown front matter key(s) ignored: foo"
    ]


def test_duplicate_id_is_an_error_and_the_second_file_skipped(site: Site) -> None:
    site.write("content/a1.md", "---\ntitle: A1\ndate: 2017-11-15\nid: same\n---\nx\n")
    site.write("content/a2.md", "---\ntitle: A2\ndate: 2017-11-15\nid: same\n---\nx\n")
    result = collect(site)
    assert [item.title for item in result.items if item.key == "same"] == ["A1"]
    assert [str(problem) for problem in result.problems] == [
        f"error: {site.content / 'a2.md'}: id 'same' already used by {site.content / 'a1.md'} "
        "(file skipped)"
    ]


def test_missing_folder_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="content folder not found"):
        source(tmp_path / "nowhere").collect(AT)


# name -> (file text, message after "error: <path>: ")
BAD_FILES = {
    "no-front-matter": (
        "Nur Text, keine Metadaten.\n",
        "no front matter: the file must start with a '---' line",
    ),
    "unclosed-front-matter": (
        "---\ntitle: Offen\ndate: 2017-11-15\nText\n",
        "front matter is not closed: add a '---' line after it",
    ),
    "broken-yaml": (
        "---\ntitle: Kaputt\nsummary: a: b\ndate: 2017-11-15\n---\nText\n",
        "line 3: invalid YAML in front matter: mapping values are not allowed here",
    ),
    "front-matter-not-a-mapping": (
        "---\n- title\n- date\n---\nText\n",
        "front matter must be a mapping of keys (title, date, ...)",
    ),
    "bad-date": (
        "---\ntitle: Datum\ndate: 15.11.2017\n---\nText\n",
        "front matter: 'date' '15.11.2017' is not a date (use 2017-11-14 or "
        "2017-11-14T10:00:00+01:00)",
    ),
    "missing-date": (
        "---\ntitle: Ohne Datum\n---\nText\n",
        "front matter: 'date' is missing",
    ),
    "missing-title": (
        "---\ndate: 2017-11-15\n---\nText\n",
        "front matter: 'title' is missing or empty",
    ),
    "relative-url": (
        "---\ntitle: U\ndate: 2017-11-15\nurl: /aktuelles/u\n---\nText\n",
        "front matter: 'url' must be an absolute http(s) URL",
    ),
    "bad-image": (
        "---\ntitle: I\ndate: 2017-11-15\nimage: {src: https://x.org/a.jpg, size: 3}\n---\nText\n",
        "front matter: 'image' has unknown key(s): size",
    ),
    "bad-draft": (
        "---\ntitle: D\ndate: 2017-11-15\ndraft: maybe\n---\nText\n",
        "front matter: 'draft' must be true or false",
    ),
}


@pytest.mark.parametrize("case", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_bad_file_is_reported_by_name_and_skipped(
    site: Site, cli: CliRunner, tmp_path: Path, case: tuple[str, str]
) -> None:
    text, message = case
    bad = site.content / "2017-11-15-kaputt.md"  # dated inside the sample week
    bad.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    result = cli("-c", site.config, "build", "weekly", "--out", out, "--at", AT_TEXT)
    assert result.code == 0  # the rest still builds
    assert result.err_lines == [f"error: {bad}: {message} (file skipped)"]
    assert result.out.startswith("weekly: 3 item(s) for (2017-11-13T07:00+01:00, ")
    text_part = (out / "email.txt").read_text(encoding="utf-8")
    assert all(title in text_part for title in SAMPLE_WEEK_TITLES)

    # `digest check` reports the same line and fails.
    result = cli("-c", site.config, "check", "weekly", "--at", AT_TEXT)
    assert result.code == 1
    assert f"error: {bad}: {message} (file skipped)" in result.err_lines


def test_file_that_is_not_utf8(site: Site) -> None:
    bad = site.content / "latin1.md"
    bad.write_bytes("---\ntitle: Grüße\ndate: 2017-11-15\n---\n".encode("latin-1"))
    result = collect(site)
    assert [str(problem) for problem in result.problems] == [
        f"error: {bad}: not UTF-8 text (file skipped)"
    ]
    assert len(result.items) == 10
