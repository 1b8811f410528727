"""Every file reader under a hypothesis fuzz of hostile files (see ``hostile_files.py`` for the inputs): no
crash, no untyped exception, each answer within 1 s. Each reader's fuzz runs in its own Python process, so a
segmentation fault (a parser overflowing the C stack) fails the test with the signal instead of killing pytest.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"
EXAMPLES = int(os.environ.get("SMARTKEYS_FUZZ_EXAMPLES", "150"))


@pytest.mark.parametrize("reader", ["policy-json", "policy-toml", "policy-yaml", "config", "keystore", "journal",
                                    "deployments"])
def test_hostile_files_never_crash_hang_or_raise_untyped_errors(reader):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(HERE)])}
    child = subprocess.run([sys.executable, str(HERE / "hostile_files.py"), reader, str(EXAMPLES)],
                           capture_output=True, text=True, env=env, timeout=900)
    report = (child.stdout + child.stderr)[-6000:]
    assert child.returncode >= 0, f"the {reader} fuzz crashed with signal {-child.returncode}:\n{report}"
    assert child.returncode == 0, f"the {reader} fuzz found a failing input:\n{report}"
    assert f"{reader}: {EXAMPLES} examples" in child.stdout
