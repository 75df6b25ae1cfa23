"""The SSH collector: configuration backups and raw CLI reads, one session per device, on netmiko.

It returns plain facts (:mod:`infra_mgr.network.ssh.facts`) and never touches the database. Why it
is built the way it is:

* **Blocking library, bounded pool.** netmiko and paramiko block; :func:`backup` runs them in a
  thread pool of exactly ``concurrency`` threads (never the unbounded default executor), so a run
  over a city holds at most that many sessions open and a slow device only occupies its own slot.
* **Host key before password.** The TCP socket is opened here (directly or as a ``direct-tcpip``
  channel through the jump host) and handed to netmiko; the paramiko client netmiko builds gets the
  recorded key in an in-memory ``HostKeys`` (no file anywhere), and paramiko compares the key the
  server presents with it right after the key exchange and before any authentication, so no
  credential is ever sent to a server whose key changed. On first contact the presented key is
  recorded and returned. A jump host's key is checked the same way, before the jump credential
  is sent (``JumpHost.known_key``, returned as ``jump_key``). This costs nothing extra: it is the
  same handshake.
* **Reading without netmiko's reader.** netmiko logs everything it reads at DEBUG; the backup
  output is read from the paramiko channel directly, so no log level can write an unmasked
  configuration anywhere. Pager prompts (``--More--``) are answered and their artefacts removed
  here too, because a device that ignores the paging-off command is common in the field.
* **Masked before it exists as a result.** Volatile lines are dropped, the echo and prompt cut and
  the text masked with :func:`~infra_mgr.network.ssh.masking.mask` inside :func:`backup_one`; the
  unmasked string lives only in that function's locals. Error messages are sentences written here,
  never a library's exception text that could quote device output.
* **Every failure is a reason.** Each exception maps to one :class:`SshFailure` with words a person
  understands ("no prompt within 15 s after login"); :func:`backup_one` never raises, so one bad
  device never stops a run.
"""

from __future__ import annotations

import asyncio
import base64
import codecs
import contextlib
import errno
import inspect
import io
import logging
import re
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import paramiko
from netmiko import ConnectHandler
from netmiko import log as netmiko_log
from netmiko.exceptions import (
    NetmikoAuthenticationException,
    NetmikoTimeoutException,
    ReadException,
    ReadTimeout,
)

from infra_mgr.network.ssh.facts import BackupResult, HostKey, JumpHost, SshFailure, SshProblem, SshTarget
from infra_mgr.network.ssh.masking import mask
from infra_mgr.network.ssh.platforms import PlatformTable, SshPlatform, platform_table

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 16
MAX_PAGES = 5000  # a pager that keeps asking past this is not a configuration any more
MAX_OUTPUT_BYTES = 32 * 2**20  # one command's output beyond this is a device that never stops, not a config
_RECV = 65536

# Pager prompts a device may stop at (at the very end of what it sent): answered with a space.
_PAGER = re.compile(r"(?i)(?:-+ ?\(?more\b[^\n]*|<-+ ?more ?-+>[^\n]*|press any key to continue[^\n]*)$")
# A pager prompt a device printed and did not erase, at the start of a line (removed), and one
# anywhere else (the output cannot be trusted: fail with `paging`).
_PAGER_LEFT = re.compile(r"(?i)^[ \t]*-+ ?\(?more\b[^-\n]*-+\)?-*[ \t]?")
_PAGER_LINE = re.compile(r"(?i)-- ?\(?more\b[^\n]*--")
# Terminal escape sequences, all of them: a device's output is shown on operators' terminals and
# pages, and a kept OSC could retitle a window, plant a link or (on some terminals) write files.
# CSI (colours, cursor, erase), the string sequences OSC/DCS/SOS/PM/APC up to BEL or ST (or the
# line end, when a device never terminates one), and the short ESC sequences (charset, cursor
# save …); the 8-bit C1 forms too, since some terminals honour them.
_ANSI = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]"
)
# What is left after the sequences: every C0/C1 control but tab (and newline, which splits lines).
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# How CLIs say "I do not know that command", whatever the vendor: looked for in the first lines only.
_REJECTED = re.compile(
    r"(?im)^(?:\s*% ?(?:Invalid input|Unknown command|Incomplete command|Ambiguous command)"
    r"|\s*(?:syntax error|unknown command\.|bad command name|Invalid input:|error: unknown command)"
    r"|.*: command not found$)"
)

