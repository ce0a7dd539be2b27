"""The console's languages: Chinese in the templates themselves, English from a catalogue.

Templates are written in 简体中文 (the notice's terms are the message ids); the English
catalogue ``locale/en/LC_MESSAGES/messages.po`` translates them. Its compiled ``.mo`` is
committed beside it; after editing templates or the ``.po``:

    cd <console> && ../../../../../../.venv/bin/pybabel extract -F babel.cfg -k N_ \
        -o /tmp/console.pot .
    .venv/bin/pybabel update -i /tmp/console.pot -d <console>/locale   # then translate
    .venv/bin/pybabel compile -d <console>/locale

(tests/integration/test_console.py checks every message of the templates is translated and the
``.mo`` is the ``.po`` compiled.)
"""

from __future__ import annotations

import functools
import gettext
from datetime import UTC, datetime
from pathlib import Path

from babel.support import Translations

from gongkai.calendar import SHANGHAI

HERE = Path(__file__).parent
LOCALE_DIR = HERE / "locale"
DOMAIN = "messages"
#: The console's languages, the first the default: the templates' own, then the catalogue's.
LANGUAGES = ("zh", "en")


@functools.cache
def translations(lang: str) -> gettext.NullTranslations:
    if lang == "zh":
        return gettext.NullTranslations()  # the templates are written in Chinese
    return Translations.load(str(LOCALE_DIR), [lang], DOMAIN)


def negotiate(query: str | None, accept_language: str | None) -> str:
    """``?lang=`` if it names a language of the console, else the first of Accept-Language's
    choices (by weight) that does, else Chinese."""
    if query in LANGUAGES:
        return query
    choices: list[tuple[float, int, str]] = []
    for i, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for p in params.split(";"):
            name, _, value = p.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and q > 0:
            choices.append((-q, i, primary))
    return min(choices)[2] if choices else LANGUAGES[0]


def beijing(at: str | datetime | None, zone_label: str, seconds: bool = False) -> str:
    """An instant in Beijing time with the zone shown: ``2026-03-02 09:00 北京时间 (+08:00)``."""
    if at is None or at == "":
        return ""
    when = datetime.fromisoformat(at) if isinstance(at, str) else at
    if when.tzinfo is None:
        # The log only holds aware times; a bare one is UTC, as the platform writes them.
        when = when.replace(tzinfo=UTC)
    local = when.astimezone(SHANGHAI)
    fmt = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    return f"{local.strftime(fmt)} {zone_label} (+08:00)"

