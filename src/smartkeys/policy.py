"""Session policies in human units: files (JSON, TOML, YAML) -> a validated model -> the packed policy.

:mod:`smartkeys.policy_codec` is what the contract decodes (wei, base units, unix seconds). This module is
what people write::

    key: "0x1111111111111111111111111111111111111111"
    valid_for: 24h                       # or valid_until: 2030-01-01T00:00:00Z / 1893456000 / "7d"
    tokens:
      USDC: {address: "0xA0b8…", decimals: 6}
    contracts:
      router: "0x…"
    allow:
      - {contract: USDC, functions: ["transfer(address,uint256)"]}
      - {contract: router, functions: "*"}          # the wildcard is explicit, never implied
      - {send_native_to: "0x…"}                     # plain transfers only (EMPTY_CALLDATA)
    limits:
      native: {per_call: 0.1 ether, total: 1 ether, per_period: 0.2 ether, period: day}
      tokens:
        USDC: {total: 100 USDC, per_period: 20 USDC, period: per day}
      max_uses: 50
      gas_budget: 0.05 ether
      paymasters: ["0x…"]

- :func:`load_policy` (by file extension) and :func:`parse_policy` (a mapping) give a :class:`PolicyModel`;
  every bad field raises :class:`~smartkeys.errors.InvalidInputError` naming its path
  (``limits.tokens.USDC.total``), the value, what was expected and the fix.
- :meth:`PolicyModel.compile` turns it into a :class:`~smartkeys.policy_codec.SessionPolicy` for a given
  ``now`` (exact integer arithmetic; floats are never used); :meth:`PolicyModel.describe` summarises it.
- :func:`policy_from_chain` reads a granted policy back from its ``SessionGranted`` log and
  :func:`decompile` shows it in human units again.

Time rules: relative times (``"24h"``) count from the ``now`` given to :meth:`~PolicyModel.compile`;
``valid_from`` maps to the policy's exclusive ``valid_after`` (as EntryPoint v0.8: the first valid second is
``valid_from + 1``) and ``valid_until`` is inclusive. Lifetimes over :data:`MAX_LIFETIME` (400 days) need
``allow_long_lifetime: true``; unix times in milliseconds, inverted and already-ended windows are refused.

Amounts: ``"0.5 ether"``, ``"2 gwei"``, ``"1000 wei"`` for the native coin, ``"100.5 USDC"`` for a token of the
``tokens`` table. More decimal places than the unit has, negative numbers, exponents and bare numbers without
a unit are refused.

Safety checks beyond the contract's own: a token the key may call must have a cap in ``limits.tokens`` (or the
key could move all of it) unless ``allow_uncapped_assets = true`` says so explicitly (the contract enforces the
same default deny at grant), ``send_native_to`` needs ``limits.native``, multicall-style functions are refused.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation, localcontext
from pathlib import Path
from typing import Any, cast

from eth_abi import decode as abi_decode
from eth_utils import keccak

from smartkeys.argument_rules import ArgumentRule, RuleOp, parameter_at, signature_parameters
from smartkeys.encoding import checked_address, checked_bytes, checked_uint
from smartkeys.errors import InvalidInputError, SmartKeysError
from smartkeys.policy_codec import (
    MAX_PAYMASTERS,
    MAX_PERMISSIONS,
    MAX_TOKEN_CAPS,
    MULTICALL_SELECTORS,
    Permission,
    PermissionMode,
    SessionPolicy,
    TokenCap,
    selector_of,
)
from smartkeys.policy_where import argument_names, compile_where

__all__ = [
    "ANY_FUNCTION",
    "AllowCall",
    "AllowNativeTransfer",
    "Duration",
    "Instant",
    "Limits",
    "MAX_LIFETIME",
    "NATIVE_UNITS",
    "NativeLimits",
    "PolicyIntegrityError",
    "PolicyModel",
    "PolicyNotFoundError",
    "SESSION_GRANTED_TOPIC",
    "granted_policies",
    "Token",
    "TokenLimit",
    "decompile",
    "dump_policy",
    "format_amount",
    "load_policy",
    "parse_amount",
    "parse_duration",
    "parse_period",
    "parse_policy",
    "policy_from_chain",
    "policy_to_toml",
]

#: The explicit wildcard: ``functions: "*"`` allows any function of a contract.
ANY_FUNCTION = "*"
#: The line every report of a policy with the ALLOW_UNCAPPED_ASSETS flag starts with.
UNCAPPED_WARNING = ("WARNING: allow_uncapped_assets is set: the key may move assets that no cap limits "
                    "(up to the account's whole balance of them)")

#: The line every report of a policy with the ALLOW_STANDING_ALLOWANCES flag shows.
STANDING_WARNING = ("WARNING: allow_standing_allowances is set: the key may call contracts this account already "
                    "approved to spend a capped token; what they let anyone pull later is not capped")

#: Longest session window accepted without ``allow_long_lifetime: true``.
MAX_LIFETIME = 400 * 86_400
#: Native units and their decimals (case-insensitive).
NATIVE_UNITS: Mapping[str, int] = {"wei": 0, "gwei": 9, "ether": 18, "eth": 18}

_U32 = 2**32 - 1
_U48 = 2**48 - 1
_U96 = 2**96 - 1
_U112 = 2**112 - 1
_MAX_DECIMALS = 36

#: keccak256("SessionGranted(bytes32,address,uint32,bytes)")
SESSION_GRANTED_TOPIC = keccak(text="SessionGranted(bytes32,address,uint32,bytes)")

#: Signatures :func:`decompile` recognises without being told.
_COMMON_SIGNATURES = (
    "transfer(address,uint256)",
    "approve(address,uint256)",
    "transferFrom(address,address,uint256)",
    "increaseAllowance(address,uint256)",
    "decreaseAllowance(address,uint256)",
    "permit(address,address,uint256,uint256,uint8,bytes32,bytes32)",
    "deposit()",
    "withdraw(uint256)",
)

_TOP_KEYS = ("address_book", "allow", "allow_long_lifetime", "allow_standing_allowances", "allow_uncapped_assets", "contracts", "key", "limits", "salt", "tokens",
             "valid_for", "valid_from", "valid_until")
_LIMIT_KEYS = ("every", "gas_budget", "max_uses", "native", "paymasters", "tokens", "uses_per_day")
_NATIVE_KEYS = ("per_call", "per_period", "period", "total")
_TOKEN_LIMIT_KEYS = ("per_period", "period", "total")
_TOKEN_KEYS = ("address", "decimals")
_ALLOW_CALL_KEYS = ("contract", "functions", "where")
_ALLOW_NATIVE_KEYS = ("send_native_to",)
#: A signature with argument names ("type name"; names are allowed for `where`): "pay(uint256[2] xs,address to)".
#: A type ends in a letter, digit, ``]`` or ``)``; a name follows it after a space.
_NAMED_SIG_RE = re.compile(r"[\w\])]\s+[A-Za-z_$]")
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------


class PolicyNotFoundError(SmartKeysError, LookupError):
    """No ``SessionGranted`` log for this session id at this account."""


class PolicyIntegrityError(SmartKeysError):
    """A ``SessionGranted`` log whose policy does not hash to the session id (or names another key)."""


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _suggest(value: Any, candidates: Iterable[str]) -> str | None:
    if not isinstance(value, str):
        return None
    candidates = [c for c in candidates if isinstance(c, str)]
    for c in candidates:
        if c.lower() == value.lower():
            return c
    close = difflib.get_close_matches(value, candidates, n=1, cutoff=0.6)
    return close[0] if close else None


def _did_you_mean(value: Any, candidates: Iterable[str], fallback: str) -> str:
    best = _suggest(value, candidates)
    return f"did you mean {best!r}?" if best is not None else fallback


def _mapping(value: Any, path: str, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInputError(path or "policy", value, what, "write a table/mapping of key: value pairs")
    for k in value:
        if not isinstance(k, str):
            raise InvalidInputError(_join(path, k), k, "text keys", "quote the key")
    return value


def _check_keys(value: Mapping[str, Any], path: str, allowed: Iterable[str], *, elsewhere: Mapping[str, str] | None = None) -> None:
    allowed = tuple(allowed)
    for k in value:
        if k in allowed:
            continue
        if elsewhere and k in elsewhere:
            hint = f"move it under {elsewhere[k]!r}"
        else:
            hint = _did_you_mean(k, allowed, f"remove {k!r}; allowed keys: {', '.join(allowed)}")
        raise InvalidInputError(_join(path, k), k, f"one of: {', '.join(allowed)}", hint)


#: A value still to be filled in, as the presets write it: "<FILL IN: the treasury's address>".
_PLACEHOLDER_RE = re.compile(r"^\s*<\s*(?:FILL IN:?\s*)?(.*?)\s*>\s*$", re.S)


def _address(value: Any, path: str) -> str:
    placeholder = _PLACEHOLDER_RE.match(value) if isinstance(value, str) else None
    if placeholder is not None:
        raise InvalidInputError(
            path, value, "an address (0x + 40 hex digits)",
            f"replace the placeholder with {placeholder.group(1) or 'the address'}",
        )
    if isinstance(value, int) and not isinstance(value, bool):
        raise InvalidInputError(
            path, value, "an address as quoted text (0x + 40 hex digits)",
            'quote the address ("0x…"): YAML reads an unquoted 0x value as a number',
        )
    return checked_address(value, path, allow_zero=False)


def _int_field(value: Any, path: str, maximum: int, hint: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise InvalidInputError(path, value, f"a whole number from 0 to {maximum}", hint)
    return value


# --------------------------------------------------------------------------------------------
# durations and times
# --------------------------------------------------------------------------------------------

_DURATION_UNITS = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3_600),
    **dict.fromkeys(("d", "day", "days"), 86_400),
    **dict.fromkeys(("w", "week", "weeks"), 604_800),
}
def _small_int(text: str) -> int | None:
    """``text`` as an int if it is 1-30 ASCII digits, else None (the caller's check then names the field).
    ``str.isdigit`` alone accepts '²', which ``int`` refuses, and ``int`` refuses 4,300+ digits: both with a
    bare ValueError."""
    return int(text) if 0 < len(text) <= 30 and text.isascii() and text.isdigit() else None


_SUBSECOND = ("ms", "msec", "msecs", "millisecond", "milliseconds", "us", "µs", "ns")
_DURATION_RE = re.compile(r"^(?:\s*\d+\s*[a-zµ]+)+\s*$")
_DURATION_PART = re.compile(r"(\d+)\s*([a-zµ]+)")
_DURATION_EXPECTED = "a duration like '24h', '7d', '90m' or '30s' (units s, m, h, d, w)"


def parse_duration(value: Any, field: str = "duration") -> int:
    """Seconds in a duration such as ``"24h"``, ``"7d"``, ``"90m"``, ``"30s"`` or ``"1h30m"``.

    >>> parse_duration("1h30m"), parse_duration("7d")
    (5400, 604800)
    >>> parse_duration("500ms")
    Traceback (most recent call last):
    ...
    smartkeys.errors.InvalidInputError: field 'duration': expected a duration in whole seconds or more, got '500ms'; fix: sub-second durations are not supported: use s, m, h, d or w
    """
    if isinstance(value, Duration):
        return value.seconds
    if isinstance(value, bool) or not isinstance(value, str):
        hint = f"add a unit, e.g. '{value}s' or '{value}h'" if isinstance(value, (int, float)) else "write it as text like '24h'"
        raise InvalidInputError(field, value, _DURATION_EXPECTED, hint)
    text = value.strip().lower()
    if text.startswith("-"):
        raise InvalidInputError(field, value, "a positive duration", "remove the minus sign")
    if re.search(r"\d[.,]\d", text):
        raise InvalidInputError(field, value, "whole numbers in a duration", "use a smaller unit, e.g. '90m' instead of '1.5h'")
    if not _DURATION_RE.match(text):
        hint = "write a number then a unit, e.g. '24h'"
        if text.isdigit():
            hint = f"add a unit: '{text}s' for seconds"
        raise InvalidInputError(field, value, _DURATION_EXPECTED, hint)
    total = 0
    for number, unit in _DURATION_PART.findall(text):
        if unit in _SUBSECOND:
            raise InvalidInputError(
                field, value, "a duration in whole seconds or more",
                "sub-second durations are not supported: use s, m, h, d or w",
            )
        if unit not in _DURATION_UNITS:
            fallback = "use s, m, h, d or w (months and years vary in length: write '30d' or '365d')"
            raise InvalidInputError(field, value, _DURATION_EXPECTED, _did_you_mean(unit, _DURATION_UNITS, fallback))
        if len(number) > 20:  # int() refuses 4,300+ digits with a bare ValueError; 48 bits need 15
            raise InvalidInputError(field, value, "a duration that fits in 48 bits of seconds", "use a shorter duration")
        total += int(number) * _DURATION_UNITS[unit]
    if total == 0:
        raise InvalidInputError(field, value, "a duration longer than zero", "use at least '1s'")
    if total > _U48:
        raise InvalidInputError(field, value, "a duration that fits in 48 bits of seconds", "use a shorter duration")
    return total


def _duration_text(seconds: int) -> str:
    for unit, size in (("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class Duration:
    """A span of time relative to the ``now`` given at compile time (whole seconds, > 0)."""

    seconds: int

    def __post_init__(self) -> None:
        if isinstance(self.seconds, bool) or not isinstance(self.seconds, int) or not 0 < self.seconds <= _U48:
            raise InvalidInputError("duration", self.seconds, "a positive whole number of seconds", "use e.g. Duration(86400)")

    def __str__(self) -> str:
        return _duration_text(self.seconds)


@dataclass(frozen=True)
class Instant:
    """An absolute time in unix seconds."""

    timestamp: int

    def __post_init__(self) -> None:
        _int_field(self.timestamp, "timestamp", _U48, "pass unix seconds that fit in 48 bits")

    def __str__(self) -> str:
        from smartkeys.timefmt import utc_text

        return utc_text(self.timestamp)  # every 48-bit time, years past 9999 included


TimeSpec = Duration | Instant


def _unix_seconds(number: int, field: str, raw: Any) -> Instant:
    if number >= 10**12:
        raise InvalidInputError(
            field, raw, "unix time in seconds (10 digits)",
            f"this looks like milliseconds: use seconds, {number // 1000}",
        )
    if number < 10**9:
        raise InvalidInputError(
            field, raw, "unix time in seconds (10 digits), an ISO 8601 time or a duration",
            f"for a duration write '{number}s'; for an absolute time use unix seconds or e.g. '2030-01-01T00:00:00Z'",
        )
    return Instant(number)


def _from_datetime(value: _dt.datetime, field: str, raw: Any) -> Instant:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInputError(
            field, str(raw), "an ISO 8601 time with a timezone",
            "add a timezone, e.g. 'Z' for UTC or '+02:00'",
        )
    if value.microsecond:
        raise InvalidInputError(field, str(raw), "a time in whole seconds", "drop the fraction of a second")
    stamp = int(value.timestamp())
    if not 0 <= stamp <= _U48:
        raise InvalidInputError(field, str(raw), "a time between 1970 and the 48-bit limit", "pick a realistic time")
    return Instant(stamp)


def _parse_time(value: Any, field: str) -> TimeSpec:
    """A duration (relative to now) or an absolute time (ISO 8601 with timezone, or unix seconds)."""
    if isinstance(value, (Duration, Instant)):
        return value
    if isinstance(value, _dt.datetime):
        return _from_datetime(value, field, value)
    if isinstance(value, _dt.date):
        raise InvalidInputError(field, str(value), "a time with a timezone", f"write e.g. '{value.isoformat()}T00:00:00Z'")
    if isinstance(value, bool):
        raise InvalidInputError(field, value, "a duration like '24h' or an absolute time", "write e.g. '24h'")
    if isinstance(value, int):
        return _unix_seconds(value, field, value)
    if isinstance(value, float):
        raise InvalidInputError(field, value, "whole unix seconds", "drop the fraction (and never use milliseconds)")
    if not isinstance(value, str):
        raise InvalidInputError(field, value, "a duration like '24h' or an absolute time", "write it as text")
    text = value.strip()
    if (seconds := _small_int(text)) is not None:
        return _unix_seconds(seconds, field, value)
    if re.match(r"^\d{4}-\d{2}-\d{2}", text):
        try:
            parsed = _dt.datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            raise InvalidInputError(
                field, value, "an ISO 8601 time like '2030-01-01T00:00:00Z'", "check the date and time"
            ) from None
        return _from_datetime(parsed, field, value)
    if re.match(r"^\d+\.\d+$", text):
        raise InvalidInputError(field, value, "whole unix seconds", "drop the fraction (and never use milliseconds)")
    return Duration(parse_duration(value, field))


# --------------------------------------------------------------------------------------------
# amounts
# --------------------------------------------------------------------------------------------

_NUMBER_RE = re.compile(r"^\d+(?:_\d+)*(?:\.\d+(?:_\d+)*)?$")
_GLUED_RE = re.compile(r"^([0-9][0-9_.]*)([A-Za-z].*)$")


def _split_amount(value: Any, field: str, example_unit: str) -> tuple[str, str]:
    if isinstance(value, bool) or not isinstance(value, str):
        if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
            raise InvalidInputError(
                field, value, f"an amount with a unit, like '1.5 {example_unit}'",
                f"add the unit: '{value} {example_unit}'",
            )
        raise InvalidInputError(field, value, f"an amount with a unit, like '1.5 {example_unit}'", "write it as text")
    parts = value.split()
    if len(parts) == 1:
        glued = _GLUED_RE.match(parts[0])
        parts = [glued.group(1), glued.group(2)] if glued else parts
    if len(parts) == 1:
        number = parts[0]
        if number.startswith("-"):
            raise InvalidInputError(field, value, "a non-negative amount", "amounts cannot be negative")
        raise InvalidInputError(field, value, f"an amount with a unit, like '1.5 {example_unit}'", f"add the unit: '{number} {example_unit}'")
    if len(parts) != 2:
        raise InvalidInputError(field, value, f"'<number> <unit>', like '1.5 {example_unit}'", "write one number and one unit")
    number, unit = parts
    if number.startswith("-"):
        raise InvalidInputError(field, value, "a non-negative amount", "amounts cannot be negative")
    if not _NUMBER_RE.match(number):
        if re.match(r"^[0-9.]+[eE][+-]?\d+$", number):
            hint = "write the number in full (no exponent), e.g. '1000000000 gwei'"
        elif number.startswith("."):
            hint = f"write '0{number} {unit}'"
        elif "," in number:
            hint = "use '.' as the decimal point and no thousands separators ('_' is fine)"
        else:
            hint = f"write a plain decimal number, e.g. '1.5 {unit}'"
        raise InvalidInputError(field, value, "a non-negative decimal number then a unit", hint)
    return number.replace("_", ""), unit


def _scale(number: str, decimals: int, unit: str, field: str, raw: Any, maximum: int) -> int:
    with localcontext() as ctx:
        ctx.prec = 400
        try:
            scaled = Decimal(number).scaleb(decimals)
        except InvalidOperation:  # pragma: no cover - the regex already refused these
            raise InvalidInputError(field, raw, "a decimal number", "check the number") from None
        if scaled != scaled.to_integral_value():
            smallest = format_amount(1, decimals, unit)
            raise InvalidInputError(
                field, raw, f"at most {decimals} decimal places ({unit} has {decimals} decimals)",
                f"round to {decimals} decimal places: the smallest amount is {smallest}",
            )
        result = int(scaled)
    if result > maximum:
        raise InvalidInputError(
            field, raw, f"at most {format_amount(maximum, decimals, unit)}", "use a smaller amount"
        )
    return result


def _native_amount(value: Any, field: str) -> int:
    number, unit = _split_amount(value, field, "ether")
    decimals = NATIVE_UNITS.get(unit.lower())
    if decimals is None:
        raise InvalidInputError(
            field, value, "a native amount in ether, gwei or wei",
            _did_you_mean(unit, NATIVE_UNITS, "use 'ether', 'gwei' or 'wei' (token amounts go under limits.tokens)"),
        )
    return _scale(number, decimals, unit.lower(), field, value, _U96)


def _token_amount(value: Any, field: str, name: str, token: Token, all_tokens: Iterable[str]) -> int:
    number, unit = _split_amount(value, field, name)
    if unit != name:
        if unit.lower() == name.lower():
            hint = f"did you mean {name!r}? (token names are case-sensitive)"
        elif unit in all_tokens or unit.lower() in NATIVE_UNITS:
            hint = f"this limit is for {name}: write it as '{number} {name}'"
        else:
            hint = _did_you_mean(unit, [name], f"write it as '{number} {name}'")
        raise InvalidInputError(field, value, f"an amount of {name}, like '100 {name}'", hint)
    return _scale(number, token.decimals, name, field, value, _U112)


def parse_amount(value: Any, *, tokens: Mapping[str, Any] | None = None, field: str = "amount") -> int:
    """Base units in ``"0.5 ether"``, ``"2 gwei"``, ``"1000 wei"`` or ``"100.5 USDC"`` (with ``tokens``).

    Exact: the number is scaled with :class:`decimal.Decimal`, never a float.

    >>> parse_amount("0.1 ether")
    100000000000000000
    >>> parse_amount("100.5 USDC", tokens={"USDC": Token("0x" + "aa" * 20, 6)})
    100500000
    """
    table = _parse_tokens(tokens or {}, "tokens")
    number, unit = _split_amount(value, field, "ether")
    if unit in table:
        return _scale(number, table[unit].decimals, unit, field, value, _U112)
    if unit.lower() in NATIVE_UNITS:
        return _scale(number, NATIVE_UNITS[unit.lower()], unit.lower(), field, value, _U96)
    raise InvalidInputError(
        field, value, "an amount in ether, gwei, wei or a token of the tokens table",
        _did_you_mean(unit, [*NATIVE_UNITS, *table], "add the token to `tokens` with its address and decimals"),
    )


def format_amount(value: int, decimals: int, unit: str) -> str:
    """``value`` base units as ``"<decimal> <unit>"``, exactly (trailing zeros dropped).

    >>> format_amount(100_500_000, 6, "USDC"), format_amount(10**17, 18, "ether")
    ('100.5 USDC', '0.1 ether')
    """
    with localcontext() as ctx:
        ctx.prec = 400
        text = format(Decimal(value).scaleb(-decimals), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text} {unit}"


def _native_text(wei: int) -> str:
    if wei == 0 or wei >= 10**15:
        return format_amount(wei, 18, "ether")
    if wei >= 10**6:
        return format_amount(wei, 9, "gwei")
    return format_amount(wei, 0, "wei")


# --------------------------------------------------------------------------------------------
# periods
# --------------------------------------------------------------------------------------------

_PERIOD_WORDS = {
    "minute": 60, "hour": 3_600, "day": 86_400, "week": 604_800,
    "hourly": 3_600, "daily": 86_400, "weekly": 604_800,
}
_PERIOD_NAMES = {60: "minute", 3_600: "hour", 86_400: "day", 604_800: "week"}


def parse_period(value: Any, field: str = "period") -> int:
    """Seconds in a budget period: ``"day"``, ``"per day"``, ``"hourly"`` or a duration such as ``"12h"``.

    >>> parse_period("per day"), parse_period("12h"), parse_period("week")
    (86400, 43200, 604800)
    """
    if isinstance(value, bool) or not isinstance(value, str):
        hint = f"write '{value}s' for seconds, or 'minute', 'hour', 'day', 'week'" if isinstance(value, int) else "write e.g. 'day' or '12h'"
        raise InvalidInputError(field, value, "a period: minute, hour, day, week, 'per day' or a duration like '12h'", hint)
    text = value.strip().lower()
    for prefix in ("per ", "every ", "a ", "1 "):
        if text.startswith(prefix):
            text = text[len(prefix):].strip()
    if text in _PERIOD_WORDS:
        return _PERIOD_WORDS[text]
    if text in ("month", "year", "monthly", "yearly", "annually"):
        raise InvalidInputError(field, value, "a fixed-length period", "months and years vary in length: use '30d' or '365d'")
    if not re.match(r"^\d", text):
        raise InvalidInputError(
            field, value, "a period: minute, hour, day, week, 'per day' or a duration like '12h'",
            _did_you_mean(text, _PERIOD_WORDS, "use minute, hour, day, week or a duration like '12h'"),
        )
    seconds = parse_duration(text, field)
    if seconds > _U32:
        raise InvalidInputError(field, value, "a period shorter than 2**32 seconds", "use a shorter period")
    return seconds


def _period_text(seconds: int) -> str:
    return _PERIOD_NAMES.get(seconds) or _duration_text(seconds)


# --------------------------------------------------------------------------------------------
# model
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    """An ERC-20 of the ``tokens`` table: its address and decimals (amounts like ``"100 USDC"``)."""

    address: str
    decimals: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", _address(self.address, "token.address"))
        _int_field(self.decimals, "token.decimals", _MAX_DECIMALS, "use the token's decimals() value, e.g. 6 or 18")


@dataclass(frozen=True)
class AllowCall:
    """The key may call ``functions`` (signatures or 0x selectors, or ``"*"`` for any) on ``contract``.

    ``contract`` is a name of the ``contracts`` or ``tokens`` table, or an address.
    """

    contract: str
    functions: tuple[str, ...] | str
    #: Argument rules in human terms (see :mod:`smartkeys.policy_where`), for an entry with one function.
    where: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.functions, list):
            object.__setattr__(self, "functions", tuple(self.functions))

    @property
    def any_function(self) -> bool:
        return self.functions == ANY_FUNCTION


@dataclass(frozen=True)
class AllowNativeTransfer:
    """The key may send plain native transfers (empty calldata) to ``send_native_to`` (a name or address)."""

    send_native_to: str


AllowEntry = AllowCall | AllowNativeTransfer


@dataclass(frozen=True)
class NativeLimits:
    """Native value caps in wei; ``per_call`` defaults to ``total``; ``per_period`` within each ``period`` s."""

    total: int
    per_call: int | None = None
    per_period: int = 0
    period: int = 0

    def __post_init__(self) -> None:
        if self.per_call is None:
            object.__setattr__(self, "per_call", self.total)


@dataclass(frozen=True)
class TokenLimit:
    """An ERC-20 cap in base units: ``total`` for the session, ``per_period`` within each ``period`` s."""

    total: int
    per_period: int = 0
    period: int = 0


@dataclass(frozen=True)
class Limits:
    """Budgets: native value, token outflows (by token name), uses, gas (wei) and allowed paymasters."""

    native: NativeLimits | None = None
    tokens: Mapping[str, TokenLimit] = field(default_factory=dict)
    max_uses: int = 0
    gas_budget: int = 0
    paymasters: tuple[str, ...] = ()
    #: Rate limits (``RateLimits.sol``): seconds between uses (0 = none), and uses per UTC day (0 = no limit).
    every: int = 0
    uses_per_day: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "tokens", dict(self.tokens))
        object.__setattr__(self, "paymasters", tuple(self.paymasters))


@dataclass(frozen=True)
class PolicyModel:
    """A session policy in human terms. Validated on construction; :meth:`compile` gives the packed policy.

    Exactly one of ``valid_for`` (a :class:`Duration` from the start) and ``valid_until`` (a
    :class:`Duration` from now or an :class:`Instant`) is required. Without ``valid_from`` the session is
    usable from ``now`` itself (``valid_after = now - 1``, the on-chain start being exclusive).
    """

    key: str
    allow: tuple[AllowEntry, ...]
    valid_from: TimeSpec | None = None
    valid_for: Duration | None = None
    valid_until: TimeSpec | None = None
    contracts: Mapping[str, str] = field(default_factory=dict)
    tokens: Mapping[str, Token] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    allow_long_lifetime: bool = False
    salt: int = 0
    #: The owner's explicit, named choice to let the key reach assets no cap covers (compiles to the
    #: policy's ALLOW_UNCAPPED_ASSETS flag; without it the account refuses such a grant). Shown loudly by
    #: :meth:`describe`, ``smartkeys status`` and ``smartkeys audit``.
    allow_uncapped_assets: bool = False
    #: The owner's explicit choice to let the key call contracts the account already approved to spend a capped
    #: token (compiles to ALLOW_STANDING_ALLOWANCES; without it the account refuses such calls).
    allow_standing_allowances: bool = False
    #: Names for addresses, usable in ``where`` rules (and wherever a contract name is).
    address_book: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", _address(self.key, "key"))
        object.__setattr__(self, "address_book", dict(self.address_book))
        object.__setattr__(self, "allow", tuple(self.allow))
        object.__setattr__(self, "contracts", dict(self.contracts))
        object.__setattr__(self, "tokens", dict(self.tokens))
        self._validate()

    # -- validation ---------------------------------------------------------------------------

    def _validate(self) -> None:
        if not isinstance(self.allow_long_lifetime, bool):
            raise InvalidInputError("allow_long_lifetime", self.allow_long_lifetime, "true or false", "write true or false")
        if not isinstance(self.allow_standing_allowances, bool):
            raise InvalidInputError("allow_standing_allowances", self.allow_standing_allowances, "true or false",
                                    "write true only if the key may call contracts you approved to spend a capped token")
        if not isinstance(self.allow_uncapped_assets, bool):
            raise InvalidInputError("allow_uncapped_assets", self.allow_uncapped_assets, "true or false",
                                    "write true only if the key may move assets that no limit caps")
        _int_field(self.salt, "salt", _U32, "use a number from 0 to 4294967295")
        self._validate_names()
        self._normalise_addresses()
        self._validate_window()
        self._validate_allow()
        self._validate_limits()

    def _validate_names(self) -> None:
        for name, token in self.tokens.items():
            path = f"tokens.{name}"
            if not isinstance(name, str) or not _NAME_RE.match(name):
                raise InvalidInputError(path, name, "a name of letters, digits, '_', '.', '-'", "rename the token, e.g. USDC")
            if name.lower() in NATIVE_UNITS:
                raise InvalidInputError(path, name, "a name that is not a native unit", f"{name!r} means the native coin; rename the token")
            if not isinstance(token, Token):
                raise InvalidInputError(path, token, "a Token(address, decimals)", "use Token(...)")
        for name, address in self.contracts.items():
            path = f"contracts.{name}"
            if not isinstance(name, str) or not _NAME_RE.match(name):
                raise InvalidInputError(path, name, "a name of letters, digits, '_', '.', '-'", "rename it, e.g. router")
            if name in self.tokens:
                raise InvalidInputError(path, name, "a name not also used in tokens", "tokens can be named in allow directly; remove it from contracts")
            cast(dict[str, str], self.contracts)[name] = _address(address, path)  # __post_init__ copied it to a dict

    def _normalise_addresses(self) -> None:
        """Checksum every literal address (names stay names), so equal policies compare equal."""

        def literal(ref: Any, path: str) -> Any:
            if (isinstance(ref, str) and ref[:2] in ("0x", "0X")) or (isinstance(ref, int) and not isinstance(ref, bool)):
                return _address(ref, path)
            return ref

        allow = []
        for i, entry in enumerate(self.allow):
            if isinstance(entry, AllowNativeTransfer):
                entry = AllowNativeTransfer(literal(entry.send_native_to, f"allow[{i}].send_native_to"))
            elif isinstance(entry, AllowCall):
                entry = AllowCall(literal(entry.contract, f"allow[{i}].contract"), entry.functions, entry.where)
            allow.append(entry)
        object.__setattr__(self, "allow", tuple(allow))
        if isinstance(self.limits, Limits):
            paymasters = tuple(literal(p, f"limits.paymasters[{i}]") for i, p in enumerate(self.limits.paymasters))
            object.__setattr__(self, "limits", replace(self.limits, paymasters=paymasters))

    def _validate_window(self) -> None:
        if self.valid_for is not None and self.valid_until is not None:
            raise InvalidInputError("valid_until", str(self.valid_until), "either valid_for or valid_until, not both", "remove one of them")
        if self.valid_for is None and self.valid_until is None:
            raise InvalidInputError("valid_for", None, "a lifetime: valid_for (e.g. '24h') or valid_until", "every session must expire: add valid_for: 24h")
        for name in ("valid_from", "valid_until"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, (Duration, Instant)):
                raise InvalidInputError(name, value, "a Duration or an Instant", "use parse_policy() for text")
        if self.valid_for is not None and not isinstance(self.valid_for, Duration):
            raise InvalidInputError("valid_for", str(self.valid_for), "a duration like '24h'", "valid_for is relative to valid_from; use valid_until for an absolute time")
        long_hint = "shorten the session, or set allow_long_lifetime: true if you really mean it"
        if not self.allow_long_lifetime:
            for name in ("valid_for", "valid_until"):
                value = getattr(self, name)
                if isinstance(value, Duration) and value.seconds > MAX_LIFETIME:
                    raise InvalidInputError(name, str(value), f"a lifetime of at most {MAX_LIFETIME // 86_400} days", long_hint)
        if isinstance(self.valid_from, Instant) and isinstance(self.valid_until, Instant):
            if self.valid_until.timestamp <= self.valid_from.timestamp:
                raise InvalidInputError(
                    "valid_until", str(self.valid_until), f"a time after valid_from ({self.valid_from})",
                    "the window is inverted: swap the times or fix valid_until",
                )
            if not self.allow_long_lifetime and self.valid_until.timestamp - self.valid_from.timestamp > MAX_LIFETIME:
                raise InvalidInputError("valid_until", str(self.valid_until), f"a lifetime of at most {MAX_LIFETIME // 86_400} days", long_hint)

    def _target(self, ref: Any, path: str) -> str:
        if isinstance(ref, str) and ref[:2] in ("0x", "0X"):
            return _address(ref, path)
        if isinstance(ref, int) and not isinstance(ref, bool):
            return _address(ref, path)
        if isinstance(ref, str) and ref in self.contracts:
            return self.contracts[ref]
        if isinstance(ref, str) and ref in self.tokens:
            return self.tokens[ref].address
        if isinstance(ref, str) and ref in self.address_book:
            return self.address_book[ref]
        raise InvalidInputError(
            path, ref, "a name from `address_book`, `contracts` or `tokens`, or an address",
            _did_you_mean(ref, [*self.address_book, *self.contracts, *self.tokens],
                          "add it to `contracts: {NAME: \"0x…\"}` (or `address_book`) or write its address"),
        )

    def _rules(self, entry: AllowCall, fn: str, path: str) -> tuple[ArgumentRule, ...]:
        """The argument rules of an entry's ``where`` table (amounts in the called token's units)."""
        if entry.where is None:
            return ()
        if len(entry.functions) != 1:
            raise InvalidInputError(f"{path}.where", dict(entry.where), "rules for an entry with exactly one function",
                                    "split the entry: one allow entry per function that has a `where`")
        amount = None
        name = entry.contract if isinstance(entry.contract, str) and entry.contract in self.tokens else None
        if name is not None:
            token = self.tokens[name]
            amount = lambda text, p: _token_amount(text, p, name, token, self.tokens)  # noqa: E731
        return compile_where(entry.where, fn, f"{path}.where", self._target, amount)

    def _permissions(self) -> list[tuple[str, Permission]]:
        """(field path, permission) for every allow entry, in order."""
        out: list[tuple[str, Permission]] = []
        for i, entry in enumerate(self.allow):
            path = f"allow[{i}]"
            if isinstance(entry, AllowNativeTransfer):
                target = self._target(entry.send_native_to, f"{path}.send_native_to")
                out.append((f"{path}.send_native_to", Permission(target, b"\x00" * 4, PermissionMode.EMPTY_CALLDATA)))
            elif isinstance(entry, AllowCall):
                target = self._target(entry.contract, f"{path}.contract")
                if entry.functions == ANY_FUNCTION:
                    out.append((f"{path}.functions", Permission(target, b"\x00" * 4, PermissionMode.ANY_SELECTOR)))
                    continue
                functions = entry.functions
                if isinstance(functions, str) or not isinstance(functions, tuple) or not functions:
                    raise InvalidInputError(
                        f"{path}.functions", functions, "a non-empty list of function signatures, or \"*\"",
                        "list them, e.g. [\"transfer(address,uint256)\"]; write \"*\" (alone) to allow any function",
                    )
                for j, fn in enumerate(functions):
                    fpath = f"{path}.functions[{j}]"
                    if fn == ANY_FUNCTION:
                        raise InvalidInputError(fpath, fn, "a function signature", "for any function write functions: \"*\" instead of a list")
                    if not isinstance(fn, str):
                        raise InvalidInputError(fpath, fn, "a function signature like 'transfer(address,uint256)'", "write it as text")
                    try:
                        # argument names are allowed for `where`; the selector uses the canonical signature
                        # (a named signature's own errors name the bad argument and are raised as they are)
                        selector = selector_of(argument_names(fn, fpath)[0] if _NAMED_SIG_RE.search(fn) else fn)
                    except InvalidInputError as e:
                        if _NAMED_SIG_RE.search(fn) and e.field != fpath:
                            raise
                        raise InvalidInputError(
                            fpath, fn, "a canonical signature like 'transfer(address,uint256)' or a 0x selector",
                            "use types only, no spaces or parameter names: 'transfer(address,uint256)'",
                        ) from None
                    if selector in MULTICALL_SELECTORS:
                        raise InvalidInputError(
                            fpath, fn, "a function that is not a multicall",
                            f"{MULTICALL_SELECTORS[selector]} hides inner calls the policy cannot check: allow the inner functions instead",
                        )
                    out.append((fpath, Permission(target, selector, PermissionMode.EXACT, self._rules(entry, fn, path))))
            else:
                raise InvalidInputError(path, entry, "an AllowCall or AllowNativeTransfer", "use parse_policy() for mappings")
        return out

    def _validate_allow(self) -> None:
        if not self.allow:
            raise InvalidInputError(
                "allow", [], "at least one allowed call",
                "a session with an empty scope could do nothing: add e.g. {contract: USDC, functions: [\"transfer(address,uint256)\"]}",
            )
        permissions = self._permissions()
        if len(permissions) > MAX_PERMISSIONS:
            raise InvalidInputError("allow", len(permissions), f"at most {MAX_PERMISSIONS} functions in all", "split the work over several sessions")
        seen: dict[Permission, str] = {}
        for path, perm in permissions:
            if perm in seen:
                raise InvalidInputError(path, perm.target, "each (contract, function) once", f"remove the duplicate of {seen[perm]}")
            seen[perm] = path

    def check_sensible(self) -> None:
        """Checks for likely mistakes, applied to every policy read by :func:`parse_policy`.

        Not applied on construction, so that :func:`decompile` can show any policy the chain accepted:
        a token the key may call must be capped, ``send_native_to`` needs a native budget, the session key
        is no target, and per-call <= per-period <= total.
        """
        permissions = self._permissions()
        # Permissions are alternatives: "*" on a contract would allow any call of it, voiding every `where` on it
        # (the account refuses such a grant with RulesBypassed; say so here with the field to change). Not on
        # construction: `decompile` shows such a policy from an account that predates the rule, marking the `where` void.
        wildcards = {p.target: path for path, p in permissions if p.mode is PermissionMode.ANY_SELECTOR}
        for path, perm in permissions:
            if perm.rules and perm.target in wildcards:
                ruled = path.rsplit(".", 1)[0]
                raise InvalidInputError(
                    wildcards[perm.target], ANY_FUNCTION, f"no \"*\" on a contract whose calls have a `where` ({ruled})",
                    f"\"*\" allows any call of {perm.target} with any arguments, so {ruled}.where would be void: "
                    "list the functions the key needs instead of \"*\", or drop the `where`",
                )
        capped = {self.tokens[name].address for name in self.limits.tokens if name in self.tokens}
        token_names = {t.address: name for name, t in self.tokens.items()}
        for path, perm in permissions:
            if perm.target == self.key:
                raise InvalidInputError(path, perm.target, "a target other than the session key", "check the address")
            if (perm.target in token_names and perm.target not in capped
                    and perm.mode is not PermissionMode.EMPTY_CALLDATA and not self.allow_uncapped_assets):
                name = token_names[perm.target]
                raise InvalidInputError(
                    path, name, f"a cap for token {name} in limits.tokens",
                    f"without a cap the key could move all of it: add limits.tokens.{name}.total (e.g. '100 {name}'), "
                    "or set allow_uncapped_assets = true if it really may",
                )
            if perm.mode is PermissionMode.EMPTY_CALLDATA and self.limits.native is None:
                raise InvalidInputError(
                    path, perm.target, "a native budget for send_native_to",
                    "add limits.native.total (e.g. '0.1 ether'); without it nothing can be sent",
                )

        native = self.limits.native
        if native is not None:
            per_call = cast(int, native.per_call)  # NativeLimit.__post_init__ replaced None with total
            if per_call > native.total:
                raise InvalidInputError(
                    "limits.native.per_call", _native_text(per_call), f"at most the total ({_native_text(native.total)})",
                    "lower per_call or raise total",
                )
            if native.per_period and per_call > native.per_period:
                raise InvalidInputError(
                    "limits.native.per_call", _native_text(per_call), f"at most per_period ({_native_text(native.per_period)})",
                    "lower per_call or raise per_period",
                )
            self._check_order("limits.native", native.total, native.per_period, _native_text)
        for name, cap in self.limits.tokens.items():
            token = self.tokens[name]
            self._check_order(f"limits.tokens.{name}", cap.total, cap.per_period,
                              lambda v, t=token, n=name: format_amount(v, t.decimals, n))

    @staticmethod
    def _check_order(path: str, total: int, per_period: int, show) -> None:
        if per_period > total:
            raise InvalidInputError(
                f"{path}.per_period", show(per_period), f"at most the total ({show(total)})",
                "lower per_period or raise total: the total caps the whole session",
            )

    def _validate_limits(self) -> None:
        limits = self.limits
        if not isinstance(limits, Limits):
            raise InvalidInputError("limits", limits, "a Limits", "use parse_policy() for mappings")
        _int_field(limits.max_uses, "limits.max_uses", _U32, "use a whole number (0 = unlimited)")
        _int_field(limits.gas_budget, "limits.gas_budget", _U96, "use a smaller budget")
        native = limits.native
        if native is not None:
            self._check_budget("limits.native", native.total, native.per_period, native.period, _U96)
            _int_field(native.per_call, "limits.native.per_call", _U96, "use a smaller cap")
        if len(limits.tokens) > MAX_TOKEN_CAPS:
            raise InvalidInputError("limits.tokens", len(limits.tokens), f"at most {MAX_TOKEN_CAPS} tokens", "split the policy")
        seen_addresses: dict[str, str] = {}
        for name, cap in limits.tokens.items():
            path = f"limits.tokens.{name}"
            if name not in self.tokens:
                fallback = "add it to `tokens` with its address and decimals"
                raise InvalidInputError(path, name, "a token name from `tokens`", _did_you_mean(name, self.tokens, fallback))
            if not isinstance(cap, TokenLimit):
                raise InvalidInputError(path, cap, "a TokenLimit", "use parse_policy() for mappings")
            token = self.tokens[name]
            if token.address in seen_addresses:
                raise InvalidInputError(path, name, "each token capped once", f"{name} has the same address as {seen_addresses[token.address]}")
            seen_addresses[token.address] = name
            self._check_budget(path, cap.total, cap.per_period, cap.period, _U112)
        if len(limits.paymasters) > MAX_PAYMASTERS:
            raise InvalidInputError("limits.paymasters", len(limits.paymasters), f"at most {MAX_PAYMASTERS}", "keep the paymasters you use")
        checked = []
        for i, paymaster in enumerate(limits.paymasters):
            address = self._target(paymaster, f"limits.paymasters[{i}]")
            if address in checked:
                raise InvalidInputError(f"limits.paymasters[{i}]", paymaster, "each paymaster once", "remove the duplicate")
            checked.append(address)

    @staticmethod
    def _check_budget(path: str, total: int, per_period: int, period: int, maximum: int) -> None:
        _int_field(total, f"{path}.total", maximum, "use a smaller cap")
        _int_field(per_period, f"{path}.per_period", maximum, "use a smaller cap")
        _int_field(period, f"{path}.period", _U32, "use a shorter period")
        if per_period and not period:
            raise InvalidInputError(f"{path}.period", None, "a period for per_period", "add period: day (or hour, week, '12h')")
        if period and not per_period:
            raise InvalidInputError(f"{path}.per_period", None, "a per_period amount for the period", "add per_period, or remove period")

    # -- compile --------------------------------------------------------------------------------

    def window(self, now: int) -> tuple[int, int]:
        """``(valid_after, valid_until)`` in unix seconds for the given ``now`` (checked as :meth:`compile`)."""
        if isinstance(now, int) and not isinstance(now, bool) and now >= 10**12:
            raise InvalidInputError("now", now, "unix time in seconds", f"this looks like milliseconds: use {now // 1000}")
        now = checked_uint(now, "now", 48)

        def resolve(spec: TimeSpec) -> int:
            return now + spec.seconds if isinstance(spec, Duration) else spec.timestamp

        # Without valid_from the session works from `now` itself: the on-chain start is exclusive
        # (EntryPoint v0.8 validAfter), and blocks can share a timestamp, so the start is now - 1.
        start = max(now - 1, 0) if self.valid_from is None else resolve(self.valid_from)
        if self.valid_for is not None:
            end, end_field, end_text = start + self.valid_for.seconds, "valid_for", str(self.valid_for)
        else:
            assert self.valid_until is not None
            end, end_field, end_text = resolve(self.valid_until), "valid_until", str(self.valid_until)
        if start > _U48 or end > _U48:
            raise InvalidInputError(end_field, end_text, "times that fit in 48 bits", "pick an earlier time")
        if end <= now:
            raise InvalidInputError(
                end_field, end_text, f"a time in the future (now is {Instant(now)})",
                "the window has already ended: use a future time or a duration like '24h'",
            )
        if end <= start:
            raise InvalidInputError(
                "valid_until", end_text, f"a time after valid_from ({Instant(start)})",
                "the window is inverted: move valid_until later or valid_from earlier",
            )
        if not self.allow_long_lifetime and end - max(start, now) > MAX_LIFETIME:
            raise InvalidInputError(
                end_field, end_text, f"a lifetime of at most {MAX_LIFETIME // 86_400} days",
                "shorten the session, or set allow_long_lifetime: true if you really mean it",
            )
        return start, end

    def compile(self, now: int) -> SessionPolicy:
        """The packed :class:`SessionPolicy` for a grant made at ``now`` (unix seconds)."""
        valid_after, valid_until = self.window(now)
        native = self.limits.native
        caps = tuple(
            TokenCap(self.tokens[name].address, cap.total, cap.period, cap.per_period)
            for name, cap in self.limits.tokens.items()
        )
        return SessionPolicy(
            key=self.key,
            valid_after=valid_after,
            valid_until=valid_until,
            permissions=tuple(perm for _, perm in self._permissions()),
            token_caps=caps,
            paymasters=tuple(self._target(p, "limits.paymasters") for p in self.limits.paymasters),
            max_uses=self.limits.max_uses,
            native_per_call=cast(int, native.per_call) if native else 0,  # None became total in __post_init__
            native_total=native.total if native else 0,
            native_period=native.period if native else 0,
            native_per_period=native.per_period if native else 0,
            gas_budget=self.limits.gas_budget,
            salt=self.salt,
            allow_uncapped_assets=self.allow_uncapped_assets,
            allow_standing_allowances=self.allow_standing_allowances,
            min_interval=self.limits.every,
            uses_per_period=self.limits.uses_per_day,
            use_period=86_400 if self.limits.uses_per_day else 0,
        )

    # -- output -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A plain mapping (text, numbers, lists) that :func:`parse_policy` reads back to an equal model."""
        out: dict[str, Any] = {"key": self.key}
        for name in ("valid_from", "valid_for", "valid_until"):
            value = getattr(self, name)
            if value is not None:
                out[name] = str(value)
        if self.allow_long_lifetime:
            out["allow_long_lifetime"] = True
        if self.allow_uncapped_assets:
            out["allow_uncapped_assets"] = True
        if self.allow_standing_allowances:
            out["allow_standing_allowances"] = True
        if self.salt:
            out["salt"] = self.salt
        if self.contracts:
            out["contracts"] = dict(self.contracts)
        if self.tokens:
            out["tokens"] = {n: {"address": t.address, "decimals": t.decimals} for n, t in self.tokens.items()}
        if self.address_book:
            out["address_book"] = dict(self.address_book)
        allow: list[dict[str, Any]] = []
        for entry in self.allow:
            if isinstance(entry, AllowNativeTransfer):
                allow.append({"send_native_to": entry.send_native_to})
            else:
                functions = entry.functions if entry.functions == ANY_FUNCTION else list(entry.functions)
                allow.append({"contract": entry.contract, "functions": functions})
                if entry.where:
                    allow[-1]["where"] = {k: list(v) if isinstance(v, (list, tuple)) else v
                                          for k, v in entry.where.items()}
        out["allow"] = allow
        limits: dict[str, Any] = {}
        native = self.limits.native
        if native is not None:
            limits["native"] = {"total": _native_text(native.total), "per_call": _native_text(cast(int, native.per_call))}
            if native.period:
                limits["native"]["per_period"] = _native_text(native.per_period)
                limits["native"]["period"] = _period_text(native.period)
        if self.limits.tokens:
            limits["tokens"] = {}
            for name, cap in self.limits.tokens.items():
                decimals = self.tokens[name].decimals
                token_limits = {"total": format_amount(cap.total, decimals, name)}
                if cap.period:
                    token_limits["per_period"] = format_amount(cap.per_period, decimals, name)
                    token_limits["period"] = _period_text(cap.period)
                limits["tokens"][name] = token_limits
        if self.limits.max_uses:
            limits["max_uses"] = self.limits.max_uses
        if self.limits.gas_budget:
            limits["gas_budget"] = _native_text(self.limits.gas_budget)
        if self.limits.paymasters:
            limits["paymasters"] = list(self.limits.paymasters)
        if self.limits.every:
            limits["every"] = _duration_text(self.limits.every)
        if self.limits.uses_per_day:
            limits["uses_per_day"] = self.limits.uses_per_day
        if limits:
            out["limits"] = limits
        return out

    def address_names(self) -> dict[str, str]:
        """``{address: name}`` for every name of the file (``address_book``, then ``contracts``, then
        ``tokens``: the later wins), for reports and refusals that show a granted policy
        (:mod:`smartkeys.policy_view`, :meth:`smartkeys.account.SessionAgent.name_addresses`)."""
        out = {a: name for name, a in self.address_book.items()}
        out.update({a: name for name, a in self.contracts.items()})
        out.update({t.address: name for name, t in self.tokens.items()})
        return out

    def _name_of(self, address: str) -> str:
        for name, a in self.contracts.items():
            if a == address:
                return name
        for name, t in self.tokens.items():
            if t.address == address:
                return name
        return address

    def describe(self, now: int | None = None) -> str:
        """A short human summary (with ``now``, the window in absolute UTC times too).

        Periodic caps are described as what they are on chain: calendar windows aligned on 1970-01-01 UTC
        (a day resets at 00:00 UTC), with the next reset time when ``now`` is given
        (:func:`smartkeys.timefmt.period_text`)."""
        from smartkeys.timefmt import period_text

        lines = [f"Session key {self.key}"]
        if self.allow_uncapped_assets:
            lines.append(UNCAPPED_WARNING)
        if self.allow_standing_allowances:
            lines.append(STANDING_WARNING)
        if now is not None:
            start, end = self.window(now)
            lines.append(f"Valid after {Instant(start)} until {Instant(end)} (UTC)")
        else:
            start_text = "now" if self.valid_from is None else (
                f"in {self.valid_from}" if isinstance(self.valid_from, Duration) else str(self.valid_from))
            if self.valid_for is not None:
                lines.append(f"Valid from {start_text} for {self.valid_for}")
            else:
                until = f"in {self.valid_until}" if isinstance(self.valid_until, Duration) else str(self.valid_until)
                lines.append(f"Valid from {start_text} until {until}")
        may = []
        wildcards = {self._target(e.contract, "allow") for e in self.allow if isinstance(e, AllowCall) and e.any_function}
        for entry in self.allow:
            if isinstance(entry, AllowNativeTransfer):
                may.append(f"send native coin to {self._name_of(self._target(entry.send_native_to, 'allow'))}")
            else:
                name = self._name_of(self._target(entry.contract, "allow"))
                if entry.any_function:
                    may.append(f"{name}: ANY function")
                else:
                    text = f"{name}: {', '.join(entry.functions)}"
                    if entry.where:
                        text += " where " + ", ".join(f"{k} {_where_text(v)}" for k, v in entry.where.items())
                        if self._target(entry.contract, "allow") in wildcards:  # a policy the chain no longer grants
                            text += " (VOID: ANY function of it is allowed too, with any arguments)"
                    may.append(text)
        lines.append("May: " + "; ".join(may))
        native = self.limits.native
        if native is None:
            lines.append("Native value: none")
        else:
            text = f"Native value: {_native_text(cast(int, native.per_call))} per call, {_native_text(native.total)} in total"
            if native.period:
                text += f", {_native_text(native.per_period)} {period_text(native.period, now)}"
            lines.append(text)
        for name, cap in self.limits.tokens.items():
            d = self.tokens[name].decimals
            text = f"{name}: {format_amount(cap.total, d, name)} in total"
            if cap.period:
                text += f", {format_amount(cap.per_period, d, name)} {period_text(cap.period, now)}"
            lines.append(text)
        lines.append(f"Uses: {self.limits.max_uses or 'unlimited'}; gas budget: {_native_text(self.limits.gas_budget)}")
        if self.limits.every or self.limits.uses_per_day:
            rate = []
            if self.limits.every:
                rate.append(f"at most one use every {_duration_text(self.limits.every)}")
            if self.limits.uses_per_day:
                rate.append(f"at most {self.limits.uses_per_day} uses per UTC day")
            lines.append("Rate: " + "; ".join(rate))
        if self.limits.paymasters:
            lines.append("Paymasters: " + ", ".join(self._name_of(self._target(p, 'limits.paymasters')) for p in self.limits.paymasters))
        return "\n".join(lines)


