"""Delivery benchmark: ``digest send`` into Postfix's ``smtp-sink`` vs the ``smtp-source`` ceiling.

    python3 bench/send.py                 # 10,000 and 100,000 subscribers, DKIM off and on
    python3 bench/send.py --sizes 20000 --connections 4 --dkim on --algorithm ed25519-sha256
    python3 bench/send.py --workers 1,2,4 --sizes 20000 --connections 2
    python3 bench/send.py --workers 1,2,4 --database postgresql://digest@127.0.0.1:55432/postgres

With ``--workers`` the issue is enqueued (``digest send --enqueue``) and delivered by that many
``digest worker --connections C`` processes started beforehand; the rate counts from the
enqueue to the last outcome, the ceiling uses ``workers x C`` smtp-source sessions, and the
peak RSS is per worker. ``--database`` names a PostgreSQL server: each run gets a database of
its own there (created and dropped); default: a SQLite file per run. ``--no-synchronous-commit``
sets ``store.synchronous_commit: false`` (PostgreSQL sender connections).

For each list size it builds the sample site's weekly issue for that many subscribers
(inserted straight into the store, which is setup, not what is measured), starts
``smtp-sink -u nobody 127.0.0.1:PORT 1000`` (never the postfix daemon) and then:

1. the sender: a child process runs ``send_digest`` with the SMTP transport (``connections``
   pooled connections); it reports the issue-creation time and the delivery rate (msgs/s,
   from the first claim to the last recorded outcome). Its peak RSS comes from ``wait4``;
2. the ceiling: ``smtp-source -d -s CONNECTIONS -m N -l SIZE`` sends the same number of
   messages of the same size to the same sink.

With ``--variants 40`` the weekly digest declares eight topics (eight extra items of the
week, one topic each) and the readers are spread evenly over 40 profiles: German or English,
every topic or one or two of them. That is 40 variants (the issue's own rendering is one of
them), each rendered once; the rate should stay within 10 % of ``--variants 1``. Given both
(``--variants 1,40``), the single-variant run has the same items and topics, every reader
choosing every topic in the site's language.

With ``--dkim on`` the site signs every message (``delivery.dkim`` with a fresh 2048-bit RSA
or an Ed25519 key): the cost of one signature per message in the hot path.

It prints both rates, their ratio and the sender's peak RSS per size. Targets: >= 60 % of the
ceiling, peak RSS < 150 MB and flat as the list grows. Needs /usr/sbin/smtp-sink and
smtp-source (Debian package ``postfix``; the daemon need not run).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from store import fresh_database  # noqa: E402  (bench/store.py: one database per run)

AT = datetime.fromisoformat("2017-11-20T08:00:00+01:00")
SINK = "/usr/sbin/smtp-sink"
SOURCE = "/usr/sbin/smtp-source"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_key(path: Path, algorithm: str) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    key = (
        ed25519.Ed25519PrivateKey.generate()
        if algorithm == "ed25519-sha256"
        else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


TOPICS = [f"thema{n}" for n in range(8)]
# 19 topic selections (eight single topics, eleven pairs) plus "every topic", in two languages
SELECTIONS: list[tuple[str, ...]] = [
    (),
    *((t,) for t in TOPICS),
    *[(a, b) for i, a in enumerate(TOPICS) for b in TOPICS[i + 1 :]][:11],
]
PROFILES = [(language, chosen) for chosen in SELECTIONS for language in ("de", "en")]


def make_site(
    root: Path,
    port: int,
    connections: int,
    dkim: str | None = None,
    database: str = "sqlite:///digest.db",
    synchronous_commit: bool = True,
    topics: bool = False,
) -> Path:
    import yaml

    shutil.copytree(REPO / "content", root / "content")
    data = yaml.safe_load((REPO / "config.example.yaml").read_text(encoding="utf-8"))
    if topics:
        data["digests"]["weekly"]["topics"] = {t: t.title() for t in TOPICS}
        for n, topic in enumerate(TOPICS):
            (root / "content" / f"2017-11-15-{topic}.md").write_text(
                f"---\ntitle: Beitrag zu {topic}\ndate: 2017-11-15T1{n}:00:00+01:00\n"
                f"tags: [{topic}]\nsummary: Ein Beitrag nur für {topic}.\n---\nText.\n",
                encoding="utf-8",
            )
    data["database"] = database
    data["store"] = {"synchronous_commit": synchronous_commit}
    data["delivery"]["transport"] = "smtp"
    data["delivery"]["smtp"] = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "connections": connections,
        "rate_limit": 0,
    }
    if dkim:
        write_key(root / "dkim.pem", dkim)
        data["delivery"]["dkim"] = {
            "domain": "example.org",
            "selector": "bench",
            "private_key_file": "dkim.pem",
            "algorithm": dkim,
        }
    config = root / "config.yaml"
    config.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return config


def add_subscribers(config: Path, count: int, variants: int = 1) -> None:
    """Bulk insert (setup speed): the same rows ``digest subscribers import`` would write;
    with ``variants`` > 1, subscriber n has profile n % variants (language and topics)."""
    from sqlalchemy import insert

    from digest.config import load_config
    from digest.store import Store, new_token, subscribers, subscription_topics, subscriptions

    profiles = PROFILES[:variants] if variants > 1 else [(None, ())]

    loaded = load_config(config, environ={})
    store = Store.open(loaded.database_url)
    now = datetime.now(UTC)
    chunk = 20_000
    try:
        for start in range(0, count, chunk):
            ids = range(start + 1, min(start + chunk, count) + 1)
            with store.begin() as conn:
                conn.execute(
                    insert(subscribers),
                    [
                        {
                            "id": n,
                            "email": f"user{n:07d}@example.net",
                            "name": f"User {n}",
                            "status": "active",
                            "token": new_token(),
                            "created_at": now,
                            "confirmed_at": now,
                            "language": profiles[n % len(profiles)][0],
                        }
                        for n in ids
                    ],
                )
                conn.execute(
                    insert(subscriptions), [{"subscriber_id": n, "digest": "weekly"} for n in ids]
                )
                chosen = [
                    {"subscriber_id": n, "digest": "weekly", "topic": topic}
                    for n in ids
                    for topic in profiles[n % len(profiles)][1]
                ]
                if chosen:
                    conn.execute(insert(subscription_topics), chosen)
    finally:
        store.close()


# -- the sender (child process) -------------------------------------------------------------------


def child(config: Path) -> None:
    """Create the issue and deliver it; print one JSON line with timings and the message size."""
    from digest.compose import sample_recipient
    from digest.config import load_config
    from digest.deliver import IssueDelivery
    from digest.ledger import prepare_issue
    from digest.render import Renderer
    from digest.send import delivery_options, issue_mail
    from digest.store import Store
    from digest.transport import default_transport

    renders = 0
    render = Renderer.render

    def counted(self: Renderer, *args: Any, **kwargs: Any) -> Any:
        nonlocal renders
        renders += 1
        return render(self, *args, **kwargs)

    Renderer.render = counted  # type: ignore[method-assign]  # count, do not assume, the renders
    loaded = load_config(config, environ={})
    store = Store.open(loaded.database_url)
    started = time.perf_counter()
    issue = prepare_issue(loaded, store, "weekly", AT, now=datetime.now(UTC)).issue
    created = time.perf_counter()
    mail = issue_mail(loaded, store, issue)
    sample = mail.template.build(
        sample_recipient(loaded), message_id="<sample@example.org>", date=datetime.now(UTC)
    )
    options = delivery_options(loaded, "weekly", issue.period_end, 0.0, issue.created_at)
    delivery = IssueDelivery(mail, store, issue, default_transport(loaded), options=options)
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    report = delivery.run()
    finished = time.perf_counter()
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime
    size = len(sample)
    print(
        json.dumps(
            {
                "create_s": created - started,
                "deliver_s": finished - created,
                "sent": report.counts["sent"],
                "other": {k: v for k, v in report.counts.items() if v and k != "sent"},
                "error": report.error or report.paused,
                "size": size,
                "cpu_s": cpu_s,
                "renders": renders,
                "variants": 1 + len(store.issue_variants(issue.id)),
            }
        )
    )
    store.close()


def run_sender(config: Path, profile: Path | None) -> tuple[dict[str, object], float]:
    command = [sys.executable, __file__, "--child", str(config)]
    if profile is not None:
        command = [sys.executable, "-m", "cProfile", "-o", str(profile), *command[1:]]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"sender failed ({process.returncode}): {output}")
    result: dict[str, object] = json.loads(output.strip().splitlines()[-1])
    return result, usage.ru_maxrss / 1024  # KiB -> MiB


# -- the ceiling ------------------------------------------------------------------------------------


def run_ceiling(port: int, count: int, size: int, sessions: int) -> float:
    started = time.perf_counter()
    subprocess.run(
        [SOURCE, "-d", "-s", str(sessions), "-m", str(count), "-l", str(size),
         "-f", "newsletter@example.org", "-t", "user@example.net", f"127.0.0.1:{port}"],
        check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return count / (time.perf_counter() - started)


def start_sink(port: int) -> subprocess.Popen[bytes]:
    sink = subprocess.Popen([SINK, "-u", "nobody", f"127.0.0.1:{port}", "1000"])
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return sink
        except OSError:
            if time.monotonic() > deadline or sink.poll() is not None:
                raise SystemExit(f"smtp-sink did not start on port {port}") from None
            time.sleep(0.05)


def bench(
    count: int,
    connections: int,
    rounds: int,
    profile: Path | None,
    dkim: str | None,
    variants: int = 1,
    topics: bool = False,
) -> dict[str, float]:
    """``rounds`` alternating runs of the sender (each on a fresh store) and the ceiling,
    into one sink; the best of each counts (the machine may be shared: a neighbour's load
    only ever makes a run slower). Peak RSS is the largest of the sender's runs."""
    port = free_port()
    rates: list[float] = []
    ceilings: list[float] = []
    rss: list[float] = []
    result: dict[str, object] = {}
    sink = start_sink(port)
    try:
        for _ in range(rounds):
            with tempfile.TemporaryDirectory(prefix="digest-bench-") as tmp:
                config = make_site(
                    Path(tmp), port, connections, dkim, topics=topics or variants > 1
                )
                add_subscribers(config, count, variants)
                result, rss_mb = run_sender(config, profile)
            sent = int(result["sent"])  # type: ignore[call-overload]
            if sent != count or result["error"]:
                print(f"WARNING: {count} subscribers: {result}", file=sys.stderr)
            rates.append(sent / float(result["deliver_s"]))  # type: ignore[arg-type]
            rss.append(rss_mb)
            size = int(result["size"])  # type: ignore[call-overload]
            ceilings.append(run_ceiling(port, count, size, connections))
    finally:
        sink.terminate()
        sink.wait()
    return {
        "dkim": dkim or "off",  # type: ignore[dict-item]
        "renders": int(result["renders"]),  # type: ignore[call-overload]
        "subscribers": count,
        "create_s": float(result["create_s"]),  # type: ignore[arg-type]
        "size": size,
        "rate": max(rates),
        "ceiling": max(ceilings),
        "ratio": max(rates) / max(ceilings),
        "rss_mb": max(rss),
        "cpu_us": float(result["cpu_s"]) / count * 1e6,  # type: ignore[arg-type]
        "rates": rates,  # type: ignore[dict-item]
        "ceilings": ceilings,  # type: ignore[dict-item]
    }


