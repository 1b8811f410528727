"""The README's "Use it from an MCP client or LangChain" and "Test your agent with pytest" sections run as written.

The integration examples continue the agent developer's session: the "For owners" grant block and the "For
agent developers" blocks run first (as in test_readme_examples.py), then this section's python blocks, in order,
in the same namespace. The MCP client configuration (JSON) must parse and its arguments must be a valid
`smartkeys` command line. The pytest example is written to a file and run by a fresh pytest process that
gets its fixtures from the plugin.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account import Account

README = Path(__file__).resolve().parents[2] / "README.md"
ROOT = README.parent
PLACEHOLDER_KEY = "0x1111111111111111111111111111111111111111"
PLACEHOLDER_TOKEN = "0x2222222222222222222222222222222222222222"
INTEGRATIONS = "Use it from an MCP client or LangChain"
PYTEST_SECTION = "Test your agent with pytest"


def section(title: str) -> str:
    text = README.read_text()
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", text, re.S | re.M)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def blocks(title: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", section(title), re.S | re.M)


def test_sections_have_their_examples():
    assert len(blocks(INTEGRATIONS, "python")) == 2 and len(blocks(INTEGRATIONS, "json")) == 1
    assert len(blocks(PYTEST_SECTION, "python")) == 1


def test_mcp_client_configuration_is_a_valid_command_line():
    from smartkeys.cli import build_parser

    (config,) = blocks(INTEGRATIONS, "json")
    server = json.loads(config)["mcpServers"]["smartkeys"]
    assert server["command"] == "smartkeys"
    args = build_parser().parse_args(server["args"])
    assert args.command == "mcp" and args.via == "user-op"
    assert {"SMARTKEYS_SESSION_KEY", "SMARTKEYS_ACCOUNT"} <= set(server["env"])


def test_mcp_and_langchain_examples_run_after_the_agent_developers_session(chain, token, tmp_path, monkeypatch,
                                                                             capsys):
    pytest.importorskip("mcp")
    pytest.importorskip("langchain_core")
    monkeypatch.chdir(tmp_path)
    agent_key = Account.create()
    (toml,) = blocks("For owners", "toml")
    Path("agent-policy.toml").write_text(toml.replace(PLACEHOLDER_KEY, agent_key.address)
                                         .replace(PLACEHOLDER_TOKEN, token.address))
    monkeypatch.setenv("SMARTKEYS_SESSION_KEY", "0x" + bytes(agent_key.key).hex())
    namespace = {"chain": chain, "w3": chain.w3, "owner_eoa": chain.accounts[1], "bundler": chain.accounts[0],
                 "usdc": token.address}
    exec(compile(blocks("For owners", "python")[0], "README.md[For owners]", "exec"), namespace)
    namespace["account"] = namespace["owner"].address
    chain.set_next_block_timestamp(chain.time() + 2)  # the agent acts after the grant's block
    chain.mine()
    for code in blocks("For agent developers", "python"):
        exec(compile(code, "README.md[For agent developers]", "exec"), namespace)
    capsys.readouterr()
    spent_before = namespace["owner"].session_report(namespace["policy"]).asset(token.address).spent

    mcp_block, langchain_block = blocks(INTEGRATIONS, "python")
    exec(compile(mcp_block, f"README.md[{INTEGRATIONS}]", "exec"), namespace)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == str(["usdc_transfer", "session_budget", "session_status", "session_time_left"])
    # refused, with the contract error's values: 10**12 breaks the policy's `amount = "<= 50 USDC"` rule (argument 1)
    # before any cap is reached
    assert out[1].startswith("True ArgumentRuleViolated {") and "'argIndex': '1'" in out[1]
    assert f"'asset': '{token.address}'" in out[2] and "'remaining_text': '" in out[2]  # the CLI's JSON model
    # the refusal moved nothing
    assert namespace["owner"].session_report(namespace["policy"]).asset(token.address).spent == spent_before

    exec(compile(langchain_block, f"README.md[{INTEGRATIONS}]", "exec"), namespace)
    out = capsys.readouterr().out.splitlines()
    # amounts as in the CLI's JSON: decimal strings in base units with their human twins
    assert out[0].startswith("True {") and f"'{token.address}': {{'amount': '1000000', 'amount_text': '1 USDC'}}" \
        in out[0]
    assert out[1].startswith("ArgumentRuleViolated {") and "'argIndex': '1'" in out[1]  # the amount rule, as above
    assert namespace["owner"].session_report(namespace["policy"]).asset(token.address).spent == spent_before + 10**6


def test_pytest_example_passes_in_a_fresh_pytest_process(tmp_path):
    (code,) = blocks(PYTEST_SECTION, "python")
    assert code.startswith("# test_my_agent.py\n")
    (tmp_path / "test_my_agent.py").write_text(code)
    env = {k: v for k, v in os.environ.items() if k != "SMARTKEYS_TEST_CHAIN"}
    env.update(PYTHONPATH=str(ROOT / "src"), PYTEST_ADDOPTS="")
    # -p: this checkout's plugin even where the package's entry points are not installed (a no-op where they are)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "-p", "smartkeys.pytest_plugin", "test_my_agent.py"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
