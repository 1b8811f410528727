"""``leaks(exc, *secrets)``: where an exception shows a secret -- its message and attributes, its chained
exceptions, and every local variable of every frame its traceback carries (what error reporters such as
Sentry record). Frames of the test files (which hold the secret by construction) and of ``skip`` code objects
are left out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

TESTS = str(Path(__file__).resolve().parent)


def _holds(value: Any, needles: tuple[str, ...], depth: int = 0) -> bool:
    """Whether ``value`` (or, to depth 5, anything in it) shows one of ``needles`` as an error reporter would:
    text and bytes by content, containers by their items, other objects by their ``repr``."""
    if depth > 5:
        return False
    if isinstance(value, str):
        return any(n in value.lower() for n in needles)
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        return any(n.encode() in raw.lower() or n in raw.hex() for n in needles)
    if isinstance(value, int) and not isinstance(value, bool):
        return any(n in f"{value:x}" for n in needles if len(n) >= 16)
    if isinstance(value, dict):
        return any(_holds(k, needles, depth + 1) or _holds(v, needles, depth + 1) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(_holds(v, needles, depth + 1) for v in value)
    try:
        return _holds(repr(value), needles, depth + 1)
    except Exception:  # noqa: BLE001 - a repr that fails shows nothing
        return False


def leaks(exc: BaseException, *secrets_: str, skip: tuple[Any, ...] = ()) -> list[str]:
    """Where ``exc`` shows one of ``secrets_`` (hex keys compared without 0x, case-insensitively)."""
    needles = tuple(s.lower().removeprefix("0x") for s in secrets_)
    found: list[str] = []
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        error = todo.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        if _holds(str(error), needles) or _holds(getattr(error, "__dict__", {}), needles):
            found.append(f"message or attributes of {type(error).__name__}")
        tb = error.__traceback__
        while tb is not None:
            frame = tb.tb_frame
            if not frame.f_code.co_filename.startswith(TESTS) and frame.f_code not in skip:
                for name, value in frame.f_locals.items():
                    if _holds(value, needles):
                        found.append(f"local {name!r} of {frame.f_code.co_qualname} ({frame.f_code.co_filename})")
            tb = tb.tb_next
        todo += [error.__cause__, error.__context__]
    return found
