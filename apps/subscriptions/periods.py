"""Billing periods: where period n of a subscription starts and ends.

Period n starts at `anchor + n cycles`, always counted from the anchor and never from the previous
period's end, so monthly and yearly cycles keep the anchor's day: an anchor on Jan 31 gives
Feb 28 (29 in a leap year), Mar 31, Apr 30, May 31 ... Stepping from the previous end instead
would drift to the 28th after February and stay there. Times are aware UTC datetimes; a daily
cycle is a calendar day, which in UTC is always 24 hours.
"""

from __future__ import annotations

from datetime import datetime

from dateutil.relativedelta import relativedelta

# billing_cycle -> the relativedelta unit and how many of it make one cycle.
CYCLES: dict[str, tuple[str, int]] = {
    "daily": ("days", 1),
    "weekly": ("days", 7),
    "monthly": ("months", 1),
    "yearly": ("years", 1),
}


def period_start(*, anchor: datetime, cycle: str, index: int) -> datetime:
    unit, size = CYCLES[cycle]
    return anchor + relativedelta(**{unit: size * index})


def period_bounds(*, anchor: datetime, cycle: str, index: int) -> tuple[datetime, datetime]:
    """[start, end) of period `index` (0 is the period that starts at the anchor)."""
    return (
        period_start(anchor=anchor, cycle=cycle, index=index),
        period_start(anchor=anchor, cycle=cycle, index=index + 1),
    )
