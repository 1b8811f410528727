"""scripts/load_faults.py at a small size: agents on every path (through Alto, self-bundled, direct) pay through
the fault proxy, retry via settle, and every intent lands exactly once (the full run is in the README)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "load_faults.py"


def _load_script():
    import sys

    if "load_faults" in sys.modules:
        return sys.modules["load_faults"]
    spec = importlib.util.spec_from_file_location("load_faults", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["load_faults"] = module  # its dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


def test_a_small_load_with_faults_lands_every_intent_exactly_once(alto_chain, alto, tmp_path):
    load = _load_script()
    # faults twice as likely as in the full run: a few keys and operations still meet them
    fig = load.run(alto_chain, alto.url, keys=3, ops=3, seed=5, fault_rate=2.0, workdir=tmp_path)
    print("\n" + "\n".join(fig.lines()))
    assert fig.problems == [], fig.problems
    assert fig.intents == 3 * 3 * 3 == fig.landed_once
    assert fig.double_spends == fig.landed_twice_or_more == fig.never_landed == fig.untyped == 0
    assert fig.ledger_mismatches == fig.reported_landed_not_on_chain == fig.reported_failed_but_landed == 0
    assert fig.faults_fired > 0, "no fault fired: the run proved nothing about faults"
    assert fig.attempts >= fig.intents


def test_the_script_refuses_unknown_paths_before_starting_anything(capsys):
    load = _load_script()
    try:
        load.main(["--paths", "bundler,teleport"])
    except SystemExit as exc:
        assert exc.code == 2
    else:  # pragma: no cover
        raise AssertionError("an unknown path was accepted")
    assert "--paths takes bundler, self_bundled, direct" in capsys.readouterr().err
