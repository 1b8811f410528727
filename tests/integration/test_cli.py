"""The ``smartkeys`` command as a user runs it."""

from __future__ import annotations

import subprocess
import sys


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "smartkeys.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_demo_tells_the_story_and_exits_zero():
    result = _run("demo", "--no-color")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for expected in (
        "Delegate the owner's EOA",
        "now has code 0xef0100",
        "succeeded: True",
        "refused as expected (TokenSpendCapExceeded): asked for 10 USDC, but only 5 USDC",
        "refused as expected (CallNotAllowed): calling approve(address,uint256) on USDC",
        "refused as expected (SessionNotActive): the session is not active",
    ):
        assert expected in out, f"missing {expected!r} in demo output:\n{out}"
    assert "NOT refused" not in out


def test_no_command_prints_help_and_exits_2():
    result = _run()
    assert result.returncode == 2
    assert "demo" in result.stdout


def test_unknown_command_is_refused_with_usage():
    result = _run("frobnicate")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


# --------------------------------------------------------------------------- a real node, real processes


def test_owner_and_agent_commands_as_processes_against_anvil(tmp_path):
    """delegate -> grant -> send -> status -> revoke, each a separate `smartkeys` process talking to anvil."""
    import json
    import os

    import pytest

    from smartkeys import artifacts
    from smartkeys.keystore import generate_key, save_keystore
    from smartkeys.localchain import LocalChainError, start_local_chain

    try:
        chain = start_local_chain("anvil")
    except LocalChainError as exc:  # pragma: no cover - anvil comes with `npm ci`
        pytest.skip(f"anvil is not available: {exc}")
    try:
        url = getattr(chain, "url", None) or chain._backend.url
        owner_eoa, password = chain.accounts[1], "pw for the anvil test"
        home = tmp_path / "home"
        (home / "keys").mkdir(parents=True)
        save_keystore(owner_eoa, home / "keys" / "owner.json", password, scrypt_n=2**14)
        agent = generate_key()
        save_keystore(agent, home / "keys" / "agent.json", password, scrypt_n=2**14)
        chain.send({"to": agent.address, "value": 10**18}, chain.accounts[7])

        token_address = chain.deploy_create2("test/MockERC20", 1, ["USD Coin", "USDC", 6])
        token = chain.w3.eth.contract(address=token_address, abi=artifacts.load("test/MockERC20")["abi"])
        chain.send({"to": token_address, "data": token.encode_abi("mint", [owner_eoa.address, 10**12])},
                   chain.accounts[8])
        (tmp_path / "policy.toml").write_text(
            f'key = "{agent.address}"\nvalid_for = "1h"\n[tokens.USDC]\naddress = "{token_address}"\ndecimals = 6\n'
            '[[allow]]\ncontract = "USDC"\nfunctions = ["transfer(address,uint256)"]\n'
            '[limits]\nmax_uses = 3\n[limits.tokens.USDC]\ntotal = "10 USDC"\n'
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTKEYS_")}
        env.update(SMARTKEYS_RPC_URL=url, SMARTKEYS_HOME=str(home), SMARTKEYS_KEYSTORE="owner",
                   SMARTKEYS_PASSWORD=password)

        def smartkeys(*args: str, expect: int = 0, **extra: str) -> dict:
            result = subprocess.run([sys.executable, "-m", "smartkeys.cli", "--json", *args], capture_output=True,
                                    text=True, timeout=120, cwd=tmp_path, env={**env, **extra})
            assert result.returncode == expect, result.stderr
            return json.loads(result.stdout)

        assert smartkeys("delegate")["changed"] is True
        session_id = smartkeys("grant", "--policy", "policy.toml")["session_id"]
        recipient = chain.accounts[5].address
        sent = smartkeys("send", recipient, "2.5", "--token", "USDC", "--policy", "policy.toml", "--key", "agent",
                         SMARTKEYS_ACCOUNT=owner_eoa.address)
        assert sent["success"] is True and sent["session_id"] == session_id
        assert token.functions.balanceOf(recipient).call() == 2_500_000
        refused = smartkeys("send", recipient, "8", "--token", token_address, "--key", "agent", expect=3,
                            SMARTKEYS_ACCOUNT=owner_eoa.address)
        assert refused["error"]["type"] == "TokenSpendCapExceeded"

        status = smartkeys("status")
        assert status["chain"]["chain_id"] == chain.chain_id
        assert status["config"]["rpc_url"] == {"value": url, "source": "env SMARTKEYS_RPC_URL"}
        (session,) = status["sessions"]
        assert session["session_id"] == session_id and session["uses"] == 1 and session["live"] is True

        assert smartkeys("revoke", session_id)["revoked"] == [session_id]
        assert smartkeys("status")["sessions"][0]["live"] is False
    finally:
        chain.close()
