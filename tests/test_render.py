"""Rendering: Jinja2 -> MJML -> mjml-python -> premailer, the text part, user templates, and
template errors that name the template file and line."""

from __future__ import annotations

import re
import socket
from dataclasses import replace
from datetime import datetime
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from digest.config import LoadedConfig
from digest.errors import TemplateError
from digest.i18n import Formatters
from digest.models import Item
from digest.render import PLACEHOLDERS, Renderer, check_mjml, inline_css
from tests.conftest import AT, AT_TEXT, SAMPLE_WEEK_TITLES, CliRunner, Site, render_period

BERLIN = ZoneInfo("Europe/Berlin")


def build(site: Site, cli: CliRunner, out: Path) -> tuple[int, str, str]:
    result = cli("-c", site.config, "build", "weekly", "--out", out, "--at", AT_TEXT)
    return result.code, result.out, result.err


# --- the rendered issue ------------------------------------------------------------------------


def test_rendered_issue_keeps_placeholders_for_the_recipient(site: Site) -> None:
    rendered, items = render_period(site.load())
    assert [item.title for item in items] == list(SAMPLE_WEEK_TITLES)
    for token in PLACEHOLDERS.values():
        assert token in rendered.html and token in rendered.text
    assert rendered.subject == "Präventionskette Ahlen: 3 neue Beiträge"
    assert rendered.preheader.startswith("Erste Fachkonferenz der sozialen Arbeit in Ahlen · ")
    assert rendered.html.startswith("<!doctype html>")
    assert '<html lang="de"' in rendered.html
    assert "<mj-" not in rendered.html and "<mjml" not in rendered.html
    assert rendered.text.endswith("\n") and "\n\n\n" not in rendered.text


def test_css_is_inlined_and_media_queries_kept(site: Site) -> None:
    rendered, _ = render_period(site.load())
    # the <mj-style inline="inline"> rule for footer links ends up on the links themselves
    footer_link = re.search(r'<a href="__digest_unsubscribe_url__"[^>]*>', rendered.html)
    assert footer_link and "color:#52606d" in footer_link.group(0).replace(" ", "")
    assert "@media" in rendered.html and "prefers-color-scheme: dark" in rendered.html


