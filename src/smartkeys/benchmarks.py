"""Benchmark scenarios: gas figures, Python throughput and end-to-end latency, measured side by side.

One implementation for ``scripts/bench.py`` (every figure, ``bench/results.json``), ``scripts/gas_report.py``
(gas only), ``scripts/bench_sign.py``, ``scripts/bench_preflight.py`` and the gas-snapshot regression test
(``tests/integration/test_gas_snapshot.py``). Figures have flat dotted names:

* ``gas.<scenario>[.<account>]``: one transaction's ``gasUsed``; for a user operation ``gas.<...>`` is the
  ``handleOps`` bundle holding only that op and ``gas.<...>.actual`` the EntryPoint's ``actualGasUsed``
  (``UserOperationEvent``: validation + execution + preVerificationGas, without the bundle's intrinsic and
  calldata gas). ``_first`` scenarios are the account's (or the key's nonce lane's) first op; the others are
  steady state (nonce already non-zero).
* ``ratio.<a>_vs_<b>``: two figures of the same run (:data:`RATIOS`).
* ``delta.<a>_vs_<b>``: gas of one figure minus another of the same run (:data:`DELTAS`), e.g. what argument
  rules add to the same session use without them.
* ``py.<what>_per_s``: Python throughput on one core (best round; ``.median`` alongside).
* ``e2e.grant_use_revoke_s.<chain>``: wall-clock seconds for grant + one session ERC-20 transfer as a
  self-bundled user op (with the agent's preflight) + revoke, on an already delegated account.

Fairness of the gas figures: every transfer moves the same amount of the same token to the same recipient,
whose balance is non-zero, from a sender with a non-zero balance; every measurement is its own transaction,
so the same addresses start cold. User operations are built the same way for both accounts (the ``Owner``
client: call gas = estimate + a fixed margin, the same verification and pre-verification gas), so neither
pays the EntryPoint's unused-gas penalty. Simple7702Account's ``execute(address,uint256,bytes)`` has the same
selector and the same raw-hash owner signature as smartkeys', so ``Owner`` drives it unchanged.

Determinism: the gas scenarios pin the chain clock (:data:`FIXED_START_TIMESTAMP`) and use fixed keys, so on
eth-tester every input (timestamps, base fees, signatures, hence calldata bytes) is the same from run to run
and so is every gas figure: that is what ``bench/gas-snapshot.json`` records and
:func:`compare_gas_snapshot` checks.
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

__all__ = [
    "DELTAS",
    "GAS_TOLERANCE",
    "PEERS",
    "RATIOS",
    "SNAPSHOT_UPDATE_HINT",
    "TARGETS",
    "GasComparison",
    "Target",
    "Timing",
    "compare_gas_snapshot",
    "deltas",
    "e2e_grant_use_revoke",
    "max_allowed",
    "measure_gas",
    "preflight_rates",
    "ratios",
    "sign_rates",
    "timed_rate",
    "unit_of",
]

AMOUNT = 1_000_000  # 1 USDC (6 decimals), the same for every transfer
MINT = 10**12
ONE_DAY = 86_400
FIXED_START_TIMESTAMP = 1_900_000_000
"""The gas scenarios' first block time (2030): later than any wall clock here, so blocks then follow at +1 s."""

GAS_TOLERANCE = Fraction(1, 100)
"""A gas figure may grow by at most this fraction of its snapshot value: exactly +1 % passes (rounded down to
whole gas), one gas more fails."""

SNAPSHOT_UPDATE_HINT = "python scripts/bench.py --gas-only --update-snapshot"

