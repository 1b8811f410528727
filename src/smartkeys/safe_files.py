"""Reading files smartkeys did not write: bounded in size, nesting and cost, never blocking, typed errors.

Every file smartkeys reads goes through here: policy files (JSON, TOML, YAML), the project configuration
(``smartkeys.toml``), keystores, password files, the refusal journal and the deployments record. A hostile
or broken file gets a :class:`FileInputError` that names the file, what is wrong and the fix -- never a hang,
a crash, or a bare ``OSError``/``RecursionError``/``TypeError``.

What is checked, in order:

1. **The file itself** (:func:`read_bytes`): opened ``O_RDONLY | O_NONBLOCK | O_NOCTTY`` (a FIFO without a
   writer does not block the open), then ``fstat`` on the open descriptor must say *regular file*
   (directories, FIFOs, sockets, ``/dev/zero`` and other devices are refused before any ``read``); a size
   bound checked on ``st_size`` and again while reading (files that grow, ``/proc`` files that report 0).
   Missing files, permission errors, symlink loops and over-long names become typed errors.
2. **The text** (:func:`read_text`): strict UTF-8 (the error gives the byte offset); a leading BOM is dropped.
3. **The parse** (:func:`parse_json`, :func:`parse_toml`, :func:`parse_yaml`): nesting depth is bounded
   *before* the parser runs -- the parsers recurse in C or Python, and eth-account raises Python's recursion
   limit to 100,000, so a 70,000-deep document would overflow the C stack and kill the process instead of
   raising ``RecursionError``. JSON and TOML text is scanned for brackets outside strings and comments; YAML
   is scanned as libyaml's event stream (a state machine, no recursion), which also refuses every alias
   (``*a``), so self-referencing documents and "billion laughs" expansion cannot happen.
4. **The tree** (:func:`check_tree`, run on every parse result, iteratively): depth again (TOML dotted keys
   nest without brackets), mapping keys that are scalars, duplicate keys, no NaN or infinity, integers of at
   most 256 bits, no YAML-only types (sets, binary), and a bound on the number of values.

Errors::

    SmartKeysError
    └── InvalidInputError (+ValueError)       exit code 2
        └── FileInputError                    .path .kind .reason .problem .hint
            └── FileMissingError              the path does not exist (callers may treat it as empty)

``reason`` is one of :data:`REASONS`. Messages never quote values from the file (a password file or a
keystore may be what was read): at most a key name, an anchor name or a line number.

Depth counts lists and mappings from the outermost one (level 1); a TOML document is itself a table, so
``a = [[1]]`` is 3 levels deep. Bounds are per call; each reader picks its own (see :func:`load_file`).
"""

from __future__ import annotations

import datetime as _dt
import errno
import json
import math
import os
import re
import stat
import sys
from pathlib import Path
from typing import Any

from smartkeys.errors import InvalidInputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_VALUES",
    "FileInputError",
    "FileMissingError",
    "JSONBoundsError",
    "MAX_INT_BITS",
    "REASONS",
    "check_tree",
    "json_too_deep",
    "load_file",
    "loads_bounded",
    "parse_json",
    "parse_toml",
    "parse_yaml",
    "read_bytes",
    "read_text",
]

#: Deepest nesting of lists/mappings accepted in any file (a policy needs about 5).
DEFAULT_MAX_DEPTH = 32
#: Most values (scalars, lists and mappings together) in one parsed document.
DEFAULT_MAX_VALUES = 200_000
#: Integers wider than this are no valid amount, id or address anywhere in smartkeys (uint256).
MAX_INT_BITS = 256
#: Longest YAML integer/float scalar converted (YAML 1.1 base-60 numbers cost quadratic time to convert).
_MAX_NUMBER_CHARS = 100

REASONS = (
    "missing", "unreadable", "not_regular", "too_large", "encoding", "syntax", "too_deep", "alias",
    "bad_key", "duplicate_key", "number", "type", "too_many_values", "unwritable",
    "not_private",
)


