"""Rough edges of the command line (issue 13, kind 4): a closed pipe, a mistyped command, short subcommand help,
`node` preflight (port taken, anvil missing, a line while starting), what re-delegating did to sessions, and an
expiry flag relative to the key's lifetime."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.test_human_refusals import _native_policy

SRC = str(Path(__file__).resolve().parents[2] / "src")


def test_a_mistyped_command_suggests_the_closest_one(cli):
    result = cli("stauts")
    assert result.code == 2 and "did you mean 'status'?" in result.err
    doc = cli("--json", "grnat").json
    assert doc["error"]["exit_code"] == 2 and "did you mean 'grant'?" in doc["error"]["message"]
    assert "did you mean" not in cli("zzzzzz").err  # nothing close: no guess


def test_subcommand_help_lists_its_own_options_not_the_global_ones(cli):
    result = cli("status", "--help")
    assert result.code == 0
    assert "--from-block" in result.out and "smartkeys --help" in result.out
    assert "read the keystore password from FILE" not in result.out  # the global options' help lines
    assert "JSON-RPC endpoint" not in result.out
    assert len(result.out.splitlines()) < 20
    top = cli("--help").out
    assert "read the keystore password from FILE" in top  # listed once, at the top
    assert cli("status", "--json").json["command"] == "status"  # still accepted after the command


def test_closing_stdout_early_gives_no_traceback(tmp_path):
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": SRC, "HOME": str(tmp_path),
           "SMARTKEYS_HOME": str(tmp_path / "home")}
    (tmp_path / "home" / "keys").mkdir(parents=True)
    for i in range(40):  # enough output to outgrow nothing: the reader is gone before anything is written
        (tmp_path / "home" / "keys" / f"k{i}.json").write_text(json.dumps({"address": "00" * 20, "version": 3}))
    proc = subprocess.Popen([sys.executable, "-m", "smartkeys.cli", "--json", "keys", "list"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    proc.stdout.close()  # `| head -0`: the reader leaves first
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 0, err
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


@pytest.fixture
def fake_tools(monkeypatch):
    from smartkeys import localchain, node

    monkeypatch.setattr(localchain, "find_anvil", lambda *a: "/bin/true")
    monkeypatch.setattr(node, "find_alto", lambda *a: "/bin/true")


def test_node_on_a_taken_port_exits_2_saying_so_and_starts_nothing(cli, fake_tools, monkeypatch):
    from smartkeys import node

    started = []
    monkeypatch.setattr(node, "run_node", lambda **kw: started.append(kw) or 0)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = cli("--json", "node", "--port", str(port))
    assert result.code == 2, result.err
    assert f"port {port} on 127.0.0.1 is already in use" in result.json["error"]["message"]
    assert "--port" in result.json["error"]["message"] and started == []


def test_node_before_npm_ci_exits_2_with_json(cli, monkeypatch):
    from smartkeys import localchain

    def missing(*a):
        raise localchain.LocalChainError("anvil not found; fix: run `npm ci` in the smartkeys checkout")

    monkeypatch.setattr(localchain, "find_anvil", missing)
    result = cli("--json", "node")
    assert result.code == 2
    assert result.json["ok"] is False and "npm ci" in result.json["error"]["message"]


def test_node_says_it_is_starting_even_when_piped(cli, fake_tools, monkeypatch):
    from smartkeys import node

    monkeypatch.setattr(node, "run_node", lambda **kw: 0)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = cli("node", "--port", str(port))
    assert result.code == 0 and f"starting anvil on 127.0.0.1:{port}" in result.err


def test_redelegating_says_what_happened_to_the_sessions(cli, granted):
    assert cli("undelegate", "--yes", "--keep-sessions").code == 0
    kept = cli("--json", "delegate", "--keep-sessions")
    assert kept.code == 0, kept.err
    assert kept.json["sessions_live"] == [granted] and kept.json["sessions_revoked"] is False
    assert cli("undelegate", "--yes", "--keep-sessions").code == 0
    again = cli("delegate")
    assert again.code == 0, again.err
    assert "was revoked" in again.out or "none usable" in again.out
    assert cli("--json", "status").json["sessions"][0]["status"] == "revoked"


def test_expiry_soon_is_relative_to_the_key_lifetime(cli, chain, delegated, tmp_path, agent, fund):
    fund(delegated, 10**18)
    assert cli("grant", "--policy", str(_native_policy(tmp_path, agent, valid_for="1h"))).code == 0

    def flags():
        doc = cli("--json", "audit").json
        return [f for s in doc["sessions"] for f in s["flags"] if f["code"] == "expiry_soon"]

    assert flags() == []  # a one-hour key is not "expiring soon" from its first second
    chain.set_next_block_timestamp(chain.time() + 50 * 60)
    chain.mine(1)
    (flag,) = flags()  # in its last 20 % (12 minutes)
    assert "min" in flag["message"] and not re.search(r"\b\d{3,} s\b", flag["message"])  # not "598 s"
