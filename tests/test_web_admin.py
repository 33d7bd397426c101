"""The staff admin at the HTTP level (Starlette TestClient over the real app and a real
SQLite file): every state-changing admin action is refused without a session and with a
wrong CSRF token; search, edit, erase, CSV import with preview, in-doubt resolution."""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Iterator
from email import message_from_bytes

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from digest.store import IN_DOUBT, SENT
from tests.conftest import Site
from tests.test_web import BASE, Web, make_web
from tests.web_site import csrf_of, hidden_fields

pytestmark = pytest.mark.both_databases


@pytest.fixture
def web(site: Site) -> Iterator[Web]:
    yield from make_web(site)


def send_with_one_in_doubt(web: Web) -> int:
    """Send the weekly issue to two subscribers; the server never answers for doubt@."""

    def fail(recipient: str) -> None:
        if recipient == "doubt@example.net":
            from digest.transport import OutcomeUnknown

            raise OutcomeUnknown("no reply after the message data")

    web.transport.fail = fail
    web.subscriber("fine@example.net")
    web.subscriber("doubt@example.net")
    web.login()
    page = web.client.get("/send/weekly")
    web.client.post("/send/weekly", data=hidden_fields(page.text, "/send/weekly"))
    web.state.jobs.wait(10)
    web.transport.fail = None
    (issue,) = web.store.list_issues("weekly")
    assert web.store.counts(issue.id)[IN_DOUBT] == 1
    return issue.id


def test_every_admin_action_needs_a_session_and_its_csrf_token(web: Web) -> None:
    issue_id = send_with_one_in_doubt(web)
    subscriber = web.store.subscriber_by_email("fine@example.net")
    assert subscriber is not None
    (doubt,) = web.store.issue_deliveries(issue_id, status=IN_DOUBT)
    sid = subscriber.id
    csv_file = {"file": ("list.csv", b"email\nnew@example.org\n", "text/csv")}
    upload = web.client.get("/subscribers/import")
    preview = web.client.post(
        "/subscribers/import",
        data={"csrf": csrf_of(upload.text, "/subscribers/import")},
        files=csv_file,
    )
    job = re.search(r"/subscribers/import/([\w-]+)/start", preview.text)
    assert job, preview.text
    actions: list[tuple[str, dict[str, str]]] = [
        ("/subscribers/new", {"email": "x@example.org", "name": "X", "digests": "weekly"}),
        (f"/subscribers/{sid}/edit", {"name": "Changed", "digests": "monthly"}),
        (f"/subscribers/{sid}/unsubscribe", {}),
        (f"/subscribers/{sid}/erase", {"confirm": "yes"}),
        ("/subscribers/import", {}),
        (f"/subscribers/import/{job.group(1)}/start", {}),
        (f"/issues/{issue_id}/mark-delivered", {"delivery": str(doubt.id)}),
        (f"/issues/{issue_id}/resend", {"delivery": str(doubt.id)}),
    ]
    anonymous = TestClient(web.client.app, base_url=BASE)
    for path, data in actions:
        for client, token in ((anonymous, None), (web.client, "wrong"), (web.client, None)):
            form = dict(data, **({"csrf": token} if token else {}))
            files = csv_file if path == "/subscribers/import" else None
            response = client.post(path, data=form, files=files, follow_redirects=False)
            assert response.status_code == 403, (path, token, response.status_code)
    # a token for one action does not open another
    page = web.client.get(f"/subscribers/{sid}")
    edit_token = csrf_of(page.text, f"/subscribers/{sid}/edit")
    response = web.client.post(
        f"/subscribers/{sid}/erase", data={"csrf": edit_token, "confirm": "yes"}
    )
    assert response.status_code == 403
    # nothing changed
    after = web.store.subscriber_by_email("fine@example.net")
    assert after is not None and (after.name, after.status) == ("Rita Reader", "active")
    assert web.store.subscriber_by_email("x@example.org") is None
    assert web.store.subscriber_by_email("new@example.org") is None
    assert web.store.counts(issue_id)[IN_DOUBT] == 1
    assert len(web.transport.sent) == 1


