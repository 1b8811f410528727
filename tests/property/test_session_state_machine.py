"""Stateful property test: a session key's spend never exceeds what its grant allows, on either path.

A hypothesis ``RuleBasedStateMachine`` drives one embedded chain (started once for this module; every example
starts from the same snapshot). Rules grant sessions with random caps, windows, periods, use limits and gas
budgets, use them with random token transfers and native value via the direct path or a user operation, move
time, revoke one session, revoke all, and re-grant. A Python model predicts the exact outcome of every step
(success, or which custom error / EntryPoint code) and the session's status and ledgers.

Invariants after every step, for every session the run granted:
- the token outflow and native outflow actually observed on chain since the (last) grant are within the caps;
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
from hypothesis import HealthCheck, settings
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
MAX_SESSIONS = 3
WALL_CLOCK_LEAD = 3_600


@dataclass
class Context:
    chain: Any
    owner: Owner
    token: Any
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

    address = chain.deploy_create2("test/MockERC20", 1, ["USD Coin", "USDC", 6])
    token = chain.w3.eth.contract(address=address, abi=artifacts.load("test/MockERC20")["abi"])
    register_contract_errors(token.abi)
    minter = chain.accounts[8]
    chain.send({"to": address, "data": token.encode_abi("mint", [owner.address, 10**12])}, minter)
    chain.send({"to": address, "data": token.encode_abi("mint", [RECIPIENT, 1])}, minter)
    chain.send({"to": SESSION_KEY.address, "value": 10**19}, chain.accounts[7])
    chain.send({"to": RECIPIENT, "value": 1}, chain.accounts[7])
    _CTX = Context(chain, owner, token, chain.snapshot())
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
    word_epoch_plus_one: int = 0  # 0: never granted or revoked
    uses: int = 0
    native_spent: int = 0
    gas_spent: int = 0
    token: Ledger = field(default_factory=Ledger)
    native: Ledger = field(default_factory=Ledger)
    observed_token_out: int = 0  # measured on chain since the last grant
    observed_native_out: int = 0

    @property
    def cap(self) -> TokenCap:
        return self.policy.token_caps[0]


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
        self.chain.revert(ctx.base)
        self.epoch = 0
        self.salt = 0
        self.sessions: list[Session] = []
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
        return s.word_epoch_plus_one != 0 and s.word_epoch_plus_one == self.epoch + 1

    def _apply_grant(self, s: Session, ts: int) -> None:
        s.word_epoch_plus_one = self.epoch + 1
        s.uses = s.native_spent = s.gas_spent = 0
        cap = s.cap
        s.token = Ledger(0, 0, ts // cap.period + 1 if cap.period else 1)
        if s.policy.native_period:
            s.native = Ledger(0, 0, ts // s.policy.native_period + 1)
        s.observed_token_out = s.observed_native_out = 0

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
        policy = SessionPolicy(
            key=SESSION_KEY.address,
            valid_after=valid_after,
            valid_until=max(valid_after, now) + duration,
            permissions=(Permission(RECIPIENT, mode=PermissionMode.EMPTY_CALLDATA),
                         Permission(self.token.address, TRANSFER)),
            token_caps=(TokenCap(self.token.address, token_cap, token_period,
                                 token_per_period if token_period else 0),),
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
        self._grant(self.sessions[pick % len(self.sessions)])

    # Revocations end a session for good (until a re-grant): ``act`` makes them rarer than uses, so that runs
    # reach the caps too.
    @precondition(lambda self: self.sessions)
    @rule(pick=st.integers(min_value=0, max_value=MAX_SESSIONS - 1), act=st.sampled_from([False, False, True]))
    def revoke(self, pick: int, act: bool) -> None:
        if not act:
            return
        s = self.sessions[pick % len(self.sessions)]
        ts = self._stamp()
        if s.word_epoch_plus_one == 0:
            with pytest.raises(get_error_class("SessionNotActive")):
                self.owner.revoke(s.policy.session_id)
        else:
            self.owner.revoke(s.policy.session_id)
            s.word_epoch_plus_one = s.uses = s.native_spent = s.gas_spent = 0
        self._settle(ts)

    @rule(act=st.sampled_from([False, False, True]))
    def revoke_all(self, act: bool) -> None:
        if not act:
            return
        ts = self._stamp()
        self.owner.revoke_all()
        self.epoch += 1
        self._settle(ts)

    # -- session use ------------------------------------------------------------------

    def _predict_execution(self, s: Session, ts: int, value: int, amount: int) -> dict[str, Any]:
        """What executeAsSession does (checks in contract order); returns the new model fields."""
        p = s.policy
        if s.word_epoch_plus_one == 0:
            raise Refused("exec", "SessionNotActive")
        if s.word_epoch_plus_one != self.epoch + 1:
            raise Refused("exec", "SessionEpochRevoked")
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
        token = s.token
        if amount:
            cap = s.cap
            if token.total + amount > cap.cap:
                raise Refused("exec", "TokenSpendCapExceeded")
            if cap.period:
                token = roll(token, cap.period, ts)
                if token.period_spent + amount > cap.per_period:
                    raise Refused("exec", "TokenPeriodCapExceeded")
                token = Ledger(token.total, token.period_spent + amount, token.index_plus_one)
            token = Ledger(token.total + amount, token.period_spent, token.index_plus_one)
        return {"uses": uses, "native_spent": native_spent, "native": native, "token": token}

    def _in_window(self, s: Session, ts: int) -> bool:
        return s.policy.valid_after < ts <= s.policy.valid_until

    def _predict(self, s: Session, path: str, ts: int, value: int, amount: int):
        """(validation gas charged, new fields or Refused)."""
        p = s.policy
        if path == "direct":
            if s.word_epoch_plus_one == 0:
                return 0, Refused("exec", "SessionNotActive")
            if s.word_epoch_plus_one != self.epoch + 1:
                return 0, Refused("exec", "SessionEpochRevoked")
            if ts <= p.valid_after:
                return 0, Refused("exec", "SessionNotYetValid")
            if ts > p.valid_until:
                return 0, Refused("exec", "SessionExpired")
        else:
            if s.word_epoch_plus_one == 0:
                return 0, Refused("validation", "SessionNotActive")
            if s.word_epoch_plus_one != self.epoch + 1:
                return 0, Refused("validation", "SessionEpochRevoked")
            if s.gas_spent + OP_COST > p.gas_budget:
                return 0, Refused("validation", "GasBudgetExceeded")
            if not self._in_window(s, ts):
                return 0, Refused("validation", "AA22")
        gas = OP_COST if path == "user_op" else 0
        try:
            return gas, self._predict_execution(s, ts, value, amount)
        except Refused as refused:
            return gas, refused

    def _send(self, s: Session, path: str, calls: list[Call], expect_ok: bool):
        """Run the calls; return None on success or the raised smartkeys error."""
        agent = s.agent
        try:
            if path == "direct":
                # a predicted success is sent with fixed gas (a wrong prediction still fails loudly, mined);
                # a predicted refusal goes through the SDK's estimate, which raises the decoded error
                agent.send_direct(calls, gas=TX_GAS if expect_ok else None)
                return None
            op = agent.build_user_op(calls, call_gas_limit=CGL, verification_gas_limit=VGL,
                                     pre_verification_gas=PVG).replace(max_fee_per_gas=MAX_FEE,
                                                                       max_priority_fee_per_gas=TIP)
            op = agent.sign_user_op(op)
            assert op.max_gas_cost() == OP_COST
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
        amount=st.one_of(st.sampled_from([100, 250, 400]), st.integers(min_value=1, max_value=600)),
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
    def spend_token_direct(self, **args) -> None:
        self.use(path="direct", value=0, native_first=False, **args)

    @precondition(lambda self: self.sessions)
    @rule(**TOKEN_ARGS)
    def spend_token_user_op(self, **args) -> None:
        self.use(path="user_op", value=0, native_first=False, **args)

    def use(self, pick: int, path: str, amount: int, value: int, native_first: bool) -> None:
        s = self.sessions[pick % len(self.sessions)]
        ts = self._stamp()
        gas, verdict = self._predict(s, path, ts, value, amount)
        ok = not isinstance(verdict, Refused)
        # user ops that pass validation are mined even if execution fails
        mined_expected = ok or (path == "user_op" and verdict.stage == "exec")

        calls = [Call(self.token.address, 0, self.token.encode_abi("transfer", [RECIPIENT, amount]))]
        if value:
            calls.insert(0 if native_first else 1, Call(RECIPIENT, value))
        token_before = self.token.functions.balanceOf(self.owner.address).call()
        native_before = self.w3.eth.get_balance(RECIPIENT)

        error = self._send(s, path, calls, expect_ok=mined_expected)

        token_out = token_before - self.token.functions.balanceOf(self.owner.address).call()
        native_out = self.w3.eth.get_balance(RECIPIENT) - native_before
        self._settle(ts)
        if error is None:
            # no use ever succeeds outside the window, after a revoke, or after a revoke-all
            assert self._status_word_live(s) and self._in_window(s, ts), "a use succeeded where none may"
            assert ok, f"expected {verdict.error} on the {path} path, but the use succeeded"
            assert (token_out, native_out) == (amount, value)
        else:
            assert not ok, f"expected success on the {path} path, got {error!r}"
            assert (token_out, native_out) == (0, 0), "a refused use moved funds"
            self._check_error(error, verdict)
        assert (self.chain.time() == ts) == mined_expected

        s.gas_spent += gas
        s.observed_token_out += token_out
        s.observed_native_out += native_out
        if ok:
            s.uses, s.native_spent = verdict["uses"], verdict["native_spent"]
            s.native, s.token = verdict["native"], verdict["token"]

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
        for s in self.sessions:
            p = s.policy
            assert s.observed_token_out <= s.cap.cap
            assert s.observed_native_out <= p.native_total
            assert s.token.total == s.observed_token_out
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
            assert tuple(contract.sessionLedger(p.session_id, self.token.address).call()) == s.token.view()
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