#: name -> (numerator, denominator); both figures come from the same run
RATIOS: dict[str, tuple[str, str]] = {
    "ratio.session_userop_vs_simple7702_owner": (
        "gas.session_erc20_userop.smartkeys", "gas.owner_erc20_userop.simple7702"),
    "ratio.session_userop_vs_simple7702_owner.actual": (
        "gas.session_erc20_userop.smartkeys.actual", "gas.owner_erc20_userop.simple7702.actual"),
    "ratio.session_userop_first_vs_simple7702_owner_first": (
        "gas.session_erc20_userop_first.smartkeys", "gas.owner_erc20_userop_first.simple7702"),
    "ratio.session_userop_vs_smartkeys_owner.actual": (
        "gas.session_erc20_userop.smartkeys.actual", "gas.owner_erc20_userop.smartkeys.actual"),
    "ratio.owner_userop_vs_simple7702_owner": (
        "gas.owner_erc20_userop.smartkeys", "gas.owner_erc20_userop.simple7702"),
    "ratio.owner_userop_vs_simple7702_owner.actual": (
        "gas.owner_erc20_userop.smartkeys.actual", "gas.owner_erc20_userop.simple7702.actual"),
    "ratio.session_direct_vs_plain_eoa": ("gas.session_erc20_direct.smartkeys", "gas.plain_eoa_erc20"),
    "ratio.session_direct_vs_owner_direct": (
        "gas.session_erc20_direct.smartkeys", "gas.owner_erc20_direct.smartkeys"),
    "ratio.owner_direct_vs_plain_eoa": ("gas.owner_erc20_direct.smartkeys", "gas.plain_eoa_erc20"),
    "ratio.owner_direct_vs_simple7702_direct": (
        "gas.owner_erc20_direct.smartkeys", "gas.owner_erc20_direct.simple7702"),
    "ratio.delegate_sponsored_vs_self": ("gas.delegate.sponsored", "gas.delegate"),
    "ratio.userops_signed_vs_raw_sign": ("py.userops_signed_per_s", "py.raw_sign_per_s"),
    "ratio.session_userop_rules3_vs_no_rules": (
        "gas.session_erc20_userop.rules3", "gas.session_erc20_userop.smartkeys"),
    "ratio.session_userop_rules16_vs_no_rules": (
        "gas.session_erc20_userop.rules16", "gas.session_erc20_userop.smartkeys"),
}

#: name -> (minuend, subtrahend): gas, both figures from the same run
DELTAS: dict[str, tuple[str, str]] = {
    "delta.session_userop_rules3_vs_no_rules": (
        "gas.session_erc20_userop.rules3", "gas.session_erc20_userop.smartkeys"),
    "delta.session_userop_rules16_vs_no_rules": (
        "gas.session_erc20_userop.rules16", "gas.session_erc20_userop.smartkeys"),
}


@dataclass(frozen=True)
class Target:
    """A goal (issues #7, #12): ``figure`` must be ``<=`` or ``>=`` ``value``.

    A ``delta.`` figure is a difference of two figures of the same run (:data:`DELTAS`), so its target holds
    whatever the baseline's own figure is in that run.
    """

    figure: str
    op: str  # "<=" or ">="
    value: float

    def met(self, measured: float) -> bool:
        return measured <= self.value if self.op == "<=" else measured >= self.value

    def __str__(self) -> str:
        if self.figure.startswith("ratio."):
            value = f"{self.value:.2f}x"
        elif self.figure.startswith("delta."):
            value = f"{self.value:+,.0f}"
        else:
            value = f"{self.value:,.0f}"
        return f"{self.op} {value}"


TARGETS: tuple[Target, ...] = (
    Target("ratio.session_userop_vs_simple7702_owner", "<=", 1.15),
    Target("ratio.session_userop_vs_simple7702_owner.actual", "<=", 1.15),
    Target("ratio.session_direct_vs_plain_eoa", "<=", 1.35),
    Target("gas.grant_session", "<=", 100_000),
    # issue 12: argument rules cost at most +2,500 (3 recipients + amount bound) / +4,000 (16 recipients) gas
    # over the same session use without rules, measured in the same run
    Target("delta.session_userop_rules3_vs_no_rules", "<=", 2_500),
    Target("delta.session_userop_rules16_vs_no_rules", "<=", 4_000),
    Target("gas.revoke_session", "<=", 30_000),
    Target("gas.revoke_all", "<=", 30_000),
    Target("gas.revoke_all.again", "<=", 30_000),
    Target("py.userops_signed_per_s", ">=", 5_000),
    Target("py.preflight_checks_per_s", ">=", 100_000),
)

