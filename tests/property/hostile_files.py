"""Hypothesis fuzz of every file reader, run as ``python hostile_files.py READER EXAMPLES`` in a child process.

A reader that crashes the interpreter (a C stack overflow in a parser is a segmentation fault, not an
exception) kills only this child; ``test_hostile_files.py`` then fails with the signal. In the child, smartkeys
is imported first, so Python's recursion limit is the 100,000 eth-account sets: the condition of the crash.

Each example builds one file (or special file) and calls the reader once. Accepted outcomes: a result, or a
:class:`~smartkeys.errors.SmartKeysError` (typed, exit code from the CLI table). Anything else fails the
example, and so does an answer slower than :data:`BUDGET_S` seconds (measured around the reader call).

Inputs: nested documents deeper than the bounds in every shape (arrays, objects, inline tables, dotted keys,
YAML block and flow collections, mixes), YAML anchors/aliases/merge keys/self-reference/"billion laughs",
unhashable and tagged mapping keys, duplicate keys, NaN/infinity/huge and base-60 numbers, non-UTF-8 bytes,
random bytes, oversized files, and special files (FIFO, directory, socket, symlink loop, /dev/zero).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import time
import warnings
from pathlib import Path

# The condition of the crash: any real use of smartkeys imports eth-account, which raises Python's recursion
# limit to 100,000 (``import smartkeys`` itself no longer does: its names load lazily), so import it first.
import eth_account  # noqa: F401
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import smartkeys.policy  # noqa: F401
from smartkeys.errors import SmartKeysError

BUDGET_S = 1.0
assert sys.getrecursionlimit() >= 10_000, "eth-account no longer raises the recursion limit: update this fuzz"

# --------------------------------------------------------------------------------------------- documents

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**300), 2**300), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20), st.sampled_from(["*", "0x" + "11" * 20, "1.5 ether", "24h", "[", "{", "\"", "'''"]),
)
_trees = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=30,
)


def _nest(opener: str, closer: str, inner: str, depth: int) -> str:
    return opener * depth + inner + closer * depth


_DEPTHS = st.sampled_from([1, 8, 31, 32, 33, 64, 1000, 5000, 70_000])

_json_bombs = st.builds(
    _nest,
    st.sampled_from(['[', '{"a":', '[{"a":', '{"a":[', '[ ', '{"":']),
    st.sampled_from([']', '}', '}]', ']}', ' ]', '}']),
    st.sampled_from(['1', '""', '[]', '{}', 'NaN', '1e999', '9' * 5000, '"\\u0000"', '']),
    _DEPTHS,
)
_toml_bombs = st.one_of(
    st.builds(lambda o, c, d: "a = " + _nest(o, c, "1", d), st.sampled_from(["[", "{b = ", "[{b = ", "{b = ["]),
              st.sampled_from(["]", "}", "}]", "]}"]), _DEPTHS),
    st.builds(lambda d: "[" + ".".join(["a"] * d) + "]\nb = 1", _DEPTHS),
    st.builds(lambda d: ".".join(["a"] * d) + " = 1", _DEPTHS),
    st.builds(lambda d: "x = {" + ".".join(['"k"'] * d) + " = 1}", _DEPTHS),
    st.builds(lambda d: "[[" + ".".join(["t"] * d) + "]]", _DEPTHS),
    st.builds(lambda d: 'a = """' + "[" * d, _DEPTHS),
    st.builds(lambda d: "a = " + "0x" + "f" * d, _DEPTHS),
    st.builds(lambda d: "a = " + "1" * d, _DEPTHS),
    st.sampled_from(["a = nan", "a = inf", "a = -inf", "a = 1\na = 2", "[t]\n[t]", "a = 1979-05-27T07:32:00Z",
                     "a.b = 1\na = 2", 'a = "\\ud800"', "a = '''\n''''"]),
)
_yaml_bombs = st.one_of(
    st.builds(lambda o, c, d: _nest(o, c, "1", d), st.sampled_from(["[", "{a: ", "[{a: ", "{a: ["]),
              st.sampled_from(["]", "}", "}]", "]}"]), _DEPTHS),
    st.builds(lambda d: "".join("  " * i + "- \n" for i in range(min(d, 3000))) + "  " * min(d, 3000) + "1", _DEPTHS),
    st.builds(lambda d: "".join("  " * i + f"k{i}:\n" for i in range(min(d, 3000))) + "  " * min(d, 3000) + "v: 1",
              _DEPTHS),
    st.builds(lambda d: "- " * min(d, 20_000) + "1", _DEPTHS),
    st.builds(lambda w, d: "".join(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}" if i else '"lol"'] * w) + "]\n"
                                   for i in range(d)), st.integers(1, 12), st.integers(1, 12)),
    st.sampled_from([
        "&a [*a]", "&a {x: *a}", "a: &a [1]\nb: *a", "base: &b {x: 1}\nm:\n  <<: *b\n  y: 2", "*nope",
        "? [1, 2]\n: 3", "? {a: 1}\n: 3", "{[1]: 2}", "? !!binary aGVsbG8=\n: 1", "!!set {a, b}", "? !!set {a}\n: 1",
        "a: .nan", "a: .inf", "a: -.inf", "a: 1:2:3:4", "a: " + "1:" * 50_000 + "1", "a: 0x" + "f" * 5000,
        "a: 1\na: 2", "a: 1\n? a\n: 2", "!!python/object/apply:os.system ['true']", "--- 1\n--- 2",
        "a: !!timestamp 2001-99-99", "a: !!int x", "a: !!float x", "%YAML 9.9\n--- 1", "a: !!binary '!!'",
        "functions: *", "key: 0x1111111111111111111111111111111111111111",
    ]),
)
def _valid_policy() -> dict:
    """A policy that parses (names, caps, limits), for mutations that reach deep into the policy parser."""
    a, b, c = ("0x" + d * 40 for d in "123")
    return {
        "key": a, "valid_for": "24h", "tokens": {"USDC": {"address": b, "decimals": 6}}, "contracts": {"r": c},
        "allow": [{"contract": "USDC", "functions": ["transfer(address,uint256)"]}, {"contract": "r", "functions": "*"},
                  {"send_native_to": c}],
        "limits": {"native": {"per_call": "0.1 ether", "total": "1 ether", "per_period": "0.2 ether", "period": "day"},
                   "tokens": {"USDC": {"total": "100 USDC", "per_period": "20 USDC", "period": "day"}},
                   "max_uses": 10, "gas_budget": "0.05 ether"},
    }


