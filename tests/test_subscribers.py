"""Subscriber list: address validation, CSV import (email,name,digests) and export."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.store import Store
from digest.subscriber_csv import CsvFormatError, decode, parse_map, sniff_delimiter
from digest.subscribers import (
    AddressError,
    AddressNormaliser,
    ImportReport,
    export_csv,
    import_csv,
    normalise_address,
    read_import,
)
from tests.conftest import CliRunner, Site

pytestmark = pytest.mark.both_databases

NOW = datetime(2017, 11, 1, tzinfo=UTC)
DIGESTS = ("weekly", "monthly")


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store.open(database_url)
    yield store
    store.close()


def run_import(store: Store, text: str) -> ImportReport:
    return import_csv(
        text, store, known_digests=DIGESTS, default_digests=DIGESTS, now=NOW, source="subs.csv"
    )


def test_digests_separated_by_semicolon_or_bar_default_all(store: Store) -> None:
    report = run_import(
        store,
        "email,name,digests\n"
        "a@example.org,Anna,weekly\n"
        "b@example.org,Bernd,weekly;monthly\n"
        "c@example.org,Carla,monthly|weekly\n"
        "d@example.org,Dora,\n",
    )
    assert (report.added, report.updated, report.problems) == (4, 0, [])
    by_email = {s.email: s.digests for s in store.list_subscribers()}
    assert by_email == {
        "a@example.org": ("weekly",),
        "b@example.org": ("monthly", "weekly"),
        "c@example.org": ("monthly", "weekly"),
        "d@example.org": ("monthly", "weekly"),
    }
    assert store.count_active("weekly") == 4 and store.count_active("monthly") == 3


def test_bad_and_duplicate_rows_are_reported_by_line_and_skipped(store: Store) -> None:
    report = run_import(
        store,
        "Email,Name,Digests\n"  # header case does not matter
        "ok@example.org,Ok,weekly\n"
        "not-an-address,X,weekly\n"
        "OK@Example.org,Dup,weekly\n"
        "x@example.org,X,daily\n"
        "y@example.org,Y,weekly\n",
    )
    assert report.added == 2
    assert len(report.problems) == 3
    assert report.problems[0].startswith("subs.csv:3: 'not-an-address'")
    assert report.problems[1] == "subs.csv:4: ok@example.org duplicates line 2 (skipped)"
    assert report.problems[2].startswith("subs.csv:5: unknown digest(s): daily")


def test_missing_header_is_an_error(store: Store) -> None:
    with pytest.raises(CsvFormatError, match=r"subs\.csv:1: no email column"):
        run_import(store, "a@example.org,Anna,weekly\n")


def test_line_breaks_in_names_are_neutralised_and_in_addresses_rejected(store: Store) -> None:
    report = run_import(
        store, 'email,name,digests\na@example.org,"Anna\r\nBcc: x@example.com",weekly\n'
    )
    assert report.added == 1
    (subscriber,) = store.list_subscribers()
    assert subscriber.name == "Anna Bcc: x@example.com"
    with pytest.raises(AddressError):
        normalise_address("a@example.org\r\nBcc: x@example.com")


def test_addresses_are_normalised_without_dns(store: Store) -> None:
    assert normalise_address("  Anna@Example.ORG ") == "anna@example.org"
    assert normalise_address("x@bücher.example") == "x@xn--bcher-kva.example"
    with pytest.raises(AddressError):
        normalise_address("a@@example.org")


def test_reimport_updates_and_reactivates(store: Store) -> None:
    run_import(store, "email,name,digests\na@example.org,Anna,weekly\n")
    subscriber = store.subscriber_by_email("a@example.org")
    assert subscriber is not None
    store.unsubscribe(subscriber.id, NOW)
    report = run_import(store, "email,name,digests\na@example.org,Anna B,monthly\n")
    assert (report.added, report.updated) == (0, 1)
    again = store.subscriber_by_email("a@example.org")
    assert again is not None and again.status == "active" and again.name == "Anna B"
    assert again.token == subscriber.token


def test_export_round_trips_subscribers_with_their_status(store: Store) -> None:
    text = (
        'email,name,digests\na@example.org,"Becker, Anna",weekly\nb@example.org,,monthly;weekly\n'
    )
    run_import(store, text + "c@example.org,Gone,weekly\n")
    gone = store.subscriber_by_email("c@example.org")
    assert gone is not None
    store.unsubscribe(gone.id, NOW)
    exported = export_csv(store.list_subscribers())
    assert exported == (
        "email,name,digests,status,topics,language,timezone\n"
        'a@example.org,"Becker, Anna",weekly,active,,,\n'
        "b@example.org,,monthly;weekly,active,,,\n"
        "c@example.org,Gone,weekly,unsubscribed,,,\n"
    )


def test_cli_import_export(site: Site, cli: CliRunner, tmp_path: Path) -> None:
    path = site.write(
        "subs.csv",
        "email,name,digests\na@example.org,Anna,weekly\nbroken,B,weekly\na@example.org,A2,weekly\n",
    )
    result = cli("-c", site.config, "subscribers", "import", path)
    assert result.code == 0
    # No settings columns: the summary does not speak of them.
    assert result.out.strip() == "1 added, 0 updated, 2 skipped"
    assert f"{path}:3:" in result.err and f"{path}:4:" in result.err
    out = tmp_path / "export.csv"
    assert cli("-c", site.config, "subscribers", "export", out).code == 0
    assert out.read_text(encoding="utf-8") == (
        "email,name,digests,status,topics,language,timezone\na@example.org,Anna,weekly,active,,,\n"
    )
    listed = cli("-c", site.config, "subscribers", "list", "--digest", "weekly")
    assert listed.out.startswith("a@example.org\tAnna\tactive\tweekly")
    assert cli("-c", site.config, "subscribers", "remove", "a@example.org").code == 0
    assert cli("-c", site.config, "subscribers", "list", "--status", "active").out == ""
    missing = cli("-c", site.config, "subscribers", "remove", "nobody@example.org")
    assert missing.code == 1
    assert missing.err_lines == ["digest: error: nobody@example.org: no such subscriber"]


# -- the files people have: delimiters, encodings, other tools' exports (observation 9 of #10)

IMPORTS = Path(__file__).parent / "fixtures" / "imports"


def import_fixture(store: Store, name: str, mapping: dict[str, str] | None = None) -> ImportReport:
    text = decode((IMPORTS / name).read_bytes(), name)
    return import_csv(
        text, store, known_digests=DIGESTS, default_digests=DIGESTS, now=NOW, source=name,
        mapping=mapping,
    )  # fmt: skip


def names(store: Store) -> dict[str, str]:
    return {s.email: s.name for s in store.list_subscribers()}


def test_mailchimp_export_maps_its_columns_and_skips_unsubscribed(store: Store) -> None:
    report = import_fixture(store, "mailchimp_subscribed.csv")
    assert (report.added, report.problems) == (2, [])
    assert report.notes == [  # these digests declare no topics: the tags are left out
        f"mailchimp_subscribed.csv:2: column 'TAGS': {tag!r} is not a topic of weekly, monthly "
        "(left out)"
        for tag in ("Familie", "Schule")
    ]
    assert names(store) == {"anna.becker@example.org": "Anna Becker", "bernd@example.org": "Bernd"}
    gone = import_fixture(store, "mailchimp_unsubscribed.csv")
    assert gone.added == 0
    assert gone.problems == [
        "mailchimp_unsubscribed.csv:2: gone@example.org marked as no longer subscribed in the "
        "export (2017-06-01 12:00:00) (skipped)"
    ]


def test_mailchimp_tags_and_timezone_are_read() -> None:
    report = ImportReport()
    text = decode((IMPORTS / "mailchimp_subscribed.csv").read_bytes(), "m.csv")
    rows = read_import(text, report, known_digests=DIGESTS, default_digests=DIGESTS, source="m.csv")
    assert rows[0].topics == ("Familie", "Schule") and rows[0].timezone == "Europe/Berlin"
    assert rows[1].topics == () and rows[1].timezone is None


def test_cleverreach_semicolons_quotes_bom_crlf_and_deactivated(store: Store) -> None:
    report = import_fixture(store, "cleverreach.csv")
    assert report.added == 1
    assert names(store) == {"carla@example.org": "Carla Schmitz"}
    assert report.problems == [
        "cleverreach.csv:3: dora@example.org marked as no longer subscribed in the export "
        "(1500000000) (skipped)"
    ]


def test_substack_export_skips_disabled_addresses(store: Store) -> None:
    report = import_fixture(store, "substack.csv")
    assert report.added == 2
    assert sorted(names(store)) == ["eva@example.org", "fritz@example.org"]
    assert report.problems == [
        "substack.csv:4: nomail@example.org marked as no longer subscribed in the export "
        "(true) (skipped)"
    ]


def test_buttondown_export_imports_only_receiving_types(store: Store) -> None:
    report = import_fixture(store, "buttondown.csv")
    assert report.added == 1 and sorted(names(store)) == ["greta@example.org"]
    assert report.problems == [
        "buttondown.csv:3: hans@example.org subscriber type 'unsubscribed' does not receive "
        "mail (skipped)",
        "buttondown.csv:4: ida@example.org subscriber type 'unactivated' does not receive "
        "mail (skipped)",
    ]


def test_german_excel_semicolons_windows_1252_language_and_zone(store: Store) -> None:
    report = import_fixture(store, "excel_de.csv")
    assert report.added == 2 and report.problems == []
    assert names(store) == {
        "juergen@example.org": "Jürgen Müller",
        "karl@example.org": "Karl Krämer",
    }
    assert report.notes == ["excel_de.csv:3: time zone 'Mars/Olympus' unknown (left out)"]


def test_tab_separated(store: Store) -> None:
    report = import_fixture(store, "tabs.tsv")
    assert report.added == 1 and names(store) == {"lena@example.org": "Lena"}


def test_map_names_the_columns(store: Store) -> None:
    text = "Adresse;Wer;Liste\nm@example.org;Mia;monthly\n"
    report = import_csv(
        text, store, known_digests=DIGESTS, default_digests=DIGESTS, now=NOW, source="x.csv",
        mapping=parse_map("email=Adresse, name=Wer,digests=Liste"),
    )  # fmt: skip
    assert report.added == 1
    (subscriber,) = store.list_subscribers()
    assert (subscriber.email, subscriber.name, subscriber.digests) == (
        "m@example.org",
        "Mia",
        ("monthly",),
    )
    with pytest.raises(CsvFormatError, match=r"^x\.csv:1: --map email=Mail: no such column"):
        import_csv(
            text, store, known_digests=DIGESTS, default_digests=DIGESTS, now=NOW,
            source="x.csv", mapping={"email": "Mail"},
        )  # fmt: skip
    with pytest.raises(CsvFormatError, match="unknown field 'phone'"):
        parse_map("phone=Telefon")


@pytest.mark.parametrize(
    ("header", "delimiter"),
    [("email,name", ","), ("email;name", ";"), ("email\tname", "\t"), ("email", ","),
     ('"Name, Vorname";"E-Mail"', ";")],
)  # fmt: skip
def test_delimiter_sniffed_from_the_header(header: str, delimiter: str) -> None:
    assert sniff_delimiter(header) == delimiter


def test_utf16_with_bom_is_read() -> None:
    assert decode("email\tname\n".encode("utf-16"), "x") == "email\tname\n"


def test_cli_import_mailchimp_and_map(site: Site, cli: CliRunner, tmp_path: Path) -> None:
    result = cli("-c", site.config, "subscribers", "import", IMPORTS / "mailchimp_subscribed.csv")
    assert result.code == 0 and "2 added, 0 updated, 0 skipped" in result.out
    path = site.write("own.csv", "Adresse;Wer\nx@example.org;Xaver\n")
    mapped = cli(
        "-c", site.config, "subscribers", "import", path, "--map", "email=Adresse,name=Wer"
    )
    assert mapped.code == 0 and "1 added" in mapped.out
    bad = cli("-c", site.config, "subscribers", "import", path, "--map", "email=Mail")
    assert bad.code == 1
    assert bad.err_lines == [
        f"digest: error: {path}:1: --map email=Mail: no such column (columns: Adresse, Wer)"
    ]


_ADDRESS_CHARS = "aZ09.-_+@!#'\"()[],;: \\\r\tü\u00e9xn"


@given(
    primer=st.sampled_from(["p@example.org", "p@Bücher.example", "p@xn--bcher-kva.example"]),
    local=st.text(alphabet=_ADDRESS_CHARS, max_size=70),
    domain=st.sampled_from(["example.org", "EXAMPLE.org", "bücher.example", "xn--bcher-kva.example",
                            "example..org", "-x.example", "example.org.", "localhost"]),
)  # fmt: skip
def test_the_fast_path_agrees_with_the_full_check(primer: str, local: str, domain: str) -> None:
    fast = AddressNormaliser()
    fast(primer)  # the domain is known now
    value = f"{local}@{domain}"
    try:
        expected: str | None = normalise_address(value)
    except AddressError:
        expected = None
    try:
        got: str | None = fast(value)
    except AddressError:
        got = None
    assert got == expected


def test_names_are_capped_and_encoded_words_decoded_on_import(store: Store) -> None:
    report = run_import(
        store,
        "email,name,digests\n"
        f"long@example.org,{'N' * 3000},weekly\n"
        "mime@example.org,=?utf-8?q?J=C3=BCrgen_M=C3=BCller?=,weekly\n"
        "odd@example.org,=?x-unknown?q?abc?=,weekly\n",
    )
    assert (report.added, report.problems) == (3, [])
    assert report.notes == ["subs.csv:2: long@example.org: name of 3000 characters cut to 100"]
    names = {s.email: s.name for s in store.list_subscribers()}
    assert names["long@example.org"] == "N" * 100
    assert names["mime@example.org"] == "Jürgen Müller"
    assert names["odd@example.org"] == "=?x-unknown?q?abc?="  # kept as written


def test_export_never_writes_a_spreadsheet_formula(store: Store) -> None:
    run_import(
        store,
        "email,name,digests\n"
        'a@example.org,"=HYPERLINK(""https://evil.example"",""x"")",weekly\n'
        "b@example.org,+1 Mio,weekly\nc@example.org,-x,weekly\nd@example.org,@SUM(A1),weekly\n",
    )
    exported = export_csv(store.list_subscribers())
    names = [row["name"] for row in csv.DictReader(io.StringIO(exported))]
    assert names == ['\'=HYPERLINK("https://evil.example","x")', "'+1 Mio", "'-x", "'@SUM(A1)"]
