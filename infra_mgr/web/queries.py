"""What the dashboard's lists need of a request: the page number and search box read from the
query string (odd values mean page 1 or nothing, never an error page) and where a page is, for
the pager under a table. What the pages show comes from the domains' read views."""

from __future__ import annotations

from dataclasses import dataclass

PAGE_SIZE = 100
MAX_QUERY_LEN = 100


@dataclass(frozen=True)
class PageInfo:
    """Where a paginated list is: 1-based page, rows shown and total."""

    page: int
    pages: int
    total: int
    start: int
    end: int

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def parse_page(raw: str | None) -> int:
    """A page number from the query string; anything odd means page 1 (never an error page)."""
    try:
        page = int(raw or "1")
    except ValueError:
        return 1
    return min(max(page, 1), 10**9)


def clean_query(raw: str | None) -> str:
    """A search box value, trimmed and bounded."""
    return (raw or "").strip()[:MAX_QUERY_LEN]


def page_info(total: int, page: int, size: int = PAGE_SIZE) -> PageInfo:
    """Where a list's page is, for the pager under a table."""
    pages = max(1, -(-total // size))
    page = min(page, pages)
    start = (page - 1) * size + 1 if total else 0
    end = min(page * size, total)
    return PageInfo(page=page, pages=pages, total=total, start=start, end=end)
