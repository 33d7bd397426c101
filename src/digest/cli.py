"""The ``digest`` command line: thin over the library; every user error is one line on stderr."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from sqlalchemy.exc import SQLAlchemyError

from digest import __version__
from digest.bounces import commands as bounce_commands
from digest.bounces.record import describe_feedback
from digest.catalogue import Translator, UnknownLanguage, translator_for
from digest.compose import compose_next_issue, lint_issue, sample_message, sample_recipient
from digest.config import LoadedConfig, config_path_from, load_config
from digest.errors import DigestError
from digest.message import Splicer
from digest.models import Problem
from digest.nextissue import NextPeriod
from digest.render import Renderer
from digest.size import HTML_SIZE_LIMIT
from digest.store import SUBSCRIBER_STATES, IssueRow, Store, Waiting, describe_error

if TYPE_CHECKING:
    from digest.deliver import DeliveryReport
    from digest.ledger import Vet
    from digest.schedule import Period

Handler = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args))
    except DigestError as exc:
        if args.debug:
            raise
        print(f"digest: error: {exc}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:  # the database went away mid-command: one line too
        if args.debug:
            raise
        print(f"digest: error: database: {describe_error(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("digest: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`digest status | head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line, like every other error (``digest --help`` has the usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="digest", description="Recurring email digests from Markdown folders and feeds."
    )
    parser.add_argument(
        "-c", "--config", help="config file (default: $DIGEST_CONFIG or ./config.yaml)"
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--version", action="version", version=f"digest {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=_Parser)

    init = commands.add_parser("init", help="scaffold config.yaml, content/ and templates/")
    init.add_argument("directory", nargs="?", default=".", type=Path)
    init.add_argument(
        "--locale",
        default="de_DE",
        help="the site's language: config and welcome item are written in it (default de_DE)",
    )
    init.set_defaults(handler=cmd_init)

    check = commands.add_parser(
        "check", help="validate config, sources and templates; lint the next issue"
    )
    check.add_argument("digest", nargs="?", help="only this digest")
    check.add_argument("--at", type=_parse_at, help="as of this ISO time (default: now)")
    check.set_defaults(handler=cmd_check)

    build = commands.add_parser("build", help="render the next issue to files; changes no state")
    build.add_argument("digest")
    build.add_argument("--out", required=True, type=Path, help="output folder")
    build.add_argument("--at", type=_parse_at, help="as of this ISO time (default: now)")
    build.set_defaults(handler=cmd_build)

    send = commands.add_parser(
        "send", help="deliver the due issue (or resume an unfinished one); --now: cut one now"
    )
    send.add_argument("digest")
    when = send.add_mutually_exclusive_group()
    when.add_argument(
        "--at", type=_parse_at, help="the scheduled period ending at this ISO time (or before)"
    )
    when.add_argument(
        "--now",
        action="store_true",
        help="an off-schedule issue of everything new since the last one, cut now and sent at "
        "once (deliver_at does not apply)",
    )
    send.add_argument(
        "--force", action="store_true", help="send even if 'digest check' finds errors in it"
    )
    send.add_argument(
        "--dry-run", action="store_true", help="render and count; send and write nothing"
    )
    send.add_argument("--to", metavar="ADDR", help="send one test copy to ADDR; marks nothing")
    send.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    send.add_argument(
        "--wait", type=float, default=0.0, metavar="SECONDS",
        help="wait up to SECONDS for due retries of deferred (4xx) messages before returning",
    )  # fmt: skip
    send.add_argument(
        "--enqueue", action="store_true",
        help="create the issue and leave its delivery to 'digest worker' processes",
    )  # fmt: skip
    send.set_defaults(handler=cmd_send)

    subs = commands.add_parser("subscribers", help="manage the subscriber list")
    subs_commands = subs.add_subparsers(
        title="subscriber commands", metavar="ACTION", required=True
    )
    add = subs_commands.add_parser("add", help="add (or re-activate) one subscriber")
    add.add_argument("email")
    add.add_argument("--name", default="")
    add.add_argument(
        "--digest",
        action="append",
        dest="digests",
        metavar="NAME",
        help="digest to receive (repeatable; default: all)",
    )
    add.set_defaults(handler=cmd_subscribers_add)
    imp = subs_commands.add_parser(
        "import",
        help="import a CSV file (email,name,digests,topics,language,timezone; , ; or tab; "
        "exports of Mailchimp, CleverReach, Substack, Buttondown)",
    )
    imp.add_argument("file", type=Path)
    imp.add_argument(
        "--map", metavar="FIELD=COLUMN,...", default="",
        help="columns by name, e.g. 'email=Email Address,name=Vorname' (fields: email, name, "
        "digests, topics, language, timezone)",
    )  # fmt: skip
    imp.set_defaults(handler=cmd_subscribers_import)
    exp = subs_commands.add_parser(
        "export",
        help="export subscribers as CSV (email,name,digests,status,topics,language,timezone)",
    )
    exp.add_argument("file", nargs="?", type=Path, help="output file (default: stdout)")
    exp.set_defaults(handler=cmd_subscribers_export)
    lst = subs_commands.add_parser("list", help="list subscribers")
    lst.add_argument("--digest")
    lst.add_argument("--status", choices=SUBSCRIBER_STATES)
    lst.set_defaults(handler=cmd_subscribers_list)
    rm = subs_commands.add_parser(
        "remove", help="remove a subscriber (erases name, ends all subscriptions)"
    )
    rm.add_argument("email")
    rm.set_defaults(handler=cmd_subscribers_remove)

    status = commands.add_parser("status", help="digests, issues, deliveries, in-doubt rows")
    status.set_defaults(handler=cmd_status)

    serve = commands.add_parser(
        "serve", help="web: preview, archive, subscribe/confirm/unsubscribe, staff dashboard"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument(
        "--public-only",
        action="store_true",
        help="only the public pages (archive, subscribe, unsubscribe): for a reverse proxy",
    )
    serve.set_defaults(handler=cmd_serve)
    hash_password = commands.add_parser(
        "hash-password", help="hash a staff password for web.staff_password_hash"
    )
    hash_password.set_defaults(handler=cmd_hash_password)

    run = commands.add_parser(
        "run", help="the scheduler: send every digest on its schedule, catch up, retry, resume"
    )
    run.add_argument(
        "--interval", type=float, default=60.0, metavar="SECONDS",
        help="how often the timer checks the ledger for due periods, retries and resumes",
    )  # fmt: skip
    run.add_argument(
        "--standby-interval", type=float, default=10.0, metavar="SECONDS",
        help="PostgreSQL: how often a standby 'digest run' tries to take over the lead",
    )  # fmt: skip
    run.set_defaults(handler=cmd_run)

    worker = commands.add_parser(
        "worker", help="a long-running sender: deliver every issue being sent (any machine)"
    )
    worker.add_argument(
        "--connections", type=_positive_int, metavar="N",
        help="SMTP connections (sender threads); default delivery.smtp.connections",
    )  # fmt: skip
    worker.set_defaults(handler=cmd_worker)

    bounce_commands.register(commands, _load, lambda loaded: Store.open(loaded.database_url))

    sources = commands.add_parser("sources", help="the configured sources")
    sources_commands = sources.add_subparsers(title="sources commands", metavar="COMMAND")
    sources_check = sources_commands.add_parser(
        "check", help="fetch every source now and print a health table; exit 1 if one failed"
    )
    sources_check.set_defaults(handler=cmd_sources_check)
    return parser


def _parse_at(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an ISO date/time (e.g. 2017-11-20T08:00:00+01:00)"
        ) from None
    return moment  # a naive value is given the site's time zone once the config is loaded


def _load(args: argparse.Namespace) -> LoadedConfig:
    return load_config(config_path_from(args.config))


def _moment(args: argparse.Namespace, loaded: LoadedConfig) -> datetime:
    at: datetime | None = getattr(args, "at", None)
    if at is None:
        return datetime.now(UTC)
    return at if at.tzinfo else at.replace(tzinfo=loaded.config.site.tz)


def _print_problems(problems: Sequence[Problem]) -> None:
    for problem in problems:
        print(str(problem), file=sys.stderr)


def cmd_build(args: argparse.Namespace) -> int:
    loaded = _load(args)
    at = _moment(args, loaded)
    with Store.open_for_reading(loaded.database_url) as store:
        issue = compose_next_issue(loaded, store, args.digest, at)
    _print_problems(issue.problems)
    raw = sample_message(loaded, issue, at)
    recipient = sample_recipient(loaded)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "email.html").write_text(
        Splicer(issue.rendered.html, escape_html=True).fill(recipient), encoding="utf-8"
    )
    (out / "email.txt").write_text(
        Splicer(issue.rendered.text, escape_html=False).fill(recipient), encoding="utf-8"
    )
    (out / "email.eml").write_bytes(raw)
    period = issue.period
    start = _iso(period.start) if period.start else "…"
    print(
        f"{args.digest}: {len(issue.items)} item(s) for ({start}, {_iso(period.end)}]"
        f"{f', {len(issue.left_out)} left for later (max_items)' if issue.left_out else ''}"
        f" -> {out / 'email.html'}, email.txt, email.eml"
    )
    print(f"subject: {issue.rendered.subject}")
    if issue.next is not None:
        print(describe_next(issue.next))
    if not issue.items:
        print("note: no items in this period; a real send would send nothing", file=sys.stderr)
    return 0


def describe_next(upcoming: NextPeriod) -> str:
    """``due since ...`` or ``goes out ...``: when the next issue is sent."""
    if upcoming.due:
        return f"next issue: due since {upcoming.period.end.isoformat(timespec='minutes')}"
    return f"next issue: goes out {upcoming.sends_at.isoformat(timespec='minutes')}"


def _next_moment(upcoming: NextPeriod, t: Translator) -> str:
    """``digest check``'s words for when the next issue goes out, in the site's language."""
    if upcoming.due:
        return t.gettext(
            "due since %(when)s", when=upcoming.period.end.isoformat(timespec="minutes")
        )
    return t.gettext("goes out %(when)s", when=upcoming.sends_at.isoformat(timespec="minutes"))


def cmd_check(args: argparse.Namespace) -> int:
    """Lint findings, item counts and totals in the site's language. Source and content
    problems come worded as their modules raise them (English), as errors do."""
    loaded = _load(args)
    at = _moment(args, loaded)
    t = loaded.translator
    problems: list[Problem] = [
        Problem(
            "warning",
            f"{loaded.path}:{unset.line}",
            t.gettext(
                "%(key)s: environment variable %(name)s is not set",
                key=unset.key_path,
                name=unset.name,
            ),
        )
        for unset in loaded.unset_variables
    ]
    names = [args.digest] if args.digest else list(loaded.config.digests)
    renderer = Renderer(loaded)
    summaries: list[str] = []
    seen_sources = False
    with Store.open_for_reading(loaded.database_url) as store:
        for name in names:
            loaded.digest(name)  # unknown name -> clear error
            try:
                issue = compose_next_issue(loaded, store, name, at, renderer=renderer)
            except DigestError as exc:
                problems.append(Problem("error", f"digest {name}", str(exc)))
                continue
            if not seen_sources:  # sources are shared: report their problems once
                problems.extend(issue.problems)
                seen_sources = True
            problems.extend(lint_issue(loaded, issue, at))
            size = renderer.sent_size(issue.rendered) / 1024  # as the builder measures it
            when = f"; {_next_moment(issue.next, t)}" if issue.next else ""
            summaries.append(
                t.ngettext(
                    "%(digest)s: %(num)s item in the next issue, HTML %(size).1f KB "
                    "(limit %(limit)s KB)",
                    "%(digest)s: %(num)s items in the next issue, HTML %(size).1f KB "
                    "(limit %(limit)s KB)",
                    len(issue.items),
                    digest=name,
                    size=size,
                    limit=HTML_SIZE_LIMIT // 1024,
                )
                + when
            )
    summaries += _check_dkim(loaded, problems)
    _print_problems(problems)  # "error:"/"warning:" tags stay as they are, for scripts
    for summary in summaries:
        print(summary)
    errors = sum(problem.severity == "error" for problem in problems)
    warnings = len(problems) - errors
    counted = (
        t.ngettext("%(num)s error", "%(num)s errors", errors),
        t.ngettext("%(num)s warning", "%(num)s warnings", warnings),
    )
    print(", ".join(counted))
    return 1 if errors else 0


def _check_dkim(loaded: LoadedConfig, problems: list[Problem]) -> list[str]:
    """``delivery.dkim``: the key loads; the TXT record to publish."""
    from digest.dkim import signer_for

    try:
        signer = signer_for(loaded.config.delivery.dkim, loaded.resolve)
    except DigestError as exc:
        problems.append(Problem("error", str(loaded.path), str(exc)))
        return []
    if signer is None:
        return []
    return [
        f"DKIM {signer.settings.algorithm}: publish this TXT record in DNS:",
        f"  {signer.zone_line()}",
    ]


def cmd_send(args: argparse.Namespace) -> int:
    from digest.send import send_target

    loaded = _load(args)
    at = _moment(args, loaded)
    digest = args.digest
    loaded.digest(digest)
    if args.to:
        return _send_test_copy(loaded, digest, at, args.to, args.now)
    if args.dry_run:
        with Store.open_for_reading(loaded.database_url) as store:
            target = send_target(loaded, store, digest, at, at_given=bool(args.at), now=args.now)
            if target.existing is not None:
                existing = target.existing
                print(
                    f"{digest}: issue {existing.period_key} exists ({existing.status}); a send would resume it"
                )
                return 0
            issue = compose_next_issue(loaded, store, digest, at, upcoming=target.upcoming)
            recipients = store.count_active(digest)
        _print_problems(issue.problems)
        print(f"dry run: {digest}: {len(issue.items)} item(s), {recipients} recipient(s)")
        print(f"subject: {issue.rendered.subject}")
        if issue.next is not None:
            print(describe_next(issue.next))
        for item in issue.items:
            day = item.published_at.date().isoformat() if item.dated else "(undated)"
            print(f"  {day:<10}  {item.title}")
        return 0

    with Store.open(loaded.database_url) as store:
        return _send(loaded, store, digest, at, args)


def _confirm(args: argparse.Namespace) -> bool:
    """--yes, or 'y' at the prompt; never without a terminal."""
    if args.yes:
        return True
    if not sys.stdin.isatty():
        print("not a terminal: pass --yes to send", file=sys.stderr)
        return False
    answer = input("Send now? [y/N] ").strip().lower()
    return answer in ("y", "yes", "j", "ja")


def _send(
    loaded: LoadedConfig, store: Store, digest: str, at: datetime, args: argparse.Namespace
) -> int:
    """Everything is asked and checked before the ledger is written: a declined or refused
    send leaves no issue (and no newly collected items) behind."""
    from digest.compose import vet_issue
    from digest.errors import SourceError
    from digest.ledger import IssueRefused, collect_into_store
    from digest.progress import SendProgress
    from digest.send import NoSubscribers, send_digest, send_target

    target = send_target(loaded, store, digest, at, at_given=bool(args.at), now=args.now)
    if target.existing is not None:
        return _resume(loaded, store, target.existing, args)
    try:
        issue = compose_next_issue(loaded, store, digest, at, upcoming=target.upcoming)
    except SourceError:
        # Every source failed: record how each fared (status shows it), then say so.
        collect_into_store(loaded, store, digest, at, datetime.now(UTC))
        raise
    _print_problems(issue.problems)
    upcoming = issue.next
    assert upcoming is not None
    if not upcoming.due:
        print(
            f"{digest}: nothing due; the next issue ({len(issue.items)} item(s) so far) goes "
            f"out {upcoming.sends_at.isoformat(timespec='minutes')}; "
            f"'digest send {digest} --now' sends them now"
        )
        return 0
    existing = store.get_issue(digest, upcoming.period.key)
    if existing is not None:
        return _resume(loaded, store, existing, args)
    if upcoming.off_schedule and not issue.items:
        print(f"{digest}: nothing new since the last issue; nothing sent, nothing recorded")
        return 0
    recipients = store.count_active(digest)
    if recipients == 0:
        raise NoSubscribers(
            f"digest {digest} has no active subscribers: nothing sent, nothing recorded "
            "(the items wait for the first subscriber)"
        )
    sendable = bool(issue.items) or loaded.digest(digest).send_empty
    if sendable:
        print(
            f"{digest}: issue {upcoming.period.key}: {len(issue.items)} item(s), "
            f"{recipients} message(s) to send"
        )
        print(f"subject: {issue.rendered.subject}")
        errors = [p for p in lint_issue(loaded, issue, at) if p.severity == "error"]
        if errors and not args.force:
            _print_problems(errors)
            print(
                f"{digest}: held: {len(errors)} error finding(s); nothing sent, nothing "
                f"recorded. Fix them ('digest check {digest}') or pass --force",
                file=sys.stderr,
            )
            return 1
        if not _confirm(args):
            print(f"{digest}: not sent; nothing recorded")
            return 1
    if args.enqueue:
        return _enqueue(
            loaded,
            store,
            digest,
            at,
            period=upcoming.period,
            vet=None if args.force else vet_issue(loaded, digest),
            record_empty=not upcoming.off_schedule,
            at_once=upcoming.off_schedule,
        )
    progress = SendProgress()
    progress.expect(recipients)
    try:
        result = send_digest(
            loaded,
            store,
            digest,
            at,
            period=upcoming.period,
            vet=None if args.force else vet_issue(loaded, digest),
            record_empty=not upcoming.off_schedule,
            at_once=upcoming.off_schedule,  # send now: at once, whatever deliver_at says
            on_result=progress.advance,
            wait_for_retries=args.wait,
        )
    except IssueRefused as exc:
        _print_problems(exc.problems)
        raise
    finally:
        progress.close()
    _print_problems(result.prepared.problems)
    rows = sum(store.counts(result.prepared.issue.id).values())
    if result.prepared.created and 0 < rows < recipients:  # the others' topics: no row, no mail
        print(
            f"{recipients - rows} subscriber(s) get no mail: nothing of their topics in this issue"
        )
    return _report(loaded, store, digest, result.prepared.issue, result.report)


def _resume(loaded: LoadedConfig, store: Store, issue: IssueRow, args: argparse.Namespace) -> int:
    from digest.send import deliver_issue
    from digest.store import FAILED_TEMP, ISSUE_PAUSED, ISSUE_SENDING, PENDING

    if issue.status not in (ISSUE_SENDING, ISSUE_PAUSED):
        return _report(loaded, store, issue.digest, issue, None)
    counts = store.counts(issue.id)
    waiting = store.waiting(issue.id, datetime.now(UTC)).count
    later = f" ({waiting} of them wait for their local delivery time)" if waiting else ""
    print(
        f"{issue.digest}: issue {issue.period_key}: {issue.item_count} item(s), "
        f"{counts[PENDING] + counts[FAILED_TEMP]} message(s) to resume{later}"
    )
    print(f"subject: {issue.subject}")
    if not _confirm(args):
        print(f"{issue.digest}: not sent")
        return 1
    if args.enqueue:
        from digest.store.coordination import WorkSignal

        if issue.status == ISSUE_PAUSED:  # staff asked again: the workers may resume it
            store.set_issue_status(issue.id, ISSUE_SENDING, datetime.now(UTC))
        WorkSignal(store.engine).notify()
        due = store.counts(issue.id)[PENDING]
        print(
            f"{issue.digest}: issue {issue.period_key} enqueued: {due} message(s) for 'digest worker'"
        )
        return 0
    from digest.progress import SendProgress

    progress = SendProgress()
    progress.expect(counts[PENDING] + counts[FAILED_TEMP])
    try:
        report = deliver_issue(
            loaded, store, issue, on_result=progress.advance, wait_for_retries=args.wait
        )
    finally:
        progress.close()
    return _report(loaded, store, issue.digest, issue, report)


def _report(
    loaded: LoadedConfig,
    store: Store,
    digest: str,
    issue: IssueRow,
    report: DeliveryReport | None,
) -> int:
    from digest.deliver import raise_for_report
    from digest.overview import report_summary
    from digest.store import ISSUE_DONE, SENT

    if report is None:
        if issue.status == ISSUE_DONE:
            counts = store.counts(issue.id)
            print(
                f"{digest}: issue {issue.period_key} was already sent ({counts[SENT]} sent); nothing to do"
            )
            return 0
        print(f"{digest}: nothing new for the period ending {issue.period_key}; nothing sent")
        return 0
    print(f"{digest}: {report_summary(report.counts)}")
    print(f"variants: {1 + len(store.issue_variants(issue.id))} rendered")
    if report.next_retry_at and not report.paused:
        print(
            f"deferred messages retry from {report.next_retry_at.isoformat(timespec='seconds')}: "
            f"run 'digest send {digest}' again or keep 'digest run' going"
        )
    if report.waiting and not report.paused:
        print(_waiting_line(loaded, digest, report.waiting, "digest run"))
    raise_for_report(report, digest)
    return 0


def _waiting_line(loaded: LoadedConfig, digest: str, waiting: Waiting, keep: str) -> str:
    """``N message(s) wait for their local 07:00, from ... to ...; keep 'digest run' going``
    (times in the site's zone)."""
    zone = loaded.config.site.tz
    first, last = waiting.first, waiting.last
    assert first is not None and last is not None
    span = _iso(first.astimezone(zone))
    if last != first:
        span = f"from {span} to {_iso(last.astimezone(zone))}"
    local = loaded.digest(digest).deliver_at or "delivery time"
    return f"{waiting.count} message(s) wait for their local {local}, {span}; keep '{keep}' going"


def _send_test_copy(
    loaded: LoadedConfig, digest: str, at: datetime, address: str, send_now: bool
) -> int:
    from digest.nextissue import now_period
    from digest.send import send_test_copy
    from digest.subscribers import normalise_address
    from digest.transport import default_transport

    address = normalise_address(address)
    with Store.open_for_reading(loaded.database_url) as store:
        upcoming = now_period(loaded, store, digest, at) if send_now else None
        issue = send_test_copy(
            loaded,
            store,
            digest,
            at,
            address,
            default_transport(loaded),
            datetime.now(UTC),
            upcoming=upcoming,
        )
    print(f"test copy of {digest} ({len(issue.items)} item(s)) sent to {address}; nothing marked")
    return 0


def cmd_subscribers_add(args: argparse.Namespace) -> int:
    from digest.headers import single_line
    from digest.subscribers import normalise_address, parse_digests

    loaded = _load(args)
    email = normalise_address(args.email)
    digests = parse_digests(";".join(args.digests or []), loaded.config.digests) or list(
        loaded.config.digests
    )
    with Store.open(loaded.database_url) as store:
        _, created = store.add_subscriber(email, single_line(args.name), digests, datetime.now(UTC))
    print(f"{'added' if created else 'updated'} {email} ({', '.join(digests)})")
    return 0


def cmd_subscribers_import(args: argparse.Namespace) -> int:
    from digest.subscriber_csv import decode, parse_map
    from digest.subscribers import declared_topics, import_csv

    loaded = _load(args)
    mapping = parse_map(args.map)
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        raise DigestError(f"{args.file}: cannot read: {exc.strerror or exc}") from None
    text = decode(data, str(args.file))
    with Store.open(loaded.database_url) as store:
        report = import_csv(
            text,
            store,
            known_digests=list(loaded.config.digests),
            default_digests=list(loaded.config.digests),
            now=datetime.now(UTC),
            source=str(args.file),
            mapping=mapping,
            topics=declared_topics(loaded.config.digests),
        )
    for problem in [*report.problems, *report.notes]:
        print(f"warning: {problem}", file=sys.stderr)
    summary = f"{report.added} added, {report.updated} updated, {len(report.problems)} skipped"
    if report.settings_changed:  # a list without those columns need not hear of them
        summary += f"; language, time zone or topics changed for {report.settings_changed}"
    print(summary)
    return 0


def cmd_subscribers_export(args: argparse.Namespace) -> int:
    from digest.subscribers import declared_topics, export_csv

    loaded = _load(args)
    with Store.open(loaded.database_url) as store:
        text = export_csv(
            store.list_subscribers(), store.readers(), declared_topics(loaded.config.digests)
        )
    if args.file:
        args.file.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def cmd_subscribers_list(args: argparse.Namespace) -> int:
    loaded = _load(args)
    with Store.open(loaded.database_url) as store:
        rows = store.list_subscribers(digest=args.digest, status=args.status)
    for row in rows:
        print(f"{row.email}\t{row.name}\t{row.status}\t{';'.join(row.digests)}")
    print(f"{len(rows)} subscriber(s)", file=sys.stderr)
    return 0


def cmd_subscribers_remove(args: argparse.Namespace) -> int:
    from digest.subscribers import normalise_address

    loaded = _load(args)
    with Store.open(loaded.database_url) as store:
        removed = store.remove_subscriber(normalise_address(args.email), datetime.now(UTC))
    if not removed:
        raise DigestError(f"{args.email}: no such subscriber")
    print(f"removed {args.email}")
    return 0


def _iso(moment: datetime) -> str:
    """ISO time to the minute; to the second when it has seconds (a six-field cron)."""
    return moment.isoformat(timespec="seconds" if moment.second else "minutes")


def cmd_status(args: argparse.Namespace) -> int:
    from digest.overview import overview

    loaded = _load(args)
    with Store.open_for_reading(loaded.database_url) as store:
        status = overview(loaded, store, datetime.now(UTC))
    for row in status.digests:
        print(
            f"{row.name} ({row.config.title}): schedule {row.config.schedule!r} in {row.timezone.key}"
        )
        print(f"  next fire: {_iso(row.next_fire)} ({_iso(row.next_fire.astimezone(UTC))})")
        print(f"  {row.catch_up}")
        print(f"  subscribers: {row.active} active; unsent items: {row.unsent_items}")
        latest = row.latest
        if latest is None:
            print("  last issue: none yet")
        else:
            note = f" ({latest.note})" if latest.note else ""
            print(
                f"  last issue: {latest.period_key} [{latest.status}] {latest.item_count} item(s); "
                f"{row.summary or 'no deliveries'}{note}"
            )
        for issue, waiting in row.waiting:
            assert waiting.first is not None
            local = row.config.deliver_at or "delivery time"
            print(
                f"  waiting {issue.period_key}: {waiting.count} message(s) for their local "
                f"{local}; next {_iso(waiting.first.astimezone(loaded.config.site.tz))}"
            )
        for key, counts in row.feedback:
            print(f"  bounces and complaints {key}: {describe_feedback(counts)}")
    for source in sorted(status.sources, key=lambda source: source.name):
        if source.description is not None:
            print(f"source {source.name}: {source.description}")
    if status.in_doubt:
        print(
            f"in doubt ({len(status.in_doubt)}): delivered or not, the server never said; "
            "not re-sent:"
        )
        for issue, delivery in status.in_doubt:
            print(f"  {issue.digest} {issue.period_key} {delivery.email} {delivery.message_id}")
    return 0


def _enqueue(
    loaded: LoadedConfig,
    store: Store,
    digest: str,
    at: datetime,
    *,
    period: Period | None = None,
    vet: Vet | None = None,
    record_empty: bool = True,
    at_once: bool = False,
) -> int:
    """Create (or find) the issue, already confirmed and checked, and leave its delivery to
    the ``digest worker`` processes."""
    from digest.send import enqueue_digest
    from digest.store import ISSUE_DONE, ISSUE_EMPTY, ISSUE_SENDING, PENDING

    result = enqueue_digest(
        loaded,
        store,
        digest,
        at,
        period=period,
        vet=vet,
        record_empty=record_empty,
        at_once=at_once,
    )
    _print_problems(result.prepared.problems)
    issue = store.issue_by_id(result.prepared.issue.id)
    if issue.status == ISSUE_EMPTY:
        print(f"{digest}: nothing new for the period ending {issue.period_key}; nothing sent")
    elif issue.status == ISSUE_DONE:
        print(f"{digest}: issue {issue.period_key} was already sent; nothing to do")
    elif issue.status == ISSUE_SENDING:
        due = store.counts(issue.id)[PENDING]
        print(f"{digest}: issue {issue.period_key} enqueued: {due} message(s) for 'digest worker'")
        waiting = store.waiting(issue.id, datetime.now(UTC))
        if waiting:
            print(_waiting_line(loaded, digest, waiting, "digest worker"))
    else:
        print(f"{digest}: not enqueued")
        return 1
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    import logging
    import signal
    import threading

    from digest.send import open_store
    from digest.store import new_worker_id
    from digest.store.coordination import WorkSignal
    from digest.worker import run_worker

    loaded = _load(args)
    _log_to_stderr(args, loaded)
    log = logging.getLogger("digest.worker")
    worker_id = new_worker_id()
    store = open_store(loaded, application_name=worker_id)
    stop = threading.Event()
    wake = WorkSignal(store.engine, worker_id)

    def on_signal(signum: int, frame: Any) -> None:
        if not stop.is_set():
            log.info("%s: stopping: the messages in flight finish", signal.Signals(signum).name)
        stop.set()
        wake.interrupt()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        stats = run_worker(
            loaded, store, stop, connections=args.connections, wake=wake, worker_id=worker_id
        )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        store.close()
    log.info("worker %s: stopped; %d message(s) sent", worker_id, stats.sent)
    return 0


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value!r}")
    return number


