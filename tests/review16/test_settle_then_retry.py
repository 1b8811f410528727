"""Issue 16, kind 1, rule: "Settling looks the hash and the nonce lane up; a retry of a settled intent is
refused unless asked for by name." The SDK does the opposite for an unnamed intent: once ``agent.settle()``
has acknowledged it, the same calls are a *new* payment. The README's own example handles
``OutcomeUnknownError`` with ``agent.settle(bundler=bundler)``; an agent loop that then retries the failed
call (the very behaviour of the issue's agents) pays twice, and ``settle()`` returns without raising.

Reproduce: node takes the transfer then the connection dies -> OutcomeUnknownError; connection back;
``agent.settle()``; ``agent.transfer(same args)`` -> paid twice.
"""

from __future__ import annotations

import pytest
import requests
from eth_account import Account

from smartkeys.errors import DuplicateIntentError, OutcomeUnknownError
from smartkeys.outbox import Outbox
from smartkeys.policy_codec import Permission, TokenCap


def _node_dies_after_the_send(m, w3):
    eth = type(w3.eth)
    real_send = eth.send_raw_transaction
    sent = []

    def send(self, raw):
        real_send(self, raw)
        sent.append(raw)
        raise requests.ConnectionError("Connection aborted: RemoteDisconnected")

    def down(real):
        def read(*a, **k):
            if sent:
                raise requests.ConnectionError("Connection refused")
            return real(*a, **k)
        return read

    m.setattr(eth, "send_raw_transaction", send)
    for name in ("get_transaction_receipt", "get_logs", "get_transaction_count"):
        m.setattr(eth, name, down(getattr(eth, name)))


@pytest.mark.parametrize("via", ["direct", "user_op"])
def test_retry_after_the_readme_settle_is_refused_not_paid_again(grant, token, session_key, fund, bundler, tmp_path,
                                                                 monkeypatch, via):
    fund(session_key.address)
    agent = grant(session_key, permissions=(Permission(token.address, "transfer(address,uint256)"),),
                  token_caps=(TokenCap(token.address, 10**9),))
    agent.outbox = Outbox(tmp_path / "outbox.jsonl")
    to = Account.create().address
    kw = {"bundler": bundler} if via == "user_op" else {}

    def pay():  # an agent's step, written as the README shows it
        try:
            agent.transfer(token.address, to, 5_000, via=via, **kw)
            return "paid"
        except OutcomeUnknownError:
            agent.settle()  # README: "looks it up; re-sends the same op if its nonce is free"
            return "unknown"

    with monkeypatch.context() as m:
        _node_dies_after_the_send(m, agent.w3)
        with pytest.raises(OutcomeUnknownError):
            agent.transfer(token.address, to, 5_000, via=via, **kw)
    assert agent.settle()  # the node is back: settled (landed) and acknowledged
    try:
        pay()  # the agent retries the step that "failed"
    except DuplicateIntentError:
        pass
    assert token.functions.balanceOf(to).call() == 5_000  # observed: 10,000 (paid twice)
