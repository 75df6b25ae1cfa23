"""Audit middleware: every mutating API request is written to the audit log, secrets redacted.

It sits at the ASGI level so it sees the request body and the final status code of every write,
including refused ones (401/403/422 are worth auditing too).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode

import anyio
from sqlalchemy import Engine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infra_mgr.auth.models import AuditLog
from infra_mgr.common import utcnow
from infra_mgr.url_secrets import mask_urls_in_text

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
DASHBOARD_AUDITED = {"/login", "/logout"}
_SECRET_KEY = re.compile(r"pass|secret|token|community|key|credential_value", re.IGNORECASE)
_MAX_BODY = 64 * 1024


REDACT_DEPTH = 32  # an audit row keeps this much nesting; deeper parts are summarised
_TRUNCATED = "[truncated: nested too deep]"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _mask_url_secrets(text: str) -> str:
    """Every URL's secret masked by the very rule the power sources split with (the last ``@`` of
    the authority ends the userinfo), so a secret holding ``@`` never leaves its tail behind."""
    return mask_urls_in_text(text)


def _storable(text: str) -> str:
    """Lone surrogates (legal in a JSON string, never in UTF-8) become U+FFFD: neither database
    nor the response encoder accepts them, and one such row would break every audit list."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def _redact_leaf(value: Any) -> Any:
    if isinstance(value, str):
        return _mask_url_secrets(_storable(value))
    if isinstance(value, float) and not math.isfinite(value):
        return str(value).replace("inf", "Infinity").replace("nan", "NaN")  # JSON has no such number
    return value


def redact(value: Any, max_depth: int = REDACT_DEPTH) -> Any:
    """Replace the value of every secret-looking key and the secret part of every URL, at any depth.

    Iterative with a depth bound: a hostile body nested thousands deep is summarised below
    ``max_depth`` instead of exhausting the interpreter's recursion limit (which would lose the
    audit row of that very request).
    """
    def _copy(node: Any, depth: int) -> Any:
        if not isinstance(node, dict | list):
            return _redact_leaf(node)
        if depth >= max_depth:
            return _TRUNCATED
        out: Any = {} if isinstance(node, dict) else []
        stack.append((node, out, depth + 1))
        return out

    stack: list[tuple[Any, Any, int]] = []
    root = _copy(value, 0)
    while stack:
        src, dst, depth = stack.pop()
        if isinstance(src, dict):
            for raw_key, v in src.items():
                k = _storable(raw_key) if isinstance(raw_key, str) else raw_key
                secret = isinstance(k, str) and _SECRET_KEY.search(k) and v is not None
                dst[k] = "***" if secret else _copy(v, depth)
        else:
            dst.extend(_copy(v, depth) for v in src)
    return root


def readable_body(value: Any) -> dict[str, Any]:
    """A stored audit body as the list shows it: passed through :func:`redact` again, so a row
    written before the storage rules (a lone surrogate, a NaN) still lists instead of failing
    every page it is on."""
    return redact(value) if isinstance(value, dict) else ({} if value is None else {"_value": _redact_leaf(value)})


def audited_target(path: str, raw_query: bytes) -> str:
    """The request path with its query string, secrets redacted by the same rule as bodies:
    ``DELETE /prefixes/3?cascade=true`` is not the same act as a plain delete, and the log must
    say which one happened. The result fits the audit row's 500 characters."""
    if not raw_query:
        return path[:500]
    query = raw_query.decode("latin-1")
    pairs = parse_qsl(query, keep_blank_values=True)
    if not pairs:  # not key=value pairs at all: keep it, with any URL secret masked
        shown = _mask_url_secrets(query)
    else:
        shown = urlencode([(k, "***" if _SECRET_KEY.search(k) and v else _mask_url_secrets(v)) for k, v in pairs],
                          safe="*:/@,")
    return f"{path}?{shown}"[:500]


def _audited(path: str) -> bool:
    return path.startswith("/api/") or path in DASHBOARD_AUDITED


