"""Answers from the network go through one bounded parser and one bounded read (issue 16, findings 6-8):
size, nesting and wall time are bounded for the whole answer, and an answer of the wrong shape is a typed
network error that says what to do -- never a TypeError, and never "start a node" for a node that answered."""

from __future__ import annotations

import time

import pytest
from web3 import Web3

import smartkeys.rpc as rpc
from smartkeys.errors import MalformedResponseError, NetworkError, NodeUnavailableError
from smartkeys.rpc import ResilientHTTPProvider
from smartkeys.safe_files import JSONBoundsError, loads_bounded
from tests.review16._helpers import HostileRPC, run_cli


@pytest.fixture
def hostile():
    servers: list[HostileRPC] = []

    def make(body: bytes, **kw) -> HostileRPC:
        servers.append(HostileRPC(body, **kw))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


@pytest.mark.parametrize(("raw", "needle"), [
    (b"[" * 100_000, "nested more than 64"),
    (b'{"a":' * 65 + b"1" + b"}" * 65, "nested more than 64"),
    (b'"' + b"x" * 2000 + b'"', "more than"),
    (b'{"a":"\xff"}', "not UTF-8"),
    (b'{"a":NaN}', "NaN"),
    (b'{"a":', "not JSON"),
])
def test_loads_bounded_refuses_before_parsing(raw, needle):
    with pytest.raises(JSONBoundsError, match=needle):
        loads_bounded(raw, max_depth=64, max_bytes=1000 if needle == "more than" else 1 << 20)


def test_loads_bounded_takes_brackets_inside_strings_as_text():
    text = '{"a":"' + "[" * 500 + '","b":[[1]]}'
    assert loads_bounded(text, max_depth=3) == {"a": "[" * 500, "b": [[1]]}
    assert loads_bounded(b'{"a":[[[1]]]}', max_depth=4) == {"a": [[[1]]]}
    with pytest.raises(JSONBoundsError):
        loads_bounded(b'{"a":[[[1]]]}', max_depth=3)


def test_a_node_error_that_is_not_an_error_object_is_malformed_not_unreachable(hostile):
    node = hostile(b'{"jsonrpc":"2.0","id":0,"error":"boom"}')
    w3 = Web3(ResilientHTTPProvider(node.url, timeout=2, retries=0))
    with pytest.raises(MalformedResponseError) as err:
        w3.eth.chain_id  # noqa: B018 - the read is the test
    assert "not a JSON-RPC error object" in str(err.value) and "start a node" not in str(err.value)


def test_cli_on_a_node_error_that_is_not_an_object_exits_4_without_start_a_node(hostile, tmp_path):
    node = hostile(b'{"jsonrpc":"2.0","id":0,"error":{"code":"x"}}')
    rc, out, _ = run_cli(["--rpc-url", node.url, "--home", str(tmp_path), "--timeout", "5", "status"])
    assert rc == 4 and "not a JSON-RPC error object" in out and "start a node" not in out, out[-300:]


@pytest.mark.parametrize("result", [b"null", b'{"a":1}', b'"12"', b'"0xzz"'])
def test_a_quantity_of_the_wrong_type_is_refused_at_once(hostile, result):
    node = hostile(b'{"jsonrpc":"2.0","id":0,"result":' + result + b"}")
    w3 = Web3(ResilientHTTPProvider(node.url, timeout=2, retries=4, backoff=1.0))
    start = time.monotonic()
    with pytest.raises(MalformedResponseError) as err:
        w3.eth.block_number  # noqa: B018
    assert "eth_blockNumber" in str(err.value) and "not a hex quantity" in str(err.value)
    assert "--rpc-url" in err.value.hint
    assert time.monotonic() - start < 0.9  # not retried with backoff: the same answer would come again


def test_an_answer_over_the_size_bound_is_malformed(hostile, monkeypatch):
    monkeypatch.setattr(rpc, "MAX_ANSWER_BYTES", 1000)
    node = hostile(b'{"jsonrpc":"2.0","id":0,"result":"0x1"}' + b" " * 5000)
    w3 = Web3(ResilientHTTPProvider(node.url, timeout=2, retries=0))
    with pytest.raises(MalformedResponseError, match="more than 1000 bytes"):
        w3.eth.chain_id  # noqa: B018


def test_the_request_timeout_bounds_the_whole_answer_without_a_deadline(hostile):
    """No deadline set: a node trickling a byte every 0.2 s still trips the 1 s request timeout."""
    node = hostile(b'{"jsonrpc":"2.0","id":0,"result":"0x7a69"}' + b" " * 200, trickle=0.2)
    w3 = Web3(ResilientHTTPProvider(node.url, timeout=1, retries=0))
    start = time.monotonic()
    with pytest.raises(NodeUnavailableError, match="no complete answer"):
        w3.eth.chain_id  # noqa: B018
    assert time.monotonic() - start < 2.5


def test_a_complete_answer_still_reads(hostile):
    node = hostile(b'{"jsonrpc":"2.0","id":0,"result":"0x7a69"}')
    assert Web3(ResilientHTTPProvider(node.url, timeout=2, retries=0)).eth.chain_id == 31337


def test_the_bundler_trickle_is_bounded_by_its_timeout(hostile):
    from smartkeys.bundler import BundlerClient

    bundler = hostile(b'{"jsonrpc":"2.0","id":1,"result":"0x7a69"}' + b" " * 200, trickle=0.2)
    start = time.monotonic()
    with pytest.raises(NetworkError):
        BundlerClient(bundler.url, timeout=1, max_retries=0).chain_id()
    assert time.monotonic() - start < 2.5


def test_a_remote_signer_answer_is_bounded_in_depth_and_time(hostile):
    from smartkeys.signers import JsonRpcSigner

    deep = hostile(b"[" * 100_000)
    with pytest.raises(NetworkError, match="not JSON"):
        JsonRpcSigner(deep.url)
    slow = hostile(b'{"jsonrpc":"2.0","id":1,"result":[]}' + b" " * 200, trickle=0.2)
    start = time.monotonic()
    with pytest.raises(NodeUnavailableError):
        JsonRpcSigner(slow.url, timeout=1)
    assert time.monotonic() - start < 2.5
