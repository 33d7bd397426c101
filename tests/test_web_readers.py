"""A reader's own pages at the HTTP level (Starlette TestClient): topics chosen at sign-up
and kept through confirmation, the reader's language on the confirmation mail and pages,
the time zone on the preferences page. (In the browser: tests/test_web_browser_readers.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from email.header import decode_header, make_header

import pytest
from sqlalchemy import func, select

from digest.store import subscription_topics
from tests.conftest import Site
from tests.test_web import Web, body_text, confirm_link, make_web
from tests.web_site import csrf_of

TOPICS = "    topics: {Schule: Schule, Beteiligung: {de: Beteiligung, en: Participation}}\n"


@pytest.fixture
def web(site: Site) -> Iterator[Web]:
    for name in ("weekly", "monthly"):
        site.replace_in_config(f"  {name}:\n", f"  {name}:\n{TOPICS}")
    yield from make_web(site)


def sign_up(web: Web, email: str, **form: str | list[str]) -> tuple[str, str]:
    """Sign up and confirm; the confirmation link and its form's CSRF token."""
    page = web.client.get("/subscribe")
    web.client.post("/subscribe", data={"csrf": csrf_of(page.text), "email": email, **form})
    (mail,) = web.new_mails()
    link = confirm_link(mail)
    csrf = csrf_of(web.client.get(link).text)
    web.client.post(link, data={"csrf": csrf})
    return link, csrf


def topic_rows(web: Web, subscriber_id: int) -> int:
    with web.store.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(subscription_topics)
                .where(subscription_topics.c.subscriber_id == subscriber_id)
            ).scalar_one()
        )


def test_topics_ticked_at_sign_up_apply_on_confirmation(web: Web) -> None:
    page = web.client.get("/subscribe")
    assert "Themen in „Wochenüberblick“" in page.text
    assert 'name="topics-weekly" value="Schule" aria' in page.text  # offered, not ticked
    web.client.post(
        "/subscribe",
        data={
            "csrf": csrf_of(page.text), "email": "topics@example.net", "digests": "weekly",
            "topics-weekly": ["Schule", "unknown"], "topics-monthly": "Schule",  # not chosen
        },
    )  # fmt: skip
    (mail,) = web.new_mails()
    assert "Wochenüberblick, nur zu Schule" in body_text(mail)
    assert web.store.subscriber_by_email("topics@example.net") is None  # nothing before consent
    link = confirm_link(mail)
    confirm = web.client.get(link)
    assert "Wochenüberblick, nur zu Schule" in confirm.text
    web.client.post(link, data={"csrf": csrf_of(confirm.text)})
    subscriber = web.store.subscriber_by_email("topics@example.net")
    assert subscriber is not None and subscriber.digests == ("weekly",)
    assert web.store.reader_settings(subscriber.id).topics == {"weekly": ("Schule",)}


def test_signing_up_again_neither_loses_nor_doubles_topics(web: Web) -> None:
    address = "again@example.net"
    link, csrf = sign_up(web, address, digests="weekly", **{"topics-weekly": ["Schule", "Schule"]})
    subscriber = web.store.subscriber_by_email(address)
    assert subscriber is not None
    # Confirming the same link again (a double click) changes nothing.
    again = web.client.post(link, data={"csrf": csrf})
    assert "Anmeldung bestätigt" in again.text
    assert topic_rows(web, subscriber.id) == 1
    # A second sign-up for the other digest keeps the first digest's topics.
    sign_up(web, address, digests="monthly", **{"topics-monthly": "Beteiligung"})
    reader = web.store.reader_settings(subscriber.id)
    assert reader.topics == {"weekly": ("Schule",), "monthly": ("Beteiligung",)}
    # Signing up for a digest again with nothing ticked: every topic of it, as the form says.
    sign_up(web, address, digests=["weekly", "monthly"], **{"topics-monthly": "Beteiligung"})
    reader = web.store.reader_settings(subscriber.id)
    assert reader.topics == {"monthly": ("Beteiligung",)}
    assert topic_rows(web, subscriber.id) == 1
    updated = web.store.subscriber_by_email(address)
    assert updated is not None and updated.digests == ("monthly", "weekly")