def _log_to_stderr(args: argparse.Namespace, loaded: LoadedConfig) -> None:
    """Log lines on stderr, their times in the site's zone with the offset (digest.logs)."""
    from digest.logs import setup_logging

    setup_logging(loaded.config.site.tz, debug=args.debug)


def cmd_run(args: argparse.Namespace) -> int:
    from digest.scheduler import run

    loaded = _load(args)
    _log_to_stderr(args, loaded)
    return run(
        loaded,
        interval=max(args.interval, 0.5),
        standby_interval=max(args.standby_interval, 0.5),
    )


def cmd_sources_check(args: argparse.Namespace) -> int:
    from rich.console import Console

    from digest.health import check_sources, health_table

    loaded = _load(args)
    with Store.open_for_reading(loaded.database_url) as store:
        known = store.source_states()
    reports = check_sources(loaded, datetime.now(UTC), known)  # writes nothing
    console = Console()
    if not console.is_terminal:  # a log or a pipe: one row per line, no folding at 80 columns
        console = Console(width=240)
    console.print(health_table(reports, loaded.config.site.tz))
    failed = [report for report in reports if report.status == "failed"]
    for report in failed:
        print(f"error: {report.name}: {report.state.last_error}", file=sys.stderr)
    warned = sum(report.status == "warning" for report in reports)
    print(
        f"{len(reports)} source(s): {len(reports) - len(failed) - warned} ok, "
        f"{warned} with warnings, {len(failed)} failed"
    )
    return 1 if failed else 0


def cmd_init(args: argparse.Namespace) -> int:
    from digest.starter import scaffold_files

    target: Path = args.directory
    try:
        translator = translator_for(args.locale)
    except UnknownLanguage as exc:
        raise DigestError(f"--locale {args.locale}: {exc}") from None
    plan = [
        (target / relative, data)
        for relative, data in scaffold_files(args.locale, translator, datetime.now(UTC))
    ]
    existing = [path for path, _ in plan if path.exists()]
    if existing:
        raise DigestError(f"{existing[0]}: already exists; 'digest init' never overwrites files")
    for path, data in plan:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    print(f"created {target / 'config.yaml'}, {target / 'content'}/, {target / 'templates'}/")
    print(
        f"next: edit {target / 'config.yaml'}, then run: digest -c {target / 'config.yaml'} check"
    )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from digest.web.serve import serve

    return serve(config_path_from(args.config), args.host, args.port, args.public_only)


def cmd_hash_password(args: argparse.Namespace) -> int:
    from digest.web.serve import prompt_password_hash

    print(prompt_password_hash())
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