T = TypeVar("T")


class _Failed(Exception):
    """A classified failure inside one session; the message is ours, safe to show."""

    def __init__(self, kind: SshFailure, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass
class CliRead:
    """Raw outputs of one CLI session (by role), with the host keys seen (the jump host's in
    ``jump_key``, when there is one, also on a refusal). Not masked: discovery
    commands (``show version``, interfaces, neighbours) carry no secrets, and the parsers need
    the text as the device printed it."""

    address: str
    port: int
    device_type: str
    outputs: dict[str, str] = field(default_factory=dict)
    host_key: HostKey | None = None
    problem: SshProblem | None = None
    seconds: float = 0.0
    prompt: str = ""
    jump_key: HostKey | None = None


# --- keys -----------------------------------------------------------------------------------------


def host_key_of(key: paramiko.PKey) -> HostKey:
    return HostKey(key_type=key.get_name(), key_b64=key.get_base64())


def _pkey(key: HostKey) -> paramiko.PKey:
    return paramiko.PKey.from_type_string(key.key_type, base64.b64decode(key.key_b64))


def load_private_key(text: str, passphrase: str | None) -> paramiko.PKey:
    """A private key from its text (OpenSSH or PEM), in memory: no file is ever written."""
    last: Exception | None = None
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            key: paramiko.PKey = cls.from_private_key(io.StringIO(text), password=passphrase)
            return key
        except paramiko.PasswordRequiredException:
            raise _Failed(SshFailure.auth, "the private key needs a passphrase and none was given") from None
        except (paramiko.SSHException, ValueError, TypeError, IndexError) as exc:
            last = exc
    del last
    raise _Failed(SshFailure.auth, "the private key could not be read (wrong passphrase or unknown key format)")


class _Recorder(paramiko.MissingHostKeyPolicy):
    """First contact: accept the key the server presents and remember it."""

    def __init__(self) -> None:
        self.key: paramiko.PKey | None = None

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        self.key = key


class _Pinned(paramiko.MissingHostKeyPolicy):
    """A key is recorded: a server offering a key of another type is refused like a changed key."""

    def __init__(self, known: HostKey) -> None:
        self.known = known
        self.key: paramiko.PKey | None = None

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        self.key = key
        raise paramiko.BadHostKeyException(hostname, key, _pkey(self.known))


def _changed(known: HostKey, offered: HostKey) -> str:
    return (f"host key changed from {known.fingerprint} to {offered.fingerprint}: "
            "accept it if the change is expected")


# --- connecting -----------------------------------------------------------------------------------


def _tcp(address: str, port: int, timeout: float) -> socket.socket:
    try:
        return socket.create_connection((address, port), timeout=timeout)
    except ConnectionRefusedError:
        raise _Failed(SshFailure.unreachable, f"connection refused on port {port}") from None
    except TimeoutError:
        raise _Failed(SshFailure.unreachable, f"no answer on port {port} within {timeout:g} s") from None
    except OSError as exc:
        if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            raise _Failed(SshFailure.unreachable, f"no route to {address}") from None
        reason = exc.strerror or "error"
        raise _Failed(SshFailure.unreachable, f"cannot connect to {address} port {port} ({reason})") from None


def _pinned_client(address: str, port: int, known: HostKey | None) -> tuple[paramiko.SSHClient, _Recorder | _Pinned]:
    """A paramiko client that knows only ``known`` (in memory): paramiko compares the server's key
    with it after the key exchange and before any authentication. None: first contact, recorded."""
    client = paramiko.SSHClient()
    policy: _Recorder | _Pinned
    if known is None:
        policy = _Recorder()
    else:
        client.get_host_keys().add(address if port == 22 else f"[{address}]:{port}", known.key_type, _pkey(known))
        policy = _Pinned(known)
    client.set_missing_host_key_policy(policy)
    return client, policy


def _through_jump(jump: JumpHost, target: SshTarget,
                  seen: Callable[[HostKey], None]) -> tuple[paramiko.SSHClient, paramiko.Channel]:
    """A ``direct-tcpip`` channel from the jump host to the target, used as netmiko's socket.

    The jump host's key is checked like the target's, before its credential is sent: a bastion
    impersonated would otherwise collect the jump credential and every device's login through it.
    ``seen`` gets the key the jump host presented (also when it is refused as changed)."""
    sock = _tcp(jump.address, jump.port, target.connect_timeout_s)
    client, policy = _pinned_client(jump.address, jump.port, jump.known_key)
    pkey = load_private_key(jump.private_key, jump.passphrase) if jump.private_key else None
    try:
        client.connect(jump.address, jump.port, username=jump.username, password=jump.password, pkey=pkey,
                       sock=sock, timeout=target.connect_timeout_s, auth_timeout=target.auth_timeout_s,
                       banner_timeout=target.banner_timeout_s, look_for_keys=False, allow_agent=False)
    except paramiko.BadHostKeyException as bad:
        client.close()
        offered = host_key_of(bad.key)
        seen(offered)
        assert jump.known_key is not None
        raise _Failed(SshFailure.hostkey_changed,
                      f"the jump host {jump.address} port {jump.port}: {_changed(jump.known_key, offered)}") from None
    except paramiko.AuthenticationException:
        client.close()
        what = "key" if pkey else "password"
        raise _Failed(SshFailure.auth, f"the jump host {jump.address} refused the {what}") from None
    except (paramiko.SSHException, OSError, EOFError):
        client.close()
        raise _Failed(SshFailure.unreachable, f"the jump host {jump.address} did not complete the SSH login") from None
    transport = client.get_transport()
    assert transport is not None
    seen(host_key_of(transport.get_remote_server_key()))
    try:
        channel = transport.open_channel("direct-tcpip", (target.address, target.port), ("127.0.0.1", 0),
                                         timeout=target.connect_timeout_s)
    except paramiko.ChannelException:
        client.close()
        raise _Failed(SshFailure.unreachable,
                      f"the jump host {jump.address} could not reach {target.address} port {target.port}") from None
    except (paramiko.SSHException, OSError, EOFError):
        client.close()
        raise _Failed(SshFailure.unreachable,
                      f"the jump host {jump.address} gave no channel to {target.address}") from None
    return client, channel


def _cause(exc: BaseException) -> BaseException:
    """The innermost exception netmiko wrapped (it raises its own inside ``except`` blocks)."""
    seen = exc
    while seen.__cause__ is not None or seen.__context__ is not None:
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
    return seen


class _Session:
    """One netmiko session whose socket, host-key check and reads are ours."""

    def __init__(self, target: SshTarget, platform: SshPlatform):
        self.target = target
        self.platform = platform
        self.jump: paramiko.SSHClient | None = None
        self.conn: Any = None
        self.policy: _Recorder | _Pinned | None = None
        self.offered: HostKey | None = None
        self.jump_offered: HostKey | None = None
        self.prompt = ""

    # netmiko calls these two instead of its own: an in-memory known key, no key files or agent
    def _client(self) -> paramiko.SSHClient:
        client, self.policy = _pinned_client(self.target.address, self.target.port, self.target.known_key)
        return client

    def open(self) -> None:
        t = self.target
        pkey = load_private_key(t.private_key, t.passphrase) if t.private_key else None
        if t.jump is not None:
            self.jump, sock = _through_jump(t.jump, t, self._jump_seen)
        else:
            sock = _tcp(t.address, t.port, t.connect_timeout_s)
        params: dict[str, Any] = {
            "device_type": self.platform.device_type, "host": t.address, "port": t.port,
            "username": t.username, "password": t.password or "", "secret": t.enable_secret or "",
            "pkey": pkey, "use_keys": False, "allow_agent": False, "sock": sock,
            "conn_timeout": t.connect_timeout_s, "auth_timeout": t.auth_timeout_s,
            "banner_timeout": t.banner_timeout_s, "read_timeout_override": t.banner_timeout_s,
            "auto_connect": False, "fast_cli": True,
        }
        if pkey is not None and not t.password:
            params["password"] = None
        try:
            conn = ConnectHandler(**params)
        except ValueError:
            sock.close()
            raise _Failed(SshFailure.unsupported, f"netmiko has no driver {self.platform.device_type!r}") from None
        self.conn = conn
        base_params = conn._connect_params_dict
        # instance attributes shadow netmiko's methods for this one session only
        setattr(conn, "_build_ssh_client", self._client)  # noqa: B010
        setattr(conn, "_connect_params_dict",  # noqa: B010
                lambda: {**base_params(), "look_for_keys": False, "allow_agent": False})
        setattr(conn, "cleanup", self._quiet_cleanup)  # noqa: B010
        try:
            conn._open()
        except Exception as exc:  # classified below; netmiko's text is never shown (it can quote output)
            raise self._classify_open(exc) from None
        self._record_key()
        if self.platform.enable and t.enable_secret:
            try:
                if not conn.check_enable_mode():
                    conn.enable()
            except (ValueError, ReadException):
                raise _Failed(SshFailure.auth, "the enable secret was refused") from None
        conn.read_timeout_override = t.command_timeout_s
        try:
            self.prompt = conn.find_prompt().strip()
        except (ReadException, ValueError, OSError, EOFError):
            raise _Failed(SshFailure.timeout, f"no prompt within {t.command_timeout_s:g} s after login") from None

    def _jump_seen(self, key: HostKey) -> None:
        self.jump_offered = key

    def _quiet_cleanup(self, command: str = "exit") -> None:
        """Leave without reading: a hung device must not cost another timeout on the way out."""
        with contextlib.suppress(Exception):
            self.conn.write_channel(command + self.conn.RETURN)

    def _record_key(self) -> None:
        transport = self.conn.remote_conn_pre.get_transport() if self.conn.remote_conn_pre else None
        if transport is not None:
            self.offered = host_key_of(transport.get_remote_server_key())

    def _classify_open(self, exc: Exception) -> _Failed:
        t = self.target
        root = _cause(exc)
        if isinstance(root, paramiko.BadHostKeyException) or isinstance(exc, paramiko.BadHostKeyException):
            bad = root if isinstance(root, paramiko.BadHostKeyException) else exc
            assert isinstance(bad, paramiko.BadHostKeyException)
            self.offered = host_key_of(bad.key)
            assert t.known_key is not None
            return _Failed(SshFailure.hostkey_changed, _changed(t.known_key, self.offered))
        if self.policy is not None and self.policy.key is not None:
            self.offered = host_key_of(self.policy.key)
        if isinstance(exc, NetmikoAuthenticationException) or isinstance(root, paramiko.AuthenticationException):
            what = "key" if t.private_key and not t.password else "password"
            return _Failed(SshFailure.auth, f"the {what} was refused for user {t.username}")
        if self.offered is None and self.conn is not None and self.conn.remote_conn_pre is not None:
            with contextlib.suppress(Exception):
                self._record_key()
        text = str(root)
        if isinstance(root, paramiko.SSHException) and "banner" in text.lower():
            return _Failed(SshFailure.timeout, f"no SSH banner within {t.banner_timeout_s:g} s")
        if isinstance(root, ReadTimeout):  # logged in, then no prompt (netmiko's session preparation)
            return _Failed(SshFailure.timeout, f"no prompt within {t.banner_timeout_s:g} s after login")
        if isinstance(root, EOFError | ConnectionResetError | BrokenPipeError) or "closed" in text.lower():
            return _Failed(SshFailure.dropped, "the device closed the session during login")
        if isinstance(root, TimeoutError | socket.timeout):
            return _Failed(SshFailure.timeout, f"no answer within {t.auth_timeout_s:g} s during login")
        if isinstance(exc, NetmikoTimeoutException):
            return _Failed(SshFailure.timeout, f"no answer within {t.banner_timeout_s:g} s during login")
        log.warning("ssh %s:%s: unexpected %s during login", t.address, t.port, type(root).__name__)
        return _Failed(SshFailure.error, f"unexpected {type(root).__name__} during login")

    def run(self, command: str) -> str:
        """One command's output: echo, pager artefacts and the closing prompt removed.

        The quiet-time limit alone never ends a device that keeps sending (each chunk restarts
        it), so the whole command also has a deadline and a byte cap; past either the output is
        abandoned with a reason instead of holding a pool slot and memory for ever."""
        t = self.target
        channel: paramiko.Channel = self.conn.remote_conn
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        chunks: list[str] = []
        tail = ""
        pages = 0
        try:
            while channel.recv_ready():  # what is left of the previous exchange (a late prompt) is not output
                channel.recv(_RECV)
            channel.sendall((command + self.conn.RETURN).encode())
        except (OSError, EOFError, paramiko.SSHException):
            raise _Failed(SshFailure.dropped, f"the device closed the session before `{command}`") from None
        channel.settimeout(0.2)
        quiet_since = time.monotonic()
        limit_s = command_deadline(t)
        deadline = quiet_since + limit_s
        received = 0
        head = ""  # the first few kB, where the echo is: never the whole output on every chunk
        prompt = self.prompt
        # The output ends at a prompt that follows the command's echo: a prompt left over from the
        # session preparation, arriving before the echo, would otherwise end an empty backup. A device
        # that does not echo ends at a prompt followed by a quiet moment.
        echoed = False
        bare_prompt_at: float | None = None
        while True:
            try:
                data = channel.recv(_RECV)
            except TimeoutError:
                data = None
            except (OSError, EOFError, paramiko.SSHException):
                raise _Failed(SshFailure.dropped, f"the session dropped during `{command}`") from None
            if data == b"":
                raise _Failed(SshFailure.dropped, f"the device closed the session during `{command}`")
            if time.monotonic() > deadline:
                raise _Failed(SshFailure.timeout,
                              f"`{command}` was still sending after {limit_s:g} s: the output was abandoned")
            if data:
                received += len(data)
                if received > MAX_OUTPUT_BYTES:
                    raise _Failed(SshFailure.error, f"`{command}` sent more than {MAX_OUTPUT_BYTES // 2**20} MB: "
                                  "the output was abandoned")
                quiet_since = time.monotonic()
                bare_prompt_at = None
                text = decoder.decode(data)
                chunks.append(text)
                tail = (tail + text)[-2048:]
                if not echoed and len(head) < _ECHO_WITHIN:
                    head = (head + text)[:_ECHO_WITHIN]
                    echoed = command in _screen(head.replace("\r\n", "\n"))
                clean_tail = _screen(tail.rsplit("\n", 1)[-1]).rstrip(" ")
                if _ends_with_prompt(clean_tail, prompt):
                    if echoed:
                        break
                    bare_prompt_at = time.monotonic()
                    continue
                pager = _PAGER.search(clean_tail)
                if pager is not None:
                    pages += 1
                    if pages > MAX_PAGES:
                        raise _Failed(SshFailure.paging, f"`{command}` kept paging past {MAX_PAGES} pages")
                    tail = ""
                    channel.sendall(b" ")
                continue
            if bare_prompt_at is not None and time.monotonic() - bare_prompt_at > _NO_ECHO_QUIET_S:
                break
            if time.monotonic() - quiet_since > t.command_timeout_s:
                clean_tail = _screen(tail.rsplit("\n", 1)[-1]).rstrip()
                if re.search(r"(?i)more|continue|\(q\)", clean_tail[-80:]):
                    raise _Failed(SshFailure.paging,
                                  f"`{command}` stopped at a pager prompt that could not be answered")
                raise _Failed(SshFailure.timeout, f"no answer within {t.command_timeout_s:g} s after `{command}`")
        return _clean(command, "".join(chunks), prompt)

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.disconnect()
            with contextlib.suppress(Exception):
                netmiko_log.removeFilter(conn._secrets_filter)
        if self.jump is not None:
            with contextlib.suppress(Exception):
                self.jump.close()
            self.jump = None


_ECHO_WITHIN = 8192  # the echo of a command is looked for in this many first characters of its output
_NO_ECHO_QUIET_S = 1.0  # a device that does not echo: its output has ended when its prompt stays last this long


def _ends_with_prompt(text: str, prompt: str) -> bool:
    if not prompt:
        return False
    line = text.rsplit("\n", 1)[-1].strip()
    return line == prompt or (line.endswith(prompt) and len(line) - len(prompt) <= 2)


def _screen(line: str) -> str:
    """What a terminal shows for one line: backspaces step back, ``\\r`` returns to column 0,
    ``ESC[K`` erases to the end, later characters overwrite earlier ones. This is how a pager
    prompt a device erased after the key press disappears without touching the text around it."""
    if "\x08" not in line and "\r" not in line and "\x1b" not in line:
        return line
    cells: list[str] = []
    pos = 0
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == "\x1b":
            found = _ANSI.match(line, i)
            if found is not None:
                if found.group(0).startswith("\x1b[") and found.group(0).endswith("K"):
                    del cells[pos:]
                i = found.end()
                continue
        if ch == "\x08":
            pos = max(0, pos - 1)
        elif ch == "\r":
            pos = 0
        else:
            if pos < len(cells):
                cells[pos] = ch
            else:
                cells.extend(" " * (pos - len(cells)))
                cells.append(ch)
            pos += 1
        i += 1
    return "".join(cells)


def _clean(command: str, raw: str, prompt: str) -> str:
    """Normalise line ends, apply pager erasures, remove escape sequences and control characters
    (they would reach storage and operators' terminals), drop the echoed command and the trailing prompt."""
    lines = [_CONTROLS.sub("", _ANSI.sub("", _screen(line))) for line in raw.replace("\r\n", "\n").split("\n")]
    lines = [_PAGER_LEFT.sub("", line) for line in lines]
    if any(_PAGER_LINE.search(line) for line in lines):
        raise _Failed(SshFailure.paging, f"the output of `{command}` kept pager prompts that could not be removed")
    echo = next((i for i, line in enumerate(lines[:5]) if command in line), None)
    if echo is not None:  # the echo, and any late prompt before it
        lines = lines[echo + 1:]
    while lines and (not lines[-1].strip() or _ends_with_prompt(lines[-1], prompt)):
        lines.pop()
    return "\n".join(line.rstrip() for line in lines)


def _rejected(command: str, output: str) -> str | None:
    head = "\n".join(output.split("\n", 6)[:6])
    found = _REJECTED.search(head)
    return found.group(0).strip() if found else None


def command_deadline(target: SshTarget) -> float:
    """How long one command may keep sending: the target's own limit, else four command timeouts
    and at least two minutes (a large configuration on a slow link is not a runaway device)."""
    if target.command_deadline_s is not None:
        return target.command_deadline_s
    return max(target.command_timeout_s * 4, 120.0)


def _platform(device_type: str) -> SshPlatform:
    platform = platform_table().get(device_type)
    if platform is None:
        raise _Failed(SshFailure.unsupported, f"no command set for device type {device_type!r}")
    return platform


# --- one device ---------------------------------------------------------------------------------


def _in_session(target: SshTarget, into: BackupResult | CliRead, what: str,
                body: Callable[[_Session, SshPlatform], None], platform: SshPlatform | None = None) -> None:
    """Run ``body`` in one session to ``target``: the host key it offered and its prompt land in
    ``into`` (also when the login fails), a failure becomes ``into.problem`` in words, and the session
    is closed whatever happens. The text of a foreign exception is never shown: it may quote input.
    ``platform`` is the target's device type's unless given (the generic login of detection)."""
    session: _Session | None = None
    try:
        platform = platform or _platform(target.device_type)
        if not target.password and not target.private_key:
            raise _Failed(SshFailure.no_credential, "no password or key to log in with")
        session = _Session(target, platform)
        try:
            session.open()
        finally:
            into.host_key = session.offered
            into.jump_key = session.jump_offered
        into.prompt = session.prompt
        body(session, platform)
    except _Failed as failed:
        into.problem = SshProblem(failed.kind, failed.message)
    except Exception as exc:  # noqa: BLE001 - a run must go on
        log.warning("ssh %s %s:%s: unexpected %s", what, target.address, target.port, type(exc).__name__)
        into.problem = SshProblem(SshFailure.error, f"unexpected {type(exc).__name__}")
    finally:
        if session is not None:
            into.host_key = into.host_key or session.offered
            session.close()


def backup_one(target: SshTarget) -> BackupResult:
    """Back up one device: its configuration, volatile lines dropped, masked. Never raises.
    ``started_at`` is taken before the session opens: the text read is at least that recent, which
    is what lets the service refuse to store an older read over a newer one."""
    started = time.monotonic()
    result = BackupResult(address=target.address, port=target.port, device_type=target.device_type,
                          started_at=datetime.now(UTC))

    def body(session: _Session, platform: SshPlatform) -> None:
        parts = []
        for command in platform.backup:
            output = session.run(command)
            refusal = _rejected(command, output)
            if refusal:
                raise _Failed(SshFailure.command, f"the device rejected `{command}`: {refusal}")
            parts.append(output)
        kept = [line for line in "\n".join(parts).split("\n") if not platform.volatile(line)]
        while kept and not kept[0].strip():
            kept.pop(0)
        while kept and not kept[-1].strip():
            kept.pop()
        result.config = mask("\n".join(kept) + "\n", target.device_type)

    _in_session(target, result, "backup", body)
    if result.problem is not None:
        result.config = None
    result.seconds = round(time.monotonic() - started, 3)
    return result


def cli_read_one(target: SshTarget, commands: dict[str, str]) -> CliRead:
    """Run discovery commands (role -> command) in one session; a rejected command is left out."""
    started = time.monotonic()
    read = CliRead(address=target.address, port=target.port, device_type=target.device_type)

    def body(session: _Session, _platform_: SshPlatform) -> None:
        refusals = []
        for role, command in commands.items():
            output = session.run(command)
            refusal = _rejected(command, output)
            if refusal:
                refusals.append(f"`{command}`: {refusal}")
                continue
            read.outputs[role] = output
        if commands and not read.outputs:
            raise _Failed(SshFailure.command, "the device rejected every command (" + "; ".join(refusals) + ")")

    _in_session(target, read, "read", body)
    read.seconds = round(time.monotonic() - started, 3)
    return read


def detect_and_read_one(target: SshTarget, table: PlatformTable) -> tuple[SshPlatform | None, CliRead]:
    """One session to a device whose platform is not known: logged in with the generic driver
    (``detection.login``), the detection commands run one after the other until one's output
    names a platform (``detect`` in ``platforms.yaml``), then that platform's discovery commands
    run in the same session. One login per credential, whatever the platform: guessing the
    platform by logging in as each one in turn would be a password spray on anything answering
    on port 22 (and lock accounts). The platform is None when the device named none."""
    read = CliRead(address=target.address, port=target.port, device_type=target.device_type)
    found: list[SshPlatform] = []

    def body(session: _Session, _login: SshPlatform) -> None:
        seen: dict[str, str] = {}
        for command in table.detection_commands():
            output = session.run(command)
            if _rejected(command, output):
                continue
            seen[command] = output
            platform = table.recognise(command, output)
            if platform is not None:
                found.append(platform)
                break
        if not found:
            raise _Failed(SshFailure.unsupported, "its CLI names no platform CLI discovery reads")
        read.device_type = found[0].device_type
        for role, command in found[0].discovery.items():
            output = seen[command] if command in seen else session.run(command)
            if not _rejected(command, output):
                read.outputs[role] = output
        if not read.outputs:
            raise _Failed(SshFailure.command, "the device rejected every discovery command")

    _in_session(target, read, "detect", body, platform=table.login_platform())
    return (found[0] if found else None), read


def cli_probe_one(target: SshTarget, commands: dict[str, str]) -> dict[str, str] | SshProblem:
    """Raw outputs by role for CLI discovery, or why the device could not be read."""
    read = cli_read_one(target, commands)
    return read.problem if read.problem is not None else read.outputs


# --- many devices -------------------------------------------------------------------------------


async def _bounded(items: Sequence[T], work: Callable[[T], Any], concurrency: int,
                   on_done: Callable[[Any], Awaitable[None] | None] | None) -> list[Any]:
    if not items:
        return []
    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(items))), thread_name_prefix="ssh")
    try:
        futures = [loop.run_in_executor(pool, work, item) for item in items]
        if on_done is not None:
            for next_done in asyncio.as_completed(futures):
                outcome = await next_done
                called = on_done(outcome)
                if inspect.isawaitable(called):
                    await called
        return list(await asyncio.gather(*futures))
    finally:
        # a cancelled run drops the devices not started yet and does not block the loop on the
        # sessions still open (each ends by its own timeouts)
        pool.shutdown(wait=False, cancel_futures=True)


async def backup(targets: Sequence[SshTarget], *, concurrency: int = DEFAULT_CONCURRENCY,
                 on_done: Callable[[BackupResult], Awaitable[None] | None] | None = None) -> list[BackupResult]:
    """Back up every target, ``concurrency`` sessions at a time; results in the targets' order.
    ``on_done`` (plain or async) is called as each device finishes (progress bars, storing early)."""
    return await _bounded(targets, backup_one, concurrency, on_done)


async def cli_read(items: Sequence[tuple[SshTarget, dict[str, str]]], *, concurrency: int = DEFAULT_CONCURRENCY,
                   on_done: Callable[[CliRead], Awaitable[None] | None] | None = None) -> list[CliRead]:
    """:func:`cli_read_one` over many devices, bounded like :func:`backup`."""
    return await _bounded(items, lambda item: cli_read_one(*item), concurrency, on_done)


async def cli_probe(items: Sequence[tuple[SshTarget, dict[str, str]]], *,
                    concurrency: int = DEFAULT_CONCURRENCY) -> list[dict[str, str] | SshProblem]:
    """:func:`cli_probe_one` over many devices, bounded like :func:`backup`."""
    return await _bounded(items, lambda item: cli_probe_one(*item), concurrency, None)
