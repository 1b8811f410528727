"""Output helpers and the commands that hand over to other modules (node, demo)."""

from __future__ import annotations

import io

import pytest

from smartkeys.cli._ui import UI, format_table


class _TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_table_aligns_columns_and_right_aligns_numbers():
    text = format_table(["NAME", "USES"], [["alpha", 3], ["b", 120]])
    assert text.splitlines() == ["NAME   USES", "-----  ----", "alpha     3", "b       120"]


def test_table_blank_cells_keep_a_number_column_right_aligned():
    text = format_table(["S", "N", "X"], [["a", 12, "p"], [None, None, "q"]])
    assert text.splitlines() == ["S   N  X", "-  --  -", "a  12  p", "       q"]


@pytest.mark.parametrize(("asset", "amount", "text"), [
    ("gas", 323_423_835_557_320, "0.000323 ETH"),  # was "323423.83555732 gwei"
    ("gas", 10**16, "0.01 ETH"),
    ("native", 25 * 10**16, "0.25 ETH"),
    ("native", 0, "0 ETH"),
    ("native", 21_000, "0.000000000000021 ETH"),  # tiny amounts keep 3 significant digits, never "0"
    ("native", 999_999_999_999_999_999, "0.999999 ETH"),  # cut, never rounded up to the cap
    ("0x00000000000000000000000000000000000000aa", 3_140_000, "3.14 USDC"),
    ("0x00000000000000000000000000000000000000bb", 7, "7 units of 0x00000000000000000000000000000000000000bb"),
])
def test_format_asset_uses_one_readable_unit_per_asset(asset, amount, text):
    from smartkeys.audit import format_asset

    assert format_asset(asset, amount, {"0x00000000000000000000000000000000000000aa": ("USDC", 6)}) == text


def test_progress_is_silent_unless_stderr_is_a_terminal():
    err = io.StringIO()
    with UI(io.StringIO(), err, io.StringIO(), json_mode=False).progress("waiting"):
        pass
    assert err.getvalue() == ""
    tty = _TTY()
    ui = UI(io.StringIO(), tty, io.StringIO(), json_mode=False)
    import time

    with ui.progress("waiting"):
        time.sleep(0.25)
    assert "waiting…" in tty.getvalue() and tty.getvalue().endswith("\r\033[K")


def test_json_mode_keeps_human_output_off_stdout():
    out = io.StringIO()
    ui = UI(out, io.StringIO(), io.StringIO(), json_mode=True)
    ui.print("human")
    ui.table(["A"], [["x"]])
    ui.emit_json({"b": b"\x01", "t": (1, 2)})
    assert out.getvalue() == '{\n  "b": "0x01",\n  "t": [\n    1,\n    2\n  ]\n}\n'


def test_node_is_wired_to_run_node(monkeypatch):
    from smartkeys.cli import main

    calls = []

    def fake_run_node(**kwargs):
        calls.append(kwargs)
        return 0

    monkeypatch.setattr("smartkeys.node.run_node", fake_run_node)
    out = io.StringIO()
    code = main(["node", "--port", "8600", "--bundler", "--json"], stdout=out, stderr=io.StringIO(), env={})
    assert code == 0 and out.getvalue() == ""  # run_node prints its own JSON document
    (kwargs,) = calls
    assert kwargs == {"host": "127.0.0.1", "port": 8600, "bundler": True, "bundler_port": None, "out": out,
                      "json_output": True}


def test_demo_is_wired_to_run_demo(monkeypatch):
    from smartkeys.cli import main

    def fake_run_demo(out, color=False, record=None):
        print("1. Delegate the owner's EOA", file=out)
        record["steps"] = [{"step": "pay-direct", "outcome": "allowed"}]
        return 0

    monkeypatch.setattr("smartkeys.demo.run_demo", fake_run_demo)
    out = io.StringIO()
    assert main(["demo", "--json"], stdout=out, stderr=io.StringIO(), env={}) == 0
    import json

    # the record run_demo fills is the JSON, the printed lines ride along as `transcript`
    assert json.loads(out.getvalue()) == {"ok": True, "command": "demo", "transcript": ["1. Delegate the owner's EOA"],
                                          "steps": [{"step": "pay-direct", "outcome": "allowed"}]}
