"""The ``digest`` command line: thin over the library; every user error is one line on stderr."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path

from digest import __version__
from digest.compose import compose_next_issue, sample_message, sample_recipient
from digest.config import LoadedConfig, config_path_from, load_config
from digest.errors import DigestError
from digest.lint import lint_message
from digest.message import Splicer
from digest.models import Problem
from digest.render import Renderer

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
    except KeyboardInterrupt:
        print("digest: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="digest", description="Recurring email digests from Markdown folders and feeds."
    )
    parser.add_argument("-c", "--config", help="config file (default: $DIGEST_CONFIG or ./config.yaml)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--version", action="version", version=f"digest {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    init = commands.add_parser("init", help="scaffold config.yaml, content/ and templates/")
    init.add_argument("directory", nargs="?", default=".", type=Path)
    init.set_defaults(handler=cmd_init)

    check = commands.add_parser("check", help="validate config, sources and templates; lint the next issue")
    check.add_argument("digest", nargs="?", help="only this digest")
    check.add_argument("--at", type=_parse_at, help="as of this ISO time (default: now)")
    check.set_defaults(handler=cmd_check)

    build = commands.add_parser("build", help="render the next issue to files; changes no state")
    build.add_argument("digest")
    build.add_argument("--out", required=True, type=Path, help="output folder")
    build.add_argument("--at", type=_parse_at, help="as of this ISO time (default: now)")
    build.set_defaults(handler=cmd_build)
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
    issue = compose_next_issue(loaded, args.digest, at)
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
    start = period.start.isoformat(timespec="minutes") if period.start else "…"
    print(
        f"{args.digest}: {len(issue.items)} item(s) for ({start}, {period.end.isoformat(timespec='minutes')}]"
        f"{f', {len(issue.left_out)} left for later (max_items)' if issue.left_out else ''}"
        f" -> {out / 'email.html'}, email.txt, email.eml"
    )
    print(f"subject: {issue.rendered.subject}")
    if not issue.items:
        print("note: no items in this period; a real send would send nothing", file=sys.stderr)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    loaded = _load(args)
    at = _moment(args, loaded)
    problems: list[Problem] = [
        Problem(
            "warning",
            f"{loaded.path}:{unset.line}",
            f"{unset.key_path}: environment variable {unset.name} is not set",
        )
        for unset in loaded.unset_variables
    ]
    names = [args.digest] if args.digest else list(loaded.config.digests)
    renderer = Renderer(loaded)
    recipient = sample_recipient(loaded)
    summaries: list[str] = []
    seen_sources = False
    for name in names:
        loaded.digest(name)  # unknown name -> clear error
        try:
            issue = compose_next_issue(loaded, name, at, renderer=renderer)
        except DigestError as exc:
            problems.append(Problem("error", f"digest {name}", str(exc)))
            continue
        if not seen_sources:  # sources are shared: report their problems once
            problems.extend(issue.problems)
            seen_sources = True
        raw = sample_message(loaded, issue, at)
        problems.extend(lint_message(raw, recipient.unsubscribe_url, f"digest {name}"))
        size = len(issue.rendered.html.encode()) // 1024
        summaries.append(f"{name}: {len(issue.items)} item(s) in the next issue, HTML {size} KB")
    _print_problems(problems)
    for summary in summaries:
        print(summary)
    errors = sum(problem.severity == "error" for problem in problems)
    warnings = len(problems) - errors
    print(f"{errors} error(s), {warnings} warning(s)")
    return 1 if errors else 0


def cmd_init(args: argparse.Namespace) -> int:
    target: Path = args.directory
    scaffold = files("digest") / "scaffold"
    templates = files("digest") / "templates"
    plan: list[tuple[Path, bytes]] = [
        (target / "config.yaml", (scaffold / "config.yaml").read_bytes()),
        (target / "content" / "welcome.md", (scaffold / "welcome.md").read_bytes()),
    ]
    for entry in templates.iterdir():
        if entry.is_file() and entry.name.endswith((".mjml", ".txt")):
            plan.append((target / "templates" / entry.name, entry.read_bytes()))
    existing = [path for path, _ in plan if path.exists()]
    if existing:
        raise DigestError(f"{existing[0]}: already exists; 'digest init' never overwrites files")
    for path, data in plan:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    print(f"created {target / 'config.yaml'}, {target / 'content'}/, {target / 'templates'}/")
    print(f"next: edit {target / 'config.yaml'}, then run: digest -c {target / 'config.yaml'} check")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
