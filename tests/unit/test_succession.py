"""Pure rules of a successor policy (``smartkeys.succession``): what rotate and renew may change, no chain."""

from __future__ import annotations

import dataclasses

import pytest

from smartkeys.errors import InvalidInputError, get_error_class
from smartkeys.policy_codec import Permission, SessionPolicy, TokenCap
from smartkeys.preflight import Ledger, SessionState
from smartkeys.succession import check_successor, preflight_succession, successor_policy

KEY = "0x" + "11" * 20
OTHER = "0x" + "33" * 20
TOKEN = "0x" + "22" * 20
ACCOUNT = "0x" + "44" * 20
ZERO = "0x" + "00" * 20


def base(**over) -> SessionPolicy:
    fields = dict(key=KEY, valid_after=0, valid_until=10_000,
                  permissions=(Permission(TOKEN, "transfer(address,uint256)"),),
                  token_caps=(TokenCap(TOKEN, 1_000, 100, 500),), max_uses=10, native_total=50, gas_budget=10**9)
    fields.update(over)
    return SessionPolicy(**fields)


def state(policy, *, spent=0, period_spent=0, index=0, granted=True, granted_epoch=0, epoch=0):
    return SessionState(ACCOUNT, granted, 0, 0, 0, granted_epoch, epoch,
                        {TOKEN: Ledger(spent, period_spent, index)})


def test_successor_policy_changes_only_what_it_is_given():
    p = base()
    n = successor_policy(p, valid_until=20_000, max_uses=5, token_caps={TOKEN: 900})
    assert (n.valid_until, n.max_uses, n.token_caps[0].cap, n.token_caps[0].per_period) == (20_000, 5, 900, 500)
    assert n.permissions == p.permissions and n.key == p.key
    check_successor(p, n, rotate=False)


@pytest.mark.parametrize("bad", [{"permissions": ()}, {"valid_after": 1}])
def test_successor_policy_refuses_a_field_that_is_not_a_limit(bad):
    with pytest.raises(InvalidInputError) as info:
        successor_policy(base(), **bad)
    assert info.value.field == next(iter(bad))


def test_successor_policy_refuses_a_token_the_policy_does_not_cap():
    with pytest.raises(InvalidInputError) as info:
        successor_policy(base(), token_caps={OTHER: 1})
    assert info.value.field == "token_caps"


@pytest.mark.parametrize(("change", "field", "current", "proposed"), [
    ({"max_uses": 11}, "maxUses", 10, 11),
    ({"max_uses": 0}, "maxUses", 10, 0),
    ({"native_total": 51}, "nativeTotal", 50, 51),
    ({"gas_budget": 10**9 + 1}, "gasBudget", 10**9, 10**9 + 1),
    ({"token_caps": (TokenCap(TOKEN, 1_001, 100, 500),)}, "tokenCaps.cap", 1_000, 1_001),
    ({"token_caps": (TokenCap(TOKEN, 1_000, 100, 501),)}, "tokenCaps.perPeriod", 500, 501),
])
def test_a_raise_names_the_contract_field_both_values_and_the_python_fix(change, field, current, proposed):
    with pytest.raises(get_error_class("SuccessorRaisesLimit")) as info:
        check_successor(base(), dataclasses.replace(base(), **change), rotate=False)
    assert (info.value.field, info.value.current, info.value.proposed) == (field, current, proposed)
    assert "fix:" in str(info.value)


def test_rotate_needs_another_key_and_renew_keeps_it():
    with pytest.raises(get_error_class("InvalidSessionKey")):
        check_successor(base(), base(salt=1), rotate=True)
    with pytest.raises(get_error_class("SuccessorChangesField")) as info:
        check_successor(base(), base(key=OTHER), rotate=False)
    assert info.value.field == "key" and "smartkeys rotate" in str(info.value)
    check_successor(base(), base(key=OTHER), rotate=True)


def test_preflight_refuses_a_dead_session_and_a_cap_below_what_was_spent():
    p = base()
    n = successor_policy(p, token_caps={TOKEN: 599})
    with pytest.raises(get_error_class("SessionNotActive")):
        preflight_succession(p, n, state(p, granted=False), now=50, rotate=False)
    with pytest.raises(get_error_class("SessionEpochRevoked")):
        preflight_succession(p, n, state(p, epoch=1), now=50, rotate=False)
    with pytest.raises(get_error_class("SessionExpired")):
        preflight_succession(p, n, state(p), now=10_001, rotate=False)
    with pytest.raises(get_error_class("SuccessorBelowSpent")) as info:
        preflight_succession(p, n, state(p, spent=600), now=50, rotate=False)
    assert (info.value.field, info.value.spent, info.value.proposed) == ("tokenCaps.cap", 600, 599)
    # the period cap counts only the current period's spend
    low = successor_policy(p, token_per_period={TOKEN: 10})
    preflight_succession(p, low, state(p, spent=600, period_spent=400, index=0), now=150, rotate=False)
    with pytest.raises(get_error_class("SuccessorBelowSpent")):
        preflight_succession(p, low, state(p, spent=600, period_spent=400, index=1), now=150, rotate=False)
