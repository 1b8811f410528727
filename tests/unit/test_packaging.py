"""Packaging: the LICENSE file matches pyproject.toml, the package is marked typed (PEP 561), and
``import smartkeys`` / ``smartkeys --version`` load neither eth-tester nor py-evm (checked in a fresh process,
because this test process has them loaded already)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

# eth-tester, py-evm (its top-level package is ``eth``) and what only they bring in.
HEAVY = ("eth_tester", "eth", "trie")


def _loaded_after(code: str) -> dict:
    """Run ``code`` in a fresh interpreter on this checkout's src/ and return the heavy modules it loaded."""
    probe = code + f"\nimport json, sys\nprint(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_license_file_is_the_license_pyproject_names():
    text = (ROOT / "LICENSE").read_text()
    declared = PYPROJECT["project"]["license"]
    declared = declared["text"] if isinstance(declared, dict) else declared
    assert declared == "MIT"
    assert text.startswith("MIT License\n")
    assert "Permission is hereby granted, free of charge" in text


def test_package_ships_the_py_typed_marker():
    assert (ROOT / "src" / "smartkeys" / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["smartkeys"]


def test_import_smartkeys_loads_neither_eth_tester_nor_py_evm():
    assert _loaded_after("import smartkeys") == []


def test_public_classes_load_without_eth_tester():
    # an agent talking to a real node never needs the embedded chain's packages
    code = "import smartkeys\nsmartkeys.Owner, smartkeys.SessionAgent, smartkeys.SessionPolicy, smartkeys.tx.send_transaction"
    assert _loaded_after(code) == []


def test_version_command_loads_neither_eth_tester_nor_py_evm():
    code = "from smartkeys.cli import main\nimport io\nout = io.StringIO()\nassert main(['--version'], stdout=out) == 0, out.getvalue()\nassert '0.1.0' in out.getvalue()"
    assert _loaded_after(code) == []


def test_the_embedded_chain_still_loads_them_when_used():
    # the probe above must be able to fail: starting a local chain does load eth-tester and py-evm
    loaded = _loaded_after("import smartkeys\nsmartkeys.start_local_chain().close()")
    assert "eth_tester" in loaded and "eth" in loaded


def test_revert_exceptions_include_eth_testers_once_it_is_loaded():
    code = (
        "from smartkeys import tx\n"
        "assert all(c.__module__.startswith('web3') for c in tx.revert_exceptions())\n"
        "import eth_tester.exceptions as e\n"
        "assert e.TransactionFailed in tx.revert_exceptions()\n"
        "assert e.TransactionFailed in tx.REVERT_EXCEPTIONS\n"
    )
    assert "eth_tester" in _loaded_after(code)
