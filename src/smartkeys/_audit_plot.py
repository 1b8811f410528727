"""The audit picture: :meth:`smartkeys.audit.AuditReport.figure` / :meth:`~smartkeys.audit.AuditReport.plot`.

Layout (top to bottom, one shared UTC time axis):

- one panel per asset a session budgets or spent (native value, each token in the order first granted, then
  gas), in human units (ETH, the token's symbol and decimals; base units when a token does not say);
  per session a step line of its cumulative spend from its grant to where it stopped (its revocation, its
  expiry, or the report's ``now``), ended by a marker saying which; its refusals (from the refusal journal)
  as red crosses where they concern that asset; the cumulative caps as dashed lines, one per distinct value
  (the sessions sharing it named in the right margin); periodic caps as dotted lines with each session's
  spend in the current period (thin dotted steps that fall to zero at each reset) and the period resets as
  faint vertical lines (the contract's windows: ``timestamp // period``, aligned on 1970-01-01 UTC);
- one "sessions" panel: a row per session (``S1`` .. ``Sn`` in grant order, key and status) from grant to
  end, with its uses, refusals (every refusal, whatever the error), revocation or expiry.

Sessions keep their colour in every panel; the legend explains the marks (not the sessions, which the
sessions panel names), so its size does not grow with the number of sessions; it sits outside every axes,
right of the panels. Gas has no per-use event (see :mod:`smartkeys.audit`): a session's gas is drawn as its
total at the end of its line.

Artists carry ids (``Artist.get_gid``) that tests and tools can read: axes are labelled ``asset:<asset>``
and ``sessions``; ``spend:<asset>:<session id hex>``, ``period-spend:…``, ``cap:<asset>:<base units>``,
``period-cap:<asset>:<base units>:<period>``, ``period-reset:<asset>:<period>``, ``refusal:<asset>:<sid>``,
``revoked:<asset>:<sid>``, ``expired:<asset>:<sid>``, ``gas-total:<sid>`` (``<asset>`` is ``sessions`` for
the sessions panel's marks). Times are matplotlib date numbers (days since 1970-01-01 UTC).

matplotlib is used through its object API (``matplotlib.figure.Figure``): no pyplot, no global backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from smartkeys.audit import AssetAudit, AuditEntry, AuditReport, SessionAudit

__all__ = ["audit_figure", "date_number"]

_NATIVE, _GAS = "native", "gas"
_PERIOD_LINES_MAX = 60
"""At most this many reset lines per period length in a panel; more would grey the panel out: then resets
are short ticks on the panel's top edge instead."""
_REFUSAL_COLOUR = "#c00000"
_ZOOM = 4
"""When the highest cap is more than this many times the highest spend, the axis fits the spend."""
_END_KINDS = ("revoked", "expired", "active", "not-yet-valid")


def date_number(t: float) -> float:
    """matplotlib's date number (days since 1970-01-01 UTC, its default epoch) of unix seconds ``t``."""
    return float(t) / 86_400.0


@dataclass
class _Lane:
    """One session as drawn: its number, colour, and where its line stops (and why)."""

    number: int
    session: SessionAudit
    colour: Any
    start: int
    end: int
    end_kind: str  # one of _END_KINDS

    @property
    def sid(self) -> str:
        return "0x" + self.session.session_id.hex()

    @property
    def name(self) -> str:
        return f"S{self.number}"

    @property
    def row_label(self) -> str:
        key = self.session.key
        status = "revoked" if self.end_kind == "revoked" else self.session.status
        return f"{self.name}  {key[:6]}…{key[-4:]}  {status}"


