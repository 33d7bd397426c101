"""Staff sessions that end (logout, idle, absolute, new password), login limits per client and
per account, the one-time login link without a password, and every staff action refused
without a session or with a wrong CSRF token (HTTP level, Starlette TestClient)."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from datetime import timedelta

import pytest
from starlette.routing import Route

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from digest.store import staff_sessions
from digest.web import create_app
from digest.web.security import SESSION_COOKIE, RateLimiter, client_key
from tests.conftest import AT, Site
from tests.test_web import BASE, Web, make_web
from tests.web_site import STAFF_PASSWORD, STAFF_USER, configure_web, csrf_of

pytestmark = pytest.mark.both_databases

# POST routes anyone may use (each checks its own token): everything else is staff-only.
PUBLIC_POSTS = ("/subscribe", "/confirm/", "/unsubscribe/", "/preferences/", "/hooks/", "/login")


@pytest.fixture
def web(site: Site) -> Iterator[Web]:
    yield from make_web(site)


def cookie_of(web: Web) -> str:
    value = web.client.cookies.get(SESSION_COOKIE)
    assert value, "not logged in"
    return value


def with_cookie(web: Web, cookie: str) -> TestClient:
    """Another browser holding a copy of ``cookie``."""
    return TestClient(web.client.app, base_url=BASE, cookies={SESSION_COOKIE: cookie})


def logged_in(client: TestClient) -> bool:
    response = client.get("/", follow_redirects=False)
    assert response.status_code in (200, 303), response.status_code
    return response.status_code == 200


def attempt(client: TestClient, user: str, password: str) -> int:
    page = client.get("/login")
    data = {"csrf": csrf_of(page.text, "/login"), "user": user, "password": password}
    return client.post("/login", data=data, follow_redirects=False).status_code


# -- sessions end ---------------------------------------------------------------------------


def test_logout_revokes_the_session_a_copied_cookie_included(web: Web) -> None:
    web.login()
    copied = cookie_of(web)
    dashboard = web.client.get("/")
    send_token = csrf_of(web.client.get("/send/weekly").text, "/send/weekly")
    response = web.client.post(
        "/logout", data={"csrf": csrf_of(dashboard.text, "/logout")}, follow_redirects=False
    )
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert SESSION_COOKIE in response.headers["set-cookie"]  # the browser forgets it too
    thief = with_cookie(web, copied)
    assert not logged_in(thief)
    assert thief.post("/send/weekly", data={"csrf": send_token}).status_code == 403
    web.state.jobs.wait(5)
    assert web.store.list_issues("weekly") == []
    with web.store.engine.connect() as conn:
        (row,) = conn.execute(staff_sessions.select()).all()
    assert row.revoked_at is not None and row.staff_user == STAFF_USER


def test_an_idle_session_ends_and_use_keeps_it_open(site: Site) -> None:
    for web in make_web(site, session_idle_minutes=30, session_max_hours=2):
        web.login()
        for _ in range(3):  # 75 minutes of work, a request every 25 minutes
            web.clock.now += timedelta(minutes=25)
            assert logged_in(web.client)
        web.clock.now += timedelta(minutes=31)
        assert not logged_in(web.client)


def test_a_session_ends_at_its_absolute_end_however_busy(site: Site) -> None:
    for web in make_web(site, session_idle_minutes=30, session_max_hours=2):
        web.login()
        for _ in range(4):
            web.clock.now += timedelta(minutes=29)
            assert logged_in(web.client)
        web.clock.now += timedelta(minutes=5)  # 2 h 1 min after the login
        assert not logged_in(web.client)
        web.login()  # a new login opens a new session
        assert logged_in(web.client)


def test_a_new_password_ends_every_session(site: Site) -> None:
    for web in make_web(site):
        web.login()
        copied = cookie_of(web)
        assert logged_in(with_cookie(web, copied))
    # the same store and secret key, a new password hash (as after 'digest hash-password')
    for web in make_web(site):
        assert not logged_in(with_cookie(web, copied))
        with web.store.engine.connect() as conn:
            rows = conn.execute(staff_sessions.select()).all()
        assert [row.revoked_at is not None for row in rows] == [True]
        web.login()
        assert logged_in(web.client)


def test_the_same_password_keeps_sessions_across_a_restart(site: Site) -> None:
    for web in make_web(site):
        web.login()
        copied = cookie_of(web)
    app = create_app(site.config, clock=lambda: AT, environ={}, watch=False)  # unchanged
    with TestClient(app, base_url=BASE, cookies={SESSION_COOKIE: copied}) as client:
        assert logged_in(client)


def test_a_forged_or_tampered_cookie_opens_nothing(web: Web) -> None:
    web.login()
    cookie = cookie_of(web)
    assert not logged_in(with_cookie(web, cookie[:-2] + ("AA" if cookie[-2:] != "AA" else "BB")))
    other = web.state.signer.session_cookie("made-up-session-id")
    assert not logged_in(with_cookie(web, other))


# -- login limits ---------------------------------------------------------------------------


def test_failed_logins_are_limited_per_account_from_any_address(site: Site) -> None:
    for web in make_web(site, login_failures_per_account=3):
        for n in range(3):
            client = TestClient(web.client.app, base_url=BASE, client=(f"203.0.113.{n}", 4000))
            assert attempt(client, STAFF_USER, "wrong password") == 401
        fresh = TestClient(web.client.app, base_url=BASE, client=("198.51.100.7", 4000))
        assert attempt(fresh, STAFF_USER, STAFF_PASSWORD) == 429  # the account waits
        assert attempt(fresh, "someone-else", "x") == 401  # other names still get an answer


def test_login_attempts_are_limited_per_client(site: Site) -> None:
    for web in make_web(site, login_attempts_per_client=4, login_failures_per_account=100):
        for _ in range(4):
            assert attempt(web.client, "nobody", "wrong") == 401
        assert attempt(web.client, STAFF_USER, STAFF_PASSWORD) == 429
        other = TestClient(web.client.app, base_url=BASE, client=("2001:db8:1:2::9", 4000))
        assert attempt(other, STAFF_USER, STAFF_PASSWORD) == 303


def test_ipv6_clients_share_a_limit_per_64(site: Site) -> None:
    for web in make_web(site, login_attempts_per_client=2, login_failures_per_account=100):
        for host in ("2001:db8:1:2::1", "2001:db8:1:2:ffff::2"):
            client = TestClient(web.client.app, base_url=BASE, client=(host, 4000))
            assert attempt(client, "nobody", "wrong") == 401
        same_64 = TestClient(web.client.app, base_url=BASE, client=("2001:db8:1:2::3", 4000))
        assert attempt(same_64, STAFF_USER, STAFF_PASSWORD) == 429
        next_64 = TestClient(web.client.app, base_url=BASE, client=("2001:db8:1:3::1", 4000))
        assert attempt(next_64, STAFF_USER, STAFF_PASSWORD) == 303


# -- no password ----------------------------------------------------------------------------


def test_without_a_password_no_address_is_shown_until_the_login_link(site: Site) -> None:
    for web in make_web(site, staff_password_hash=""):
        web.subscriber("visible@example.net")
        web.signup("pending@example.net")
        for path in ("/", "/preview/weekly", "/send/weekly"):
            page = web.client.get(path)  # TestClient is a loopback client: no exception
            assert page.url.path == "/login"
            assert "visible@example.net" not in page.text
            assert "pending@example.net" not in page.text
            assert "einmaligen Anmeldelink" in page.text
        assert 'type="password"' not in page.text  # no password login without a password
        data = {"csrf": web.state.signer.csrf_token("login"), "user": STAFF_USER, "password": ""}
        assert web.client.post("/login", data=data).status_code == 403
        token = web.state.sessions.login_token
        assert token
        assert web.client.get("/login?token=wrong", follow_redirects=False).status_code == 403
        link = web.client.get(f"/login?token={token}", follow_redirects=False)
        assert link.status_code == 303 and link.headers["location"] == "/"
        dashboard = web.client.get("/")
        assert dashboard.url.path == "/" and "pending@example.net" in dashboard.text
        again = TestClient(web.client.app, base_url=BASE)
        used = again.get(f"/login?token={token}", follow_redirects=False)
        assert used.status_code == 403 and "schon benutzt" in used.text
        assert not logged_in(again)


def test_public_only_prints_no_login_link(site: Site) -> None:
    configure_web(site.config, public_url=BASE, staff_password_hash="")
    app = create_app(site.config, public_only=True, environ={}, watch=False)
    assert app.state.web.sessions.login_token is None


# -- every staff action needs a session and its CSRF token ----------------------------------


def staff_posts(web: Web) -> list[str]:
    """Every POST route of the app that is not a public one, with sample path values."""
    paths = set()
    for route in web.client.app.routes:  # type: ignore[attr-defined]
        if not isinstance(route, Route) or "POST" not in (route.methods or ()):
            continue
        if route.path.startswith(PUBLIC_POSTS):
            continue
        paths.add(
            re.sub(
                r"\{(\w+)(?::\w+)?\}",
                lambda m: "weekly" if m.group(1) == "digest" else "1",
                route.path,
            )
        )
    return sorted(paths)


def test_every_staff_action_is_refused_without_a_session_or_with_a_wrong_csrf(
    web: Web,
) -> None:
    web.subscriber()
    paths = staff_posts(web)
    assert {"/logout", "/send/weekly", "/test-send/weekly"} <= set(paths)
    anonymous = TestClient(web.client.app, base_url=BASE)
    web.login()
    good = csrf_of(web.client.get("/send/weekly").text, "/send/weekly")
    for path in paths:
        data = {"csrf": good, "address": "me@example.org"}
        assert anonymous.post(path, data=data).status_code == 403, path
        wrong = {"csrf": good[:-4] + "AAAA", "address": "me@example.org"}
        assert web.client.post(path, data=wrong).status_code == 403, path
        other_purpose = web.state.signer.csrf_token("something-else", None)
        assert web.client.post(path, data={"csrf": other_purpose}).status_code == 403, path
    web.state.jobs.wait(5)
    assert web.store.list_issues("weekly") == [] and web.transport.sent == []
    assert logged_in(web.client)  # the refused logout did not log out


def test_login_needs_its_csrf_token(web: Web) -> None:
    data = {"user": STAFF_USER, "password": STAFF_PASSWORD}
    assert web.client.post("/login", data=data, follow_redirects=False).status_code == 403
    assert web.client.post("/login", data={**data, "csrf": "x"}).status_code == 403
    assert not logged_in(web.client)


# -- the limiter ----------------------------------------------------------------------------


def test_limiter_memory_is_bounded_and_stale_keys_go_first() -> None:
    limiter = RateLimiter(2, 60, max_keys=100)
    assert limiter.allow("busy", now=0) and limiter.allow("busy", now=1)
    for n in range(1000):  # a flood of one-off addresses
        assert limiter.allow(f"10.0.{n // 256}.{n % 256}", now=2 + n / 1000)
        limiter.blocked("busy", now=2)  # still looked at: recently used
        assert len(limiter.hits) <= 100
    assert not limiter.allow("busy", now=3)  # its window survived the flood
    assert all(len(window) <= 2 for window in limiter.hits.values())
    assert limiter.allow("busy", now=62)  # the window moved on
    limiter.hit("x", now=100)
    limiter.hit("x", now=100)
    assert limiter.blocked("x", now=159) and not limiter.blocked("x", now=161)


@pytest.mark.parametrize(
    "address, key",
    [
        ("203.0.113.9", "203.0.113.9"),
        ("2001:db8:aa:bb:1:2:3:4", "2001:db8:aa:bb::/64"),
        ("2001:db8:aa:bb::ffff", "2001:db8:aa:bb::/64"),
        ("::ffff:198.51.100.4", "198.51.100.4"),
        ("testclient", "testclient"),
    ],
)
def test_client_key_takes_ipv6_by_its_64(address: str, key: str) -> None:
    assert client_key(address) == key


# -- caches ---------------------------------------------------------------------------------


def test_token_and_staff_pages_are_not_stored_by_caches(web: Web) -> None:
    subscriber = web.subscriber()
    token = subscriber.token
    anonymous = TestClient(web.client.app, base_url=BASE)
    for path in (f"/unsubscribe/{token}", f"/preferences/{token}", "/confirm/unknown", "/login"):
        response = anonymous.get(path)
        assert response.headers["cache-control"] == "no-store", path
    one_click = anonymous.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    assert one_click.headers["cache-control"] == "no-store"
    web.login()
    for path in ("/", "/send/weekly", "/preview/weekly"):
        assert web.client.get(path).headers["cache-control"] == "no-store", path
    assert "no-store" not in web.client.get("/static/site.css").headers.get("cache-control", "")
    assert "no-store" not in web.client.get("/archive").headers.get("cache-control", "")