def _paths(tree: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(tree, dict):
        for k, v in tree.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            out += _paths(v, prefix + (i,))
    return out


@st.composite
def _mutated_policies(draw) -> object:
    """A valid policy with one to three values (anywhere in it) replaced by hostile ones."""
    policy = _valid_policy()
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(policy) if p]
        path = draw(st.sampled_from(paths))
        node = policy
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = draw(st.one_of(_trees, st.sampled_from(
            ["-1 ether", "1e400 ether", "NaN ether", "1" * 5000, "0." + "0" * 5000 + "1 ether", "10**80", "∞",
             "1_000 USDC", "0x" + "f" * 64, "transfer(address,uint256", "*", "", " ", "\x00", 2**255, -1,
             10**77, 1.5, "9999999999999999999999h", "P1Y", "2030-13-01T00:00:00Z", "1 USDC USDC", "²", "¹²h",
             "٣h", "9" * 5000 + "h", "1" * 5000, "0x" + "1" * 5000])))
    return policy


_policies = _mutated_policies()
_documents = {
    "JSON": st.one_of(_trees.map(lambda t: json.dumps(t, allow_nan=True)), _json_bombs,
                      _policies.map(lambda t: json.dumps(t, allow_nan=True))),
    "TOML": st.one_of(_trees.map(lambda t: _toml_of(t)), _toml_bombs, _policies.map(lambda t: _toml_of(t))),
    "YAML": st.one_of(_trees.map(lambda t: json.dumps(t, allow_nan=True)), _yaml_bombs,  # JSON is YAML
                      _policies.map(lambda t: _yaml_of(t))),
}


def _yaml_of(tree: object) -> str:
    import yaml

    try:
        return yaml.safe_dump(tree, sort_keys=False)
    except Exception:  # noqa: BLE001 - the JSON text is YAML too
        return json.dumps(tree, allow_nan=True)


def _toml_of(tree: object) -> str:
    from smartkeys.policy import policy_to_toml

    try:
        return policy_to_toml(tree) if isinstance(tree, dict) else f"a = {json.dumps(tree)}"
    except Exception:  # noqa: BLE001 - not every tree has a TOML form; the JSON text is still hostile input
        return json.dumps(tree)


def _contents(fmt: str) -> st.SearchStrategy[bytes]:
    text = _documents[fmt]
    return st.one_of(
        text.map(lambda t: t.encode("utf-8", "surrogatepass")),
        text.map(lambda t: b"\xef\xbb\xbf" + t.encode("utf-8", "surrogatepass")),
        st.binary(max_size=200),
        st.tuples(text, st.binary(min_size=1, max_size=4)).map(lambda p: p[0].encode("utf-8", "replace") + p[1]),
        st.builds(lambda unit, n: unit * n, st.sampled_from([b"a", b"[", b"{", b"- ", b"&a ", b"#", b"\n"]),
                  st.sampled_from([1 << 16, 300_000, 2_000_000])),
        # many small values, up to the size bounds: the cost of parsing, not of nesting
        st.builds(lambda head, unit, n: head + unit * n, st.sampled_from([b"", b"[", b"a = [", b"{", b"- "]),
                  st.sampled_from([b"0,", b"[],", b"{},", b"- 0\n", b'"":0,', b"[0]\n", b"a.b.c = 0\n"]),
                  st.sampled_from([1000, 21_000, 32_000, 150_000])),
    )


