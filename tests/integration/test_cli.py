"""The ``smartkeys`` command as a user runs it."""

from __future__ import annotations

import subprocess
import sys


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "smartkeys.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_demo_tells_the_story_and_exits_zero():
    result = _run("demo", "--no-color")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for expected in (
        "Delegate the owner's EOA",
        "now has code 0xef0100",
        "succeeded: True",
        "refused as expected: reverted with TokenSpendCapExceeded",
        "refused as expected: reverted with CallNotAllowed",
        "refused as expected: reverted with SessionNotActive",
    ):
        assert expected in out, f"missing {expected!r} in demo output:\n{out}"
    assert "NOT refused" not in out


def test_no_command_prints_help_and_exits_2():
    result = _run()
    assert result.returncode == 2
    assert "demo" in result.stdout


def test_unknown_command_is_refused_with_usage():
    result = _run("frobnicate")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr
