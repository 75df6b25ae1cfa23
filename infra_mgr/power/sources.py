"""The secret part of a power device's source URL, kept apart from the URL.

A source URL may carry a secret in its userinfo: the SNMP community (``snmp://COMMUNITY@host``)
or a NUT password (``nut://user:PASS@host/ups``). The ``source`` column keeps the URL with that
part replaced by ``***`` (what every reader sees: API, dashboard, CLI, audit log), and the secret
itself is encrypted under the master key in ``source_secret``. Only the poller joins the two
again, in memory, when it connects.

Sending the masked URL back (a PATCH that repeats what a GET returned) keeps the stored secret.
"""

from __future__ import annotations

from infra_mgr.auth.crypto import SecretDecryptError, decrypt_secret, encrypt_secret

MASK = "***"


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


def mask_source(url: str) -> str:
    """The URL as any reader may see it."""
    return split_source(url)[0]


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


def seal(master: bytes, secret: str) -> str:
    return encrypt_secret(master, {"secret": secret})


def full_source(master: bytes, source: str, sealed: str) -> str:
    """The URL a collector connects to: ``source`` with its stored secret put back. A secret the
    key cannot open leaves the URL masked: that device fails its reads (and says so), the others
    are still polled."""
    if not sealed:
        return source
    try:
        secret = str(decrypt_secret(master, sealed).get("secret", ""))
    except SecretDecryptError:
        return source
    return join_source(source, secret)


def store_source(master: bytes, url: str, sealed: str = "") -> tuple[str, str]:
    """(``source``, ``source_secret``) to store for ``url``; a masked ``url`` keeps ``sealed``."""
    masked, secret = split_source(url)
    if secret is None:
        return masked, ""
    if secret == MASK:
        return masked, sealed
    return masked, seal(master, secret)
