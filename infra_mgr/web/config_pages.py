"""The configuration pages: every device's backup state, one device's versions with a readable
diff of any two, a regex search across the latest configurations, and compliance per site.

Everything shown comes from the SSH read views (:mod:`infra_mgr.network.ssh.views`), which hold
only masked text. What stays here is about reading: which filter the URL asks for, which two
versions a person picked, where the words inside a changed line differ (so the eye lands on the
one changed word instead of comparing two long lines), and where a search pattern matched inside a
line. A failed backup is shown as failed, with its reason and how long ago it was tried, never
behind the tick of an older success.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from sqlmodel import Session

from infra_mgr.api.deps import DbSession
from infra_mgr.auth.permissions import Perm
from infra_mgr.auth.service import Principal
from infra_mgr.errors import Invalid, NotFound
from infra_mgr.network.ssh import views as ssh_views
from infra_mgr.web import format as fmt
from infra_mgr.web import queries
from infra_mgr.web.i18n import DEFAULT_LANG, Translator, catalog, pick_lang
from infra_mgr.web.pages import User_, error_page, html_router, render

router = html_router()

STATUSES: tuple[str, ...] = ("failed", "never", "ok")  # the list's filter and summary, worst first
STATUS_BADGE = {"ok": "success", "failed": "danger", "never": "secondary"}
SEVERITIES: tuple[str, ...] = ("critical", "warning", "info")  # worst first: the bar's order too
SEVERITY_BADGE = {"critical": "danger", "warning": "warning", "info": "secondary"}
VIEWS: tuple[str, ...] = ("side", "unified")
BACKUPS_PAGE_SIZE = 100
VERSIONS_PAGE_SIZE = 50
DIFF_CONTEXT = 3
SEARCH_LIMIT = 500
MAX_PATTERN_LEN = ssh_views.MAX_PATTERN
# A line longer than this is not split into words: the highlight would cost more than it helps.
WORD_DIFF_MAX_CHARS = 2000
_WORD = re.compile(r"\s+|[A-Za-z0-9_.:/-]+|.")


@dataclass(frozen=True)
class Piece:
    """A run of characters of a line, marked when it is what changed (or what matched)."""

    text: str
    mark: bool


def clean_status(raw: str | None) -> str:
    value = (raw or "").strip().lower()
    return value if value in STATUSES else ""


def clean_severity(raw: str | None) -> str:
    value = (raw or "").strip().lower()
    return value if value in SEVERITIES else ""


def clean_view(raw: str | None) -> str:
    value = (raw or "").strip().lower()
    return value if value in VIEWS else VIEWS[0]


def clean_site(raw: str | None) -> str:
    """A site code from the URL: upper case, bounded, only the characters codes are made of."""
    value = (raw or "").strip().upper()[:32]
    return value if re.fullmatch(r"[A-Z0-9_-]*", value) else ""


def clean_number(raw: str | None) -> int | None:
    """A version or device number from the URL; anything else is simply absent."""
    value = (raw or "").strip()
    if not value.isascii() or not value.isdigit() or len(value) > 9 or int(value) < 1:
        return None
    return int(value)


def word_diff(old: str, new: str) -> tuple[list[Piece], list[Piece]]:
    """Both sides of a changed line cut into pieces, the pieces that differ marked. Words are the
    tokens of a configuration (names, numbers, addresses, punctuation), so ``version 2`` against
    ``version 3`` marks the ``2`` and the ``3`` and nothing else."""
    if len(old) > WORD_DIFF_MAX_CHARS or len(new) > WORD_DIFF_MAX_CHARS:
        return [Piece(old, True)], [Piece(new, True)]
    a, b = _WORD.findall(old), _WORD.findall(new)
    left: list[Piece] = []
    right: list[Piece] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        same = op == "equal"
        if i2 > i1:
            left.append(Piece("".join(a[i1:i2]), not same))
        if j2 > j1:
            right.append(Piece("".join(b[j1:j2]), not same))
    return _merged(left), _merged(right)


def _merged(pieces: list[Piece]) -> list[Piece]:
    out: list[Piece] = []
    for p in pieces:
        if out and out[-1].mark == p.mark:
            out[-1] = Piece(out[-1].text + p.text, p.mark)
        else:
            out.append(p)
    return out


def match_pieces(text: str, spans: Sequence[tuple[int, int]]) -> list[Piece]:
    """A line cut at the match spans the search found, the matches marked. The page never runs the
    pattern itself: the search found the spans within its time budget, a second unbounded pass
    over the line could backtrack for minutes."""
    out: list[Piece] = []
    at = 0
    for start, end in spans:
        start, end = max(start, at), min(end, len(text))
        if end <= start:
            continue
        if start > at:
            out.append(Piece(text[at:start], False))
        out.append(Piece(text[start:end], True))
        at = end
    if at < len(text) or not out:
        out.append(Piece(text[at:], False))
    return out


def _ago(t: Translator, when: dt.datetime | None, now: dt.datetime) -> str:
    """How long ago, in the reader's words (``2 h 05 min ago``); empty when never."""
    if when is None:
        return ""
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return t("configs.ago", age=fmt.fmt_duration(t, max((now - when).total_seconds(), 0.0)))


