"""``smartkeys.node.run_node``: a local anvil (and optionally Alto) with the canonical deployments, stopped cleanly."""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path

from web3 import Web3

from smartkeys.bundler import BundlerClient
from smartkeys.deployments import CREATE2_DEPLOYER, ENTRY_POINT_V08, SIMPLE7702_ADDRESS, account_address
from smartkeys.localchain import TEST_MNEMONIC, _free_loopback_port, _test_private_keys
from smartkeys.node import run_node


def _processes_with(*needles: str) -> list[int]:
    """PIDs whose command line contains every needle."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if all(n in cmdline for n in needles):
            pids.append(int(proc.name))
    return pids


class _Output(io.StringIO):
    """A StringIO that threads can wait on."""

    def wait_for(self, predicate, timeout: float = 90.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.getvalue()
            if predicate(text):
                return text
            time.sleep(0.05)
        raise AssertionError(f"run_node printed nothing useful within {timeout} s: {self.getvalue()!r}")


def _start(**kwargs):
    out, stop = _Output(), threading.Event()
    result: dict[str, int] = {}
    thread = threading.Thread(
        target=lambda: result.setdefault("code", run_node(out=out, stop_event=stop, **kwargs)), daemon=True
    )
    thread.start()
    return out, stop, thread, result


def test_run_node_serves_the_canonical_deployments_and_stops_without_leftovers():
    port = _free_loopback_port()
    out, stop, thread, result = _start(port=port, json_output=True)
    try:
        info = json.loads(out.wait_for(lambda t: t.endswith("\n")))
        assert info["rpc_url"] == f"http://127.0.0.1:{port}"
        assert info["chain_id"] == 31337 and info["bundler_url"] is None
        assert info["contracts"]["EntryPoint v0.8"] == ENTRY_POINT_V08
        assert info["contracts"]["SmartKeysAccount"] == account_address()
        keys = _test_private_keys(len(info["accounts"]), TEST_MNEMONIC)
        assert [a["private_key"] for a in info["accounts"]] == ["0x" + k.hex() for k in keys]
        assert "public" in info["accounts_note"]

        w3 = Web3(Web3.HTTPProvider(info["rpc_url"]))
        assert w3.eth.chain_id == 31337
        for address in (ENTRY_POINT_V08, account_address(), SIMPLE7702_ADDRESS, CREATE2_DEPLOYER):
            assert len(w3.eth.get_code(address)) > 0, address
        assert w3.eth.get_balance(info["accounts"][0]["address"]) > 0
        assert _processes_with("anvil", "--port", str(port)), "no anvil process for the node"
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert result["code"] == 0
    assert _processes_with("anvil", "--port", str(port)) == [], "anvil outlived run_node"


def test_run_node_with_bundler_prints_where_everything_is_and_stops_both_processes():
    port, bundler_port = _free_loopback_port(), _free_loopback_port()
    out, stop, thread, result = _start(port=port, bundler=True, bundler_port=bundler_port)
    try:
        text = out.wait_for(lambda t: "Press Ctrl-C" in t)
        assert f"RPC URL      http://127.0.0.1:{port}" in text
        assert f"bundler URL  http://127.0.0.1:{bundler_port}" in text
        assert "chain id     31337" in text
        assert ENTRY_POINT_V08 in text and account_address() in text
        assert "PUBLIC keys" in text
        client = BundlerClient(f"http://127.0.0.1:{bundler_port}", max_retries=0)
        assert client.supported_entry_points() == [ENTRY_POINT_V08]
        assert _processes_with("alto.js", "--port", str(bundler_port)), "no Alto process for the node"
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not thread.is_alive() and result["code"] == 0
    assert "stopping" in out.getvalue()
    assert _processes_with("anvil", "--port", str(port)) == [], "anvil outlived run_node"
    assert _processes_with("alto.js", "--port", str(bundler_port)) == [], "Alto outlived run_node"


def test_run_node_reports_a_busy_port_and_returns_1(capsys):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        code = run_node(port=port, out=io.StringIO(), stop_event=threading.Event())
    assert code == 1
    assert "anvil" in capsys.readouterr().err
    assert _processes_with("anvil", "--port", str(port)) == []
