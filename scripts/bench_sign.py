"""Measure user-operation signing throughput on one core (the ``py.*sign*`` figures of ``scripts/bench.py``).

Prints operations per second (best round, and the median) for build + hash + sign of a plain user operation,
the same with a 7702-marker initCode, and raw coincurve ``sign_recoverable`` alone, the ceiling. The scenarios
live in :func:`smartkeys.benchmarks.sign_rates`.

Usage: ``python scripts/bench_sign.py [--seconds 2]`` (from the repository root). Target: >= 5,000 ops/s.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    import smartkeys  # noqa: F401
except ImportError:  # running from a checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from smartkeys.benchmarks import sign_rates

LABELS = {
    "py.userops_signed_per_s": "build+hash+sign (plain op)",
    "py.userops_signed_per_s.7702_init_code": "build+hash+sign (7702 initCode)",
    "py.raw_sign_per_s": "raw coincurve sign_recoverable",
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    args = parser.parse_args(argv)
    width = max(map(len, LABELS.values()))
    for name, t in sign_rates(args.seconds).items():
        print(f"{LABELS[name]:<{width}}  {t.best:>10,.0f} ops/s  (median {t.median:,.0f})")


if __name__ == "__main__":
    main()
