"""smartkeys.safe_files: the one reader every file goes through.

The inputs reported as crashes, hangs and untyped errors are replayed through the real readers in a child
process (a regression would be a segmentation fault or a hang, which must fail the test, not kill pytest); the
rest are unit tests of the bounds, each tried at and just past its edge.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from smartkeys.errors import InvalidInputError, SmartKeysError
from smartkeys.safe_files import (
    DEFAULT_MAX_DEPTH,
    REASONS,
    FileInputError,
    FileMissingError,
    parse_json,
    parse_toml,
    parse_yaml,
    read_bytes,
    read_text,
)

SRC = Path(__file__).resolve().parents[2] / "src"

LAUGHS = (  # 270 bytes: 9**8 "lol"s once expanded
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(f"{c}: &{c} [{','.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefg", "bcdefgh", strict=True))
)

# Each case: file name, how to make it (python source run in the child, `path` in scope), reader call.
_CASES = {
    "self-referencing YAML (7 bytes)": ("p.yaml", "path.write_text('&a [*a]')", "load_policy(path)"),
    "JSON nested 70,000 deep": ("p.json", "path.write_text('[' * 70000 + ']' * 70000)", "load_policy(path)"),
    "JSON nested 30,000 deep (within the size bound)": ("p.json", "path.write_text('[' * 30000)", "load_policy(path)"),
    "TOML nested 30,000 deep (within the size bound)": ("p.toml", "path.write_text('a = ' + '[' * 30000)",
                                                        "load_policy(path)"),
    "YAML with a list as a key": ("p.yaml", "path.write_text('? [1, 2]\\n: 3')", "load_policy(path)"),
    "TOML nested 70,000 deep": ("p.toml", "path.write_text('a = ' + '[' * 70000 + ']' * 70000)", "load_policy(path)"),
    "TOML dotted key 70,000 deep": ("p.toml", "path.write_text('.'.join(['a'] * 70000) + ' = 1')", "load_policy(path)"),
    "billion laughs YAML": ("p.yaml", f"path.write_text({LAUGHS!r})", "load_policy(path)"),
    "policy path is a FIFO": ("p.yaml", "os.mkfifo(path)", "load_policy(path)"),
    "policy path is a directory": ("p.json", "path.mkdir()", "load_policy(path)"),
    "policy path is /dev/zero": ("p.json", "os.symlink('/dev/zero', path)", "load_policy(path)"),
    "policy path is a symlink loop": ("p.json", "os.symlink(path, path)", "load_policy(path)"),
    "policy is not UTF-8": ("p.toml", "path.write_bytes(b'key = \"\\xff\\xfe\"')", "load_policy(path)"),
    "config is a FIFO": ("smartkeys.toml", "os.mkfifo(path)", "resolve_config({'config': str(path)}, {}, path.parent)"),
    "config nested deep": ("smartkeys.toml", "path.write_text('a = ' + '{b = ' * 5000 + '1' + '}' * 5000)",
                           "resolve_config({}, {}, path.parent)"),
    "journal is a FIFO": ("j.jsonl", "os.mkfifo(path)", "RefusalJournal(path).read()"),
    "keystore with scrypt n = 2**30": (
        "k.json",
        "path.write_text(json.dumps({'version': 3, 'address': '11' * 20, 'crypto': {'cipher': 'aes-128-ctr', "
        "'cipherparams': {'iv': '00' * 16}, 'ciphertext': '00' * 32, 'kdf': 'scrypt', 'mac': '00' * 32, "
        "'kdfparams': {'n': 2**30, 'r': 8, 'p': 1, 'dklen': 32, 'salt': '00' * 32}}})); os.chmod(path, 0o600)",
        "load_keystore(path, 'pw')"),
    "keystore with pbkdf2 c = 2**40": (
        "k.json",
        "path.write_text(json.dumps({'version': 3, 'crypto': {'cipher': 'aes-128-ctr', "
        "'cipherparams': {'iv': '00' * 16}, 'ciphertext': '00' * 32, 'kdf': 'pbkdf2', 'mac': '00' * 32, "
        "'kdfparams': {'c': 2**40, 'prf': 'hmac-sha256', 'dklen': 32, 'salt': '00' * 32}}})); os.chmod(path, 0o600)",
        "load_keystore(path, 'pw')"),
    "keystore nested deep": ("k.json", "path.write_text('[' * 70000); os.chmod(path, 0o600)",
                             "load_keystore(path, 'pw')"),
}

_CHILD = textwrap.dedent("""
    import json, os, sys, tempfile, time
    from pathlib import Path
    from smartkeys.policy import load_policy  # first: eth-account raises the recursion limit to 100,000
    from smartkeys.config import resolve_config
    from smartkeys.journal import RefusalJournal
    from smartkeys.keystore import load_keystore
    from smartkeys.cli._context import exit_code_for
    assert sys.getrecursionlimit() >= 10_000
    out = {}
    for name, (file_name, make, call) in json.loads(sys.argv[1]).items():
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / file_name
            exec(make)
            started = time.perf_counter()
            try:
                eval(call)
                result = {"raised": None}
            except Exception as exc:
                result = {"raised": type(exc).__name__, "message": str(exc), "exit_code": exit_code_for(exc),
                          "typed": type(exc).__module__.startswith("smartkeys"), "path": str(path)}
            result["seconds"] = time.perf_counter() - started
            out[name] = result
    print(json.dumps(out))
