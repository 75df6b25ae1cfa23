"""The secret part of a power device's source URL, kept apart from the URL.

A source URL may carry a secret in its userinfo: the SNMP community (``snmp://COMMUNITY@host``)
or a NUT password (``nut://user:PASS@host/ups``). The ``source`` column keeps the URL with that
part replaced by ``***`` (what every reader sees: API, dashboard, CLI, audit log), and the secret
itself is encrypted under the master key in ``source_secret``. Only the poller joins the two
again, in memory, when it connects.

Sending the masked URL back (a PATCH that repeats what a GET returned) keeps the stored secret,
but only for the very address it was stored with: a masked URL pointing elsewhere is refused.
"""

from __future__ import annotations

from infra_mgr.auth.crypto import SecretDecryptError, decrypt_secret, encrypt_secret
from infra_mgr.url_secrets import MASK, join_source, split_source


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
