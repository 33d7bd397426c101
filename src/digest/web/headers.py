"""Security headers: the pages' Content-Security-Policy, the email's, and the middleware that
sets the defaults on every response.

Pages are sent with ``Cache-Control: no-store`` unless they say otherwise: token pages
(confirm, unsubscribe, preferences), the login and every staff page must not stay in a shared
or browser cache. Only the public archive and static files may be cached."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_CSP = (
    "default-src 'self'; img-src 'self' https: http: data:; style-src 'self'; "
    "script-src 'self'; frame-src 'self'; frame-ancestors 'self'; form-action 'self'; "
    "base-uri 'none'; object-src 'none'"
)
# The email's own HTML (preview frame, archive): inline styles, remote images, nothing else.
EMAIL_CSP = (
    "default-src 'none'; img-src https: http: data:; style-src 'unsafe-inline'; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)


# Paths whose responses may be cached (public, the same for everyone, no token in the URL).
CACHEABLE_PREFIXES = ("/static/", "/archive")


def cacheable(path: str) -> bool:
    return path.startswith(CACHEABLE_PREFIXES)


class SecurityHeaders:
    """Default security headers on every response (a route may set its own CSP)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        no_store = not cacheable(scope.get("path", ""))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                defaults = {
                    b"x-content-type-options": b"nosniff",
                    b"referrer-policy": b"no-referrer",  # tokens live in our URLs
                    b"x-frame-options": b"SAMEORIGIN",
                    b"content-security-policy": PAGE_CSP.encode(),
                }
                if no_store:
                    defaults[b"cache-control"] = b"no-store"
                headers += [(k, v) for k, v in defaults.items() if k not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
