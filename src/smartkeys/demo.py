"""``smartkeys demo``: the whole story on an embedded chain, in readable steps.

No node, no compiler, no network: the chain runs in-process (eth-tester) with EntryPoint v0.8 and the
smartkeys account at their canonical addresses.
"""

from __future__ import annotations

import time
from typing import Callable, TextIO

from eth_account import Account

from smartkeys import artifacts
from smartkeys.account import Call, Owner, SessionAgent, session_status
from smartkeys.deployments import ENTRY_POINT_V08, account_address
from smartkeys.errors import SmartKeysError, register_contract_errors
from smartkeys.policy_codec import Permission, SessionPolicy, TokenCap

__all__ = ["run_demo"]

USDC = 10**6


def run_demo(out: TextIO, *, color: bool = False) -> int:
    """Run the demo, writing the story to ``out``. Returns 0 on success."""
    from smartkeys.localchain import start_local_chain

    bold = (lambda s: f"\033[1m{s}\033[0m") if color else (lambda s: s)
    started = time.perf_counter()
    step_no = 0

    def step(title: str) -> None:
        nonlocal step_no
        step_no += 1
        print(f"\n{bold(f'{step_no}. {title}')}", file=out)

    def say(text: str) -> None:
        print(f"   {text}", file=out)

    step("Start an embedded chain (eth-tester, Prague) and deploy the contracts")
    chain = start_local_chain()
    w3 = chain.w3
    say(f"chain id {chain.chain_id}")
    say(f"EntryPoint v0.8     {ENTRY_POINT_V08}")
    say(f"SmartKeysAccount    {account_address()}")
    bundler, owner_eoa, minter, recipient = chain.accounts[0], chain.accounts[1], chain.accounts[2], chain.accounts[3]

    token_address = chain.deploy_create2("test/MockERC20", 1, ["USD Coin", "USDC", 6])
    token = w3.eth.contract(address=token_address, abi=artifacts.load("test/MockERC20")["abi"])
    register_contract_errors(token.abi)
    chain.send({"to": token_address, "data": token.encode_abi("mint", [owner_eoa.address, 1_000 * USDC])}, minter)
    say(f"test token USDC     {token_address} (the owner holds 1,000 USDC)")

    def usdc(address: str) -> str:
        return f"{token.functions.balanceOf(address).call() / USDC:,.2f} USDC"

    def transfer(amount: int) -> Call:
        return Call(token_address, 0, token.encode_abi("transfer", [recipient.address, amount]))

    step("Delegate the owner's EOA to the smartkeys account (EIP-7702, self-sponsored)")
    owner = Owner(w3, owner_eoa)
    receipt = owner.delegate()
    say(f"owner {owner.address} now has code 0xef0100‖{owner.delegation()}")
    say(f"set-code transaction: {receipt['gasUsed']:,} gas")

    step("The owner pays 10 USDC with a transaction to itself")
    receipt = owner.execute(token_address, 0, transfer(10 * USDC).data)
    say(f"recipient has {usdc(recipient.address)} ({receipt['gasUsed']:,} gas)")

    step("The owner pays 15 USDC as an ERC-4337 user operation (self-bundled through EntryPoint v0.8)")
    result = owner.send_user_op([transfer(15 * USDC)], bundler=bundler)
    say(f"user op {result.user_op_hash.hex()[:16]}… succeeded: {result.success}")
    say(f"recipient has {usdc(recipient.address)} (bundle {result.bundle_gas_used:,} gas)")

    step("The owner grants an agent a session key: USDC transfers only, 50 USDC cap, 1 day, 5 uses")
    agent_key = Account.create()
    policy = SessionPolicy(
        key=agent_key.address,
        valid_after=0,
        valid_until=chain.time() + 86_400,
        max_uses=5,
        permissions=(Permission(token_address, "transfer(address,uint256)"),),
        token_caps=(TokenCap(token_address, 50 * USDC),),
        gas_budget=10**17,
    )
    owner.grant(policy)
    say(f"session {policy.session_id.hex()[:16]}… for key {agent_key.address}")
    agent = SessionAgent(w3, owner.address, agent_key, policy)

    step("The agent pays 20 USDC with a user operation signed by its session key")
    result = agent.send_user_op([transfer(20 * USDC)], bundler=bundler)
    say(f"succeeded: {result.success}; recipient has {usdc(recipient.address)}")

    step("The agent pays 25 USDC with a transaction from its own address (it pays its gas)")
    chain.send({"to": agent_key.address, "value": 10**17}, minter)
    agent.send_direct([transfer(25 * USDC)])
    say(f"recipient has {usdc(recipient.address)}")

    def refused(title: str, action: Callable[[], object]) -> bool:
        try:
            action()
        except SmartKeysError as exc:
            say(f"refused as expected: {exc}")
            return True
        say(f"NOT refused: {title}")
        return False

    ok = True
    step("The agent tries to pay 10 USDC more: only 5 USDC of its cap is left")
    ok &= refused("over cap", lambda: agent.send_direct([transfer(10 * USDC)]))

    step("The agent tries to call approve(), which its policy does not allow")
    ok &= refused(
        "approve",
        lambda: agent.send_direct([Call(token_address, 0, token.encode_abi("approve", [recipient.address, 1]))]),
    )

    step("The owner checks the session and revokes it")
    status = session_status(w3, owner.address, policy.session_id)
    spent = owner.contract.functions.sessionLedger(policy.session_id, token_address).call()[0]
    say(f"live={status['live']} uses={status['uses']} spent={spent / USDC:,.2f} of 50.00 USDC")
    receipt = owner.revoke(policy.session_id)
    say(f"revoked ({receipt['gasUsed']:,} gas)")

    step("The revoked key tries again")
    ok &= refused("after revoke", lambda: agent.send_direct([transfer(1 * USDC)]))

    say("")
    say(f"done in {time.perf_counter() - started:.1f} s" + ("" if ok else " — SOME CHECKS FAILED"))
    chain.close()
    return 0 if ok else 1
