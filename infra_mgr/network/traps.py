"""SNMP trap and inform receiver (collector side): notifications in, plain :class:`TrapFacts` out.

A poll every few minutes is too slow to notice a UPS going on battery or an uplink going down;
devices *push* those as notifications. This module listens for them with **pysnmp** (see the
architecture notes: pysnmp serves the receiver, gufo-snmp the polling hot path) and hands each one
to a caller-supplied sink as a dataclass. It knows nothing of the database: turning facts into
events is ``trap_service``'s job.

What it accepts:

* SNMPv1 traps and SNMPv2c traps/informs whose community is one of ``ReceiverConfig.communities``;
* SNMPv3 traps/informs from ``ReceiverConfig.users`` (MD5/SHA/SHA-2 auth, DES/AES priv), at no
  lower a security level than the user is configured for.

Informs are acknowledged by pysnmp *before* the sink runs, so a slow or failing sink never makes a
sender retransmit. Everything else — garbage, wrong community, wrong keys, unknown users, requests
that are not notifications — is dropped and counted by reason in :class:`ReceiverStats`; nothing a
peer sends can stop the receiver.

**SNMPv3 trap engine IDs.** For a *trap*, the sender is the authoritative engine, so its keys are
localised to the sender's engine ID and pysnmp only accepts users registered under that exact ID
(pysnmp issues #333/#407: "works only when I give securityEngineId"). An estate of hundreds of
devices makes listing every engine ID impractical, so by default the receiver *learns* them: when
a v3 message names a configured user under an engine ID not seen before, the user is registered
for that engine ID (keys localised from the pre-hashed master keys: cheap) before pysnmp
processes the message, and removed again if that message does not authenticate. Only engine IDs
that proved the keys stay, and their number is capped. Explicit ``V3User.engine_ids`` are always
registered. For *informs* the receiver is authoritative and senders discover our engine ID.

Why one file of ~650 lines: it is the whole receiver around pysnmp's engine (transport, v1/v2c/v3
authentication, inform replies, decoding); its parts only make sense together and nothing else
uses them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import logging
import socket
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pyasn1.codec.ber import decoder as ber_decoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import univ
from pysnmp.carrier.asyncio.dgram import udp, udp6
from pysnmp.entity import config as snmp_config
from pysnmp.entity.engine import SnmpEngine
from pysnmp.entity.rfc3413 import ntfrcv
from pysnmp.proto import rfc1902
from pysnmp.proto.api import v2c, verdec
from pysnmp.proto.mpmod.rfc3412 import SNMPv3Message
from pysnmp.proto.secmod.rfc3414.service import UsmSecurityParameters

from infra_mgr.snmp.target import SnmpVersionName

log = logging.getLogger("infra_mgr.network.traps")

DEFAULT_HOST = "0.0.0.0"
DEFAULT_PORT = 162

# Well-known varbinds every v2 notification (and every v1 trap after RFC 3584 translation) carries;
# they become TrapFacts fields instead of staying in ``varbinds``.
SYS_UPTIME_OID = "1.3.6.1.2.1.1.3.0"
SNMP_TRAP_OID = "1.3.6.1.6.3.1.1.4.1.0"
SNMP_TRAP_ADDRESS_OID = "1.3.6.1.6.3.18.1.3.0"  # v1 agent-addr
SNMP_TRAP_COMMUNITY_OID = "1.3.6.1.6.3.18.1.4.0"  # v1 community: a secret, never kept in varbinds
SNMP_TRAP_ENTERPRISE_OID = "1.3.6.1.6.3.1.1.4.3.0"  # v1 enterprise

# Protocol names as in ``SnmpTarget`` (facts.py). AES-192/256 are the Blumenthal key extension
# (net-snmp's AES192/AES256); the "-C" variants are the Reeder extension Cisco uses (net-snmp's
# AES192C/AES256C).
AUTH_PROTOCOLS: dict[str, tuple[int, ...]] = {
    "MD5": snmp_config.USM_AUTH_HMAC96_MD5,
    "SHA": snmp_config.USM_AUTH_HMAC96_SHA,
    "SHA-224": snmp_config.USM_AUTH_HMAC128_SHA224,
    "SHA-256": snmp_config.USM_AUTH_HMAC192_SHA256,
    "SHA-384": snmp_config.USM_AUTH_HMAC256_SHA384,
    "SHA-512": snmp_config.USM_AUTH_HMAC384_SHA512,
}
PRIV_PROTOCOLS: dict[str, tuple[int, ...]] = {
    "DES": snmp_config.USM_PRIV_CBC56_DES,
    "3DES": snmp_config.USM_PRIV_CBC168_3DES,
    "AES": snmp_config.USM_PRIV_CFB128_AES,
    "AES-128": snmp_config.USM_PRIV_CFB128_AES,
    "AES-192": snmp_config.USM_PRIV_CFB192_AES_BLUMENTHAL,
    "AES-256": snmp_config.USM_PRIV_CFB256_AES_BLUMENTHAL,
    "AES-192-C": snmp_config.USM_PRIV_CFB192_AES,
    "AES-256-C": snmp_config.USM_PRIV_CFB256_AES,
}
SECURITY_LEVELS = {1: "noAuthNoPriv", 2: "authNoPriv", 3: "authPriv"}


def _protocol(table: dict[str, tuple[int, ...]], name: str) -> tuple[int, ...] | None:
    """Look a protocol up by name, spelled as here ("SHA-256", "AES-192-C") or as net-snmp's
    options spell it ("SHA256", "AES192C"): case, dashes and underscores do not matter."""
    def norm(text: str) -> str:
        return text.upper().replace("-", "").replace("_", "")

    wanted = norm(name)
    return next((oid for key, oid in table.items() if norm(key) == wanted), None)

# pysnmp's own statistics counters (RFC 3418 / 3412 / 3414), read around each datagram to name why
# it was dropped. Several counters can map to one reason.
_DROP_COUNTERS: tuple[tuple[str, str, str], ...] = (
    ("__SNMPv2-MIB", "snmpInASNParseErrs", "parse_error"),
    ("__SNMPv2-MIB", "snmpInBadVersions", "bad_version"),
    ("__SNMPv2-MIB", "snmpInBadCommunityNames", "bad_community"),
    ("__SNMPv2-MIB", "snmpInBadCommunityUses", "bad_community"),
    ("__SNMPv2-MIB", "snmpSilentDrops", "silent_drop"),
    ("__SNMP-MPD-MIB", "snmpUnknownSecurityModels", "unknown_security_model"),
    ("__SNMP-MPD-MIB", "snmpInvalidMsgs", "invalid_message"),
    ("__SNMP-MPD-MIB", "snmpUnknownPDUHandlers", "not_a_notification"),
    ("__SNMP-USER-BASED-SM-MIB", "usmStatsUnsupportedSecLevels", "insufficient_security"),
    ("__SNMP-USER-BASED-SM-MIB", "usmStatsNotInTimeWindows", "not_in_time_window"),
    ("__SNMP-USER-BASED-SM-MIB", "usmStatsUnknownUserNames", "unknown_user"),
    ("__SNMP-USER-BASED-SM-MIB", "usmStatsUnknownEngineIDs", "unknown_engine"),
    ("__SNMP-USER-BASED-SM-MIB", "usmStatsWrongDigests", "wrong_digest"),
    ("__SNMP-USER-BASED-SM-MIB", "usmStatsDecryptionErrors", "decryption_error"),
)

PduType = Literal["trap", "inform"]
TrapSink = Callable[["TrapFacts"], None]


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class V3User:
    """An SNMPv3 user notifications may come from. Keys stay out of reprs and logs.

    ``engine_ids`` (hex, with or without ``0x``) registers the user for senders whose engine ID is
    known in advance; with learning enabled they are optional.
    """

    name: str
    auth_proto: str | None = "SHA-256"
    auth_key: str = field(default="", repr=False)
    priv_proto: str | None = "AES"
    priv_key: str = field(default="", repr=False)
    engine_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a v3 user needs a name")
        if self.auth_proto is not None and _protocol(AUTH_PROTOCOLS, self.auth_proto) is None:
            raise ValueError(f"unknown auth protocol {self.auth_proto!r} (one of {', '.join(AUTH_PROTOCOLS)})")
        if self.priv_proto is not None and _protocol(PRIV_PROTOCOLS, self.priv_proto) is None:
            raise ValueError(f"unknown privacy protocol {self.priv_proto!r} (one of {', '.join(PRIV_PROTOCOLS)})")
        if self.priv_proto is not None and self.auth_proto is None:
            raise ValueError("privacy without authentication is not a USM security level")
        # RFC 3414 §11.2: pass phrases shorter than 8 octets are refused (net-snmp refuses them too).
        for proto, key, what in ((self.auth_proto, self.auth_key, "auth"), (self.priv_proto, self.priv_key, "priv")):
            if proto is not None and len(key.encode()) < 8:
                raise ValueError(f"v3 user {self.name!r}: the {what} key must be at least 8 characters")
        for eid in self.engine_ids:
            _engine_id_bytes(eid)

    @property
    def security_level(self) -> int:
        """The lowest level accepted from this user: 3 authPriv, 2 authNoPriv, 1 noAuthNoPriv."""
        if self.priv_proto is not None:
            return 3
        return 2 if self.auth_proto is not None else 1

    @property
    def auth_id(self) -> tuple[int, ...]:
        """pysnmp's identifier of the auth protocol (validated in ``__post_init__``)."""
        found = _protocol(AUTH_PROTOCOLS, self.auth_proto) if self.auth_proto else None
        return found or snmp_config.USM_AUTH_NONE

    @property
    def priv_id(self) -> tuple[int, ...]:
        """pysnmp's identifier of the privacy protocol (validated in ``__post_init__``)."""
        found = _protocol(PRIV_PROTOCOLS, self.priv_proto) if self.priv_proto else None
        return found or snmp_config.USM_PRIV_NONE


