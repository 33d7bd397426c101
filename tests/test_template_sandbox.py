"""Site templates render in Jinja's sandbox: a template (or a digest subject in config.yaml)
that reaches for Python internals is a one-line template error naming the file and line, and
nothing runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import AT_TEXT, CliRunner, Site

ESCAPES = (
    "{{ cycler.__init__.__globals__.os.getcwd() }}",
    "{{ joiner.__init__.__globals__.os.system('touch PWNED') }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ site.__class__.__init__.__globals__ }}",
)


def one_error(site: Site, cli: CliRunner, out: Path) -> str:
    result = cli("-c", site.config, "build", "weekly", "--out", out, "--at", AT_TEXT)
    assert result.code == 1 and result.out == "", result.err
    assert len(result.err_lines) == 1 and "Traceback" not in result.err, result.err
    line = result.err_lines[0]
    assert line.startswith("digest: error: "), line
    return line.removeprefix("digest: error: ")


@pytest.mark.parametrize("expression", ESCAPES)
def test_a_template_cannot_reach_python_internals(
    site: Site, cli: CliRunner, tmp_path: Path, expression: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = site.write("templates/digest.txt", f"{{{{ site.title }}}}\n\n{expression}\n")
    message = one_error(site, cli, tmp_path / "out")
    assert message.startswith(f"{path}:3: SecurityError: "), message
    assert "unsafe" in message
    assert not (tmp_path / "PWNED").exists() and not (site.root / "PWNED").exists()


def test_a_subject_cannot_reach_python_internals(
    site: Site, cli: CliRunner, tmp_path: Path
) -> None:
    text = site.config.read_text(encoding="utf-8")
    old = text.split("subject: ", 1)[1].split("\n", 1)[0]
    site.replace_in_config(f"subject: {old}", 'subject: "{{ cycler.__init__.__globals__ }}"')
    message = one_error(site, cli, tmp_path / "out")
    assert message.startswith(f"{site.config}: digests subject/preheader (subject): SecurityError")
