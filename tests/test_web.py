"""``digest serve`` at the HTTP level (Starlette TestClient): unsubscribe semantics, double
opt-in, CSRF, Host check, staff login and actions, preview, archive."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import httpx
import pytest

with warnings.catch_warnings():  # starlette 1.10 prefers httpx2; httpx works the same here
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from digest.models import SourceState
from digest.store import SCHEMA_VERSION, Store, Subscriber
from digest.transport import MemoryTransport, OutcomeUnknown
from digest.web import create_app
from digest.web.app import WebState
from digest.web.reload import ChangeWatcher
from tests.conftest import AT, SAMPLE_WEEK_TITLES, CliRunner, Site
from tests.databases import migrate_to, schema_revision
from tests.smtp_server import free_port
from tests.web_site import STAFF_PASSWORD, STAFF_USER, configure_web, csrf_of, hidden_fields

BASE = "http://127.0.0.1:8000"
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@dataclass
class Clock:
    now: datetime = AT

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Web:
    client: TestClient
    state: WebState
    transport: MemoryTransport
    clock: Clock
    site: Site
    mails: list[Message] = field(default_factory=list)

    @property
    def store(self) -> Store:
        return self.state.store

    def new_mails(self) -> list[Message]:
        parsed = [message_from_bytes(data) for _, _, data in self.transport.sent]
        fresh = parsed[len(self.mails) :]
        self.mails = parsed
        return fresh

    def subscriber(self, email: str = "reader@example.net") -> Subscriber:
        subscriber, _ = self.store.add_subscriber(email, "Rita Reader", ["weekly"], self.clock())
        return subscriber

    def login(self) -> None:
        page = self.client.get("/login")
        response = self.client.post(
            "/login",
            data={"csrf": csrf_of(page.text), "user": STAFF_USER, "password": STAFF_PASSWORD},
            follow_redirects=False,
        )
        assert response.status_code == 303, response.text

    def signup(self, email: str, *, client: TestClient | None = None, **extra: str) -> str:
        client = client or self.client
        page = client.get("/subscribe")
        data = {"csrf": csrf_of(page.text), "email": email, "name": "Nina", "digests": "weekly"}
        response = client.post("/subscribe", data={**data, **extra})
        return response.text


def make_web(site: Site, **web: object) -> Iterator[Web]:
    configure_web(site.config, public_url=BASE, **web)
    clock = Clock()
    transport = MemoryTransport()
    app = create_app(site.config, clock=clock, transport=transport, environ={}, watch=False)
    with TestClient(app, base_url=BASE) as client:
        yield Web(client, app.state.web, transport, clock, site)


@pytest.fixture
def web(site: Site) -> Iterator[Web]:
    yield from make_web(site)


def body_text(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode("utf-8")
    raise AssertionError("no text part")


def confirm_link(message: Message) -> str:
    match = re.search(r"https?://\S+/confirm/[\w-]+", body_text(message))
    assert match, body_text(message)
    return match.group(0).removeprefix(BASE)


# -- unsubscribe --------------------------------------------------------------------------------


def test_one_click_post_without_cookies_twice_unsubscribes_once(web: Web) -> None:
    subscriber = web.subscriber()
    calls: list[bool] = []
    original = web.store.unsubscribe

    def spy(*args: object, **kwargs: object) -> bool:
        changed = original(*args, **kwargs)  # type: ignore[arg-type]
        calls.append(changed)
        return changed

    web.store.unsubscribe = spy  # type: ignore[method-assign]
    web.client.cookies.clear()
    for _ in range(2):
        response = web.client.post(
            f"/unsubscribe/{subscriber.token}", data=ONE_CLICK, follow_redirects=False
        )
        assert response.status_code == 200
        assert "set-cookie" not in response.headers
        assert "location" not in response.headers
    assert calls == [True, False]  # idempotent: the second request changes nothing
    assert web.store.subscriber_by_token(subscriber.token).status == "unsubscribed"  # type: ignore[union-attr]


def test_one_click_multipart_body_works_too(web: Web) -> None:
    subscriber = web.subscriber()
    response = web.client.post(
        f"/unsubscribe/{subscriber.token}",
        files={"List-Unsubscribe": (None, "One-Click")},
    )
    assert response.status_code == 200
    assert web.store.subscriber_by_token(subscriber.token).status == "unsubscribed"  # type: ignore[union-attr]


def test_get_never_unsubscribes(web: Web) -> None:
    subscriber = web.subscriber()
    for _ in range(3):
        page = web.client.get(f"/unsubscribe/{subscriber.token}")
        assert page.status_code == 200
        assert subscriber.email in page.text
        assert '<button type="submit"' in page.text
    assert web.client.head(f"/unsubscribe/{subscriber.token}").status_code == 200
    assert web.store.subscriber_by_token(subscriber.token).status == "active"  # type: ignore[union-attr]


def test_unsubscribe_page_button_posts_with_csrf(web: Web) -> None:
    subscriber = web.subscriber()
    page = web.client.get(f"/unsubscribe/{subscriber.token}")
    response = web.client.post(
        f"/unsubscribe/{subscriber.token}", data={"csrf": csrf_of(page.text)}
    )
    assert response.status_code == 200
    assert "abgemeldet" in response.text
    assert web.store.subscriber_by_token(subscriber.token).status == "unsubscribed"  # type: ignore[union-attr]


def test_bad_token_changes_nothing(web: Web) -> None:
    subscriber = web.subscriber()
    bogus = subscriber.token[:-2] + ("AA" if not subscriber.token.endswith("AA") else "BB")
    assert web.client.post(f"/unsubscribe/{bogus}", data=ONE_CLICK).status_code == 404
    assert web.client.get(f"/unsubscribe/{bogus}").status_code == 404
    assert web.client.get(f"/preferences/{bogus}").status_code == 404
    assert web.client.get("/confirm/nonsense").status_code == 404
    assert [s.status for s in web.store.list_subscribers()] == ["active"]


def test_unsubscribe_post_without_csrf_is_refused(web: Web) -> None:
    subscriber = web.subscriber()
    response = web.client.post(f"/unsubscribe/{subscriber.token}", data={"csrf": "forged"})
    assert response.status_code == 403
    response = web.client.post(f"/unsubscribe/{subscriber.token}")
    assert response.status_code == 403
    assert web.store.subscriber_by_token(subscriber.token).status == "active"  # type: ignore[union-attr]


def test_preferences_change_name_and_digests(web: Web) -> None:
    subscriber, _ = web.store.add_subscriber("pref@example.net", "Old", ["weekly", "monthly"], AT)
    page = web.client.get(f"/preferences/{subscriber.token}")
    assert page.status_code == 200
    refused = web.client.post(
        f"/preferences/{subscriber.token}", data={"name": "X", "digests": "weekly"}
    )
    assert refused.status_code == 403
    response = web.client.post(
        f"/preferences/{subscriber.token}",
        data={"csrf": csrf_of(page.text), "name": "New Name", "digests": "monthly"},
    )
    assert response.status_code == 200
    updated = web.store.subscriber_by_token(subscriber.token)
    assert updated is not None
    assert (updated.name, updated.digests, updated.status) == ("New Name", ("monthly",), "active")


# -- double opt-in --------------------------------------------------------------------------------


def test_double_opt_in_records_consent_and_activates_on_post(web: Web) -> None:
    page = web.signup("New.Reader@Example.NET")
    assert "Postfach" in page
    assert web.store.subscriber_by_email("new.reader@example.net") is None  # not before confirming
    (mail,) = web.new_mails()
    assert mail["To"] == "new.reader@example.net"
    assert "List-Unsubscribe" not in mail  # a transactional mail, no advertising
    link = confirm_link(mail)
    confirm_page = web.client.get(link)
    assert confirm_page.status_code == 200
    assert web.store.subscriber_by_email("new.reader@example.net") is None  # GET changes nothing
    assert web.client.post(link, data={}).status_code == 403  # no CSRF token
    done = web.client.post(link, data={"csrf": csrf_of(confirm_page.text)})
    assert done.status_code == 200
    subscriber = web.store.subscriber_by_email("new.reader@example.net")
    assert subscriber is not None
    assert (subscriber.status, subscriber.digests, subscriber.name) == (
        "active",
        ("weekly",),
        "Nina",
    )
    (consent,) = web.store.recent_consents()
    assert consent.confirmed_at == AT and consent.request_ip == "testclient"
    assert consent.request_user_agent and consent.confirm_user_agent
    assert consent.form_url.endswith("/subscribe") and consent.consent_version == "1"
    # a second click on the button shows the same success and changes nothing
    again = web.client.post(link, data={"csrf": csrf_of(confirm_page.text)})
    assert again.status_code == 200


def test_expired_confirmation_changes_nothing(web: Web) -> None:
    web.signup("late@example.net")
    link = confirm_link(web.new_mails()[0])
    page = web.client.get(link)
    token = csrf_of(page.text)
    web.clock.now = AT + timedelta(days=7, seconds=1)
    assert web.client.get(link).status_code == 410
    assert web.client.post(link, data={"csrf": token}).status_code == 410
    assert web.store.subscriber_by_email("late@example.net") is None


def test_answer_never_reveals_whether_an_address_exists(web: Web) -> None:
    web.subscriber("known@example.net")

    def visible(html: str) -> str:
        return re.sub(r'name="csrf" value="[^"]+"', "", html)

    known = web.signup("known@example.net")
    unknown = web.signup("unknown@example.net")
    assert visible(known) == visible(unknown)
    assert len(web.new_mails()) == 2  # each owner gets the same kind of mail
    assert web.store.subscriber_by_email("known@example.net").status == "active"  # type: ignore[union-attr]


def test_honeypot_and_missing_csrf_send_nothing(web: Web) -> None:
    page = web.signup("bot@example.net", website="http://spam.example")
    assert "Postfach" in page  # looks like success to the bot
    response = web.client.post(
        "/subscribe", data={"email": "nocsrf@example.net", "digests": "weekly"}
    )
    assert response.status_code == 400
    assert web.new_mails() == []
    assert web.store.recent_consents() == []


def test_invalid_input_is_explained_next_to_the_field(web: Web) -> None:
    page = web.client.get("/subscribe")
    response = web.client.post(
        "/subscribe", data={"csrf": csrf_of(page.text), "email": "not-an-address"}
    )
    assert response.status_code == 422
    assert 'aria-invalid="true"' in response.text and 'id="email-error"' in response.text
    assert 'id="digests-error"' in response.text


def test_rate_limits_per_ip_and_per_address(site: Site) -> None:
    for web in make_web(site, signups_per_ip_per_hour=4, signups_per_address_per_day=2):
        for _ in range(3):
            web.signup("same@example.net")
        assert len(web.new_mails()) == 2  # the third request for the address sends nothing
        assert "Postfach" in web.signup("other@example.net")
        blocked = web.client.get("/subscribe")
        response = web.client.post(
            "/subscribe",
            data={"csrf": csrf_of(blocked.text), "email": "fifth@example.net", "digests": "weekly"},
        )
        assert response.status_code == 429


# -- staff --------------------------------------------------------------------------------------


def test_staff_pages_need_login(web: Web) -> None:
    response = web.client.get("/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    assert web.client.get("/preview/weekly", follow_redirects=False).status_code == 303
    assert web.client.post("/send/weekly", data={}).status_code == 403
    wrong = web.client.post(
        "/login",
        data={
            "csrf": csrf_of(web.client.get("/login").text),
            "user": STAFF_USER,
            "password": "wrong password",
        },
    )
    assert wrong.status_code == 401
    web.login()
    assert web.client.get("/").status_code == 200


def test_send_without_login_or_csrf_is_refused(web: Web) -> None:
    web.subscriber()
    web.login()
    page = web.client.get("/send/weekly")
    token = csrf_of(page.text, "/send/weekly")
    assert web.client.post("/send/weekly", data={}).status_code == 403  # no CSRF token
    anonymous = TestClient(web.client.app, base_url=BASE)
    assert anonymous.post("/send/weekly", data={"csrf": token}).status_code == 403  # no login
    web.state.jobs.wait(5)
    assert web.store.list_issues("weekly") == [] and web.transport.sent == []


def test_foreign_host_is_refused_on_staff_pages(web: Web) -> None:
    web.login()
    page = web.client.get("/send/weekly")
    token = csrf_of(page.text, "/send/weekly")
    evil = {"host": "evil.example"}
    assert web.client.get("/", headers=evil).status_code == 400
    assert web.client.get("/preview/weekly", headers=evil).status_code == 400
    assert web.client.get("/login", headers=evil).status_code == 400
    assert web.client.post("/send/weekly", data={"csrf": token}, headers=evil).status_code == 400
    assert web.store.list_issues("weekly") == []
    # public pages answer any host (they sit behind a reverse proxy)
    assert web.client.get("/subscribe", headers=evil).status_code == 200


def test_send_now_and_test_send_run_in_the_background(web: Web) -> None:
    web.subscriber("one@example.net")
    web.subscriber("two@example.net")
    web.login()
    dashboard = web.client.get("/")
    web.client.post(
        "/test-send/weekly",
        data={"csrf": csrf_of(dashboard.text, "/test-send/weekly"), "address": "nope"},
    )
    assert "weekly: Bitte geben Sie eine gültige E-Mail-Adresse ein" in web.client.get("/").text
    response = web.client.post(
        "/test-send/weekly",
        data={"csrf": csrf_of(dashboard.text, "/test-send/weekly"), "address": "me@example.org"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    web.state.jobs.wait(10)
    assert [to for _, to, _ in web.transport.sent] == ["me@example.org"]
    assert web.store.list_issues("weekly") == []  # a test copy marks nothing

    page = web.client.get("/send/weekly")
    assert "2" in page.text
    web.client.post("/send/weekly", data=hidden_fields(page.text, "/send/weekly"))
    web.state.jobs.wait(10)
    recipients = sorted(to for _, to, _ in web.transport.sent[1:])
    assert recipients == ["one@example.net", "two@example.net"]
    (issue,) = web.store.list_issues("weekly")
    assert web.store.counts(issue.id)["sent"] == 2
    dashboard_text = web.client.get("/").text
    # German site, German words: the dashboard, the delivery counts and the job lines
    assert "2 gesendet" in dashboard_text
    assert " · abgeschlossen · " in dashboard_text  # the latest issue's state
    assert re.search(
        r"weekly: Testexemplar \(\d+ Beitr(ag|äge)\) an me@example.org gesendet", dashboard_text
    )
    assert re.search(r"weekly: Ausgabe [^<]*: 2 gesendet", dashboard_text)
    assert re.search(r"ok, \d+ Beitr(ag|äge), zuletzt erfolgreich \d{4}-", dashboard_text)
    for english in (" sent<", "2 sent", " done ", "items)", "ist done"):
        assert english not in dashboard_text


def test_without_password_staff_pages_need_the_login_link(site: Site) -> None:
    for web in make_web(site, staff_password_hash=""):
        assert web.client.get("/", follow_redirects=False).status_code == 303  # even loopback
        assert web.client.get("/preview/weekly", follow_redirects=False).status_code == 303
        assert web.client.post("/send/weekly", data={}).status_code == 403


def test_public_only_serves_no_staff_pages(site: Site) -> None:
    configure_web(site.config, public_url=BASE)
    app = create_app(site.config, public_only=True, environ={}, watch=False)
    with TestClient(app, base_url=BASE) as client:
        assert client.get("/", follow_redirects=False).headers["location"] == "/subscribe"
        assert client.get("/preview/weekly").status_code == 404
        assert client.post("/send/weekly").status_code in (404, 405)
        assert client.get("/subscribe").status_code == 200


# -- preview and archive ------------------------------------------------------------------------


def test_preview_shows_issue_items_findings_and_raw_parts(web: Web) -> None:
    web.subscriber()
    web.login()
    page = web.client.get("/preview/weekly?at=2017-11-20T08:00:00%2B01:00&view=mobile")
    assert page.status_code == 200
    for title in SAMPLE_WEEK_TITLES:
        assert title.replace("„", "„") in page.text or title in page.text
    assert "frame-mobile" in page.text and 'id="subject"' in page.text
    assert "Keine Befunde" in page.text or "finding" in page.text
    html = web.client.get("/preview/weekly.html?at=2017-11-20T08:00:00%2B01:00")
    assert html.headers["content-type"].startswith("text/html")
    assert (
        "SAMPLE-TOKEN" in html.text
        and "default-src 'none'" in html.headers["content-security-policy"]
    )
    dark = web.client.get("/preview/weekly.html?at=2017-11-20T08:00:00%2B01:00&scheme=dark")
    assert "prefers-color-scheme" not in dark.text
    text = web.client.get("/preview/weekly.txt?at=2017-11-20T08:00:00%2B01:00")
    assert text.headers["content-type"].startswith("text/plain")
    eml = web.client.get("/preview/weekly.eml?at=2017-11-20T08:00:00%2B01:00")
    assert message_from_bytes(eml.content)["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_preview_findings_in_the_sites_language(web: Web) -> None:
    web.login()
    web.site.write(
        "templates/footer.mjml",
        """
        <mj-section><mj-column><mj-text>
          <a href="/impressum">Impressum</a> {{ site.address }}
        </mj-text></mj-column></mj-section>
        """,
    )
    page = web.client.get("/preview/weekly?at=2017-11-20T08:00:00%2B01:00")
    assert page.status_code == 200
    assert "<strong>Fehler</strong>: digest weekly: HTML hat keinen Abmeldelink" in page.text
    assert "Link &#39;/impressum&#39; ist nicht absolut" in page.text
    assert "<strong>error</strong>" not in page.text


def test_template_error_is_a_readable_page_with_file_and_line(web: Web) -> None:
    web.login()
    web.site.write(
        "templates/digest.txt", "{{ site.title }}\n\n{% for x in items %}\n{{ x.nope( }}\n"
    )
    page = web.client.get("/preview/weekly")
    assert page.status_code == 200
    assert "digest.txt" in page.text and 'role="alert"' in page.text
    assert re.search(r"digest\.txt:\d", page.text)
    assert 'class="hit"' in page.text  # the offending line is shown and marked


def test_archive_shows_sent_issue_without_personal_links(web: Web) -> None:
    subscriber = web.subscriber()
    web.login()
    page = web.client.get("/send/weekly")
    web.clock.now = AT
    web.client.post("/send/weekly", data=hidden_fields(page.text, "/send/weekly"))
    web.state.jobs.wait(10)
    index = web.client.get("/archive/weekly")
    links = re.findall(r'href="(/archive/weekly/[\d-]+)"', index.text)
    assert links == ["/archive/weekly/2017-11-20-0800"]  # "send now": cut at the click
    issue = web.client.get(links[0])
    assert issue.status_code == 200
    assert subscriber.token not in issue.text and "__digest_" not in issue.text
    assert "Rita" not in issue.text and "Guten Tag," in issue.text
    assert f'{BASE}/unsubscribe"' in issue.text
    feed = web.client.get("/archive/weekly/feed.atom")
    assert feed.headers["content-type"].startswith("application/atom+xml")
    assert f"{BASE}/archive/weekly/2017-11-20-0800" in feed.text
    assert web.client.get("/archive/weekly/2017-01-01-0700").status_code == 404
    assert web.client.get("/archive/nope").status_code == 404


def test_english_site_gets_english_pages(site: Site) -> None:
    site.replace_in_config("locale: de_DE", "locale: en_GB")
    for web in make_web(site):
        page = web.client.get("/subscribe")
        assert '<html lang="en">' in page.text and "Email address" in page.text


def test_hash_password_command(cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from digest.web.security import verify_password

    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    result = cli("hash-password")
    assert result.code == 0
    assert verify_password("a long enough password", result.out.strip())
    assert not verify_password("another password", result.out.strip())


def test_config_error_shows_in_the_preview_with_its_line(web: Web) -> None:
    web.login()
    web.site.replace_in_config("max_items: 20", "max_items: lots")
    page = web.client.get("/preview/weekly")
    assert page.status_code == 200
    assert re.search(r"config\.yaml:\d+: digests\.weekly\.max_items", page.text)
    assert 'class="hit"' in page.text and "max_items: lots" in page.text


def test_watcher_sees_content_and_new_templates_but_not_the_database(tmp_path: Path) -> None:
    content = tmp_path / "content"
    content.mkdir()
    config = tmp_path / "config.yaml"
    config.write_text("x: 1\n", encoding="utf-8")
    watcher = ChangeWatcher([content, tmp_path / "templates", config])
    watcher.start()
    try:
        time.sleep(0.3)

        def changed_after(action: Callable[[], object], wait: float = 5) -> bool:
            before = watcher.generation
            action()
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if watcher.generation > before:
                    return True
                time.sleep(0.05)
            return False

        assert not changed_after(lambda: (tmp_path / "digest.db").write_bytes(b"x"), wait=1.5)
        assert changed_after(lambda: (content / "new.md").write_text("---\n", encoding="utf-8"))
        templates = tmp_path / "templates"
        assert changed_after(
            lambda: (templates.mkdir(), (templates / "digest.mjml").write_text(""))
        )
        assert changed_after(lambda: config.write_text("x: 2\n", encoding="utf-8"))
    finally:
        watcher.stop()


def test_store_of_schema_1_gains_the_consents_table(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate_to(url, "0001")  # what a database of schema 1 looks like
    store = Store.open(url)
    try:
        consent = store.add_consent(
            email="a@example.net", name="", digest_names=["weekly"], now=AT,
            expires_at=AT + timedelta(days=7), request_ip="127.0.0.1", request_user_agent="t",
            form_url="http://x/subscribe", consent_version="1",
        )  # fmt: skip
        assert store.consent_by_token(consent.token) == consent
    finally:
        store.close()
    assert schema_revision(url) == SCHEMA_VERSION


def test_digest_serve_command_serves_the_pages(site: Site) -> None:
    configure_web(site.config, public_url=BASE)
    port = free_port()
    env = {**os.environ, "DIGEST_SECRET_KEY": "k" * 32}
    process = subprocess.Popen(
        [sys.executable, "-m", "digest.cli", "-c", str(site.config), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/subscribe", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.1)
        assert response.status_code == 200 and "Newsletter abonnieren" in response.text
        assert "x-frame-options" in response.headers and "server" not in response.headers
        staff = httpx.get(f"http://127.0.0.1:{port}/", follow_redirects=False)
        assert staff.status_code == 303
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_preview_says_why_items_are_not_in_the_issue(web: Web) -> None:
    web.login()
    web.site.replace_in_config("max_items: 20", "max_items: 2")
    web.site.write(
        "content/2017-11-18-entwurf.md",
        "---\ntitle: Noch ein Entwurf\ndate: 2017-11-18\ndraft: true\n---\nText.\n",
    )
    page = web.client.get(f"/preview/weekly?at={AT.isoformat()}".replace("+", "%2B"))
    assert page.status_code == 200
    held = page.text.split('class="items left-out"')[1].split("</ul>")[0]
    assert SAMPLE_WEEK_TITLES[2] in held and "max_items = 2" in held
    missing = page.text.split('id="not-in-issue"')[1].split("</ul>")[0]
    assert "Noch ein Entwurf" in missing and "Entwurf (draft: true)" in missing
    assert "18. Lernnetzwerktreffen in Herne" in missing  # dated 29 November
    assert "nach dem Stichtag" in missing


def test_dashboard_lists_in_doubt_rows_and_sign_ups(site: Site) -> None:
    for web in make_web(site):

        def fail(recipient: str) -> None:
            if recipient == "doubt@example.net":
                raise OutcomeUnknown("no reply after the message data")

        web.transport.fail = fail
        web.subscriber("fine@example.net")
        web.subscriber("doubt@example.net")
        web.signup("pending@example.net")
        web.login()
        page = web.client.get("/send/weekly")
        web.client.post("/send/weekly", data=hidden_fields(page.text, "/send/weekly"))
        web.state.jobs.wait(10)
        dashboard = web.client.get("/").text
        doubt = dashboard.split('id="doubt-heading"')[1].split("</section>")[0]
        assert "Unklare Zustellungen (1)" in doubt and "doubt@example.net" in doubt
        signups = dashboard.split('id="signups-heading"')[1].split("</section>")[0]
        assert "pending@example.net" in signups and "unbestätigt" in signups


def test_public_pages_set_no_cookies(web: Web) -> None:
    subscriber = web.subscriber()
    for path in ("/subscribe", "/archive", f"/unsubscribe/{subscriber.token}", "/archive/weekly"):
        response = web.client.get(path)
        assert response.status_code == 200 and "set-cookie" not in response.headers, path
        assert response.headers["referrer-policy"] in ("no-referrer", "same-origin")
        assert "frame-ancestors 'self'" in response.headers["content-security-policy"]


def test_dashboard_shows_each_sources_health(site: Site) -> None:
    for web in make_web(site):
        web.login()
        before = web.client.get("/").text.split('id="sources-heading"')[1].split("</section>")[0]
        assert "folder:content" in before and "Noch nicht abgeholt." in before

        now = datetime.now(UTC)
        web.state.store.save_source_states(
            {"folder:content": SourceState().failed(now, "content folder not found")}
        )
        after = web.client.get("/").text.split('id="sources-heading"')[1].split("</section>")[0]
        assert "FEHLGESCHLAGEN, 1× in Folge: content folder not found" in after
        assert "state-failed_perm" in after


def test_preferences_choose_language_and_topics(site: Site) -> None:
    site.replace_in_config(
        "    template: digest             # templates/digest.mjml + templates/digest.txt\n    max_items: 20\n",
        "    template: digest             # templates/digest.mjml + templates/digest.txt\n    max_items: 20\n"
        "    topics: {Schule: Schule, Beteiligung: {de: Beteiligung, en: Participation}}\n",
    )
    for web in make_web(site):
        subscriber, _ = web.store.add_subscriber("pref@example.net", "P", ["weekly"], AT)
        page = web.client.get(f"/preferences/{subscriber.token}")
        assert "Themen in „Wochenüberblick“" in page.text
        assert '<option value="en" lang="en">English</option>' in page.text
        response = web.client.post(
            f"/preferences/{subscriber.token}",
            data={
                "csrf": csrf_of(page.text), "name": "P", "digests": "weekly",
                "language": "en", "topics-weekly": ["Beteiligung", "unknown"],
            },
        )  # fmt: skip
        assert response.status_code == 200
        reader = web.store.reader_settings(subscriber.id)
        assert (reader.language, reader.topics) == ("en", {"weekly": ("Beteiligung",)})
        assert 'value="Beteiligung" checked' in response.text
        assert '<option value="en" lang="en" selected>' in response.text


def test_preview_shows_the_variant_of_a_language_and_a_topic(site: Site) -> None:
    site.replace_in_config(
        "    template: digest             # templates/digest.mjml + templates/digest.txt\n    max_items: 20\n",
        "    template: digest             # templates/digest.mjml + templates/digest.txt\n    max_items: 20\n"
        "    topics: {Schule: Schule, Beteiligung: {de: Beteiligung, en: Participation}}\n",
    )
    for web in make_web(site):
        web.subscriber()
        web.login()
        at = "at=2017-11-20T08:00:00%2B01:00"
        page = web.client.get(f"/preview/weekly?{at}&lang=en&topics=Schule&view=text")
        assert page.status_code == 200
        assert '<input type="checkbox" name="topics" value="Schule" checked> Schule' in page.text
        assert (
            '<input type="checkbox" name="topics" value="Beteiligung"> Participation' in page.text
        )
        text = web.client.get(f"/preview/weekly.txt?{at}&lang=en&topics=Schule").text
        assert SAMPLE_WEEK_TITLES[2] in text  # Stadtführung: Schule
        assert SAMPLE_WEEK_TITLES[0] in text  # Fachkonferenz: none of the topics, for everyone
        assert SAMPLE_WEEK_TITLES[1] not in text  # Ahlen neu denken: Beteiligung
        assert "Hello Jane Doe," in text and "Unsubscribe" in text
        # Several topics, as the form's checkboxes send them: the items of either.
        both = web.client.get(f"/preview/weekly.txt?{at}&topics=Schule&topics=Beteiligung").text
        assert all(title in both for title in SAMPLE_WEEK_TITLES)
        german = web.client.get(f"/preview/weekly.txt?{at}").text
        assert all(title in german for title in SAMPLE_WEEK_TITLES)
        assert "Abmelden" in german


def test_sign_up_takes_the_browsers_language_and_the_confirmation_keeps_it(web: Web) -> None:
    english = {"Accept-Language": "en-US,en;q=0.9,de;q=0.5"}
    form = web.client.get("/subscribe", headers=english)
    assert '<option value="en" lang="en" selected>English</option>' in form.text
    german = web.client.get("/subscribe", headers={"Accept-Language": "fr-FR, de;q=0.8"})
    assert '<option value="de" lang="de" selected>Deutsch</option>' in german.text
    web.signup("lang@example.net", language="en")
    (mail,) = web.new_mails()
    link = confirm_link(mail)
    page = web.client.get(link)
    assert web.client.post(link, data={"csrf": csrf_of(page.text)}).status_code == 200
    subscriber = web.store.subscriber_by_email("lang@example.net")
    assert subscriber is not None
    assert web.store.reader_settings(subscriber.id).language == "en"
