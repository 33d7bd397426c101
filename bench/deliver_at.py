"""Claims with rows waiting for their local delivery time (``deliver_at``), SQLite and PostgreSQL.

    python3 bench/deliver_at.py                         # SQLite, 100,000 rows
    python3 bench/deliver_at.py --database postgresql://digest@127.0.0.1:55432/postgres

In a fresh database with N subscribers:

1. an issue whose N rows all wait for their local time (not due): the time of a claim that
   finds nothing (what every poll of ``digest run``/``digest worker`` costs), of ``waiting``
   (the count ``digest status`` shows) and of ``next_due_at`` (when to wake up);
2. an issue whose N rows go at once (no ``deliver_at``, the path of every digest before):
   the time of a claim of 100 rows, with the first issue's N waiting rows in the table.

Target: a claim over 100k waiting rows stays about as cheap as one over an empty issue (it
reads none of them). Run by hand, never in CI.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from store import csv_text, fresh_database  # bench/store.py: one database per run

NOW = datetime(2026, 10, 19, 3, 0, tzinfo=UTC)  # Monday 05:00 in Berlin


def timed(action: Callable[[], object], repeat: int) -> float:
    """Median milliseconds of ``repeat`` calls."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def bench(url: str, count: int) -> dict[str, float]:
    from digest.localtime import LocalDelivery, parse_deliver_at
    from digest.store import Store
    from digest.subscribers import import_csv

    store = Store.open(url)
    result: dict[str, float] = {}
    try:
        import_csv(
            csv_text(count), store, known_digests=["weekly"], default_digests=["weekly"], now=NOW
        )
        numbers = iter(range(10**9))

        def issue(key: str, local: LocalDelivery | None) -> int:
            started = time.perf_counter()
            made = store.create_issue(
                digest="weekly", period_key=key, period_start=None, period_end=NOW,
                status="sending", subject="S", preheader="", html="<p>x</p>", text="x",
                item_ids=[], now=NOW, message_id=lambda: f"<{next(numbers)}.b@example.org>",
                local_delivery=local,
            )  # fmt: skip
            result[f"create issue {key} (s)"] = time.perf_counter() - started
            return made.id

        waiting = issue("waiting", LocalDelivery(parse_deliver_at("07:00"), "Europe/Berlin"))
        worker = store.register_worker(NOW)
        result["claim, nothing due (ms)"] = timed(
            lambda: store.claim(waiting, worker, 100, NOW), 200
        )
        assert store.claim(waiting, worker, 100, NOW) == []
        result["waiting count (ms)"] = timed(lambda: store.waiting(waiting, NOW), 50)
        assert store.waiting(waiting, NOW).count == count
        result["next_due_at (ms)"] = timed(lambda: store.next_due_at(waiting, NOW), 200)

        at_once = issue("at-once", None)
        claimed: list[int] = []

        def claim_batch() -> None:
            claimed.extend(row.id for row in store.claim(at_once, worker, 100, NOW))

        result["claim 100 at once (ms)"] = timed(claim_batch, 200)
        assert len(claimed) == 200 * 100
        later = NOW + timedelta(hours=2)  # 07:00 in Berlin: every waiting row is due
        result["claim 100 come due (ms)"] = timed(
            lambda: store.claim(waiting, worker, 100, later), 200
        )
    finally:
        store.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help="a PostgreSQL server URL (default: a SQLite file)")
    parser.add_argument("--size", type=int, default=100_000)
    args = parser.parse_args()
    kind = "PostgreSQL" if args.database else "SQLite"
    with fresh_database(args.database) as url:
        timings = bench(url, args.size)
    print(f"{kind} {args.size:,} rows:")
    for label, value in timings.items():
        print(f"  {label}: {value:.2f}")


if __name__ == "__main__":
    main()
