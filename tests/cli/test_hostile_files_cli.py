"""The command line on hostile files: each gets exit code 2 and one line naming the file and the fix, promptly
(a FIFO once blocked a read forever). ``main`` runs in a thread so a regression fails instead of hanging."""

from __future__ import annotations

import os
import threading

import pytest


def _run_within(seconds, cli, *argv, **kwargs):
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("run", cli(*argv, **kwargs)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"smartkeys {' '.join(argv)} still running after {seconds} s"
    return box["run"]


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "directory"])
def test_a_password_file_that_is_not_a_regular_file_exits_2(cli, tmp_path, kind):
    path = tmp_path / "pw"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        os.symlink("/dev/zero", path)
    else:
        path.mkdir()
    result = _run_within(10, cli, "--password-file", str(path), "delegate", drop=("SMARTKEYS_PASSWORD",))
    assert result.code == 2, result.err
    assert result.err.startswith(f"error: cannot use --password-file {path}: it is ") and "fix:" in result.err


def test_a_config_file_that_is_a_fifo_exits_2(cli, tmp_path):
    path = tmp_path / "smartkeys.toml"
    os.mkfifo(path)
    result = _run_within(10, cli, "--config", str(path), "status")
    assert result.code == 2 and "FIFO" in result.err and str(path) in result.err and "fix:" in result.err


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [("p.yaml", "&a [*a]", "YAML alias"), ("p.json", "[" * 30_000, "nested more than 32"),
     ("p.yaml", "? [1, 2]\n: 3", "list or mapping"), ("p.toml", "a = nan", "nan")],
)
def test_a_hostile_policy_file_exits_2_naming_it(cli, tmp_path, name, text, words):
    path = tmp_path / name
    path.write_text(text)
    result = _run_within(10, cli, "grant", "--policy", str(path), "--dry-run")
    assert result.code == 2, result.err
    assert result.err.startswith(f"error: policy file {path}: ") and words in result.err and "fix:" in result.err
