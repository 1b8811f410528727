"""``scripts/bench.py`` (and its gas-only alias ``scripts/gas_report.py``) run end to end and write consistent JSON.

No timing assertions and no gas thresholds: only that every figure the issue asks for was measured, that the
ratios and the targets are computed from the figures of the same run, and that the table shows them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "scripts" / "bench.py"
GAS_REPORT = ROOT / "scripts" / "gas_report.py"

REQUIRED_GAS = {
    "gas.delegate",
    "gas.grant_session",
    "gas.revoke_session",
    "gas.revoke_all",
    "gas.plain_eoa_erc20",
    "gas.owner_erc20_userop.simple7702",
    "gas.owner_erc20_userop.simple7702.actual",
    "gas.owner_erc20_userop.smartkeys",
    "gas.owner_erc20_userop.smartkeys.actual",
    "gas.session_erc20_userop.smartkeys",
    "gas.session_erc20_userop.smartkeys.actual",
    "gas.session_erc20_direct.smartkeys",
}
REQUIRED_RATIOS = {"ratio.session_userop_vs_simple7702_owner", "ratio.session_direct_vs_plain_eoa"}
REQUIRED_DELTAS = {"delta.session_userop_rules3_vs_no_rules", "delta.session_userop_rules16_vs_no_rules"}
REQUIRED_TIMES = {
    "py.userops_signed_per_s",
    "py.raw_sign_per_s",
    "py.preflight_checks_per_s",
    "e2e.grant_use_revoke_s.eth-tester",
}
TARGETED = {
    "ratio.session_userop_vs_simple7702_owner", "ratio.session_direct_vs_plain_eoa", "gas.grant_session",
    "gas.revoke_session", "py.userops_signed_per_s", "py.preflight_checks_per_s", *REQUIRED_DELTAS,
}


def _run(script: Path, *args: str) -> subprocess.CompletedProcess:
    run = subprocess.run([sys.executable, str(script), *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return run


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A short full run without anvil (the anvil e2e needs a node; ``bench.py`` itself covers it)."""
    path = tmp_path_factory.mktemp("bench") / "results.json"
    run = _run(BENCH, "--skip-anvil", "--seconds", "0.1", "--rounds", "2", "--out", str(path))
    return run.stdout, json.loads(path.read_text())


def test_results_have_every_required_figure(report):
    _stdout, data = report
    figures = data["figures"]
    missing = (REQUIRED_GAS | REQUIRED_RATIOS | REQUIRED_DELTAS | REQUIRED_TIMES) - set(figures)
    assert missing == set()
    bad = {k: v for k, v in figures.items() if k.startswith("gas.") and (type(v) is not int or v <= 0)}
    assert bad == {}
    assert all(figures[k] > 0 for k in REQUIRED_TIMES)
    assert set(data["units"]) == set(figures)


def test_results_carry_the_run_metadata(report):
    _stdout, data = report
    meta = data["metadata"]
    assert meta["gas_chain"] == "eth-tester" and meta["e2e_chains"] == ["eth-tester"]
    assert meta["machine_cores"] >= 1 and meta["python"] and meta["versions"]["web3"] and meta["date"]
    assert "git_commit" in meta


def test_every_ratio_is_computed_from_the_figures_of_the_run(report):
    _stdout, data = report
    figures, ratios = data["figures"], data["ratios"]
    assert REQUIRED_RATIOS <= set(ratios)
    for name, ratio in ratios.items():
        num, den = ratio["numerator"], ratio["denominator"]
        assert num != den, name
        assert figures[name] == pytest.approx(figures[num] / figures[den], abs=5e-5), name


def test_every_delta_is_computed_from_the_figures_of_the_run(report):
    """Issue 12's targets are increases over the same op without rules measured in the same run, never a
    baseline figure written down once."""
    _stdout, data = report
    figures, deltas = data["figures"], data["deltas"]
    assert REQUIRED_DELTAS <= set(deltas)
    for name, d in deltas.items():
        a, b = d["minuend"], d["subtrahend"]
        assert a != b and a.startswith("gas.") and b.startswith("gas."), name
        assert figures[name] == figures[a] - figures[b], name
        assert data["units"][name] == "gas"


def test_targets_are_judged_on_the_figures_of_the_run(report):
    _stdout, data = report
    targets = data["targets"]
    assert TARGETED <= set(targets)
    for name, t in targets.items():
        assert t["value"] == data["figures"][name]
        op, bound = t["target"].split()
        bound = float(bound.rstrip("x").replace(",", ""))
        assert t["met"] == (t["value"] <= bound if op == "<=" else t["value"] >= bound), name


def test_printed_table_shows_figures_and_targets(report):
    stdout, data = report
    figures = data["figures"]
    for name in REQUIRED_GAS:
        assert f"{figures[name]:,}" in stdout, name
    for name in REQUIRED_RATIOS:
        assert f"{figures[name]:.3f}" in stdout, name
    for name in REQUIRED_DELTAS:
        assert f"{figures[name]:+,}" in stdout, name
    assert "<= 1.15x" in stdout and ">= 100,000" in stdout
    rows: dict[str, str] = {}
    for line in stdout.splitlines():
        if line.strip():
            rows.setdefault(line.split()[0], line.rstrip())  # the table row comes before any footnote
    for name, t in data["targets"].items():
        verdict = rows[name].split()[-2:]
        assert t["target"] in rows[name], rows[name]
        assert verdict[-1] == "met" if t["met"] else verdict == ["NOT", "MET"], rows[name]


def test_gas_report_alias_writes_the_same_gas_figures(report, tmp_path):
    _stdout, data = report
    path = tmp_path / "gas.json"
    _run(GAS_REPORT, "--json", str(path))
    gas_only = json.loads(path.read_text())["figures"]
    full = data["figures"]
    assert {k for k in gas_only if k.startswith("gas.")} == {k for k in full if k.startswith("gas.")}
    assert not any(k.startswith(("py.", "e2e.")) for k in gas_only)
    assert gas_only == {k: full[k] for k in gas_only}  # deterministic gas: same figures, same ratios
