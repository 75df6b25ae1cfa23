"""Audit middleware: every mutating API request is written to the audit log, secrets redacted.

It sits at the ASGI level so it sees the request body and the final status code of every write,
including refused ones (401/403/422 are worth auditing too).
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs

import anyio
from sqlalchemy import Engine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infra_mgr.auth.models import AuditLog
from infra_mgr.common import utcnow

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
DASHBOARD_AUDITED = {"/login", "/logout"}
_SECRET_KEY = re.compile(r"pass|secret|token|community|key|credential_value", re.IGNORECASE)
_MAX_BODY = 64 * 1024


def redact(value: Any) -> Any:
    """Replace the value of every secret-looking key, at any depth."""
    if isinstance(value, dict):
        return {k: ("***" if isinstance(k, str) and _SECRET_KEY.search(k) and v is not None else redact(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def _audited(path: str) -> bool:
    return path.startswith("/api/") or path in DASHBOARD_AUDITED


def _body_summary(raw: bytes) -> dict[str, Any]:
    if not raw:
        return {}
    if len(raw) > _MAX_BODY:
        return {"_truncated": True, "_bytes": len(raw)}
    try:
        parsed = json.loads(raw)
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
            row = dict(time=utcnow(), username=username or "", method=scope["method"],
                       path=scope["path"][:500], status_code=status["code"], client=str(client)[:64],
                       body=_body_summary(b"".join(chunks)))
            await anyio.to_thread.run_sync(self._write, row)

    def _write(self, row: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(AuditLog.__table__.insert(), [row])  # type: ignore[attr-defined]  # SQLModel does not declare __table__
