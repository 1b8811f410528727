"""The owner's audit trail (``smartkeys.audit``), rebuilt from the account's events and the refusal journal.

One scripted history (module docstring of each step below) is played on the chain with controlled block
times, then audited:

epoch 0
  A  token cap 100 USDC (40 USDC a day) + native to RECIPIENT (1 ether per call, 10 in total), 30 days
     uses: 10 USDC | batch 5 USDC + 0.2 ether (user op) | 0.95 ether (edge: per-call) | 20 USDC |
     refused 10 USDC (period cap, journal) | 1 USDC | 1 USDC 5 s later (burst) | next day: 38 USDC (edge: period)
  B  token cap 50 USDC, 10 uses, 30 days: 20 | 15 (user op) | 6 (budget nearly used) | refused 10 (user op,
     journal) | revoked | refused after the revoke (journal)
  revoke-all (A revoked by epoch), A refused after it (journal)
epoch 1
  C  10 USDC, window ends 800 s after the grant: 2 USDC (expiry soon) | time travel: expired, refused (journal)
  D  window 12 h: expiry soon (present state)       E  window 25 h: no flag (near miss)

Every amount, remaining budget and period is checked exactly, each flag on the case built for it and not
on the near misses, and the audit's counters against the contract's ``sessionStatus`` / ``sessionLedger``.
"""

from __future__ import annotations

import csv
import io
import threading
import time

import pytest
from eth_account import Account

from smartkeys.account import Call
from smartkeys.audit import AuditThresholds, build_audit, watch
from smartkeys.errors import SmartKeysError, get_error_class
from smartkeys.journal import RefusalJournal
from smartkeys.policy_codec import Permission, PermissionMode, TokenCap

USDC = 10**6
ETHER = 10**18
DAY = 86_400
RECIPIENT = "0x000000000000000000000000000000000000bEEF"
TRANSFER = "transfer(address,uint256)"


def transfer(token, amount):
    return Call(token.address, 0, token.encode_abi("transfer", [RECIPIENT, amount]))


