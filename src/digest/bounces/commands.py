"""``digest bounces import PATH...`` and ``digest bounces fetch``: thin over
:mod:`digest.bounces.service`; ``cli`` registers them with :func:`register`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from digest.bounces.intake import read_paths
from digest.bounces.record import FeedbackRecorder, IntakeResult
from digest.bounces.service import fetch_imap, take_reports

Load = Callable[[argparse.Namespace], Any]  # -> LoadedConfig
OpenStore = Callable[[Any], Any]  # LoadedConfig -> Store


def register(commands: Any, load: Load, open_store: OpenStore) -> None:
    bounces = commands.add_parser("bounces", help="bounce and complaint reports")
    actions = bounces.add_subparsers(title="bounce commands", metavar="ACTION", required=True)
    imp = actions.add_parser(
        "import", help="read DSN/ARF reports from .eml files, folders, maildirs, mbox files"
    )
    imp.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    imp.set_defaults(handler=lambda args: _import(args, load, open_store))
    fetch = actions.add_parser("fetch", help="poll bounces.imap once")
    fetch.set_defaults(handler=lambda args: _fetch(args, load, open_store))


def _import(args: argparse.Namespace, load: Load, open_store: OpenStore) -> int:
    loaded = load(args)
    store = open_store(loaded)
    try:
        recorder = FeedbackRecorder(store, loaded.config.bounces, lambda: datetime.now(UTC))
        result = take_reports(recorder, read_paths(args.paths))
    finally:
        store.close()
    return _print(result)


def _fetch(args: argparse.Namespace, load: Load, open_store: OpenStore) -> int:
    loaded = load(args)
    store = open_store(loaded)
    try:
        result = fetch_imap(store, loaded.config.bounces, lambda: datetime.now(UTC))
    finally:
        store.close()
    return _print(result)


def _print(result: IntakeResult) -> int:
    for line in result.paused:
        print(f"warning: {line}", file=sys.stderr)
    print(result.summary())
    return 0
