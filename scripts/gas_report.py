"""Gas figures of a smartkeys account, measured on a fresh embedded chain in one run, with ratios against
baselines measured in the same run.

Measured (every figure is one transaction's ``gasUsed``; for user operations also the EntryPoint's
``actualGasUsed`` from ``UserOperationEvent``):

* delegation: one EIP-7702 authorization + empty call, self-sponsored and sponsored;
* an ERC-20 transfer: from a plain EOA (baseline), by the owner directly (``Owner.execute``), as an owner user
  operation of a Simple7702Account (baseline) and of a smartkeys account (first op of the account, then
  steady state), as a session user operation (first op on the key's nonce lane, then steady state) and as a
  session key's direct transaction;
* session management: a grant (two allowlisted functions, one ERC-20 cap, a native cap, a window), revoking
  one session, revoking all (first and second time).

Fair comparison: every transfer moves the same amount of the same token to the same recipient, whose
balance is non-zero, from a sender with a non-zero balance; every measurement is its own transaction, so
the same addresses start cold. User operations are built the same way for both accounts (the ``Owner``
client: call gas = estimate + a fixed margin, the same verification and pre-verification gas), so neither
pays the EntryPoint's unused-gas penalty. Simple7702Account's ``execute(address,uint256,bytes)`` has the
same selector and the same raw-hash owner signature as smartkeys', so ``Owner`` drives it unchanged.

Usage: ``python scripts/gas_report.py [--json PATH]`` (from the repository root; a few seconds).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import smartkeys  # noqa: F401
except ImportError:  # running from a checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from smartkeys import artifacts
from smartkeys.account import DEFAULT_PRE_VERIFICATION_GAS, Call, Owner, SessionAgent
from smartkeys.entrypoint import UserOpResult
from smartkeys.localchain import SIMPLE7702_ADDRESS, LocalChain, start_local_chain
from smartkeys.policy_codec import Permission, SessionPolicy, TokenCap, selector_of

AMOUNT = 1_000_000  # 1 USDC (6 decimals), the same for every transfer
MINT = 10**12
ONE_DAY = 86_400


@dataclass(frozen=True)
class Row:
    """One line of the table: a figure for a transaction, and the EntryPoint's figure for a user operation."""

    key: str
    label: str
    has_actual: bool = False


ROWS = (
    Row("delegation_self_sponsored", "delegation, self-sponsored (1 authorization + empty call)"),
    Row("delegation_sponsored", "delegation, sponsored (1 authorization + empty call)"),
    Row("eoa_erc20_transfer", "ERC-20 transfer, plain EOA"),
    Row("owner_direct_erc20_transfer", "ERC-20 transfer, owner direct (execute)"),
    Row("simple7702_op_first", "ERC-20 user op, Simple7702Account, first op", True),
    Row("simple7702_op_steady", "ERC-20 user op, Simple7702Account, steady state", True),
    Row("owner_op_first", "ERC-20 user op, smartkeys owner, first op", True),
    Row("owner_op_steady", "ERC-20 user op, smartkeys owner, steady state", True),
    Row("grant", "grant (2 functions, 1 ERC-20 cap, native cap, window)"),
    Row("session_op_first", "ERC-20 user op, session, first op on the key's lane", True),
    Row("session_op_steady", "ERC-20 user op, session, steady state", True),
    Row("session_direct_erc20_transfer", "ERC-20 transfer, session key direct tx"),
    Row("revoke_one", "revoke one session"),
    Row("revoke_all_first", "revoke all, first (epoch 0 -> 1)"),
    Row("revoke_all_second", "revoke all, second (epoch 1 -> 2)"),
)

#: name -> (numerator figure, denominator figure)
RATIOS: dict[str, tuple[str, str]] = {
    "delegation_sponsored_vs_self_sponsored": ("delegation_sponsored", "delegation_self_sponsored"),
    "owner_direct_vs_eoa": ("owner_direct_erc20_transfer", "eoa_erc20_transfer"),
    "owner_op_first_vs_simple7702_first_bundle": ("owner_op_first_bundle", "simple7702_op_first_bundle"),
    "owner_op_first_vs_simple7702_first_actual": ("owner_op_first_actual", "simple7702_op_first_actual"),
    "owner_op_steady_vs_simple7702_steady_bundle": ("owner_op_steady_bundle", "simple7702_op_steady_bundle"),
    "owner_op_steady_vs_simple7702_steady_actual": ("owner_op_steady_actual", "simple7702_op_steady_actual"),
    "session_op_first_vs_simple7702_first_bundle": ("session_op_first_bundle", "simple7702_op_first_bundle"),
    "session_op_first_vs_simple7702_first_actual": ("session_op_first_actual", "simple7702_op_first_actual"),
    "session_op_steady_vs_simple7702_steady_bundle": ("session_op_steady_bundle", "simple7702_op_steady_bundle"),
    "session_op_steady_vs_simple7702_steady_actual": ("session_op_steady_actual", "simple7702_op_steady_actual"),
    "session_op_steady_vs_owner_op_steady_actual": ("session_op_steady_actual", "owner_op_steady_actual"),
    "session_direct_vs_eoa": ("session_direct_erc20_transfer", "eoa_erc20_transfer"),
    "session_direct_vs_owner_direct": ("session_direct_erc20_transfer", "owner_direct_erc20_transfer"),
}


def _gas(receipt: Any) -> int:
    return int(receipt["gasUsed"])


def _last_receipt(chain: LocalChain) -> Any:
    """Receipt of the latest block's transaction (the embedded chain mines one transaction per block)."""
    (tx_hash,) = chain.w3.eth.get_block("latest")["transactions"]
    return chain.w3.eth.get_transaction_receipt(tx_hash)


