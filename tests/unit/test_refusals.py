"""smartkeys.refusals: each session refusal in the policy's units -- what was asked, what is left, what to do."""

from __future__ import annotations

import pickle

import pytest
from eth_utils import to_checksum_address

from smartkeys.errors import decode_revert, get_error_class, register_contract_errors
from smartkeys.policy_codec import Permission, PermissionMode, SessionPolicy, TokenCap
from smartkeys.refusals import Units, duration_text, explain, refusal_from_fields

USDC = to_checksum_address("0x00000000000000000000000000000000000000aa")
BEEF = "0x000000000000000000000000000000000000bEEF"
UNITS = Units(tokens={USDC: ("USDC", 6)})
DAY = 86_400


@pytest.fixture(autouse=True)
def _account_errors():
    from smartkeys import account  # noqa: F401 - registers the account's errors with their hints


def _policy(**kw):
    base = dict(key=BEEF, valid_after=0, valid_until=10 * DAY,
                permissions=(Permission(USDC, "transfer(address,uint256)"),
                             Permission(BEEF, mode=PermissionMode.EMPTY_CALLDATA)),
                token_caps=(TokenCap(USDC, 100 * 10**6, period=DAY, per_period=20 * 10**6),),
                native_total=10**18, native_period=3_600, native_per_period=10**17)
    base.update(kw)
    return SessionPolicy(**base)


def err(name, **fields):
    return get_error_class(name)(**fields)


def test_per_call_cap_in_ether_with_the_most_that_can_be_sent():
    text = explain(err("NativeValueAboveCallCap", value=5 * 10**17, cap=10**17), UNITS)
    assert text == ("asked to send 0.5 ETH in one call, but the session allows at most 0.1 ETH per call; "
                    "send at most 0.1 ETH")


def test_total_cap_says_what_is_left_and_when_nothing_is():
    text = explain(err("TokenSpendCapExceeded", token=USDC, spent=45 * 10**6, requested=10 * 10**6,
                       cap=50 * 10**6), UNITS)
    assert "asked for 10 USDC" in text and "only 5 USDC of the session's 50 USDC total is left (45 USDC spent)" \
        in text and "send at most 5 USDC" in text and "renew" in text
    used_up = explain(err("NativeSpendCapExceeded", spent=10**18, requested=1, cap=10**18), UNITS)
    assert "1 ETH total is used up" in used_up and "send at most" not in used_up and "renew" in used_up


def test_a_token_without_known_decimals_is_shown_in_base_units_not_guessed():
    text = explain(err("TokenSpendCapExceeded", token=BEEF, spent=0, requested=7, cap=5), Units())
    assert "7" in text and "USDC" not in text and "ETH" not in text


def test_period_cap_names_the_period_and_when_it_resets():
    now = 5 * DAY + 3_600  # 01:00 UTC on day 5
    text = explain(err("TokenPeriodCapExceeded", token=USDC, spent=15 * 10**6, requested=10 * 10**6,
                       cap=20 * 10**6), Units(tokens=UNITS.tokens, policy=_policy()), now=now)
    assert "cap per day" in text and "only 5 USDC" in text and "spent this period" in text
    assert "wait until 1970-01-07 00:00:00 UTC (in 23 h)" in text
    native = explain(err("NativePeriodCapExceeded", spent=10**17, requested=1, cap=10**17),
                     Units(policy=_policy()), now=now + 60)
    assert "cap per hour is used up" in native and "02:00:00 UTC (in 59 min)" in native


def test_window_refusals_give_utc_times_and_the_fix():
    expired = explain(err("SessionExpired", validUntil=DAY, timestamp=DAY + 7_500), UNITS)
    assert expired == ("the session expired at 1970-01-02 00:00:00 UTC (2 h 5 min ago); "
                       "ask the owner for a new session (an expired one cannot be renewed)")
    early = explain(err("SessionNotYetValid", validAfter=DAY, timestamp=DAY - 90), UNITS)
    assert "starts at 1970-01-02 00:00:00 UTC (in 1 min 30 s); wait until then" == early[len("the session "):]


