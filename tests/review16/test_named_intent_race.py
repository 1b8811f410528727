"""Issue 16, kind 1/3: one *named* intent sent twice at once by one session key, through the two paths
(direct and user op). ``check_prior`` runs under the nonce-lane lock of the path -- the key's EOA lock on
the direct path, the account's user-op lane lock on the user-op path -- so the two checks do not exclude
each other: both find no prior entry and both pay. README: "A named intent (`intent="invoice-42"`) is sent
once for good."

Reproduce: two threads, ``agent.transfer(..., via="direct", intent="invoice-7")`` and
``agent.transfer(..., via="user_op", bundler=b, intent="invoice-7")``, both past ``check_prior`` before either
records (here a barrier in the preflight, i.e. a slow node read, makes the interleaving certain).
"""

from __future__ import annotations

import threading

from eth_account import Account

from smartkeys.errors import DuplicateIntentError
from smartkeys.outbox import Outbox
from smartkeys.policy_codec import Permission, TokenCap


def test_one_named_intent_on_both_paths_at_once_is_paid_once(grant, token, session_key, fund, bundler, tmp_path,
                                                            serialized_rpc):
    fund(session_key.address)
    agent = grant(session_key, permissions=(Permission(token.address, "transfer(address,uint256)"),),
                  token_caps=(TokenCap(token.address, 10**9),))
    agent.outbox = Outbox(tmp_path / "outbox.jsonl")
    to = Account.create().address
    barrier = threading.Barrier(2, timeout=10)
    first_preflight: set[int] = set()
    real_preflight = agent._preflight

    def slow_preflight(*a, **kw):  # a slow read between the duplicate check and the record
        if threading.get_ident() not in first_preflight:
            first_preflight.add(threading.get_ident())
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                pass  # the other thread is held back (the intent is serialized): fine
        return real_preflight(*a, **kw)

    agent._preflight = slow_preflight
    outcomes: dict[str, object] = {}

    def send(via):
        kw = {"bundler": bundler} if via == "user_op" else {}
        try:
            outcomes[via] = agent.transfer(token.address, to, 1_000, via=via, intent="invoice-7", **kw)
        except DuplicateIntentError as exc:
            outcomes[via] = exc
        except Exception as exc:  # noqa: BLE001 - recorded and shown by the assertion
            outcomes[via] = exc

    threads = [threading.Thread(target=send, args=(via,)) for via in ("direct", "user_op")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    paid = token.functions.balanceOf(to).call()
    assert paid == 1_000, f"invoice-7 paid {paid // 1_000} times; outcomes: {outcomes}"  # observed: 2 times