# -- workers (digest worker processes, SQLite or PostgreSQL) ----------------------------------


def run_workers(config: Path, count: int, workers: int, connections: int) -> dict[str, Any]:
    """Start the workers, enqueue the issue, wait for every outcome; rate and RSS."""
    from digest.compose import sample_recipient
    from digest.config import load_config
    from digest.send import enqueue_digest, issue_mail
    from digest.store import Store

    logs = [config.parent / f"worker{n}.log" for n in range(workers)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "digest.cli", "-c", str(config), "worker",
             "--connections", str(connections)],
            stdout=subprocess.DEVNULL, stderr=log.open("w"),
            env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        )
        for log in logs
    ]  # fmt: skip
    loaded = load_config(config, environ={})
    try:
        deadline = time.monotonic() + 60
        while not all("waiting for work" in log.read_text() for log in logs):
            if time.monotonic() > deadline:
                raise SystemExit("workers did not start: " + logs[0].read_text()[-500:])
            time.sleep(0.05)
        with Store.open(loaded.database_url) as store:
            started = time.perf_counter()
            issue = enqueue_digest(loaded, store, "weekly", AT).prepared.issue
            created = time.perf_counter()
            while True:
                counts = store.counts(issue.id)
                if counts["pending"] + counts["sending"] + counts["failed_temp"] == 0:
                    break
                time.sleep(0.1)
            finished = time.perf_counter()
            size = len(
                issue_mail(loaded, store, issue).template.build(
                    sample_recipient(loaded), message_id="<s@example.org>", date=datetime.now(UTC)
                )
            )
    finally:
        rss = []
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            _, _, usage = os.wait4(process.pid, 0)
            rss.append(usage.ru_maxrss / 1024)
    return {
        "create_s": created - started,
        "deliver_s": finished - created,
        "sent": counts["sent"],
        "size": size,
        "rss_mb": max(rss),
    }


