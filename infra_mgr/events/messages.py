"""An event's sentence in the reader's language, made from its kind and its data.

A stored event keeps its ``kind`` and ``data`` (and an English ``message`` for the API, logs and
scripts); a page renders the sentence in the viewer's language from a template of the i18n
catalogue, ``event.msg.<kind>``, whose ``{placeholders}`` name keys of the event's data, plus
``device`` (the hostname of the event's device). The events domain decides which template a
kind uses and where its words come from; the catalogue holds the words. An event whose kind has
no template, or whose data lacks a placeholder's value (older rows, an integration's own kinds),
shows its stored message: a sentence is never rendered with a hole in it.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any, Protocol

TEMPLATE_PREFIX = "event.msg."
MAX_PARAM_CHARS = 200


class Strings(Protocol):
    """The catalogue of one language (``infra_mgr.web.i18n.Translator`` is one)."""

    def __call__(self, key: str, **params: Any) -> str: ...

    def has(self, key: str) -> bool: ...


def template_key(kind: str, data: Mapping[str, Any]) -> str:
    """The catalogue key of a kind's sentence; a few kinds say two things (a neighbour found or gone)."""
    if kind == "neighbor.changed" and data.get("gone"):
        return f"{TEMPLATE_PREFIX}neighbor.gone"
    return f"{TEMPLATE_PREFIX}{kind}"


def _fields(text: str) -> list[str]:
    try:
        return [name for _, name, _, _ in string.Formatter().parse(text) if name]
    except ValueError:
        return ["\0"]  # a malformed template: never used


def _value(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list) or value == "":
        return None
    return str(value)[:MAX_PARAM_CHARS]


def render(strings: Strings, kind: str, data: Mapping[str, Any] | None, message: str,
           hostname: str | None = None) -> str:
    """The event's sentence in the catalogue's language, else its stored message."""
    data = data if isinstance(data, Mapping) else {}
    key = template_key(kind, data)
    if not strings.has(key):
        return message
    values = {k: v for k, raw in data.items() if isinstance(k, str) and (v := _value(raw)) is not None}
    if hostname:
        values["device"] = hostname
    if "power_device" in values:
        values.setdefault("device", values["power_device"])
    needed = _fields(strings(key))
    if not all(name in values for name in needed):
        return message
    return strings(key, **{name: values[name] for name in needed})
