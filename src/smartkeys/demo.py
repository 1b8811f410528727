"""``smartkeys demo``: the whole story on an embedded chain, in readable steps.

No node, no compiler, no network: the chain runs in-process (eth-tester) with EntryPoint v0.8 and the
smartkeys account at their canonical addresses.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from typing import Any, TextIO

from eth_account import Account

from smartkeys import artifacts
from smartkeys.account import Call, Owner, SessionAgent, amount_fields, build_session_report
from smartkeys.argument_rules import ArgumentRule, RuleOp
from smartkeys.audit import AuditReport, build_audit
from smartkeys.deployments import ENTRY_POINT_V08, account_address
from smartkeys.errors import SmartKeysError, TransactionFailedError, register_contract_errors
from smartkeys.journal import RefusalJournal
from smartkeys.outbox import Outbox
from smartkeys.policy_codec import Permission, SessionPolicy, TokenCap
from smartkeys.preflight import read_session_state

__all__ = ["run_demo"]

USDC = 10**6


def _audit_table(report: AuditReport) -> list[str]:
    """A short table: one row per session and budget (spent, remaining, flags)."""
    rows = [("key", "status", "uses", "budget", "spent", "remaining", "flags")]
    for s in report.sessions:
        uses = f"{s.uses}/{s.max_uses}" if s.max_uses else str(s.uses)
        for a in s.assets:
            if a.cap == 0 or a.asset == "gas":
                continue
            flags = ", ".join(sorted({f.code for f in s.flags if f.asset in (a.asset, None, "uses")})) or "-"
            name = "native" if a.asset == "native" else report.tokens.get(a.asset, (a.asset[:10],))[0]
            rows.append((s.key[:10] + "…", s.status, uses, name, report.format_amount(a.asset, a.spent),
                         report.format_amount(a.asset, a.remaining), flags))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=False)).rstrip() for r in rows]


def _json_value(value: Any) -> Any:
    """An error field as JSON: integers as decimal strings (exact, as every report gives amounts), bytes as
    0x hex, addresses and text as they are."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return value if value is None or isinstance(value, str) else str(value)


def _hex(value: bytes | None) -> str | None:
    return None if value is None else "0x" + bytes(value).hex()


