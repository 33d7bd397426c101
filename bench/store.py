"""Store benchmark: subscriber import and issue creation for large lists, SQLite and PostgreSQL.

    python3 bench/store.py                                   # SQLite, 100,000 and 1,000,000
    python3 bench/store.py --database postgresql://digest@127.0.0.1:55432/postgres
    python3 bench/store.py --sizes 100000

For each size, in a fresh database (a temporary SQLite file, or a new database created on the
PostgreSQL server the URL names and dropped afterwards):

1. import: ``import_csv`` of a CSV with that many rows, as ``digest subscribers import`` runs
   it (address validation included), into an empty list, then again (every row known:
   the update path), then a Mailchimp-shaped semicolon export of the same addresses (column
   mapping, name joining; its tags are topics the digest declares and its time zones are
   stored: every reader's settings change), then a CSV with ``topics``, ``language`` and
   ``timezone`` columns that changes every reader's settings again;
2. issue creation: ``create_issue`` with one pending delivery per subscriber, the one
   transaction ``digest send`` starts with.

Target: 100k rows imported in < 15 s on both databases. Run by hand, never in CI.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

NOW = datetime(2017, 11, 20, 7, tzinfo=UTC)


@contextmanager
def fresh_database(server: str | None, root: Path | None = None) -> Iterator[str]:
    """A database for one run: a SQLite file (in ``root``, else a temporary folder), or a new
    database on the PostgreSQL ``server``, dropped afterwards. bench/send.py and bench/admin.py
    use it too."""
    if server is None:
        if root is not None:
            yield f"sqlite:///{root / 'digest.db'}"
            return
        with tempfile.TemporaryDirectory(prefix="digest-bench-") as folder:
            yield f"sqlite:///{Path(folder) / 'bench.db'}"
        return
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    base = make_url(server.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"digest_bench_{secrets.token_hex(4)}"
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield base.set(database=name).render_as_string(hide_password=False)
        finally:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def csv_text(count: int) -> str:
    rows = ["email,name,digests"]
    rows += [f"user{n:07d}@example.net,User {n},weekly" for n in range(count)]
    return "\n".join(rows) + "\n"


def mailchimp_text(count: int) -> str:
    """A Mailchimp-shaped export, semicolon-separated as German Excel saves it, with a BOM."""
    rows = ["\ufeffEmail Address;First Name;Last Name;OPTIN_TIME;TIMEZONE;TAGS"]
    rows += [
        f'user{n:07d}@example.net;User;{n};2017-03-01 09:12:44;Europe/Berlin;"""A"",""B"""'
        for n in range(count)
    ]
    return "\r\n".join(rows) + "\r\n"


def settings_text(count: int) -> str:
    rows = ["email,name,digests,topics,language,timezone"]
    rows += [f"user{n:07d}@example.net,User {n},weekly,B,en,America/New_York" for n in range(count)]
    return "\n".join(rows) + "\n"


def bench(url: str, count: int) -> dict[str, float]:
    from digest.store import Store
    from digest.subscribers import import_csv

    store = Store.open(url)
    result: dict[str, float] = {}
    try:
        for label, text in (
            ("import new", csv_text(count)),
            ("import again", csv_text(count)),
            ("import Mailchimp;", mailchimp_text(count)),
            ("import settings", settings_text(count)),
        ):
            started = time.perf_counter()
            report = import_csv(
                text, store, known_digests=["weekly"], default_digests=["weekly"], now=NOW,
                topics={"weekly": {"A", "B"}},
            )  # fmt: skip
            result[label] = time.perf_counter() - started
            assert not report.problems and not report.notes
            assert report.added + report.updated == count
            if label.startswith(("import Mailchimp", "import settings")):
                assert report.settings_changed == count
        numbers = iter(range(10**9))
        started = time.perf_counter()
        issue = store.create_issue(
            digest="weekly", period_key="2017-11-20", period_start=NOW - timedelta(days=7),
            period_end=NOW, status="sending", subject="S", preheader="", html="<p>x</p>",
            text="x", item_ids=[], now=NOW,
            message_id=lambda: f"<{next(numbers)}.bench@example.org>",
        )  # fmt: skip
        result["create issue"] = time.perf_counter() - started
        assert store.counts(issue.id)["pending"] == count
    finally:
        store.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help="a PostgreSQL server URL (default: SQLite files)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    kind = "PostgreSQL" if args.database else "SQLite"
    for count in args.sizes:
        with fresh_database(args.database) as url:
            timings = bench(url, count)
        line = ", ".join(
            f"{label} {seconds:.1f} s ({count / seconds:,.0f}/s)"
            for label, seconds in timings.items()
        )
        print(f"{kind} {count:>9,}: {line}", flush=True)


if __name__ == "__main__":
    main()