""")


def test_the_reported_hostile_files_get_a_typed_error_naming_the_file_and_the_fix_within_a_second():
    child = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(_CASES)], capture_output=True, text=True,
                           timeout=300, env={**os.environ, "PYTHONPATH": str(SRC)})
    assert child.returncode >= 0, f"crashed with signal {-child.returncode}: {child.stderr[-3000:]}"
    assert child.returncode == 0, child.stderr[-3000:]
    results = json.loads(child.stdout)
    assert set(results) == set(_CASES)
    for name, result in results.items():
        assert result["raised"] and result["typed"], (name, result)
        assert result["exit_code"] == 2, (name, result)
        assert result["path"] in result["message"] and "fix:" in result["message"], (name, result)
        assert result["seconds"] < 1.0, (name, result)
    assert "alias" in results["billion laughs YAML"]["message"]
    assert "nested more than 32" in results["JSON nested 30,000 deep (within the size bound)"]["message"]
    assert "nested more than 32" in results["TOML nested 30,000 deep (within the size bound)"]["message"]
    assert "FIFO" in results["policy path is a FIFO"]["message"]
    assert "kdfparams.n" in results["keystore with scrypt n = 2**30"]["message"]
    assert "kdfparams.c" in results["keystore with pbkdf2 c = 2**40"]["message"]


def test_a_journal_line_of_100000_brackets_is_skipped_with_a_warning(tmp_path):
    """(Was: `audit` died with a segmentation fault.) Run in a child for the same reason as above."""
    code = textwrap.dedent("""
        import sys, warnings
        from pathlib import Path
        from smartkeys.journal import JournalWarning, RefusalJournal
        path = Path(sys.argv[1])
        path.write_text('[' * 100000 + '\\n' + '{' * 40 + '\\n')
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter('always')
            print(len(RefusalJournal(path).read()), len([w for w in seen if w.category is JournalWarning]))
    """)
    child = subprocess.run([sys.executable, "-c", code, str(tmp_path / "j.jsonl")], capture_output=True, text=True,
                           timeout=120, env={**os.environ, "PYTHONPATH": str(SRC)})
    assert child.returncode == 0, f"exit {child.returncode}: {child.stderr[-2000:]}"
    assert child.stdout.split() == ["0", "2"]


# ------------------------------------------------------------------------------- the file itself


def test_special_files_are_refused_without_blocking(tmp_path):
    fifo, sock_path, loop = tmp_path / "fifo", tmp_path / "sock", tmp_path / "loop"
    os.mkfifo(fifo)
    os.symlink(loop, loop)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sock_path))
        for path, reason, words in [(fifo, "not_regular", "FIFO"), (tmp_path, "not_regular", "directory"),
                                    (Path("/dev/zero"), "not_regular", "character device"),
                                    (sock_path, "unreadable", "socket"), (loop, "unreadable", "symbolic link loop")]:
            with pytest.raises(FileInputError) as info:
                read_bytes(path, kind="policy file", max_bytes=100)
            assert info.value.reason == reason and words in str(info.value), str(info.value)
            assert str(info.value).startswith(f"policy file {path}: ") and "; fix: " in str(info.value)


def test_missing_file_is_a_file_input_error_and_a_file_not_found_error(tmp_path):
    with pytest.raises(FileMissingError) as info:
        read_bytes(tmp_path / "nope", kind="keystore", max_bytes=10)
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, InvalidInputError)
    assert isinstance(info.value, SmartKeysError) and info.value.reason == "missing"


def test_size_bound_holds_at_the_edge_and_for_files_that_report_no_size(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    assert read_bytes(path, kind="f", max_bytes=100) == b"x" * 100
    with pytest.raises(FileInputError) as info:
        read_bytes(path, kind="f", max_bytes=99)
    assert info.value.reason == "too_large"
    with pytest.raises(FileInputError) as info:  # /proc files say st_size 0: the bound holds while reading
        read_bytes("/proc/self/maps", kind="f", max_bytes=10)
    assert info.value.reason == "too_large"


def test_text_is_strict_utf8_and_a_bom_is_dropped(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"\xef\xbb\xbfa = 1")
    assert read_text(path, kind="f", max_bytes=100) == "a = 1"
    path.write_bytes(b"ok \xc3")
    with pytest.raises(FileInputError) as info:
        read_text(path, kind="f", max_bytes=100)
    assert info.value.reason == "encoding" and "byte 3" in str(info.value)


# ------------------------------------------------------------------------------- nesting


@pytest.mark.parametrize(
    ("parse", "make"),
    [
        (parse_json, lambda d: "[" * d + "]" * d),
        (parse_json, lambda d: '{"a":' * d + "1" + "}" * d),
        (parse_toml, lambda d: "a = " + "[" * (d - 1) + "]" * (d - 1)),  # a TOML document is a table: level 1
        (parse_toml, lambda d: "a = " + "{b = " * (d - 1) + "1" + "}" * (d - 1)),
        (parse_toml, lambda d: ".".join(["k"] * d) + " = 1"),
        (parse_toml, lambda d: "[" + ".".join(["k"] * (d - 1)) + "]\nv = 1"),
        (parse_yaml, lambda d: "[" * d + "]" * d),
        (parse_yaml, lambda d: "".join("  " * i + f"k{i}:\n" for i in range(d - 1)) + "  " * (d - 1) + "v: 1"),
        (parse_yaml, lambda d: "- " * d + "1"),
    ],
    ids=["json-array", "json-object", "toml-array", "toml-inline", "toml-dotted", "toml-header", "yaml-flow",
         "yaml-block-map", "yaml-block-seq"],
)
def test_nesting_is_accepted_to_the_bound_and_refused_one_past_it(parse, make):
    """``make(d)`` builds a document whose lists/mappings nest ``d`` levels (the outermost one is level 1)."""
    parse(make(DEFAULT_MAX_DEPTH))
    with pytest.raises(FileInputError) as info:
        parse(make(DEFAULT_MAX_DEPTH + 1))
    assert info.value.reason == "too_deep", str(info.value)


def test_brackets_inside_strings_and_comments_do_not_count():
    deep = "[" * 100
    assert parse_json(json.dumps({"a": deep, "b": "\\\"" + deep}))["a"] == deep
    text = f'a = "{deep}"\nb = \'{deep}\'\nc = """\n{deep}\n"""\nd = \'\'\'{deep}\'\'\'\n# {deep}\ne = [[1]]\n'
    assert parse_toml(text)["e"] == [[1]]
    assert parse_yaml(f'a: "{deep}"\nb: \'{deep}\'\n# {deep}\n')["a"] == deep


def test_an_unterminated_string_ends_the_scan_without_quadratic_time():
    import time

    started = time.perf_counter()
    for parse, text in [(parse_json, '"\\"' * 200_000), (parse_toml, 'a = """' + '\\"' * 200_000),
                        (parse_toml, "a = '" + "x" * 400_000)]:
        with pytest.raises(FileInputError):
            parse(text)
    assert time.perf_counter() - started < 1.0