def _where_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "one of [" + ", ".join(str(v) for v in value) + "]"
    text = str(value).strip()
    return text if text[:2] in ("<=", ">=", "==", "!=") or ".." in text else f"== {text}"


# --------------------------------------------------------------------------------------------
# parsing mappings
# --------------------------------------------------------------------------------------------


def _parse_tokens(value: Any, path: str) -> dict[str, Token]:
    table = _mapping(value, path, "a table of tokens: {USDC: {address: \"0x…\", decimals: 6}}")
    out: dict[str, Token] = {}
    for name, spec in table.items():
        tpath = _join(path, name)
        if isinstance(spec, Token):
            out[name] = spec
            continue
        if isinstance(spec, (tuple, list)) and len(spec) == 2:
            spec = {"address": spec[0], "decimals": spec[1]}
        spec = _mapping(spec, tpath, "{address: \"0x…\", decimals: N}")
        _check_keys(spec, tpath, _TOKEN_KEYS)
        if "address" not in spec:
            raise InvalidInputError(f"{tpath}.address", None, "the token's address", f"add address: \"0x…\" to tokens.{name}")
        if "decimals" not in spec:
            raise InvalidInputError(f"{tpath}.decimals", None, "the token's decimals", "add decimals: (the token's decimals(), e.g. 6 for USDC, 18 for most)")
        address = _address(spec["address"], f"{tpath}.address")
        decimals = spec["decimals"]
        if isinstance(decimals, str) and _small_int(decimals.strip()) is not None:
            decimals = _small_int(decimals.strip())
        _int_field(decimals, f"{tpath}.decimals", _MAX_DECIMALS, "use the token's decimals() value, e.g. 6 or 18")
        out[name] = Token(address, decimals)
    return out


