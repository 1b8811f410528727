"""A bundler that serves another chain, or another EntryPoint, is refused before anything is signed for it.

The client is built as the README shows (``BundlerClient(url)``, no ``expected_chain_id``): the SDK checks the
bundler's ``eth_chainId`` and ``eth_supportedEntryPoints`` against the node and EntryPoint v0.8 on every path
(owner operations, session operations). The bundler here is a scripted transport that records every request.
"""

from __future__ import annotations

import pytest
from eth_account import Account

from smartkeys.account import Call, Owner
from smartkeys.bundler import BundlerClient, BundlerEntryPointError
from smartkeys.deployments import ENTRY_POINT_V08
from smartkeys.errors import ChainMismatchError
from smartkeys.policy_codec import Permission, PermissionMode

BEEF = "0x000000000000000000000000000000000000bEEF"
V07 = "0x0000000071727De22E5E9d8BAf0edAc6f37da032"


class ScriptedBundler:
    """Answers eth_chainId / eth_supportedEntryPoints as told; any other method is recorded and refused."""

    def __init__(self, chain_id: int, entry_points: list[str]) -> None:
        self.chain_id = chain_id
        self.entry_points = entry_points
        self.methods: list[str] = []

    def __call__(self, payload):
        self.methods.append(payload["method"])
        result = {"eth_chainId": hex(self.chain_id), "eth_supportedEntryPoints": self.entry_points}.get(payload["method"])
        if result is None:
            return {"jsonrpc": "2.0", "id": payload["id"], "error": {"code": -32601, "message": "not in this test"}}
        return {"jsonrpc": "2.0", "id": payload["id"], "result": result}


def _agent(chain, grant, fund):
    key = Account.create()
    fund(key.address)
    return grant(key, permissions=(Permission(BEEF, mode=PermissionMode.EMPTY_CALLDATA),),
                 native_per_call=10**15, native_total=10**16, max_uses=3)


@pytest.mark.parametrize("who", ["session", "owner"])
def test_bundler_on_chain_1_is_refused_before_any_estimate_or_signature(chain, grant, fund, owner, who, monkeypatch):
    bundler = ScriptedBundler(1, [ENTRY_POINT_V08])
    client = BundlerClient("http://bundler.invalid", transport=bundler, max_retries=0)
    signed = []
    import smartkeys.account as account_module

    monkeypatch.setattr(account_module, "sign_user_op", lambda *a, **k: signed.append(a) or a[0])
    with pytest.raises(ChainMismatchError) as info:
        if who == "session":
            _agent(chain, grant, fund).call(BEEF, b"", 1, bundler=client)
        else:
            owner.send_user_op([Call(BEEF, 1, b"")], bundler=client)
    assert (info.value.expected, info.value.actual) == (chain.chain_id, 1)
    assert "bundler.invalid" in str(info.value)
    assert bundler.methods == ["eth_chainId"] and signed == []


@pytest.mark.parametrize("who", ["session", "owner"])
def test_bundler_without_entry_point_v08_is_refused_before_any_estimate(chain, grant, fund, owner, who):
    bundler = ScriptedBundler(chain.chain_id, [V07])
    client = BundlerClient("http://bundler.invalid", transport=bundler, max_retries=0)
    with pytest.raises(BundlerEntryPointError) as info:
        if who == "session":
            _agent(chain, grant, fund).call(BEEF, b"", 1, bundler=client)
        else:
            owner.send_user_op([Call(BEEF, 1, b"")], bundler=client)
    assert info.value.entry_point == ENTRY_POINT_V08 and info.value.supported == [V07]
    assert bundler.methods == ["eth_chainId", "eth_supportedEntryPoints"]


def test_a_fresh_undelegated_owner_is_checked_too(chain):
    owner = Owner(chain.w3, Account.create())
    bundler = ScriptedBundler(1, [ENTRY_POINT_V08])
    with pytest.raises(ChainMismatchError):
        owner.send_user_op([Call(BEEF, 0, b"")], bundler=BundlerClient("http://b.invalid", transport=bundler))
    assert bundler.methods == ["eth_chainId"]


def test_the_check_passes_once_and_is_remembered(chain):
    bundler = ScriptedBundler(chain.chain_id, [ENTRY_POINT_V08])
    client = BundlerClient("http://bundler.invalid", transport=bundler)
    client.check_compatible(chain.chain_id)
    client.check_compatible(chain.chain_id)
    assert bundler.methods == ["eth_chainId", "eth_supportedEntryPoints"]
    with pytest.raises(ChainMismatchError):  # another chain is checked again, and refused
        client.check_compatible(chain.chain_id + 1)


def test_a_client_built_for_one_chain_is_refused_on_a_node_of_another(chain):
    client = BundlerClient("http://bundler.invalid", transport=ScriptedBundler(5, [ENTRY_POINT_V08]),
                           expected_chain_id=5)
    with pytest.raises(ChainMismatchError) as info:
        client.check_compatible(chain.chain_id)
    assert (info.value.expected, info.value.actual) == (5, chain.chain_id)
