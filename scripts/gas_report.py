"""Gas figures of a smartkeys account on a fresh embedded chain, with same-run ratios (``bench.py --gas-only``).

The scenarios, their fairness rules and the figure names live in :mod:`smartkeys.benchmarks`; this script is
kept for its old command line: ``python scripts/gas_report.py [--json PATH] [--chain anvil]`` is
``python scripts/bench.py --gas-only [--out PATH] [--chain anvil]`` (a few seconds).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="PATH", help="also write the figures and ratios as JSON")
    parser.add_argument("--chain", choices=("eth-tester", "anvil"), default="eth-tester")
    args = parser.parse_args(argv)
    return bench.main(["--gas-only", "--chain", args.chain] + (["--out", args.json] if args.json else []))


if __name__ == "__main__":
    raise SystemExit(main())