def _parse_contracts(value: Any) -> dict[str, str]:
    table = _mapping(value, "contracts", "a table of names to addresses: {router: \"0x…\"}")
    return {name: _address(address, f"contracts.{name}") for name, address in table.items()}


def _parse_allow(value: Any) -> tuple[AllowEntry, ...]:
    if isinstance(value, Mapping):
        raise InvalidInputError("allow", value, "a list of entries", "put each entry in a list: allow: [{contract: …, functions: […]}]")
    if not isinstance(value, (list, tuple)):
        raise InvalidInputError("allow", value, "a list of entries", "write allow: [{contract: USDC, functions: [\"transfer(address,uint256)\"]}]")
    entries: list[AllowEntry] = []
    for i, raw in enumerate(value):
        path = f"allow[{i}]"
        raw = _mapping(raw, path, "{contract: NAME, functions: [...] or \"*\"} or {send_native_to: ADDRESS}")
        if "send_native_to" in raw:
            _check_keys(raw, path, _ALLOW_NATIVE_KEYS)
            target = raw["send_native_to"]
            if not isinstance(target, str):
                _address(target, f"{path}.send_native_to")
            entries.append(AllowNativeTransfer(target))
            continue
        _check_keys(raw, path, _ALLOW_CALL_KEYS + _ALLOW_NATIVE_KEYS)
        if "contract" not in raw:
            raise InvalidInputError(f"{path}.contract", None, "the contract to call", "add contract: NAME or \"0x…\" (or use send_native_to for plain transfers)")
        if "functions" not in raw:
            raise InvalidInputError(
                f"{path}.functions", None, "the functions the key may call",
                "list them, e.g. functions: [\"transfer(address,uint256)\"]; the wildcard is explicit: functions: \"*\"",
            )
        contract = raw["contract"]
        if not isinstance(contract, str):
            _address(contract, f"{path}.contract")
        functions = raw["functions"]
        if isinstance(functions, str) and functions.strip() == ANY_FUNCTION:
            functions = ANY_FUNCTION
        elif isinstance(functions, str):
            raise InvalidInputError(
                f"{path}.functions", functions, "a list of function signatures, or \"*\"",
                f"write a list: [\"{functions}\"]",
            )
        elif not isinstance(functions, (list, tuple)):
            raise InvalidInputError(f"{path}.functions", functions, "a list of function signatures, or \"*\"", "write a list of signatures")
        else:
            functions = tuple(functions)
        where = raw.get("where")
        if where is not None:
            where = _mapping(where, f"{path}.where", '{to = ["treasury"], amount = "<= 50 USDC"}')
        entries.append(AllowCall(contract, functions, where))
    return tuple(entries)


