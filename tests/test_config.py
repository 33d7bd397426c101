"""Config loading: the example loads; every mistake is one line naming file, line and key.

Bad-input tests run the real CLI (``digest.cli.main``) and assert the exact stderr line, the
exit status and that no traceback is printed (unless ``--debug``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from digest.cli import main
from digest.config import load_config
from digest.errors import ConfigError
from tests.conftest import REPO, CliRunner, Site


def test_example_config_loads() -> None:
    loaded = load_config(REPO / "config.example.yaml", environ={})
    config = loaded.config
    assert config.site.title == "Präventionskette Ahlen"
    assert config.site.locale == "de_DE"
    assert str(config.site.tz) == "Europe/Berlin"
    assert set(config.digests) >= {"weekly", "monthly"}
    assert config.digests["weekly"].schedule == "0 7 * * mon"
    assert config.delivery.from_ == "Präventionskette Ahlen <newsletter@example.org>"
    assert loaded.unset_variables == ()


def test_relative_paths_are_relative_to_the_config_file(site: Site) -> None:
    loaded = site.load()
    assert loaded.templates_dir == site.root / "templates"
    assert loaded.resolve("content") == site.content
    assert loaded.database_url == f"sqlite:///{site.root / 'digest.db'}"


def test_environment_variables_expand(site: Site) -> None:
    site.replace_in_config("password: ${SMTP_PASSWORD:-}", "password: ${DIGEST_TEST_SECRET}")
    site.replace_in_config("username: ${SMTP_USER:-}", "username: ${DIGEST_TEST_USER:-mailer}")
    loaded = load_config(site.config, environ={"DIGEST_TEST_SECRET": "s3cret"})
    smtp = loaded.config.delivery.smtp
    assert smtp.username == "mailer"
    assert smtp.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(loaded.config) and "s3cret" not in str(smtp)


def test_unset_variable_is_a_warning_with_its_line(site: Site, cli: CliRunner) -> None:
    site.replace_in_config("password: ${SMTP_PASSWORD:-}", "password: ${DIGEST_TEST_UNSET}")
    line = site.config_line_of("${DIGEST_TEST_UNSET}")
    result = cli("-c", site.config, "check", "weekly", "--at", "2017-11-20T08:00:00+01:00")
    assert result.code == 0, result.err
    assert result.err_lines == [
        f"warning: {site.config}:{line}: delivery.smtp.password: "
        "die Umgebungsvariable DIGEST_TEST_UNSET ist nicht gesetzt"
    ]


def _replace_line(site: Site, pattern: str, replacement: str) -> None:
    text = site.config.read_text(encoding="utf-8")
    new, count = re.subn(pattern, lambda _: replacement, text, count=1, flags=re.M)
    assert count == 1, f"{pattern!r} not found in the config"
    site.config.write_text(new, encoding="utf-8")


# (pattern of the line to change, its replacement, fragment of the line the error must name,
#  message after "file:line: ")
BAD_CONFIGS = {
    "malformed-yaml": (
        r"^    max_items: 20$",
        "    max_items: 20: 30",
        "max_items: 20: 30",
        "invalid YAML: mapping values are not allowed here",
    ),
    "tab-indent": (
        r"^    max_items: 20$",
        "\tmax_items: 20",
        "\tmax_items: 20",
        "invalid YAML: found character '\\t' that cannot start any token",
    ),
    "unknown-key": (
        r"^    max_items: 20$",
        "    max_items: 20\n    colour: red",
        "colour: red",
        "digests.weekly.colour: unknown key",
    ),
    "duplicate-key": (
        r"^    max_items: 20$",
        "    max_items: 20\n    max_items: 30",
        "max_items: 30",
        "duplicate key 'max_items'",
    ),
    "wrong-type": (
        r"^    max_items: 20$",
        "    max_items: many",
        "max_items: many",
        "digests.weekly.max_items: Input should be a valid integer, unable to parse string as "
        "an integer",
    ),
    "out-of-range": (
        r"^    max_items: 20$",
        "    max_items: 0",
        "max_items: 0",
        "digests.weekly.max_items: Input should be greater than or equal to 1",
    ),
    "missing-required-key": (
        r"^  address: .*\n",
        "",
        "title: Präventionskette Ahlen",  # the site mapping it is missing from
        "site.address: required key is missing",
    ),
    "bad-cron-value": (
        r'"0 7 \* \* mon"',
        '"0 25 * * mon"',
        '"0 25 * * mon"',
        "digests.weekly.schedule: invalid cron schedule '0 25 * * mon': Error validating "
        "expression '25': the last value (25) is higher than the maximum value (23)",
    ),
    "bad-cron-fields": (
        r'"0 7 \* \* mon"',
        '"0 7 * *"',
        '"0 7 * *"',
        "digests.weekly.schedule: cron schedule '0 7 * *' needs 5 fields (minute hour day month "
        "weekday), got 4",
    ),
    "bad-cron-weekday": (
        r'"0 7 \* \* mon"',
        '"0 7 * * 8"',
        '"0 7 * * 8"',
        "digests.weekly.schedule: invalid cron schedule '0 7 * * 8': weekday 8 out of range 0-7",
    ),
    "bad-deliver-at": (
        r"^    max_items: 20$",
        '    max_items: 20\n    deliver_at: "25:00"',
        'deliver_at: "25:00"',
        "digests.weekly.deliver_at: time '25:00' not understood (use HH:MM, e.g. 07:00)",
    ),
    "deliver-at-midnight-end": (
        r"^    max_items: 20$",
        '    max_items: 20\n    deliver_at: "24:00"',
        'deliver_at: "24:00"',
        "digests.weekly.deliver_at: time '24:00' not understood (use HH:MM from 00:00 to 23:59)",
    ),
    "bad-timezone": (
        r"timezone: Europe/Berlin",
        "timezone: Mars/Olympus",
        "Mars/Olympus",
        "site.timezone: unknown time zone 'Mars/Olympus' (use e.g. Europe/Berlin)",
    ),
    "bad-locale": (
        r"locale: de_DE",
        "locale: xx_YY",
        "locale: xx_YY",
        "site.locale: unknown locale 'xx_YY' (use e.g. de_DE or en_GB)",
    ),
    "locale-without-catalogue": (
        r"locale: de_DE",
        "locale: fr_FR",
        "locale: fr_FR",
        "site.locale: no message catalogue for 'fr_FR' (available languages: de, en)",
    ),
    "relative-base-url": (
        r"base_url: https://www\.example\.org/praeventionskette",
        "base_url: www.example.org",
        "base_url: www.example.org",
        "site.base_url: must be an absolute http(s) URL, e.g. https://www.example.org",
    ),
    "bad-choice": (
        r"transport: maildir",
        "transport: pigeon",
        "transport: pigeon",
        "delivery.transport: Input should be 'smtp' or 'maildir'",
    ),
    "crlf-in-from": (
        r'^  from: "Präventionskette Ahlen <newsletter@example.org>"$',
        '  from: "Ahlen <newsletter@example.org>\\r\\nBcc: evil@x"',
        "Bcc: evil@x",
        "delivery.from: header value contains a line break: "
        "'Ahlen <newsletter@example.org>\\r\\nBcc: evil@x'",
    ),
}


@pytest.mark.parametrize("case", BAD_CONFIGS.values(), ids=BAD_CONFIGS.keys())
def test_bad_config_is_one_line_naming_file_line_and_key(
    site: Site, cli: CliRunner, case: tuple[str, str, str, str]
) -> None:
    pattern, replacement, fragment, message = case
    _replace_line(site, pattern, replacement)
    line = site.config_line_of(fragment)
    for argv in (["check"], ["build", "weekly", "--out", str(site.root / "out")]):
        result = cli("-c", site.config, *argv)
        assert result.code == 1
        assert result.err_lines == [f"digest: error: {site.config}:{line}: {message}"]
        assert result.out == ""
    assert not (site.root / "out").exists()


@pytest.mark.parametrize("text", ["", "- site\n- digests\n", "just a string\n"])
def test_config_that_is_not_a_mapping(tmp_path: Path, cli: CliRunner, text: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    result = cli("-c", path, "check")
    assert (result.code, result.err_lines) == (
        1,
        [f"digest: error: {path}:1: config must be a mapping of sections (site, sources, ...)"],
    )


def test_unknown_digest_name(site: Site, cli: CliRunner) -> None:
    expected = (
        f"digest: error: {site.config}: no digest named 'daily' (configured: monthly, weekly)"
    )
    for argv in (["build", "daily", "--out", str(site.root / "out")], ["check", "daily"]):
        result = cli("-c", site.config, *argv)
        assert (result.code, result.err_lines, result.out) == (1, [expected], "")


NOT_FOUND = "config file not found (pass -c PATH, set DIGEST_CONFIG, or run 'digest init')"


def test_missing_config_file(tmp_path: Path, cli: CliRunner) -> None:
    missing = tmp_path / "nope.yaml"
    result = cli("-c", missing, "check")
    assert (result.code, result.err_lines, result.out) == (
        1,
        [f"digest: error: {missing}: {NOT_FOUND}"],
        "",
    )


def test_config_from_environment_then_default(
    site: Site, cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no config.yaml here
    result = cli("check")
    assert result.err_lines == [f"digest: error: config.yaml: {NOT_FOUND}"]
    monkeypatch.setenv("DIGEST_CONFIG", str(site.config))
    result = cli("check", "--at", "2017-11-20T08:00:00+01:00")
    assert result.code == 0, result.err
    assert "weekly: 3 Beiträge in der nächsten Ausgabe" in result.out
    # -c wins over the environment
    result = cli("-c", tmp_path / "other.yaml", "check")
    assert result.err_lines == [f"digest: error: {tmp_path / 'other.yaml'}: {NOT_FOUND}"]


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        main(["--debug", "-c", str(tmp_path / "nope.yaml"), "check"])


def test_deliver_at_may_be_written_without_quotes(site: Site) -> None:
    """YAML 1.1 reads an unquoted 07:00 as the number 420: it is the time 07:00 all the same."""
    _replace_line(site, r"^    max_items: 20$", "    max_items: 20\n    deliver_at: 07:00")
    weekly = site.load().config.digests["weekly"]
    assert weekly.deliver_at == "07:00"
    assert weekly.local_time is not None and weekly.local_time.hour == 7
    assert site.load().config.digests["monthly"].local_time is None
