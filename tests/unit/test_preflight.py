"""Offline boundary cases of ``smartkeys.preflight`` (no chain): exact caps, period roll-over, wildcards and
multicall, forbidden targets, 1-3 byte calldata, liveness, window, gas and paymasters, ordering."""

from __future__ import annotations

import dataclasses

import pytest
from eth_abi import encode

from smartkeys.account import Call
from smartkeys.deployments import ENTRY_POINT_V08
from smartkeys.errors import InvalidInputError, UserOperationError
from smartkeys.policy_codec import Permission, PermissionMode, SessionPolicy, TokenCap, selector_of
from smartkeys.preflight import ACCOUNT_ERRORS, Ledger, SessionState, SessionWindowError, preflight, preflight_many

ACCOUNT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
KEY = "0x" + "11" * 20
TOKEN = "0x2222222222222222222222222222222222222222"
TARGET = "0x3333333333333333333333333333333333333333"
RECIPIENT = "0x4444444444444444444444444444444444444444"
PAYMASTER = "0x5555555555555555555555555555555555555555"
ZERO = "0x0000000000000000000000000000000000000000"
NOW = 1_750_000_000
HOUR = 3_600
TRANSFER = selector_of("transfer(address,uint256)")
APPROVE = selector_of("approve(address,uint256)")
TRANSFER_FROM = selector_of("transferFrom(address,address,uint256)")
PING = selector_of("ping(uint256)")
MULTICALL = selector_of("multicall(bytes[])")


def err(name):
    return ACCOUNT_ERRORS[name]  # by the account's ABI: other tests may register same-named errors


def policy(**fields) -> SessionPolicy:
    fields.setdefault("key", KEY)
    fields.setdefault("valid_after", NOW - 100)
    fields.setdefault("valid_until", NOW + 100)
    fields.setdefault("permissions", (Permission(TOKEN, TRANSFER),))
    return SessionPolicy(**fields)


def transfer(amount: int, token: str = TOKEN) -> Call:
    return Call(token, 0, TRANSFER + encode(["address", "uint256"], [RECIPIENT, amount]))


def approve(amount: int) -> Call:
    return Call(TOKEN, 0, APPROVE + encode(["address", "uint256"], [RECIPIENT, amount]))


def check(p, calls, state=None, **kwargs):
    kwargs.setdefault("now", NOW)
    kwargs.setdefault("via_user_op", False)
    state = state or SessionState.fresh(p, ACCOUNT, now=NOW - 200)
    return preflight(p, state, calls, **kwargs)


# --------------------------------------------------------------------------- token caps


def test_transfer_exactly_at_cap_is_charged_and_one_more_unit_is_refused():
    p = policy(token_caps=(TokenCap(TOKEN, 1_000),))
    assert check(p, [transfer(1_000)]).tokens == {TOKEN: 1_000}
    with pytest.raises(err("TokenSpendCapExceeded")) as info:
        check(p, [transfer(1_001)])
    assert info.value.values == (TOKEN, 0, 1_001, 1_000)


def test_cap_counts_what_was_already_spent_and_sums_calls_of_one_batch():
    p = policy(token_caps=(TokenCap(TOKEN, 1_000),))
    state = dataclasses.replace(SessionState.fresh(p, ACCOUNT, now=NOW), tokens={TOKEN: Ledger(600, 0, 0)})
    assert check(p, [transfer(200), transfer(200)], state).tokens == {TOKEN: 400}
    with pytest.raises(err("TokenSpendCapExceeded")) as info:
        check(p, [transfer(200), transfer(201)], state)
    assert info.value.values == (TOKEN, 600, 401, 1_000)


