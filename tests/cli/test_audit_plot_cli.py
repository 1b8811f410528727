"""``smartkeys audit --plot FILE.png`` (issue 13, kind 6): the PNG it writes is the audit figure of the account."""

from __future__ import annotations

import struct

import pytest

from tests.cli.test_commands import _agent_env

pytest.importorskip("matplotlib")


def test_audit_plot_writes_the_figure_as_a_png(cli, chain, granted, delegated, agent, usdc, tmp_path):
    from smartkeys._audit_plot import date_number
    from smartkeys.audit import build_audit

    to = chain.accounts[5].address
    for amount in ("2.5", "4"):
        sent = cli("--json", "send", to, amount, "--token", usdc.address, "--key", "agent", "--via", "direct",
                   env=_agent_env(delegated))
        assert sent.code == 0, sent.err
    assert cli("revoke", granted).code == 0

    result = cli("--json", "audit", "--plot", "spend.png")
    assert result.code == 0, result.err
    path = tmp_path / "spend.png"
    assert result.json["files"]["plot"] == str(path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"

    # the same audit's figure: its size is the PNG's (100 dpi), and it shows the USDC and gas budgets of the
    # session, the 6.5 USDC spent, and the line stopping at the revocation
    report = build_audit(chain.w3, delegated)
    fig = report.figure()
    width, height = fig.get_size_inches()
    assert struct.unpack(">II", data[16:24]) == (round(width * 100), round(height * 100))
    assert [ax.get_label() for ax in fig.axes] == [f"asset:{usdc.address}", "asset:gas", "sessions"]
    assert fig.axes[0].get_ylabel().startswith("USDC") and "6.5 USDC in total" in fig.axes[0].get_title(loc="left")
    (session,) = report.sessions
    sid = "0x" + session.session_id.hex()
    (line,) = [x for x in fig.axes[0].get_lines() if x.get_gid() == f"spend:{usdc.address}:{sid}"]
    assert max(line.get_xdata()) == date_number(session.revocation.time) and line.get_ydata()[-1] == 6.5
    assert [x.get_gid() for x in fig.axes[-1].get_lines() if x.get_gid().startswith("revoked:")] == [
        f"revoked:sessions:{sid}"]
