"""The audit picture (``AuditReport.figure``), read as a matplotlib figure, not as pixels.

Reports are built by hand here (no chain) so the layout can be tried with 1 and with 20 sessions, shared and
distinct caps, periodic caps, refusals, a revocation and an expiry; the chain-built history is checked in
tests/contracts/test_audit.py and the CLI in tests/cli/test_audit_plot_cli.py.
"""

from __future__ import annotations

import pytest

pytest.importorskip("matplotlib")

from smartkeys._audit_plot import date_number
from smartkeys.audit import (
    AssetAudit,
    AuditEntry,
    AuditReport,
    AuditThresholds,
    Revocation,
    SessionAudit,
)
from smartkeys.journal import Refusal
from smartkeys.policy_codec import SessionPolicy

DAY = 86_400
T0 = 1_800_000_000 - 1_800_000_000 % DAY + 9 * 3_600  # 09:00 UTC
USDC = "0x00000000000000000000000000000000000a0b86"
DAI = "0x000000000000000000000000000000000000dA10"
ACCOUNT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
TOKENS = {USDC: ("USDC", 6), DAI: ("DAI", 18)}


def _key(i: int) -> str:
    return "0x" + f"{i + 1:040x}"


def _session(i: int, *, usdc_cap: int, dai_cap: int = 0, period: int = 0, per_period: int = 0,
             native_total: int = 0, charges: tuple[tuple[int, str, int], ...] = (), valid_for: int = 7 * DAY,
             revoked_at: int | None = None, refusals: tuple[tuple[int, str, dict], ...] = ()) -> SessionAudit:
    granted = T0 + 600 * i
    policy = SessionPolicy(key=_key(i), valid_after=0, valid_until=granted + valid_for, native_total=native_total,
                           allow_uncapped_assets=True)
    s = SessionAudit(bytes([i + 1]) * 32, policy.key, policy, "", i + 1, granted, b"\x01" * 32, 0)
    if native_total:
        s.assets.append(AssetAudit("native", native_total))
    s.assets.append(AssetAudit(USDC, usdc_cap, period=period, period_cap=per_period))
    if dai_cap:
        s.assets.append(AssetAudit(DAI, dai_cap))
    for a in s.assets:
        a.history.append((granted, 0))
    for when, asset, amount in charges:
        a = s.asset(asset)
        a.spent += amount
        a.history.append((when, a.spent))
        s.entries.append(AuditEntry("use", when, None, None, None, s.session_id, s.key, charges={asset: amount}))
    for when, error, fields in refusals:
        r = Refusal(float(when), 1, ACCOUNT, s.session_id, s.key, (), error, fields, block_time=when)
        e = AuditEntry("refusal", when, None, None, None, s.session_id, s.key, refusal=r)
        s.refusals.append(e)
        s.entries.append(e)
    if revoked_at is not None:
        s.revocation = Revocation("single", revoked_at, 99, b"\x02" * 32)
    return s


def _report(sessions: list[SessionAudit], now: int) -> AuditReport:
    for s in sessions:
        s.status = ("revoked" if s.revocation else "expired" if s.policy.valid_until < now else "active")
    entries = sorted((e for s in sessions for e in s.entries), key=lambda e: e.time)
    return AuditReport(ACCOUNT, 1, 1, 500, now, 0, AuditThresholds(), sessions, entries, dict(TOKENS))


