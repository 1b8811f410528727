"""``smartkeys mcp`` as an MCP client launches it: a subprocess speaking MCP over stdio, driven by the ``mcp``
package's own stdio client, against an anvil node (an embedded chain cannot be shared with a subprocess)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

pytest.importorskip("mcp", reason="the mcp extra: pip install 'smartkeys[mcp]'")

from eth_account import Account  # noqa: E402
from mcp import Client, StdioServerParameters  # noqa: E402

from smartkeys import artifacts  # noqa: E402
from smartkeys.account import Owner  # noqa: E402
from smartkeys.localchain import LocalChainError, find_anvil, start_local_chain  # noqa: E402
from smartkeys.policy_codec import Permission, SessionPolicy, TokenCap  # noqa: E402

SRC = Path(__file__).resolve().parents[2] / "src"
USDC = 10**6
RECIPIENT = "0x000000000000000000000000000000000000bEEF"


@pytest.fixture(scope="module")
def anvil_chain():
    try:
        find_anvil()
    except LocalChainError as exc:  # pragma: no cover - anvil comes with `npm ci`
        pytest.skip(f"needs anvil: {exc}")
    chain = start_local_chain("anvil")
    yield chain
    chain.close()


def test_smartkeys_mcp_serves_a_session_over_stdio(anvil_chain, tmp_path):
    chain = anvil_chain
    w3 = chain.w3
    owner = Owner(w3, chain.accounts[1])
    if owner.delegation() is None:
        owner.delegate()
    token_address = chain.deploy_create2("test/MockERC20", 41, ["USD Coin", "USDC", 6])
    token = w3.eth.contract(address=token_address, abi=artifacts.load("test/MockERC20")["abi"])
    chain.send({"to": token_address, "data": token.encode_abi("mint", [owner.address, 100 * USDC])}, chain.accounts[8])
    key = Account.create()
    chain.send({"to": key.address, "value": 10**18}, chain.accounts[7])  # self-bundled ops: the key submits them
    policy = SessionPolicy(key=key.address, valid_after=0, valid_until=chain.time() + 3600, max_uses=5,
                           gas_budget=10**17, permissions=(Permission(token_address, "transfer(address,uint256)"),),
                           token_caps=(TokenCap(token_address, 10 * USDC),))
    session_id = owner.grant(policy)

    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "smartkeys", "mcp", "--rpc-url", w3.provider.endpoint_uri, "--account", owner.address,
              "--session", "0x" + session_id.hex(), "--via", "user-op"],
        env={"PYTHONPATH": str(SRC), "HOME": str(tmp_path), "SMARTKEYS_SESSION_KEY": key.key.hex()},
        cwd=str(tmp_path),
    )

    async def session():
        async with Client(params, mode="legacy") as client:
            listed = await client.list_tools()
            ok = await client.call_tool("usdc_transfer", {"to": RECIPIENT, "amount": 4 * USDC})
            refused = await client.call_tool("usdc_transfer", {"to": RECIPIENT, "amount": 7 * USDC})
            budget = await client.call_tool("session_budget", {})
            return [t.name for t in listed.tools], ok, refused, budget

    names, ok, refused, budget = asyncio.run(asyncio.wait_for(session(), 120))
    assert names == ["usdc_transfer", "session_budget", "session_status", "session_time_left"]
    assert ok.is_error is False and ok.structured_content["success"] is True, ok.content
    assert refused.is_error is True and refused.structured_content["error"] == "TokenSpendCapExceeded"
    assert refused.structured_content["fields"]["requested"] == str(7 * USDC)
    usdc = next(a for a in budget.structured_content["assets"] if a["asset"] == token_address)
    assert (usdc["spent"], usdc["remaining"], usdc["symbol"]) == (str(4 * USDC), str(6 * USDC), "USDC")
    assert (usdc["spent_text"], usdc["remaining_text"]) == ("4 USDC", "6 USDC")
    assert token.functions.balanceOf(RECIPIENT).call() == 4 * USDC
