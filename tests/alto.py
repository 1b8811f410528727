"""pytest plugin (registered in conftest.py): a real ERC-4337 bundler, Alto 0.0.20, on its own anvil node.

- ``alto_chain`` (session): an anvil node started for the bundler, whatever ``--chain`` says, with EntryPoint
  v0.8, Simple7702Account and the smartkeys account at their canonical addresses. Alto keeps state (its
  executor's nonce, its mempool), so this chain is never reverted: tests use fresh accounts instead.
- ``alto`` (session): Alto from ``node_modules`` (``npm ci``) with the loopback preload, ready when
  ``eth_supportedEntryPoints`` lists the EntryPoint; stopped (its whole process group) at the end.
  ``alto.startup_seconds`` is how long it took to answer.
- ``alto_client``: a :class:`~smartkeys.bundler.BundlerClient` for it that checks the chain id.

Nothing is skipped when Node.js or node_modules are missing: the fixtures fail with the fix to apply.
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def alto_chain():
    from smartkeys.localchain import start_local_chain

    chain = start_local_chain("anvil")
    yield chain
    chain.close()


@pytest.fixture(scope="session")
def alto(alto_chain, tmp_path_factory):
    from smartkeys.node import start_alto

    log_path = tmp_path_factory.mktemp("alto") / "alto.log"
    process = start_alto(alto_chain, log_path=log_path, timeout=90)
    yield process
    process.stop()
    assert process.process.poll() is not None, "Alto still running after stop()"
    with pytest.raises(ProcessLookupError):  # the whole group is gone, children included
        os.killpg(process.pid, 0)


@pytest.fixture
def alto_client(alto, alto_chain):
    from smartkeys.bundler import BundlerClient

    return BundlerClient(alto.url, expected_chain_id=alto_chain.chain_id, max_retries=0, poll_interval=0.05)
