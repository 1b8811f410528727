"""Issue 16, kind 2: ``smartkeys.outbox.settle`` (what ``agent.settle()`` and ``smartkeys pending --settle``
run) re-sends a pending transaction's signed payload; ``resend`` catches ``(SmartKeysError, ValueError)``
as "web3 RPC errors are ValueErrors" -- not so in web3 7, whose ``Web3RPCError`` is not a ValueError. A
node that refuses the re-send (here: the sender has no ETH any more) makes ``settle`` raise web3's untyped
``Web3RPCError``; the CLI prints ``error: {'code': -32602, 'message': 'Failed to decode transaction'}``
(exit 4, no fix) for a malformed recorded payload.

Reproduce: an outbox entry for a signed transaction from an unfunded key (nonce 0, never sent);
``settle(connect(anvil_url), outbox, intent)``.
"""

from __future__ import annotations

import pytest
from eth_account import Account

from smartkeys.errors import SmartKeysError
from smartkeys.outbox import Intent, Outbox, settle
from smartkeys.rpc import connect


def test_settle_of_a_resend_the_node_refuses_is_typed(anvil, tmp_path):
    chain = anvil
    key = Account.create()  # holds no ETH: the node refuses its transaction
    signed = key.sign_transaction({"to": key.address, "value": 0, "gas": 21_000, "maxFeePerGas": 10**10,
                                   "maxPriorityFeePerGas": 10**9, "nonce": 0, "chainId": chain.chain_id, "type": 2})
    outbox = Outbox(tmp_path / "outbox.jsonl")
    intent = outbox.record(Intent(
        intent_id="auto:review16", kind="transaction", hash=bytes(signed.hash), chain_id=chain.chain_id,
        sender=key.address, nonce=0, signer=key.address, account=key.address, via="direct", from_block=0,
        created=0.0, payload={"raw": "0x" + bytes(signed.raw_transaction).hex()}))
    try:
        settled = settle(connect(chain.url, timeout=5), outbox, intent, wait=0.5)
    except SmartKeysError:
        return
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"untyped {type(exc).__name__}: {str(exc)[:120]}")  # observed: Web3RPCError
    assert settled.status == "pending" and "refused" in settled.note