def run_demo(out: TextIO, *, color: bool = False, record: dict[str, Any] | None = None) -> int:
    """Run the demo, writing the story to ``out``. Returns 0 on success, 1 when a check failed.

    ``record`` (a dict, filled in place; ``smartkeys --json demo`` prints it) receives the story as data:
    ``chain_id``, ``entry_point``, ``implementation``, ``token`` (address, symbol, decimals), ``account``
    (the owner's delegated EOA), ``session_id`` (0x hex), ``key`` (the agent's address), ``steps`` (one per
    action of the agent: ``step`` name, ``outcome`` "allowed" | "refused", ``via`` "user_op" | "direct" for
    what ran, "preflight" for a refusal before signing, ``error`` (the contract error's name, refusals only),
    ``values`` (the error's fields, or the payment's ``to`` and ``amount``; amounts as decimal strings in
    base units with ``*_text`` twins), ``text`` (the sentence printed), ``tx`` and ``user_op_hash`` (0x hex
    or None)), ``audit_refusals`` (the journal's entries: ``error``, ``note``), ``status`` (the session after
    its revocation, in the model of ``smartkeys status --json``: :meth:`smartkeys.account.SessionReport.to_dict`)
    and ``checks_passed`` (bool).
    """
    from smartkeys.localchain import start_local_chain

    facts: dict[str, Any] = record if record is not None else {}
    steps: list[dict[str, Any]] = facts.setdefault("steps", [])

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
    stranger = chain.accounts[4]

    token_address = chain.deploy_create2("test/MockERC20", 1, ["USD Coin", "USDC", 6])
    token = w3.eth.contract(address=token_address, abi=artifacts.load("test/MockERC20")["abi"])
    register_contract_errors(token.abi)
    chain.send({"to": token_address, "data": token.encode_abi("mint", [owner_eoa.address, 1_000 * USDC])}, minter)
    say(f"test token USDC     {token_address} (the owner holds 1,000 USDC)")
    tokens: dict[str, tuple[str, int]] = {token_address: ("USDC", 6)}
    facts.update(chain_id=chain.chain_id, entry_point=ENTRY_POINT_V08, implementation=account_address(),
                 token={"address": token_address, "symbol": "USDC", "decimals": 6})

    def usdc(address: str) -> str:
        return f"{token.functions.balanceOf(address).call() / USDC:,.2f} USDC"

    step("Delegate the owner's EOA to the smartkeys account (EIP-7702, self-sponsored)")
    workdir = tempfile.TemporaryDirectory(prefix="smartkeys-demo-")
    # the demo's chain is thrown away at the end: so is its outbox (not the user's ~/.smartkeys one)
    outbox = Outbox(os.path.join(workdir.name, "outbox.jsonl"))
    owner = Owner(w3, owner_eoa, outbox=outbox)
    receipt = owner.delegate()
    say(f"owner {owner.address} now has code 0xef0100‖{owner.delegation()}")
    say(f"set-code transaction: {receipt['gasUsed']:,} gas")
    facts["account"] = owner.address

    step("The owner grants an agent a session key: USDC transfers to 'shop' only, 50 USDC in total, 7 days, 5 uses")
    agent_key = Account.create()
    # `where = { to = ["shop"] }` in a policy file: the recipient list is an argument rule the contract checks
    shop_only = ArgumentRule(0, RuleOp.ONE_OF, "address", (recipient.address,))
    policy = SessionPolicy(
        key=agent_key.address,
        valid_after=0,
        valid_until=chain.time() + 7 * 86_400,
        max_uses=5,
        permissions=(Permission(token_address, "transfer(address,uint256)", rules=(shop_only,)),),
        token_caps=(TokenCap(token_address, 50 * USDC),),
        gas_budget=10**17,
    )
    owner.grant(policy)
    say(f"session {policy.session_id.hex()[:16]}… for key {agent_key.address}")
    facts.update(session_id="0x" + policy.session_id.hex(), key=agent_key.address)
    journal = RefusalJournal(os.path.join(workdir.name, "refusals.jsonl"))
    agent = SessionAgent(w3, owner.address, agent_key, policy, journal=journal, outbox=outbox)
    agent.name_addresses({recipient.address: "shop"})  # the policy file's address book: refusals use the names
    say(f"recipient list: shop = {recipient.address}")
    say("the agent's SDK records every refusal in a journal (here a temporary file)")

    def allowed(name: str, text: str, receipt: Any, amount: int) -> None:
        line = f"{text}: succeeded: {receipt.success}"
        say(line)
        steps.append({"step": name, "outcome": "allowed" if receipt.success else "failed", "via": receipt.path,
                      "error": None, "values": {"to": recipient.address,
                                                **amount_fields("amount", token_address, amount, tokens)},
                      "text": line, "tx": _hex(receipt.transaction_hash), "user_op_hash": _hex(receipt.user_op_hash)})

    step("The agent works within its limits")
    receipt = agent.transfer(token_address, recipient.address, 20 * USDC, via="user_op", bundler=bundler)
    allowed("pay-user-op", "pays 20 USDC with a user operation signed by its session key", receipt, 20 * USDC)
    chain.send({"to": agent_key.address, "value": 10**17}, minter)
    receipt = agent.transfer(token_address, recipient.address, 25 * USDC, via="direct")
    allowed("pay-direct", "pays 25 USDC with a transaction from its own address", receipt, 25 * USDC)
    say(f"shop has {usdc(recipient.address)}")

    def refused(title: str, action: Callable[[], object]) -> bool:
        try:
            action()
        except SmartKeysError as exc:  # its text is in the policy's units (SessionAgent.humanize)
            cause = getattr(exc, "revert", None) or exc  # a mined, failed transaction: the account's own error
            name = getattr(cause, "name", type(exc).__name__)
            say(f"refused as expected ({name}): {exc}")
            args = getattr(cause, "args", None)  # a contract error: its fields by ABI name
            fields: dict[str, Any] = args if isinstance(args, dict) else {}
            # refused by the chain (a mined transaction that reverted) or by the SDK before anything was signed
            mined = exc.tx_hash if isinstance(exc, TransactionFailedError) else None
            steps.append({"step": title, "outcome": "refused", "via": "preflight" if mined is None else "direct",
                          "error": name, "values": {k: _json_value(v) for k, v in fields.items()},
                          "text": str(exc), "tx": _json_value(mined), "user_op_hash": None})
            return True
        say(f"NOT refused: {title}")
        steps.append({"step": title, "outcome": "allowed", "via": None, "error": None, "values": {},
                      "text": f"NOT refused: {title}", "tx": None, "user_op_hash": None})
        return False

    ok = True
    step("The agent goes beyond its limits: refused before anything is signed, and by the chain itself")
    say("pay 10 USDC more (only 5 USDC of its cap is left):")
    ok &= refused("over-cap", lambda: agent.transfer(token_address, recipient.address, 10 * USDC, via="direct"))
    say("call approve(), which its policy does not allow:")
    approve = token.encode_abi("approve", [recipient.address, 1])
    ok &= refused("approve", lambda: agent.call(token_address, approve, via="direct"))
    say(f"pay 1 USDC to {stranger.address}, who is not on its recipient list:")
    ok &= refused("recipient-list", lambda: agent.transfer(token_address, stranger.address, 1 * USDC, via="direct"))
    say("the same payment sent without the SDK's check (a compromised agent): the account itself refuses it")
    to_stranger = Call(token_address, 0, token.encode_abi("transfer", [stranger.address, 1 * USDC]))
    ok &= refused("recipient-list-on-chain", lambda: agent.send_direct([to_stranger], gas=300_000))
    say(f"{stranger.address[:10]}… has {usdc(stranger.address)}; the session spent nothing for it")
    ok &= token.functions.balanceOf(stranger.address).call() == 0

    step("The owner audits the key: from the chain's events, plus the agent's refusal journal")
    report = build_audit(w3, owner.address, journal=journal, names={recipient.address: "shop"})
    for line in _audit_table(report):
        say(line)
    for entry in report.refusals:
        say(f"refusal: {entry.note}")
    ok &= bool(report.refusals) and len(report.refusals) == 4
    facts["audit_refusals"] = [{"error": e.refusal.error if e.refusal else None, "note": e.note}
                               for e in report.refusals]

    step("The owner revokes the key")
    receipt = owner.revoke(policy.session_id)
    say(f"revoked ({receipt['gasUsed']:,} gas); status now: {build_audit(w3, owner.address).session(policy.session_id).status}")

    step("The revoked key tries again")
    ok &= refused("after-revoke", lambda: agent.transfer(token_address, recipient.address, 1 * USDC, via="direct"))
    workdir.cleanup()
    now = int(w3.eth.get_block("latest")["timestamp"])
    facts["status"] = build_session_report(policy, read_session_state(w3, owner.address, policy), now).to_dict(
        tokens, {recipient.address: "shop"})
    facts["checks_passed"] = bool(ok)

    say("")
    say(f"done in {time.perf_counter() - started:.1f} s" + ("" if ok else " — SOME CHECKS FAILED"))
    chain.close()
    return 0 if ok else 1