# ------------------------------------------------------------------------------- YAML aliases, keys, types


@pytest.mark.parametrize("text", ["&a [*a]", "a: &x 1\nb: *x", "base: &b {x: 1}\nm:\n  <<: *b\n", LAUGHS],
                         ids=["self", "plain", "merge-key", "laughs"])
def test_every_yaml_alias_is_refused(text):
    with pytest.raises(FileInputError) as info:
        parse_yaml(text)
    assert info.value.reason == "alias" and "anchors and aliases are not accepted" in str(info.value)


def test_an_anchor_without_alias_is_harmless():
    assert parse_yaml("a: &x 1\nb: 2") == {"a": 1, "b": 2}


@pytest.mark.parametrize(
    ("text", "reason"),
    [("? [1, 2]\n: 3", "bad_key"), ("? {a: 1}\n: 3", "bad_key"), ("{[1]: 2}", "bad_key"),
     ("? !!binary aGVsbG8=\n: 1", "bad_key"), ("!!set {a, b}", "type"), ("a: !!binary aGVsbG8=", "type"),
     ("a: 1\na: 2", "duplicate_key"), ("a: .nan", "number"), ("a: -.inf", "number"),
     ("a: " + "1:" * 60 + "1", "number"), ("a: 0x" + "f" * 65, "number"),
     ("!!python/object/apply:os.system ['true']", "syntax"), ("--- 1\n--- 2", "syntax")],
)
def test_yaml_keys_types_and_numbers_outside_plain_data_are_refused(text, reason):
    with pytest.raises(FileInputError) as info:
        parse_yaml(text)
    assert info.value.reason == reason, str(info.value)


