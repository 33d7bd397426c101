"""The ``digest`` command line: init, check and build as a user runs them."""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

import pytest

from digest.cli import main
from tests.conftest import AT_TEXT, SAMPLE_WEEK_TITLES, CliRunner, Site

pytestmark = pytest.mark.both_databases


def tree(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


# --- init ------------------------------------------------------------------------------------


def test_init_then_check_passes(tmp_path: Path, cli: CliRunner) -> None:
    target = tmp_path / "newsite"
    result = cli("init", target)
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        f"created {target / 'config.yaml'}, {target / 'content'}/, {target / 'templates'}/",
        f"next: edit {target / 'config.yaml'}, then run: digest -c {target / 'config.yaml'} check",
    ]
    assert tree(target) == [
        "config.yaml",
        "content",
        "content/welcome.md",
        "templates",
        "templates/digest.mjml",
        "templates/digest.txt",
        "templates/footer.mjml",
        "templates/item.mjml",
    ]
    packaged = files("digest") / "templates"
    for name in ("digest.mjml", "digest.txt", "footer.mjml", "item.mjml"):
        assert (target / "templates" / name).read_bytes() == (packaged / name).read_bytes()

    result = cli("-c", target / "config.yaml", "check")
    assert result.code == 0, result.err
    assert result.err == ""
    assert result.out.splitlines()[-1] == "0 Fehler, 0 Warnungen"  # de_DE is the default

    # the welcome item is dated Monday 5 January 2026: the issue of Monday 12 January has it
    result = cli("-c", target / "config.yaml", "check", "--at", "2026-01-12T08:00:00+01:00")
    assert result.code == 0, result.err
    assert "weekly: 1 Beitrag in der nächsten Ausgabe" in result.out


@pytest.mark.parametrize(
    ("locale", "words"),
    [
        (
            "de_DE",
            {
                "subject": "Mein Newsletter: 1 neuer Beitrag",
                "title": "Wochenüberblick",
                "item": "Willkommen bei Ihrem Newsletter",
                "footer": "Beispielverein, Beispielstraße 1",
            },
        ),
        (
            "en_GB",
            {
                "subject": "My Newsletter: 1 new post",
                "title": "Weekly digest",
                "item": "Welcome to your digest",
                "footer": "Example Org, Example Street 1",
            },
        ),
    ],
)
def test_init_scaffolds_the_site_in_its_language(
    tmp_path: Path, cli: CliRunner, locale: str, words: dict[str, str]
) -> None:
    target = tmp_path / "site"
    assert cli("init", "--locale", locale, target).code == 0
    config = (target / "config.yaml").read_text(encoding="utf-8")
    assert f"locale: {locale}" in config
    out = tmp_path / "out"
    at = "2026-01-12T08:00:00+01:00"
    result = cli("-c", target / "config.yaml", "build", "weekly", "--out", out, "--at", at)
    assert result.code == 0, result.err
    assert f"subject: {words['subject']}" in result.out.splitlines()
    text = (out / "email.txt").read_text(encoding="utf-8")
    for word in ("title", "item", "footer"):
        assert words[word] in text
    english = ("new post", "Weekly digest", "Example Street", "My Newsletter")
    if locale == "de_DE":
        assert not [word for word in english if word in config + text]


def test_init_with_a_locale_without_catalogue(tmp_path: Path, cli: CliRunner) -> None:
    result = cli("init", "--locale", "fr_FR", tmp_path / "site")
    assert result.code == 1
    assert result.err_lines == [
        "digest: error: --locale fr_FR: no message catalogue for 'fr_FR' "
        "(available languages: de, en)"
    ]
    assert not (tmp_path / "site").exists()


def test_init_refuses_to_overwrite(tmp_path: Path, cli: CliRunner) -> None:
    target = tmp_path / "site"
    assert cli("init", target).code == 0
    config = target / "config.yaml"
    config.write_text("# my edits\n", encoding="utf-8")
    result = cli("init", target)
    assert (result.code, result.out) == (1, "")
    assert result.err_lines == [
        f"digest: error: {config}: already exists; 'digest init' never overwrites files"
    ]
    assert config.read_text(encoding="utf-8") == "# my edits\n"


def test_init_writes_nothing_when_any_file_exists(tmp_path: Path, cli: CliRunner) -> None:
    target = tmp_path / "site"
    (target / "templates").mkdir(parents=True)
    (target / "templates" / "item.mjml").write_text("mine", encoding="utf-8")
    result = cli("init", target)
    assert result.code == 1
    assert result.err_lines == [
        f"digest: error: {target / 'templates' / 'item.mjml'}: already exists; "
        "'digest init' never overwrites files"
    ]
    assert tree(target) == ["templates", "templates/item.mjml"]


