"""UTC text for any timestamp a policy can hold (uint48: up to 2**48 - 1 s, about the year 8,921,556).

``datetime`` stops at the year 9999, and the contract accepts any 48-bit time, so a policy valid "forever"
made every description of it raise ``ValueError``. :func:`utc_text` converts days to a proleptic Gregorian
date with integer arithmetic instead (the 400-year-era method; written here because the standard library
has no calendar beyond 9999), so every value prints, exactly.

Pure: no I/O.
"""

from __future__ import annotations

__all__ = ["civil_from_days", "next_period_start", "period_text", "utc_text"]

_DAYS_PER_ERA = 146_097  # 400 Gregorian years
_UNIX_EPOCH_SHIFT = 719_468  # days from 0000-03-01 to 1970-01-01


def civil_from_days(days: int) -> tuple[int, int, int]:
    """``(year, month, day)`` of the date ``days`` after 1970-01-01 (proleptic Gregorian, any integer).

    >>> civil_from_days(0), civil_from_days(-1), civil_from_days(11_016)
    ((1970, 1, 1), (1969, 12, 31), (2000, 2, 29))
    """
    z = days + _UNIX_EPOCH_SHIFT
    era = z // _DAYS_PER_ERA
    doe = z - era * _DAYS_PER_ERA  # [0, 146096]
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365  # [0, 399]
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)  # [0, 365], the year starting on March 1
    mp = (5 * doy + 2) // 153  # [0, 11], March = 0
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (1 if month <= 2 else 0)
    return year, month, day


def utc_text(timestamp: int, *, sep: str = "T", suffix: str = "Z") -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` for unix seconds ``timestamp``, for every integer (years past 9999 too).

    >>> utc_text(0), utc_text(253_402_300_800), utc_text(2**48 - 1, sep=" ", suffix=" UTC")
    ('1970-01-01T00:00:00Z', '10000-01-01T00:00:00Z', '8921556-12-07 10:44:15 UTC')
    """
    timestamp = int(timestamp)
    days, rest = divmod(timestamp, 86_400)
    year, month, day = civil_from_days(days)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    return f"{year:04d}-{month:02d}-{day:02d}{sep}{hours:02d}:{minutes:02d}:{seconds:02d}{suffix}"


def next_period_start(now: int, period: int) -> int:
    """When the contract's period counter ``now // period`` next changes: ``(now // period + 1) * period``.

    Periods are calendar windows aligned on the unix epoch (a day resets at 00:00 UTC), not rolling windows.

    >>> next_period_start(86_399, 86_400), next_period_start(86_400, 86_400)
    (86400, 172800)
    """
    if period <= 0:
        raise ValueError("period must be positive")
    return (int(now) // period + 1) * period


_NAMED_PERIODS = {
    60: ("UTC minute", "at the start of every minute"),
    3_600: ("UTC hour", "at the top of every hour, UTC"),
    86_400: ("UTC day", "at 00:00 UTC"),
    604_800: ("7-day week", "on Thursdays at 00:00 UTC (weeks counted from 1970-01-01, a Thursday)"),
}


def _span(seconds: int) -> tuple[int, str]:
    """``(count, unit)``: the largest unit that divides ``seconds`` exactly."""
    for unit, size in (("week", 604_800), ("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds % size == 0:
            return seconds // size, unit
    return seconds, "second"


def period_text(period: int, now: int | None = None) -> str:
    """How the contract's periodic cap of ``period`` seconds resets, exactly, for people and LLM tools.

    The contract counts a period's spend under the index ``block.timestamp // period``: a period is a calendar
    window aligned on 1970-01-01 00:00 UTC, not a rolling window, so up to twice the per-period amount can move
    within seconds around a reset. With ``now``, the next reset time is given too.

    >>> period_text(86_400, now=86_390)
    'per UTC day (a calendar window, not a rolling one: resets at 00:00 UTC; next reset 1970-01-02 00:00:00 UTC)'
    >>> period_text(7_200)
    'per 2-hour window (a calendar window, not a rolling one: resets when unix time is a multiple of 7200 s, i.e. every 2 hours from 00:00 UTC)'
    """
    period = int(period)
    if period <= 0:
        raise ValueError("period must be positive")
    if period in _NAMED_PERIODS:
        name, rule = _NAMED_PERIODS[period]
        rule = f"resets {rule}"
    else:
        count, unit = _span(period)
        name = f"{count}-{unit} window" if count != 1 else f"{unit} window"
        rule = f"resets when unix time is a multiple of {period} s"
        if 86_400 % period == 0:
            rule += f", i.e. every {count} {unit}{'s' if count != 1 else ''} from 00:00 UTC"
    text = f"per {name} (a calendar window, not a rolling one: {rule}"
    if now is not None:
        text += f"; next reset {utc_text(next_period_start(now, period), sep=' ', suffix=' UTC')}"
    return text + ")"