def _lanes(report: AuditReport) -> list[_Lane]:
    from matplotlib import colormaps

    sessions = sorted(report.sessions, key=lambda s: (s.granted_block, s.granted_time))
    n = len(sessions)
    # a qualitative palette: 10 clearly different colours up to 10 sessions, 20 (paired shades) up to 20, then
    # evenly spread hues (colours repeat their hue family beyond that; the sessions panel names each row)
    if n <= 10:
        palette = [colormaps["tab10"](i) for i in range(10)]
    elif n <= 20:
        palette = [colormaps["tab20"](i) for i in range(20)]
    else:
        palette = [colormaps["turbo"](0.05 + 0.9 * i / (n - 1)) for i in range(n)]
    lanes = []
    for i, s in enumerate(sessions):
        ends = [(report.now, "active" if s.status != "not-yet-valid" else "not-yet-valid")]
        if s.revocation is not None:
            ends.append((s.revocation.time, "revoked"))
        if s.policy.valid_until < report.now:
            ends.append((s.policy.valid_until, "expired"))
        end, kind = min(ends, key=lambda e: (e[0], _END_KINDS.index(e[1])))
        lanes.append(_Lane(i + 1, s, palette[i % len(palette)], s.granted_time, max(end, s.granted_time), kind))
    return lanes


def _assets(report: AuditReport) -> list[str]:
    """Native, then tokens in the order first granted, then gas: those some session budgets or spent."""
    seen: list[str] = []
    for s in sorted(report.sessions, key=lambda s: (s.granted_block, s.granted_time)):
        for a in s.assets:
            if _drawn(a) and a.asset not in seen:
                seen.append(a.asset)
    order = {_NATIVE: 0, _GAS: 2}
    return sorted(seen, key=lambda x: order.get(x, 1))  # stable: tokens keep their grant order


def _drawn(a: AssetAudit) -> bool:
    return a.cap > 0 or a.period_cap > 0 or a.spent > 0


def _unit(report: AuditReport, asset: str) -> tuple[int, str, str]:
    """(base units per human unit, unit text, panel title)."""
    if asset == _NATIVE:
        return 10**18, "ETH", "Native value sent (ETH)"
    if asset == _GAS:
        return 10**18, "ETH", "Gas paid by the account for user operations (ETH)"
    short = f"{asset[:6]}…{asset[-4:]}"
    if asset in report.tokens:
        symbol, decimals = report.tokens[asset]
        return 10**decimals, symbol, f"{symbol} sent (token {short})"
    return 1, "base units", f"Token {short} sent (base units: the token does not answer symbol/decimals)"


def _period_name(period: int) -> str:
    from smartkeys.timefmt import period_text

    return period_text(period).split(" (")[0]  # "per UTC day", "per 2-hour window"


def _spent_at(history: Sequence[tuple[int, int]], t: int) -> int:
    value = 0
    for when, spent in history:
        if when > t:
            break
        value = spent
    return value


def _refusal_asset(entry: AuditEntry) -> str | None:
    """The asset a refusal is about (its error's ``token`` field, native or gas), or None."""
    r = entry.refusal
    if r is None:
        return None
    token = r.fields.get("token")
    if isinstance(token, str) and token.startswith("0x") and len(token) == 42:
        from eth_utils import to_checksum_address

        return to_checksum_address(token)
    if r.error.startswith("Native"):
        return _NATIVE
    if r.error.startswith("GasBudget"):
        return _GAS
    return None


def _names(lanes: Sequence[_Lane]) -> str:
    if len(lanes) <= 3:
        return ", ".join(lane.name for lane in lanes)
    return f"{len(lanes)} sessions"


# --------------------------------------------------------------------------------------------
# the figure
# --------------------------------------------------------------------------------------------


