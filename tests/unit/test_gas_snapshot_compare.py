"""``compare_gas_snapshot``: the rule of the gas-snapshot regression test, as a pure function.

Rule: a figure may grow by at most 1 % of its snapshot value, rounded down to whole gas: exactly +1 % passes,
one gas more fails. Decreases pass (listed, with a hint to tighten the snapshot). A figure present on one
side only fails.
"""

from __future__ import annotations

from smartkeys.benchmarks import SNAPSHOT_UPDATE_HINT, compare_gas_snapshot, max_allowed


def test_identical_figures_pass_with_an_empty_report():
    result = compare_gas_snapshot({"gas.a": 100_000}, {"gas.a": 100_000})
    assert result.ok
    assert result.report() == ""


def test_exactly_one_percent_more_passes():
    result = compare_gas_snapshot({"gas.a": 100_000}, {"gas.a": 101_000})
    assert result.ok
    assert result.increases_within_tolerance == {"gas.a": (100_000, 101_000)}


def test_one_percent_plus_one_gas_fails_with_the_figures_and_the_update_command():
    result = compare_gas_snapshot({"gas.a": 100_000}, {"gas.a": 101_001})
    assert not result.ok
    assert result.regressions == {"gas.a": (100_000, 101_001)}
    report = result.report()
    assert "REGRESSION gas.a: 100,000 -> 101,001" in report
    assert SNAPSHOT_UPDATE_HINT in report


def test_allowance_is_rounded_down_when_one_percent_is_not_whole_gas():
    assert max_allowed(34_222) == 34_564  # 34,564.22
    assert compare_gas_snapshot({"gas.a": 34_222}, {"gas.a": 34_564}).ok
    assert not compare_gas_snapshot({"gas.a": 34_222}, {"gas.a": 34_565}).ok


def test_decrease_passes_and_suggests_updating_the_snapshot():
    result = compare_gas_snapshot({"gas.a": 100_000, "gas.b": 50_000}, {"gas.a": 90_000, "gas.b": 50_000})
    assert result.ok
    assert result.decreases == {"gas.a": (100_000, 90_000)}
    assert "improved gas.a: 100,000 -> 90,000" in result.report()
    assert SNAPSHOT_UPDATE_HINT in result.report()


def test_figure_missing_from_the_measurement_fails():
    result = compare_gas_snapshot({"gas.a": 1, "gas.gone": 2}, {"gas.a": 1})
    assert not result.ok
    assert result.missing == ("gas.gone",)
    assert "MISSING gas.gone" in result.report() and SNAPSHOT_UPDATE_HINT in result.report()


def test_figure_not_in_the_snapshot_fails():
    result = compare_gas_snapshot({"gas.a": 1}, {"gas.a": 1, "gas.new": 2})
    assert not result.ok
    assert result.extra == ("gas.new",)
    assert "NEW gas.new" in result.report() and SNAPSHOT_UPDATE_HINT in result.report()


def test_every_problem_is_reported_at_once():
    result = compare_gas_snapshot({"gas.up": 1_000, "gas.gone": 1}, {"gas.up": 1_011, "gas.new": 1})
    assert (set(result.regressions), result.missing, result.extra) == ({"gas.up"}, ("gas.gone",), ("gas.new",))
