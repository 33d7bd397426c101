"""How long a feed or a listing page takes to fetch and parse.

    python3 bench/sources.py [--repeat 20] [--entries 100]

Synthesises an RSS 2.0, an Atom and a JSON feed of ``--entries`` entries (German teaser text,
an HTML body with a relative link and a picture, two categories) and a listing page of as many
teasers, serves them from a local HTTP server on 127.0.0.1 and prints the median time of
``source.collect`` (fetch + parse + sanitise), of parsing alone, and of a conditional GET that
gets 304 Not Modified.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.localserver import LocalServer

from digest.collect import collect
from digest.config import PageSourceConfig
from digest.sources.feed import FeedSource, parse_feed
from digest.sources.http import FetchOptions
from digest.sources.page import PageSource

NOW = datetime(2017, 11, 20, 7, 0, tzinfo=UTC)
TEXT = (
    "Im Rahmen der Präventionswoche fand eine Stadtführung besonderer Art statt. Vor allem "
    "ortsfremde Lehrkräfte lernten die sozialen Strukturen, Akteure und Angebote kennen."
)
MONTHS = ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September",
          "Oktober", "November", "Dezember")  # fmt: skip


def body(index: int) -> str:
    return (
        f"<p>{TEXT} <a href='/aktuelles/{index}'>Mehr</a></p>"
        f"<p><img src='bilder/{index}.jpg' alt='Bild {index}'></p>"
    )


def rss(entries: int) -> str:
    items = "".join(
        f"<item><title>Meldung {i}: Präventionswoche</title>"
        f"<link>https://www.example.org/aktuelles/{i}</link><guid>meldung-{i}</guid>"
        f"<pubDate>{format_datetime(NOW - timedelta(hours=i))}</pubDate>"
        f"<category>Schule</category><category>Prävention</category>"
        f"<description>{escape(body(i))}</description></item>"
        for i in range(entries)
    )
    return f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>B</title>{items}</channel></rss>'


def atom(entries: int) -> str:
    items = "".join(
        f"<entry><title>Meldung {i}</title><id>urn:meldung:{i}</id>"
        f"<link href='https://www.example.org/aktuelles/{i}'/>"
        f"<updated>{(NOW - timedelta(hours=i)).isoformat()}</updated>"
        f"<category term='Schule'/><content type='html'>{escape(body(i))}</content></entry>"
        for i in range(entries)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>B</title><id>urn:b</id>{items}</feed>"
    )


def json_feed(entries: int) -> str:
    import json

    return json.dumps({
        "version": "https://jsonfeed.org/version/1.1", "title": "B",
        "items": [{"id": f"m{i}", "url": f"https://www.example.org/aktuelles/{i}",
                   "title": f"Meldung {i}", "content_html": body(i), "tags": ["Schule"],
                   "date_published": (NOW - timedelta(hours=i)).isoformat()}
                  for i in range(entries)],
    })  # fmt: skip


def page(entries: int) -> str:
    teasers = "".join(
        f"<div class='news-teaser'><h3>Meldung {i}</h3><p class='teaser'>Am {i % 28 + 1}. "
        f"{MONTHS[i % 12]} {TEXT}</p><a class='mehr' href='/aktuelles/{i}'>Mehr</a></div>"
        for i in range(entries)
    )
    return (
        f"<html><head><meta charset='utf-8'></head><body><h2 class='halbjahr'>2. Halbjahr "
        f"2017</h2>{teasers}</body></html>"
    )


def median_ms(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--entries", type=int, default=100)
    args = parser.parse_args()
    n = args.entries
    with LocalServer() as server:
        documents = {
            "RSS 2.0": ("/rss.xml", rss(n), "application/rss+xml"),
            "Atom": ("/atom.xml", atom(n), "application/atom+xml"),
            "JSON Feed": ("/feed.json", json_feed(n), "application/feed+json"),
        }
        print(f"{n} entries, median of {args.repeat} runs")
        for label, (path, text, content_type) in documents.items():
            url = server.add(path, text, content_type=content_type, etag='"1"')
            source = FeedSource("b", url, FetchOptions())
            count = len(source.collect(NOW).items)
            assert count == n, (label, count)
            fetch_parse = median_ms(lambda: source.collect(NOW), args.repeat)  # noqa: B023
            data = text.encode()
            parse = median_ms(
                lambda: parse_feed(data, source="b", url=url, now=NOW, content_type=content_type),  # noqa: B023
                args.repeat,
            )
            states = collect([source], NOW, {}).states
            not_modified = median_ms(lambda: collect([source], NOW, states), args.repeat)  # noqa: B023
            print(
                f"  {label:10} fetch+parse {fetch_parse:6.1f} ms  parse {parse:6.1f} ms  "
                f"304 {not_modified:5.1f} ms  ({len(data) // 1024} KB)"
            )
        url = server.add("/liste", page(n), content_type="text/html; charset=utf-8")
        config = PageSourceConfig.model_validate({
            "kind": "page", "url": url, "item": "div.news-teaser", "title": "h3",
            "teaser": "p.teaser", "link": "a.mehr",
            "date": {"pattern": r"(?i)\bam (?P<day>\d{1,2})\. (?P<month>\w+)",
                     "year_from": "h2.halbjahr"},
        })  # fmt: skip
        listing = PageSource("p", config, FetchOptions(), "de_DE", ZoneInfo("Europe/Berlin"))
        assert len(listing.collect(NOW).items) == n
        print(
            f"  {'page':10} fetch+parse {median_ms(lambda: listing.collect(NOW), args.repeat):6.1f} ms"
        )


if __name__ == "__main__":
    main()
