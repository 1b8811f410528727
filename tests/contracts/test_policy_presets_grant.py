"""The policy presets, filled in as a user would, are granted by the account as written, and the contract
holds them to what their names promise: the operator pays only its recipient list, within its bound and its
rate limit; the observer moves no value and no token (each refusal on both paths, nothing changed)."""

from __future__ import annotations

import re

from eth_utils import to_checksum_address
from test_session_budgets import balance_of, path, run, target, tcall  # noqa: F401  (fixtures)

from smartkeys.account import Call, SessionAgent
from smartkeys.policy import parse_policy
from smartkeys.policy_presets import preset_text
from smartkeys.safe_files import tomllib

TREASURY, SUPPLIER, STRANGER = (to_checksum_address(f"0x{a:040x}") for a in (0xA11C, 0xB0B0, 0xBAD0))


def filled(name: str, **values: str) -> str:
    """The preset's text with ``field = "<FILL IN: …>"`` lines set to ``values[field]`` (by the key's name)."""
    text = preset_text(name)
    for field, value in values.items():
        text, n = re.subn(rf'^({field}\s*=\s*)"<FILL IN:[^"]*>"', rf'\g<1>"{value}"', text, count=1, flags=re.M)
        assert n == 1, field
    assert "= \"<FILL IN" not in text
    return text


def granted(chain, owner, session_key, fund, text: str) -> SessionAgent:
    fund(session_key.address)
    policy = parse_policy(tomllib.loads(text)).compile(now=chain.time())
    owner.grant(policy)
    return SessionAgent(chain.w3, owner.address, session_key, policy)


def test_operator_pays_only_its_recipient_list_within_its_bound_and_rate_limit(
        run, chain, owner, session_key, fund, token):
    agent = granted(chain, owner, session_key, fund, filled(
        "operator", key=session_key.address, address=token.address, treasury=TREASURY, supplier=SUPPLIER))
    watch = {"stranger": balance_of(token, STRANGER)}
    e = run.refused(agent, [tcall(token, "transfer", STRANGER, 10**6)], "ArgumentRuleViolated", watch)
    assert (e.argIndex, e.op) == (0, 5)  # `to` one of [treasury, supplier]
    e = run.refused(agent, [tcall(token, "transfer", TREASURY, 50 * 10**6 + 1)], "ArgumentRuleViolated", watch)
    assert (e.argIndex, e.op) == (1, 2)  # `amount` <= 50 USDC
    run(agent, [tcall(token, "transfer", TREASURY, 50 * 10**6)])
    assert balance_of(token, TREASURY)() == 50 * 10**6
    e = run.refused(agent, [tcall(token, "transfer", SUPPLIER, 10**6)], "UseTooSoon", watch)
    assert e.minInterval == 600


def test_observer_sends_no_value_and_calls_no_token(run, chain, owner, session_key, fund, token, target):
    text = filled("observer", key=session_key.address, app=target.address)
    text = text.replace('functions = ["checkIn()"]', 'functions = ["ping(uint256)"]')  # the app's own function
    agent = granted(chain, owner, session_key, fund, text)
    ping = target.encode_abi("ping", [1])
    run.refused(agent, [Call(target.address, 1, ping)], "NativeValueAboveCallCap")
    run.refused(agent, [tcall(token, "transfer", STRANGER, 1)], "CallNotAllowed",
                {"stranger": balance_of(token, STRANGER)})
    assert run(agent, [Call(target.address, 0, ping)])["status"] == 1  # what it is for: the app's function


def test_admin_in_window_is_granted_as_written_and_its_window_is_one_hour(chain, owner, session_key, fund, token,
                                                                           target):
    agent = granted(chain, owner, session_key, fund, filled(
        "admin-in-window", key=session_key.address, app=target.address, address=token.address))
    assert agent.policy.valid_until - agent.policy.valid_after == 3_600
    assert owner.session_report(agent.policy).live
