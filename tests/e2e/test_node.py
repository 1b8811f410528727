"""``smartkeys.node.run_node``: a local anvil (and optionally Alto) with the canonical deployments, stopped cleanly."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from eth_account import Account
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


# ------------------------------------------------------------------ secrets stay off command lines

_HEX_KEY = re.compile(rb"(?:0x)?[0-9a-fA-F]{64}")


def _descendants(root: int) -> list[int]:
    """Every live process whose parent chain leads to ``root`` (from /proc/<pid>/stat)."""
    parents: dict[int, int] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text()
            except OSError:
                continue
            parents[int(proc.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        children = [c for c, p in parents.items() if p == pid]
        found += children
        frontier += children
    return found


def _all_cmdlines() -> dict[int, bytes]:
    out = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                out[int(proc.name)] = (proc / "cmdline").read_bytes()
            except OSError:
                continue
    return out


def test_smartkeys_node_bundler_passes_alto_keys_by_environment_never_on_a_command_line():
    """`smartkeys node --bundler`, the real command in a subprocess: no process on the machine has the bundler's
    executor or utility key on its command line (readable by every local user); Alto, which answers, got them
    through its environment (/proc/<pid>/environ, readable by its owner only), and they are the funded keys."""
    port, bundler_port = _free_loopback_port(), _free_loopback_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    node = subprocess.Popen([sys.executable, "-m", "smartkeys", "node", "--bundler", "--json", "--port", str(port),
                             "--bundler-port", str(bundler_port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env)
    try:
        line = node.stdout.readline()  # one JSON object once anvil and Alto answer
        assert line, node.stderr.read().decode(errors="replace")[-2000:]
        info = json.loads(line)
        assert info["bundler_url"] == f"http://127.0.0.1:{bundler_port}"
        assert BundlerClient(info["bundler_url"], max_retries=0).supported_entry_points() == [ENTRY_POINT_V08]

        children = _descendants(node.pid)
        alto = [pid for pid in children if b"alto.js" in _all_cmdlines().get(pid, b"")]
        assert alto, f"no Alto among the children of smartkeys node: {children}"
        for pid in [node.pid, *children]:
            cmdline = _all_cmdlines().get(pid, b"")
            assert not _HEX_KEY.search(cmdline), f"a 32-byte hex secret on the command line of pid {pid}: {cmdline!r}"
        environ = Path(f"/proc/{alto[0]}/environ")
        assert os.stat(environ).st_mode & 0o077 == 0, "Alto's environment is readable by other users"
        variables = dict(item.split(b"=", 1) for item in environ.read_bytes().split(b"\0") if b"=" in item)
        executor_key = variables[b"ALTO_EXECUTOR_PRIVATE_KEYS"]
        utility_key = variables[b"ALTO_UTILITY_PRIVATE_KEY"]
        assert _HEX_KEY.fullmatch(executor_key) and _HEX_KEY.fullmatch(utility_key)

        for pid, cmdline in _all_cmdlines().items():
            for key in (executor_key, utility_key):
                assert key.removeprefix(b"0x") not in cmdline, f"a bundler key is on the command line of pid {pid}"

        w3 = Web3(Web3.HTTPProvider(info["rpc_url"]))  # the keys Alto read are the ones smartkeys funded
        for key in (executor_key, utility_key):
            assert w3.eth.get_balance(Account.from_key(key.decode()).address) > 0
    finally:
        node.send_signal(signal.SIGINT)
        try:
            node.wait(timeout=60)
        finally:
            if node.poll() is None:
                node.kill()
            node.stdout.close()
            node.stderr.close()
    assert node.returncode == 0
    assert _processes_with("alto.js", "--port", str(bundler_port)) == [], "Alto outlived smartkeys node"
