"""``welcome: latest``: who confirms a sign-up gets the latest sent issue at once, exactly
once (a second confirmation or a later one adds nothing); off by default."""

from __future__ import annotations

from email import message_from_bytes

from digest.send import send_digest
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