def bench_workers(
    count: int,
    connections: int,
    workers: int,
    rounds: int,
    server: str | None,
    synchronous_commit: bool = True,
) -> dict[str, Any]:
    port = free_port()
    rates: list[float] = []
    ceilings: list[float] = []
    rss: list[float] = []
    result: dict[str, Any] = {}
    sink = start_sink(port)
    try:
        for _ in range(rounds):
            with tempfile.TemporaryDirectory(prefix="digest-bench-") as tmp:
                root = Path(tmp)
                with fresh_database(server, root) as url:
                    config = make_site(
                        root, port, connections, database=url, synchronous_commit=synchronous_commit
                    )
                    add_subscribers(config, count)
                    result = run_workers(config, count, workers, connections)
            if result["sent"] != count:
                print(f"WARNING: {count} subscribers: {result}", file=sys.stderr)
            rates.append(result["sent"] / result["deliver_s"])
            rss.append(result["rss_mb"])
            ceilings.append(run_ceiling(port, count, result["size"], workers * connections))
    finally:
        sink.terminate()
        sink.wait()
    return {
        "workers": workers,
        "subscribers": count,
        "create_s": result["create_s"],
        "rate": max(rates),
        "ceiling": max(ceilings),
        "ratio": max(rates) / max(ceilings),
        "rss_mb": max(rss),
    }


