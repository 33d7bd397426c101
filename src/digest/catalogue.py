"""The message catalogues: every word a subscriber or staff member reads, one gettext catalogue
per language (``digest/locale/<lang>/LC_MESSAGES/digest.po``), read with Babel.

A :class:`Translator` is the catalogue of one site language. Code asks it for a message by its
English text (the msgid) and passes the values to fill in by name; templates get the same
functions through Jinja's i18n extension (:meth:`Translator.install`)::

    t = loaded.translator
    t.gettext("Hello %(name)s,", name=name)
    t.ngettext("%(num)d new post", "%(num)d new posts", len(items))   # num is filled in
    t.pgettext("link", "Subscribe")                                    # same English, other use

    {{ _("Read more") }}  {{ ngettext("%(num)d item", "%(num)d items", count) }}
    {% trans count=items|length %}{{ count }} new post{% pluralize %}{{ count }} new posts{% endtrans %}

Placeholders are ``%(name)s`` as in Jinja's ``{% trans %}``; the message is always formatted
(as Jinja's "newstyle" gettext does), so a literal percent sign is written ``%%``.

The ``.po`` files are the source and are read at run time (compiled in memory, once per
language per process): a plain ``pip install`` ships them as package data, no build step.
Mark a msgid that code looks up indirectly with ``N_("...")`` so ``pybabel extract`` sees it.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass, field
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import TYPE_CHECKING, Any

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

if TYPE_CHECKING:
    import jinja2

DOMAIN = "digest"
DEFAULT_LANGUAGE = "en"  # the language of the msgids: messages for CLI use before a config loads


class UnknownLanguage(ValueError):
    """No catalogue for a locale; the message lists the languages there are."""


def N_(message: str) -> str:
    """Mark ``message`` for extraction without translating it (translate it where it is shown)."""
    return message


def _locale_dir() -> Traversable:
    return files("digest") / "locale"


def catalogue_path(language: str) -> Traversable:
    return _locale_dir() / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def available_languages() -> tuple[str, ...]:
    """The languages with a catalogue, e.g. ``("de", "en")``."""
    return tuple(
        sorted(
            entry.name
            for entry in _locale_dir().iterdir()
            if entry.is_dir() and catalogue_path(entry.name).is_file()
        )
    )


def catalogue_language(locale: str) -> str:
    """The catalogue a site locale reads (``de_AT`` -> ``de``); :class:`UnknownLanguage` if none.

    A catalogue for the full locale (``pt_BR``) wins over the language's (``pt``)."""
    try:
        parsed = Locale.parse(locale)
    except (ValueError, UnknownLocaleError) as exc:
        raise UnknownLanguage(f"unknown locale {locale!r} (use e.g. de_DE or en_GB)") from exc
    available = available_languages()
    for candidate in (str(parsed), parsed.language):
        if candidate in available:
            return candidate
    raise UnknownLanguage(
        f"no message catalogue for {locale!r} (available languages: {', '.join(available)})"
    )


@functools.cache
def _translations(language: str) -> Translations:
    with catalogue_path(language).open("rb") as po_file:
        catalog = read_po(po_file, locale=language, domain=DOMAIN)
    mo_file = io.BytesIO()
    write_mo(mo_file, catalog, use_fuzzy=False)
    mo_file.seek(0)
    return Translations(mo_file, domain=DOMAIN)


@dataclass(frozen=True)
class Translator:
    """The messages of one language; obtain it with :func:`translator_for` or
    ``LoadedConfig.translator``."""

    language: str
    translations: Translations = field(repr=False, compare=False)

    def gettext(self, message: str, /, **variables: Any) -> str:
        return self.translations.gettext(message) % variables

    def ngettext(self, singular: str, plural: str, n: int, /, **variables: Any) -> str:
        variables.setdefault("num", n)
        return self.translations.ngettext(singular, plural, n) % variables

    def pgettext(self, context: str, message: str, /, **variables: Any) -> str:
        return str(self.translations.pgettext(context, message)) % variables

    def npgettext(
        self, context: str, singular: str, plural: str, n: int, /, **variables: Any
    ) -> str:
        variables.setdefault("num", n)
        return self.translations.npgettext(context, singular, plural, n) % variables

    def install(self, env: jinja2.Environment) -> None:
        """Give ``env`` Jinja's i18n extension (``_``, ``gettext``, ``ngettext``, ``pgettext``,
        ``npgettext``, ``{% trans %}``) with this language's messages."""
        env.add_extension("jinja2.ext.i18n")
        t = self.translations
        env.install_gettext_callables(  # type: ignore[attr-defined]
            t.gettext, t.ngettext, newstyle=True, pgettext=t.pgettext, npgettext=t.npgettext
        )


def translator_for(locale: str) -> Translator:
    """The translator of a site locale (``de_DE``); :class:`UnknownLanguage` if no catalogue."""
    return _translator(catalogue_language(locale))


@functools.cache
def _translator(language: str) -> Translator:
    return Translator(language, _translations(language))


def default_translator() -> Translator:
    """English, for what is printed before a config names the site's language."""
    return _translator(DEFAULT_LANGUAGE)
