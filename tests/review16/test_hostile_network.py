"""Issue 16, kind 2 (untyped errors from the network, overall deadline), attacked with a hostile loopback node
and bundler. Each child process runs one call; a crash (signal) or a run past the deadline fails the test.

Reproduce by hand: serve ``"[" * 100_000`` (or a 200 answer sent one byte every 0.5 s) on a port, then
``smartkeys --rpc-url http://127.0.0.1:PORT --timeout 3 status``.
"""

from __future__ import annotations

import pytest

from tests.review16._helpers import HostileRPC, run_cli, run_python

NETWORK_EXIT = 4


@pytest.fixture
def hostile():
    servers = []

    def make(body: bytes, **kw) -> HostileRPC:
        servers.append(HostileRPC(body, **kw))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def test_node_answer_nested_100k_deep_is_a_typed_error_not_a_segfault(hostile):
    """rpc.py decodes the node's answer with json.loads and no depth bound (bundler.py has one): with
    eth-account's recursion limit of 100,000, json's C scanner overflows the C stack -> SIGSEGV."""
    node = hostile(b"[" * 100_000)
    rc, out, _ = run_python(
        "from smartkeys.rpc import connect, deadline\n"
        "from smartkeys.errors import NetworkError\n"
        f"w3 = connect({node.url!r})\n"
        "try:\n"
        "    with deadline(5): w3.eth.chain_id\n"
        "except NetworkError as e: print('typed', type(e).__name__)\n")
    assert rc == 0 and "typed MalformedResponseError" in out, (rc, out[-300:])


def test_cli_on_a_node_answering_100k_deep_exits_4(hostile, tmp_path):
    node = hostile(b"[" * 100_000)
    rc, out, _ = run_cli(["--rpc-url", node.url, "--home", str(tmp_path), "--timeout", "5", "status"])
    assert rc == NETWORK_EXIT, (rc, out[-300:])  # observed: -11 (SIGSEGV)


def test_cli_timeout_bounds_a_node_that_trickles_its_answer(hostile, tmp_path):
    """requests' timeout is per read: a node sending one byte every 0.5 s never trips it, and the deadline
    only shortens that per-read timeout. Expected: exit 4 (DeadlineExceededError) within ~--timeout."""
    node = hostile(b'{"jsonrpc":"2.0","id":0,"result":"0x7a69"}' + b" " * 4000, trickle=0.5)
    rc, out, secs = run_cli(["--rpc-url", node.url, "--home", str(tmp_path), "--timeout", "3", "status"], timeout=25)
    assert rc == NETWORK_EXIT and secs < 10, (rc, secs, out[-300:])  # observed: still running at 25 s (killed)


def test_sdk_deadline_bounds_a_bundler_that_trickles_its_answer(hostile):
    bundler = hostile(b'{"jsonrpc":"2.0","id":1,"result":"0x7a69"}' + b" " * 4000, trickle=0.5)
    rc, out, secs = run_python(
        "from smartkeys.bundler import BundlerClient\n"
        "from smartkeys.rpc import deadline\n"
        "from smartkeys.errors import NetworkError\n"
        f"b = BundlerClient({bundler.url!r})\n"
        "try:\n"
        "    with deadline(3): b.chain_id()\n"
        "except Exception as e: print('raised', type(e).__name__)\n", timeout=25)
    assert rc == 0 and "raised" in out and secs < 10, (rc, secs, out[-300:])  # observed: killed at 25 s


@pytest.mark.parametrize("body", [b'{"jsonrpc":"2.0","id":0,"result":null}',
                                  b'{"jsonrpc":"2.0","id":0,"result":{"a":1}}'], ids=["null", "object"])
def test_cli_on_a_node_answering_a_wrong_result_type_exits_4(hostile, tmp_path, body):
    """A well-formed JSON-RPC answer whose result has the wrong type (a broken or hostile node):
    observed exit 1 ``TypeError: int() argument must be ... not 'NoneType'``."""
    node = hostile(body)
    rc, out, _ = run_cli(["--rpc-url", node.url, "--home", str(tmp_path), "--timeout", "5", "status"])
    assert rc == NETWORK_EXIT, (rc, out[-300:])


@pytest.mark.parametrize("body", [b'{"jsonrpc":"2.0","id":1,"error":"boom"}',
                                  b'{"jsonrpc":"2.0","id":1,"result":null}'], ids=["error-string", "null"])
def test_bundler_malformed_answer_is_a_typed_network_error(hostile, body):
    """Observed: AttributeError ('str' object has no attribute 'get') and TypeError ('NoneType' object is
    not iterable) out of BundlerClient.supported_entry_points(), which check_compatible() calls before a send."""
    bundler = hostile(body)
    rc, out, _ = run_python(
        "from smartkeys.bundler import BundlerClient\n"
        "from smartkeys.errors import SmartKeysError\n"
        f"b = BundlerClient({bundler.url!r})\n"
        "try:\n"
        "    b.supported_entry_points()\n"
        "    print('no error')\n"
        "except SmartKeysError as e: print('typed', type(e).__name__)\n"
        "except Exception as e: print('UNTYPED', type(e).__name__, e)\n")
    assert "typed" in out and "UNTYPED" not in out, out[-300:]
