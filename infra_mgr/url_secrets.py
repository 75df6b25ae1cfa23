"""Secrets inside URLs: the one rule every part of the service uses to find and mask them.

A URL may carry a secret in its userinfo (``snmp://COMMUNITY@host``, ``nut://user:PASS@host/ups``)
or in a query parameter named like one (``?password=``). The userinfo ends at the *last* ``@`` of
the authority, so a password that itself holds an ``@`` is masked whole. The power domain stores
source URLs split by this rule, and the audit log masks every URL it records with it: one rule, so
nothing the one hides can leak through the other.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode

MASK = "***"
# A query parameter whose name looks like this carries a secret: a source URL may not hold one
# (it would be stored and shown in clear), and any URL shown or audited has its value masked.
SECRET_PARAM = re.compile(r"pass|pwd|secret|token|community|key|auth|priv|credential", re.IGNORECASE)
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s\"'<>]*")


def _userinfo(url: str) -> tuple[str, str, str, str] | None:
    """(scheme://, userinfo, @host…rest) of a URL whose authority has a userinfo; None otherwise."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return None
    end = len(rest)
    for ch in "/?#":
        pos = rest.find(ch)
        if pos != -1:
            end = min(end, pos)
    authority, tail = rest[:end], rest[end:]
    if "@" not in authority:
        return None
    userinfo, _, hostport = authority.rpartition("@")
    return scheme.lower(), f"{scheme}://", userinfo, f"@{hostport}{tail}"


def split_source(url: str) -> tuple[str, str | None]:
    """(the URL with its secret masked, the secret). The secret is None when the URL carries none,
    and :data:`MASK` when the URL was already masked (the caller keeps what it stored)."""
    parts = _userinfo(url)
    if parts is None:
        return url, None
    scheme, prefix, userinfo, tail = parts
    if scheme == "snmp":  # the whole userinfo is the community (it may itself hold a colon)
        return (f"{prefix}{MASK}{tail}", userinfo) if userinfo else (url, None)
    user, colon, password = userinfo.partition(":")
    if not colon:
        return url, None
    return f"{prefix}{user}:{MASK}{tail}", password


def secret_params(url: str) -> list[str]:
    """Names of the secret-looking query parameters of ``url`` (``?community=``, ``?password=``)."""
    _, _, query = url.partition("?")
    query = query.partition("#")[0]
    return [k for k, _ in parse_qsl(query, keep_blank_values=True) if SECRET_PARAM.search(k)]


def _mask_query(url: str) -> str:
    head, sep, query = url.partition("?")
    if not sep or not secret_params(url):
        return url
    query, hash_, fragment = query.partition("#")
    pairs = [(k, MASK if SECRET_PARAM.search(k) else v) for k, v in parse_qsl(query, keep_blank_values=True)]
    return f"{head}?{urlencode(pairs, safe='*:/@,')}{hash_}{fragment}"


def mask_source(url: str) -> str:
    """The URL as any reader may see it: userinfo secret and secret query values masked."""
    return _mask_query(split_source(url)[0])


def mask_any_url(url: str) -> str:
    """Any URL, whatever its scheme, as a log may keep it. The userinfo is split as
    :func:`split_source` splits it (at the *last* ``@`` of the authority, so a secret holding
    ``@`` is masked whole): a user name before a colon stays, everything else in it is masked;
    for ``snmp`` the whole userinfo is the community."""
    parts = _userinfo(url)
    if parts is not None:
        scheme, prefix, userinfo, tail = parts
        user, colon, _ = userinfo.partition(":")
        url = f"{prefix}{user}:{MASK}{tail}" if colon and scheme != "snmp" else f"{prefix}{MASK}{tail}"
    return _mask_query(url)


def mask_urls_in_text(text: str) -> str:
    """Every URL inside free text masked by :func:`mask_any_url`."""
    return _URL_IN_TEXT.sub(lambda m: mask_any_url(m.group(0)), text) if "://" in text else text


def masked_elsewhere(url: str, stored: str) -> bool:
    """True when ``url`` sends the mask back (asking to keep the stored secret) but points
    anywhere else than ``stored`` does: scheme, user, host, port, path or query changed. The
    stored secret must never follow a URL to another address."""
    masked, secret = split_source(url)
    if secret != MASK:
        return False
    return masked != split_source(stored)[0]


def join_source(masked: str, secret: str) -> str:
    """Put the secret back where :func:`split_source` left the mask."""
    parts = _userinfo(masked)
    if parts is None or not secret:
        return masked
    scheme, prefix, userinfo, tail = parts
    if scheme == "snmp":
        return f"{prefix}{secret}{tail}" if userinfo == MASK else masked
    user, colon, password = userinfo.partition(":")
    return f"{prefix}{user}:{secret}{tail}" if colon and password == MASK else masked