@pytest.mark.parametrize(
    ("parse", "text", "reason"),
    [(parse_json, '{"a": NaN}', "number"), (parse_json, "[Infinity]", "number"), (parse_json, "1e999", "number"),
     (parse_json, "1" * 79, "number"), (parse_json, '{"a": 1, "a": 2}', "duplicate_key"),
     (parse_toml, "a = nan", "number"), (parse_toml, "a = -inf", "number"), (parse_toml, "a = 0x" + "f" * 65, "number"),
     (parse_toml, "a = " + "9" * 5000, "syntax"), (parse_toml, "a = 1\na = 2", "syntax")],
)
def test_json_and_toml_numbers_and_duplicates(parse, text, reason):
    with pytest.raises(FileInputError) as info:
        parse(text)
    assert info.value.reason == reason, str(info.value)


def test_numbers_up_to_uint256_are_kept():
    assert parse_json(str(2**256 - 1)) == 2**256 - 1
    assert parse_toml(f"a = {hex(2**256 - 1)}")["a"] == 2**256 - 1
    assert parse_yaml("a: 1.5\nb: 2030-01-01") == {"a": 1.5, "b": __import__("datetime").date(2030, 1, 1)}


def test_reasons_are_documented():
    seen = set()
    for parse, text in [(parse_json, "[" * 40), (parse_json, "{"), (parse_yaml, "&a [*a]"), (parse_yaml, "? [1]\n: 1"),
                        (parse_json, '{"a":1,"a":1}'), (parse_json, "NaN"), (parse_yaml, "!!set {a}")]:
        with pytest.raises(FileInputError) as info:
            parse(text)
        seen.add(info.value.reason)
    assert seen <= set(REASONS) and len(seen) == 7


# ------------------------------------------------------------------------------- the CLI


def test_cli_grant_with_a_hostile_policy_exits_2_naming_the_file(tmp_path):
    policy = tmp_path / "evil.yaml"
    policy.write_text(LAUGHS)
    child = subprocess.run([sys.executable, "-m", "smartkeys", "grant", "--policy", str(policy), "--dry-run"],
                           capture_output=True, text=True, timeout=120, cwd=tmp_path,
                           env={**os.environ, "PYTHONPATH": str(SRC), "SMARTKEYS_HOME": str(tmp_path)})
    assert child.returncode == 2, child.stderr
    assert child.stderr.startswith(f"error: policy file {policy}: it uses a YAML alias")
    assert "fix: write the value out in full" in child.stderr


def test_permission_denied_is_a_typed_error_with_the_fix(tmp_path, monkeypatch):
    """(Tests run as root here, whom chmod 000 does not stop: the open itself is made to fail.)"""
    import errno

    path = tmp_path / "p.json"
    path.write_text("{}")

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(os, "open", denied)
    with pytest.raises(FileInputError) as info:
        read_bytes(path, kind="policy file", max_bytes=10)
    assert info.value.reason == "unreadable" and f"chmod u+r {path}" in str(info.value)
