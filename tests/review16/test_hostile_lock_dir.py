"""Issue 16, kinds 3/4: the per-lane lock files (``smartkeys.locks``) live in a shared temporary directory,
``$TMPDIR/smartkeys-locks-<uid>``, created with ``mkdir(exist_ok=True)`` and no check of its owner or mode,
and each lock file is opened with ``os.open(O_RDWR | O_CREAT)`` (follows symlinks). Another local user who
creates that directory first (it is predictable) can put anything at a lock file's path. What smartkeys
then raises on every send of that key is an untyped OSError (CLI exit 1), not a typed error naming the file.

Reproduce: SMARTKEYS_LOCK_DIR=D, with ``D/tx-1-0x11..11-0.lock`` a directory or a symlink to itself;
``with lane_lock(1, "0x11..11", kind="tx"): ...``.
"""

from __future__ import annotations

import os

import pytest

from smartkeys.errors import SmartKeysError
from smartkeys.locks import lane_lock

SENDER = "0x" + "11" * 20


@pytest.mark.parametrize("kind", ["directory", "symlink-loop"])
def test_a_hostile_lock_file_is_a_typed_error(tmp_path, monkeypatch, kind):
    monkeypatch.setenv("SMARTKEYS_LOCK_DIR", str(tmp_path))
    path = tmp_path / f"tx-1-{SENDER}-0.lock"
    if kind == "directory":
        path.mkdir()
    else:
        path.symlink_to(path)
    try:
        with lane_lock(1, SENDER, kind="tx", timeout=1):
            pass
    except SmartKeysError:
        return
    except OSError as exc:
        pytest.fail(f"untyped {type(exc).__name__}: {exc}")  # observed: IsADirectoryError / OSError ELOOP
    pytest.fail("a lock file that is not a regular file was used as one")
