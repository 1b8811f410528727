"""Issue 16, kind 4, for ``deployments/<chainId>.json``. README: "Policy files, smartkeys.toml, keystores,
password files, the refusal journal and deployments/<chainId>.json all go through one reader
(smartkeys.safe_files)". ``smartkeys.delegation._deployment_file_address`` does not: it runs
``json.loads(path.read_text())`` and catches (OSError, ValueError, KeyError, TypeError, AttributeError).
It is read by every ``require_smartkeys`` (delegate, grant, revoke, each session use), from ``./deployments``
by default -- the current directory.

Reproduce: ``deployments/31337.json`` = 100,000 ``[`` -> SIGSEGV; a FIFO there -> blocks forever.
"""

from __future__ import annotations

import os

import pytest

from tests.review16._helpers import run_python


@pytest.mark.parametrize("kind", ["deep", "fifo"])
def test_a_hostile_deployments_file_is_refused_within_a_second(tmp_path, kind):
    path = tmp_path / "31337.json"
    if kind == "deep":
        path.write_text("[" * 100_000)
    else:
        os.mkfifo(path)
    rc, out, secs = run_python(
        "import eth_account  # loaded by the SDK anyway: recursion limit 100,000\n"
        "from smartkeys.delegation import known_implementations\n"
        "from smartkeys.errors import SmartKeysError\n"
        "try:\n"
        f"    print('read', known_implementations(31337, deployments_dir={str(tmp_path)!r}))\n"
        "except SmartKeysError as e: print('typed', type(e).__name__)\n"
        "except Exception as e: print('UNTYPED', type(e).__name__)\n", timeout=10)
    # observed: deep -> rc -11 (SIGSEGV); fifo -> killed after 10 s
    assert rc == 0 and secs < 3, (rc, round(secs, 1), out[-200:])