def _body_summary(raw: bytes) -> dict[str, Any]:
    if not raw:
        return {}
    if len(raw) > _MAX_BODY:
        return {"_truncated": True, "_bytes": len(raw)}
    try:
        parsed = json.loads(raw)
    except RecursionError:  # valid JSON nested deeper than the parser goes: keep its size only
        return {"_bytes": len(raw), "_format": "json nested too deep"}
    except (ValueError, UnicodeDecodeError):
        try:  # an HTML form post (dashboard login): keep the field names, redact the secrets
            form = {k: v[0] if len(v) == 1 else v for k, v in parse_qs(raw.decode(), strict_parsing=True).items()}
        except (ValueError, UnicodeDecodeError):
            return {"_bytes": len(raw), "_format": "non-json"}
        return {"form": redact(form)}
    return {"json": redact(parsed)}


class AuditMiddleware:
    def __init__(self, app: ASGIApp, engine: Engine) -> None:
        self.app = app
        self.engine = engine

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in MUTATING or not _audited(scope["path"]):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        status = {"code": 500}

        async def _receive() -> Message:
            msg = await receive()
            if msg["type"] == "http.request" and sum(map(len, chunks)) <= _MAX_BODY:
                chunks.append(msg.get("body", b""))
            return msg

        async def _send(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                status["code"] = msg["status"]
            await send(msg)

        try:
            await self.app(scope, _receive, _send)
        finally:
            state = scope.get("state") or {}
            principal = state.get("principal")
            username = principal.username if principal else state.get("audit_user", "")
            client = (scope.get("client") or ("", 0))[0]
            target = audited_target(scope["path"], scope.get("query_string") or b"")
            row = dict(time=utcnow(), username=_storable(username or ""), method=scope["method"],
                       path=target, status_code=status["code"], client=str(client)[:64],
                       body=_body_summary(b"".join(chunks)))
            await anyio.to_thread.run_sync(self._write, row, None if username else scope)

    def _caller(self, scope: Scope) -> str:
        """Who sent a request the route never authenticated (its body failed to parse, so the
        route's dependencies did not run): the bearer token's or the session cookie's user."""
        from sqlmodel import Session

        from infra_mgr.auth.service import principal_from_token
        from infra_mgr.auth.sessions import principal_from_sid

        headers = dict(scope.get("headers") or [])
        scheme, _, raw = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        sid = (scope.get("session") or {}).get("sid") if "session" in scope else None
        with Session(self.engine) as session:  # read only: nothing here is committed
            if scheme.lower() == "bearer" and raw.strip():
                found = principal_from_token(session, raw.strip())
            elif isinstance(sid, str) and sid:
                found = principal_from_sid(session, sid)
            else:
                found = None
            session.rollback()
        return found.username if found else ""

    def _write(self, row: dict[str, Any], scope: Scope | None = None) -> None:
        if scope is not None:
            try:
                row["username"] = self._caller(scope)
            except Exception:  # noqa: BLE001 - naming the caller is best effort; the row is written regardless
                row["username"] = ""
        with self.engine.begin() as conn:
            conn.execute(AuditLog.__table__.insert(), [row])  # type: ignore[attr-defined]  # SQLModel does not declare __table__


MAX_REQUEST_BODY = 1024 * 1024  # 1 MiB: far above any legitimate request of this API


class _TooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Refuse a request body over ``max_bytes`` with 413 before any route parses it: a declared
    ``Content-Length`` is checked up front, a streamed body as it arrives."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_REQUEST_BODY) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"detail": f"request body larger than {self.max_bytes} bytes", "errors": []}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        seen = 0
        state = {"started": False, "over": False}

        async def _receive() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_bytes:
                    state["over"] = True
                    raise _TooLarge
            return msg

        async def _send(msg: Message) -> None:
            if state["over"] and not state["started"]:
                return  # the route answered a body it could not read (400/422): the answer is 413
            if msg["type"] == "http.response.start":
                state["started"] = True
            await send(msg)

        with contextlib.suppress(_TooLarge):  # the route may let it through or answer 400 itself
            await self.app(scope, _receive, _send)
        if state["over"] and not state["started"]:
            await self._refuse(send)