class FileInputError(InvalidInputError):
    """A file smartkeys reads was refused: ``path``, its ``kind`` ("policy file", "keystore", ...), a
    ``reason`` code (one of :data:`REASONS`), the ``problem`` in words and the fix in ``hint``. ``field`` is
    ``"path"``, or the key that appears twice for ``duplicate_key``.

    Message shape: ``<kind> <path>: <problem>; fix: <hint>``.
    """

    def __init__(self, path: str | os.PathLike[str], kind: str, reason: str, problem: str, hint: str, *,
                 field: str = "path") -> None:
        super().__init__(field, str(path), problem, hint)
        self.path = str(path)
        self.kind = kind
        self.reason = reason
        self.problem = problem
        # replace InvalidInputError's "field ... expected ... got" wording: the path is the subject here
        Exception.__init__(self, f"{kind} {path}: {problem}; fix: {hint}")


class FileMissingError(FileInputError, FileNotFoundError):
    """The file does not exist (a subclass so readers for which "absent" means "empty" can catch it)."""


# --------------------------------------------------------------------------------------------
# 1. the file
# --------------------------------------------------------------------------------------------

_FILE_TYPES = (
    (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
)


def _kind_of(mode: int) -> str:
    for test, name in _FILE_TYPES:
        if test(mode):
            return name
    return "not a regular file"


def _size_text(n: int) -> str:
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"


def read_bytes(path: str | os.PathLike[str], *, kind: str, max_bytes: int) -> bytes:
    """The bytes of the regular file at ``path`` (at most ``max_bytes``), without ever blocking.

    Raises :class:`FileMissingError` if it does not exist and :class:`FileInputError` (reason
    ``unreadable``, ``not_regular`` or ``too_large``) otherwise. Symlinks are followed (a loop is refused).
    """
    target = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(target, flags)
    except FileNotFoundError:
        raise FileMissingError(target, kind, "missing", "no such file", "check the path") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            problem, hint = "the path is a symbolic link loop", "point it at the real file"
        elif exc.errno == errno.ENXIO:  # open() of a Unix socket
            problem, hint = "it is a socket, not a file", "point it at a regular file"
        elif exc.errno in (errno.EACCES, errno.EPERM):
            problem, hint = "permission denied", f"make it readable by this user (e.g. chmod u+r {target})"
        else:
            problem, hint = f"cannot open it ({exc.strerror or type(exc).__name__})", "check the path"
        raise FileInputError(target, kind, "unreadable", problem, hint) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileInputError(target, kind, "not_regular", f"it is {_kind_of(info.st_mode)}, not a regular file",
                                 "point it at a regular file")
        if info.st_size > max_bytes:
            raise FileInputError(target, kind, "too_large",
                                 f"it is {info.st_size} bytes, more than the {_size_text(max_bytes)} accepted",
                                 f"use a {kind} under {_size_text(max_bytes)}")
        chunks, total = [], 0
        while total <= max_bytes:
            try:
                chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            except OSError as exc:
                raise FileInputError(target, kind, "unreadable", f"read failed ({exc.strerror or type(exc).__name__})",
                                     "check the file") from None
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > max_bytes:  # grew while being read, or a /proc-like file that reports size 0
            raise FileInputError(target, kind, "too_large", f"it is more than the {_size_text(max_bytes)} accepted",
                                 f"use a {kind} under {_size_text(max_bytes)}")
        return b"".join(chunks)
    finally:
        os.close(fd)


def _decode(raw: bytes, path: str | os.PathLike[str], kind: str) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileInputError(path, kind, "encoding", f"it is not UTF-8 text (byte {exc.start} is invalid)",
                             "save it as UTF-8") from None
    return text[1:] if text.startswith("\ufeff") else text


def read_text(path: str | os.PathLike[str], *, kind: str, max_bytes: int) -> str:
    """:func:`read_bytes`, decoded as strict UTF-8 (reason ``encoding`` otherwise; a leading BOM is dropped)."""
    return _decode(read_bytes(path, kind=kind, max_bytes=max_bytes), path, kind)


# --------------------------------------------------------------------------------------------
# 3. bounded parsers
# --------------------------------------------------------------------------------------------
# The bracket scanners are written by hand: neither json nor tomllib has a depth option, and the check must
# run before they recurse. Strings and comments are skipped so brackets inside them do not count.

# The TOML pattern is a lexer that agrees with tomllib up to the first error: a string that does not close
# ends the scan (the parser stops there too), so the scan is linear and nothing after it can open a bracket.
# (TOML files are small -- 64 KiB -- so its per-token Python loop is cheap; JSON, which the journal holds by
# the megabyte, is scanned by json_too_deep in the regex engine.)
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*+"', re.S)
_NOT_BRACKET = re.compile(r'[^\[\]{}]++')
_INNERMOST_PAIR = re.compile(r'[\[{][\]}]')
_TOML_KEY = r'(?:[A-Za-z0-9_-]++|"(?:[^"\\\n]|\\.)*+"|\'[^\'\n]*+\')'
# Dotted keys (``a.b.c = 1``, ``[a.b.c]``) nest tables without brackets, and tomllib takes quadratic time
# over a long one: a chain counts one level per dot. A bare word is consumed whole so scans stay linear.
_TOML_TOKENS = re.compile(
    rf'(?P<chain>{_TOML_KEY}(?:[ \t]*+\.[ \t]*+{_TOML_KEY})++)|[A-Za-z0-9_-]++'
    r'|"""(?:[^\\]|\\.)*?"{3,5}|\'\'\'[\s\S]*?\'{3,5}|(?P<stop>"""|\'\'\')'
    r'|"(?:[^"\\\n]|\\.)*+"|\'[^\'\n]*+\'|#[^\n]*+|(?P<stop1>["\'])|[\[\]{}]')


def _max_depth_of(tokens: re.Pattern[str], text: str, limit: int, base: int = 0) -> int:
    """Deepest bracket nesting in ``text`` plus ``base`` (stops counting once past ``limit``)."""
    depth = deepest = base
    for match in tokens.finditer(text):
        token = match.group()
        if match.lastgroup in ("stop", "stop1"):
            break
        if match.lastgroup == "chain":
            if depth + token.count(".") > limit:
                return depth + token.count(".")
            continue
        if token in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        elif token in "]}":
            depth = max(base, depth - 1)
    return deepest


def _json_skeleton(text: str) -> str:
    """The brackets of JSON ``text`` outside strings, up to the first unterminated string."""
    skeleton = _JSON_STRING.sub("", text)
    quote = skeleton.find('"')
    if quote >= 0:
        skeleton = skeleton[:quote]
    return _NOT_BRACKET.sub("", skeleton)


def json_too_deep(text: str, limit: int = DEFAULT_MAX_DEPTH) -> bool:
    """Whether JSON ``text`` could nest lists/objects more than ``limit`` deep, decided before any parsing
    (``json.loads`` recurses in C and would overflow the stack on deep input). Also for JSON from the network.

    Every step runs in the regex engine (a per-character Python loop cost a second per MiB): strings are
    removed (an unterminated one ends the text, as it ends the parser's work), then everything but brackets;
    then each pass deletes the innermost ``[]``/``{}`` pairs, so the number of passes is the depth of what
    closes, and brackets left open count one level each. At most ``limit + 1`` passes.
    """
    return _too_deep_skeleton(_json_skeleton(text), limit)


def _too_deep_skeleton(skeleton: str, limit: int) -> bool:
    depth = 0
    while True:
        reduced = _INNERMOST_PAIR.sub("", skeleton)
        if reduced == skeleton:
            break
        depth += 1
        if depth > limit:
            return True
        skeleton = reduced
    return depth + skeleton.count("[") + skeleton.count("{") > limit


class JSONBoundsError(ValueError):
    """Raised by :func:`loads_bounded`: the text is too large, nested too deep or not JSON (a ``ValueError``,
    as ``json.JSONDecodeError`` is, so callers that map broken answers keep one ``except``)."""


def loads_bounded(raw: bytes | str, *, max_depth: int = 64, max_bytes: int | None = None) -> Any:
    """``json.loads`` of text smartkeys did not write and that is not a file (a node's or a bundler's answer):
    ``max_bytes`` (if given) and nesting (``max_depth``, by the bracket scan of :func:`json_too_deep`) are
    checked *before* the parser runs, because ``json.loads`` recurses in C and overflows the stack on deep input
    once eth-account has raised the recursion limit. ``bytes`` are decoded as strict UTF-8.
    Raises :class:`JSONBoundsError` (a ``ValueError``) for every refusal. Files use :func:`parse_json`."""
    if max_bytes is not None and len(raw) > max_bytes:
        raise JSONBoundsError(f"{len(raw)} bytes, more than the {_size_text(max_bytes)} accepted")
    try:
        text = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw
    except UnicodeDecodeError as exc:
        raise JSONBoundsError(f"not UTF-8 (byte {exc.start} is invalid)") from None
    if json_too_deep(text, max_depth):
        raise JSONBoundsError(f"JSON nested more than {max_depth} levels")
    try:
        return json.loads(text, parse_constant=_refuse_network_constant)
    except RecursionError:  # the scan above was wrong; still a typed refusal
        raise JSONBoundsError(f"JSON nested more than {max_depth} levels") from None
    except JSONBoundsError:
        raise
    except ValueError as exc:  # json.JSONDecodeError, over-long integers
        raise JSONBoundsError(f"not JSON ({' '.join(str(exc).split())[:120]})") from None


def _refuse_network_constant(name: str) -> Any:
    raise JSONBoundsError(f"it holds {name}, which is not JSON")


def _too_many(path: Any, kind: str, limit: int) -> FileInputError:
    return FileInputError(path, kind, "too_many_values", f"it holds more than {limit} values",
                          "split it or remove entries")


def _too_deep(path: Any, kind: str, limit: int) -> FileInputError:
    return FileInputError(path, kind, "too_deep", f"lists/tables are nested more than {limit} levels deep",
                          f"nest at most {limit} levels")


def _syntax(path: Any, kind: str, fmt: str, detail: str) -> FileInputError:
    detail = " ".join(detail.split())[:300]
    return FileInputError(path, kind, "syntax", f"it is not valid {fmt} ({detail})", f"fix the {fmt} syntax")


class _Refused(Exception):
    """Raised inside a parser hook; turned into a FileInputError by the caller."""

    def __init__(self, reason: str, problem: str, hint: str, field: str = "path") -> None:
        super().__init__(problem)
        self.reason, self.problem, self.hint, self.field = reason, problem, hint, field


def _refuse_constant(name: str) -> Any:
    raise _Refused("number", f"it holds {name}, which is not a number smartkeys accepts", "write a finite number")


def _json_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Refused("duplicate_key", f"key {key[:60]!r} appears twice in one object",
                           f"remove the duplicate {key[:60]!r}", field=key[:60])
        out[key] = value
    return out


def parse_json(text: str, *, path: Any = "<text>", kind: str = "JSON input", max_depth: int = DEFAULT_MAX_DEPTH,
               max_values: int = DEFAULT_MAX_VALUES, own_format: bool = False) -> Any:
    """Parse JSON text with bounded nesting and number of containers; refuses NaN/Infinity, and then (see
    :func:`check_tree`) integers wider than 256 bits, duplicate keys and more than ``max_values`` values.
    Raises :class:`FileInputError` (``path`` and ``kind`` name the source in the message).

    ``own_format``: for lines smartkeys wrote itself and whose reader checks every field (the refusal journal,
    read by the megabyte): duplicate keys are allowed (the last wins) and the per-value walk is skipped, so
    everything but the bracket checks runs at C speed. Nesting and container count are bounded all the same.
    """
    skeleton = _json_skeleton(text)
    if _too_deep_skeleton(skeleton, max_depth):
        raise _too_deep(path, kind, max_depth)
    if skeleton.count("[") + skeleton.count("{") > max_values:  # before the per-object duplicate-key hook runs
        raise _too_many(path, kind, max_values)
    try:  # integers: json's own 4,300-digit limit, then check_tree's 256 bits (a per-number hook is too slow)
        data = json.loads(text, object_pairs_hook=None if own_format else _json_pairs,
                          parse_constant=_refuse_constant)
    except FileInputError:
        raise
    except _Refused as exc:
        raise FileInputError(path, kind, exc.reason, exc.problem, exc.hint, field=exc.field) from None
    except RecursionError:  # the scanner above was wrong; still a typed error
        raise _too_deep(path, kind, max_depth) from None
    except ValueError as exc:  # json.JSONDecodeError
        raise _syntax(path, kind, "JSON", str(exc)) from None
    if own_format:
        return data
    return check_tree(data, path=path, kind=kind, max_depth=max_depth, max_values=max_values)


def parse_toml(text: str, *, path: Any = "<text>", kind: str = "TOML input", max_depth: int = DEFAULT_MAX_DEPTH,
               max_values: int = DEFAULT_MAX_VALUES) -> dict[str, Any]:
    """Parse TOML text with bounded nesting (arrays, inline tables and dotted keys); see :func:`check_tree`."""
    if _max_depth_of(_TOML_TOKENS, text, max_depth, base=1) > max_depth:  # the document is a table: level 1
        raise _too_deep(path, kind, max_depth)
    try:
        data = tomllib.loads(text, parse_float=_toml_float)
    except FileInputError:
        raise
    except _Refused as exc:
        raise FileInputError(path, kind, exc.reason, exc.problem, exc.hint, field=exc.field) from None
    except RecursionError:
        raise _too_deep(path, kind, max_depth) from None
    except ValueError as exc:  # tomllib.TOMLDecodeError, and int() of over-long numbers
        raise _syntax(path, kind, "TOML", str(exc)) from None
    return check_tree(data, path=path, kind=kind, max_depth=max_depth, max_values=max_values)


def _toml_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        _refuse_constant(text)
    return value


def _yaml_loader() -> type:
    """A libyaml (C) SafeLoader whose mappings refuse non-scalar and duplicate keys, and whose numbers are
    converted only when short. Aliases and depth are refused earlier, by :func:`_scan_yaml_events`."""
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class BoundedLoader(base):  # type: ignore[misc, valid-type]
        pass

    def construct_mapping(loader: Any, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            where = f"line {key_node.start_mark.line + 1}"
            if not isinstance(key_node, yaml.ScalarNode):
                raise _Refused("bad_key", f"a mapping key at {where} is a list or mapping",
                               "use plain text keys")
            key = loader.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable scalar (a !!binary or other tagged value)
                raise _Refused("bad_key", f"the mapping key at {where} cannot be a key", "use plain text keys") from None
            if duplicate:
                raise _Refused("duplicate_key", f"key {str(key)[:60]!r} appears twice ({where})",
                               f"remove the duplicate {str(key)[:60]!r}", field=str(key)[:60])
        return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

    def bounded_number(convert: Any) -> Any:
        def construct(loader: Any, node: Any) -> Any:
            if len(node.value) > _MAX_NUMBER_CHARS:
                raise _Refused("number", f"a number at line {node.start_mark.line + 1} is {len(node.value)} characters long",
                               f"write numbers of at most {_MAX_NUMBER_CHARS} characters (or quote the text)")
            return convert(loader, node)
        return construct

    BoundedLoader.add_constructor("tag:yaml.org,2002:map", construct_mapping)
    BoundedLoader.add_constructor("tag:yaml.org,2002:int", bounded_number(yaml.SafeLoader.construct_yaml_int))
    BoundedLoader.add_constructor("tag:yaml.org,2002:float", bounded_number(yaml.SafeLoader.construct_yaml_float))
    return BoundedLoader


_LOADER: type | None = None


def _scan_yaml_events(text: str, path: Any, kind: str, max_depth: int, max_values: int) -> None:
    """Walk libyaml's event stream (no recursion, no construction): refuse aliases and deep nesting."""
    import yaml

    parser = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    depth = count = 0
    for event in yaml.parse(text, Loader=parser):
        if isinstance(event, yaml.AliasEvent):
            raise FileInputError(path, kind, "alias",
                                 f"it uses a YAML alias (*{event.anchor}) at line {event.start_mark.line + 1 if event.start_mark else '?'}",
                                 "write the value out in full: anchors and aliases are not accepted "
                                 "(quote the wildcard: functions: \"*\")")
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
            if depth > max_depth:
                raise _too_deep(path, kind, max_depth)
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1
        if isinstance(event, yaml.NodeEvent):
            count += 1
            if count > max_values:
                raise _too_many(path, kind, max_values)


def parse_yaml(text: str, *, path: Any = "<text>", kind: str = "YAML input", max_depth: int = DEFAULT_MAX_DEPTH,
               max_values: int = DEFAULT_MAX_VALUES) -> Any:
    """Parse one YAML document: safe tags only, no aliases, bounded nesting and numbers, scalar unique keys."""
    global _LOADER
    import yaml

    try:
        _scan_yaml_events(text, path, kind, max_depth, max_values)
        if _LOADER is None:
            _LOADER = _yaml_loader()
        data = yaml.load(text, Loader=_LOADER)  # noqa: S506 - a SafeLoader subclass
    except FileInputError:
        raise
    except _Refused as exc:
        raise FileInputError(path, kind, exc.reason, exc.problem, exc.hint, field=exc.field) from None
    except RecursionError:
        raise _too_deep(path, kind, max_depth) from None
    except (yaml.YAMLError, ValueError, OverflowError) as exc:  # ValueError: e.g. a bad !!timestamp
        detail = str(exc)
        hint = '; quote the wildcard: functions: "*"' if "alias" in detail else ""
        raise FileInputError(path, kind, "syntax", f"it is not valid YAML ({' '.join(detail.split())[:300]})",
                             f"fix the YAML syntax{hint}") from None
    return check_tree(data, path=path, kind=kind, max_depth=max_depth, max_values=max_values)


# --------------------------------------------------------------------------------------------
# 4. the tree
# --------------------------------------------------------------------------------------------

_SCALARS = (str, bool, int, float, type(None), _dt.date, _dt.time)  # datetime is a date


def check_tree(data: Any, *, path: Any = "<text>", kind: str = "input", max_depth: int = DEFAULT_MAX_DEPTH,
               max_values: int = DEFAULT_MAX_VALUES) -> Any:
    """Return ``data`` if it is plain data: dicts with scalar keys, lists, text, booleans, finite numbers,
    integers of at most :data:`MAX_INT_BITS` bits, dates/times (TOML, YAML), nested at most ``max_depth``
    levels and ``max_values`` values in all. Iterative (never recurses). Raises :class:`FileInputError`."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    count = 1
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth + 1 > max_depth:
                raise _too_deep(path, kind, max_depth)
            count += len(value)  # counted before they are looked at: the work stays within max_values
            if count > max_values:
                raise _too_many(path, kind, max_values)
            if isinstance(value, dict):
                for key in value:
                    if not isinstance(key, _SCALARS):
                        raise FileInputError(path, kind, "bad_key", f"a mapping key is a {type(key).__name__}",
                                             "use plain text keys")
                    _check_scalar(key, path, kind)
                stack.extend((v, depth + 1) for v in value.values())
            else:
                stack.extend((v, depth + 1) for v in value)
        elif isinstance(value, _SCALARS):
            _check_scalar(value, path, kind)
        else:
            raise FileInputError(path, kind, "type", f"it holds a {type(value).__name__} value (a YAML tag?)",
                                 "use only text, numbers, booleans, lists and mappings")
    return data


def _check_scalar(value: Any, path: Any, kind: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise FileInputError(path, kind, "number", f"it holds {value}, which is not a number smartkeys accepts",
                             "write a finite number")
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise FileInputError(path, kind, "number", f"it holds an integer of {value.bit_length()} bits (more than "
                             f"{MAX_INT_BITS})", "write amounts that fit in uint256, or with a unit ('1.5 ether')")


# --------------------------------------------------------------------------------------------
# all together
# --------------------------------------------------------------------------------------------

_PARSERS = {"JSON": parse_json, "TOML": parse_toml, "YAML": parse_yaml}


def load_file(path: str | os.PathLike[str], fmt: str, *, kind: str, max_bytes: int,
              max_depth: int = DEFAULT_MAX_DEPTH, max_values: int = DEFAULT_MAX_VALUES) -> Any:
    """Read and parse a ``fmt`` ("JSON", "TOML" or "YAML") file through every bound above."""
    text = read_text(path, kind=kind, max_bytes=max_bytes)
    return _PARSERS[fmt](text, path=path, kind=kind, max_depth=max_depth, max_values=max_values)