def test_search_edit_unsubscribe_and_erase(web: Web) -> None:
    web.login()
    rows = [(f"person{n:03d}@example.org", f"Person {n}", ["weekly"]) for n in range(60)]
    web.store.add_subscribers(rows, web.clock())
    web.store.add_subscriber("greta.gruen@ahlen.de", "Greta Grün", ["monthly"], web.clock())

    page = web.client.get("/subscribers")
    assert page.status_code == 200 and 'rel="next"' in page.text
    assert page.text.count("person0") == 50
    found = web.client.get("/subscribers", params={"q": "GRUEN@ahl"})
    assert "greta.gruen@ahlen.de" in found.text and "person0" not in found.text
    by_name = web.client.get("/subscribers", params={"q": "grün"})
    assert "greta.gruen@ahlen.de" in by_name.text
    monthly = web.client.get("/subscribers", params={"digest": "monthly"})
    assert "greta.gruen@ahlen.de" in monthly.text and "person0" not in monthly.text

    greta = web.store.subscriber_by_email("greta.gruen@ahlen.de")
    assert greta is not None
    page = web.client.get(f"/subscribers/{greta.id}")
    response = web.client.post(
        f"/subscribers/{greta.id}/edit",
        data={"csrf": csrf_of(page.text, f"/subscribers/{greta.id}/edit"),
              "name": "Greta G.", "digests": ["weekly", "monthly", "nonsense"]},
        follow_redirects=False,
    )  # fmt: skip
    assert response.status_code == 303
    greta = web.store.subscriber_by_email("greta.gruen@ahlen.de")
    assert greta is not None and (greta.name, greta.digests) == ("Greta G.", ("monthly", "weekly"))
    page = web.client.get(response.headers["location"])
    assert "Gespeichert." in page.text

    web.client.post(
        f"/subscribers/{greta.id}/unsubscribe",
        data={"csrf": csrf_of(page.text, f"/subscribers/{greta.id}/unsubscribe")},
    )
    assert web.store.subscriber_by_email("greta.gruen@ahlen.de").status == "unsubscribed"  # type: ignore[union-attr]

    page = web.client.get(f"/subscribers/{greta.id}")
    token = csrf_of(page.text, f"/subscribers/{greta.id}/erase")
    unconfirmed = web.client.post(f"/subscribers/{greta.id}/erase", data={"csrf": token})
    assert "Bitte bestätigen Sie das Löschen" in unconfirmed.text
    assert web.store.subscriber_by_email("greta.gruen@ahlen.de") is not None
    erased = web.client.post(
        f"/subscribers/{greta.id}/erase", data={"csrf": token, "confirm": "yes"}
    )
    assert erased.status_code == 200 and "Der Abonnent wurde gelöscht." in erased.text
    assert web.store.subscriber_by_email("greta.gruen@ahlen.de") is None
    assert web.client.get(f"/subscribers/{greta.id}").status_code == 404
    assert "Keine Abonnenten gefunden." in web.client.get("/subscribers?q=greta").text

    new = web.client.get("/subscribers/new")
    again = web.client.post(
        "/subscribers/new",
        data={"csrf": csrf_of(new.text, "/subscribers/new"), "email": "Greta.Gruen@ahlen.de",
              "digests": "weekly"},
    )  # fmt: skip
    assert again.status_code == 422 and "wurde gelöscht" in again.text
    added = web.client.post(
        "/subscribers/new",
        data={"csrf": csrf_of(new.text, "/subscribers/new"), "email": "Neu@Example.org",
              "name": "Neu", "digests": "weekly"},
    )  # fmt: skip
    assert added.status_code == 200 and "neu@example.org" in added.text
    export = web.client.get("/subscribers/export.csv")
    assert export.headers["content-type"].startswith("text/csv")
    assert "neu@example.org,Neu,weekly" in export.text and "greta" not in export.text