def _site_codes(session: Session) -> list[str]:
    """The sites that hold backed-up devices, for the filters' lists."""
    return sorted(s.site_code for s in ssh_views.site_compliance(session))


def _helpers(t: Translator, user: Principal) -> dict[str, Any]:
    """What every configuration page's templates use: badges, the reader's "ago", and whether
    the reader may start a backup (with the strings config.js reports it in)."""
    now = dt.datetime.now(dt.UTC)
    can_run = user.can(Perm.config_manage)
    return {"status_badge": STATUS_BADGE, "severity_badge": SEVERITY_BADGE, "statuses": STATUSES,
            "severities": SEVERITIES, "ago": lambda when: _ago(t, when, now), "isolate": fmt.isolate,
            "fmt_time": fmt.fmt_utc,
            "can_run": can_run,
            "run_strings": {k: t(k) for k in catalog(DEFAULT_LANG) if k.startswith("configs.run_")} if can_run else {}}


# --------------------------------------------------------------------------- the list


@router.get("/configs")
def configs(request: Request, session: DbSession, user: Principal = User_, status: str | None = None,
            site: str | None = None, page: str | None = None) -> Response:
    """Every device's backup state, failed first, with counts per state that double as filters."""
    t = Translator(pick_lang(request))
    status_v, site_v = clean_status(status), clean_site(site)
    listed = ssh_views.backups(session, site_code=site_v or None, status=status_v or None,
                               page=queries.parse_page(page), size=BACKUPS_PAGE_SIZE)
    counts = {s: ssh_views.backups(session, site_code=site_v or None, status=s, page=1, size=1).total
              for s in STATUSES}
    return render(request, "configs.html", {
        **_helpers(t, user), "rows": listed.rows, "info": queries.page_info(listed.total, listed.page, listed.size),
        "status": status_v, "site": site_v, "sites": _site_codes(session), "counts": counts,
        "filtered": bool(status_v or site_v), "tried": bool(counts["ok"] or counts["failed"]),
    }, section="configs", user=user)


# --------------------------------------------------------------------------- search


@router.get("/configs/search")
def config_search(request: Request, session: DbSession, user: Principal = User_, q: str | None = None,
                  site: str | None = None) -> Response:
    """A regular expression across every device's latest configuration, each matching line shown
    with its number and the matched text marked."""
    t = Translator(pick_lang(request))
    pattern = (q or "").strip()[:MAX_PATTERN_LEN]
    site_v = clean_site(site)
    result = None
    bad = ""
    if pattern:
        try:
            result = ssh_views.search(session, pattern, site_code=site_v or None, context=0, limit=SEARCH_LIMIT)
        except Invalid as exc:
            bad = str(exc)
    return render(request, "config_search.html", {
        **_helpers(t, user), "q": pattern, "site": site_v, "sites": _site_codes(session), "result": result,
        "bad_pattern": bad, "pieces": lambda line: match_pieces(line.text, line.spans),
    }, section="configs", user=user)


# --------------------------------------------------------------------------- compliance


