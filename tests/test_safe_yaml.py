"""YAML that cannot blow up: aliases refused in front matter, their expansion capped."""

from __future__ import annotations

import time

import pytest
import yaml

from digest.safe_yaml import YamlAliasError, check_expansion, load_front_matter

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