def test_init_in_the_current_folder(
    tmp_path: Path, cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli("init").code == 0
    assert (tmp_path / "config.yaml").is_file()
    result = cli("check")  # ./config.yaml is the default
    assert result.code == 0, result.err


# --- build ---------------------------------------------------------------------------------


def test_build_writes_three_files_and_no_state(site: Site, cli: CliRunner, tmp_path: Path) -> None:
    before = tree(site.root)
    out = tmp_path / "out"
    result = cli("-c", site.config, "build", "weekly", "--out", out, "--at", AT_TEXT)
    assert result.code == 0, result.err
    assert result.err == ""
    assert result.out.splitlines() == [
        "weekly: 3 item(s) for (2017-11-13T07:00+01:00, 2017-11-20T07:00+01:00] -> "
        f"{out / 'email.html'}, email.txt, email.eml",
        "subject: Präventionskette Ahlen: 3 neue Beiträge",
    ]
    assert tree(out) == ["email.eml", "email.html", "email.txt"]
    assert tree(site.root) == before  # no database, no outbox: build changes no state
    text = (out / "email.txt").read_text(encoding="utf-8")
    assert all(title in text for title in SAMPLE_WEEK_TITLES)


def test_build_with_a_naive_at_uses_the_site_time_zone(
    site: Site, cli: CliRunner, tmp_path: Path
) -> None:
    result = cli(
        "-c", site.config, "build", "weekly", "--out", tmp_path, "--at", "2017-11-20T08:00"
    )
    assert result.code == 0, result.err
    assert result.out.startswith("weekly: 3 item(s) for (2017-11-13T07:00+01:00, ")


def test_build_of_an_empty_period(site: Site, cli: CliRunner, tmp_path: Path) -> None:
    at = "2017-07-03T08:00:00+02:00"
    result = cli("-c", site.config, "build", "weekly", "--out", tmp_path, "--at", at)
    assert result.code == 0
    assert result.out.startswith("weekly: 0 item(s) for (2017-06-26T07:00+02:00, ")
    assert result.err_lines == ["note: no items in this period; a real send would send nothing"]
    assert (tmp_path / "email.eml").is_file()


def test_build_needs_a_digest_and_out(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["-c", str(site.config), "build", "weekly"])
    assert exit_info.value.code == 2
    assert "the following arguments are required: --out" in capsys.readouterr().err


def test_bad_at_value(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["-c", str(site.config), "build", "weekly", "--out", "x", "--at", "2017-13-01"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.splitlines() == [  # one line, no usage block
        "digest build: error: argument --at: '2017-13-01' is not an ISO date/time "
        "(e.g. 2017-11-20T08:00:00+01:00) (see 'digest build --help')"
    ]


# --- check ---------------------------------------------------------------------------------


def test_check_of_the_sample_site_passes(site: Site, cli: CliRunner) -> None:
    result = cli("-c", site.config, "check", "--at", AT_TEXT)
    assert result.code == 0, result.err
    assert result.err == ""
    lines = result.out.splitlines()
    assert re.fullmatch(
        r"weekly: 3 Beiträge in der nächsten Ausgabe, HTML \d+\.\d KB \(Grenze 90 KB\)", lines[0]
    )
    assert lines[-1] == "0 Fehler, 0 Warnungen"


def test_check_fails_on_an_error_finding(site: Site, cli: CliRunner) -> None:
    site.write(
        "templates/footer.mjml",
        """
        <mj-section><mj-column><mj-text>
          <a href="/impressum">Impressum</a> {{ site.address }}
        </mj-text></mj-column></mj-section>
        """,
    )
    result = cli("-c", site.config, "check", "weekly", "--at", AT_TEXT)
    assert result.code == 1
    # the site is German: so are the findings and the counts
    assert result.err_lines == [
        "error: digest weekly: Link '/impressum' ist nicht absolut (http(s)/mailto)",
        "error: digest weekly: HTML hat keinen Abmeldelink",
    ]
    assert result.out.splitlines()[-1] == "2 Fehler, 0 Warnungen"

    site.replace_in_config("locale: de_DE", "locale: en_GB")
    result = cli("-c", site.config, "check", "weekly", "--at", AT_TEXT)
    assert result.code == 1
    assert result.err_lines == [
        "error: digest weekly: link '/impressum' is not absolute http(s)/mailto",
        "error: digest weekly: HTML has no unsubscribe link",
    ]
    assert re.fullmatch(
        r"weekly: 3 items in the next issue, HTML \d+\.\d KB \(limit 90 KB\)",
        result.out.splitlines()[0],
    )
    assert result.out.splitlines()[-1] == "2 errors, 0 warnings"


def test_no_command_prints_help(cli: CliRunner) -> None:
    result = cli()
    assert result.code == 2
    assert result.out.startswith("usage: digest")
