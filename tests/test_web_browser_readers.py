"""A reader's own pages in headless Chromium: the real app under uvicorn on 127.0.0.1, a real
SQLite file and a real aiosmtpd server. Topics and cadence on the sign-up form, the reader's
language on the confirmation, unsubscribe and preferences pages, the time zone control, and
the staff pages that show an issue's variants and a subscriber's settings. axe-core checks each
page; screenshots (375 and 1280 px, German and English) go to ``$DIGEST_SCREENSHOTS``
(default /tmp/shots) as web-reader-*.png, to be looked at."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from digest.web import create_app
from tests.browser import BROWSER_TESTS, chromium
from tests.conftest import AT, REPO
from tests.smtp_server import running, use_smtp
from tests.test_web_browser import DESKTOP, Server, login, shot
from tests.test_web_browser import check_page as shared_check_page
from tests.test_web_browser import new_page as shared_new_page
from tests.web_site import configure_web, free_socket, served

pytestmark = [*BROWSER_TESTS, pytest.mark.timeout(180)]
playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
expect.set_options(timeout=15_000)
PHONE = {"width": 375, "height": 812}
WIDTHS = (("375", PHONE), ("1280", DESKTOP))
TOPICS = {"Schule": "Schule", "Beteiligung": {"de": "Beteiligung", "en": "Participation"}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("readers") / "site"
    root.mkdir()
    shutil.copy(REPO / "config.example.yaml", root / "config.yaml")
    shutil.copytree(REPO / "content", root / "content")
    config = root / "config.yaml"
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["digests"]["weekly"]["topics"] = TOPICS
    data["digests"]["weekly"]["subject"] = {
        "de": "{{ site.title }}: {{ items|length }} neue Beiträge",
        "en": "{{ site.title }}: {{ items|length }} new posts",
    }
    config.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    sock = free_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with running() as smtp:
        use_smtp(config, smtp.port, connections=1)
        configure_web(config, public_url=url)
        app = create_app(config, clock=lambda: AT, environ={})
        with served(app, sock):
            yield Server(url, root, smtp, app.state.web)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium(playwright_api) as instance:
        yield instance


def new_page(
    browser: Any, server: Server, viewport: dict[str, int] = DESKTOP, locale: str = "de-DE"
) -> Any:
    return shared_new_page(browser, server, viewport, axe=True, locale=locale)


def check_page(page: Any, name: str) -> None:
    shared_check_page(page, f"reader-{name}")


def confirm_link(server: Server, address: str) -> str:
    server.smtp.wait_for(1, timeout=10)  # the sign-up sends before it answers
    mail = server.mails_to(address)[-1]
    body = mail.get_body(("plain",))
    assert body is not None
    match = re.search(rf"{re.escape(server.url)}/confirm/[\w-]+", body.get_content())
    assert match, body.get_content()
    return match.group(0)


def test_sign_up_with_a_topic_in_english_asks_how_often(browser: Any, server: Server) -> None:
    for width, viewport in WIDTHS:
        page = new_page(browser, server, viewport, locale="en-GB")
        page.goto(f"{server.url}/subscribe")
        check_page(page, f"subscribe-{width}")
        page.context.close()

    address = "emma.english@example.net"
    page = new_page(browser, server, PHONE, locale="en-GB")
    page.goto(f"{server.url}/subscribe")
    question = page.get_by_role("group", name="Wie oft möchten Sie die Neuigkeiten erhalten?")
    weekly = question.get_by_label("Jede Woche am Montag um 07:00 Uhr")
    monthly = question.get_by_label("Jeden Monat am 1. um 08:00 Uhr")
    expect(weekly).to_have_accessible_name(re.compile("Wochenüberblick"))
    topics = page.get_by_role("group", name="Themen in „Wochenüberblick“")
    for box in (weekly, monthly, topics.get_by_label("Schule"), topics.get_by_label("Beteiligung")):
        expect(box).not_to_be_checked()  # consent is the reader's act: nothing ticked
    expect(page.get_by_label("Sprache der E-Mails")).to_have_value("en")  # the browser's
    page.get_by_label("E-Mail-Adresse").fill(address)
    weekly.check()
    topics.get_by_label("Schule").check()
    page.get_by_role("button", name="Abonnieren").click()
    expect(page.get_by_role("heading", name="Bitte prüfen Sie Ihr Postfach")).to_be_visible()

    link = confirm_link(server, address)
    mail = server.mails_to(address)[-1]
    assert str(mail["Subject"]).startswith("Please confirm your subscription")
    assert "Wochenüberblick, only on Schule" in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    page.goto(link)
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", name="Confirm your subscription")).to_be_visible()
    expect(page.get_by_role("listitem")).to_have_text("Wochenüberblick, only on Schule")
    check_page(page, "confirm-en-375")
    page.get_by_role("button", name="Confirm subscription").click()
    expect(page.get_by_role("heading", name="Subscription confirmed")).to_be_visible()
    subscriber = server.store.subscriber_by_email(address)
    assert subscriber is not None and subscriber.digests == ("weekly",)
    reader = server.store.reader_settings(subscriber.id)
    assert (reader.language, reader.timezone, reader.topics) == (
        "en",
        None,
        {"weekly": ("Schule",)},
    )
    page.context.close()


def test_preferences_in_the_readers_language_with_a_time_zone(browser: Any, server: Server) -> None:
    english, _ = server.store.add_subscriber("ed.english@example.net", "Ed", ["weekly"], AT)
    server.store.set_reader(
        english.id, language="en", timezone=None, topics={"weekly": ["Beteiligung"]}
    )
    german, _ = server.store.add_subscriber("gerd.deutsch@example.net", "Gerd", ["monthly"], AT)
    for width, viewport in WIDTHS:
        for language, subscriber in (("en", english), ("de", german)):
            page = new_page(browser, server, viewport)
            page.goto(f"{server.url}/preferences/{subscriber.token}")
            expect(page.locator("html")).to_have_attribute("lang", language)
            check_page(page, f"preferences-{language}-{width}")
            page.context.close()

    page = new_page(browser, server, PHONE)  # a German browser: the reader's language wins
    page.goto(f"{server.url}/preferences/{english.token}")
    expect(page.get_by_role("heading", name="Preferences")).to_be_visible()
    question = page.get_by_role("group", name="How often would you like to receive the news?")
    expect(question.get_by_label(re.compile("Every week on Monday at 7:00"))).to_be_checked()
    expect(question.get_by_label(re.compile("Every month on day 1"))).not_to_be_checked()
    topics = page.get_by_role("group", name="Topics in “Wochenüberblick”")
    expect(topics.get_by_label("Participation")).to_be_checked()  # the label in English
    zone = page.get_by_label("Time zone")
    expect(zone).to_have_value("")
    expect(zone.locator("option:checked")).to_have_text(
        "The site's time zone (Europe/Berlin, UTC+01:00)"
    )
    zone.select_option("America/New_York")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Your preferences are saved.")
    expect(page.get_by_label("Time zone")).to_have_value("America/New_York")
    assert server.store.reader_settings(english.id).timezone == "America/New_York"
    shot(page, "preferences-saved-en-375")

    # A zone the list does not offer (a forged form) is refused and never stored.
    page.evaluate(
        "(() => { const s = document.getElementById('timezone');"
        " s.add(new Option('Mars', 'Mars/Olympus')); s.value = 'Mars/Olympus'; })()"
    )
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.locator("#timezone-error")).to_have_text(
        "“Mars/Olympus” is not a time zone we know. Please choose one from the list."
    )
    expect(page.get_by_label("Time zone")).to_have_attribute("aria-invalid", "true")
    assert server.store.reader_settings(english.id).timezone == "America/New_York"
    check_page(page, "preferences-refused-en-375")
    page.context.close()


def test_unsubscribe_pages_speak_the_readers_language(browser: Any, server: Server) -> None:
    readers = {
        "en": ("Unsubscribe", "Unsubscribe now", "You are unsubscribed"),
        "de": ("Abmelden", "Jetzt abmelden", "Sie sind abgemeldet"),
    }
    for width, viewport in WIDTHS:
        for language, (title, button, done) in readers.items():
            subscriber, _ = server.store.add_subscriber(
                f"leaving.{language}.{width}@example.net", "", ["weekly"], AT
            )
            server.store.set_reader(
                subscriber.id, language=language if language == "en" else None, timezone=None
            )
            page = new_page(browser, server, viewport)
            page.goto(f"{server.url}/unsubscribe/{subscriber.token}")
            expect(page.locator("html")).to_have_attribute("lang", language)
            expect(page.get_by_role("heading", name=title)).to_be_visible()
            check_page(page, f"unsubscribe-{language}-{width}")
            page.get_by_role("button", name=button).click()
            expect(page.get_by_role("heading", name=done)).to_be_visible()
            check_page(page, f"unsubscribed-{language}-{width}")
            page.context.close()


def test_staff_see_the_variants_of_an_issue_and_a_readers_settings(
    browser: Any, server: Server
) -> None:
    store = server.store
    readers = {  # address: (language, topics of weekly)
        "de.alle@example.org": (None, []),
        "de.schule@example.org": ("de", ["Schule"]),
        "en.alle@example.org": ("en", []),
        "en.beteiligung@example.org": ("en", ["Beteiligung"]),
    }
    for address, (language, topics) in readers.items():
        subscriber, _ = store.add_subscriber(address, "", ["weekly"], AT)
        store.set_reader(
            subscriber.id, language=language, timezone="Asia/Tokyo", topics={"weekly": topics}
        )
    page = new_page(browser, server)
    login(page, server)
    page.get_by_role("link", name="Jetzt senden …").first.click()
    page.get_by_role("button", name="Jetzt an alle senden").click()
    server.state.jobs.wait(60)
    (issue,) = store.list_issues("weekly")
    counts = store.variant_counts(issue.id)
    assert len(counts) == 1 + len(store.issue_variants(issue.id)) >= 4
    assert sum(c.recipients for c in counts) == store.counts(issue.id)["sent"]

    page.goto(f"{server.url}/issues/{issue.id}")
    section = page.locator("#variants")
    expect(section.get_by_role("heading")).to_have_text(f"In {len(counts)} Varianten erzeugt")
    rows = section.locator("tbody tr")
    expect(rows).to_have_count(len(counts))
    expect(rows.first).to_contain_text("die Ausgabe selbst")
    for row, count in zip(rows.all(), counts, strict=True):
        cells = row.locator("td").all_inner_texts()
        language = {"de": "Deutsch", "en": "English", None: "Deutsch"}[count.language]
        assert cells[1:] == [language, str(count.items), str(count.recipients)], cells
    check_page(page, "issue-variants-1280")

    subscriber = store.subscriber_by_email("en.beteiligung@example.org")
    assert subscriber is not None
    page.goto(f"{server.url}/subscribers/{subscriber.id}")
    expect(page.locator("#reader-language")).to_have_text("English")
    expect(page.locator("#reader-timezone")).to_have_text("Asia/Tokyo")
    expect(page.locator("#reader-topics")).to_have_text("Wochenüberblick: Beteiligung")
    check_page(page, "subscriber-reader-1280")
    page.context.close()

    phone = new_page(browser, server, PHONE)
    login(phone, server)
    phone.goto(f"{server.url}/issues/{issue.id}")
    check_page(phone, "issue-variants-375")
    other = store.subscriber_by_email("de.alle@example.org")
    assert other is not None
    phone.goto(f"{server.url}/subscribers/{other.id}")
    expect(phone.locator("#reader-language")).to_have_text("wie die Website (Deutsch)")
    expect(phone.locator("#reader-topics")).to_have_text("Wochenüberblick: alle Themen")
    check_page(phone, "subscriber-reader-375")
    phone.context.close()
