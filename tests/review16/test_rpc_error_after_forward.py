"""Issue 16, kind 1: "one landed operation was reported as refused". The SDK treats any JSON-RPC error object
answering ``eth_sendRawTransaction`` (other than "nonce too low" / "already known") as "the node refused it:
it never spread" (``_is_node_refusal`` -> ``guard.not_sent``: recorded *dropped* and acknowledged). But a
load balancer or gateway in front of the node answers with an error object after the node took the
transaction (``-32603 upstream request timeout``, ``-32000 request timed out``...). Then the careless
retry -- now allowed, since the entry was acknowledged as dropped -- pays twice.

Reproduce: fault proxy in front of anvil; mode ``ErrorAfterForward`` forwards the first
``eth_sendRawTransaction`` and answers ``{"error": {"code": -32603, "message": "upstream request timeout"}}``;
agent.transfer(via="direct") raises web3's untyped Web3RPCError; the same transfer again pays a second time.
"""

from __future__ import annotations

from eth_account import Account
from fault_proxy import _Fault, rpc_error

from smartkeys.account import Owner, SessionAgent
from smartkeys.errors import DuplicateIntentError, OutcomeUnknownError, SmartKeysError, register_contract_errors
from smartkeys.outbox import Outbox
from smartkeys.policy_codec import Permission, SessionPolicy, TokenCap
from smartkeys.rpc import connect


class ErrorAfterForward(_Fault):
    """Forward (the node acts), then answer with a gateway's JSON-RPC error object."""

    def __call__(self, request, ctx):
        if self.fires(request):
            ctx.forward(request)
            return rpc_error(request, -32603, "upstream request timeout")
        return None


def test_a_gateway_error_after_the_node_took_the_transaction_is_not_a_refusal(anvil, fault_proxy, tmp_path):
    from smartkeys import artifacts

    chain = anvil
    token_address = chain.deploy_create2("test/MockERC20", 16_016, ["USD Coin", "USDC", 6])
    token = chain.w3.eth.contract(address=token_address, abi=artifacts.load("test/MockERC20")["abi"])
    register_contract_errors(token.abi)
    eoa, key = Account.create(), Account.create()
    chain.send({"to": eoa.address, "value": 10**18}, chain.accounts[2])
    chain.send({"to": key.address, "value": 10**18}, chain.accounts[2])  # the direct path's gas
    owner = Owner(chain.w3, eoa)
    owner.delegate()
    chain.send({"to": token.address, "data": token.encode_abi("mint", [owner.address, 10**12])}, chain.accounts[2])
    policy = SessionPolicy(key=key.address, valid_after=0, valid_until=chain.time() + 86_400, gas_budget=10**17,
                           permissions=(Permission(token.address, "transfer(address,uint256)"),),
                           token_caps=(TokenCap(token.address, 10**12),))
    owner.grant(policy)

    proxy = fault_proxy(chain.url, ErrorAfterForward(("eth_sendRawTransaction",), times=1))
    agent = SessionAgent(connect(proxy.url, timeout=5), owner.address, key, policy,
                         outbox=Outbox(tmp_path / "outbox.jsonl"))
    to = Account.create().address
    reports = []
    for _ in range(3):  # a careless agent: the same call again after any error
        try:
            agent.transfer(token.address, to, 7_000, via="direct")
            reports.append("ok")
            break
        except (OutcomeUnknownError, DuplicateIntentError) as exc:
            reports.append(type(exc).__name__)
            if isinstance(exc, DuplicateIntentError):
                break
        except Exception as exc:  # noqa: BLE001 - observed: web3's untyped Web3RPCError
            reports.append(f"{'' if isinstance(exc, SmartKeysError) else 'UNTYPED '}{type(exc).__name__}: {str(exc)[:80]}")
    paid = token.functions.balanceOf(to).call()
    assert paid == 7_000, f"paid {paid // 7_000} times; reports: {reports}"  # observed: twice
    assert not any(r.startswith("UNTYPED") for r in reports), reports
