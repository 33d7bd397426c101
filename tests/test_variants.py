"""A digest for each reader: topics and language choose the items and the frame, each variant
rendered once; through a real send (aiosmtpd on 127.0.0.1) of the sample site."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, datetime
from html import unescape
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from digest.models import Item
from digest.store import Store, deliveries, issue_items
from digest.transport import MemoryTransport
from digest.variants import Profile, plan_variants, wants
from digest.web import create_app
from tests.conftest import AT_TEXT, SAMPLE_WEEK_TITLES, CliRunner, Site
from tests.smtp_server import import_subscribers, no_defects, running, use_smtp
from tests.web_site import TestClient, configure_web

STADT, JUGEND, KONFERENZ = SAMPLE_WEEK_TITLES[2], SAMPLE_WEEK_TITLES[1], SAMPLE_WEEK_TITLES[0]
HERNE = "18. Lernnetzwerktreffen in Herne"  # 29 November: the issue of 4 December
TOPICS = {
    "Schule": "Schule",
    "Beteiligung": {"de": "Beteiligung", "en": "Participation"},
    "Fachkräfte": "Fachkräfte",
    "Lernnetzwerk": "Lernnetzwerk",
}


def item(title: str, *tags: str) -> Item:
    return Item("s", title, title, datetime(2017, 11, 1, tzinfo=UTC), "", "", "h", tags=tags)


def test_the_topic_rule() -> None:
    topics = {"a", "b"}
    assert wants(item("x", "a"), topics, frozenset({"a"}))
    assert not wants(item("x", "a"), topics, frozenset({"b"}))
    assert wants(item("x", "a"), topics, frozenset())  # chose none: every topic
    assert wants(item("x", "other"), topics, frozenset({"b"}))  # no topic of the digest
    assert wants(item("x"), topics, frozenset({"b"}))


def test_readers_with_the_same_items_and_language_share_a_variant() -> None:
    items = [item("1", "a"), item("2", "b"), item("3")]
    plan = plan_variants(
        items,
        ["a", "b", "c"],
        [
            Profile(None, frozenset({"a"})),
            Profile("de", frozenset({"a", "c"})),  # c tags nothing here: the same items
            Profile("en", frozenset({"a"})),
            Profile("fr", frozenset()),  # no catalogue: the site's language
            Profile("de", frozenset()),
            Profile(None, frozenset({"gone"})),  # a topic no longer declared: ignored
        ],
        site_language="de",
        languages=["de", "en"],
    )
    assert [(v.language, v.positions) for v in plan.variants] == [
        ("de", (0, 1, 2)),
        ("de", (0, 2)),
        ("en", (0, 2)),
    ]
    assert plan.variant_for(Profile(None, frozenset({"a"}))) == "de:0,2"
    assert plan.variant_for(Profile("de", frozenset({"a", "c"}))) == "de:0,2"
    assert plan.variant_for(Profile("fr", frozenset())) == "de:all"
    assert plan.variant_for(Profile(None, frozenset({"gone"}))) == "de:all"


def test_an_empty_selection_gets_no_variant() -> None:
    plan = plan_variants(
        [item("1", "a")], ["a", "b"], [Profile(None, frozenset({"b"}))],
        site_language="de", languages=["de"],
    )  # fmt: skip
    assert plan.variants == ()
    assert plan.variant_for(Profile(None, frozenset({"b"}))) is None


READERS: dict[str, tuple[str | None, tuple[str, ...]]] = {
    # address: (language, topics)
    "anna@example.org": ("de", ("Schule",)),
    "ben@example.org": ("en", ("Beteiligung",)),
    "carl@example.org": ("en", ()),
    "dora@example.org": (None, ()),
    "emil@example.org": ("en", ("Schule",)),
    "fritz@example.org": (None, ("Lernnetzwerk",)),  # nothing of that in the sample week
}
EXPECTED = {
    "anna@example.org": {STADT},
    "ben@example.org": {JUGEND},
    "carl@example.org": {STADT, JUGEND, KONFERENZ},
    "dora@example.org": {STADT, JUGEND, KONFERENZ},
    "emil@example.org": {STADT},
}


def configure(site: Site, port: int) -> None:
    def edit(data: dict[str, Any]) -> None:
        weekly = data["digests"]["weekly"]
        weekly["topics"] = TOPICS
        weekly["subject"] = {
            "de": "{{ site.title }}: {{ items|length }} neue Beiträge",
            "en": "{{ site.title }}: {{ items|length }} new posts",
        }

    use_smtp(site.config, port, edit=edit)


def set_readers(site: Site) -> None:
    store = Store.open(site.load().database_url)
    try:
        for address, (language, topics) in READERS.items():
            subscriber = store.subscriber_by_email(address)
            assert subscriber is not None
            store.set_reader(
                subscriber.id, language=language, timezone=None, topics={"weekly": topics}
            )
    finally:
        store.close()


@pytest.mark.both_databases
def test_each_reader_gets_the_items_and_frame_they_chose(site: Site, cli: CliRunner) -> None:
    import_subscribers(
        site,
        cli,
        "email,name,digests\n"
        + "".join(f"{a},{a.split('@')[0].title()},weekly\n" for a in READERS),
    )
    set_readers(site)
    titles = [*SAMPLE_WEEK_TITLES, HERNE]
    with running() as server:
        configure(site, server.port)
        result = cli("-c", site.config, "send", "weekly", "--yes", "--at", AT_TEXT)
        assert result.code == 0, result.err
        assert "5 sent" in result.out
        assert "variants: 5 rendered" in result.out
        assert "1 subscriber(s) get no mail: nothing of their topics in this issue" in result.out
        later = cli("-c", site.config, "send", "weekly", "--yes", "--at", "2017-12-04T08:00+01:00")
        assert later.code == 0, later.err
    got: dict[str, list[str]] = defaultdict(list)
    first_issue: dict[str, set[str]] = {}
    for received in server.received:
        message = received.message
        address = received.rcpt_tos[0]
        assert no_defects(message) == []
        text = message.get_body(("plain",)).get_content()
        html = unescape(message.get_body(("html",)).get_content())
        mine = {title for title in titles if title in text}
        assert mine == {title for title in titles if title in html}
        got[address] += sorted(mine)
        if HERNE in mine:
            continue
        first_issue[address] = mine
        name = address.split("@")[0].title()
        english = READERS[address][0] == "en"
        assert f"{'Hello' if english else 'Hallo'} {name}," in text
        assert ("Unsubscribe" if english else "Abmelden") in html
        # The frame's language is the document's; the German content says it is German.
        assert f'<html lang="{"en" if english else "de"}"' in html
        assert ('<div lang="de">' in html) == english
        count = len(EXPECTED[address])
        assert message["Subject"] == (
            f"Präventionskette Ahlen: {count} {'new posts' if english else 'neue Beiträge'}"
        )
    assert first_issue == EXPECTED  # fritz: an empty selection, no mail
    # The next issue holds Herne (Lernnetzwerk): fritz and the readers of every topic get it.
    assert {a for a, t in got.items() if HERNE in t} == {
        "carl@example.org", "dora@example.org", "fritz@example.org",
    }  # fmt: skip
    for address, seen in got.items():  # no item twice, across issues and variants
        assert len(seen) == len(set(seen)), address
    store = Store.open(site.load().database_url)
    try:
        issue = store.list_issues("weekly")[-1]  # the sample week's
        variants = store.issue_variants(issue.id)
        # The issue's own rendering (German, every item) plus four variants: five renders.
        assert sorted((v.language, len(v.item_ids)) for v in variants) == [
            ("de", 1), ("en", 1), ("en", 1), ("en", 3),
        ]  # fmt: skip
        with store.engine.connect() as conn:
            own = set(
                conn.execute(
                    select(issue_items.c.item_id).where(issue_items.c.issue_id == issue.id)
                ).scalars()
            )
            rows = conn.execute(
                select(func.count())
                .select_from(deliveries)
                .where(deliveries.c.issue_id == issue.id)
            ).scalar_one()
            per_item = conn.execute(
                select(issue_items.c.item_id, func.count())
                .where(issue_items.c.digest == "weekly")
                .group_by(issue_items.c.item_id)
            ).all()
        assert all(set(v.item_ids) <= own for v in variants)
        assert rows == 5  # no delivery row for fritz
        assert {count for _, count in per_item} == {1}
    finally:
        store.close()


def test_a_variants_view_in_browser_link_opens_that_variant(site: Site, cli: CliRunner) -> None:
    """The archive shows the reader's variant (their language, their items), not the issue's
    own rendering; an unknown variant key shows the own."""
    import_subscribers(site, cli, "email,name,digests\nemil@example.org,Emil,weekly\n")
    store = Store.open(site.load().database_url)
    try:
        emil = store.subscriber_by_email("emil@example.org")
        assert emil is not None
        store.set_reader(emil.id, language="en", timezone=None, topics={"weekly": ["Schule"]})
    finally:
        store.close()
    with running() as server:
        configure(site, server.port)
        configure_web(site.config, public_url="http://127.0.0.1:8000")
        assert cli("-c", site.config, "send", "weekly", "--yes", "--at", AT_TEXT).code == 0
    text = server.received[0].message.get_body(("plain",)).get_content()
    link = re.search(r"View in browser: (\S+)", text)
    assert link is not None, text
    url = urlsplit(link.group(1))
    assert url.query.startswith("variant=en")
    app = create_app(site.config, transport=MemoryTransport(), environ={}, watch=False)
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        mine = unescape(client.get(f"{url.path}?{url.query}").text)
        own = unescape(client.get(f"{url.path}?variant=xx:nothing").text)
    assert '<html lang="en"' in mine and STADT in mine and JUGEND not in mine
    assert '<html lang="de"' in own and STADT in own and JUGEND in own