@dataclass(frozen=True)
class ReceiverConfig:
    """Where to listen and whom to believe. Communities and users come from the caller (later from
    stored credentials); with neither, nothing is accepted."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT  # 0 picks a free port (see ``TrapReceiver.address``)
    communities: tuple[str, ...] = field(default=(), repr=False)
    users: tuple[V3User, ...] = ()
    engine_id: str | None = None  # our own engine ID (hex); pysnmp generates one when unset
    learn_engine_ids: bool = True
    max_learned_engine_ids: int = 10_000
    receive_buffer_bytes: int = 4 * 1024 * 1024  # absorbs a trap storm while the loop is busy


# --------------------------------------------------------------------------- facts


@dataclass
class TrapFacts:
    """One accepted notification, in plain Python values.

    ``varbinds`` maps dotted OIDs to values: ``int`` for numbers, ``str`` for text (UTF-8, Arabic
    included), OIDs and IP addresses, ``bytes`` for octet strings that are not valid UTF-8 text
    (MAC addresses, Latin-1 …: kept exactly), ``None`` for empty/exception values. sysUpTime.0,
    snmpTrapOID.0 and the v1 translation varbinds are lifted into fields; the v1 community
    varbind is dropped (it is a secret).
    """

    source_address: str
    source_port: int
    received_at: dt.datetime
    version: SnmpVersionName
    pdu_type: PduType
    trap_oid: str
    uptime_s: float | None = None
    varbinds: dict[str, Any] = field(default_factory=dict)
    community: str | None = field(default=None, repr=False)
    user: str | None = None
    security_level: str | None = None  # v3 only
    engine_id: str | None = None  # v3: the sender's authoritative engine ID (hex) for traps, ours for informs
    agent_address: str | None = None  # v1: the agent-addr field (the device, when a proxy relays)
    enterprise: str | None = None  # v1: the enterprise OID

    def to_json(self) -> dict[str, Any]:
        """JSON-safe form (bytes as ``0x…`` hex); the community is left out on purpose."""
        return {
            "source_address": self.source_address,
            "source_port": self.source_port,
            "received_at": self.received_at.isoformat(),
            "version": self.version,
            "pdu_type": self.pdu_type,
            "trap_oid": self.trap_oid,
            "uptime_s": self.uptime_s,
            "user": self.user,
            "security_level": self.security_level,
            "engine_id": self.engine_id,
            "agent_address": self.agent_address,
            "enterprise": self.enterprise,
            "varbinds": {oid: json_value(v) for oid, v in self.varbinds.items()},
        }


@dataclass
class ReceiverStats:
    """What the receiver saw since it started. ``dropped`` is keyed by reason."""

    datagrams: int = 0
    notifications: int = 0
    informs: int = 0
    discovery_probes: int = 0  # SNMPv3 engine-ID discovery before an inform: answered, not a drop
    learned_engine_ids: int = 0
    dropped: Counter[str] = field(default_factory=Counter)

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    def to_json(self) -> dict[str, Any]:
        return {"datagrams": self.datagrams, "notifications": self.notifications, "informs": self.informs,
                "discovery_probes": self.discovery_probes, "learned_engine_ids": self.learned_engine_ids,
                "dropped": dict(self.dropped), "dropped_total": self.dropped_total}


# --------------------------------------------------------------------------- value conversion


def decode_text(raw: bytes) -> str | bytes:
    """``raw`` as text when it is UTF-8 without control characters, else the bytes unchanged.

    Interface aliases and locations are often Arabic UTF-8 and must survive byte for byte; binary
    octet strings (MACs, bitmaps) and legacy encodings must not crash anything or be silently
    mangled by a replacement character, so they stay bytes. One trailing NUL (C-string habit of
    some agents) is ignored.
    """
    body = raw[:-1] if raw.endswith(b"\x00") else raw
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return raw
    if any(unicodedata.category(ch) == "Cc" and ch not in "\t\r\n" for ch in text):
        return raw
    return text


def python_value(value: Any) -> Any:
    """A pysnmp/pyasn1 value as a plain Python value (see :class:`TrapFacts`)."""
    try:
        # By tag, not class: v1 PDUs carry RFC 1155 IpAddress/Opaque classes with the same tags.
        if isinstance(value, univ.OctetString) and value.tagSet == rfc1902.IpAddress.tagSet:
            return str(ipaddress.IPv4Address(bytes(value)))
        if isinstance(value, univ.OctetString) and value.tagSet == rfc1902.Opaque.tagSet:
            return bytes(value)
        if isinstance(value, univ.OctetString):
            return decode_text(bytes(value))
        if isinstance(value, univ.Integer):
            return int(value)
        if isinstance(value, univ.ObjectIdentifier):
            return str(value)
        if isinstance(value, univ.Null):  # also noSuchObject / noSuchInstance / endOfMibView
            return None
    except (PyAsn1Error, ValueError, TypeError):
        return None
    try:
        return value.prettyPrint()
    except Exception:  # noqa: BLE001 - an exotic value must not cost us the notification
        return None


def json_value(value: Any) -> Any:
    """``python_value`` output made JSON-safe: bytes become ``0x`` + hex."""
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    return value


def _engine_id_bytes(hex_id: str) -> bytes:
    text = hex_id.strip().lower().removeprefix("0x").replace(":", "").replace(" ", "")
    try:
        raw = bytes.fromhex(text)
    except ValueError as exc:
        raise ValueError(f"engine ID {hex_id!r} is not hex") from exc
    if not 5 <= len(raw) <= 32:
        raise ValueError(f"engine ID {hex_id!r} must be 5 to 32 octets (RFC 3411)")
    return raw


def _normalise_address(host: str) -> str:
    """Canonical text of a source address (IPv4-mapped IPv6 shown as IPv4, as devices are stored)."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


