"""Billing periods are counted from the anchor, so month ends stay month ends."""

import pytest

from apps.subscriptions.periods import period_bounds, period_start

from .factories import at


def starts(anchor, cycle, count):
    return [period_start(anchor=anchor, cycle=cycle, index=n).date().isoformat() for n in range(count)]


def test_monthly_from_january_31_keeps_each_month_end():
    anchor = at("2026-01-31 09:30")
    assert starts(anchor, "monthly", 6) == [
        "2026-01-31",
        "2026-02-28",
        "2026-03-31",
        "2026-04-30",
        "2026-05-31",
        "2026-06-30",
    ]


def test_monthly_from_january_31_of_a_leap_year_gives_february_29():
    assert starts(at("2028-01-31 00:00"), "monthly", 3) == ["2028-01-31", "2028-02-29", "2028-03-31"]


def test_yearly_from_february_29_falls_back_to_the_28th_and_returns_in_leap_years():
    assert starts(at("2028-02-29 00:00"), "yearly", 5) == [
        "2028-02-29",
        "2029-02-28",
        "2030-02-28",
        "2031-02-28",
        "2032-02-29",
    ]


@pytest.mark.parametrize(
    ("cycle", "end"),
    [
        ("daily", "2026-03-02 18:00"),
        ("weekly", "2026-03-08 18:00"),
        ("monthly", "2026-04-01 18:00"),
        ("yearly", "2027-03-01 18:00"),
    ],
)
def test_a_period_ends_one_cycle_after_it_starts_at_the_same_time_of_day(cycle, end):
    start, stop = period_bounds(anchor=at("2026-03-01 18:00"), cycle=cycle, index=0)
    assert (start, stop) == (at("2026-03-01 18:00"), at(end))
