"""One ``Owner`` shared by 4 threads for 20 grants: serialized per EOA nonce, no nonce error, all 20 granted."""

from __future__ import annotations

import threading

from eth_account import Account

from smartkeys.policy_codec import Permission, SessionPolicy, TokenCap

THREADS, GRANTS = 4, 20


def test_one_owner_from_four_threads_grants_twenty_sessions(chain, owner, token, serialized_rpc):
    keys = [Account.create().address for _ in range(GRANTS)]
    until = chain.time() + 86_400
    errors: list[BaseException] = []
    granted: list[bytes] = []
    barrier = threading.Barrier(THREADS)

    def work(t: int) -> None:
        barrier.wait()
        for key in keys[t::THREADS]:
            try:
                granted.append(owner.grant(SessionPolicy(
                    key=key, valid_after=0, valid_until=until, gas_budget=10**15,
                    permissions=(Permission(token.address, "transfer(address,uint256)"),),
                    token_caps=(TokenCap(token.address, 10**6),))))
            except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert len(set(granted)) == GRANTS
    assert all(r.live for r in owner.sessions()) and len(owner.sessions()) == GRANTS
