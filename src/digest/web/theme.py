"""``/theme.css``: the site's accent colour as CSS variables, kept readable."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from digest.config import LoadedConfig


def theme_route(loaded: LoadedConfig) -> Callable[[Request], Awaitable[Response]]:
    css = theme_css(loaded)

    async def theme(request: Request) -> Response:
        return Response(css, media_type="text/css", headers={"Cache-Control": "max-age=300"})

    return theme


def theme_css(loaded: LoadedConfig) -> str:
    """The accent colour as CSS variables; too light an accent falls back to a dark one so
    white button text keeps a 4.5:1 contrast."""
    accent = loaded.config.site.accent_color
    if contrast(accent, "#ffffff") < 4.5:
        accent = "#1f4e79"
    return f":root {{ --accent: {accent}; }}\n"


def contrast(first: str, second: str) -> float:
    def luminance(color: str) -> float:
        channels = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(first), luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)
