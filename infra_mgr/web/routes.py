"""Dashboard routes (filled by the dashboard work)."""

from fastapi import FastAPI


def mount_web(app: FastAPI) -> None:
    return None
