"""The hostile-provider proxy itself: each mode refuses or rewrites what it says, and passes the rest."""

from __future__ import annotations

import pytest
from fault_proxy import PROVIDER_LOG_RANGE_ERRORS, ChainIdOverride, EntryPointsOverride, LogRangeLimit, MethodRecorder
from web3 import Web3


def _rpc(w3: Web3, method: str, params: list):
    return w3.provider.make_request(method, params)


@pytest.mark.parametrize("style", sorted(PROVIDER_LOG_RANGE_ERRORS))
def test_log_range_limit_refuses_501_blocks_and_serves_500(anvil, fault_proxy, style):
    anvil.mine(600)
    limit = LogRangeLimit(500, style=style)
    proxy = fault_proxy(anvil.url, limit)
    w3 = Web3(Web3.HTTPProvider(proxy.url))
    head = w3.eth.block_number
    ok = _rpc(w3, "eth_getLogs", [{"fromBlock": hex(head - 499), "toBlock": hex(head)}])
    assert "result" in ok and "error" not in ok
    refused = _rpc(w3, "eth_getLogs", [{"fromBlock": hex(head - 500), "toBlock": "latest"}])
    assert refused["error"]["code"] == PROVIDER_LOG_RANGE_ERRORS[style][0]
    assert "500" in refused["error"]["message"]
    # a filter without fromBlock means "latest": one block, served; "earliest" means block 0
    assert "result" in _rpc(w3, "eth_getLogs", [{}])
    assert "error" in _rpc(w3, "eth_getLogs", [{"fromBlock": "earliest"}])
    assert (limit.refused, limit.served, limit.widest) == (2, 2, 500)


def test_chain_id_and_entry_points_overrides_answer_for_another_chain(anvil, fault_proxy):
    recorder = MethodRecorder()
    proxy = fault_proxy(anvil.url, recorder, ChainIdOverride(1), EntryPointsOverride(["0x" + "11" * 20]))
    w3 = Web3(Web3.HTTPProvider(proxy.url))
    assert w3.eth.chain_id == 1 != anvil.chain_id
    assert _rpc(w3, "eth_supportedEntryPoints", [])["result"] == ["0x" + "11" * 20]
    assert w3.eth.block_number == anvil.w3.eth.block_number  # everything else passes through
    assert recorder.methods == ["eth_chainId", "eth_supportedEntryPoints", "eth_blockNumber"]
    assert proxy.requests == 3