def test_csv_import_previews_mapping_and_rejections_then_imports_in_the_background(
    web: Web,
) -> None:
    web.login()
    web.store.add_subscriber("gone@example.org", "", ["weekly"], web.clock())
    gone = web.store.subscriber_by_email("gone@example.org")
    assert gone is not None and web.store.erase_subscriber(gone.id, web.clock())
    rows = "".join(f"user{n}@example.org,User {n},weekly,x\n" for n in range(2500))
    data = (
        "\ufeffEmail,Name,Digests,Extra\n" + rows + "not-an-address,Bad,,\n"
        "user1@example.org,Twice,,\nok@example.org,Ok,nosuch,\ngone@example.org,,,\n"
    )
    page = web.client.get("/subscribers/import")
    preview = web.client.post(
        "/subscribers/import",
        data={"csrf": csrf_of(page.text, "/subscribers/import")},
        files={"file": ("list.csv", data.encode(), "text/csv")},
    )
    assert preview.status_code == 200
    mapping = re.search(r'<table id="mapping">.*?</table>', preview.text, re.S)
    assert mapping and '<code>Extra</code></td><td><span class="muted">wird ignoriert' in (
        mapping.group(0)
    )
    assert "2501 Zeilen werden importiert" in preview.text  # gone@ is only known at import
    assert "3 Zeilen werden abgelehnt" in preview.text
    assert "list.csv:2502:" in preview.text and "steht schon in Zeile 3" in preview.text
    assert "unbekannte Übersicht(en): nosuch" in preview.text  # the site's language
    assert web.store.subscriber_by_email("user0@example.org") is None  # a preview writes nothing

    action = re.search(r'action="(/subscribers/import/[\w-]+/start)"', preview.text)
    assert action
    start = csrf_of(preview.text, action.group(1))
    response = web.client.post(action.group(1), data={"csrf": start}, follow_redirects=False)
    assert response.status_code == 303
    job = web.state.imports.get(action.group(1).split("/")[3])
    assert job is not None
    for _ in range(500):
        if job.finished:
            break
        time.sleep(0.02)
    assert job.finished and job.report is not None and job.done == 2500
    progress = web.client.get(action.group(1).replace("/start", "/progress")).json()
    assert progress == {"done": 2500, "total": 2501, "finished": True}
    done = web.client.get(response.headers["location"])
    assert "2500 neu, 0 aktualisiert, 4 übersprungen" in done.text
    assert "gone@example.org wurde gelöscht (DSGVO)" in done.text
    assert web.store.subscriber_by_email("user2499@example.org") is not None
    assert web.store.subscriber_by_email("gone@example.org") is None
    again = web.client.post(action.group(1), data={"csrf": start}, follow_redirects=False)
    assert again.status_code == 303 and job.report.added == 2500  # started once


def test_in_doubt_row_is_resent_once_with_a_new_message_id_after_confirmation(web: Web) -> None:
    issue_id = send_with_one_in_doubt(web)
    (doubt,) = web.store.issue_deliveries(issue_id, status=IN_DOUBT)
    listing = web.client.get("/issues")
    assert f'href="/issues/{issue_id}"' in listing.text and "1 unklar" in listing.text
    page = web.client.get(f"/issues/{issue_id}")
    assert "doubt@example.net" in page.text and "Unklare Zustellungen klären (1)" in page.text
    assert "Stadtführung für Lehrkräfte" in page.text  # the issue's items
    confirm = web.client.get(f"/issues/{issue_id}/resend", params={"delivery": doubt.id})
    assert "doppelt" in confirm.text and "RFC 5321" in confirm.text
    assert len(web.transport.sent) == 1  # opening the confirmation sends nothing
    token = csrf_of(confirm.text, f"/issues/{issue_id}/resend")
    response = web.client.post(
        f"/issues/{issue_id}/resend", data={"csrf": token, "delivery": str(doubt.id)}
    )
    web.state.jobs.wait(10)
    assert "1 Zustellungen werden erneut gesendet." in response.text
    assert [to for _, to, _ in web.transport.sent] == ["fine@example.net", "doubt@example.net"]
    resent = message_from_bytes(web.transport.sent[1][2])
    assert resent["Message-ID"] != doubt.message_id and ".resend." in resent["Message-ID"]
    (row,) = [r for r in web.store.issue_deliveries(issue_id) if r.id == doubt.id]
    assert row.status == SENT and row.message_id == resent["Message-ID"]
    second = web.client.post(
        f"/issues/{issue_id}/resend", data={"csrf": token, "delivery": str(doubt.id)}
    )
    web.state.jobs.wait(10)
    assert "Keine dieser Zustellungen ist noch unklar." in second.text
    assert len(web.transport.sent) == 2  # a second click sends nothing


