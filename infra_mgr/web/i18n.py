"""UI strings in English and Arabic, and which language a request wants.

Every visible string of the dashboard lives in ``web/i18n/<lang>.json`` (flat ``"section.key"``
names) so a translator edits data, not templates, and a unit test can prove both files carry the
same keys. A missing Arabic string falls back to English, then to the key itself: a gap shows up as
readable text instead of a crash.

A text that depends on a number holds its plural forms in one value, separated by ``|``, in the
order of its language's CLDR plural categories (:data:`PLURAL_CATEGORIES`: English one|other,
Arabic zero|one|two|few|many|other), and is chosen by its ``count`` parameter. One key per text
keeps both files' keys the same while Arabic has six forms and English two.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from starlette.requests import Request

from infra_mgr.web.assets import web_dir

LANGS: tuple[str, ...] = ("en", "ar")
DEFAULT_LANG = "en"
RTL_LANGS = frozenset({"ar"})
COOKIE = "lang"
PLURAL_SEP = "|"
# The CLDR plural categories each language's forms are written in, in this order.
PLURAL_CATEGORIES: dict[str, tuple[str, ...]] = {
    "en": ("one", "other"),
    "ar": ("zero", "one", "two", "few", "many", "other"),
}


def plural_category(lang: str, n: int) -> str:
    """The CLDR plural category of the whole number ``n`` in ``lang`` (Unicode CLDR, Language
    Plural Rules, cardinal). English: ``one`` for 1, else ``other``. Arabic: ``zero`` for 0,
    ``one`` for 1, ``two`` for 2, ``few`` when n % 100 is 3..10, ``many`` when n % 100 is 11..99,
    else ``other`` (100, 101, 102, ...)."""
    n = abs(n)
    if lang == "ar":
        if n in (0, 1, 2):
            return ("zero", "one", "two")[n]
        if 3 <= n % 100 <= 10:
            return "few"
        if 11 <= n % 100 <= 99:
            return "many"
        return "other"
    return "one" if n == 1 else "other"


def plural_form(text: str, lang: str, count: Any) -> str:
    """The form of a ``|``-separated plural text for ``count`` (a text without ``|``, or a count
    that is not a whole number, gives the text as it is, or its last form: ``other``)."""
    if PLURAL_SEP not in text:
        return text
    forms = text.split(PLURAL_SEP)
    try:
        n = int(count)
    except (TypeError, ValueError):
        return forms[-1]
    if n != count and not (isinstance(count, str) and count.strip().lstrip("-").isdigit()):
        return forms[-1]
    categories = PLURAL_CATEGORIES.get(lang, PLURAL_CATEGORIES[DEFAULT_LANG])
    category = plural_category(lang, n)
    index = categories.index(category) if category in categories else len(forms) - 1
    return forms[index] if index < len(forms) else forms[-1]


@lru_cache(maxsize=len(LANGS))
def catalog(lang: str) -> dict[str, str]:
    """The strings of one language, read once per process."""
    path = web_dir("i18n") / f"{lang}.json"
    data: Any = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected an object of key: string")
    return {str(k): str(v) for k, v in data.items()}


class Translator:
    """``t("nav.sites")`` in templates; ``t("sites.showing", start=1, end=10, total=42)`` fills ``{start}``."""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGS else DEFAULT_LANG
        self._strings = catalog(self.lang)
        self._fallback = catalog(DEFAULT_LANG)

    def __call__(self, key: str, **params: Any) -> str:
        own = self._strings.get(key)
        text = own or self._fallback.get(key) or key
        if PLURAL_SEP in text:  # written in the forms of the language it came from
            text = plural_form(text, self.lang if own else DEFAULT_LANG, params.get("count"))
        if params:
            try:
                return text.format_map(params)
            except (KeyError, IndexError, ValueError):
                return text
        return text

    def has(self, key: str) -> bool:
        return key in self._strings or key in self._fallback

    @property
    def dir(self) -> str:
        return "rtl" if self.lang in RTL_LANGS else "ltr"


def requested_lang(request: Request) -> str | None:
    """The language named in ``?lang=`` if it is one we have (it should then be remembered)."""
    value = request.query_params.get("lang", "").strip().lower()
    return value if value in LANGS else None


def pick_lang(request: Request) -> str:
    """``?lang=`` first, then the ``lang`` cookie, then the browser's preference, then English."""
    chosen = requested_lang(request)
    if chosen:
        return chosen
    cookie = request.cookies.get(COOKIE, "")
    if cookie in LANGS:
        return cookie
    for part in request.headers.get("accept-language", "").split(","):
        tag = part.split(";", 1)[0].strip().lower().split("-", 1)[0]
        if tag in LANGS:
            return tag
    return DEFAULT_LANG
