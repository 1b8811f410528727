"""Issue 16, kind 1: a landed transaction reported as "dropped" (NonceConflictError, documented as
retryable) because ``outbox.lookup`` concludes *dropped* from a single negative read: the sender's mined
nonce is past the intent's, and ``eth_getTransactionReceipt`` answered null once. Behind load-balanced RPC
providers a receipt lags the nonce count by a block on another backend; here the proxy models it with one
null receipt. The retry the error invites pays twice.

Reproduce: fault proxy in front of anvil with ``Drop(("eth_sendRawTransaction",), times=1)`` (the node mines
it, the answer is lost; the provider's retry gets "nonce too low") and one null answer to
``eth_getTransactionReceipt``; agent.transfer(via="direct") -> NonceConflictError; retry -> paid twice.
"""

from __future__ import annotations

from eth_account import Account
from fault_proxy import Drop, _Fault, rpc_result

from smartkeys.account import Owner, SessionAgent
from smartkeys.errors import DuplicateIntentError, NonceConflictError, SmartKeysError, register_contract_errors
from smartkeys.outbox import Outbox
from smartkeys.policy_codec import Permission, SessionPolicy, TokenCap
from smartkeys.rpc import connect


class NullReceipt(_Fault):
    """A lagging backend: ``eth_getTransactionReceipt`` answers null (no receipt yet)."""

    def __call__(self, request, ctx):
        if self.fires(request):
            return rpc_result(request, None)
        return None


def test_a_receipt_that_lags_the_nonce_does_not_turn_a_landed_payment_into_a_retryable_error(anvil, fault_proxy,
                                                                                            tmp_path):
    from smartkeys import artifacts

    chain = anvil
    token_address = chain.deploy_create2("test/MockERC20", 16_017, ["USD Coin", "USDC", 6])
    token = chain.w3.eth.contract(address=token_address, abi=artifacts.load("test/MockERC20")["abi"])
    register_contract_errors(token.abi)
    eoa, key = Account.create(), Account.create()
    chain.send({"to": eoa.address, "value": 10**18}, chain.accounts[2])
    chain.send({"to": key.address, "value": 10**18}, chain.accounts[2])
    owner = Owner(chain.w3, eoa)
    owner.delegate()
    chain.send({"to": token.address, "data": token.encode_abi("mint", [owner.address, 10**12])}, chain.accounts[2])
    policy = SessionPolicy(key=key.address, valid_after=0, valid_until=chain.time() + 86_400, gas_budget=10**17,
                           permissions=(Permission(token.address, "transfer(address,uint256)"),),
                           token_caps=(TokenCap(token.address, 10**12),))
    owner.grant(policy)

    proxy = fault_proxy(chain.url, Drop(("eth_sendRawTransaction",), times=1),
                        NullReceipt(("eth_getTransactionReceipt",), times=1))
    agent = SessionAgent(connect(proxy.url, timeout=5), owner.address, key, policy,
                         outbox=Outbox(tmp_path / "outbox.jsonl"))
    to = Account.create().address
    reports = []
    for _ in range(3):  # retry what the SDK calls retryable
        try:
            agent.transfer(token.address, to, 9_000, via="direct")
            reports.append("ok")
            break
        except NonceConflictError as exc:
            reports.append(f"NonceConflictError: {str(exc)[:100]}")
        except DuplicateIntentError:
            reports.append("DuplicateIntentError")
            break
        except SmartKeysError as exc:
            reports.append(type(exc).__name__)
            break
    paid = token.functions.balanceOf(to).call()
    assert paid == 9_000, f"paid {paid // 9_000} times; reports: {reports}"
