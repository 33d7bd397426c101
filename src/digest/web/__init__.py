"""``digest serve``: preview, archive, subscription pages and the staff dashboard."""

from __future__ import annotations

from digest.web.app import create_app

__all__ = ["create_app"]