def test_the_confirmation_mail_and_pages_speak_the_language_asked_for(web: Web) -> None:
    page = web.client.get("/subscribe", headers={"Accept-Language": "en-GB,en;q=0.8"})
    assert '<option value="en" lang="en" selected>' in page.text
    assert "Wie oft möchten Sie die Neuigkeiten erhalten?" in page.text  # the site's page
    web.client.post(
        "/subscribe",
        data={
            "csrf": csrf_of(page.text), "email": "english@example.net", "digests": "weekly",
            "language": "en", "topics-weekly": "Beteiligung",
        },
    )  # fmt: skip
    (mail,) = web.new_mails()
    assert (
        str(make_header(decode_header(mail["Subject"])))
        == "Please confirm your subscription to Präventionskette Ahlen"
    )
    assert "Wochenüberblick, only on Participation" in body_text(mail)  # content as written
    link = confirm_link(mail)
    confirm = web.client.get(link)
    assert '<html lang="en">' in confirm.text and "Confirm your subscription" in confirm.text
    done = web.client.post(link, data={"csrf": csrf_of(confirm.text)})
    assert "Subscription confirmed" in done.text
    subscriber = web.store.subscriber_by_email("english@example.net")
    assert subscriber is not None
    assert web.store.reader_settings(subscriber.id).language == "en"
    unsubscribe = web.client.get(f"/unsubscribe/{subscriber.token}")
    assert '<html lang="en">' in unsubscribe.text and "Unsubscribe now" in unsubscribe.text
    left = web.client.post(
        f"/unsubscribe/{subscriber.token}", data={"csrf": csrf_of(unsubscribe.text)}
    )
    assert "You are unsubscribed" in left.text
    again = web.client.get(f"/preferences/{subscriber.token}")
    assert "You are unsubscribed" in again.text


def test_a_reader_without_a_language_gets_the_sites(web: Web) -> None:
    subscriber = web.subscriber()
    page = web.client.get(f"/unsubscribe/{subscriber.token}")
    assert '<html lang="de">' in page.text and "Jetzt abmelden" in page.text
    preferences = web.client.get(f"/preferences/{subscriber.token}")
    assert '<html lang="de">' in preferences.text and "Zeitzone" in preferences.text


def test_preferences_store_a_known_time_zone_and_refuse_an_unknown_one(web: Web) -> None:
    subscriber = web.subscriber()
    web.store.set_reader(subscriber.id, language="en", timezone=None)
    url = f"/preferences/{subscriber.token}"
    page = web.client.get(url)
    assert '<option value="" selected>The site&#39;s time zone (Europe/Berlin, UTC+01:00)' in (
        page.text
    )
    assert '<optgroup label="America">' in page.text
    assert '<option value="America/New_York">New York (UTC−05:00)</option>' in page.text
    form = {"csrf": csrf_of(page.text), "name": "Rita", "digests": "weekly", "language": "en"}
    saved = web.client.post(url, data={**form, "timezone": "America/New_York"})
    assert saved.status_code == 200 and "Your preferences are saved." in saved.text
    assert '<option value="America/New_York" selected>' in saved.text
    assert web.store.reader_settings(subscriber.id).timezone == "America/New_York"

    refused = web.client.post(url, data={**form, "name": "Changed", "timezone": "Mars/Olympus"})
    assert refused.status_code == 422
    assert "“Mars/Olympus” is not a time zone we know." in refused.text
    assert 'aria-invalid="true"' in refused.text
    assert web.store.reader_settings(subscriber.id).timezone == "America/New_York"
    unchanged = web.store.subscriber_by_email("reader@example.net")
    assert unchanged is not None and unchanged.name == "Rita"  # nothing of the form saved

    back = web.client.post(url, data={**form, "timezone": ""})
    assert "Your preferences are saved." in back.text
    assert web.store.reader_settings(subscriber.id).timezone is None  # the site's again


def test_preferences_ask_how_often_with_each_schedule_in_words(web: Web) -> None:
    subscriber = web.subscriber()
    page = web.client.get(f"/preferences/{subscriber.token}")
    assert "Wie oft möchten Sie die Neuigkeiten erhalten?" in page.text
    assert "Jede Woche am Montag um 07:00 Uhr" in page.text
    assert "Jeden Monat am 1. um 08:00 Uhr" in page.text
    assert 'value="weekly" checked' in page.text and 'value="monthly" checked' not in page.text
    web.store.set_reader(subscriber.id, language="en", timezone=None)
    english = web.client.get(f"/preferences/{subscriber.token}")
    assert "How often would you like to receive the news?" in english.text
    assert "Every week on Monday at 7:00\u202fAM" in english.text
    assert '<span class="hint" lang="de">Wochenüberblick</span>' in english.text  # as written
    assert "Participation" in english.text  # the topic's label in the reader's language


def test_preferences_say_when_a_local_time_digest_arrives(site: Site) -> None:
    site.replace_in_config("  weekly:\n", '  weekly:\n    deliver_at: "07:00"\n')
    for web in make_web(site):
        subscriber = web.subscriber()
        web.store.set_reader(subscriber.id, language="en", timezone="America/New_York")
        page = web.client.get(f"/preferences/{subscriber.token}").text
        assert "“Wochenüberblick” arrives at 07:00 your time." in page
        web.store.set_reader(subscriber.id, language="de", timezone=None)
        german = web.client.get(f"/preferences/{subscriber.token}").text
        assert "„Wochenüberblick“ erreicht Sie um 07:00 Uhr Ihrer Ortszeit." in german
