"""YAML that cannot blow up: aliases refused in front matter, their expansion capped."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from digest.errors import ConfigError
from digest.safe_yaml import YamlAliasError, check_expansion, load_front_matter
from tests.conftest import AT_TEXT, SAMPLE_WEEK_TITLES, CliRunner, Site

# Nine levels of nine aliases: 9**9 (387 million) values from 500 bytes.
BOMB = "a0: &a0 [x]\n" + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10)
)


def test_front_matter_refuses_aliases_with_their_line() -> None:
    started = time.monotonic()
    with pytest.raises(YamlAliasError) as caught:
        load_front_matter("title: x\n" + BOMB)
    assert time.monotonic() - started < 1
    assert (caught.value.message, caught.value.line) == (
        "YAML alias *a0 is not allowed in front matter",
        3,
    )


def test_front_matter_keeps_dates_as_text() -> None:
    data = load_front_matter("date: 2026-11-31\nwhen: 2017-11-14T10:00:00+01:00\ncount: 3\n")
    assert data == {"date": "2026-11-31", "when": "2017-11-14T10:00:00+01:00", "count": 3}


def test_config_aliases_are_counted_not_built() -> None:
    started = time.monotonic()
    with pytest.raises(YamlAliasError, match="expand to more than 100,000 values"):
        check_expansion(yaml.compose(BOMB, Loader=yaml.SafeLoader))
    assert time.monotonic() - started < 1
    check_expansion(yaml.compose("d: &d {a: 1}\nx: *d\ny: {<<: *d, b: 2}", Loader=yaml.SafeLoader))
    with pytest.raises(YamlAliasError, match="refers to itself"):
        check_expansion(yaml.compose("a: &a [1, *a]", Loader=yaml.SafeLoader))


def test_config_alias_bomb_and_impossible_date_are_one_line_errors(site: Site) -> None:
    text = site.config.read_text(encoding="utf-8")
    site.config.write_text(
        text + "\nx-bomb:\n" + "".join("  " + line + "\n" for line in BOMB.splitlines()),
        encoding="utf-8",
    )
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        site.load()
    assert time.monotonic() - started < 2
    # a5 (125,479 values) is the first anchor over the cap
    line = len(text.splitlines()) + 3 + 5
    assert str(caught.value) == (
        f"{site.config}:{line}: YAML aliases expand to more than 100,000 values; refused"
    )
    site.config.write_text(text.replace("site:\n", "site:\n  founded: 2026-11-31\n", 1))
    with pytest.raises(ConfigError) as caught:
        site.load()
    assert str(caught.value) == (
        f"{site.config}:{site.config_line_of('founded:')}: site.founded: '2026-11-31' is not a "
        "date: day is out of range for month"
    )


def test_content_files_with_an_alias_bomb_or_an_impossible_date_are_named_and_skipped(
    site: Site, cli: CliRunner, tmp_path: Path
) -> None:
    site.write("content/bomb.md", "---\ntitle: Bombe\ndate: 2017-11-15\n" + BOMB + "---\nText\n")
    site.write("content/nodate.md", "---\ntitle: Kein Tag\ndate: 2017-11-31\n---\nText\n")
    started = time.monotonic()
    result = cli("-c", site.config, "build", "weekly", "--out", tmp_path / "out", "--at", AT_TEXT)
    assert time.monotonic() - started < 5
    assert result.code == 0, result.err
    assert (
        f"{site.content / 'bomb.md'}: line 5: YAML alias *a0 is not allowed in front matter (file skipped)"
        in result.err
    )
    assert (
        f"{site.content / 'nodate.md'}: front matter: 'date' '2017-11-31' is not a date: day is "
        "out of range for month (use 2017-11-14 or 2017-11-14T10:00:00+01:00) (file skipped)"
    ) in result.err
    assert "Traceback" not in result.err
    html = (tmp_path / "out" / "email.html").read_text(encoding="utf-8")
    assert all(title in html for title in SAMPLE_WEEK_TITLES)
