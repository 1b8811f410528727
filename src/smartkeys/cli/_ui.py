"""Terminal output for the ``smartkeys`` command: tables, a progress spinner, prompts, JSON."""

from __future__ import annotations

import getpass
import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO

from smartkeys._secrets import secret_frames_dropped

__all__ = ["Aborted", "UI", "format_table", "to_jsonable"]

_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


class Aborted(Exception):
    """The user declined a confirmation or interrupted a prompt (exit code 5)."""


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def to_jsonable(value: Any) -> Any:
    """Plain JSON types: bytes become 0x-hex, tuples lists, mappings dicts, other objects ``str``."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "0x" + bytes(value).hex()
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, indent: str = "") -> str:
    """Columns aligned on the widest cell; numbers right-aligned; ``None`` is a blank cell."""
    cells = [[("" if c is None else str(c)) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))
    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    # a column of numbers (None: a blank cell, as on the continuation lines of a row) is right-aligned
    numeric = [any(is_int(r[i]) for r in rows) and all(is_int(r[i]) or r[i] is None for r in rows)
               for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=False)]
        return (indent + "  ".join(parts)).rstrip()

    out = [line(list(headers)), line(["-" * w for w in widths])]
    out.extend(line(row) for row in cells)
    return "\n".join(out)


class UI:
    """Where a command writes: ``out`` (results), ``err`` (messages, progress, prompts)."""

    def __init__(self, out: TextIO, err: TextIO, stdin: TextIO, *, json_mode: bool) -> None:
        self.out = out
        self.err = err
        self.stdin = stdin
        self.json_mode = json_mode
        self.interactive = _isatty(stdin)
        self.progress_enabled = _isatty(err)

    # -- output ------------------------------------------------------------------------

    def print(self, text: str = "") -> None:
        """Human output on stdout (suppressed in --json mode, where stdout holds one JSON document)."""
        if not self.json_mode:
            print(text, file=self.out)

    def info(self, text: str) -> None:
        """A side message on stderr (never on stdout)."""
        print(text, file=self.err)

    def emit_json(self, document: Any) -> None:
        print(json.dumps(to_jsonable(document), indent=2, sort_keys=False), file=self.out)

    def emit_json_line(self, document: Any) -> None:
        print(json.dumps(to_jsonable(document), separators=(",", ":")), file=self.out, flush=True)

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Any]], *, indent: str = "") -> None:
        self.print(format_table(headers, rows, indent=indent))

    def pairs(self, items: Sequence[tuple[str, Any]], *, indent: str = "") -> None:
        """``name  value`` lines, names padded to one column."""
        width = max((len(k) for k, _ in items), default=0)
        for key, value in items:
            self.print(f"{indent}{key.ljust(width)}  {value}")

    # -- progress ----------------------------------------------------------------------

    @contextmanager
    def progress(self, message: str) -> Iterator[None]:
        """A spinner on stderr while the block waits on the chain (only when stderr is a terminal)."""
        if not self.progress_enabled:
            yield
            return
        stop = threading.Event()

        def spin() -> None:
            i = 0
            while not stop.wait(0.1):
                self.err.write(f"\r{_SPINNER[i % len(_SPINNER)]} {message}…")
                self.err.flush()
                i += 1

        thread = threading.Thread(target=spin, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            self.err.write("\r\033[K")
            self.err.flush()

    # -- prompts -----------------------------------------------------------------------

    def confirm(self, question: str, *, assume_yes: bool) -> None:
        """Ask ``question [y/N]`` on stderr; raise :class:`Aborted` unless the answer is yes.

        ``assume_yes`` (``--yes``) skips the question. Without a terminal on stdin the question cannot be
        asked: that is a usage error (the caller must pass ``--yes``).
        """
        if assume_yes:
            return
        if not self.interactive:
            from smartkeys.errors import InvalidInputError

            raise InvalidInputError("--yes", None, "a confirmation", "stdin is not a terminal: pass --yes to confirm")
        self.err.write(f"{question} [y/N] ")
        self.err.flush()
        try:
            answer = self.stdin.readline()
        except KeyboardInterrupt:
            raise Aborted("interrupted") from None
        if answer.strip().lower() not in ("y", "yes"):
            raise Aborted("not confirmed")

    @secret_frames_dropped  # two differing passwords are locals when it refuses them
    def password(self, prompt: str, *, twice: bool = False) -> str:
        """Read a password without echo (``getpass``), from the terminal."""
        try:
            first = getpass.getpass(prompt, stream=self.err)
            if twice:
                again = getpass.getpass("Repeat the password: ", stream=self.err)
                if again != first:
                    from smartkeys.errors import InvalidInputError

                    raise InvalidInputError("password", None, "the same password twice", "type it again", secret=True)
        except (KeyboardInterrupt, EOFError):
            raise Aborted("interrupted") from None
        return first
