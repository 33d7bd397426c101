"""One exception hierarchy; the CLI catches :class:`DigestError` once and prints one line.

DigestError
├── ConfigError        config file: YAML syntax, unknown key, wrong type (file:line: key)
├── ContentError       one content item cannot be read (file and reason)
├── TemplateError      a template does not compile or render (template:line)
├── SourceError        a source cannot be read at all (folder missing, feed dead)
├── HeaderError        a header value would carry CR/LF or is otherwise unsafe
├── StoreError         the database is unusable (newer schema, locked, ...)
└── DeliveryError      transport-level failure (server down, auth refused)
"""

from __future__ import annotations


class DigestError(Exception):
    """Base of every error a user can cause or fix; printed as one line, never a traceback."""


class ConfigError(DigestError):
    pass


class ContentError(DigestError):
    pass


class TemplateError(DigestError):
    pass


class SourceError(DigestError):
    pass


class HeaderError(DigestError):
    pass


class StoreError(DigestError):
    pass


class DeliveryError(DigestError):
    pass
