"""Gas regression guard: re-measure every gas figure of ``scripts/bench.py`` on a fresh embedded chain and
compare with the committed ``bench/gas-snapshot.json``.

Fails when a figure grows by more than 1 % (exactly +1 % passes), or when a figure is missing or new; a
decrease passes and prints a hint to lock it in. Update the snapshot with
``python scripts/bench.py --gas-only --update-snapshot`` (the rule: :func:`smartkeys.benchmarks.compare_gas_snapshot`).
The figures are deterministic on eth-tester only, so the test always uses its own eth-tester chain and is
skipped in the ``--chain anvil`` pass.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smartkeys.benchmarks import SNAPSHOT_UPDATE_HINT, compare_gas_snapshot, measure_gas
from smartkeys.localchain import start_local_chain

SNAPSHOT = Path(__file__).resolve().parents[2] / "bench" / "gas-snapshot.json"


@pytest.fixture(scope="module")
def measured(chain_backend):
    if chain_backend != "eth-tester":
        pytest.skip("the gas snapshot is defined on eth-tester (it runs in the default pass)")
    chain = start_local_chain("eth-tester")
    try:
        return measure_gas(chain)
    finally:
        chain.close()


def test_no_gas_figure_grew_more_than_one_percent_over_the_snapshot(measured):
    assert SNAPSHOT.is_file(), f"{SNAPSHOT} is missing; create it with `{SNAPSHOT_UPDATE_HINT}`"
    snapshot = json.loads(SNAPSHOT.read_text())["figures"]
    result = compare_gas_snapshot(snapshot, measured)
    if result.report():
        print(result.report())
    assert result.ok, "gas snapshot check failed:\n" + result.report()