class History:
    """The scripted history; attributes hold the agents, times and expected values."""

    def __init__(self, chain, owner, token, grant, bundler, fund, journal):
        self.chain, self.owner, self.token, self.journal = chain, owner, token, journal
        self.start_block = chain.w3.eth.block_number + 1
        # a fresh day, 1000 s in: every epoch-0 use before the jump falls in one period
        t0 = ((chain.time() + 2_000) // DAY + 1) * DAY + 1_000
        self.t0 = t0
        keys = {name: Account.create() for name in "ABCDE"}
        for k in keys.values():
            fund(k.address)

        def at(t):
            chain.set_next_block_timestamp(t)

        def refused(agent, calls, error, **kw):
            with pytest.raises(get_error_class(error) if error[0].isupper() and error != "SessionWindowError"
                               else SmartKeysError):
                agent.batch(calls, **kw)

        direct = {"via": "direct"}
        userop = {"via": "user_op", "bundler": bundler}
        at(t0)
        A = grant(keys["A"], valid_until=t0 + 30 * DAY,
                  permissions=(Permission(token.address, TRANSFER), Permission(RECIPIENT, mode=PermissionMode.EMPTY_CALLDATA)),
                  token_caps=(TokenCap(token.address, 100 * USDC, DAY, 40 * USDC),),
                  native_per_call=ETHER, native_total=10 * ETHER)
        at(t0 + 1)
        B = grant(keys["B"], valid_until=t0 + 30 * DAY, max_uses=10,
                  permissions=(Permission(token.address, TRANSFER),), token_caps=(TokenCap(token.address, 50 * USDC),))
        for agent in (A, B):
            agent.journal = journal
        self.A, self.B = A, B

        at(t0 + 10)
        A.batch([transfer(token, 10 * USDC)], **direct)
        at(t0 + 70)
        A.batch([transfer(token, 5 * USDC), Call(RECIPIENT, ETHER // 5)], **userop)
        at(t0 + 130)
        A.batch([Call(RECIPIENT, 95 * ETHER // 100)], **direct)
        at(t0 + 190)
        A.batch([transfer(token, 20 * USDC)], **direct)
        refused(A, [transfer(token, 10 * USDC)], "TokenPeriodCapExceeded", **direct)
        at(t0 + 250)
        A.batch([transfer(token, 1 * USDC)], **direct)
        at(t0 + 255)
        A.batch([transfer(token, 1 * USDC)], **direct)

        at(t0 + 300)
        B.batch([transfer(token, 20 * USDC)], **direct)
        at(t0 + 400)
        B.batch([transfer(token, 15 * USDC)], **userop)
        at(t0 + 500)
        B.batch([transfer(token, 6 * USDC)], **direct)
        refused(B, [transfer(token, 10 * USDC)], "TokenSpendCapExceeded", **userop)
        at(t0 + 600)
        owner.revoke(B.session_id)
        refused(B, [transfer(token, 1 * USDC)], "SessionNotActive", **direct)

        self.t_next_day = t0 - 1_000 + DAY + 10  # the next period of A's token cap
        at(self.t_next_day - 1)
        chain.mine()  # the preflight checks at latest + 1
        at(self.t_next_day)
        A.batch([transfer(token, 38 * USDC)], **direct)
        at(self.t_next_day + 100)
        owner.revoke_all()
        refused(A, [transfer(token, 1 * USDC)], "SessionEpochRevoked", **direct)

        t1 = self.t_next_day + 200
        at(t1)
        C = grant(keys["C"], valid_until=t1 + 800, permissions=(Permission(token.address, TRANSFER),),
                  token_caps=(TokenCap(token.address, 10 * USDC),))
        C.journal = journal
        at(t1 + 100)
        C.batch([transfer(token, 2 * USDC)], **direct)
        at(t1 + 110)
        D = grant(keys["D"], valid_until=t1 + 12 * 3_600, permissions=(Permission(token.address, TRANSFER),),
                  allow_uncapped_assets=True)
        at(t1 + 120)
        E = grant(keys["E"], valid_until=t1 + 25 * 3_600, permissions=(Permission(token.address, TRANSFER),),
                  allow_uncapped_assets=True)
        at(t1 + 900)
        chain.mine()  # C's window ended at t1 + 800
        refused(C, [transfer(token, 1 * USDC)], "SessionExpired", **direct)
        self.C, self.D, self.E, self.t1 = C, D, E, t1
        self.end_time = t1 + 900


@pytest.fixture(scope="module")
def played(local_chain, tmp_path_factory):
    """The history, played once per module on the shared chain (reverted afterwards)."""
    from smartkeys import artifacts
    from smartkeys.account import Owner, SessionAgent
    from smartkeys.errors import register_contract_errors
    from smartkeys.policy_codec import SessionPolicy

    chain = local_chain
    snapshot_id = chain.snapshot()
    try:
        owner = Owner(chain.w3, chain.accounts[1])
        owner.delegate()
        address = chain.deploy_create2("test/MockERC20", 4242, ["USD Coin", "USDC", 6])
        token = chain.w3.eth.contract(address=address, abi=artifacts.load("test/MockERC20")["abi"])
        register_contract_errors(token.abi)
        chain.send({"to": address, "data": token.encode_abi("mint", [owner.address, 10**12])}, chain.accounts[8])

        def fund(addr, wei=10**18):
            chain.send({"to": addr, "value": wei}, chain.accounts[7])

        def grant(key, **fields):
            fields.setdefault("valid_after", 0)
            fields.setdefault("gas_budget", 10**18)
            policy = SessionPolicy(key=key.address, **fields)
            owner.grant(policy)
            return SessionAgent(chain.w3, owner.address, key, policy)

        journal = RefusalJournal(tmp_path_factory.mktemp("audit") / "refusals.jsonl")
        history = History(chain, owner, token, grant, chain.accounts[0], fund, journal)
        report = build_audit(chain.w3, owner.address, from_block=history.start_block, journal=journal)
        yield chain, owner, token, history, report
    finally:
        chain.revert(snapshot_id)


@pytest.fixture
def history(played):
    return played[3]


@pytest.fixture
def report(played):
    return played[4]


@pytest.fixture
def audited_owner(played):
    return played[1]


@pytest.fixture
def audited_token(played):
    return played[2]


def codes(flags):
    return sorted(f.code for f in flags)


# ------------------------------------------------------------------ rebuilt exactly


def test_sessions_are_rebuilt_with_grants_status_and_revocations(report, history):
    h = history
    assert [s.key for s in report.sessions] == [a.key_address for a in (h.A, h.B, h.C, h.D, h.E)]
    a, b, c, d, e = (report.session(x.session_id) for x in (h.A, h.B, h.C, h.D, h.E))
    assert (a.status, b.status, c.status, d.status, e.status) == ("revoked", "revoked", "expired", "active", "active")
    assert a.revocation.kind == "epoch" and a.revocation.epoch == 1
    assert b.revocation.kind == "single" and b.revocation.time == h.t0 + 600
    assert c.revocation is None and c.granted_epoch == 1 and a.granted_epoch == 0
    assert a.granted_time == h.t0 and a.policy == h.A.policy and "100 USDC in total" in a.policy_text
    assert report.epoch == 1 and report.now == h.end_time


def test_uses_amounts_calls_and_functions_are_rebuilt(report, history, audited_token):
    token = audited_token
    a = report.session(history.A.session_id)
    uses = a.use_entries
    assert [u.time - history.t0 for u in uses] == [10, 70, 130, 190, 250, 255, history.t_next_day - history.t0]
    assert [dict(u.charges) for u in uses] == [
        {token.address: 10 * USDC},
        {"native": ETHER // 5, token.address: 5 * USDC},
        {"native": 95 * ETHER // 100},
        {token.address: 20 * USDC},
        {token.address: 1 * USDC},
        {token.address: 1 * USDC},
        {token.address: 38 * USDC},
    ]
    batch = uses[1]
    assert [(c.target, c.label) for c in batch.calls] == [(token.address, "transfer"), (RECIPIENT, "(native transfer)")]
    assert batch.calls[0].selector == bytes.fromhex("a9059cbb")
    assert a.uses == 7 and a.uses_remaining is None
    b = report.session(history.B.session_id)
    assert b.uses == 3 and b.uses_remaining == 7


def test_spent_and_remaining_per_asset_and_per_period(report, history, audited_token):
    token = audited_token
    a = report.session(history.A.session_id)
    usdc, native = a.asset(token.address), a.asset("native")
    day0, day1 = (history.t0 // DAY, history.t_next_day // DAY)
    assert day1 == day0 + 1
    assert (usdc.spent, usdc.remaining, usdc.periods) == (75 * USDC, 25 * USDC, {day0: 37 * USDC, day1: 38 * USDC})
    assert (usdc.period_spent, usdc.period_remaining, usdc.ledger_period_index) == (38 * USDC, 2 * USDC, day1)
    assert (native.spent, native.remaining) == (115 * ETHER // 100, 10 * ETHER - 115 * ETHER // 100)
    uses = a.use_entries
    assert [u.spent_after[token.address] for u in uses] == [x * USDC for x in (10, 15, 15, 35, 36, 37, 75)]
    assert [u.remaining_after[token.address] for u in uses] == [x * USDC for x in (90, 85, 85, 65, 64, 63, 25)]
    assert [u.period_spent_after[token.address] for u in uses] == [x * USDC for x in (10, 15, 15, 35, 36, 37, 38)]
    b = report.session(history.B.session_id)
    assert (b.asset(token.address).spent, b.asset(token.address).remaining) == (41 * USDC, 9 * USDC)
    c = report.session(history.C.session_id)
    assert (c.asset(token.address).spent, c.asset(token.address).remaining) == (2 * USDC, 8 * USDC)


def test_audit_counters_equal_the_contract(report, history, audited_owner):
    owner = audited_owner
    contract = owner.contract
    for agent in (history.A, history.B, history.C, history.D, history.E):
        s = report.session(agent.session_id)
        live, uses, native, gas, epoch = contract.functions.sessionStatus(agent.session_id).call()
        if s.revocation is None or s.revocation.kind == "epoch":  # a single revoke deletes the status word
            assert native == s.asset("native").spent
            assert gas == s.asset("gas").spent  # gas has no event: the audit reads it from the status word
            if agent.policy.max_uses:
                assert uses == s.uses
            assert epoch == s.granted_epoch
        assert live == (s.revocation is None)
        for cap in agent.policy.token_caps:
            total, period_spent, index = contract.functions.sessionLedger(agent.session_id, cap.token).call()
            audited = s.asset(cap.token)
            assert total == audited.spent
            if cap.period:
                assert index == audited.ledger_period_index
                assert period_spent == audited.periods.get(index, 0)
    assert contract.functions.sessionEpoch().call() == report.epoch


def test_user_op_gas_charged_to_a_session_is_in_its_gas_budget(report, history):
    # Session A made one self-paid user operation (its maximum cost is charged at validation), then was
    # revoked by epoch, which keeps its status word.
    a = report.session(history.A.session_id)
    gas = a.asset("gas")
    assert a.revocation.kind == "epoch" and 0 < gas.spent <= history.A.policy.gas_budget
    assert gas.remaining == history.A.policy.gas_budget - gas.spent


# ------------------------------------------------------------------ refusals


def test_refusals_recorded_by_the_sdk_appear_in_the_audit(report, history, audited_token):
    token = audited_token
    errors = [(e.refusal.error, e.refusal.path, e.key) for e in report.refusals]
    h = history
    assert errors == [
        ("TokenPeriodCapExceeded", "direct", h.A.key_address),
        ("TokenSpendCapExceeded", "user_op", h.B.key_address),
        ("SessionNotActive", "direct", h.B.key_address),
        ("SessionEpochRevoked", "direct", h.A.key_address),
        ("SessionExpired", "direct", h.C.key_address),
    ]
    first = report.refusals[0].refusal
    assert first.fields == {"token": token.address, "spent": str(35 * USDC), "requested": str(10 * USDC),
                            "cap": str(40 * USDC)}
    assert [(c.target, c.selector.hex(), c.value) for c in first.calls] == [(token.address, "a9059cbb", 0)]
    assert [e.refusal.error for e in report.session(h.B.session_id).refusals] == [
        "TokenSpendCapExceeded", "SessionNotActive"]


def test_journal_holds_no_secret(history):
    text = history.journal.path.read_text()
    for agent in (history.A, history.B, history.C):
        assert agent._key.key.hex()[2:] not in text.lower()
    assert "signature" not in text


# ------------------------------------------------------------------ flags


def test_each_flag_fires_on_its_case_and_not_on_the_near_misses(report, history, audited_token):
    token = audited_token
    h = history
    a, b, c, d, e = (report.session(x.session_id) for x in (h.A, h.B, h.C, h.D, h.E))
    assert codes(a.flags) == ["burst", "edge_of_policy", "edge_of_policy"]
    assert codes(b.flags) == ["budget_nearly_used"] and b.flags[0].asset == token.address
    assert codes(c.flags) == []  # expired: no longer "expiring soon"
    # D and E move a token they do not cap, by the owner's explicit flag: said first, on every report
    # expiry_soon is relative to a key's lifetime (20 %, at most 24 h): D (12 h) has 11.75 h left, E 24.8 h
    assert codes(d.flags) == ["uncapped_assets"]
    assert codes(e.flags) == ["uncapped_assets"]

    per_use = [codes(u.flags) for u in a.use_entries]
    assert per_use == [[], [], ["edge_of_policy"], [], [], ["burst"], ["edge_of_policy"]]
    assert a.use_entries[2].flags[0].asset == "native" and "per-call" in a.use_entries[2].flags[0].message
    assert a.use_entries[6].flags[0].asset == token.address and "periodic" in a.use_entries[6].flags[0].message
    assert [codes(u.flags) for u in b.use_entries] == [[], [], ["budget_nearly_used"]]
    assert [codes(u.flags) for u in c.use_entries] == [[]]  # used 700 s before the end of an 800 s key


def test_thresholds_move_the_flags(local_chain, audited_owner, history):
    chain, owner = local_chain, audited_owner
    strict = AuditThresholds(budget_nearly_used=0.95, burst_min_uses=6, edge_fraction=0.99, expiry_soon_s=3_600)
    r = build_audit(chain.w3, owner.address, from_block=history.start_block, thresholds=strict)
    assert all(f.code == "uncapped_assets" for s in r.sessions for f in s.flags)  # not a threshold


# ------------------------------------------------------------------ exports


def test_json_is_serialisable_with_amounts_as_strings(report, history, audited_token):
    token = audited_token
    import json

    data = json.loads(report.to_json())
    a = next(s for s in data["sessions"] if s["key"] == history.A.key_address)
    usdc = next(x for x in a["assets"] if x["asset"] == token.address)
    assert (usdc["spent"], usdc["remaining"], usdc["cap"]) == (str(75 * USDC), str(25 * USDC), str(100 * USDC))
    assert a["status"] == "revoked" and a["revoked"]["kind"] == "epoch"
    assert a["policy"]["permissions"][0]["function"] == "transfer"
    assert len(data["entries"]) == len(report.entries)


def test_csv_has_one_row_per_event_and_asset(report, history, audited_token):
    token = audited_token
    buf = io.StringIO(newline="")
    report.write_csv(buf)
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    kinds = [r["kind"] for r in rows]
    assert kinds == (["grant"] * 2 + ["use"] * 3 + ["use"] * 2 + ["refusal"] + ["use"] * 2 + ["use"] * 3
                     + ["refusal", "revoke", "refusal", "use", "revoke_all", "refusal", "grant", "use", "grant",
                        "grant", "refusal"])
    batch = [r for r in rows if r["kind"] == "use" and r["function"] == "transfer;(native transfer)"]
    assert [(r["asset"], r["amount"], r["spent_after"], r["remaining_after"]) for r in batch] == [
        ("native", str(ETHER // 5), str(ETHER // 5), str(10 * ETHER - ETHER // 5)),
        (token.address, str(5 * USDC), str(15 * USDC), str(85 * USDC)),
    ]
    assert batch[0]["target"] == f"{token.address};{RECIPIENT}"
    nearly = [r for r in rows if "budget_nearly_used" in r["flags"]]
    assert [(r["key"], r["amount"], r["remaining_after"]) for r in nearly] == [
        (history.B.key_address, str(6 * USDC), str(9 * USDC))]
    refusal = next(r for r in rows if r["kind"] == "refusal")
    # the note is the refusal in the policy's units, naming the contract error
    assert "(TokenPeriodCapExceeded, via direct)" in refusal["note"] and refusal["function"] == "transfer"
    assert "asked for 10 USDC" in refusal["note"] and "when the period resets" in refusal["note"]


def _marks(fig, gid):
    """The (x, y) points of the artists with this gid, over every axes (x in days since 1970)."""
    return [(float(x), float(y)) for ax in fig.axes for line in ax.get_lines() if line.get_gid() == gid
            for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True)]


def test_plot_figure_has_a_panel_per_asset_and_draws_the_history_where_it_happened(report, history, audited_token):
    from smartkeys._audit_plot import date_number

    h, token = history, audited_token.address
    fig = report.figure()
    fig.draw_without_rendering()
    assert [ax.get_label() for ax in fig.axes] == ["asset:native", f"asset:{token}", "asset:gas", "sessions"]
    assert [ax.get_ylabel().split(",")[0] for ax in fig.axes[:3]] == ["ETH", "USDC", "ETH"]
    (legend,) = fig.legends
    assert not any(legend.get_window_extent().overlaps(ax.get_window_extent()) for ax in fig.axes)
    sid = {name: "0x" + getattr(h, name).session_id.hex() for name in "ABCDE"}

    # B revoked at t0 + 600 with 41 USDC spent: its line stops there, with the revoked mark
    assert max(x for x, _ in _marks(fig, f"spend:{token}:{sid['B']}")) == date_number(h.t0 + 600)
    assert _marks(fig, f"revoked:{token}:{sid['B']}") == [(date_number(h.t0 + 600), 41.0)]
    # A revoked by the epoch, 100 s into the next day, having spent 75 USDC (10+5+20+1+1+38) and 1.15 ether
    t_epoch = h.t_next_day + 100
    assert _marks(fig, f"revoked:{token}:{sid['A']}") == [(date_number(t_epoch), 75.0)]
    assert _marks(fig, f"revoked:native:{sid['A']}") == [(date_number(t_epoch), pytest.approx(1.15))]
    assert max(x for x, _ in _marks(fig, f"spend:native:{sid['A']}")) == date_number(t_epoch)
    # C expired at t1 + 800 (the report runs to t1 + 900): its line stops at the expiry
    assert _marks(fig, f"expired:{token}:{sid['C']}") == [(date_number(h.t1 + 800), 2.0)]
    assert max(x for x, _ in _marks(fig, f"spend:{token}:{sid['C']}")) < date_number(report.now)
    # D and E cap no asset but gas: they are on the gas panel only, still active at the end
    assert not _marks(fig, f"spend:{token}:{sid['D']}") and _marks(fig, f"gas-total:{sid['D']}")
    assert _marks(fig, f"active:sessions:{sid['E']}") == [(date_number(report.now), 0.0)]

    # refusals from the journal: A's over its daily cap at the 35 USDC it had spent that day, B's over its
    # total at its 41 USDC; the not-active / revoked / expired ones only on the sessions panel
    refused = {e.refusal.error: e for e in report.refusals if e.refusal is not None}
    a_cross = _marks(fig, f"refusal:{token}:{sid['A']}")
    assert a_cross == [(date_number(refused["TokenPeriodCapExceeded"].time), 35.0)]
    assert _marks(fig, f"refusal:{token}:{sid['B']}") == [(date_number(refused["TokenSpendCapExceeded"].time), 41.0)]
    for name in "ABC":
        session = report.session(getattr(h, name).session_id)
        assert len(_marks(fig, f"refusal:sessions:{sid[name]}")) == len(session.refusals) >= 1
    # A's daily cap is drawn once, and its reset at 00:00 UTC between its two days is marked
    (resets,) = [c for c in fig.axes[1].collections if c.get_gid() == f"period-reset:{token}:86400"]
    assert date_number(h.t_next_day - 10) in [seg[0][0] for seg in resets.get_segments()]
    caps = sorted(line.get_gid() for line in fig.axes[1].get_lines() if line.get_gid().startswith("cap:"))
    assert caps == sorted(f"cap:{token}:{v * USDC}" for v in (100, 50, 10))


# ------------------------------------------------------------------ progress, watch


def test_progress_reports_each_chunk(local_chain, audited_owner, history):
    chain, owner = local_chain, audited_owner
    seen = []
    end = chain.w3.eth.block_number
    build_audit(chain.w3, owner.address, from_block=history.start_block, chunk_size=5,
                progress=lambda done, total: seen.append((done, total)))
    total = end - history.start_block + 1
    assert seen[-1] == (total, total) and len(seen) == -(-total // 5)


def test_watch_yields_new_events_with_flags_from_history(chain, owner, token, grant, fund, serialized_rpc, tmp_path):
    journal = RefusalJournal(tmp_path / "watch.jsonl")
    key = Account.create()
    fund(key.address)
    agent = grant(key, valid_until=chain.time() + 30 * DAY, permissions=(Permission(token.address, TRANSFER),),
                  token_caps=(TokenCap(token.address, 10 * USDC),))
    agent.journal = journal
    agent.batch([transfer(token, 7 * USDC)], via="direct")  # history: before the watch starts

    stop, seen, errors = threading.Event(), [], []

    def follow():
        try:
            for entry in watch(chain.w3, owner.address, poll_interval=0.02, stop=stop, journal=journal):
                seen.append(entry)
        except Exception as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    time.sleep(0.2)
    agent.batch([transfer(token, 1 * USDC)], via="direct")
    with pytest.raises(get_error_class("TokenSpendCapExceeded")):
        agent.batch([transfer(token, 5 * USDC)], via="direct")
    deadline = time.monotonic() + 20
    while len(seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive() and not errors
    assert [e.kind for e in seen] == ["use", "refusal"]
    use = seen[0]
    assert use.spent_after[token.address] == 8 * USDC and use.remaining_after[token.address] == 2 * USDC
    assert [f.code for f in use.flags] == ["budget_nearly_used"]  # 80 % of the cap, counting the history
    assert seen[1].refusal.error == "TokenSpendCapExceeded"
