"""Stateful property test: a session key's spend never exceeds what its grant allows, on either path.

A hypothesis ``RuleBasedStateMachine`` drives one embedded chain (started once for this module; every example
starts from the same snapshot). Rules grant sessions with random caps, windows, periods, use limits and gas
budgets, use them with random token transfers and native value via the direct path or a user operation, move
time, revoke one session, revoke all, and try to re-grant (always refused: a session id is granted once). A
Python model predicts the exact outcome of every step (success, or which custom error / EntryPoint code) and
the session's status and ledgers.

Three capped tokens are in every policy: USDC (a plain OpenZeppelin ERC-20), a fee-on-transfer token (1 % taken
from the sender on top) and a token whose ``transfer`` returns ``false``; and an ERC-20 token paymaster the
owner approved (it takes USDC in postOp), allowlisted by every policy, used at a normal or an absurd max fee.

Invariants after every step, for every session the run granted:
- the outflow actually observed on chain for every capped token, and of native value, is within its cap (the
  fee-on-transfer token is charged what left, fee included; the false-returning token never moves or charges);
- what the token paymaster took from the account is within what the gas budget allowed, at its rate;
- uses never exceed ``max_uses``;
- no use succeeded outside the window, after a revoke or after a revoke-all (checked where the use happens);
- ``sessionStatus`` and ``sessionLedger`` (token and periodic native) equal the model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from eth_account import Account
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from smartkeys.account import Call, Owner, SessionAgent, session_status
from smartkeys.errors import (
    FailedOp,
    FailedOpWithRevert,
    SmartKeysError,
    get_error_class,
    register_contract_errors,
)
from smartkeys.localchain import start_local_chain
from smartkeys.policy_codec import Permission, PermissionMode, SessionPolicy, TokenCap, selector_of

ZERO = "0x0000000000000000000000000000000000000000"
RECIPIENT = "0x000000000000000000000000000000000000bEEF"
SESSION_KEY = Account.from_key(b"\x5e" * 32)
TRANSFER = selector_of("transfer(address,uint256)")
TX_GAS = 3_000_000
VGL, CGL, PVG, MAX_FEE, TIP = 150_000, 300_000, 50_000, 10 * 10**9, 10**9
OP_COST = (VGL + CGL + PVG) * MAX_FEE
PM_VGL, PM_POST = 100_000, 100_000  # the token paymaster's gas limits
HUGE_FEE = 4_000 * 10**9  # the example: a key that bundles its own op at 4,000 gwei
PM_RATE = 3_000 * 10**6  # USDC base units the paymaster takes per ether of gas
FEE_BPS = 100
MAX_SESSIONS = 3
WALL_CLOCK_LEAD = 3_600


@dataclass
class Context:
    chain: Any
    owner: Owner
    token: Any
    fee_token: Any
    odd_token: Any
    paymaster: Any
    base: int


_CTX: Context | None = None


@pytest.fixture(scope="module", autouse=True)
def _module_chain():
    """One embedded chain for the whole module (hypothesis examples revert to its base snapshot)."""
    global _CTX
    chain = start_local_chain()
    owner = Owner(chain.w3, chain.accounts[1])
    owner.delegate()
    from smartkeys import artifacts

    def deployed(name, salt, args):
        address = chain.deploy_create2(name, salt, args)
        contract = chain.w3.eth.contract(address=address, abi=artifacts.load(name)["abi"])
        register_contract_errors(contract.abi)
        return contract

    minter = chain.accounts[8]
    token = deployed("test/MockERC20", 1, ["USD Coin", "USDC", 6])
    fee_token = deployed("test/FeeOnTransferToken", 2, [FEE_BPS])
    odd_token = deployed("test/OddReturnToken", 3, [])
    for t in (token, fee_token, odd_token):
        chain.send({"to": t.address, "data": t.encode_abi("mint", [owner.address, 10**12])}, minter)
        chain.send({"to": t.address, "data": t.encode_abi("mint", [RECIPIENT, 1])}, minter)
    chain.send({"to": odd_token.address, "data": odd_token.encode_abi("setMode", [1])}, minter)  # returns false
    paymaster = deployed("test/MockTokenPaymaster", 4, [token.address, PM_RATE])
    chain.send({"to": paymaster.address, "value": 10**20, "data": paymaster.encode_abi("deposit", [])},
               chain.accounts[6])
    owner.execute(token.address, 0, token.encode_abi("approve", [paymaster.address, 10**12]))
    chain.send({"to": SESSION_KEY.address, "value": 10**19}, chain.accounts[7])
    chain.send({"to": RECIPIENT, "value": 1}, chain.accounts[7])
    _CTX = Context(chain, owner, token, fee_token, odd_token, paymaster, chain.snapshot())
    yield _CTX
    _CTX = None
    chain.close()


# --------------------------------------------------------------------------- model


@dataclass
class Ledger:
    total: int = 0
    period_spent: int = 0
    index_plus_one: int = 0  # raw stored field: period index + 1 (0 = never written)

    def view(self) -> tuple[int, int, int]:
        return (self.total, self.period_spent, max(self.index_plus_one - 1, 0))


@dataclass
class Session:
    policy: SessionPolicy
    agent: SessionAgent
    word_epoch_plus_one: int = 0  # 0: never granted; else the grant's epoch + 1 (kept after a revoke)
    revoked: bool = False
    uses: int = 0
    native_spent: int = 0
    gas_spent: int = 0
    tokens: dict[str, Ledger] = field(default_factory=dict)  # capped token -> ledger
    native: Ledger = field(default_factory=Ledger)
    observed_out: dict[str, int] = field(default_factory=dict)  # capped token -> outflow seen on chain
    observed_native_out: int = 0
    paymaster_gas: int = 0  # gas budget charged by ops that went through the token paymaster

    def cap(self, token: str) -> TokenCap:
        return next(c for c in self.policy.token_caps if c.token == token)


def roll(ledger: Ledger, period: int, ts: int) -> Ledger:
    index = ts // period + 1
    if ledger.index_plus_one == index:
        return Ledger(ledger.total, ledger.period_spent, index)
    return Ledger(ledger.total, 0, index)


class Refused(Exception):
    """Model verdict: the step is refused with ``error`` (custom error name, or an AA code) at ``stage``."""

    def __init__(self, stage: str, error: str):
        super().__init__(stage, error)
        self.stage, self.error = stage, error


# --------------------------------------------------------------------------- machine


class SessionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        ctx = _CTX
        assert ctx is not None, "the module fixture starts the chain"
        self.chain = ctx.chain
        self.w3 = ctx.chain.w3
        self.owner = ctx.owner
        self.token = ctx.token
        self.tokens = {"usdc": ctx.token, "fee": ctx.fee_token, "odd": ctx.odd_token}
        self.paymaster = ctx.paymaster
        self.chain.revert(ctx.base)
        self.epoch = 0
        self.salt = 0
        self.sessions: list[Session] = []
        self.paymaster_taken = 0
        self.pending_ts: int | None = max(self.chain.time(), int(time.time())) + WALL_CLOCK_LEAD

    # -- time -----------------------------------------------------------------------

    def _stamp(self) -> int:
        """Fix the timestamp of the next block (the model needs to know it exactly).

        On the embedded chain a gas estimate runs in a child of the latest block whose timestamp is
        max(latest + 1, wall clock), not at ``set_next_block_timestamp``; so an empty block is mined at ts - 1
        first, and every example runs an hour ahead of the wall clock. Then estimate and block agree on ts.
        """
        ts = self.pending_ts if self.pending_ts is not None else self.chain.time() + 1
        if ts - 1 > self.chain.time():
            self.chain.set_next_block_timestamp(ts - 1)
            self.chain.mine()
        self.chain.set_next_block_timestamp(ts)
        self.pending_ts = ts
        return ts

    def _settle(self, ts: int) -> None:
        if self.chain.time() >= ts:  # a block was mined at ts
            self.pending_ts = None

    @rule(seconds=st.one_of(st.sampled_from([1, 30, 299, 301, 700]), st.integers(min_value=1, max_value=700)))
    def time_passes(self, seconds: int) -> None:
        base = self.pending_ts if self.pending_ts is not None else self.chain.time()
        self.pending_ts = base + seconds

    # -- owner actions --------------------------------------------------------------

    def _status_word_live(self, s: Session) -> bool:
        return not s.revoked and s.word_epoch_plus_one != 0 and s.word_epoch_plus_one == self.epoch + 1

    def _apply_grant(self, s: Session, ts: int) -> None:
        s.word_epoch_plus_one = self.epoch + 1
        for cap in s.policy.token_caps:
            s.tokens[cap.token] = Ledger(0, 0, ts // cap.period + 1 if cap.period else 1)
            s.observed_out[cap.token] = 0
        if s.policy.native_period:
            s.native = Ledger(0, 0, ts // s.policy.native_period + 1)

    def _grant(self, s: Session) -> None:
        ts = self._stamp()
        if s.policy.valid_until < ts:
            with pytest.raises(get_error_class("WindowAlreadyEnded")) as info:
                self.owner.grant(s.policy)
            assert (info.value.valid_until, info.value.timestamp) == (s.policy.valid_until, ts)
        else:
            self.owner.grant(s.policy)
            assert self.chain.time() == ts
            self._apply_grant(s, ts)
        self._settle(ts)

    # permissive values first: hypothesis leans towards the first element of sampled_from
    GRANT_ARGS = dict(
        after=st.sampled_from([None, 0, -100, 1, 150]),
        duration=st.sampled_from([2_000, 900, 300, 1]),
        max_uses=st.sampled_from([0, 0, 5, 1]),
        per_call=st.sampled_from([60, 60, 30, 0]),
        native_total=st.sampled_from([150, 150, 50, 0]),
        native_period=st.sampled_from([0, 60, 300]),
        native_per_period=st.sampled_from([100, 30]),
        token_cap=st.sampled_from([1_000, 1_000, 500, 0]),
        token_period=st.sampled_from([0, 60, 300]),
        token_per_period=st.sampled_from([600, 200]),
        gas_budget=st.sampled_from([10**18, 10**18, 3 * OP_COST, OP_COST, 0]),
    )

    @initialize(**GRANT_ARGS)
    def first_grant(self, **args) -> None:
        self.grant(**args)

    @precondition(lambda self: len(self.sessions) < MAX_SESSIONS)
    @rule(**GRANT_ARGS)
    def grant(self, after, duration, max_uses, per_call, native_total, native_period, native_per_period,
              token_cap, token_period, token_per_period, gas_budget) -> None:
        now = self.pending_ts if self.pending_ts is not None else self.chain.time() + 1
        valid_after = 0 if after is None else max(0, now + after)
        self.salt += 1
        per_period = token_per_period if token_period else 0
        policy = SessionPolicy(
            key=SESSION_KEY.address,
            valid_after=valid_after,
            valid_until=max(valid_after, now) + duration,
            permissions=(Permission(RECIPIENT, mode=PermissionMode.EMPTY_CALLDATA),)
            + tuple(Permission(t.address, TRANSFER) for t in self.tokens.values()),
            token_caps=tuple(TokenCap(t.address, token_cap, token_period, per_period) for t in self.tokens.values()),
            paymasters=(self.paymaster.address,),
            max_uses=max_uses,
            native_per_call=per_call,
            native_total=native_total,
            native_period=native_period,
            native_per_period=native_per_period if native_period else 0,
            gas_budget=gas_budget,
            salt=self.salt,
        )
        session = Session(policy, SessionAgent(self.w3, self.owner.address, SESSION_KEY, policy))
        self._grant(session)
        if session.word_epoch_plus_one:
            self.sessions.append(session)

    @precondition(lambda self: self.sessions)
    @rule(pick=st.integers(min_value=0, max_value=MAX_SESSIONS - 1))
    def regrant(self, pick: int) -> None:
        """A session id is granted once: re-granting (live, revoked or expired) is refused and resets nothing."""
        s = self.sessions[pick % len(self.sessions)]
        with pytest.raises(get_error_class("SessionAlreadyGranted")):
            self.owner.grant(s.policy)

    # Revocations end a session for good: ``act`` makes them rarer than uses, so that runs reach the caps too.
    @precondition(lambda self: self.sessions)
    @rule(pick=st.integers(min_value=0, max_value=MAX_SESSIONS - 1), act=st.sampled_from([False, False, True]))
    def revoke(self, pick: int, act: bool) -> None:
        if not act:
            return
        s = self.sessions[pick % len(self.sessions)]
        ts = self._stamp()
        if s.revoked:
            with pytest.raises(get_error_class("SessionNotActive")):
                self.owner.revoke(s.policy.session_id)
        else:
            self.owner.revoke(s.policy.session_id)
            s.revoked = True  # counters stay, readable
        self._settle(ts)

    @rule(act=st.sampled_from([False, False, True]))
    def revoke_all(self, act: bool) -> None:
        if not act:
            return
        ts = self._stamp()
        self.owner.revoke_all()
        self.epoch += 1
        self._settle(ts)

    # Renewal (``renewSessionPolicy``): the successor carries every counter; limits only go down; the old id dies.
    @precondition(lambda self: self.sessions)
    @rule(pick=st.integers(min_value=0, max_value=MAX_SESSIONS - 1),
          change=st.sampled_from(["lower", "extend", "raise"]), act=st.sampled_from([False, True]))
    def renew(self, pick: int, change: str, act: bool) -> None:
        if not act:
            return
        s = self.sessions[pick % len(self.sessions)]
        p = s.policy
        ts = self._stamp()
        usdc = self.token.address
        limits: dict[str, Any] = {}
        if change == "lower":  # halved, but never below what was spent (that is SuccessorBelowSpent)
            limits = {"native_total": max(s.native_spent, p.native_total // 2),
                      "token_caps": {usdc: max(s.tokens[usdc].total, s.cap(usdc).cap // 2)}}
        elif change == "raise":
            limits = {"native_total": p.native_total + 1}
        new_until = ts + 600
        expected = (self._liveness(s, "owner") or
                    (Refused("owner", "SessionExpired") if p.valid_until < ts else None) or
                    (Refused("owner", "InvalidWindow") if new_until <= p.valid_after else None) or
                    (Refused("owner", "SuccessorRaisesLimit") if change == "raise" else None))
        event(f"renew {change}: {expected.error if expected else 'ok'}")
        if expected is not None:
            with pytest.raises(get_error_class(expected.error)):
                self.owner.renew_session(p, valid_until=new_until, **limits)
            assert self.chain.time() < ts, "a refused renewal sent a transaction"
            self._settle(ts)
            return
        nxt = self.owner.renew_session(p, valid_until=new_until, **limits)
        assert self.chain.time() == ts
        self._settle(ts)
        successor = Session(nxt, SessionAgent(self.w3, self.owner.address, SESSION_KEY, nxt),
                            word_epoch_plus_one=s.word_epoch_plus_one, uses=s.uses, native_spent=s.native_spent,
                            gas_spent=s.gas_spent,
                            tokens={k: Ledger(v.total, v.period_spent, v.index_plus_one) for k, v in s.tokens.items()},
                            native=Ledger(s.native.total, s.native.period_spent, s.native.index_plus_one),
                            observed_out=dict(s.observed_out), observed_native_out=s.observed_native_out)
        s.revoked = True  # its counters stay, readable
        self.sessions.append(successor)

    # -- session use ------------------------------------------------------------------

    def _liveness(self, s: Session, stage: str) -> Refused | None:
        if s.revoked:
            return Refused(stage, "SessionNotActive")
        if s.word_epoch_plus_one != self.epoch + 1:
            return Refused(stage, "SessionEpochRevoked")
        return None

    def _predict_execution(self, s: Session, ts: int, value: int, token: str, amount: int) -> dict[str, Any]:
        """What executeAsSession does (checks in contract order); returns the new model fields."""
        p = s.policy
        refused = self._liveness(s, "exec")
        if refused:
            raise refused
        uses = s.uses
        if p.max_uses:
            if uses >= p.max_uses:
                raise Refused("exec", "UsageLimitReached")
            uses += 1
        if value > p.native_per_call:
            raise Refused("exec", "NativeValueAboveCallCap")
        native_spent, native = s.native_spent, s.native
        if value:
            if native_spent + value > p.native_total:
                raise Refused("exec", "NativeSpendCapExceeded")
            native_spent += value
            if p.native_period:
                native = roll(native, p.native_period, ts)
                if native.period_spent + value > p.native_per_period:
                    raise Refused("exec", "NativePeriodCapExceeded")
                native = Ledger(native.total, native.period_spent + value, native.index_plus_one)
        # the calls run: a transfer that returns false fails the use
        if token == self.tokens["odd"].address:
            raise Refused("exec", "TokenCallReturnedFalse")
        # charged: max(declared, measured decrease); the fee token takes 1 % on top of the amount
        charge = amount + (amount * FEE_BPS // 10_000 if token == self.tokens["fee"].address else 0)
        ledger = s.tokens[token]
        if charge:
            cap = s.cap(token)
            if ledger.total + charge > cap.cap:
                raise Refused("exec", "TokenSpendCapExceeded")
            if cap.period:
                ledger = roll(ledger, cap.period, ts)
                if ledger.period_spent + charge > cap.per_period:
                    raise Refused("exec", "TokenPeriodCapExceeded")
                ledger = Ledger(ledger.total, ledger.period_spent + charge, ledger.index_plus_one)
            ledger = Ledger(ledger.total + charge, ledger.period_spent, ledger.index_plus_one)
        return {"uses": uses, "native_spent": native_spent, "native": native, "token": ledger, "charge": charge}

    def _in_window(self, s: Session, ts: int) -> bool:
        return s.policy.valid_after < ts <= s.policy.valid_until

    def _predict(self, s: Session, path: str, ts: int, value: int, token: str, amount: int, op_cost: int):
        """(validation gas charged, new fields or Refused)."""
        p = s.policy
        if path == "direct":
            refused = self._liveness(s, "exec")
            if refused:
                return 0, refused
            if ts <= p.valid_after:
                return 0, Refused("exec", "SessionNotYetValid")
            if ts > p.valid_until:
                return 0, Refused("exec", "SessionExpired")
        else:
            refused = self._liveness(s, "validation")
            if refused:
                return 0, refused
            # paymaster or not, the op's whole possible cost counts against the gas budget
            if s.gas_spent + op_cost > p.gas_budget:
                return 0, Refused("validation", "GasBudgetExceeded")
            if not self._in_window(s, ts):
                return 0, Refused("validation", "AA22")
        gas = op_cost if path != "direct" else 0
        try:
            return gas, self._predict_execution(s, ts, value, token, amount)
        except Refused as refused:
            return gas, refused

    def _send(self, s: Session, path: str, calls: list[Call], expect_ok: bool, max_fee: int):
        """Run the calls; return None on success or the raised smartkeys error."""
        agent = s.agent
        try:
            if path == "direct":
                # a predicted success is sent with fixed gas (a wrong prediction still fails loudly, mined);
                # a predicted refusal goes through the SDK's estimate, which raises the decoded error
                agent.send_direct(calls, gas=TX_GAS if expect_ok else None)
                return None
            op = agent.build_user_op(calls, call_gas_limit=CGL, verification_gas_limit=VGL,
                                     pre_verification_gas=PVG).replace(max_fee_per_gas=max_fee,
                                                                       max_priority_fee_per_gas=TIP)
            if path == "paymaster":
                op = op.replace(paymaster=self.paymaster.address, paymaster_verification_gas_limit=PM_VGL,
                                paymaster_post_op_gas_limit=PM_POST)
            op = agent.sign_user_op(op)
            (result,) = agent.entry_point.handle_ops([op], self.chain.accounts[0], gas=TX_GAS if expect_ok else None)
            result.raise_for_failure()
            return None
        except SmartKeysError as exc:  # decoded custom errors, FailedOp, TransactionFailedError
            return exc

    USE_ARGS = dict(
        pick=st.integers(min_value=0, max_value=MAX_SESSIONS - 1),
        amount=st.one_of(st.sampled_from([100, 0, 250, 400]), st.integers(min_value=0, max_value=600)),
        value=st.one_of(st.sampled_from([0, 10, 25, 61]), st.integers(min_value=0, max_value=61)),
        native_first=st.booleans(),
    )
    TOKEN_ARGS = dict(
        pick=st.integers(min_value=0, max_value=MAX_SESSIONS - 1),
        amount=st.one_of(st.sampled_from([100, 250, 400, 495, 990]), st.integers(min_value=1, max_value=600)),
        which=st.sampled_from(["usdc", "fee", "fee", "odd"]),
    )

    @precondition(lambda self: self.sessions)
    @rule(**USE_ARGS)
    def use_direct(self, **args) -> None:
        self.use(path="direct", **args)

    @precondition(lambda self: self.sessions)
    @rule(**USE_ARGS)
    def use_user_op(self, **args) -> None:
        self.use(path="user_op", **args)

    @precondition(lambda self: self.sessions)
    @rule(**TOKEN_ARGS)
    def spend_token_direct(self, which, **args) -> None:
        self.use(path="direct", value=0, native_first=False, which=which, **args)

    @precondition(lambda self: self.sessions)
    @rule(**TOKEN_ARGS)
    def spend_token_user_op(self, which, **args) -> None:
        self.use(path="user_op", value=0, native_first=False, which=which, **args)

    @precondition(lambda self: self.sessions)
    @rule(pick=st.integers(min_value=0, max_value=MAX_SESSIONS - 1), amount=st.sampled_from([0, 100, 400]),
          max_fee=st.sampled_from([MAX_FEE, MAX_FEE, HUGE_FEE]))
    def use_token_paymaster(self, pick: int, amount: int, max_fee: int) -> None:
        self.use(path="paymaster", pick=pick, amount=amount, value=0, native_first=False, max_fee=max_fee)

    def use(self, pick: int, path: str, amount: int, value: int, native_first: bool, which: str = "usdc",
            max_fee: int = MAX_FEE) -> None:
        s = self.sessions[pick % len(self.sessions)]
        token = self.tokens[which]
        ts = self._stamp()
        gas_limit = VGL + CGL + PVG + (PM_VGL + PM_POST if path == "paymaster" else 0)
        gas, verdict = self._predict(s, path, ts, value, token.address, amount, gas_limit * max_fee)
        ok = not isinstance(verdict, Refused)
        event(f"{path} {which}: {'ok' if ok else verdict.error}")  # --hypothesis-show-statistics
        # user ops that pass validation are mined even if execution fails
        mined_expected = ok or (path != "direct" and verdict.stage == "exec")

        calls = [Call(token.address, 0, token.encode_abi("transfer", [RECIPIENT, amount]))]
        if value:
            calls.insert(0 if native_first else 1, Call(RECIPIENT, value))
        before = {t.address: t.functions.balanceOf(self.owner.address).call() for t in self.tokens.values()}
        pm_before = self.token.functions.balanceOf(self.paymaster.address).call()
        native_before = self.w3.eth.get_balance(RECIPIENT)

        error = self._send(s, path, calls, expect_ok=mined_expected, max_fee=max_fee)

        taken = self.token.functions.balanceOf(self.paymaster.address).call() - pm_before
        out = {a: b - self.tokens_by_address(a).functions.balanceOf(self.owner.address).call()
               for a, b in before.items()}
        out[self.token.address] -= taken  # the paymaster's take is gas, bounded by the gas budget (invariant)
        native_out = self.w3.eth.get_balance(RECIPIENT) - native_before
        self._settle(ts)
        expected_out = {a: 0 for a in before}
        if error is None:
            # no use ever succeeds outside the window, after a revoke, or after a revoke-all
            assert self._status_word_live(s) and self._in_window(s, ts), "a use succeeded where none may"
            assert ok, f"expected {verdict.error} on the {path} path, but the use succeeded"
            expected_out[token.address] = verdict["charge"]
            assert (out, native_out) == (expected_out, value)
        else:
            assert not ok, f"expected success on the {path} path, got {error!r}"
            assert (out, native_out) == (expected_out, 0), "a refused use moved funds"
            self._check_error(error, verdict)
        assert (self.chain.time() == ts) == mined_expected
        if path != "paymaster":
            assert taken == 0

        s.gas_spent += gas
        self.paymaster_taken += taken
        if path == "paymaster":
            s.paymaster_gas += gas
        for a, amount_out in out.items():
            s.observed_out[a] += amount_out
        s.observed_native_out += native_out
        if ok:
            s.uses, s.native_spent = verdict["uses"], verdict["native_spent"]
            s.native, s.tokens[token.address] = verdict["native"], verdict["token"]

    def tokens_by_address(self, address: str):
        return next(t for t in self.tokens.values() if t.address == address)

    def _check_error(self, error: Exception, verdict: Refused) -> None:
        if verdict.error == "AA22":
            assert isinstance(error, FailedOp) and error.code == "AA22", repr(error)
        elif verdict.stage == "validation":
            assert isinstance(error, FailedOpWithRevert) and error.code == "AA23", repr(error)
            assert isinstance(error.inner, get_error_class(verdict.error)), repr(error)
        else:
            assert isinstance(error, get_error_class(verdict.error)), f"expected {verdict.error}, got {error!r}"

    # -- invariants ---------------------------------------------------------------------

    @invariant()
    def spend_within_caps_and_chain_matches_model(self) -> None:
        # What the token paymaster took is gas the sessions' budgets allowed, at its own rate.
        assert self.paymaster_taken <= sum(s.paymaster_gas for s in self.sessions) * PM_RATE // 10**18
        for s in self.sessions:
            p = s.policy
            for cap in p.token_caps:
                assert s.observed_out[cap.token] <= cap.cap
                assert s.tokens[cap.token].total == s.observed_out[cap.token]
            assert s.observed_out[self.tokens["odd"].address] == 0
            assert s.observed_native_out <= p.native_total
            if p.max_uses:
                assert s.uses <= p.max_uses
            status = session_status(self.w3, self.owner.address, p.session_id)
            expected = {
                "live": self._status_word_live(s),
                "uses": s.uses,
                "native_spent": s.native_spent,
                "gas_spent": s.gas_spent,
                "granted_epoch": max(s.word_epoch_plus_one - 1, 0),
            }
            assert status == expected
            assert status["gas_spent"] <= p.gas_budget
            contract = s.agent.contract.functions
            for cap in p.token_caps:
                assert tuple(contract.sessionLedger(p.session_id, cap.token).call()) == s.tokens[cap.token].view()
            assert tuple(contract.sessionLedger(p.session_id, ZERO).call()) == s.native.view()


SessionMachine.TestCase.settings = settings(
    max_examples=15,
    stateful_step_count=12,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestSessionMachine = SessionMachine.TestCase