def test_period_cap_rolls_over_at_the_period_boundary():
    p = policy(token_caps=(TokenCap(TOKEN, 10_000, HOUR, 100),), valid_until=NOW + 2 * HOUR)
    boundary = (NOW // HOUR + 1) * HOUR
    state = dataclasses.replace(
        SessionState.fresh(p, ACCOUNT, now=NOW), tokens={TOKEN: Ledger(100, 100, (boundary - 1) // HOUR)}
    )
    with pytest.raises(err("TokenPeriodCapExceeded")) as info:
        check(p, [transfer(1)], state, now=boundary - 1)
    assert info.value.values == (TOKEN, 100, 1, 100)
    assert check(p, [transfer(100)], state, now=boundary).tokens == {TOKEN: 100}
    after = state.after(p, check(p, [transfer(30)], state, now=boundary), now=boundary)
    assert after.tokens[TOKEN] == Ledger(130, 30, boundary // HOUR)


def test_cumulative_cap_is_checked_before_the_period_cap():
    p = policy(token_caps=(TokenCap(TOKEN, 50, HOUR, 10),))
    with pytest.raises(err("TokenSpendCapExceeded")):
        check(p, [transfer(51)])


def test_approve_counts_in_full_and_overflowing_declared_amounts_saturate_like_the_contract():
    p = policy(permissions=(Permission(TOKEN, APPROVE),), token_caps=(TokenCap(TOKEN, 10**6),))
    with pytest.raises(err("TokenSpendCapExceeded")) as info:
        check(p, [approve(2**256 - 1)])
    assert info.value.requested == 2**256 - 1
    with pytest.raises(err("TokenSpendCapExceeded")) as saturated:
        check(p, [approve(2**255), approve(2**255)])
    assert saturated.value.requested == 2**256 - 1


def test_transfer_from_amount_is_read_at_offset_68_and_short_calldata_is_measured():
    p = policy(permissions=(Permission(TOKEN, TRANSFER_FROM), Permission(TOKEN, TRANSFER)),
               token_caps=(TokenCap(TOKEN, 10),))
    data = TRANSFER_FROM + encode(["address", "address", "uint256"], [ACCOUNT, RECIPIENT, 7])
    assert check(p, [Call(TOKEN, 0, data)]).tokens == {TOKEN: 7}
    truncated = Call(TOKEN, 0, TRANSFER + encode(["address"], [RECIPIENT]))  # 36 bytes: no amount word
    charges = check(p, [truncated])
    assert charges.tokens == {} and charges.measured == (0,)


def test_measured_calls_count_expected_outflows_only_for_capped_tokens():
    p = policy(permissions=(Permission(TARGET, mode=PermissionMode.ANY_SELECTOR),), token_caps=(TokenCap(TOKEN, 100),))
    ping = Call(TARGET, 0, PING + encode(["uint256"], [1]))
    assert check(p, [ping]).measured == (0,)
    assert check(p, [ping], expected_outflows={TOKEN: 100, RECIPIENT: 5}).tokens == {TOKEN: 100}
    with pytest.raises(err("TokenSpendCapExceeded")):
        check(p, [ping], expected_outflows={TOKEN.lower(): 101})


def test_expected_outflows_are_ignored_when_every_call_is_declared():
    p = policy(token_caps=(TokenCap(TOKEN, 100),))
    assert check(p, [transfer(5)], expected_outflows={TOKEN: 10**9}).tokens == {TOKEN: 5}


# --------------------------------------------------------------------------- native value


def test_native_per_call_total_and_period_caps_at_their_exact_boundaries():
    p = policy(permissions=(Permission(RECIPIENT, mode=PermissionMode.EMPTY_CALLDATA),),
               native_per_call=10, native_total=25, native_period=HOUR, native_per_period=20)
    send = lambda v: Call(RECIPIENT, v, b"")  # noqa: E731
    assert check(p, [send(10), send(10)]).native == 20
    with pytest.raises(err("NativeValueAboveCallCap")) as above:
        check(p, [send(11)])
    assert above.value.values == (11, 10)
    with pytest.raises(err("NativePeriodCapExceeded")) as period:
        check(p, [send(10), send(10), send(1)])
    assert period.value.values == (0, 21, 20)
    spent = dataclasses.replace(SessionState.fresh(p, ACCOUNT, now=NOW), native_spent=20)
    with pytest.raises(err("NativeSpendCapExceeded")) as total:
        check(p, [send(6)], spent)
    assert total.value.values == (20, 6, 25)


def test_per_call_cap_is_checked_per_call_before_a_later_calls_scope():
    p = policy(permissions=(Permission(RECIPIENT, mode=PermissionMode.EMPTY_CALLDATA),), native_per_call=1,
               native_total=10)
    with pytest.raises(err("NativeValueAboveCallCap")):
        check(p, [Call(RECIPIENT, 2, b""), Call(TARGET, 0, PING)])
    with pytest.raises(err("CallNotAllowed")):
        check(p, [Call(TARGET, 0, PING), Call(RECIPIENT, 2, b"")])


# --------------------------------------------------------------------------- scope


@pytest.mark.parametrize("forbidden", [ACCOUNT, ENTRY_POINT_V08, ZERO])
def test_forbidden_targets_are_refused_before_scope(forbidden):
    p = policy()
    with pytest.raises(err("ForbiddenTarget")) as info:
        check(p, [Call(forbidden, 0, b"")])
    assert info.value.values == (forbidden,)


@pytest.mark.parametrize("length", [1, 2, 3])
def test_calldata_of_one_to_three_bytes_is_refused_even_under_a_wildcard(length):
    p = policy(permissions=(Permission(TARGET, mode=PermissionMode.ANY_SELECTOR),))
    with pytest.raises(err("CalldataTooShort")) as info:
        check(p, [Call(TARGET, 0, b"\xaa" * length)])
    assert info.value.values == (TARGET, length)


def test_wildcard_allows_plain_transfers_and_functions_but_not_multicalls():
    p = policy(permissions=(Permission(TARGET, mode=PermissionMode.ANY_SELECTOR),))
    assert check(p, [Call(TARGET, 0, b""), Call(TARGET, 0, PING)]).native == 0
    with pytest.raises(err("CallNotAllowed")) as info:
        check(p, [Call(TARGET, 0, MULTICALL + encode(["bytes[]"], [[]]))])
    assert info.value.values == (TARGET, MULTICALL)
    with pytest.raises(err("CallNotAllowed")):
        check(p, [Call(TARGET, 0, selector_of("executeAsSession(bytes,(address,uint256,bytes)[])"))])


def test_exact_and_empty_modes_match_only_their_calls():
    p = policy(permissions=(Permission(TARGET, PING), Permission(RECIPIENT, mode=PermissionMode.EMPTY_CALLDATA)))
    assert check(p, [Call(TARGET, 0, PING), Call(RECIPIENT, 0, b"")]).tokens == {}
    with pytest.raises(err("CallNotAllowed")) as empty_to_exact:
        check(p, [Call(TARGET, 0, b"")])
    assert empty_to_exact.value.values == (TARGET, b"\x00\x00\x00\x00")
    with pytest.raises(err("CallNotAllowed")):
        check(p, [Call(RECIPIENT, 0, PING)])
    with pytest.raises(err("CallNotAllowed")):
        check(p, [Call(TARGET, 0, selector_of("other()"))])


def test_empty_scope_target_with_no_permission_is_call_not_allowed():
    with pytest.raises(err("CallNotAllowed")):
        check(policy(), [Call(RECIPIENT, 0, b"")])


def test_tuple_calls_and_lowercase_addresses_are_accepted():
    p = policy(token_caps=(TokenCap(TOKEN, 10),))
    data = "0x" + transfer(3).data.hex()
    assert check(p, [(TOKEN.lower(), 0, data)]).tokens == {TOKEN: 3}


# --------------------------------------------------------------------------- liveness, window, uses


def test_liveness_errors_carry_the_session_id_and_epochs():
    p = policy()
    fresh = SessionState.fresh(p, ACCOUNT, now=NOW)
    with pytest.raises(err("SessionNotActive")) as inactive:
        check(p, [transfer(1)], dataclasses.replace(fresh, granted=False))
    assert inactive.value.values == (p.session_id,)
    with pytest.raises(err("SessionEpochRevoked")) as stale:
        check(p, [transfer(1)], dataclasses.replace(fresh, epoch=2))
    assert stale.value.values == (p.session_id, 0, 2)


def test_direct_window_is_exclusive_at_the_start_and_inclusive_at_the_end():
    p = policy(valid_after=NOW, valid_until=NOW + 10)
    with pytest.raises(err("SessionNotYetValid")) as early:
        check(p, [transfer(1)], now=NOW)
    assert early.value.values == (NOW, NOW)
    check(p, [transfer(1)], now=NOW + 1)
    check(p, [transfer(1)], now=NOW + 10)
    with pytest.raises(err("SessionExpired")) as late:
        check(p, [transfer(1)], now=NOW + 11)
    assert late.value.values == (NOW + 10, NOW + 11)


def test_user_op_window_miss_is_aa22_naming_the_window_after_the_gas_check():
    p = policy(valid_after=NOW, valid_until=NOW + 10, gas_budget=100)
    with pytest.raises(SessionWindowError) as info:
        check(p, [transfer(1)], now=NOW + 11, via_user_op=True, max_gas_cost=100)
    assert isinstance(info.value, UserOperationError) and info.value.code == "AA22"
    assert f"until {NOW + 10}" in str(info.value) and "expired" in str(info.value)
    with pytest.raises(err("GasBudgetExceeded")):  # validation (gas) comes before the EntryPoint's time check
        check(p, [transfer(1)], now=NOW + 11, via_user_op=True, max_gas_cost=101)


def test_usage_limit_is_checked_after_the_window_and_before_scope():
    p = policy(max_uses=2)
    used = dataclasses.replace(SessionState.fresh(p, ACCOUNT, now=NOW), uses=2)
    with pytest.raises(err("UsageLimitReached")) as info:
        check(p, [Call(ZERO, 0, b"")], used)
    assert info.value.values == (2,)
    with pytest.raises(err("SessionExpired")):
        check(p, [transfer(1)], used, now=NOW + 101)
    assert check(p, [transfer(1)]).uses == 1
    assert check(policy(), [transfer(1)]).uses == 0


def test_direct_sender_other_than_the_key_is_not_session_key():
    p = policy()
    with pytest.raises(err("NotSessionKey")) as info:
        check(p, [transfer(1)], sender=RECIPIENT)
    assert info.value.values == (RECIPIENT, p.key)


# --------------------------------------------------------------------------- gas and paymasters


def test_gas_budget_at_the_exact_limit_and_paymasters_only_when_listed():
    p = policy(gas_budget=1_000, paymasters=(PAYMASTER,))
    assert check(p, [transfer(1)], via_user_op=True, max_gas_cost=1_000).gas == 1_000
    with pytest.raises(err("GasBudgetExceeded")) as info:
        check(p, [transfer(1)], via_user_op=True, max_gas_cost=1_001)
    assert info.value.values == (0, 1_001, 1_000)
    # A listed paymaster pays the EntryPoint, but the op's whole cost still counts against the gas budget
    # (a token paymaster takes it back from the account in postOp).
    assert check(p, [transfer(1)], via_user_op=True, paymaster=PAYMASTER.lower(), max_gas_cost=1_000).gas == 1_000
    with pytest.raises(err("GasBudgetExceeded")):
        check(p, [transfer(1)], via_user_op=True, paymaster=PAYMASTER, max_gas_cost=1_001)
    with pytest.raises(err("PaymasterNotAllowed")) as pm:
        check(p, [transfer(1)], via_user_op=True, paymaster=RECIPIENT, max_gas_cost=1)
    assert pm.value.values == (RECIPIENT,)


def test_user_op_without_paymaster_requires_max_gas_cost():
    with pytest.raises(InvalidInputError) as info:
        check(policy(), [transfer(1)], via_user_op=True)
    assert info.value.field == "max_gas_cost"


# --------------------------------------------------------------------------- caching and sequencing


def test_tables_are_cached_on_the_policy_and_do_not_change_equality():
    p = policy()
    check(p, [transfer(1)])
    assert "_smartkeys_preflight_tables" in p.__dict__
    assert p == policy() and hash(p) == hash(policy())


def test_preflight_many_carries_charges_from_one_use_to_the_next():
    p = policy(token_caps=(TokenCap(TOKEN, 10),), max_uses=3)
    state = SessionState.fresh(p, ACCOUNT, now=NOW)
    assert [c.tokens[TOKEN] for c in preflight_many(p, state, [[transfer(4)], [transfer(6)]], now=NOW,
                                                    via_user_op=False)] == [4, 6]
    with pytest.raises(err("TokenSpendCapExceeded")) as info:
        preflight_many(p, state, [[transfer(4)], [transfer(7)]], now=NOW, via_user_op=False)
    assert info.value.values == (TOKEN, 4, 7, 10)
