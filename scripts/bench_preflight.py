"""Measure offline preflight throughput on one core (the ``py.preflight_*`` figures of ``scripts/bench.py``).

Prints checks per second (best round, and the median) of :func:`smartkeys.preflight.preflight` for an ERC-20
transfer on a capped token (direct path, then the user-op path), a 3-call batch, and a refusal over the cap
(building the typed error included). The scenarios live in :func:`smartkeys.benchmarks.preflight_rates`.

Usage: ``python scripts/bench_preflight.py [--seconds 1]`` (from the repository root). Target: >= 100,000
checks/s for the first line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    import smartkeys  # noqa: F401
except ImportError:  # running from a checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from smartkeys.benchmarks import preflight_rates

LABELS = {
    "py.preflight_checks_per_s": "erc20 transfer (direct)",
    "py.preflight_checks_per_s.userop": "erc20 transfer (user op)",
    "py.preflight_checks_per_s.batch3": "3-call batch (direct)",
    "py.preflight_checks_per_s.refusal": "refusal over cap (direct)",
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args(argv)
    for name, t in preflight_rates(args.seconds).items():
        print(f"{LABELS[name]:28s} {t.best:>12,.0f} checks/s  (median {t.median:,.0f})")


if __name__ == "__main__":
    main()