def twenty_sessions() -> AuditReport:
    """20 sessions: USDC caps 100 (16 sessions) or 250 (4), a 40 USDC daily cap on 5, DAI 500 on 10, native on 4;
    S2 revoked on day 3, S3 expired on day 2, a period-cap refusal (S1) and a not-active one (S2)."""
    sessions = []
    for i in range(20):
        charges = tuple((T0 + 600 * i + 3_600 * (1 + 7 * k), USDC, (2 + i % 3 + k) * 10**6) for k in range(8))
        charges += tuple((T0 + 600 * i + 5_000 * (1 + 9 * k), DAI, (3 + k) * 10**18) for k in range(5)) if i % 2 else ()
        sessions.append(_session(
            i, usdc_cap=(250 if i % 5 == 0 else 100) * 10**6, dai_cap=500 * 10**18 if i % 2 else 0,
            period=DAY if i % 4 == 0 else 0, per_period=40 * 10**6 if i % 4 == 0 else 0,
            native_total=10**18 if i % 5 == 1 else 0, charges=charges,
            valid_for=2 * DAY if i == 2 else 7 * DAY, revoked_at=T0 + 3 * DAY if i == 1 else None,
            refusals=(((T0 + DAY + 100, "TokenPeriodCapExceeded", {"token": USDC, "spent": "35000000",
                                                                    "requested": "10000000", "cap": "40000000"}),)
                      if i == 0 else ((T0 + 4 * DAY, "SessionNotActive", {}),) if i == 1 else ()),
        ))
    return _report(sessions, T0 + 6 * DAY)


def one_session() -> AuditReport:
    s = _session(0, usdc_cap=100 * 10**6, period=DAY, per_period=40 * 10**6,
                 charges=((T0 + 3_600, USDC, 30 * 10**6), (T0 + DAY, USDC, 20 * 10**6)),
                 refusals=((T0 + 7_200, "TokenPeriodCapExceeded", {"token": USDC}),))
    return _report([s], T0 + 2 * DAY)


def by_gid(fig, prefix: str) -> list:
    found = []
    for ax in fig.axes:
        for artist in [*ax.get_lines(), *ax.collections, *ax.texts]:
            if (artist.get_gid() or "").startswith(prefix):
                found.append(artist)
    return found


def rendered(report: AuditReport):
    fig = report.figure()
    fig.draw_without_rendering()  # lays out the figure (constrained layout) so extents are final
    return fig


@pytest.fixture(scope="module", params=[1, 20], ids=["1-session", "20-sessions"])
def figure_and_report(request):
    report = one_session() if request.param == 1 else twenty_sessions()
    return rendered(report), report


def test_one_panel_per_asset_with_its_unit_then_the_sessions_panel(figure_and_report):
    fig, report = figure_and_report
    assets = [a for a in ("native", USDC, DAI) if any(x.asset == a for s in report.sessions for x in s.assets)]
    assert [ax.get_label() for ax in fig.axes] == [f"asset:{a}" for a in assets] + ["sessions"]
    units = {"native": "ETH", USDC: "USDC", DAI: "DAI"}
    for ax, asset in zip(fig.axes, assets, strict=False):  # the last axes is the sessions panel
        assert ax.get_ylabel().startswith(units[asset]), ax.get_ylabel()
        assert units[asset] in ax.get_title(loc="left")
    rows = [t.get_text() for t in fig.axes[-1].get_yticklabels()]
    assert len(rows) == len(report.sessions) and rows[0].startswith("S1 ")


def test_the_legend_never_covers_an_axes_and_does_not_grow_with_sessions(figure_and_report):
    fig, _ = figure_and_report
    (legend,) = fig.legends
    box = legend.get_window_extent()
    for ax in fig.axes:
        assert not box.overlaps(ax.get_window_extent()), ax.get_label()
    assert not [ax for ax in fig.axes if ax.get_legend() is not None]  # no per-axes legend over the data
    assert 8 <= len(legend.get_texts()) <= 12  # the marks, not one entry per session and cap
    fig_box = fig.bbox
    assert fig_box.x0 <= box.x0 and box.x1 <= fig_box.x1 and box.y1 <= fig_box.y1  # not cut off
    for ax in fig.axes:  # nor the cap labels in the right margin, nor the session names on the left
        for text in [*ax.texts, *ax.get_yticklabels()]:
            extent = text.get_window_extent()
            assert fig_box.x0 <= extent.x0 and extent.x1 <= fig_box.x1, text.get_text()


