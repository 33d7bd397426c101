"""VERP: a per-delivery envelope sender, so a bounce names the delivery it is about.

The token is random (128 bits), stored on the delivery row and nowhere else: it is not the
unsubscribe token, so knowing one bounce address lets nobody unsubscribe anyone. It is
lower-case hex, because MTAs may change the case of a local part.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable

TOKEN_LENGTH = 32


def new_token() -> str:
    return secrets.token_hex(TOKEN_LENGTH // 2)


def return_path(pattern: str, token: str) -> str:
    return pattern.replace("{token}", token)


def token_in(pattern: str, addresses: Iterable[str]) -> str | None:
    """The token of the first address that fits ``pattern``, if any."""
    before, _, after = pattern.lower().partition("{token}")
    fits = re.compile(
        re.escape(before) + f"([0-9a-f]{{{TOKEN_LENGTH}}})" + re.escape(after), re.IGNORECASE
    )
    for address in addresses:
        match = fits.fullmatch(address.strip().strip("<>"))
        if match:
            return match.group(1).lower()
    return None