def _parse_limits(value: Any, tokens: Mapping[str, Token]) -> Limits:
    raw = _mapping(value, "limits", "a table of limits")
    _check_keys(raw, "limits", _LIMIT_KEYS)
    native = None
    if raw.get("native") is not None:
        spec = _mapping(raw["native"], "limits.native", "{total: \"1 ether\", per_call: …, per_period: …, period: day}")
        _check_keys(spec, "limits.native", _NATIVE_KEYS)
        if "total" not in spec:
            raise InvalidInputError("limits.native.total", None, "a total native budget", "add total: \"1 ether\" (the cap for the whole session)")
        total = _native_amount(spec["total"], "limits.native.total")
        per_call = _native_amount(spec["per_call"], "limits.native.per_call") if "per_call" in spec else None
        per_period = _native_amount(spec["per_period"], "limits.native.per_period") if "per_period" in spec else 0
        period = parse_period(spec["period"], "limits.native.period") if "period" in spec else 0
        native = NativeLimits(total=total, per_call=per_call, per_period=per_period, period=period)
    caps: dict[str, TokenLimit] = {}
    if raw.get("tokens") is not None:
        table = _mapping(raw["tokens"], "limits.tokens", "{USDC: {total: \"100 USDC\"}}")
        for name, spec in table.items():
            path = f"limits.tokens.{name}"
            if name not in tokens:
                if isinstance(name, str) and name[:2] in ("0x", "0X"):
                    hint = "name the token in `tokens` with its address and decimals, then use the name here"
                else:
                    hint = _did_you_mean(name, tokens, "add it to `tokens` with its address and decimals")
                raise InvalidInputError(path, name, "a token name from `tokens`", hint)
            spec = _mapping(spec, path, f"{{total: \"100 {name}\", per_period: …, period: day}}")
            _check_keys(spec, path, _TOKEN_LIMIT_KEYS)
            if "total" not in spec:
                raise InvalidInputError(f"{path}.total", None, f"a total cap for {name}", f"add total: \"100 {name}\"")
            token = tokens[name]
            total = _token_amount(spec["total"], f"{path}.total", name, token, tokens)
            per_period = _token_amount(spec["per_period"], f"{path}.per_period", name, token, tokens) if "per_period" in spec else 0
            period = parse_period(spec["period"], f"{path}.period") if "period" in spec else 0
            caps[name] = TokenLimit(total=total, per_period=per_period, period=period)
    max_uses = raw.get("max_uses", 0)
    if isinstance(max_uses, str) and _small_int(max_uses.strip()) is not None:
        max_uses = _small_int(max_uses.strip())
    _int_field(max_uses, "limits.max_uses", _U32, "use a whole number of uses (0 or absent = unlimited)")
    gas_budget = _native_amount(raw["gas_budget"], "limits.gas_budget") if "gas_budget" in raw else 0
    paymasters = raw.get("paymasters", ())
    if isinstance(paymasters, str) or not isinstance(paymasters, (list, tuple)):
        raise InvalidInputError("limits.paymasters", paymasters, "a list of paymaster addresses", "write paymasters: [\"0x…\"]")
    for i, p in enumerate(paymasters):
        if not isinstance(p, str):
            _address(p, f"limits.paymasters[{i}]")
    every = parse_duration(raw["every"], "limits.every") if raw.get("every") is not None else 0
    uses_per_day = raw.get("uses_per_day", 0)
    _int_field(uses_per_day, "limits.uses_per_day", _U32, "use a whole number of uses per day (0 or absent = no limit)")
    return Limits(native=native, tokens=caps, max_uses=max_uses, gas_budget=gas_budget, paymasters=tuple(paymasters),
                  every=every, uses_per_day=uses_per_day)