def audit_figure(report: AuditReport, *, width: float = 12.0) -> Figure:
    """The audit picture of ``report`` as a matplotlib ``Figure`` (see the module docstring for its content
    and the artist ids). ``width`` in inches; the height follows the number of panels and sessions.

    Raises ``ImportError`` without matplotlib (the caller turns it into the error naming the fix).
    """
    import matplotlib.dates as mdates
    from matplotlib.figure import Figure
    from matplotlib.layout_engine import ConstrainedLayoutEngine
    from matplotlib.lines import Line2D

    from smartkeys.timefmt import utc_text

    lanes = _lanes(report)
    assets = _assets(report)
    panel_h, row_h = 2.5, 0.24
    lanes_h = 0.9 + row_h * max(len(lanes), 1)
    heights = [panel_h if asset != _GAS else 1.8 for asset in assets] + [lanes_h]  # gas: totals only
    # constrained layout keeps the margin labels and the legend inside the figure; the wider pad keeps them in
    # at low dpi too, where small text renders a few pixels wider than the layout measured
    fig = Figure(figsize=(width, sum(heights) + 1.0), layout=ConstrainedLayoutEngine(w_pad=0.15, h_pad=0.06))
    axes = fig.subplots(len(heights), 1, sharex=True, squeeze=False, height_ratios=heights)[:, 0]

    start = min([lane.start for lane in lanes] + [e.time for e in report.entries] + [report.now])
    span = max(report.now - start, 60)
    x0, x1 = date_number(start - 0.02 * span), date_number(report.now + 0.02 * span)
    for ax, asset in zip(axes, assets, strict=False):  # the last axes is the sessions panel
        _asset_panel(ax, report, asset, lanes, (x0, x1))
    _sessions_panel(axes[-1], report, lanes)

    locator = mdates.AutoDateLocator(minticks=4, maxticks=10)
    bottom = axes[-1]
    bottom.xaxis.set_major_locator(locator)
    bottom.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, show_offset=True))
    bottom.set_xlim(x0, x1)
    bottom.set_xlabel("time (UTC)")

    drawn = sum(len(lane.session.refusals) for lane in lanes)
    refusals = f"{drawn} refusal{'s' if drawn != 1 else ''}"
    if len(report.refusals) > drawn:  # of sessions granted before the range: no line to put them on
        refusals += f" (+{len(report.refusals) - drawn} of sessions granted before block {report.from_block})"
    first = utc_text(start, sep=" ", suffix="")[:16]
    last = utc_text(report.now, sep=" ", suffix="")[:16]
    fig.suptitle(f"Session keys of {report.account} (chain {report.chain_id})\n"
                 f"{first} to {last} UTC · blocks {report.from_block}–{report.to_block} · "
                 f"{len(lanes)} session{'s' if len(lanes) != 1 else ''}, {refusals}", fontsize="medium")

    grey = "0.3"
    handles = [
        Line2D([], [], color=grey, linewidth=2, label="cumulative spend (colour = session)"),
        Line2D([], [], color=grey, linestyle="--", linewidth=1.2, label="cap (one line per value)"),
        Line2D([], [], color=grey, linestyle=":", linewidth=1.2, label="cap per period"),
        Line2D([], [], color=grey, linestyle=":", linewidth=0.9, alpha=0.7, label="spent this period"),
        Line2D([], [], color="0.6", linestyle=(0, (1, 3)), linewidth=0.8, label="period reset"),
        Line2D([], [], color=grey, marker="o", markersize=6, markeredgecolor="black", markeredgewidth=0.6,
               linestyle="", label="granted"),
        Line2D([], [], color="black", marker="o", markersize=3, linestyle="", label="use"),
        Line2D([], [], color=_REFUSAL_COLOUR, marker="x", markersize=8, markeredgewidth=2, linestyle="",
               label="refusal (journal)"),
        Line2D([], [], color=grey, marker="X", markersize=9, markeredgecolor="black", linestyle="", label="revoked"),
        Line2D([], [], color="black", marker="|", markersize=12, markeredgewidth=2.5, linestyle="",
               label="expired"),
        Line2D([], [], color=grey, marker=">", markersize=6, linestyle="", label="active at the end"),
    ]
    if _GAS in assets:
        handles.append(Line2D([], [], color=grey, marker="D", markersize=5, linestyle="",
                              label="gas total (no per-use event)"))
    fig.legend(handles=handles, loc="outside lower center", ncols=(len(handles) + 1) // 2, fontsize="small",
               frameon=True)
    return fig


