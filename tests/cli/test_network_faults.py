"""The command line against a misbehaving node: typed errors, exit 4, the right fix, and an overall deadline."""

from __future__ import annotations

import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from smartkeys.cli import main


def serve(answer):
    """A node on 127.0.0.1 whose every answer is ``answer(handler)``."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            try:
                answer(self)
            except OSError:
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def reply(handler, status, body, headers=()):
    handler.send_response(status)
    for k, v in headers:
        handler.send_header(k, v)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


@pytest.fixture
def node():
    servers = []

    def make(answer):
        servers.append(serve(answer))
        return f"http://127.0.0.1:{servers[-1].server_address[1]}"

    yield make
    for s in servers:
        s.shutdown()
        s.server_close()


def run(url, *argv, tmp_path):
    out, err = io.StringIO(), io.StringIO()
    env = {"SMARTKEYS_HOME": str(tmp_path), "SMARTKEYS_RPC_URL": url, "SMARTKEYS_ACCOUNT": "0x" + "11" * 20}
    started = time.monotonic()
    code = main(["--json", *argv], stdout=out, stderr=err, env=env, stdin=io.StringIO())
    return code, json.loads(out.getvalue()), err.getvalue(), time.monotonic() - started


def test_429_is_rate_limited_not_start_a_node(node, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = node(lambda h: reply(h, 429, b"slow down", [("Retry-After", "0.1")]))
    code, doc, err, _ = run(url, "status", tmp_path=tmp_path)
    assert code == 4 and doc["error"]["type"] == "RateLimitedError"
    assert "429" in err and "start a node" not in err and "fix:" in err


def test_malformed_json_is_typed(node, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = node(lambda h: reply(h, 200, b'{"jsonrpc":"2.0","id":1,"result":0x<html>'))
    code, doc, err, _ = run(url, "status", tmp_path=tmp_path)
    assert code == 4 and doc["error"]["type"] == "MalformedResponseError" and "broken answer" in err


def test_a_hanging_node_is_cut_by_the_overall_deadline(node, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = node(lambda h: time.sleep(5))
    code, doc, err, took = run(url, "--timeout", "1.5", "status", tmp_path=tmp_path)
    assert code == 4 and took < 4, (took, err)
    assert doc["error"]["type"] in ("DeadlineExceededError", "NodeUnavailableError")


def test_a_contract_read_with_no_data_is_a_chain_state_error_with_exit_4():
    """web3's BadFunctionCallOutput (no code at the address: a node restarted with its state lost)."""
    from web3.exceptions import BadFunctionCallOutput

    from smartkeys.cli import _typed_network_fault
    from smartkeys.cli._context import exit_code_for
    from smartkeys.errors import ChainStateError

    typed = _typed_network_fault(BadFunctionCallOutput("Could not decode contract function call to sessionEpoch"))
    assert isinstance(typed, ChainStateError) and exit_code_for(typed) == 4
    assert "restarted" in str(typed) and "fix:" in str(typed)
