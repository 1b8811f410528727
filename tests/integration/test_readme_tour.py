"""The README's "A short tour of the Python API" runs as written (issue 13): the tour funds its fresh session
key, so ``send_direct`` works, and the refusal block prints the refusal in USDC with what is left.

The tour starts its own chain; here ``start_local_chain`` returns the test chain, on which ``usdc`` (a
6-decimals token the owner's account holds), ``target``/``data`` (a plain owner call) and the transfer
calldata are defined, as the tour assumes."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
RECIPIENT = "0x000000000000000000000000000000000000bEEF"


def _tour_blocks() -> list[str]:
    text = README.read_text()
    match = re.search(r"^## A short tour of the Python API\n(.*?)(?=^## )", text, re.S | re.M)
    assert match, "README has no tour section"
    return re.findall(r"^```python\n(.*?)^```", match.group(1), re.S | re.M)


def test_the_tour_runs_as_written_and_its_refusal_speaks_usdc(chain, token, monkeypatch):
    import smartkeys.localchain

    tour, refusal = _tour_blocks()
    assert "Account.create()" in tour and "send_direct" in tour
    monkeypatch.setattr(smartkeys.localchain, "start_local_chain", lambda *a, **k: chain)
    namespace = {
        "usdc": token.address, "target": RECIPIENT, "data": b"",
        "transfer_data": token.encode_abi("transfer", [RECIPIENT, 10**6]),
        "too_big_transfer": token.encode_abi("transfer", [RECIPIENT, 60 * 10**6]),
    }
    # the refusal block belongs after the agent's uses and before the tour's last line (the revoke)
    body, revoke = tour.rstrip().rsplit("\n", 1)
    assert revoke.startswith("owner.revoke(")
    exec(compile(body, "README tour", "exec"), namespace)  # noqa: S102 - the README's own code
    assert token.functions.balanceOf(RECIPIENT).call() == 2 * 10**6  # the user op and the direct transfer
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(refusal, "README refusal", "exec"), namespace)  # noqa: S102
    lines = printed.getvalue().splitlines()
    assert len(lines) == 2, printed.getvalue()
    assert lines[0] in README.read_text().replace("\n", " ")  # the text the README shows
    assert "asked for 60 USDC" in lines[0] and "only 48 USDC" in lines[0] and "send at most 48 USDC" in lines[0]
    assert lines[1] == f"{2 * 10**6} {60 * 10**6} {50 * 10**6}"
    exec(compile(revoke, "README tour", "exec"), namespace)  # noqa: S102


def test_an_unfunded_session_key_gets_the_typed_fund_error_on_send_direct(chain, token, owner):
    import pytest
    from eth_account import Account

    from smartkeys.account import Call, SessionAgent
    from smartkeys.errors import InsufficientFundsError, InvalidInputError
    from smartkeys.policy_codec import Permission, SessionPolicy, TokenCap

    key = Account.create()
    policy = SessionPolicy(key=key.address, valid_after=0, valid_until=chain.time() + 3600,
                           permissions=(Permission(token.address, "transfer(address,uint256)"),),
                           token_caps=(TokenCap(token.address, 10**6),))
    owner.grant(policy)
    agent = SessionAgent(chain.w3, owner.address, key, policy)
    call = Call(token.address, 0, token.encode_abi("transfer", [RECIPIENT, 1]))
    for attempt in (lambda: agent.send_direct([call]), lambda: agent.batch([call], via="direct")):
        with pytest.raises(InsufficientFundsError) as info:
            attempt()
        assert isinstance(info.value, InvalidInputError) and info.value.address == key.address
        assert info.value.balance == 0 and info.value.required > 0
        assert f"fund {key.address} with ETH" in str(info.value)
    assert chain.w3.eth.get_transaction_count(key.address) == 0
