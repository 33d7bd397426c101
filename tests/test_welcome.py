"""``welcome: latest``: who confirms a sign-up gets the latest sent issue at once, exactly
once (a second confirmation or a later one adds nothing); off by default."""

from __future__ import annotations

from email import message_from_bytes

from digest.send import deliver_issue, issue_mail, send_digest
from digest.welcome import add_welcome_deliveries
from tests.conftest import AT, SAMPLE_WEEK_TITLES, Site
from tests.test_web import Web, body_text, confirm_link, make_web
from tests.web_site import csrf_of


def sign_up_and_confirm(web: Web, address: str) -> None:
    """Sign up and press the confirm button twice (a double click)."""
    web.signup(address)
    (mail,) = web.new_mails()
    link = confirm_link(mail)
    page = web.client.get(link)
    done = web.client.post(link, data={"csrf": csrf_of(page.text)})
    assert done.status_code == 200
    web.client.post(link, data={"csrf": csrf_of(page.text)})


def test_a_new_subscriber_gets_the_latest_issue_once(site: Site) -> None:
    site.replace_in_config("    send_empty: false", "    send_empty: false\n    welcome: latest")
    for web in make_web(site):
        web.subscriber("first@example.net")
        send_digest(web.state.loaded, web.store, "weekly", AT, transport=web.transport)
        web.new_mails()  # the issue to the first subscriber
        sign_up_and_confirm(web, "new.reader@example.net")
        web.state.jobs.wait(10)
        (welcome,) = web.new_mails()
        assert welcome["To"] == "Nina <new.reader@example.net>" and welcome["List-Id"]
        assert all(title in body_text(welcome) for title in SAMPLE_WEEK_TITLES)
        (issue,) = web.store.list_issues("weekly")
        assert issue.status == "done"
        assert web.store.counts(issue.id)["sent"] == 2
        issues_to = [
            to for to, data in ((to, data) for _, to, data in web.transport.sent)
            if message_from_bytes(data)["List-Id"]
        ]  # fmt: skip
        assert sorted(issues_to) == ["first@example.net", "new.reader@example.net"]


def test_without_welcome_a_new_subscriber_waits_for_the_next_issue(site: Site) -> None:
    for web in make_web(site):
        web.subscriber("first@example.net")
        send_digest(web.state.loaded, web.store, "weekly", AT, transport=web.transport)
        web.new_mails()
        sign_up_and_confirm(web, "new.reader@example.net")
        web.state.jobs.wait(10)
        assert web.new_mails() == []


def test_the_welcome_mail_is_the_readers_variant(site: Site) -> None:
    """An English reader of one topic gets the latest issue in English with that topic's
    items (a variant nobody had: rendered now, once); a second such reader shares it; a reader
    for whom the issue holds nothing gets no welcome."""
    site.replace_in_config(
        "    send_empty: false",
        "    send_empty: false\n    welcome: latest\n"
        "    topics: {Schule: Schule, Beteiligung: {de: Beteiligung, en: Participation},"
        " Fachkräfte: Fachkräfte, Lernnetzwerk: Lernnetzwerk}",
    )
    for web in make_web(site):
        web.subscriber("first@example.net")
        send_digest(web.state.loaded, web.store, "weekly", AT, transport=web.transport)
        web.new_mails()
        (issue,) = web.store.list_issues("weekly")
        assert web.store.issue_variants(issue.id) == []  # one reader: the own rendering
        running_sender = issue_mail(web.state.loaded, web.store, issue)  # e.g. 'digest run'
        for address in ("emma@example.net", "eric@example.net"):
            reader, _ = web.store.add_subscriber(address, "", ["weekly"], web.clock())
            web.store.set_reader(
                reader.id, language="en", timezone=None, topics={"weekly": ["Schule"]}
            )
            queued = add_welcome_deliveries(web.state.loaded, web.store, reader)
            assert [queued_issue.id for queued_issue in queued] == [issue.id]
        # Every item of the sample week carries a topic; none of them is Lernnetzwerk.
        nobody, _ = web.store.add_subscriber("lena@example.net", "", ["weekly"], web.clock())
        web.store.set_reader(
            nobody.id, language="de", timezone=None, topics={"weekly": ["Lernnetzwerk"]}
        )
        assert add_welcome_deliveries(web.state.loaded, web.store, nobody) == []
        fresh = web.store.issue_by_id(issue.id)
        deliver_issue(web.state.loaded, web.store, fresh, transport=web.transport)
        mails = {mail["To"]: mail for mail in web.new_mails()}
        assert sorted(mails) == ["emma@example.net", "eric@example.net"]
        for mail in mails.values():
            text = body_text(mail)
            assert "Hello," in text and "Unsubscribe" in text
            assert SAMPLE_WEEK_TITLES[2] in text  # Stadtführung: Schule
            assert SAMPLE_WEEK_TITLES[0] not in text  # Fachkonferenz: Fachkräfte
            assert SAMPLE_WEEK_TITLES[1] not in text  # Ahlen neu denken: Beteiligung
            assert mail["Subject"].endswith("Ahlen: 1 neuer Beitrag")  # one subject given
            assert "Unsubscribe" in text
        (variant,) = web.store.issue_variants(issue.id)  # rendered once for both
        # A sender that read the variants before this one was frozen finds it when asked.
        assert running_sender.variants[variant.id].labels["greeting_anonymous"] == "Hello,"
        assert variant.language == "en" and len(variant.item_ids) == 1
        assert web.store.counts(issue.id)["sent"] == 3
