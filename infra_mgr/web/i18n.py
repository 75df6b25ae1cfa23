"""UI strings in English and Arabic, and which language a request wants.

Every visible string of the dashboard lives in ``web/i18n/<lang>.json`` (flat ``"section.key"``
names) so a translator edits data, not templates, and a unit test can prove both files carry the
same keys. A missing Arabic string falls back to English, then to the key itself: a gap shows up as
readable text instead of a crash.
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
        text = self._strings.get(key) or self._fallback.get(key) or key
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
