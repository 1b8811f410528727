"""Review 12: `smartkeys rotate SESSION_ID` says "the old key ... is refused from now on" (the issue: "the old key
is dead from that block"), but only that one session id is revoked. A leaked key that also holds a second live
session of the same account keeps spending through it. Expected: rotate either refuses/warns that the key holds
other live sessions (or rotates them all), or its claim holds; happened: the claim is printed and the old key
sends 10 USDC right after."""

from __future__ import annotations

from tests.cli.conftest import *  # noqa: F403  (cli, granted, delegated, agent, usdc, policy_file fixtures)
from tests.cli.test_commands import _agent_env


def _send(cli, chain, delegated, usdc, key, amount, session):
    return cli("--json", "send", chain.accounts[5].address, amount, "--token", usdc.address, "--key", key,
               "--via", "direct", "--session", session, env=_agent_env(delegated))


def test_rotated_key_that_holds_another_session_is_still_live(cli, chain, granted, delegated, agent, usdc,
                                                              policy_file):
    second_file = policy_file.with_name("second.toml")
    second_file.write_text("salt = 1\n" + policy_file.read_text())
    second = cli("--json", "grant", "--policy", str(second_file))
    assert second.code == 0, second.err
    second_id = second.json["session_id"]

    rotated = cli("rotate", granted, "--new-key", chain.accounts[6].address)
    assert rotated.code == 0, rotated.err
    claim = f"the old key {agent.address} is refused from now on"
    before = usdc.functions.balanceOf(chain.accounts[5].address).call()
    leaked = _send(cli, chain, delegated, usdc, "agent", "10", second_id)
    moved = usdc.functions.balanceOf(chain.accounts[5].address).call() - before
    assert not (claim in rotated.out + rotated.err and leaked.code == 0), (
        f"rotate printed {claim!r} yet the old key moved {moved} base units through session {second_id}")
