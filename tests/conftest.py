"""Shared fixtures: a throw-away copy of the sample site and a CLI runner.

The sample site is ``config.example.yaml`` + ``content/`` from the repository, copied into a
temporary folder so a test may add files, templates or broken content without touching the
repository. ``AT`` is the moment of the README's example (the Monday after the
"Präventionswoche"), whose weekly issue holds the items of 14, 16 and 17 November 2017.
"""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from digest.cli import main
from digest.collect import newest_first
from digest.config import LoadedConfig, load_config
from digest.models import Item, RenderedIssue
from digest.render import Renderer
from digest.sources.folder import FolderSource
from tests.databases import BOTH, fresh_database

REPO = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).resolve().parent / "golden"
AT_TEXT = "2017-11-20T08:00:00+01:00"
AT = datetime.fromisoformat(AT_TEXT)

# The sample week, newest first, as the golden files show it.
SAMPLE_WEEK_TITLES = (
    "Erste Fachkonferenz der sozialen Arbeit in Ahlen",
    "„Ahlen neu denken!“: Jugendliche bringen Ideen für ihre Stadt ein",
    "Stadtführung für Lehrkräfte in der Präventionswoche",
)
# Sample items just outside that week (6 and 9 November, 29 November).
OTHER_TITLES = (
    "Ahlener Präventionswoche",
    "Austausch der Präventionsketten-Kommunen",
    "18. Lernnetzwerktreffen in Herne",
)


@dataclass(frozen=True)
class Site:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def content(self) -> Path:
        return self.root / "content"

    @property
    def templates(self) -> Path:
        return self.root / "templates"

    def load(self) -> LoadedConfig:
        return load_config(self.config, environ={})

    def write(self, relative: str, text: str) -> Path:
        """Write a file under the site (dedented), creating folders; returns its path."""
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    def replace_in_config(self, old: str, new: str) -> None:
        text = self.config.read_text(encoding="utf-8")
        assert text.count(old) == 1, f"{old!r} must occur once in the config"
        self.config.write_text(text.replace(old, new), encoding="utf-8")

    def config_line_of(self, fragment: str) -> int:
        """1-based line number of the single config line containing ``fragment``."""
        lines = self.config.read_text(encoding="utf-8").splitlines()
        numbers = [number for number, line in enumerate(lines, start=1) if fragment in line]
        assert len(numbers) == 1, f"{fragment!r} is on lines {numbers}"
        return numbers[0]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked ``both_databases`` (modules set it in ``pytestmark``) run once on SQLite
    and once on PostgreSQL, unless also marked ``sqlite_only``; ``postgres_only`` ones run
    on PostgreSQL alone."""
    definition = metafunc.definition
    if "database" not in metafunc.fixturenames:
        return
    if definition.get_closest_marker("postgres_only"):
        metafunc.parametrize("database", ("postgresql",), indirect=True)
    elif definition.get_closest_marker("both_databases") and not definition.get_closest_marker(
        "sqlite_only"
    ):
        metafunc.parametrize("database", BOTH, indirect=True)


@pytest.fixture
def database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None for SQLite (each test uses its own file), else the URL of a fresh PostgreSQL
    database, dropped after the test (skipped without DIGEST_TEST_DATABASE_URL)."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield None
        return
    with fresh_database() as url:
        yield url


@pytest.fixture
def database_url(database: str | None, tmp_path: Path) -> str:
    """The store's URL: a SQLite file in the test's folder, or a fresh PostgreSQL database."""
    return database or f"sqlite:///{tmp_path / 'digest.db'}"


@pytest.fixture
def site(tmp_path: Path, database: str | None) -> Site:
    """A copy of the sample site (config.example.yaml as config.yaml, content/); its
    ``database:`` is the SQLite file next to the config, or the test's PostgreSQL database."""
    root = tmp_path / "site"
    root.mkdir()
    shutil.copy(REPO / "config.example.yaml", root / "config.yaml")
    shutil.copytree(REPO / "content", root / "content")
    site = Site(root)
    if database is not None:
        site.replace_in_config("database: sqlite:///digest.db", f"database: {database}")
    return site


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()


CliRunner = Callable[..., Result]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """Run ``digest`` in-process: ``cli("-c", path, "check")`` -> exit code, stdout, stderr."""
    monkeypatch.delenv("DIGEST_CONFIG", raising=False)

    def run(*argv: str | Path) -> Result:
        capsys.readouterr()  # drop anything printed before
        code = main([str(arg) for arg in argv])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def built(site: Site, cli: CliRunner, tmp_path: Path) -> Path:
    """``digest build weekly --at AT`` of the sample site; the output folder."""
    out = tmp_path / "out"
    result = cli("-c", site.config, "build", "weekly", "--out", out, "--at", AT_TEXT)
    assert result.code == 0, result.err
    return out


def folder_items(loaded: LoadedConfig, at: datetime = AT, path: str = "content") -> list[Item]:
    """Every item of the site's content folder, newest first (problems are dropped)."""
    source = FolderSource(
        name=f"folder:{path}",
        root=loaded.resolve(path),
        pattern="**/*.md",
        base_url=loaded.config.site.base_url,
        timezone=loaded.config.site.tz,
    )
    return newest_first(source.collect(at).items)


def render_period(
    loaded: LoadedConfig, digest: str = "weekly", at: datetime = AT
) -> tuple[RenderedIssue, list[Item]]:
    """Render the digest's period ending at ``at`` from the content folder, without a store:
    the items dated within the period, newest first."""
    period = loaded.schedule(digest).period_ending(at)
    items = [
        item
        for item in folder_items(loaded, at)
        if not item.draft and period.contains(item.published_at)
    ]
    return Renderer(loaded).render(digest, items, period), items