def main_workers(args: argparse.Namespace) -> None:
    kind = "PostgreSQL" if args.database else "SQLite"
    if args.database and args.no_synchronous_commit:
        kind = "PG async"
    print(
        f"{'database':>10} {'workers':>7} {'subscribers':>11} {'create s':>8} "
        f"{'digest msg/s':>12} {'ceiling msg/s':>13} {'ratio':>6} {'RSS/worker MB':>13}"
    )
    for size in args.sizes.split(","):
        for workers in (int(n) for n in args.workers.split(",")):
            row = bench_workers(
                int(size),
                args.connections,
                workers,
                args.rounds,
                args.database,
                synchronous_commit=not args.no_synchronous_commit,
            )
            print(
                f"{kind:>10} {row['workers']:>7} {row['subscribers']:>11,} "
                f"{row['create_s']:>8.1f} {row['rate']:>12,.0f} {row['ceiling']:>13,.0f} "
                f"{row['ratio']:>6.0%} {row['rss_mb']:>13.1f}",
                flush=True,
            )
    print(
        f"connections: {args.connections} per worker; ceiling: workers x connections "
        f"smtp-source sessions; load average at the end: {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} CPUs"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="subscriber counts")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2, help="runs of each; best counts")
    parser.add_argument("--profile", type=Path, help="cProfile the sender into this file")
    parser.add_argument("--workers", help="worker process counts, e.g. 1,2,4 (enqueue mode)")
    parser.add_argument("--database", help="a PostgreSQL server URL (with --workers)")
    parser.add_argument(
        "--no-synchronous-commit",
        action="store_true",
        help="store.synchronous_commit: false (PostgreSQL sender connections)",
    )
    parser.add_argument("--dkim", default="off,on", help="off, on or both (off,on)")
    parser.add_argument(
        "--algorithm", default="rsa-sha256", choices=["rsa-sha256", "ed25519-sha256"]
    )
    parser.add_argument(
        "--variants", default="1", help="reader profiles to spread over: 1, 40 or both (1,40)"
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    for tool in (SINK, SOURCE):
        if not os.access(tool, os.X_OK):
            raise SystemExit(f"{tool} not found: apt-get install postfix (the daemon need not run)")
    if args.workers or args.database:
        args.workers = args.workers or "1,2,4"
        main_workers(args)
        return
    rows = [
        bench(
            int(size),
            args.connections,
            args.rounds,
            args.profile,
            args.algorithm if dkim == "on" else None,
            int(variants),
            topics=args.variants != "1",  # the same items and topics for runs compared
        )
        for size in args.sizes.split(",")
        for dkim in args.dkim.split(",")
        for variants in args.variants.split(",")
    ]
    print(
        f"{'DKIM':>14} {'renders':>7} {'subscribers':>11} {'msg bytes':>9} {'create s':>8} {'digest msg/s':>12} "
        f"{'ceiling msg/s':>13} {'ratio':>6} {'peak RSS MB':>11} {'CPU us/msg':>10}"
    )
    for row in rows:
        print(
            f"{row['dkim']:>14} {row['renders']:>7} {row['subscribers']:>11,.0f} {row['size']:>9,.0f} {row['create_s']:>8.1f} "
            f"{row['rate']:>12,.0f} {row['ceiling']:>13,.0f} {row['ratio']:>6.0%} "
            f"{row['rss_mb']:>11.1f} {row['cpu_us']:>10.0f}"
        )
    for row in rows:
        runs = ", ".join(
            f"{rate:,.0f}/{ceiling:,.0f}"
            for rate, ceiling in zip(row["rates"], row["ceilings"], strict=True)  # type: ignore[call-overload]
        )
        print(f"{row['dkim']:>14} {row['subscribers']:>11,.0f} runs (digest/ceiling msg/s): {runs}")
    print(
        f"connections: {args.connections} (sender) = sessions (smtp-source); sink: {SINK}; "
        f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )


if __name__ == "__main__":
    main()