# --------------------------------------------------------------------------- receiver


@dataclass
class _UserKeys:
    user: V3User
    master_auth: bytes | None
    master_priv: bytes | None


class TrapReceiver:
    """A pysnmp notification receiver on one UDP socket, feeding :class:`TrapFacts` to ``sink``.

    ``sink`` is called in the event loop for each accepted notification and must not block (put
    the facts on a queue). Use as ``async with TrapReceiver(cfg, sink) as rx: ...`` or call
    :meth:`start` / :meth:`stop`.
    """

    def __init__(self, config: ReceiverConfig, sink: TrapSink) -> None:
        self.config = config
        self.stats = ReceiverStats()
        self._sink = sink
        self._engine: SnmpEngine | None = None
        self._receiver: ntfrcv.NotificationReceiver | None = None
        self._transport: Any = None
        self._domain: tuple[int, ...] = udp.DOMAIN_NAME
        self._address: tuple[str, int] | None = None
        self._communities: dict[str, str] = {}  # pysnmp community index -> community
        self._users: dict[bytes, _UserKeys] = {}
        self._registered: set[tuple[bytes, bytes]] = set()  # (engine ID, user) in pysnmp's USM table
        self._learned: set[tuple[bytes, bytes]] = set()
        self._counters: list[tuple[str, Any]] = []
        self._local_engine_id = b""
        # Per-datagram scratch, reset in _on_datagram (pysnmp processes one datagram at a time).
        self._accepted = False
        self._verdict: str | None = None
        self._usm_engine_id: bytes | None = None

    # ..................................................................... lifecycle

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port), the real port when 0 was asked for."""
        if self._address is None:
            raise RuntimeError("the receiver is not started")
        return self._address

    async def __aenter__(self) -> TrapReceiver:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Bind the socket (errors such as "port in use" raise here, not later) and start pysnmp."""
        if self._engine is not None:
            raise RuntimeError("the receiver is already started")
        cfg = self.config
        family = socket.AF_INET6 if ":" in cfg.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, cfg.receive_buffer_bytes)
            sock.bind((cfg.host, cfg.port))
            sock.setblocking(False)
            engine_id = v2c.OctetString(_engine_id_bytes(cfg.engine_id)) if cfg.engine_id else None
            engine = SnmpEngine(snmpEngineID=engine_id) if engine_id is not None else SnmpEngine()
        except BaseException:
            sock.close()
            raise
        self._engine = engine
        self._local_engine_id = bytes(engine.snmpEngineID)
        self._address = sock.getsockname()[:2]

        try:
            self._configure(engine, sock, family)
        except BaseException:
            await self.stop()
            sock.close()
            raise
        # The endpoint is created by a task pysnmp scheduled; wait for it so "started" means listening.
        for _ in range(500):
            if getattr(self._transport, "transport", None) is not None:
                break
            await asyncio.sleep(0.002)
        log.info("trap receiver listening on %s:%s", *self._address)

    def _configure(self, engine: SnmpEngine, sock: socket.socket, family: int) -> None:
        """Wire pysnmp onto the bound socket: transport, our datagram hook, communities, users."""
        cfg = self.config
        # Our socket, bound above, so the port is known now and bind errors surfaced synchronously.
        transport_cls = udp6.Udp6AsyncioTransport if family == socket.AF_INET6 else udp.UdpAsyncioTransport
        self._domain = udp6.DOMAIN_NAME if family == socket.AF_INET6 else udp.DOMAIN_NAME
        self._transport = transport_cls(loop=asyncio.get_running_loop()).open_server_mode(sock=sock)
        snmp_config.add_transport(engine, self._domain, self._transport)
        # Put our wrapper between the socket and pysnmp's message dispatcher: it counts, names the
        # drop reason, learns v3 engine IDs, and makes sure no datagram can raise into the loop.
        dispatcher = engine.transport_dispatcher
        dispatcher.unregister_recv_callback()
        dispatcher.register_recv_callback(self._on_datagram)

        for i, community in enumerate(dict.fromkeys(cfg.communities)):
            index = f"c{i}"
            snmp_config.add_v1_system(engine, index, community)
            self._communities[index] = community
        for user in cfg.users:
            self._add_user(user)

        engine.observer.register_observer(self._on_usm_message, "rfc3414.processIncomingMsg")
        self._receiver = ntfrcv.NotificationReceiver(engine, self._on_notification)
        builder = engine.get_mib_builder()
        for module, name, reason in _DROP_COUNTERS:
            (node,) = builder.import_symbols(module, name)
            self._counters.append((reason, node))

    async def stop(self) -> None:
        """Close the socket and release pysnmp's dispatcher (idempotent)."""
        engine, self._engine = self._engine, None
        if engine is None:
            return
        if self._receiver is not None:
            self._receiver.close(engine)
            self._receiver = None
        with contextlib.suppress(Exception):
            engine.observer.unregister_observer(self._on_usm_message)
        with contextlib.suppress(Exception):
            engine.close_dispatcher()  # closes the transport (and our socket), cancels pysnmp's timer
        await asyncio.sleep(0)  # let the transport's close callbacks run
        log.info("trap receiver on %s:%s stopped", *(self._address or ("?", 0)))

    # ..................................................................... v3 users

    def _add_user(self, user: V3User) -> None:
        assert self._engine is not None
        name = user.name.encode()
        auth_service = snmp_config.AUTH_SERVICES[user.auth_id]
        priv_service = snmp_config.PRIV_SERVICES[user.priv_id]
        master_auth = bytes(auth_service.hash_passphrase(user.auth_key.encode())) if user.auth_proto else None
        master_priv = (bytes(priv_service.hash_passphrase(user.auth_id, user.priv_key.encode()))
                       if user.priv_proto else None)
        keys = _UserKeys(user, master_auth, master_priv)
        self._users[name] = keys
        # Under our own engine ID: informs (we are authoritative). Then every engine ID given.
        self._register(keys, self._local_engine_id)
        for eid in user.engine_ids:
            self._register(keys, _engine_id_bytes(eid))

    def _register(self, keys: _UserKeys, engine_id: bytes) -> None:
        """Add the user to pysnmp's USM table for ``engine_id``, localising from the master keys
        (one hash, not the 1 MB pass-phrase expansion, so learning stays cheap)."""
        assert self._engine is not None
        snmp_config.add_v3_user(
            self._engine, keys.user.name,
            keys.user.auth_id, keys.master_auth,
            keys.user.priv_id, keys.master_priv,
            securityEngineId=v2c.OctetString(engine_id),
            authKeyType=snmp_config.USM_KEY_TYPE_MASTER,
            privKeyType=snmp_config.USM_KEY_TYPE_MASTER,
        )
        self._registered.add((engine_id, keys.user.name.encode()))

    def _maybe_learn(self, message: bytes) -> tuple[bytes, bytes] | None:
        """Register a configured user under a new sender engine ID named in a v3 message header."""
        try:
            if int(verdec.decode_message_version(message)) != 3:
                return None
            msg, _ = ber_decoder.decode(message, asn1Spec=SNMPv3Message())
            if int(msg["msgGlobalData"]["msgSecurityModel"]) != 3:
                return None
            flags = bytes(msg["msgGlobalData"]["msgFlags"])[:1]
            params, _ = ber_decoder.decode(bytes(msg["msgSecurityParameters"]), asn1Spec=UsmSecurityParameters())
            engine_id = bytes(params["msgAuthoritativeEngineId"])
            user = bytes(params["msgUserName"])
        except Exception:  # noqa: BLE001 - malformed: pysnmp will count it as such
            return None
        if not engine_id and not user:
            self._verdict = "discovery"
            return None
        keys = self._users.get(user)
        if keys is None or not 5 <= len(engine_id) <= 32 or (engine_id, user) in self._registered:
            return None
        if keys.master_auth is not None:
            # Check the digest ourselves before touching pysnmp's USM table: registering a user
            # costs milliseconds of MIB writes, a digest microseconds, so forged messages under
            # made-up engine IDs stay cheap to refuse.
            if not flags or not flags[0] & 0x01:
                self._verdict = "insufficient_security"
                return None
            service = snmp_config.AUTH_SERVICES[keys.user.auth_id]
            try:
                local_key = service.localize_key(univ.OctetString(keys.master_auth), univ.OctetString(engine_id))
                service.authenticate_incoming_message(local_key, params["msgAuthenticationParameters"], message)
            except Exception:  # noqa: BLE001 - pysnmp signals a bad digest with StatusInformation
                self._verdict = "wrong_digest"
                return None
        if len(self._learned) >= self.config.max_learned_engine_ids:
            self._verdict = "engine_id_limit"
            return None
        self._register(keys, engine_id)
        self._learned.add((engine_id, user))
        return engine_id, user

    def _forget(self, pair: tuple[bytes, bytes]) -> None:
        engine_id, user = pair
        self._learned.discard(pair)
        self._registered.discard(pair)
        if self._engine is not None:
            with contextlib.suppress(Exception):
                snmp_config.delete_v3_user(self._engine, user.decode(), securityEngineId=v2c.OctetString(engine_id))

    # ..................................................................... per datagram

    def _on_datagram(self, dispatcher: Any, domain: tuple[int, ...], address: Any, message: bytes) -> None:
        """Every datagram passes here: count it, run pysnmp on it, name the reason if dropped."""
        engine = self._engine
        if engine is None:
            return
        self.stats.datagrams += 1
        self._accepted = False
        self._verdict = None
        self._usm_engine_id = None
        before = [int(node.syntax) for _, node in self._counters]
        learned = None
        try:
            if self._users and self.config.learn_engine_ids:
                learned = self._maybe_learn(message)
            if self._verdict is None or self._verdict == "discovery":  # else already refused: spare pysnmp
                engine.message_dispatcher.receive_message(engine, domain, address, message)
        except Exception:  # noqa: BLE001 - a peer must never be able to raise into the loop
            log.debug("trap receiver: datagram from %s raised in pysnmp", address, exc_info=True)
            self._verdict = self._verdict or "error"
        if self._accepted:
            if learned is not None:
                self.stats.learned_engine_ids = len(self._learned)
            return
        if learned is not None:
            self._forget(learned)  # only engine IDs that proved the keys stay registered
        reason = self._verdict
        if reason is None:
            after = [int(node.syntax) for _, node in self._counters]
            reason = next((r for (r, _), b, a in zip(self._counters, before, after, strict=True) if a > b), "other")
        if reason == "discovery":
            self.stats.discovery_probes += 1
            return
        self.stats.dropped[reason] += 1
        log.debug("trap receiver: dropped datagram from %s (%s)", address, reason)

    def _on_usm_message(self, engine: SnmpEngine, execpoint: str, variables: dict[str, Any], ctx: Any) -> None:
        self._usm_engine_id = bytes(variables.get("securityEngineId") or b"")

    def _on_notification(self, engine: SnmpEngine, state_reference: Any, context_engine_id: Any,
                         context_name: Any, var_binds: Any, cb_ctx: Any) -> None:
        """pysnmp accepted (and, for informs, already acknowledged) a notification."""
        try:
            facts = self._facts(engine, var_binds)
        except Exception:  # noqa: BLE001
            log.warning("trap receiver: could not read an accepted notification", exc_info=True)
            self._verdict = "decode_error"
            return
        if facts is None:
            return
        self._accepted = True
        self.stats.notifications += 1
        if facts.pdu_type == "inform":
            self.stats.informs += 1
        try:
            self._sink(facts)
        except Exception:  # noqa: BLE001 - the sink's failure is the sink's; keep receiving
            log.exception("trap receiver: sink failed for a notification from %s", facts.source_address)

    def _facts(self, engine: SnmpEngine, var_binds: Any) -> TrapFacts | None:
        ctx = engine.observer.get_execution_context("rfc3412.receiveMessage:request")
        model = int(ctx["messageProcessingModel"])
        level = int(ctx["securityLevel"])
        security_name = bytes(ctx["securityName"]).decode("utf-8", "replace")
        pdu = ctx["pdu"]
        address = ctx["transportAddress"]
        versions: dict[int, SnmpVersionName] = {0: "1", 1: "2c"}
        version = versions.get(model, "3")

        community = user = level_name = engine_hex = None
        if version == "3":
            keys = self._users.get(security_name.encode())
            if keys is None or level < keys.user.security_level:
                # pysnmp checks the level only where it is authoritative (informs); for traps a
                # message below the user's level (e.g. unauthenticated under an authPriv user's
                # name) is refused here, as RFC 3414 §3.2.5 asks.
                self._verdict = "insufficient_security"
                return None
            user = security_name
            level_name = SECURITY_LEVELS.get(level)
            engine_hex = "0x" + (self._usm_engine_id or bytes(ctx["contextEngineId"])).hex()
        else:
            community = self._communities.get(security_name, security_name)

        trap_oid = ""
        uptime: float | None = None
        agent_address = enterprise = None
        values: dict[str, Any] = {}
        for oid, value in var_binds:
            key = str(oid)
            if key == SYS_UPTIME_OID:
                ticks = python_value(value)
                uptime = ticks / 100.0 if isinstance(ticks, int) else None
            elif key == SNMP_TRAP_OID:
                trap_oid = str(python_value(value) or "")
            elif key == SNMP_TRAP_COMMUNITY_OID:
                continue
            elif key == SNMP_TRAP_ADDRESS_OID:
                agent_address = python_value(value)
            elif key == SNMP_TRAP_ENTERPRISE_OID:
                enterprise = python_value(value)
            else:
                values[key] = python_value(value)

        host, port = address[0], address[1]
        return TrapFacts(
            source_address=_normalise_address(str(host)),
            source_port=int(port),
            received_at=dt.datetime.now(dt.UTC),
            version=version,
            pdu_type="inform" if pdu.tagSet == v2c.InformRequestPDU.tagSet else "trap",
            trap_oid=trap_oid,
            uptime_s=uptime,
            varbinds=values,
            community=community,
            user=user,
            security_level=level_name,
            engine_id=engine_hex,
            agent_address=agent_address if isinstance(agent_address, str) and agent_address != "0.0.0.0" else None,
            enterprise=enterprise if isinstance(enterprise, str) else None,
        )