def test_time_tick_labels_are_unique_and_only_on_the_bottom_axes(figure_and_report):
    fig, _ = figure_and_report
    bottom = fig.axes[-1]
    ticks = [(t.get_position()[0], t.get_text()) for t in bottom.get_xticklabels() if t.get_visible() and t.get_text()]
    assert len(ticks) >= 3
    # concise labels: a time of day may come back on another day (the day's own label sits between), but no
    # two ticks less than a day apart say the same thing, as the old "%m-%d %H:%M" labels did 8 times
    for i, (x, text) in enumerate(ticks):
        for y, other in ticks[i + 1:]:
            assert text != other or abs(y - x) >= 1.0, ticks
    for ax in fig.axes[:-1]:
        assert not [t for t in ax.get_xticklabels() if t.get_visible() and t.get_text()]


def test_identical_caps_are_one_line_naming_their_sessions_in_the_margin():
    report = twenty_sessions()
    fig = rendered(report)
    usdc = next(ax for ax in fig.axes if ax.get_label() == f"asset:{USDC}")
    caps = [line.get_gid() for line in usdc.get_lines() if (line.get_gid() or "").startswith("cap:")]
    assert sorted(caps) == [f"cap:{USDC}:{100 * 10**6}", f"cap:{USDC}:{250 * 10**6}"]
    assert [x.get_gid() for x in by_gid(fig, "period-cap:")] == [f"period-cap:{USDC}:{40 * 10**6}:{DAY}"]
    texts = [t.get_text() for t in usdc.texts]
    assert "cap 100 USDC · 16 sessions" in texts
    # the 250 USDC cap is more than 4x the most any session spent (60 USDC): the axis fits the spend and the
    # cap is listed at the top, saying so, instead of squashing every line to the floor
    top_spend = max(s.asset(USDC).spent for s in report.sessions) / 10**6
    assert top_spend == 60 and top_spend < usdc.get_ylim()[1] < 250
    assert "↑ cap 250 USDC · 4 sessions (above the axis)" in texts
    assert "40 USDC per UTC day · 5 sessions" in texts
    # the labels sit right of the data area and do not overlap one another
    area = usdc.get_window_extent()
    boxes = [t.get_window_extent() for t in usdc.texts]
    assert all(b.x0 >= area.x1 for b in boxes)
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])


def test_lines_stop_at_revocation_and_expiry_with_their_marker_not_at_now():
    report = twenty_sessions()
    fig = rendered(report)
    s2, s3 = report.sessions[1], report.sessions[2]
    sid2, sid3 = "0x" + s2.session_id.hex(), "0x" + s3.session_id.hex()
    for line in by_gid(fig, f"spend:{USDC}:{sid2}"):
        assert max(line.get_xdata()) == date_number(s2.revocation.time)
    (marker,) = by_gid(fig, f"revoked:{USDC}:{sid2}")
    assert list(marker.get_xdata()) == [date_number(s2.revocation.time)]
    assert list(marker.get_ydata()) == [s2.asset(USDC).history[-1][1] / 10**6 if s2.asset(USDC).history[-1][0]
                                        <= s2.revocation.time else pytest.fail("charge after revocation")]
    (line,) = by_gid(fig, f"spend:{USDC}:{sid3}")
    assert max(line.get_xdata()) == date_number(s3.policy.valid_until) < date_number(report.now)
    assert by_gid(fig, f"expired:{USDC}:{sid3}") and by_gid(fig, f"expired:sessions:{sid3}")
    # an active session runs to now
    (line,) = by_gid(fig, f"spend:{USDC}:0x{report.sessions[4].session_id.hex()}")
    assert max(line.get_xdata()) == date_number(report.now)


