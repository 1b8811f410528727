"""Measure user-operation signing throughput on one core.

Prints operations per second for:

* ``build+hash+sign``: construct a validated ``PackedUserOperation`` (fresh nonce and call
  data each time), compute its EntryPoint v0.8 ``userOpHash`` and sign it (``sign_user_op``
  with a ``LocalAccount``);
* the same with a 7702-marker initCode (delegate bound into the hash);
* ``raw coincurve``: ``coincurve.PrivateKey.sign_recoverable`` alone, the floor.

Usage: ``python scripts/bench_sign.py [--seconds 2]`` (run from the repository root; uses the
installed ``smartkeys`` or falls back to ``src/``). The throwaway key is derived from a fixed
label and never printed.
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

import coincurve
from eth_account import Account
from eth_utils import keccak

from smartkeys.userop import (
    EIP7702_FACTORY,
    ENTRY_POINT_V08,
    PackedUserOperation,
    sign_user_op,
    user_op_hash,
)

CHAIN_ID = 31337
DELEGATE = "0xe6Cae83BdE06E4c305530e199D7217f42808555B"


def _rate(fn, seconds: float) -> float:
    """Calls of ``fn(i)`` per second over about ``seconds`` (after a short warm-up)."""
    for i in range(200):
        fn(i)
    count, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(500):
            fn(count)
            count += 1
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def main() -> None:
    """Run the three measurements and print one line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    args = parser.parse_args()

    account = Account.from_key(keccak(b"smartkeys bench throwaway key"))
    sender = account.address
    call_data = bytes.fromhex("b61d27f6") + bytes(128)

    def build_hash_sign(i: int, factory: str | None = None) -> None:
        op = PackedUserOperation(
            sender=sender,
            nonce=i,
            factory=factory,
            call_data=call_data + i.to_bytes(4, "big"),
            call_gas_limit=100_000,
            verification_gas_limit=150_000,
            pre_verification_gas=50_000,
            max_fee_per_gas=2_000_000_000,
            max_priority_fee_per_gas=1_000_000_000,
        )
        signed = sign_user_op(
            op, account, ENTRY_POINT_V08, CHAIN_ID, DELEGATE if factory else None
        )
        assert len(signed.signature) == 65

    raw_key = coincurve.PrivateKey(keccak(b"smartkeys bench throwaway key"))
    digest = user_op_hash(
        PackedUserOperation(sender=sender), ENTRY_POINT_V08, CHAIN_ID
    )

    results = {
        "build+hash+sign (plain op)": _rate(build_hash_sign, args.seconds),
        "build+hash+sign (7702 initCode)": _rate(
            lambda i: build_hash_sign(i, EIP7702_FACTORY), args.seconds
        ),
        "raw coincurve sign_recoverable": _rate(
            lambda i: raw_key.sign_recoverable(digest, hasher=None), args.seconds
        ),
    }
    width = max(map(len, results))
    for name, rate in results.items():
        print(f"{name:<{width}}  {rate:>10,.0f} ops/s")


if __name__ == "__main__":
    main()