def _op(figures: dict[str, int], key: str, result: UserOpResult) -> None:
    figures[f"{key}_bundle"] = result.bundle_gas_used
    figures[f"{key}_actual"] = result.actual_gas_used


def measure(chain: LocalChain) -> dict[str, int]:
    """Run every measurement on ``chain`` (fresh) and return the figures by name."""
    w3 = chain.w3
    acc = chain.accounts
    bundler, sponsor, eoa, session_key, minter, recipient = acc[0], acc[3], acc[5], acc[6], acc[8], acc[9]
    figures: dict[str, int] = {}

    # -- delegation -------------------------------------------------------------------------------------
    owner = Owner(w3, acc[1])
    figures["delegation_self_sponsored"] = _gas(owner.delegate())
    figures["delegation_sponsored"] = _gas(Owner(w3, acc[2]).delegate(sponsor=sponsor))
    simple = Owner(w3, acc[4], implementation=SIMPLE7702_ADDRESS)
    simple.delegate()

    # -- token: every sender and the recipient hold a non-zero balance ----------------------------------
    token_abi = artifacts.load("test/MockERC20")["abi"]
    token = w3.eth.contract(
        address=chain.deploy_create2("test/MockERC20", 1, ["USD Coin", "USDC", 6]), abi=token_abi
    )
    for holder in (owner.address, simple.address, eoa.address, recipient.address):
        chain.send({"to": token.address, "data": token.encode_abi("mint", [holder, MINT])}, minter)
    transfer = Call(token.address, 0, token.encode_abi("transfer", [recipient.address, AMOUNT]))

    # -- plain ERC-20 transfers -------------------------------------------------------------------------
    figures["eoa_erc20_transfer"] = _gas(chain.send({"to": token.address, "data": transfer.data}, eoa))
    figures["owner_direct_erc20_transfer"] = _gas(owner.execute(transfer.target, transfer.value, transfer.data))

    # -- owner user operations (self-bundled) -----------------------------------------------------------
    _op(figures, "simple7702_op_first", simple.send_user_op([transfer], bundler=bundler))
    _op(figures, "simple7702_op_steady", simple.send_user_op([transfer], bundler=bundler))
    _op(figures, "owner_op_first", owner.send_user_op([transfer], bundler=bundler))
    _op(figures, "owner_op_steady", owner.send_user_op([transfer], bundler=bundler))

    # -- sessions ---------------------------------------------------------------------------------------
    policy = SessionPolicy(
        key=session_key.address,
        valid_after=0,
        valid_until=chain.time() + ONE_DAY,
        permissions=(
            Permission(token.address, selector_of("transfer(address,uint256)")),
            Permission(token.address, selector_of("approve(address,uint256)")),
        ),
        token_caps=(TokenCap(token.address, 100 * AMOUNT),),
        native_per_call=10**17,
        native_total=10**18,
        gas_budget=10**18,
    )
    session_id = owner.grant(policy)
    figures["grant"] = _gas(_last_receipt(chain))
    agent = SessionAgent(w3, owner.address, session_key, policy)
    _op(figures, "session_op_first", agent.send_user_op([transfer], bundler=bundler))
    _op(figures, "session_op_steady", agent.send_user_op([transfer], bundler=bundler))
    figures["session_direct_erc20_transfer"] = _gas(agent.send_direct([transfer]))

    figures["revoke_one"] = _gas(owner.revoke(session_id))
    figures["revoke_all_first"] = _gas(owner.revoke_all())
    figures["revoke_all_second"] = _gas(owner.revoke_all())
    return figures


def ratios(figures: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Every ratio of :data:`RATIOS`, rounded to 4 decimals, with the figures it is computed from."""
    return {
        name: {"numerator": num, "denominator": den, "value": round(figures[num] / figures[den], 4)}
        for name, (num, den) in RATIOS.items()
    }


def table(figures: dict[str, int], ratio_values: dict[str, dict[str, Any]]) -> str:
    width = max(len(r.label) for r in ROWS) + 2
    lines = [f"{'measurement':<{width}}{'tx gasUsed':>12}{'EP actualGasUsed':>18}", "-" * (width + 30)]
    for row in ROWS:
        if row.has_actual:
            tx, actual = figures[f"{row.key}_bundle"], f"{figures[f'{row.key}_actual']:,}"
        else:
            tx, actual = figures[row.key], ""
        lines.append(f"{row.label:<{width}}{tx:>12,}{actual:>18}")
    lines += [
        "",
        "tx gasUsed: the whole transaction (for a user op, the handleOps bundle holding only that op).",
        "EP actualGasUsed: what the EntryPoint charged the op: its validation and execution gas plus",
        f"preVerificationGas ({DEFAULT_PRE_VERIFICATION_GAS:,} here), without the bundle's intrinsic and calldata gas.",
    ]
    lines += ["", f"{'ratio':<{width + 12}}{'value':>18}", "-" * (width + 30)]
    for name, r in ratio_values.items():
        lines.append(f"{name:<{width + 12}}{r['value']:>17.3f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write the figures and ratios as JSON")
    args = parser.parse_args(argv)

    chain = start_local_chain()
    try:
        figures = measure(chain)
        header = f"smartkeys gas report: fresh {chain.backend} chain (id {chain.chain_id}), one run"
    finally:
        chain.close()
    ratio_values = ratios(figures)
    print(header)
    print()
    print(table(figures, ratio_values))
    if args.json is not None:
        args.json.write_text(json.dumps({"figures": figures, "ratios": ratio_values}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