def test_rendering_never_touches_the_network(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("rendering tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    rendered, _ = render_period(site.load())
    assert "fonts.googleapis.com" not in rendered.html
    html = inline_css(
        '<html><head><link href="https://fonts.googleapis.com/css?family=Roboto" '
        'rel="stylesheet"></head><body><p>x</p></body></html>',
        "p { color: red }",
    )
    assert '<p style="color:red">x</p>' in html


def test_only_mj_style_inline_is_inlined(site: Site) -> None:
    html = inline_css(
        "<html><head><style>td { padding: 0 } @media (max-width: 479px) { p { margin: 0 } }"
        '</style></head><body><table><tr><td class="a"><p>x</p></td></tr></table></body></html>',
        ".a p { color: red } .a { font-size: 0 }",
    )
    assert html.startswith("<!doctype html>")
    assert '<td class="a" style="font-size:0">' in html  # the inline rules ...
    assert '<p style="color:red">' in html
    assert "<style>td { padding: 0 } @media (max-width: 479px)" in html  # ... not the <head>'s
    assert "data-premailer" not in html
    rendered, _ = render_period(site.load())
    assert "<mj-style" not in rendered.html
    assert "border-collapse:collapse; mso-table-lspace" not in rendered.html  # MJML's reset
    title = re.search(r'<h2 class="item-title"[^>]*>', rendered.html)  # h2 under the h1
    assert title and "font-size:20px" in title.group(0).replace(" ", "")


def test_english_site(site: Site) -> None:
    site.replace_in_config("locale: de_DE", "locale: en_GB")
    rendered, _ = render_period(site.load())
    assert '<html lang="en"' in rendered.html
    assert "Read more" in rendered.html and "Weiterlesen" not in rendered.html
    assert "17 November 2017" in rendered.text
    assert "Unsubscribe: __digest_unsubscribe_url__" in rendered.text


def _item(**changes: Any) -> Item:
    base = Item(
        source="test",
        key="k",
        title="T",
        published_at=datetime(2017, 11, 15, 10, tzinfo=BERLIN),
        summary="Zusammenfassung",
        body_html="<p>Ganzer <strong>Text</strong></p>",
        content_hash="0",
    )
    return replace(base, **changes)


def test_item_without_url_shows_its_body_and_titles_are_escaped(site: Site) -> None:
    loaded = site.load()
    period = loaded.schedule("weekly").period_ending(AT)
    items = [
        _item(key="a", title="Fish & <Chips>", url="https://www.example.org/fish"),
        _item(key="b", title="Ohne Link", published_at=datetime(2017, 11, 14, tzinfo=BERLIN)),
    ]
    rendered = Renderer(loaded).render("weekly", items, period)
    assert "Fish &amp; &lt;Chips&gt;" in rendered.html and "<Chips>" not in rendered.html
    assert "Fish & <Chips>" in rendered.text  # the text part is not HTML
    assert "Ganzer <strong>Text</strong>" in rendered.html
    assert rendered.html.count("Weiterlesen") == 1  # only the item with a url has a button
    assert "  Ganzer Text" in rendered.text


def test_group_by_tag_and_month(site: Site) -> None:
    loaded = site.load()
    rendered, items = render_period(loaded, "monthly", datetime(2017, 12, 1, 9, tzinfo=BERLIN))
    assert len(items) == 6
    assert rendered.subject == "Monatsrückblick November 2017"
    headings = re.findall(r"(?m)^== (.+) ==$", rendered.text)
    assert headings == sorted(set(headings), key=headings.index)  # each group once
    assert "Präventionswoche" in headings
    site.replace_in_config("group_by: tag", "group_by: month")
    rendered, _ = render_period(site.load(), "monthly", datetime(2017, 12, 1, 9, tzinfo=BERLIN))
    assert re.findall(r"(?m)^== (.+) ==$", rendered.text) == ["November 2017"]


def test_empty_issue_renders(site: Site) -> None:
    loaded = site.load()
    rendered = Renderer(loaded).render("weekly", [], loaded.schedule("weekly").period_ending(AT))
    assert rendered.subject == "Präventionskette Ahlen: 0 neue Beiträge"
    assert "__digest_unsubscribe_url__" in rendered.html


def test_locale_filters() -> None:
    german = Formatters("de_DE", BERLIN)
    moment = datetime(2017, 11, 29, 23, 30, tzinfo=ZoneInfo("UTC"))
    assert german.date(moment) == "30. November 2017"  # in the site's time zone
    assert german.date(datetime(2017, 11, 29, 10, tzinfo=BERLIN)) == "29. November 2017"
    assert german.number(1234.5) == "1.234,5"
    assert german.month(moment) == "November 2017"
    assert german.interval(datetime(2017, 11, 13, tzinfo=BERLIN), AT) == "13.–20. Nov. 2017"
    english = Formatters("en_GB", BERLIN)
    assert english.date(datetime(2017, 11, 29, 10, tzinfo=BERLIN)) == "29 November 2017"
    assert english.number(1234.5) == "1,234.5"


# --- user templates ------------------------------------------------------------------------------

USER_ITEM = """\
{#- A site's own item layout -#}
    <mj-section padding="8px 0" css-class="dm-card">
      <mj-column>
        <mj-text css-class="dm-text"><p class="own-item">{{ item.title }} ({{ item.date|format_date("short") }})</p></mj-text>
      </mj-column>
    </mj-section>
"""


def test_user_item_template_overrides_only_that_file(
    site: Site, cli: CliRunner, tmp_path: Path
) -> None:
    site.write("templates/item.mjml", USER_ITEM)
    code, _, err = build(site, cli, tmp_path / "out")
    assert code == 0, err
    html = (tmp_path / "out" / "email.html").read_text(encoding="utf-8")
    assert html.count('class="own-item"') == 3
    assert "Erste Fachkonferenz der sozialen Arbeit in Ahlen (17.11.17)" in html
    assert "Weiterlesen" not in html and "<img" not in html  # the packaged item.mjml is unused
    # ... while the packaged digest.mjml and footer.mjml still frame it
    assert "<h1" in html and "Wochenüberblick" in html
    assert "prefers-color-scheme: dark" in html
    assert 'href="https://www.example.org/praeventionskette/unsubscribe/SAMPLE-TOKEN"' in html
    # the text part comes from the packaged digest.txt, unchanged
    assert "Weiterlesen: https://" in (tmp_path / "out" / "email.txt").read_text(encoding="utf-8")


def test_template_extending_the_default(site: Site, cli: CliRunner, tmp_path: Path) -> None:
    site.write(
        "templates/letter.mjml",
        """
        {% extends "digest.mjml" %}
        {% block intro %}
            <mj-section css-class="dm-card"><mj-column>
              <mj-text><p class="own-intro">Liebe Leserinnen und Leser,</p></mj-text>
            </mj-column></mj-section>
        {% endblock %}
        """,
    )
    site.write("templates/letter.txt", '{% extends "digest.txt" %}\n')
    site.replace_in_config("template: digest ", "template: letter ")
    code, _, err = build(site, cli, tmp_path / "out")
    assert code == 0, err
    html = (tmp_path / "out" / "email.html").read_text(encoding="utf-8")
    assert 'class="own-intro"' in html and "Hallo Erika Mustermann" not in html
    assert all(title in html for title in ("Wochenüberblick", *SAMPLE_WEEK_TITLES[:1]))


# --- template errors: one line naming template file and line ----------------------------------


def _one_error(site: Site, cli: CliRunner, tmp_path: Path) -> str:
    code, out, err = build(site, cli, tmp_path / "out")
    assert (code, out) == (1, ""), err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("digest: error: "), err
    assert "Traceback" not in err
    return lines[0].removeprefix("digest: error: ")


BROKEN_ITEM = {
    "syntax-error": (
        "<mj-text>{{ item.title }</mj-text>",
        "4: template syntax error: unexpected '}'",
    ),
    "unknown-filter": (
        "<mj-text>{{ item.title|shout }}</mj-text>",
        "4: template syntax error: No filter named 'shout'.",
    ),
    "unclosed-block": ("{% if item.url %}<mj-text>x</mj-text>", None),
    "undefined-variable": (
        "<mj-text>{{ nope }}</mj-text>",
        "4: undefined value: 'nope' is undefined",
    ),
    "undefined-attribute": (
        "<mj-text>{{ item.nope }}</mj-text>",
        "4: undefined value: 'digest.render.ItemView object' has no attribute 'nope'",
    ),
    "unknown-mj-tag": (
        "<mj-foo>{{ item.title }}</mj-foo>",
        "4: unknown tag <mj-foo> (near '<mj-foo>Erste Fachkonferenz der sozialen Arbeit in Ahlen</mj')",
    ),
}


@pytest.mark.parametrize("case", BROKEN_ITEM.values(), ids=BROKEN_ITEM.keys())
def test_broken_user_item_template(
    site: Site, cli: CliRunner, tmp_path: Path, case: tuple[str, str | None]
) -> None:
    line, expected = case
    path = site.write(
        "templates/item.mjml",
        f"""
        {{#- comment -#}}
        <mj-section>
          <mj-column>
            {line}
          </mj-column>
        </mj-section>
        """,
    )
    message = _one_error(site, cli, tmp_path)
    if expected is None:  # Jinja reports an unclosed block at the end of the file
        assert re.fullmatch(
            rf"{re.escape(str(path))}:\d+: template syntax error: Unexpected end of template\..*",
            message,
        ), message
    else:
        assert message == f"{path}:{expected}"


def test_unbalanced_mjml_names_the_rendered_line(
    site: Site, cli: CliRunner, tmp_path: Path
) -> None:
    site.write("templates/item.mjml", "<mj-section>\n  <mj-column>\n    <mj-text>x</mj-text>\n")
    message = _one_error(site, cli, tmp_path)
    assert re.fullmatch(
        r"digest\.mjml: rendered MJML line \d+: </mj-body> closes </mj-column> opened on line \d+",
        message,
    ), message


def test_check_mjml_unit() -> None:
    check_mjml("<mjml><mj-body><mj-section /><mj-raw><p>x</p></mj-raw></mj-body></mjml>", "t")
    with pytest.raises(TemplateError, match=r"^t: rendered MJML line 2: <mj-body> is never closed"):
        check_mjml("<mjml>\n<mj-body>\n", "t")
    with pytest.raises(TemplateError, match=r"^t: rendered MJML line 3: </mjml> closes </mj-body>"):
        check_mjml("<mjml>\n<mj-body>\n</mjml>", "t")
    with pytest.raises(TemplateError, match=r"^where:7: unknown tag <mj-colum>"):
        check_mjml("<mjml><mj-colum></mj-colum></mjml>", "t", locate=lambda tag: "where:7")


def test_broken_text_template(site: Site, cli: CliRunner, tmp_path: Path) -> None:
    path = site.write(
        "templates/digest.txt",
        "{{ site.title }}\n{% for x in items %}\n{{ x.title }\n{% endfor %}\n",
    )
    assert _one_error(site, cli, tmp_path) == f"{path}:3: template syntax error: unexpected '}}'"
    path.write_text("{{ site.title }}\n\n{{ site.nope }}\n", encoding="utf-8")
    assert _one_error(site, cli, tmp_path) == (
        f"{path}:3: undefined value: 'digest.config.SiteConfig object' has no attribute 'nope'"
    )


def test_missing_template(site: Site, cli: CliRunner, tmp_path: Path) -> None:
    site.replace_in_config("template: digest ", "template: letter ")
    assert _one_error(site, cli, tmp_path) == (
        f"template 'letter.mjml' not found in {site.templates} nor among the packaged defaults"
    )


@pytest.mark.parametrize(
    "subject, expected",
    [
        ("{{ site.title }", "template syntax error: unexpected '}'"),
        ("{{ sit.title }}", "undefined value: 'sit' is undefined"),
    ],
)
def test_broken_subject_template(
    site: Site, cli: CliRunner, tmp_path: Path, subject: str, expected: str
) -> None:
    text = site.config.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^(    subject: ).*$", lambda m: f'{m.group(1)}"{subject}"', text, count=1)
    site.config.write_text(text, encoding="utf-8")
    assert _one_error(site, cli, tmp_path) == (
        f"{site.config}: digests subject/preheader (subject): {expected}"
    )


def test_subject_with_crlf_from_an_item_title_is_neutralised(
    site: Site, cli: CliRunner, tmp_path: Path
) -> None:
    text = site.config.read_text(encoding="utf-8")
    text = re.sub(
        r"(?m)^(    subject: ).*$",
        lambda m: m.group(1) + '"{{ items[0].title }} und mehr"',
        text,
        count=1,
    )
    site.config.write_text(text, encoding="utf-8")
    site.write(
        "content/2017-11-19-evil.md",
        '---\ntitle: "Evil\\r\\nBcc: evil@x\\rX-Evil: 1"\ndate: 2017-11-19T12:00:00+01:00\n---\nx\n',
    )
    code, out, err = build(site, cli, tmp_path / "out")
    assert code == 0, err
    assert "subject: Evil Bcc: evil@x X-Evil: 1 und mehr" in out.splitlines()
    raw = (tmp_path / "out" / "email.eml").read_bytes()
    assert b"\n" not in raw.replace(b"\r\n", b"") and b"\r" not in raw.replace(b"\r\n", b"")
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert str(message["Subject"]) == "Evil Bcc: evil@x X-Evil: 1 und mehr"
    assert message["Bcc"] is None and message["X-Evil"] is None
    text_part = (tmp_path / "out" / "email.txt").read_text(encoding="utf-8")
    assert "* Evil Bcc: evil@x X-Evil: 1\n" in text_part  # the title is one line in the body too


def test_renderer_prefers_user_templates(site: Site) -> None:
    loaded: LoadedConfig = site.load()
    assert not loaded.templates_dir.exists()
    assert (
        Renderer(loaded)
        .env.get_template("item.mjml")
        .filename.endswith(  # type: ignore[union-attr]
            "digest/templates/item.mjml"
        )
    )
    site.write("templates/item.mjml", USER_ITEM)
    assert Renderer(site.load()).env.get_template("item.mjml").filename == str(
        site.templates / "item.mjml"
    )