def _asset_panel(ax: Any, report: AuditReport, asset: str, lanes: Sequence[_Lane],
                 xlim: tuple[float, float]) -> None:
    from smartkeys.audit import format_asset

    scale, unit, title = _unit(report, asset)
    ax.set_label(f"asset:{asset}")
    ax.set_ylabel(f"{unit}, cumulative" if unit != "base units" else "base units, cumulative")
    ax.grid(True, alpha=0.25)
    caps: dict[int, list[_Lane]] = {}
    period_caps: dict[tuple[int, int], list[_Lane]] = {}
    periods: set[int] = set()
    top = spent_top = 0.0
    budgets: list[_Lane] = []
    total = 0
    users = 0
    for lane in lanes:
        a = next((x for x in lane.session.assets if x.asset == asset and _drawn(x)), None)
        if a is None:
            continue
        budgets.append(lane)
        c = lane.colour
        total += a.spent
        users += 1 if a.spent else 0
        if a.cap:
            caps.setdefault(a.cap, []).append(lane)
        if a.period and a.period_cap:
            period_caps.setdefault((a.period_cap, a.period), []).append(lane)
            periods.add(a.period)
        top = max(top, a.cap / scale, a.period_cap / scale, a.spent / scale)
        spent_top = max(spent_top, a.spent / scale)
        end_x = date_number(lane.end)
        if asset == _GAS:  # a total read from the status word: no path in time to draw
            ax.plot([end_x], [a.spent / scale], marker="D", markersize=5, color=c, markeredgecolor="black",
                    markeredgewidth=0.5, linestyle="", gid=f"gas-total:{lane.sid}")
            last = a.spent
        else:
            points = [(t, v) for t, v in a.history if t <= lane.end] or [(lane.start, 0)]
            last = points[-1][1]
            xs = [date_number(t) for t, _ in points] + [end_x]
            ys = [v / scale for _, v in points] + [last / scale]
            ax.step(xs, ys, where="post", color=c, linewidth=1.8, gid=f"spend:{asset}:{lane.sid}")
            if a.period and a.period_cap:
                px, py = _period_series(a, lane)
                ax.step([date_number(t) for t in px], [v / scale for v in py], where="post", color=c,
                        linewidth=0.9, linestyle=":", alpha=0.8, gid=f"period-spend:{asset}:{lane.sid}")
        if asset != _GAS:  # the diamond is the gas line's end
            _end_marker(ax, lane, end_x, last / scale, asset)
        for e in lane.session.refusals:
            if _refusal_asset(e) != asset:
                continue
            y = a.spent if asset == _GAS else _spent_at(a.history, e.time)
            if asset != _GAS and e.refusal is not None and "Period" in e.refusal.error and a.period:
                y = _spent_at(a.history, e.time) - _spent_at(a.history, (e.time // a.period) * a.period - 1)
            ax.plot([date_number(e.time)], [y / scale], marker="x", markersize=8, markeredgewidth=2,
                    color=_REFUSAL_COLOUR, linestyle="", zorder=5, gid=f"refusal:{asset}:{lane.sid}")
    # caps far above what was spent would squash every line to the floor: then the axis fits the spend (and
    # the caps within ZOOM x of it) and the caps above are listed at the top of the margin, marked as such
    ymax = top * 1.12 if top > 0 else 1.0
    if 0 < spent_top and top > _ZOOM * spent_top:
        ymax = 1.12 * max([spent_top] + [v / scale for v in (*caps, *(c for c, _ in period_caps))
                                         if v / scale <= _ZOOM * spent_top])
    ax.set_ylim(-0.03 * ymax, ymax)
    labels: list[_Label] = []
    lines = [("--", f"cap:{asset}:{cap}", cap, f"cap {format_asset(asset, cap, report.tokens)}", group)
             for cap, group in sorted(caps.items())]
    lines += [(":", f"period-cap:{asset}:{cap}:{period}", cap,
               f"{format_asset(asset, cap, report.tokens)} {_period_name(period)}", group)
              for (cap, period), group in sorted(period_caps.items())]
    for style, gid, cap, text, group in lines:
        colour = group[0].colour if len(group) == 1 else "0.3"
        ax.plot([date_number(min(x.start for x in group)), date_number(max(x.end for x in group))],
                [cap / scale] * 2, linestyle=style, linewidth=1.2, color=colour, gid=gid)
        labels.append(_Label(min(cap / scale, ymax), text, colour, tuple(group), cap / scale > ymax,
                             format_asset(asset, cap, report.tokens)))
    ax.set_title(f"{title}: {format_asset(asset, total, report.tokens)} in total, by {users} of {len(budgets)} "
                 f"session{'s' if len(budgets) != 1 else ''}", loc="left", fontsize="medium")
    for period in sorted(periods):
        _period_resets(ax, asset, period, xlim)
    _margin_labels(ax, labels, ymax)


def _period_series(a: AssetAudit, lane: _Lane) -> tuple[list[int], list[int]]:
    """(times, spent in the current period) from the grant to the lane's end, falling to 0 at each reset."""
    times = sorted({t for t, _ in a.history if t <= lane.end} | {lane.start})
    resets = range((lane.start // a.period + 1) * a.period, lane.end + 1, a.period)
    if len(resets) <= 10_000:  # a minute period over a year would be 500k points: draw the charges only
        times = sorted(set(times) | set(resets))
    xs, ys = [], []
    for t in times:
        xs.append(t)
        ys.append(_spent_at(a.history, t) - _spent_at(a.history, (t // a.period) * a.period - 1))
    xs.append(lane.end)
    ys.append(ys[-1])
    return xs, ys


def _period_resets(ax: Any, asset: str, period: int, xlim: tuple[float, float]) -> None:
    first = int(xlim[0] * 86_400) // period + 1
    last = int(xlim[1] * 86_400) // period
    xs = [date_number(k * period) for k in range(first, last + 1)] if last - first < 100_000 else []
    if not xs:
        return
    if len(xs) <= _PERIOD_LINES_MAX:
        ax.vlines(xs, 0, 1, transform=ax.get_xaxis_transform(), colors="0.6", linestyles=[(0, (1, 3))],
                  linewidth=0.8, zorder=0, gid=f"period-reset:{asset}:{period}")
    else:  # too many to draw across: short ticks on the top edge
        ax.vlines(xs, 0.97, 1, transform=ax.get_xaxis_transform(), colors="0.5", linewidth=0.5,
                  gid=f"period-reset:{asset}:{period}")


def _end_marker(ax: Any, lane: _Lane, x: float, y: float, where: str) -> None:
    if lane.end_kind == "revoked":
        ax.plot([x], [y], marker="X", markersize=9, color=lane.colour, markeredgecolor="black", linestyle="",
                zorder=4, gid=f"revoked:{where}:{lane.sid}")
    elif lane.end_kind == "expired":
        ax.plot([x], [y], marker="|", markersize=12, markeredgewidth=2.5, color="black", linestyle="", zorder=4,
                gid=f"expired:{where}:{lane.sid}")
    elif where == "sessions":
        ax.plot([x], [y], marker=">", markersize=6, color=lane.colour, linestyle="", zorder=4,
                gid=f"active:{where}:{lane.sid}")


@dataclass
class _Label:
    """A cap label of the right margin: the cap's height (data units, clipped to the axis top), its text
    ("cap 15 USDC", "40 USDC per UTC day"), colour, the sessions it binds, whether it is above the axis, and
    its amount alone ("15 USDC", for a merged line's range)."""

    y: float
    text: str
    colour: Any
    lanes: tuple[_Lane, ...]
    above: bool
    amount: str

    def line(self) -> str:
        up = self.above
        return f"{'↑ ' if up else ''}{self.text} · {_names(self.lanes)}{' (above the axis)' if up else ''}"


_MARGIN_LINES = 6
"""At most this many cap labels per panel; the caps beyond are one merged line (see :func:`_merged`)."""


def _merged(group: Sequence[_Label]) -> str:
    """One short line for several caps, so the margin stays narrow whatever their number:
    "↑ 15 caps, 15 USDC to 29 USDC · 15 sessions"."""
    sessions = {lane.number for label in group for lane in label.lanes}
    amounts = sorted(group, key=lambda label: label.y)
    span = amounts[0].amount if amounts[0].amount == amounts[-1].amount else \
        f"{amounts[0].amount} to {amounts[-1].amount}"
    up = "↑ " if any(label.above for label in group) else ""
    return f"{up}{len(group)} caps, {span} · {len(sessions)} session{'s' if len(sessions) != 1 else ''}"


def _margin_labels(ax: Any, labels: list[_Label], ymax: float) -> None:
    """Cap labels in the right margin (outside the data area) at their line's height, pushed apart so they
    never overlap; when they would need more than ``_MARGIN_LINES`` lines, the last line summarises the rest
    (count, amount range, sessions) instead of listing them, so no label grows with the number of caps."""
    if not labels:
        return
    lo = -0.03 * ymax
    min_gap = 0.14  # of the axes height: one line of small text in a 2.5 in panel
    ordered = sorted(labels, key=lambda label: (label.y, label.text))
    placed: list[tuple[float, list[_Label]]] = []
    for label in ordered:
        frac = (label.y - lo) / (ymax - lo)
        if placed and frac - placed[-1][0] < min_gap:
            if len(placed) >= _MARGIN_LINES:  # no room for more lines: into the last (merged) line
                placed[-1][1].append(label)
                continue
            frac = placed[-1][0] + min_gap
        placed.append((frac, [label]))
    overflow = placed[-1][0] - 1.0
    if overflow > 0:  # shift the stack down into the axes' height
        placed = [(f - overflow, g) for f, g in placed]
    for frac, group in placed:
        text = group[0].line() if len(group) == 1 else _merged(group)
        colour = group[0].colour if len(group) == 1 and group[0].colour != "0.3" else "black"
        ax.annotate(text, xy=(1.0, frac), xycoords="axes fraction", xytext=(6, 0), textcoords="offset points",
                    va="center", ha="left", fontsize="x-small", color=colour, annotation_clip=False)


def _sessions_panel(ax: Any, report: AuditReport, lanes: Sequence[_Lane]) -> None:
    ax.set_label("sessions")
    ax.set_title("Sessions: life, uses, refusals, revocation and expiry", loc="left", fontsize="medium")
    ax.grid(True, axis="x", alpha=0.25)
    if not lanes:
        ax.text(0.5, 0.5, "no sessions granted in this range", transform=ax.transAxes, ha="center", va="center")
        ax.set_yticks([])
        return
    n = len(lanes)
    for lane in lanes:
        y = n - lane.number  # S1 on top
        ax.hlines(y, date_number(lane.start), date_number(lane.end), colors=[lane.colour], linewidth=5,
                  gid=f"life:{lane.sid}")
        # the grant, so a session that lived minutes in a week-long picture is still seen
        ax.plot([date_number(lane.start)], [y], marker="o", markersize=6, color=lane.colour, markeredgecolor="black",
                markeredgewidth=0.6, linestyle="", zorder=3, gid=f"granted:sessions:{lane.sid}")
        uses = [date_number(e.time) for e in lane.session.entries if e.kind == "use" and e.time <= lane.end]
        if uses:
            ax.plot(uses, [y] * len(uses), marker="o", markersize=3, color="black", linestyle="", zorder=3,
                    gid=f"use:sessions:{lane.sid}")
        refused = [date_number(e.time) for e in lane.session.refusals]
        if refused:
            ax.plot(refused, [y] * len(refused), marker="x", markersize=8, markeredgewidth=2,
                    color=_REFUSAL_COLOUR, linestyle="", zorder=5, gid=f"refusal:sessions:{lane.sid}")
        _end_marker(ax, lane, date_number(lane.end), y, "sessions")
    ax.set_yticks([n - lane.number for lane in lanes], [lane.row_label for lane in lanes],
                  fontsize="x-small", family="monospace")
    ax.set_ylim(-0.7, n - 0.3)
