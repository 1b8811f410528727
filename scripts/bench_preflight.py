"""Measure offline preflight throughput on one core.

Prints checks per second for :func:`smartkeys.preflight.preflight` on:

* ``erc20 transfer``: one ``transfer(address,uint256)`` call on a capped token (declared outflow,
  cumulative and periodic cap), direct path;
* the same through the user-op path (gas budget and window as the EntryPoint sees it);
* ``3-call batch``: a token transfer, a native transfer and a wildcard call;
* ``refusal``: a transfer above the cap (building the typed error included).

Usage: ``python scripts/bench_preflight.py [--seconds 1]`` (from the repository root; uses the installed
``smartkeys`` or falls back to ``src/``). Target: >= 100,000 checks/s for the first line.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

try:
    import smartkeys  # noqa: F401
except ImportError:  # running from a checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from eth_abi import encode

from smartkeys.account import Call
from smartkeys.errors import SmartKeysError
from smartkeys.policy_codec import Permission, PermissionMode, SessionPolicy, TokenCap, selector_of
from smartkeys.preflight import SessionState, preflight

ACCOUNT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
KEY = "0x" + "11" * 20
TOKEN = "0x" + "22" * 20
TARGET = "0x" + "33" * 20
RECIPIENT = "0x" + "44" * 20
NOW = 1_750_000_000


def _rate(fn, seconds: float) -> float:
    for _ in range(500):
        fn()
    count, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(1000):
            fn()
        count += 1000
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args(argv)

    transfer = selector_of("transfer(address,uint256)")
    policy = SessionPolicy(
        key=KEY, valid_after=0, valid_until=NOW + 86_400, max_uses=1000,
        native_per_call=10**18, native_total=10**19, native_period=3600, native_per_period=2 * 10**18,
        gas_budget=10**18,
        permissions=(Permission(TOKEN, transfer), Permission(RECIPIENT, mode=PermissionMode.EMPTY_CALLDATA),
                     Permission(TARGET, mode=PermissionMode.ANY_SELECTOR)),
        token_caps=(TokenCap(TOKEN, 10**12, 86_400, 10**11),),
    )
    state = SessionState.fresh(policy, ACCOUNT, now=NOW)
    one = [Call(TOKEN, 0, transfer + encode(["address", "uint256"], [RECIPIENT, 10**6]))]
    batch = one + [Call(RECIPIENT, 10**17, b""), Call(TARGET, 0, selector_of("ping(uint256)") + encode(["uint256"], [1]))]
    too_much = [Call(TOKEN, 0, transfer + encode(["address", "uint256"], [RECIPIENT, 10**13]))]

    def refused():
        try:
            preflight(policy, state, too_much, now=NOW, via_user_op=False)
        except SmartKeysError:
            return
        raise AssertionError("expected a refusal")

    cases = [
        ("erc20 transfer (direct)", lambda: preflight(policy, state, one, now=NOW, via_user_op=False)),
        ("erc20 transfer (user op)",
         lambda: preflight(policy, state, one, now=NOW, via_user_op=True, max_gas_cost=10**15)),
        ("3-call batch (direct)", lambda: preflight(policy, state, batch, now=NOW, via_user_op=False)),
        ("refusal over cap (direct)", refused),
    ]
    for name, fn in cases:
        print(f"{name:28s} {_rate(fn, args.seconds):>12,.0f} checks/s")


if __name__ == "__main__":
    main()