#: figure -> published figures of the strongest peers (design brief, "Numbers to beat"); gas
PEERS: dict[str, str] = {
    "gas.session_erc20_userop.smartkeys": "Porto 193,658; Alchemy MA v2 197,295; MetaMask delegation 327,523",
    "gas.grant_session": "Alchemy MA v2 495,041-531,166; Coinbase spend permission approve 48,857",
    "gas.revoke_session": "MetaMask 536,963 (disable delegation); Coinbase 86,887",
    "gas.owner_erc20_userop.simple7702": "anvil 1.7.1 / OZ ERC-20 baseline: 94,216 (actualGasUsed 108,831)",
    "gas.plain_eoa_erc20": "anvil 1.7.1 / OZ ERC-20 baseline: 34,513",
}


def unit_of(figure: str) -> str:
    """The unit of a figure, from its name."""
    if figure.startswith(("gas.", "delta.")):
        return "gas"
    if figure.startswith("ratio."):
        return "x"
    if figure.startswith("e2e."):
        return "s"
    if figure.startswith("py.preflight"):
        return "checks/s"
    return "ops/s"


def ratios(figures: Mapping[str, float]) -> dict[str, float]:
    """Every ratio of :data:`RATIOS` whose two figures are present, rounded to 4 decimals."""
    return {
        name: round(figures[num] / figures[den], 4)
        for name, (num, den) in RATIOS.items()
        if num in figures and den in figures
    }


def _progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def deltas(figures: Mapping[str, float]) -> dict[str, int]:
    """Every difference of :data:`DELTAS` whose two figures are present, in gas (may be negative)."""
    return {
        name: int(figures[a]) - int(figures[b])
        for name, (a, b) in DELTAS.items()
        if a in figures and b in figures
    }


# --------------------------------------------------------------------------- gas scenarios


