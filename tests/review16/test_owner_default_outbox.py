"""Issue 16 rule: "the SDK ... records the intent durably before sending (a small outbox next to the refusal
journal)". ``SessionAgent`` keeps one by default; ``Owner`` does not (``outbox=None`` unless given), so the
README tour's ``owner.execute(target, 0, data)`` after an unknown outcome is paid again by a retry: nothing
remembers the first attempt. (The README says "Owner records its transactions when given outbox=Outbox()";
the CLI always gives one. The SDK's default is the unsafe one, opposite to SessionAgent's.)

Reproduce: Owner(w3, eoa) (no outbox); the node takes owner.execute(token.transfer) then the connection dies
-> OutcomeUnknownError; connection back; owner.execute(same) -> paid twice.
"""

from __future__ import annotations

import pytest
from eth_account import Account

from smartkeys.account import Owner
from smartkeys.errors import DuplicateIntentError, OutcomeUnknownError
from tests.review16.test_settle_then_retry import _node_dies_after_the_send


def test_an_owner_retry_after_an_unknown_outcome_is_not_paid_twice(chain, owner, token, monkeypatch):
    fresh = Owner(chain.w3, owner._account)  # as the README's tour makes it: no outbox= given
    to = Account.create().address
    data = token.encode_abi("transfer", [to, 3_000])
    with monkeypatch.context() as m:
        _node_dies_after_the_send(m, chain.w3)
        with pytest.raises(OutcomeUnknownError):
            fresh.execute(token.address, 0, data)
    try:
        fresh.execute(token.address, 0, data)  # the retry, once the node answers again
    except DuplicateIntentError:
        pass
    assert token.functions.balanceOf(to).call() == 3_000  # observed: 6,000
