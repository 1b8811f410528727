"""Shared pytest fixtures.

- ``local_chain`` (session): one embedded chain with EntryPoint v0.8 and Simple7702Account at
  their canonical addresses, started once per test session.
- ``chain`` (function): the same chain, snapshotted before the test and reverted after it, so
  every test starts from the same state (nonces, balances, code, time) and stays fast.
- ``accounts``: the chain's funded test accounts (``eth_account`` ``LocalAccount`` objects).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

try:  # run from a plain checkout (package not installed): use src/
    import smartkeys  # noqa: F401
except ImportError:  # pragma: no cover
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


@pytest.fixture(scope="session")
def local_chain():
    from smartkeys.localchain import start_local_chain

    chain = start_local_chain()
    yield chain
    chain.close()


@pytest.fixture
def chain(local_chain):
    snapshot_id = local_chain.snapshot()
    try:
        yield local_chain
    finally:
        local_chain.revert(snapshot_id)


@pytest.fixture
def accounts(chain):
    return chain.accounts