def measure_gas(chain: Any, *, progress: Callable[[str], None] | None = None) -> dict[str, int]:
    """Run every gas scenario on ``chain`` (a fresh :class:`smartkeys.localchain.LocalChain`); figures by name."""
    from smartkeys import artifacts
    from smartkeys.account import Call, Owner, SessionAgent
    from smartkeys.argument_rules import ArgumentRule, RuleOp
    from smartkeys.entrypoint import UserOpResult
    from smartkeys.localchain import SIMPLE7702_ADDRESS
    from smartkeys.policy_codec import Permission, SessionPolicy, TokenCap, selector_of

    say = progress or (lambda _m: None)
    w3 = chain.w3
    acc = chain.accounts
    bundler, sponsor, eoa, session_key, minter, recipient = acc[0], acc[3], acc[5], acc[6], acc[8], acc[9]
    figures: dict[str, int] = {}

    def gas(receipt: Any) -> int:
        return int(receipt["gasUsed"])

    def last_receipt() -> Any:
        (tx_hash,) = w3.eth.get_block("latest")["transactions"]  # automine: one transaction per block
        return w3.eth.get_transaction_receipt(tx_hash)

    def op(key: str, result: UserOpResult) -> None:
        figures[key] = result.bundle_gas_used
        figures[f"{key}.actual"] = result.actual_gas_used

    if chain.time() < FIXED_START_TIMESTAMP:
        chain.set_next_block_timestamp(FIXED_START_TIMESTAMP)

    say("gas: delegations")
    owner = Owner(w3, acc[1])
    figures["gas.delegate"] = gas(owner.delegate())
    figures["gas.delegate.sponsored"] = gas(Owner(w3, acc[2]).delegate(sponsor=sponsor))
    # the reference account, audited upstream (eth-infinitism): not a smartkeys deployment, so opted in by name
    simple = Owner(w3, acc[4], implementation=SIMPLE7702_ADDRESS, dangerously_allow_unknown_implementation=True)
    simple.delegate()

    # every sender and the recipient hold a non-zero balance of the token
    token = w3.eth.contract(
        address=chain.deploy_create2("test/MockERC20", 1, ["USD Coin", "USDC", 6]),
        abi=artifacts.load("test/MockERC20")["abi"],
    )
    for holder in (owner.address, simple.address, eoa.address, recipient.address):
        chain.send({"to": token.address, "data": token.encode_abi("mint", [holder, MINT])}, minter)
    transfer = Call(token.address, 0, token.encode_abi("transfer", [recipient.address, AMOUNT]))

    say("gas: direct ERC-20 transfers")
    figures["gas.plain_eoa_erc20"] = gas(chain.send({"to": token.address, "data": transfer.data}, eoa))
    figures["gas.owner_erc20_direct.simple7702"] = gas(simple.execute(transfer.target, 0, transfer.data))
    figures["gas.owner_erc20_direct.smartkeys"] = gas(owner.execute(transfer.target, 0, transfer.data))

    say("gas: owner user operations")
    op("gas.owner_erc20_userop_first.simple7702", simple.send_user_op([transfer], bundler=bundler))
    op("gas.owner_erc20_userop.simple7702", simple.send_user_op([transfer], bundler=bundler))
    op("gas.owner_erc20_userop_first.smartkeys", owner.send_user_op([transfer], bundler=bundler))
    op("gas.owner_erc20_userop.smartkeys", owner.send_user_op([transfer], bundler=bundler))

    say("gas: grant, session use, revoke")
    policy = SessionPolicy(
        key=session_key.address,
        valid_after=0,
        valid_until=FIXED_START_TIMESTAMP + 30 * ONE_DAY,
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
    figures["gas.grant_session"] = gas(last_receipt())
    agent = SessionAgent(w3, owner.address, session_key, policy)
    op("gas.session_erc20_userop_first.smartkeys", agent.send_user_op([transfer], bundler=bundler))
    op("gas.session_erc20_userop.smartkeys", agent.send_user_op([transfer], bundler=bundler))
    figures["gas.session_erc20_direct.smartkeys"] = gas(agent.send_direct([transfer]))

    # The same (second) session use under argument rules: a 3-recipient list plus an amount bound, and a
    # 16-recipient list; the real recipient is listed last (the scan's worst case).
    say("gas: session use under argument rules")
    fillers = [w3.to_checksum_address(f"0x{0xA000 + i:040x}") for i in range(15)]
    transfer_sel = selector_of("transfer(address,uint256)")
    for name, rules in (
        ("rules3", (ArgumentRule(0, RuleOp.ONE_OF, "address", (*fillers[:2], recipient.address)),
                    ArgumentRule(1, RuleOp.LE, "uint256", (100 * AMOUNT,)))),
        ("rules16", (ArgumentRule(0, RuleOp.ONE_OF, "address", (*fillers, recipient.address)),)),
    ):
        ruled = dataclasses.replace(policy, permissions=(Permission(token.address, transfer_sel, rules=rules),
                                                         *policy.permissions[1:]))
        owner.grant(ruled)
        ruled_agent = SessionAgent(w3, owner.address, session_key, ruled)
        ruled_agent.send_user_op([transfer], bundler=bundler)
        op(f"gas.session_erc20_userop.{name}", ruled_agent.send_user_op([transfer], bundler=bundler))

    # Rotation and renewal of a session like the one above (one token ledger): both copy the counters and
    # revoke the old id in one transaction.
    say("gas: rotate and renew a session")
    spare = dataclasses.replace(policy, salt=1)
    owner.grant(spare)
    rotated = owner.rotate_session(spare, w3.to_checksum_address("0x" + "5e" * 20))
    figures["gas.rotate_session"] = gas(last_receipt())
    owner.renew_session(rotated, valid_until=policy.valid_until + ONE_DAY)
    figures["gas.renew_session"] = gas(last_receipt())

    figures["gas.revoke_session"] = gas(owner.revoke(session_id))
    figures["gas.revoke_all"] = gas(owner.revoke_all())
    figures["gas.revoke_all.again"] = gas(owner.revoke_all())
    return figures


# --------------------------------------------------------------------------- gas snapshot


@dataclass(frozen=True)
class GasComparison:
    """Result of :func:`compare_gas_snapshot`: ``ok`` unless a figure grew too much, is missing or is new."""

    regressions: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (snapshot, measured)
    increases_within_tolerance: dict[str, tuple[int, int]] = field(default_factory=dict)
    decreases: dict[str, tuple[int, int]] = field(default_factory=dict)
    missing: tuple[str, ...] = ()  # in the snapshot, not measured
    extra: tuple[str, ...] = ()  # measured, not in the snapshot

    @property
    def ok(self) -> bool:
        return not (self.regressions or self.missing or self.extra)

    def report(self) -> str:
        """Human-readable lines: what failed, what improved, and how to update the snapshot."""
        lines = []
        for name, (old, new) in self.regressions.items():
            lines.append(f"REGRESSION {name}: {old:,} -> {new:,} gas (+{new - old:,}, {_pct(old, new)}; "
                         f"allowed +{float(GAS_TOLERANCE):.0%} = {max_allowed(old):,})")
        for name in self.missing:
            lines.append(f"MISSING {name}: in the snapshot but no longer measured")
        for name in self.extra:
            lines.append(f"NEW {name}: measured but not in the snapshot")
        for name, (old, new) in self.increases_within_tolerance.items():
            lines.append(f"within tolerance {name}: {old:,} -> {new:,} gas ({_pct(old, new)})")
        for name, (old, new) in self.decreases.items():
            lines.append(f"improved {name}: {old:,} -> {new:,} gas ({_pct(old, new)})")
        if not self.ok:
            lines.append(f"If the change is intended, update the snapshot: `{SNAPSHOT_UPDATE_HINT}` "
                         "(and commit bench/gas-snapshot.json).")
        elif self.decreases:
            lines.append(f"Gas went down: lock the gain in with `{SNAPSHOT_UPDATE_HINT}`.")
        return "\n".join(lines)


def _pct(old: int, new: int) -> str:
    return f"{(new - old) / old:+.2%}"


def max_allowed(snapshot_value: int) -> int:
    """The largest figure that still passes: ``floor(snapshot * (1 + GAS_TOLERANCE))``.

    >>> max_allowed(100_000), max_allowed(34_222)
    (101000, 34564)
    """
    return int(snapshot_value * (1 + GAS_TOLERANCE))  # Fraction: exact, int() floors a positive value


def compare_gas_snapshot(snapshot: Mapping[str, int], measured: Mapping[str, int]) -> GasComparison:
    """Compare measured gas figures with a snapshot (pure).

    A figure fails when it is above :func:`max_allowed` of its snapshot value (exactly +1 % passes, +1 % and
    one gas fails); decreases pass and are listed so the snapshot can be tightened; a figure only on one side
    fails (the scenario list changed: update the snapshot).
    """
    regressions, within, decreases = {}, {}, {}
    for name in sorted(set(snapshot) & set(measured)):
        old, new = int(snapshot[name]), int(measured[name])
        if new > max_allowed(old):
            regressions[name] = (old, new)
        elif new > old:
            within[name] = (old, new)
        elif new < old:
            decreases[name] = (old, new)
    return GasComparison(
        regressions=regressions,
        increases_within_tolerance=within,
        decreases=decreases,
        missing=tuple(sorted(set(snapshot) - set(measured))),
        extra=tuple(sorted(set(measured) - set(snapshot))),
    )


# --------------------------------------------------------------------------- timing


@dataclass(frozen=True)
class Timing:
    """Per-round results of a timed measurement: ``best`` and ``median`` over ``rounds``."""

    best: float
    median: float
    rounds: int


def timed_rate(fn: Callable[[int], Any], seconds: float, *, rounds: int = 5, warmup: int = 200) -> Timing:
    """Calls of ``fn(i)`` per second: ``warmup`` calls, then ``rounds`` rounds of ``seconds / rounds`` each."""
    for i in range(warmup):
        fn(i)
    per_round = seconds / rounds
    rates, count = [], warmup
    for _ in range(rounds):
        done, start = 0, time.perf_counter()
        while True:
            for _ in range(100):
                fn(count)
                count += 1
            done += 100
            elapsed = time.perf_counter() - start
            if elapsed >= per_round:
                break
        rates.append(done / elapsed)
    return Timing(max(rates), statistics.median(rates), rounds)


def sign_rates(seconds: float = 2.0, *, rounds: int = 5) -> dict[str, Timing]:
    """User-operation signing throughput: build + hash + sign (plain, with a 7702 initCode) and raw coincurve.

    ``build+hash+sign`` constructs a validated ``PackedUserOperation`` (fresh nonce and call data each time),
    computes its EntryPoint v0.8 ``userOpHash`` and signs it with a ``LocalAccount``; ``raw`` is
    ``coincurve.PrivateKey.sign_recoverable`` alone on a 32-byte digest, the ceiling.
    """
    import coincurve
    from eth_account import Account
    from eth_utils import keccak

    from smartkeys.localchain import SIMPLE7702_ADDRESS
    from smartkeys.userop import EIP7702_FACTORY, ENTRY_POINT_V08, PackedUserOperation, sign_user_op, user_op_hash

    chain_id = 31337
    secret = keccak(b"smartkeys bench throwaway key")  # fixed throwaway key, never printed
    account = Account.from_key(secret)
    call_data = bytes.fromhex("b61d27f6") + bytes(128)

    def build_hash_sign(i: int, factory: str | None = None) -> None:
        op = PackedUserOperation(
            sender=account.address, nonce=i, factory=factory, call_data=call_data + i.to_bytes(4, "big"),
            call_gas_limit=100_000, verification_gas_limit=150_000, pre_verification_gas=50_000,
            max_fee_per_gas=2_000_000_000, max_priority_fee_per_gas=1_000_000_000,
        )
        signed = sign_user_op(op, account, ENTRY_POINT_V08, chain_id, SIMPLE7702_ADDRESS if factory else None)
        assert len(signed.signature) == 65

    raw_key = coincurve.PrivateKey(secret)
    digest = user_op_hash(PackedUserOperation(sender=account.address), ENTRY_POINT_V08, chain_id)
    return {
        "py.userops_signed_per_s": timed_rate(build_hash_sign, seconds, rounds=rounds),
        "py.userops_signed_per_s.7702_init_code": timed_rate(
            lambda i: build_hash_sign(i, EIP7702_FACTORY), seconds, rounds=rounds),
        "py.raw_sign_per_s": timed_rate(lambda _i: raw_key.sign_recoverable(digest, hasher=None), seconds,
                                        rounds=rounds),
    }


def preflight_rates(seconds: float = 1.0, *, rounds: int = 5) -> dict[str, Timing]:
    """Offline :func:`smartkeys.preflight.preflight` throughput.

    ``py.preflight_checks_per_s`` is one ``transfer(address,uint256)`` on a capped token (declared outflow,
    cumulative and periodic cap), direct path; ``.userop`` the same on the user-op path (gas budget, window),
    ``.batch3`` a token transfer + a native transfer + a wildcard call, ``.refusal`` a transfer above the cap
    (building the typed error included).
    """
    from eth_abi import encode

    from smartkeys.account import Call
    from smartkeys.errors import SmartKeysError
    from smartkeys.policy_codec import Permission, PermissionMode, SessionPolicy, TokenCap, selector_of
    from smartkeys.preflight import SessionState, preflight

    account, key, token = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "0x" + "11" * 20, "0x" + "22" * 20
    target, recipient, now = "0x" + "33" * 20, "0x" + "44" * 20, 1_750_000_000
    transfer = selector_of("transfer(address,uint256)")
    policy = SessionPolicy(
        key=key, valid_after=0, valid_until=now + ONE_DAY, max_uses=1000,
        native_per_call=10**18, native_total=10**19, native_period=3600, native_per_period=2 * 10**18,
        gas_budget=10**18,
        permissions=(Permission(token, transfer), Permission(recipient, mode=PermissionMode.EMPTY_CALLDATA),
                     Permission(target, mode=PermissionMode.ANY_SELECTOR)),
        token_caps=(TokenCap(token, 10**12, ONE_DAY, 10**11),),
    )
    state = SessionState.fresh(policy, account, now=now)
    one = [Call(token, 0, transfer + encode(["address", "uint256"], [recipient, 10**6]))]
    batch = one + [Call(recipient, 10**17, b""),
                   Call(target, 0, selector_of("ping(uint256)") + encode(["uint256"], [1]))]
    too_much = [Call(token, 0, transfer + encode(["address", "uint256"], [recipient, 10**13]))]

    def refused(_i: int) -> None:
        try:
            preflight(policy, state, too_much, now=now, via_user_op=False)
        except SmartKeysError:
            return
        raise AssertionError("expected a refusal")

    cases: dict[str, Callable[[int], Any]] = {
        "py.preflight_checks_per_s": lambda _i: preflight(policy, state, one, now=now, via_user_op=False),
        "py.preflight_checks_per_s.userop": lambda _i: preflight(
            policy, state, one, now=now, via_user_op=True, max_gas_cost=10**15),
        "py.preflight_checks_per_s.batch3": lambda _i: preflight(policy, state, batch, now=now, via_user_op=False),
        "py.preflight_checks_per_s.refusal": refused,
    }
    return {name: timed_rate(fn, seconds, rounds=rounds, warmup=500) for name, fn in cases.items()}


def e2e_grant_use_revoke(chain: Any, *, rounds: int = 5, progress: Callable[[str], None] | None = None) -> Timing:
    """Seconds for grant + one session ERC-20 transfer (self-bundled user op, agent preflight) + revoke.

    Setup (not timed): the owner delegates and the account holds the token. One untimed warm-up round, then
    ``rounds`` timed rounds, each with a new session key; ``best`` is the fastest round.
    """
    from eth_account import Account
    from eth_utils import keccak

    from smartkeys import artifacts
    from smartkeys.account import Owner, SessionAgent
    from smartkeys.policy_codec import Permission, SessionPolicy, TokenCap, selector_of

    say = progress or (lambda _m: None)
    w3, acc = chain.w3, chain.accounts
    bundler, minter, recipient = acc[0], acc[8], acc[9]
    owner = Owner(w3, acc[7])
    owner.delegate()
    token = w3.eth.contract(
        address=chain.deploy_create2("test/MockERC20", 2, ["USD Coin", "USDC", 6]),
        abi=artifacts.load("test/MockERC20")["abi"],
    )
    for holder in (owner.address, recipient.address):
        chain.send({"to": token.address, "data": token.encode_abi("mint", [holder, MINT])}, minter)

    def one_round(i: int) -> float:
        key = Account.from_key(keccak(f"smartkeys bench e2e key {i}".encode()))
        start = time.perf_counter()
        policy = SessionPolicy(
            key=key.address, valid_after=0, valid_until=chain.time() + ONE_DAY, max_uses=10,
            permissions=(Permission(token.address, selector_of("transfer(address,uint256)")),),
            token_caps=(TokenCap(token.address, 100 * AMOUNT),), gas_budget=10**17,
        )
        session_id = owner.grant(policy)
        agent = SessionAgent(w3, owner.address, key, policy)
        agent.transfer(token.address, recipient.address, AMOUNT, via="user_op", bundler=bundler)
        owner.revoke(session_id)
        return time.perf_counter() - start

    one_round(0)
    times = []
    for i in range(1, rounds + 1):
        times.append(one_round(i))
        say(f"e2e on {chain.backend}: round {i}/{rounds} {times[-1]:.3f} s")
    return Timing(min(times), statistics.median(times), rounds)
