"""``scripts/gas_report.py`` runs end to end and writes consistent JSON.

No timing assertions and no gas thresholds: only that every figure was measured and that the ratios are
computed from the figures of the same run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gas_report.py"

TRANSACTION_FIGURES = {
    "delegation_self_sponsored",
    "delegation_sponsored",
    "eoa_erc20_transfer",
    "owner_direct_erc20_transfer",
    "grant",
    "revoke_one",
    "revoke_all_first",
    "revoke_all_second",
    "session_direct_erc20_transfer",
}
USER_OPS = {
    "simple7702_op_first",
    "simple7702_op_steady",
    "owner_op_first",
    "owner_op_steady",
    "session_op_first",
    "session_op_steady",
}
EXPECTED_FIGURES = TRANSACTION_FIGURES | {f"{op}_{kind}" for op in USER_OPS for kind in ("bundle", "actual")}
BASELINES = {"eoa_erc20_transfer", "simple7702_op_first_bundle", "simple7702_op_steady_actual"}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    path = tmp_path_factory.mktemp("gas") / "gas.json"
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--json", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout, json.loads(path.read_text())


def test_json_has_every_figure_as_a_positive_int(report):
    _stdout, data = report
    figures = data["figures"]
    assert set(figures) == EXPECTED_FIGURES
    bad = {k: v for k, v in figures.items() if type(v) is not int or v <= 0}
    assert bad == {}


def test_every_ratio_is_computed_from_the_figures_of_the_run(report):
    _stdout, data = report
    figures, ratios = data["figures"], data["ratios"]
    assert ratios
    for name, ratio in ratios.items():
        assert ratio["numerator"] in figures and ratio["denominator"] in figures, name
        assert ratio["numerator"] != ratio["denominator"], name
        expected = figures[ratio["numerator"]] / figures[ratio["denominator"]]
        assert ratio["value"] == pytest.approx(expected, abs=5e-5), name


def test_ratios_compare_against_same_run_baselines(report):
    _stdout, data = report
    denominators = {r["denominator"] for r in data["ratios"].values()}
    assert BASELINES <= denominators
    numerators = {r["numerator"] for r in data["ratios"].values()}
    assert {"owner_direct_erc20_transfer", "owner_op_steady_actual", "session_op_steady_actual"} <= numerators


def test_printed_table_shows_the_json_figures(report):
    stdout, data = report
    figures = data["figures"]
    for name in TRANSACTION_FIGURES:
        assert f"{figures[name]:,}" in stdout, name
    for op in USER_OPS:
        assert f"{figures[op + '_bundle']:,}" in stdout, op
        assert f"{figures[op + '_actual']:,}" in stdout, op
    for ratio in data["ratios"].values():
        assert f"{ratio['value']:.3f}x" in stdout