# --------------------------------------------------------------------------------------------- files

_SPECIAL = ["fifo", "directory", "socket", "symlink-loop", "dev-zero", "missing"]
_KINDS = st.sampled_from(["regular"] * 4 + _SPECIAL)  # mostly regular files, whose content is the fuzz


def _make(path: Path, kind: str, content: bytes, mode: int = 0o600) -> list[socket.socket]:
    """Create ``path`` as ``kind``; returns sockets to close afterwards."""
    if kind == "regular":
        path.write_bytes(content)
        os.chmod(path, mode)
    elif kind == "fifo":
        os.mkfifo(path, mode)
    elif kind == "directory":
        path.mkdir()
    elif kind == "socket":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        return [sock]
    elif kind == "symlink-loop":
        os.symlink(path, path)
    elif kind == "dev-zero":
        os.symlink("/dev/zero", path)
    return []


def _answer(call) -> tuple[float, object]:
    """Run the reader; return (seconds, outcome). Typed errors are outcomes; anything else propagates."""
    started = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outcome = call()
    except SmartKeysError as exc:
        outcome = exc
    return time.perf_counter() - started, outcome


def _within_budget(seconds: float, what: str) -> None:
    assert seconds < BUDGET_S, f"{what} took {seconds:.2f} s (budget {BUDGET_S} s)"


# --------------------------------------------------------------------------------------------- readers


def _policy(fmt: str, suffix: str):
    from smartkeys.policy import load_policy

    @given(kind=_KINDS, content=_contents(fmt))
    def fuzz(kind: str, content: bytes) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"policy{suffix}"
            sockets = _make(path, kind, content)
            try:
                seconds, _ = _answer(lambda: load_policy(path))
            finally:
                for s in sockets:
                    s.close()
            _within_budget(seconds, f"load_policy of a {kind} {fmt} file of {len(content)} bytes")

    return fuzz


def _config():
    from smartkeys.config import resolve_config

    @given(kind=_KINDS, content=_contents("TOML"), explicit=st.booleans())
    def fuzz(kind: str, content: bytes, explicit: bool) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "smartkeys.toml"
            sockets = _make(path, kind, content)
            try:
                args = {"config": str(path)} if explicit else {}
                seconds, _ = _answer(lambda: resolve_config(args, {}, tmp))
            finally:
                for s in sockets:
                    s.close()
            _within_budget(seconds, f"resolve_config of a {kind} file of {len(content)} bytes")

    return fuzz


_HEX = st.text("0123456789abcdef", min_size=0, max_size=80)
_big = st.one_of(st.integers(-(2**70), 2**70), st.sampled_from([0, 1, 2**18, 2**19, 2**20, 2**31, 2**64]),
                 st.floats(allow_nan=True), st.text(max_size=5), st.none(), st.booleans())


def _keystore_json(draw_kdf: str, n: object, r: object, p: object, c: object, dklen: object, salt: object,
                   extra: dict) -> bytes:
    params = ({"n": n, "r": r, "p": p} if draw_kdf == "scrypt" else {"c": c, "prf": "hmac-sha256"})
    params.update({"dklen": dklen, "salt": salt})
    doc = {"version": 3, "id": "x", "address": "11" * 20,
           "crypto": {"cipher": "aes-128-ctr", "cipherparams": {"iv": "00" * 16}, "ciphertext": "00" * 32,
                      "kdf": draw_kdf, "kdfparams": params, "mac": "00" * 32}}
    doc["crypto"].update(extra)
    return json.dumps(doc, allow_nan=True).encode()


# In-bound work factors cost what their KDF costs (this module's default, scrypt n=2**18, is seconds on a slow
# machine: that is the price of a real keystore), so in-bound draws are kept small; out-of-bound ones are huge.
_keystores = st.builds(
    _keystore_json,
    st.sampled_from(["scrypt", "pbkdf2", "argon2", ""]),
    st.one_of(st.sampled_from([2, 2**10, 3, 2**19, 2**30, 2**64, -(2**18)]), _big),
    st.one_of(st.sampled_from([1, 8, 33, 2**20]), _big),
    st.one_of(st.sampled_from([1, 6, 17, 2**20]), _big),
    st.one_of(st.sampled_from([1, 1000, 2**20 + 1, 2**40]), _big),
    st.one_of(st.just(32), _big),
    st.one_of(_HEX, _big),
    st.dictionaries(st.sampled_from(["cipher", "cipherparams", "ciphertext", "mac", "kdfparams"]),
                    st.one_of(_HEX, _big, st.just({}), st.just([])), max_size=2),
)