_MISPLACED = {k: f"limits.{k}" for k in _LIMIT_KEYS if k != "tokens"}
_MISPLACED.update({"per_call": "limits.native", "total": "limits.native", "expires": "valid_until", "expiry": "valid_until"})


def parse_policy(data: Mapping[str, Any]) -> PolicyModel:
    """Validate a policy mapping (as read from JSON, TOML or YAML) into a :class:`PolicyModel`."""
    data = _mapping(data, "", "a policy table with key, valid_for/valid_until, allow and limits")
    _check_keys(data, "", _TOP_KEYS, elsewhere=_MISPLACED)
    if "key" not in data:
        raise InvalidInputError("key", None, "the session key's address", "add key: \"0x…\" (generate one with smartkeys.keystore.generate_key())")
    key = _address(data["key"], "key")
    tokens = _parse_tokens(data.get("tokens") or {}, "tokens")
    contracts = _parse_contracts(data.get("contracts") or {})
    address_book = {name: _address(a, f"address_book.{name}")
                     for name, a in _mapping(data.get("address_book") or {}, "address_book", "{NAME = \"0x…\"}").items()}
    times = {name: _parse_time(data[name], name) for name in ("valid_from", "valid_until") if data.get(name) is not None}
    valid_for = None
    if data.get("valid_for") is not None:
        raw = data["valid_for"]
        if isinstance(raw, (_dt.datetime, _dt.date)) or (isinstance(raw, str) and re.match(r"^\d{4}-\d{2}-\d{2}", raw.strip())):
            raise InvalidInputError("valid_for", str(raw), "a duration like '24h'", "for an absolute end time use valid_until")
        if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 10**9:
            raise InvalidInputError("valid_for", raw, "a duration like '24h'", "this looks like a unix time: use valid_until for an absolute end time")
        valid_for = Duration(parse_duration(raw, "valid_for"))
    if "allow" not in data:
        raise InvalidInputError(
            "allow", None, "a list of allowed calls",
            "add allow: [{contract: NAME, functions: [\"transfer(address,uint256)\"]}]; an empty scope can do nothing",
        )
    allow = _parse_allow(data["allow"])
    limits = _parse_limits(data.get("limits") or {}, tokens)
    allow_long = data.get("allow_long_lifetime", False)
    allow_uncapped = data.get("allow_uncapped_assets", False)
    allow_standing = data.get("allow_standing_allowances", False)
    salt = data.get("salt", 0)
    model = PolicyModel(
        key=key, allow=allow, valid_for=valid_for, contracts=contracts, tokens=tokens, limits=limits,
        allow_long_lifetime=allow_long, salt=salt, allow_uncapped_assets=allow_uncapped,
        allow_standing_allowances=allow_standing, address_book=address_book, **times,
    )
    model.check_sensible()
    return model