def test_mark_all_delivered(web: Web) -> None:
    issue_id = send_with_one_in_doubt(web)
    page = web.client.get(f"/issues/{issue_id}")
    token = csrf_of(page.text, f"/issues/{issue_id}/mark-delivered")
    response = web.client.post(
        f"/issues/{issue_id}/mark-delivered", data={"csrf": token, "delivery": "all"}
    )
    assert "1 Zustellungen als zugestellt markiert." in response.text
    assert web.store.counts(issue_id)[IN_DOUBT] == 0 and web.store.counts(issue_id)[SENT] == 2
    assert len(web.transport.sent) == 1


def test_admin_pages_follow_the_site_language(site: Site) -> None:
    site.replace_in_config("locale: de_DE", "locale: en_GB")
    for web in make_web(site):
        issue_id = send_with_one_in_doubt(web)
        subscriber = web.store.subscriber_by_email("fine@example.net")
        assert subscriber is not None
        pages = {
            "/subscribers": "Search by address or name",
            f"/subscribers/{subscriber.id}": "Erase (GDPR Art. 17)",
            "/subscribers/new": "Add a subscriber",
            "/subscribers/import": "Import subscribers from CSV",
            "/issues": "Deliveries",
            f"/issues/{issue_id}": "Resolve deliveries in doubt",
            f"/issues/{issue_id}/resend?delivery=all": "they receive it twice",
        }
        for path, words in pages.items():
            page = web.client.get(path)
            assert page.status_code == 200 and words in page.text, path
            assert '<html lang="en">' in page.text


def test_the_dashboard_and_the_issue_page_show_the_rows_waiting_for_local_time(web: Web) -> None:
    from datetime import UTC, datetime, time

    from digest.localtime import LocalDelivery

    web.clock.now = datetime(2026, 10, 19, 4, 50, tzinfo=UTC)  # 06:50 in Berlin
    web.subscriber("berlin@example.net")
    far = web.subscriber("ny@example.net")
    web.store.set_reader(far.id, language=None, timezone="America/New_York")
    issue = web.store.create_issue(
        digest="weekly", period_key="2026-10-19", period_start=None,
        period_end=web.clock.now, status="sending", subject="S", preheader="", html="<p>x</p>",
        text="x", item_ids=[], now=web.clock.now, message_id=iter(["<a@x>", "<b@x>"]).__next__,
        local_delivery=LocalDelivery(time(7, 0), "Europe/Berlin"),
    )  # fmt: skip
    web.login()
    dashboard = web.client.get("/").text
    waiting = dashboard.split('class="waiting">')[1].split("</dd>")[0]
    assert waiting.startswith("2 Nachrichten warten auf die örtliche Zustellzeit")
    assert "07:00" in waiting  # the first, in Berlin at 07:00 (site time)
    page = web.client.get(f"/issues/{issue.id}").text
    assert 'id="waiting">2 Nachrichten warten' in page
    web.clock.now = datetime(2026, 10, 19, 5, 0, tzinfo=UTC)  # Berlin's row is due: not waiting
    page = web.client.get(f"/issues/{issue.id}").text
    assert 'id="waiting">1 Nachricht wartet' in page and "13:00" in page