def _cheap(content: bytes) -> bool:
    """Whether a keystore's in-bound work factor is small enough for the fuzz budget (see above)."""
    try:
        params = json.loads(content)["crypto"]["kdfparams"]
        n, r, p, c = (params.get(k) for k in ("n", "r", "p", "c"))
    except Exception:  # noqa: BLE001 - not a keystore at all: cheap
        return True
    ints = [v for v in (n, r, p, c) if isinstance(v, int) and not isinstance(v, bool)]
    within = (isinstance(n, int) and 2 <= n <= 2**18 and isinstance(r, int) and 1 <= r <= 32
              and isinstance(p, int) and 1 <= p <= 16) or (isinstance(c, int) and 1 <= c <= 2**20)
    return not within or all(v <= 2**12 for v in ints)


def _keystore():
    from smartkeys.keystore import load_keystore, read_keystore_json

    @given(kind=_KINDS, content=st.one_of(_keystores, _contents("JSON")), mode=st.sampled_from([0o600, 0o644]))
    def fuzz(kind: str, content: bytes, mode: int) -> None:
        if not _cheap(content):  # push the work factor out of bounds instead (n=1…, c=99999999…)
            content = content.replace(b'"n": ', b'"n": 1', 1).replace(b'"c": ', b'"c": 99999999', 1)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "key.json"
            sockets = _make(path, kind, content, mode)
            try:
                seconds, _ = _answer(lambda: load_keystore(path, "password"))
                seconds2, _ = _answer(lambda: read_keystore_json(path))
            finally:
                for s in sockets:
                    s.close()
            _within_budget(seconds, f"load_keystore of a {kind} file of {len(content)} bytes")
            _within_budget(seconds2, f"read_keystore_json of a {kind} file of {len(content)} bytes")

    return fuzz


def _journal():
    from smartkeys.journal import RefusalJournal

    line = st.one_of(_documents["JSON"], st.builds(lambda d: "[" * d, _DEPTHS),
                     st.just('{"v":1,"time":1e999,"chain_id":1e400,"account":"0x","calls":[]}'))
    journal = st.lists(line, max_size=5).map(lambda lines: "\n".join(lines).encode("utf-8", "surrogatepass"))

    @given(kind=_KINDS, content=st.one_of(journal, _contents("JSON")))
    def fuzz(kind: str, content: bytes) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "refusals.jsonl"
            sockets = _make(path, kind, content)
            try:
                seconds, outcome = _answer(lambda: RefusalJournal(path).read())
            finally:
                for s in sockets:
                    s.close()
            assert isinstance(outcome, (list, SmartKeysError)), outcome
            _within_budget(seconds, f"RefusalJournal.read of a {kind} file of {len(content)} bytes")

    return fuzz


def _deployments():
    from smartkeys.deploy import DeployedContract, DeployResult, write_deployment_file

    result = DeployResult(chain_id=31337, block=1, deployer=None, dry_run=False, contracts=(
        DeployedContract(name="EntryPoint", address="0x" + "11" * 20, status="already deployed"),))

    @given(kind=_KINDS, content=_contents("JSON"))
    def fuzz(kind: str, content: bytes) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "31337.json"
            sockets = _make(path, kind, content)
            try:
                seconds, outcome = _answer(lambda: write_deployment_file(result, tmp))
            finally:
                for s in sockets:
                    s.close()
            if not isinstance(outcome, SmartKeysError):  # written: the record is this run's, readable again
                assert json.loads(path.read_text())["contracts"]["EntryPoint"]["address"] == "0x" + "11" * 20
            _within_budget(seconds, f"write_deployment_file over a {kind} file of {len(content)} bytes")

    return fuzz


READERS = {
    "policy-json": lambda: _policy("JSON", ".json"),
    "policy-toml": lambda: _policy("TOML", ".toml"),
    "policy-yaml": lambda: _policy("YAML", ".yaml"),
    "config": _config,
    "keystore": _keystore,
    "journal": _journal,
    "deployments": _deployments,
}


def main(reader: str, examples: int) -> None:
    fuzz = READERS[reader]()
    settings(max_examples=examples, deadline=None, database=None, derandomize=False, print_blob=True,
             suppress_health_check=list(HealthCheck))(fuzz)()
    print(f"{reader}: {examples} examples, no crash, no untyped error, each under {BUDGET_S} s")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
