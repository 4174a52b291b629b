"""Timestamps as the API writes them: RFC 3339 strings over simulated seconds since :data:`EPOCH`."""

from __future__ import annotations

import datetime as dt
import math
from functools import lru_cache

EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
"""Wall-clock time of simulated second 0 (timestamps in objects are RFC 3339 strings, as the API writes)."""


@lru_cache(maxsize=4096)
def _day(index: int) -> str:
    return (EPOCH + dt.timedelta(days=index)).strftime("%Y-%m-%d")


@lru_cache(maxsize=4096)
def _clock(whole: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS`` of simulated second ``whole`` (formatted once: a run stamps each second many times)."""
    day, rest = divmod(whole, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    return f"{_day(day)}T{h:02d}:{m:02d}:{s:02d}"


def timestamp(seconds: float, micro: bool = False) -> str:
    """RFC 3339 for simulated ``seconds`` (metav1.Time; ``micro`` for metav1.MicroTime, as Lease renewTime)."""
    whole = math.floor(seconds)
    if micro:
        return f"{_clock(whole)}.{int((seconds - whole) * 1e6):06d}Z"
    return _clock(whole) + "Z"


@lru_cache(maxsize=4096)
def _day_seconds(date: str) -> float:
    return (dt.datetime.fromisoformat(date).replace(tzinfo=dt.UTC) - EPOCH).total_seconds()


def seconds(stamp: str) -> float:
    """Simulated seconds of an RFC 3339 timestamp written by :func:`timestamp`."""
    clock = stamp[11:].rstrip("Z")
    h, m, s = clock.split(":")
    return _day_seconds(stamp[:10]) + int(h) * 3600 + int(m) * 60 + float(s)