# --------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------

_FORMATS = {".json": "JSON", ".toml": "TOML", ".yaml": "YAML", ".yml": "YAML"}


def _format_of(path: Path) -> str:
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InvalidInputError("path", str(path), "a .json, .toml, .yaml or .yml file", "rename the file with one of these extensions")
    return fmt


#: Largest policy file read, and most values in it (a policy with a hundred entries is a few KiB and a few
#: hundred values). They keep the worst file under a second to refuse.
POLICY_MAX_BYTES = 64 * 1024
POLICY_MAX_VALUES = 10_000


def _read(path: Path) -> Any:
    """The parsed file, through :mod:`smartkeys.safe_files` (regular file, size, UTF-8, nesting, no YAML
    aliases, unique keys); every failure is a :class:`~smartkeys.safe_files.FileInputError`."""
    from smartkeys.safe_files import load_file

    return load_file(path, _format_of(path), kind="policy file", max_bytes=POLICY_MAX_BYTES,
                     max_values=POLICY_MAX_VALUES)


def load_policy(path: str | os.PathLike[str]) -> PolicyModel:
    """Read a policy file; the extension picks the format (``.json``, ``.toml``, ``.yaml``/``.yml``).

    The file must be a regular UTF-8 file of at most :data:`POLICY_MAX_BYTES`, nested at most
    :data:`smartkeys.safe_files.DEFAULT_MAX_DEPTH` levels, without YAML aliases or duplicate keys; otherwise
    :class:`~smartkeys.safe_files.FileInputError` (an :class:`InvalidInputError`, exit code 2) names the file
    and the fix. Content errors raise :class:`InvalidInputError` naming the field.
    """
    return parse_policy(_read(Path(path)))


