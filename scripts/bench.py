"""Every smartkeys benchmark in one run: gas, Python throughput and end-to-end latency, with the issue's targets.

Runs the gas scenarios on a fresh local chain (eth-tester by default), times user-operation signing (and raw
libsecp256k1 signing, the ceiling) and offline preflight checks, and times grant + use + revoke end to end on
eth-tester AND on a real anvil node. Prints one table (figure, value, unit, ratio or baseline, target, met)
and writes ``bench/results.json`` (flat dotted figure names, see :mod:`smartkeys.benchmarks`, plus metadata).

Usage (from the repository root)::

    python scripts/bench.py                          # everything; needs anvil (`npm ci`)
    python scripts/bench.py --skip-anvil             # no anvil: e2e on eth-tester only
    python scripts/bench.py --gas-only               # gas scenarios only, a few seconds, writes no results
    python scripts/bench.py --gas-only --update-snapshot   # rewrite bench/gas-snapshot.json

Times depend on the machine and its load: they are the best of several rounds after a warm-up (medians are
in the JSON). Gas figures on eth-tester are deterministic; ``--update-snapshot`` records them for
``tests/integration/test_gas_snapshot.py``, which fails when one grows by more than 1 %.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib import metadata as _md
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
try:
    import smartkeys  # noqa: F401
except ImportError:  # running from a checkout without an install
    sys.path.insert(0, str(ROOT / "src"))

from smartkeys.benchmarks import (  # noqa: E402
    DELTAS,
    GAS_TOLERANCE,
    PEERS,
    RATIOS,
    SNAPSHOT_UPDATE_HINT,
    TARGETS,
    Timing,
    deltas,
    e2e_grant_use_revoke,
    measure_gas,
    preflight_rates,
    ratios,
    sign_rates,
    unit_of,
)
from smartkeys.localchain import LocalChainError, find_anvil, start_local_chain  # noqa: E402

DEFAULT_OUT = ROOT / "bench" / "results.json"
DEFAULT_SNAPSHOT = ROOT / "bench" / "gas-snapshot.json"

#: figure -> the figure it is compared with in the table's "vs baseline" column
BASELINE_OF: dict[str, str] = {}
for _name, (_num, _den) in RATIOS.items():  # the first ratio of a figure names its baseline
    if not _name.endswith(".actual"):
        BASELINE_OF.setdefault(_num, _den)
BASELINE_OF.update({
    "gas.session_erc20_userop.smartkeys.actual": "gas.owner_erc20_userop.simple7702.actual",
    "gas.owner_erc20_userop.smartkeys.actual": "gas.owner_erc20_userop.simple7702.actual",
    "gas.owner_erc20_userop_first.smartkeys": "gas.owner_erc20_userop_first.simple7702",
    "py.userops_signed_per_s.7702_init_code": "py.raw_sign_per_s",
})


def _say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _version(dist: str) -> str | None:
    try:
        return _md.version(dist)
    except _md.PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    try:
        run = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return run.stdout.strip() if run.returncode == 0 else None


def _anvil_version(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        run = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return run.stdout.strip().splitlines()[0] if run.returncode == 0 and run.stdout.strip() else None


def metadata(chain_backend: str, anvil_path: str | None, args: argparse.Namespace) -> dict[str, Any]:
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "gas_chain": chain_backend,
        "e2e_chains": ["eth-tester"] + ([] if args.skip_anvil else ["anvil"]),
        "anvil": _anvil_version(anvil_path),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine_cores": os.cpu_count(),
        "versions": {d: _version(d) for d in ("smartkeys", "web3", "eth-account", "eth-tester", "py-evm",
                                               "coincurve", "eth-abi")},
        "timing": f"best of {args.rounds} rounds after a warm-up ({args.seconds} s per throughput figure, "
                  f"e2e: 1 warm-up + {args.rounds} rounds); medians under '<figure>.median'",
    }


def _fmt(figure: str, value: float) -> str:
    if figure.startswith("ratio."):
        return f"{value:.3f}"
    if figure.startswith("delta."):
        return f"{value:+,}"
    if figure.startswith("e2e."):
        return f"{value:.3f}"
    if isinstance(value, int) or figure.startswith("py."):
        return f"{value:,.0f}"
    return f"{value}"


def table(figures: dict[str, float]) -> str:
    targets = {t.figure: t for t in TARGETS}
    shown = [k for k in figures if not k.endswith(".median")]
    width = max(len(k) for k in shown) + 2
    head = f"{'figure':<{width}}{'value':>12}  {'unit':<9}{'vs baseline':>12}  {'target':<12}{'met':<8}"
    lines = [head, "-" * len(head)]
    for name in shown:
        value = figures[name]
        base = BASELINE_OF.get(name)
        vs = f"{value / figures[base]:.3f}x" if base in figures else ""
        target = targets.get(name)
        tgt, met = (str(target), "met" if target.met(value) else "NOT MET") if target else ("", "")
        lines.append(f"{name:<{width}}{_fmt(name, value):>12}  {unit_of(name):<9}{vs:>12}  {tgt:<12}{met:<8}")
    lines += ["", "vs baseline: the figure divided by the figure it is compared with:"]
    lines += [f"  {num} / {den}" for num, den in sorted(BASELINE_OF.items()) if num in figures and den in figures]
    shown_deltas = [(name, a, b) for name, (a, b) in DELTAS.items() if name in figures]
    if shown_deltas:
        lines += ["delta.X: gas of one figure minus another, both from this run:"]
        lines += [f"  {name} = {a} - {b}" for name, a, b in shown_deltas]
    lines += [
        "gas.X: the transaction's gasUsed (a user op: the handleOps bundle holding only that op);",
        "gas.X.actual: the EntryPoint's actualGasUsed (with preVerificationGas, without the bundle's intrinsic gas).",
    ]
    peers = [(k, v) for k, v in PEERS.items() if k in figures]
    if peers:
        lines += ["", "published figures (design brief, 'Numbers to beat'), for comparison:"]
        lines += [f"  {k} = {figures[k]:,}: {v}" for k, v in peers]
    return "\n".join(lines)


def write_snapshot(path: Path, gas: dict[str, int], backend: str) -> None:
    doc = {
        "about": "Gas figures of scripts/bench.py's scenarios on a fresh eth-tester chain (deterministic). "
                 f"tests/integration/test_gas_snapshot.py fails when one grows by more than "
                 f"{float(GAS_TOLERANCE):.0%}. Update: {SNAPSHOT_UPDATE_HINT}",
        "chain": backend,
        "figures": dict(sorted(gas.items())),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chain", choices=("eth-tester", "anvil"), default="eth-tester",
                        help="chain for the gas scenarios (default: embedded eth-tester)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"results JSON (default: {DEFAULT_OUT.relative_to(ROOT)}; "
                             "with --gas-only nothing is written unless given)")
    parser.add_argument("--gas-only", action="store_true", help="gas scenarios only (a few seconds)")
    parser.add_argument("--update-snapshot", action="store_true",
                        help=f"write the gas figures to {DEFAULT_SNAPSHOT.relative_to(ROOT)} (eth-tester only)")
    parser.add_argument("--snapshot", type=Path, default=DEFAULT_SNAPSHOT, help=argparse.SUPPRESS)
    parser.add_argument("--skip-anvil", action="store_true", help="measure e2e on eth-tester only")
    parser.add_argument("--seconds", type=float, default=2.0, help="time per throughput figure (default 2)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per time figure (default 5)")
    args = parser.parse_args(argv)
    # The benchmark's chains are thrown away at the end: so are the agents' outboxes (exactly-once records),
    # which otherwise land in the user's ~/.smartkeys.
    home = tempfile.TemporaryDirectory(prefix="smartkeys-bench-")
    os.environ.setdefault("SMARTKEYS_HOME", home.name)

    if args.update_snapshot and args.chain != "eth-tester":
        parser.error("the gas snapshot is defined on eth-tester: drop --chain anvil")
    need_anvil = args.chain == "anvil" or not (args.gas_only or args.skip_anvil)
    anvil_path = None
    if need_anvil:
        try:
            anvil_path = find_anvil()
        except LocalChainError as exc:
            print(f"error: {exc}\n(or pass --skip-anvil to measure the end-to-end figure on eth-tester only)",
                  file=sys.stderr)
            return 2

    figures: dict[str, float] = {}
    started = time.perf_counter()
    _say(f"gas scenarios on a fresh {args.chain} chain")
    chain = start_local_chain(args.chain)
    try:
        gas = measure_gas(chain, progress=_say)
    finally:
        chain.close()
    figures.update(gas)

    if not args.gas_only:
        def timed(results: dict[str, Timing]) -> None:
            for name, t in results.items():
                figures[name] = round(t.best, 1)
                figures[f"{name}.median"] = round(t.median, 1)

        _say(f"signing throughput ({3 * args.seconds:.0f} s)")
        timed(sign_rates(args.seconds, rounds=args.rounds))
        _say(f"preflight throughput ({4 * args.seconds:.0f} s)")
        timed(preflight_rates(args.seconds, rounds=args.rounds))
        for backend in ["eth-tester"] + ([] if args.skip_anvil else ["anvil"]):
            _say(f"e2e grant + use + revoke on a fresh {backend} chain")
            chain = start_local_chain(backend)
            try:
                t = e2e_grant_use_revoke(chain, rounds=args.rounds, progress=_say)
            finally:
                chain.close()
            figures[f"e2e.grant_use_revoke_s.{backend}"] = round(t.best, 4)
            figures[f"e2e.grant_use_revoke_s.{backend}.median"] = round(t.median, 4)

    ratio_values = ratios(figures)
    figures.update(ratio_values)
    delta_values = deltas(figures)
    figures.update(delta_values)
    order = [k for k in figures if k.startswith("gas.")] + list(delta_values) + list(ratio_values) + \
        [k for k in figures if k.startswith(("py.", "e2e."))]
    figures = {k: figures[k] for k in order}

    print(f"smartkeys benchmarks: gas on a fresh {args.chain} chain; {os.cpu_count()} cores; "
          f"{time.perf_counter() - started:.0f} s")
    print()
    print(table(figures))

    meta = metadata(args.chain, anvil_path, args)
    out = args.out if args.out is not None else (None if args.gas_only else DEFAULT_OUT)
    if out is not None:
        doc = {
            "metadata": meta,
            "figures": figures,
            "units": {k: unit_of(k) for k in figures},
            "ratios": {name: {"numerator": n, "denominator": d} for name, (n, d) in RATIOS.items()
                       if name in figures},
            "deltas": {name: {"minuend": a, "subtrahend": b} for name, (a, b) in DELTAS.items()
                       if name in figures},
            "targets": {t.figure: {"target": str(t), "value": figures[t.figure], "met": t.met(figures[t.figure])}
                        for t in TARGETS if t.figure in figures},
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"\nwrote {out}")
    if args.update_snapshot:
        write_snapshot(args.snapshot, gas, args.chain)
        print(f"wrote {args.snapshot} ({len(gas)} gas figures)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
