"""UTC text for any timestamp a policy can hold (uint48: up to 2**48 - 1 s, about the year 8,921,556).

``datetime`` stops at the year 9999, and the contract accepts any 48-bit time, so a policy valid "forever"
made every description of it raise ``ValueError``. :func:`utc_text` converts days to a proleptic Gregorian
date with integer arithmetic instead (the 400-year-era method; written here because the standard library
has no calendar beyond 9999), so every value prints, exactly.

Pure: no I/O.
"""

from __future__ import annotations

__all__ = ["civil_from_days", "next_period_start", "utc_text"]

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
