"""Where bounce reports come from on disk: ``.eml`` files, maildirs and mbox files.

Each reader is one entry in :data:`READERS` (a test for the path, a generator of reports);
IMAP lives in :mod:`digest.bounces.imap` and hands the same :class:`Report` values on.
"""

from __future__ import annotations

import mailbox
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from digest.bounces.events import BounceError


@dataclass(frozen=True)
class Report:
    origin: str  # where it was read, for messages and the log: file, maildir key, mbox index
    data: bytes


def _is_maildir(path: Path) -> bool:
    return path.is_dir() and all((path / sub).is_dir() for sub in ("cur", "new", "tmp"))


def _is_mbox(path: Path) -> bool:
    if not path.is_file():
        return False
    with path.open("rb") as handle:
        return handle.read(5) == b"From "


def _read_maildir(path: Path) -> Iterator[Report]:
    box = mailbox.Maildir(path, factory=None, create=False)
    for key in sorted(box.iterkeys()):
        with box.get_file(key) as handle:
            yield Report(f"{path}:{key}", handle.read())


def _read_mbox(path: Path) -> Iterator[Report]:
    box = mailbox.mbox(path, factory=None, create=False)
    try:
        for index, key in enumerate(box.iterkeys(), start=1):
            yield Report(f"{path}#{index}", box.get_bytes(key))
    finally:
        box.close()


def _read_eml(path: Path) -> Iterator[Report]:
    yield Report(str(path), path.read_bytes())


def _read_folder(path: Path) -> Iterator[Report]:
    """A plain folder: its ``.eml`` files, in name order."""
    for child in sorted(path.glob("*.eml")):
        yield from _read_eml(child)


READERS: list[tuple[Callable[[Path], bool], Callable[[Path], Iterator[Report]]]] = [
    (_is_maildir, _read_maildir),
    (Path.is_dir, _read_folder),
    (_is_mbox, _read_mbox),
    (Path.is_file, _read_eml),
]


def read_paths(paths: Iterable[Path]) -> Iterator[Report]:
    """Every report under ``paths``; a path that is missing or unreadable is a one-line error
    naming it."""
    for path in paths:
        if not path.exists():
            raise BounceError(f"{path}: no such file, maildir or mbox")
        for fits, read in READERS:
            if fits(path):
                try:
                    yield from read(path)
                except OSError as exc:
                    raise BounceError(f"{path}: cannot read: {exc.strerror or exc}") from None
                except mailbox.Error as exc:
                    raise BounceError(f"{path}: not a mailbox: {exc}") from None
                break
