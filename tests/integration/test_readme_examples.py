"""The README's "For owners" and "For agent developers" examples run as written against a local chain.

The ```python blocks (and the ```toml policy file) under those two headings (and then "Auditing what the
keys did") are extracted from README.md and
executed in order. The prelude gives them what the README says they have on a local chain: ``chain``,
``w3``, ``owner_eoa`` (accounts[1]), ``bundler`` (accounts[0]) and ``usdc`` (a test token the account holds);
``agent-policy.toml`` is the README's file with the agent's key and ``usdc`` filled in, in a temporary
working directory. The agent section also gets ``account``, ``session_id`` (from the owner's grant block),
``password`` and ``agent-key.json`` (or the key in ``SMARTKEYS_SESSION_KEY``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from eth_account import Account

from smartkeys.keystore import save_keystore

README = Path(__file__).resolve().parents[2] / "README.md"
PLACEHOLDER_KEY = "0x1111111111111111111111111111111111111111"
PLACEHOLDER_TOKEN = "0x2222222222222222222222222222222222222222"
RECIPIENT = "0x000000000000000000000000000000000000bEEF"


def section(title: str) -> str:
    text = README.read_text()
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", text, re.S | re.M)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def blocks(title: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", section(title), re.S | re.M)


@pytest.fixture
def prelude(chain, token, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SMARTKEYS_SESSION_KEY", raising=False)
    agent_key = Account.create()
    (toml,) = blocks("For owners", "toml")
    assert PLACEHOLDER_KEY in toml and PLACEHOLDER_TOKEN in toml
    Path("agent-policy.toml").write_text(
        toml.replace(PLACEHOLDER_KEY, agent_key.address).replace(PLACEHOLDER_TOKEN, token.address)
    )
    namespace = {
        "chain": chain, "w3": chain.w3, "owner_eoa": chain.accounts[1], "bundler": chain.accounts[0],
        "usdc": token.address,
    }
    return namespace, agent_key


def test_readme_sections_have_python_examples():
    assert len(blocks("For owners", "python")) == 3
    assert len(blocks("For agent developers", "python")) == 2
    assert len(blocks("Auditing what the keys did", "python")) == 1


def test_for_owners_examples_run(prelude, token, capsys):
    namespace, agent_key = prelude
    for code in blocks("For owners", "python"):
        exec(compile(code, "README.md[For owners]", "exec"), namespace)
    owner = namespace["owner"]
    # granted, renewed (shorter), rotated to the new key, then the successor revoked by the last block
    assert namespace["policy"].key == namespace["new_agent"].address
    assert [(r.key, r.live) for r in owner.sessions()] == [(agent_key.address, False), (agent_key.address, False),
                                                          (namespace["new_agent"].address, False)]
    assert agent_key.address in capsys.readouterr().out


@pytest.mark.parametrize("key_source", ["keystore", "env"])
def test_for_agent_developers_examples_run(prelude, token, key_source, monkeypatch, capsys):
    namespace, agent_key = prelude
    grant_block = blocks("For owners", "python")[0]
    exec(compile(grant_block, "README.md[For owners]", "exec"), namespace)
    namespace["account"] = namespace["owner"].address
    # The agent acts later than the grant. (anvil can mine several blocks in one wall-clock second with the
    # same timestamp, and the window starts after the grant's block time, exclusive.)
    chain = namespace["chain"]
    chain.set_next_block_timestamp(chain.time() + 2)
    chain.mine()
    if key_source == "env":
        monkeypatch.setenv("SMARTKEYS_SESSION_KEY", "0x" + bytes(agent_key.key).hex())
    else:
        namespace["password"] = "correct horse battery staple"
        save_keystore(agent_key, "agent-key.json", namespace["password"], scrypt_n=2**14)
    balance_before = token.functions.balanceOf(namespace["account"]).call()

    for code in blocks("For agent developers", "python"):
        exec(compile(code, "README.md[For agent developers]", "exec"), namespace)

    assert namespace["agent"].key_address == agent_key.address
    assert token.functions.balanceOf(RECIPIENT).call() == 5_000_000 + 2_500_000
    assert balance_before - token.functions.balanceOf(namespace["account"]).call() == 7_500_000
    out = capsys.readouterr().out
    assert "refused before signing: argument 1 1000000000" in out  # the amount rule, before the cap
    report = namespace["owner"].session_report(namespace["policy"])
    assert report.uses == 2 and report.asset(namespace["usdc"]).spent == 7_500_000

    # "Auditing what the keys did" runs after the agent's work: the audit sees both transfers.
    (audit_block,) = blocks("Auditing what the keys did", "python")
    exec(compile(audit_block, "README.md[Auditing what the keys did]", "exec"), namespace)
    (audited,) = namespace["report"].sessions
    assert audited.key == agent_key.address and audited.uses == 2
    assert audited.asset(namespace["usdc"]).spent == 7_500_000
    assert Path("spend.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [ax.get_label() for ax in namespace["fig"].axes][-1] == "sessions"  # the figure behind the PNG
    assert f"asset:{namespace['usdc']}" in [ax.get_label() for ax in namespace["fig"].axes]
    assert len(Path("audit.csv").read_text().splitlines()) == 1 + 3  # header, the grant, two uses
