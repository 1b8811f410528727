"""``smartkeys.rpc``: every node fault typed, safe retries only, Retry-After honoured, an overall deadline.

A real ``http.server`` on 127.0.0.1 plays a node that misbehaves in one way per test (nothing is mocked
inside the provider); the bundler's urllib transport meets the same faults.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from smartkeys.bundler import BundlerClient, BundlerConnectionError
from smartkeys.errors import (
    DeadlineExceededError,
    MalformedResponseError,
    NetworkError,
    NodeUnavailableError,
    RateLimitedError,
)
from smartkeys.rpc import ResilientHTTPProvider, connect, deadline, retry_after_seconds


class Node:
    """A scripted HTTP JSON-RPC server: ``script`` is a list of (status, body bytes, headers, cut) answers,
    the last one repeated; ``times`` records when each request arrived; ``methods`` what was asked."""

    def __init__(self, *script):
        self.script = list(script)
        self.times: list[float] = []
        self.methods: list[str] = []
        node = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                node.times.append(time.monotonic())
                node.methods.append(request["method"])
                status, body, headers, cut = node.script.pop(0) if len(node.script) > 1 else node.script[0]
                if callable(body):
                    body = body(request)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[:cut] if cut is not None else body)
                if cut is not None:
                    self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def ok(result):
    return (200, lambda r: json.dumps({"jsonrpc": "2.0", "id": r["id"], "result": result}).encode(), {}, None)


@pytest.fixture
def node():
    made = []

    def make(*script):
        n = Node(*script)
        made.append(n)
        return n

    yield make
    for n in made:
        n.close()


def test_429_honours_retry_after_then_succeeds(node):
    n = node((429, b"slow down", {"Retry-After": "0.6"}, None), ok("0x7a69"))
    w3 = connect(n.url, timeout=5)
    assert w3.eth.chain_id == 31337
    assert len(n.times) == 2
    assert n.times[1] - n.times[0] >= 0.55, "the retry came before Retry-After said"


def test_429_for_good_is_a_typed_rate_limit_not_start_a_node(node):
    n = node((429, b"", {"Retry-After": "0.05"}, None))
    w3 = connect(n.url, timeout=5, retries=2)
    with pytest.raises(RateLimitedError) as err:
        _ = w3.eth.block_number
    assert err.value.retry_after == pytest.approx(0.05)
    assert "429" in str(err.value) and "start a node" not in str(err.value) and "fix:" in str(err.value)
    assert len(n.times) == 3


@pytest.mark.parametrize("body,cut", [(b'{"jsonrpc":"2.0","id":1,"result":0x<html>', None),
                                      (b"<html>502 bad gateway</html>", None),
                                      (b'{"jsonrpc":"2.0","id":1,"result":"0x7a69"}', 10)])
def test_malformed_or_cut_answers_are_typed(node, body, cut):
    n = node((200, body, {"Content-Type": "application/json"}, cut))
    w3 = connect(n.url, timeout=2, retries=1)
    with pytest.raises(MalformedResponseError) as err:
        _ = w3.eth.block_number
    assert isinstance(err.value, NetworkError) and err.value.method == "eth_blockNumber"
    assert len(n.times) == 2  # a read: retried once


def test_a_write_other_than_a_signed_transaction_is_never_retried(node):
    n = node((200, b"garbage", {}, None))
    provider = ResilientHTTPProvider(n.url, timeout=2, retries=3)
    with pytest.raises(MalformedResponseError):
        provider.make_request("eth_sendTransaction", [{}])
    assert n.methods == ["eth_sendTransaction"]


def test_connection_refused_is_typed_with_the_fix():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    w3 = connect(f"http://127.0.0.1:{port}", timeout=1, retries=1)
    with pytest.raises(NodeUnavailableError) as err:
        _ = w3.eth.chain_id
    assert "start a node" in str(err.value)


def test_deadline_bounds_a_hanging_node(node):
    n = node(ok("0x1"))
    original = n.server.RequestHandlerClass.do_POST

    def hang(self):
        time.sleep(3)
        try:
            original(self)
        except OSError:  # the client gave up long ago: that is the point
            pass

    n.server.RequestHandlerClass.do_POST = hang
    w3 = connect(n.url, timeout=30, retries=5)
    started = time.monotonic()
    with deadline(0.8), pytest.raises(NetworkError) as err:
        _ = w3.eth.block_number
    assert time.monotonic() - started < 2.5
    assert isinstance(err.value, (DeadlineExceededError, NodeUnavailableError))


def test_retry_after_as_an_http_date():
    from email.utils import formatdate

    assert 8 <= retry_after_seconds(formatdate(time.time() + 10, usegmt=True)) <= 10
    assert retry_after_seconds("soon") is None and retry_after_seconds("2") == 2.0


@pytest.mark.parametrize("script", [
    [(200, b'{"jsonrpc":"2.0","id":1,"res', {}, None)],                      # malformed JSON
    [(200, b'{"jsonrpc":"2.0","id":1,"result":"0x7a69"}', {}, 12)],          # cut mid-answer
    [(200, b'["not", "an", "object"]', {}, None)],                             # not JSON-RPC
])
def test_bundler_transport_faults_are_typed_and_retried(node, script):
    n = node(*script)
    client = BundlerClient(n.url, timeout=2, max_retries=2, backoff=0.01)
    with pytest.raises(BundlerConnectionError) as err:
        client.chain_id()
    assert isinstance(err.value, NetworkError) and "fix:" in str(err.value)
    assert len(n.times) == 3


def test_bundler_honours_the_overall_deadline(node):
    n = node((503, b"", {"Retry-After": "5"}, None))
    client = BundlerClient(n.url, timeout=2, max_retries=10, max_backoff=10)
    started = time.monotonic()
    with deadline(1.0), pytest.raises(BundlerConnectionError):
        client.chain_id()
    assert time.monotonic() - started < 1.5


def test_a_resent_transaction_the_node_already_holds_answers_with_its_hash(node):
    """The first broadcast reached the node but its answer was cut; the retry hears "already known": that is
    the same transaction, so the provider answers with its hash instead of an error."""
    from eth_utils import keccak

    raw = bytes.fromhex("02f8") + bytes(100)
    known = (200, lambda r: json.dumps({"jsonrpc": "2.0", "id": r["id"],
                                        "error": {"code": -32000, "message": "already known"}}).encode(), {}, None)
    n = node((200, b'{"jsonrpc":"2.0","id":1,"result":"0x' + b"ab" * 32 + b'"}', {}, 20), known)
    w3 = connect(n.url, timeout=2, retries=2)
    assert bytes(w3.eth.send_raw_transaction(raw)) == keccak(raw)
    assert n.methods == ["eth_sendRawTransaction", "eth_sendRawTransaction"]
    first_time = node(known)  # "already known" on a FIRST attempt is not ours to explain away
    with pytest.raises(Exception, match="already known"):
        connect(first_time.url, timeout=2).eth.send_raw_transaction(raw)


def test_a_retry_after_beyond_the_limit_is_reported_at_once(node):
    n = node((429, b"", {"Retry-After": "3600"}, None))
    w3 = connect(n.url, timeout=2)
    started = time.monotonic()
    with pytest.raises(RateLimitedError) as err:
        _ = w3.eth.block_number
    assert time.monotonic() - started < 1 and err.value.retry_after == 3600 and len(n.times) == 1
