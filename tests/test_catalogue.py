"""The message catalogues: complete in every language, plural forms right, read by code and by
the Jinja templates through one :class:`~digest.catalogue.Translator` per language."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import jinja2
import pytest

from digest.catalogue import (
    UnknownLanguage,
    available_languages,
    catalogue_language,
    translator_for,
)
from digest.i18n import labels_for
from tests.conftest import AT_TEXT, REPO, CliRunner, Site


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("catalogues", REPO / "scripts" / "catalogues.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("catalogues", module)
    spec.loader.exec_module(module)
    return module


def test_german_and_english_catalogues_exist() -> None:
    assert {"de", "en"} <= set(available_languages())


def test_every_msgid_of_the_code_is_translated_in_every_catalogue() -> None:
    """Fails on a msgid the code or a packaged template uses that a catalogue lacks, and on an
    untranslated or fuzzy entry: run ``python3 scripts/catalogues.py`` and translate."""
    tool = _tool()
    template = tool.extract()
    assert len(template) > 100  # the extraction sees the code, not an empty tree
    found = [
        problem
        for language, path in tool.catalogue_files().items()
        for problem in tool.problems(template, tool.read(path, language), language)
    ]
    assert found == []


def test_the_check_finds_a_missing_an_untranslated_and_a_fuzzy_entry() -> None:
    tool = _tool()
    template = tool.extract()
    catalog = tool.read(tool.catalogue_files()["de"], "de")
    simple = (m for m in catalog if m.id and isinstance(m.id, str) and m.context is None)
    first, second, third, *_ = simple
    template.add("A message nobody translated yet")
    del catalog[second.id]
    first.string = ""
    third.flags.add("fuzzy")
    found = list(tool.problems(template, catalog, "de"))
    assert f"de: missing {second.id!r}" in " ".join(found)
    assert "de: missing 'A message nobody translated yet'" in " ".join(found)
    assert f"de: {first.id!r} is not translated" in found
    assert f"de: {third.id!r} is fuzzy" in found


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("de_DE", ["1 neuer Beitrag", "2 neue Beiträge", "0 neue Beiträge"]),
        ("de_AT", ["1 neuer Beitrag", "2 neue Beiträge", "0 neue Beiträge"]),
        ("en_GB", ["1 new post", "2 new posts", "0 new posts"]),
    ],
)
def test_plural_forms(locale: str, expected: list[str]) -> None:
    t = translator_for(locale)
    got = [t.ngettext("%(num)s new post", "%(num)s new posts", n) for n in (1, 2, 0)]
    assert got == expected


def test_templates_get_the_i18n_extension() -> None:
    env = jinja2.Environment(autoescape=True)
    translator_for("de_DE").install(env)
    source = (
        "{{ _('Read more') }} · {{ ngettext('%(num)s item', '%(num)s items', n) }} · "
        "{{ _('Hello %(name)s,', name=who) }}"
    )
    rendered = env.from_string(source).render(n=1, who="<Ann>")
    assert rendered == "Weiterlesen · 1 Beitrag · Hallo &lt;Ann&gt;,"


def test_labels_stay_for_templates_written_before_the_catalogue() -> None:
    de = labels_for("de_DE")
    assert de["read_more"] == "Weiterlesen"
    assert de["greeting_named"].format(name="Erika") == "Hallo Erika,"
    assert de["items_count"].format(count=3) == "3 neue Beiträge"
    assert labels_for(translator_for("en_US"))["unsubscribe"] == "Unsubscribe"


def test_a_locale_without_a_catalogue_lists_the_languages() -> None:
    assert catalogue_language("de_CH") == "de"
    with pytest.raises(UnknownLanguage, match=r"no message catalogue for 'fr_FR' \(available"):
        catalogue_language("fr_FR")


def test_the_loaded_config_gives_the_sites_translator(site: Site) -> None:
    assert site.load().translator.gettext("Read more") == "Weiterlesen"
    site.replace_in_config("locale: de_DE", "locale: en_GB")
    assert site.load().translator.language == "en"


def test_site_templates_and_subjects_can_use_the_catalogue(
    site: Site, cli: CliRunner, tmp_path: Path
) -> None:
    site.replace_in_config(
        "subject: \"{{ site.title }}: {{ items|length }} {{ 'neuer Beitrag' if items|length == 1 "
        "else 'neue Beiträge' }}\"",
        "subject: \"{{ ngettext('%(num)s new post', '%(num)s new posts', items|length) }}\"",
    )
    site.write(
        "templates/footer.mjml",
        """
        <mj-section><mj-column><mj-text>
          <a href="{{ recipient.unsubscribe_url }}">{{ _("Unsubscribe") }}</a>
          {% trans %}Read more{% endtrans %} · {{ labels.read_more }}
        </mj-text></mj-column></mj-section>
        """,
    )
    out = tmp_path / "out"
    result = cli("-c", site.config, "build", "weekly", "--out", out, "--at", AT_TEXT)
    assert result.code == 0, result.err
    assert "subject: 3 neue Beiträge" in result.out.splitlines()
    html = (out / "email.html").read_text(encoding="utf-8")
    assert ">Abmelden</a>" in html
    assert "Weiterlesen · Weiterlesen" in html