def test_refusals_are_marked_on_their_asset_at_the_period_spend_and_all_on_the_sessions_panel():
    report = one_session()
    fig = rendered(report)
    s = report.sessions[0]
    sid = "0x" + s.session_id.hex()
    (cross,) = by_gid(fig, f"refusal:{USDC}:{sid}")
    # refused at T0 + 2h, when 30 USDC had been spent in that UTC day
    assert list(cross.get_xdata()) == [date_number(T0 + 7_200)] and list(cross.get_ydata()) == [30.0]
    (row,) = by_gid(fig, f"refusal:sessions:{sid}")
    assert list(row.get_xdata()) == [date_number(T0 + 7_200)]
    # the period spend falls to zero at the UTC day's reset, which is marked
    (period_line,) = by_gid(fig, f"period-spend:{USDC}:{sid}")
    reset = (T0 // DAY + 1) * DAY
    xs, ys = list(period_line.get_xdata()), list(period_line.get_ydata())
    assert ys[xs.index(date_number(reset))] == 0 and max(ys) == 30.0
    (resets,) = by_gid(fig, f"period-reset:{USDC}:{DAY}")
    assert date_number(reset) in [seg[0][0] for seg in resets.get_segments()]


def test_a_refusal_without_an_asset_is_only_on_the_sessions_panel():
    report = twenty_sessions()
    fig = rendered(report)
    sid = "0x" + report.sessions[1].session_id.hex()  # SessionNotActive after the revocation
    assert not [a for a in by_gid(fig, "refusal:") if sid in a.get_gid() and not a.get_gid().startswith(
        "refusal:sessions:")]
    (row,) = by_gid(fig, f"refusal:sessions:{sid}")
    assert list(row.get_xdata()) == [date_number(T0 + 4 * DAY)]


def test_plot_writes_a_png_of_the_figure_size(tmp_path):
    import struct

    report = one_session()
    path = tmp_path / "audit.png"
    assert report.plot(str(path), width=8, dpi=50) == str(path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    w_in, h_in = report.figure(width=8).get_size_inches()
    assert struct.unpack(">II", data[16:24]) == (round(w_in * 50), round(h_in * 50))


def test_no_sessions_gives_one_sessions_panel_saying_so():
    report = _report([], T0)
    fig = rendered(report)
    assert [ax.get_label() for ax in fig.axes] == ["sessions"]
    assert "no sessions granted in this range" in [t.get_text() for t in fig.axes[0].texts]


def test_a_few_minutes_of_history_gets_distinct_time_labels():
    # the old plot's case: everything within minutes, and "%m-%d %H:%M" wrote the same label 8 times
    s = _session(0, usdc_cap=100 * 10**6, charges=tuple((T0 + 30 * k, USDC, 10**6) for k in range(1, 9)))
    fig = rendered(_report([s], T0 + 300))
    labels = [t.get_text() for t in fig.axes[-1].get_xticklabels() if t.get_visible() and t.get_text()]
    assert len(labels) >= 3 and len(set(labels)) == len(labels), labels
    (line,) = by_gid(fig, f"spend:{USDC}:0x{s.session_id.hex()}")
    assert list(line.get_ydata()) == [0.0, *range(1, 9), 8.0]  # every charge is a step, in USDC


def test_twenty_distinct_caps_are_summarised_in_one_short_line_inside_the_figure():
    """20 sessions, each with its own USDC cap (10..29 USDC), all spending 3 USDC: the caps above the axis do
    not become one label listing every cap (it ran off the right edge and collapsed the layout, cutting the
    sessions' row labels on the left); the margin's last line counts them, gives their range and sessions."""
    import warnings

    sessions = [_session(i, usdc_cap=(10 + i) * 10**6, charges=((T0 + 600 * i + 60, USDC, 3 * 10**6),))
                for i in range(20)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "constrained_layout not applied" is what the cut-off picture said
        fig = rendered(_report(sessions, T0 + DAY))
    usdc = next(ax for ax in fig.axes if ax.get_label() == f"asset:{USDC}")
    texts = [t.get_text() for t in usdc.texts]
    assert len(texts) == 6 and texts[:2] == ["cap 10 USDC · S1", "cap 11 USDC · S2"]
    # 12 USDC is the highest cap within 4x the spend (the axis top is 13.44): the rest is above the axis
    assert texts[-1] == "↑ 15 caps, 15 USDC to 29 USDC · 15 sessions"
    box = fig.bbox
    for ax in fig.axes:
        for text in [*ax.texts, *ax.get_yticklabels()]:
            extent = text.get_window_extent()
            assert box.x0 <= extent.x0 and extent.x1 <= box.x1, text.get_text()