@router.get("/configs/compliance")
def compliance(request: Request, session: DbSession, user: Principal = User_, site: str | None = None,
               severity: str | None = None) -> Response:
    """Compliance per site (a bar of findings by severity beside the compliant share) and the
    findings themselves with the lines that break each rule."""
    t = Translator(pick_lang(request))
    site_v, severity_v = clean_site(site), clean_severity(severity)
    per_site = ssh_views.site_compliance(session)
    rows = ssh_views.findings(session, site_code=site_v or None, severity=severity_v or None)
    widest = max((s.findings for s in per_site), default=0)
    return render(request, "compliance.html", {
        **_helpers(t, user), "per_site": per_site, "rows": rows, "site": site_v, "severity": severity_v,
        "widest": max(widest, 1), "bars": {s.site_code: _bar(s.by_severity, max(widest, 1)) for s in per_site},
        "filtered": bool(site_v or severity_v),
    }, section="configs", user=user)


def _bar(by_severity: dict[str, int], widest: int) -> list[dict[str, Any]]:
    """The segments of a site's stacked bar (x and width in per cent of the widest site's findings),
    worst severity first from the start of the line."""
    segments = []
    x = 0.0
    for sev in SEVERITIES:
        n = int(by_severity.get(sev, 0))
        if n:
            width = 100.0 * n / widest
            segments.append({"severity": sev, "n": n, "x": round(x, 3), "w": round(width, 3)})
            x += width
    return segments


# --------------------------------------------------------------------------- one device


def _find_versions(session: Session, device_id: int, page: int) -> ssh_views.VersionList | None:
    try:
        found: ssh_views.VersionList | None = ssh_views.versions(session, device_id, page=page,
                                                                  size=VERSIONS_PAGE_SIZE)
    except NotFound:
        return None
    return found


@router.get("/configs/{device_id}")
def config_page(request: Request, device_id: str, session: DbSession, user: Principal = User_,
                v: str | None = None, a: str | None = None, b: str | None = None, view: str | None = None,
                page: str | None = None) -> Response:
    """One device: its backup state, its versions (pick A and B to compare), the diff of A and B
    (side by side or unified; by default the latest change) and the text of one version."""
    t = Translator(pick_lang(request))
    number = clean_number(device_id)
    listed = _find_versions(session, number, queries.parse_page(page)) if number else None
    if listed is None or number is None:
        return error_page(request, 404, "error.not_found_title", "error.device_not_found", section="configs",
                          id=fmt.isolate(device_id[:32]))
    shown_v = clean_number(v)
    text = None
    if listed.total:
        try:
            text = ssh_views.version_text(session, number, number=shown_v)
        except NotFound:
            text = ssh_views.version_text(session, number, number=None)
    a_v, b_v = clean_number(a), clean_number(b)
    if a_v is not None and b_v is not None and a_v > b_v:
        a_v, b_v = b_v, a_v
    diff = None
    if listed.total >= 2 and not (a_v is not None and a_v == b_v):
        try:
            diff = ssh_views.diff(session, number, a=a_v, b=b_v, context=DIFF_CONTEXT)
        except NotFound:
            diff = ssh_views.diff(session, number, context=DIFF_CONTEXT)
    words = {i: word_diff(r.left or "", r.right or "") for i, r in enumerate(diff.rows if diff else [])
             if r.kind == "changed"}
    unified = [(_unified_kind(line), line) for line in (diff.unified.splitlines() if diff else [])]
    return render(request, "config.html", {
        **_helpers(t, user), "listed": listed, "device": listed.device, "text": text,
        "lines": text.text.splitlines() if text else [], "diff": diff, "words": words, "unified": unified,
        "view": clean_view(view), "a": diff.old.number if diff else a_v, "b": diff.new.number if diff else b_v,
        "same_picked": a_v is not None and a_v == b_v,
        "info": queries.page_info(listed.total, listed.page, listed.size),
    }, section="configs", user=user)


def _unified_kind(line: str) -> str:
    if line.startswith(("+++", "---")):
        return "file"
    if line.startswith("@@"):
        return "hunk"
    if line.startswith("+"):
        return "added"
    if line.startswith("-"):
        return "removed"
    return "same"


def device_backup(session: Session, t: Translator, device_id: int | None) -> dict[str, Any]:
    """What a device's own page shows of its configuration backups: the state row (``None`` when
    the device is gone), the state's badge colour, and how long ago the last attempt was."""
    try:
        row = ssh_views.backup_row(session, device_id or 0)
    except NotFound:
        row = None
    now = dt.datetime.now(dt.UTC)
    return {"backup": row, "backup_badge": STATUS_BADGE.get(row.status, "secondary") if row else "secondary",
            "backup_tried": _ago(t, row.last_attempt, now) if row else ""}