def _toml_key(key: str) -> str:
    return key if re.match(r"^[A-Za-z0-9_-]+$", key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise InvalidInputError("policy", value, "text, whole numbers, booleans and lists", "this value cannot be written as TOML")


def policy_to_toml(data: Mapping[str, Any]) -> str:
    """TOML text for a policy mapping (as :meth:`PolicyModel.to_dict` returns); read it back with tomllib."""
    lines: list[str] = []

    def table(mapping: Mapping[str, Any], prefix: str) -> None:
        nested = []
        for k, v in mapping.items():
            if isinstance(v, Mapping) or (isinstance(v, (list, tuple)) and v and all(isinstance(x, Mapping) for x in v)):
                nested.append((k, v))
            else:
                lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
        for k, v in nested:
            name = f"{prefix}.{_toml_key(k)}" if prefix else _toml_key(k)
            if isinstance(v, Mapping):
                lines.extend(["", f"[{name}]"])
                table(v, name)
            else:
                for item in v:
                    lines.extend(["", f"[[{name}]]"])
                    table(item, name)

    table(data, "")
    return "\n".join(lines).lstrip("\n") + "\n"


def dump_policy(policy: PolicyModel, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write ``policy`` to ``path`` in the format its extension names (refuses to overwrite unless asked)."""
    target = Path(path)
    fmt = _format_of(target)
    data = policy.to_dict()
    if fmt == "JSON":
        text = json.dumps(data, indent=2) + "\n"
    elif fmt == "TOML":
        text = policy_to_toml(data)
    else:
        import yaml

        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    with open(target, "w" if overwrite else "x", encoding="utf-8") as fh:
        fh.write(text)
    return target


# --------------------------------------------------------------------------------------------
# chain
# --------------------------------------------------------------------------------------------


def policy_from_chain(w3: Any, account: str, session_id: bytes | str, *, from_block: int | str | None = None,
                      to_block: int | str = "latest") -> SessionPolicy:
    """The policy granted as ``session_id`` at ``account``, rebuilt from its ``SessionGranted`` log.

    The log is found by topic (event, session id) on the account's address, through
    :func:`smartkeys.logs.read_logs` (chunked, adapting to the provider's range limit) from ``from_block``
    (default: :func:`smartkeys.logs.account_start_block`, never genesis); its policy bytes must hash to
    ``session_id`` (else :class:`PolicyIntegrityError`). No log: :class:`PolicyNotFoundError`.
    """
    from smartkeys.logs import account_start_block, read_logs

    account = checked_address(account, "account")
    sid = checked_bytes(session_id, "session_id", length=32)
    if from_block is None:
        from_block = account_start_block(w3, account, to_block=to_block)
    logs = read_logs(w3, account, from_block, to_block,
                     topics=["0x" + SESSION_GRANTED_TOPIC.hex(), "0x" + sid.hex()])
    if not logs:
        raise PolicyNotFoundError(
            f"no SessionGranted log for session 0x{sid.hex()} at {account} (blocks {from_block}..{to_block}); "
            "fix: check the account address and session id, and that the RPC keeps logs that old"
        )
    log = logs[-1]
    topics = [bytes(t) for t in log["topics"]]
    if len(topics) < 3 or topics[0] != SESSION_GRANTED_TOPIC or topics[1] != sid:
        raise PolicyIntegrityError(f"the RPC returned a log that is not SessionGranted(0x{sid.hex()})")
    _epoch, packed = abi_decode(["uint32", "bytes"], bytes(log["data"]))
    if keccak(packed) != sid:
        raise PolicyIntegrityError(
            f"the logged policy hashes to 0x{keccak(packed).hex()}, not the session id 0x{sid.hex()}"
        )
    policy = SessionPolicy.decode(packed)
    if topics[2][-20:] != bytes.fromhex(policy.key[2:]):
        raise PolicyIntegrityError(f"the log's indexed key does not match the policy key {policy.key}")
    return policy


def granted_policies(w3: Any, account: str, *, key: str | None = None,
                     from_block: int | str | None = None) -> list[SessionPolicy]:
    """Every policy ``account`` ever granted (to ``key`` only, if given), from its ``SessionGranted`` logs:
    oldest first, each session once (a re-grant of the same policy is the same session).

    Logs are read from ``from_block`` (default: :func:`smartkeys.logs.account_start_block`) to the latest
    block with :func:`smartkeys.logs.read_logs`."""
    from smartkeys.logs import account_start_block, read_logs

    account = checked_address(account, "account")
    topics: list[Any] = ["0x" + SESSION_GRANTED_TOPIC.hex()]
    if key is not None:
        topics += [None, "0x" + "00" * 12 + checked_address(key, "key")[2:].lower()]
    end = int(w3.eth.block_number)
    start = account_start_block(w3, account, to_block=end) if from_block is None else from_block
    logs = read_logs(w3, account, start, end, topics=topics)
    seen: set[bytes] = set()
    out = []
    for log in logs:
        _epoch, packed = abi_decode(["uint32", "bytes"], bytes(log["data"]))
        policy = SessionPolicy.decode(bytes(packed))
        if policy.session_id not in seen:
            seen.add(policy.session_id)
            out.append(policy)
    return out


def decompile(
    policy: SessionPolicy,
    *,
    tokens: Mapping[str, Any] | None = None,
    contracts: Mapping[str, str] | None = None,
    signatures: Iterable[str] = (),
    address_book: Mapping[str, str] | None = None,
) -> PolicyModel:
    """A :class:`PolicyModel` (human units) for a packed policy, e.g. one from :func:`policy_from_chain`.

    ``tokens`` (``{name: Token | {address, decimals} | (address, decimals)}``) name tokens and give their
    decimals; capped tokens not listed are shown in base units as ``token_<address prefix>``.
    ``signatures`` turn selectors back into names (common ERC-20 ones are known). ``address_book``
    (``{name: address}``) names the addresses of argument rules. Argument rules become ``where`` tables and
    rate limits ``limits.every`` / ``limits.uses_per_day``. The window becomes absolute times, so
    ``decompile(p).compile(now) == p`` for any ``now`` before it ends.

    A policy the file format cannot say raises :class:`InvalidInputError` rather than show less than it
    allows: argument rules on a function whose signature is unknown (pass it in ``signatures``), two rules on
    one argument, or a use period other than a day.
    """
    token_table = _parse_tokens(tokens or {}, "tokens")
    contract_table = _parse_contracts(contracts or {})
    by_address = {t.address: name for name, t in token_table.items()}
    sig_of = {selector_of(s): s for s in (*_COMMON_SIGNATURES, *signatures)}

    used_tokens: dict[str, Token] = {}
    caps: dict[str, TokenLimit] = {}
    for cap in policy.token_caps:
        name = by_address.get(cap.token) or f"token_{cap.token[2:10].lower()}"
        used_tokens[name] = token_table.get(name) or Token(cap.token, 0)
        caps[name] = TokenLimit(total=cap.cap, per_period=cap.per_period, period=cap.period)
    capped = {t.address: name for name, t in used_tokens.items()}
    used_contracts: dict[str, str] = {}

    def name_of(address: str) -> str:
        if address in capped:
            return capped[address]
        for name, a in contract_table.items():
            if a == address:
                used_contracts[name] = a
                return name
        if address in by_address and by_address[address] not in used_tokens:
            used_contracts[by_address[address]] = address  # an uncapped token is just a named contract here
            return by_address[address]
        return address

    book = {name: _address(a, f"address_book.{name}") for name, a in (address_book or {}).items()}
    book_names = {a: name for name, a in book.items()}

    def where_of(perm: Permission, fn: str, target: str) -> dict[str, Any]:
        if fn.startswith("0x"):
            raise InvalidInputError("signatures", fn, "the signature of a function that has argument rules",
                                    "pass its signature in signatures=[...] to show its rules")
        _, params = signature_parameters(fn, "signatures")
        token = used_tokens.get(target)
        where: dict[str, Any] = {}
        for rule in perm.rules:
            param = parameter_at(params, rule.index)  # the index is a head word, not a place in the list
            if param is None or param.slot != rule.index or not param.ruleable:
                raise InvalidInputError("signatures", fn, f"a signature with an elementary argument at ABI head "
                                        f"word {rule.index} (the word the rule reads)",
                                        "pass the signature the permission was granted for")
            name = param.name
            if name in where:
                raise InvalidInputError(f"where.{name}", rule.op.name, "one rule per argument",
                                        "a where table holds one rule per argument: read the packed policy instead")

            def text(v: Any, rule: Any = rule, name: str = name) -> str:  # bound: defined in a loop
                if rule.abi_type == "address":
                    return book_names.get(v, v)
                if isinstance(v, bytes):
                    return "0x" + v.hex()
                if isinstance(v, bool):
                    return "true" if v else "false"
                if token is not None and token.decimals and rule.abi_type.startswith("uint") \
                        and name in ("amount", "added"):
                    return format_amount(v, token.decimals, target)
                return str(v)

            shown = [text(v) for v in rule.values]
            where[name] = (shown if rule.op is RuleOp.ONE_OF else f"{shown[0]} .. {shown[1]}" if rule.op is RuleOp.RANGE
                           else f"{_RULE_OPS[rule.op]} {shown[0]}")
        return where

    allow: list[AllowEntry] = []
    for perm in policy.permissions:
        target = name_of(perm.target)
        if perm.mode is PermissionMode.EXACT and perm.rules:
            selector = cast(bytes, perm.selector)  # normalized to bytes by Permission.__post_init__
            fn = sig_of.get(selector, "0x" + selector.hex())
            allow.append(AllowCall(target, (fn,), where_of(perm, fn, target)))
            continue
        if perm.mode is PermissionMode.EMPTY_CALLDATA:
            allow.append(AllowNativeTransfer(target))
        elif perm.mode is PermissionMode.ANY_SELECTOR:
            allow.append(AllowCall(target, ANY_FUNCTION))
        else:
            selector = cast(bytes, perm.selector)  # EXACT: Permission.__post_init__ made it bytes
            fn = sig_of.get(selector, "0x" + selector.hex())
            last = allow[-1] if allow else None
            if isinstance(last, AllowCall) and last.contract == target and not last.any_function and not last.where:
                allow[-1] = AllowCall(target, (*last.functions, fn))
            else:
                allow.append(AllowCall(target, (fn,)))
    native = None
    if policy.native_total or policy.native_per_call or policy.native_period:
        native = NativeLimits(
            total=policy.native_total, per_call=policy.native_per_call,
            per_period=policy.native_per_period, period=policy.native_period,
        )
    return PolicyModel(
        key=policy.key,
        allow=tuple(allow),
        valid_from=Instant(policy.valid_after),
        valid_until=Instant(policy.valid_until),
        contracts=used_contracts,
        tokens=used_tokens,
        limits=Limits(
            native=native, tokens=caps, max_uses=policy.max_uses, gas_budget=policy.gas_budget,
            paymasters=tuple(policy.paymasters), every=policy.min_interval, uses_per_day=_uses_per_day(policy),
        ),
        address_book={name: a for name, a in book.items() if name not in used_contracts and name not in used_tokens},
        allow_long_lifetime=policy.valid_until - policy.valid_after > MAX_LIFETIME,
        salt=policy.salt,
        allow_uncapped_assets=policy.allow_uncapped_assets,
        allow_standing_allowances=policy.allow_standing_allowances,
    )


_RULE_OPS = {RuleOp.EQ: "==", RuleOp.NE: "!=", RuleOp.LE: "<=", RuleOp.GE: ">="}


def _uses_per_day(policy: SessionPolicy) -> int:
    if policy.use_period and policy.use_period != 86_400:
        raise InvalidInputError("use_period", policy.use_period, "a use period of one day (limits.uses_per_day)",
                                "policy files count uses per UTC day: read the packed policy instead")
    return policy.uses_per_period