def test_uses_gas_scope_and_revocation():
    assert "5 uses are all used (0 left)" in explain(err("UsageLimitReached", maxUses=5), UNITS)
    no_budget = explain(err("GasBudgetExceeded", spent=0, requested=10**15, budget=0), UNITS)
    assert "no gas budget" in no_budget and "--via direct" in no_budget and "budget=0" not in no_budget
    some = explain(err("GasBudgetExceeded", spent=9 * 10**15, requested=2 * 10**15, budget=10**16), UNITS)
    assert "up to 0.002 ETH of gas" in some and "only 0.001 ETH of the session's 0.01 ETH gas budget" in some
    scope = explain(err("CallNotAllowed", target=USDC, selector=bytes.fromhex("095ea7b3")),
                    Units(tokens=UNITS.tokens, policy=_policy()))
    assert scope.startswith(f"calling approve(address,uint256) on USDC ({USDC[:6]}…{USDC[-4:]})")
    assert "transfer(address,uint256) on USDC" in scope and "plain ETH transfers on 0x" in scope
    unknown_fn = explain(err("CallNotAllowed", target=BEEF, selector=bytes.fromhex("12345678")), UNITS)
    assert "function 0x12345678" in unknown_fn  # no name known: the selector, said as such
    assert "revoked" in explain(err("SessionNotActive", sessionId=b"\x01" * 32), UNITS)
    assert "revoked every session" in explain(err("SessionEpochRevoked", sessionId=b"\x01" * 32, grantedEpoch=0,
                                                  currentEpoch=1), UNITS)


def test_the_inner_revert_of_a_failed_op_is_explained():
    inner = err("NativeValueAboveCallCap", value=2 * 10**17, cap=10**17)
    wrapped = decode_revert(get_error_class("FailedOpWithRevert").error_selector + __import__("eth_abi").encode(
        ["uint256", "string", "bytes"], [0, "AA23 reverted", inner.data]))
    assert "at most 0.1 ETH per call" in explain(wrapped, UNITS)


def test_describe_and_humanize_keep_the_class_fields_and_pickling():
    e = err("TokenSpendCapExceeded", token=USDC, spent=1, requested=2 * 10**6, cap=2 * 10**6)
    raw = str(e)
    assert raw.startswith("reverted with TokenSpendCapExceeded(")  # str() of the raw class cannot know decimals
    assert "asked for 2 USDC" in e.describe(UNITS)
    assert e.humanize(UNITS) is e and str(e).startswith("asked for 2 USDC") and e.cap == 2 * 10**6
    again = pickle.loads(pickle.dumps(e))
    assert type(again) is type(e) and str(again) == str(e) and again.spent == 1


def test_errors_it_does_not_know_are_left_alone():
    register_contract_errors([{"type": "error", "name": "SomethingElse", "inputs": [{"name": "x", "type": "uint256"}]}])
    other = err("SomethingElse", x=3)
    assert explain(other, UNITS) is None and other.describe(UNITS) == str(other)
    assert explain(ValueError("x"), UNITS) is None


def test_journal_fields_rebuild_the_explanation():
    stand_in = refusal_from_fields("TokenSpendCapExceeded", {"token": USDC, "spent": "45000000",
                                                             "requested": "10000000", "cap": "50000000"})
    assert "only 5 USDC" in explain(stand_in, UNITS)
    scope = refusal_from_fields("CallNotAllowed", {"target": USDC, "selector": "0x095ea7b3"})
    assert "approve(address,uint256)" in explain(scope, UNITS)


@pytest.mark.parametrize("seconds, text", [(0, "0 s"), (59, "59 s"), (3_600, "1 h"), (90_061, "1 d 1 h")])
def test_duration_text(seconds, text):
    assert duration_text(seconds) == text
