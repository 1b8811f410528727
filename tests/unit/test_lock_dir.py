"""The cross-process lock directory must be private (issue 16, finding 11): created 0700, and a directory that
another user made first, that others can write, or that is a symlink, is refused with a typed error that names
it and the fix -- before any lock file is opened in it. Lock files that are not regular files are refused
without blocking."""

from __future__ import annotations

import os
import stat
import tempfile
import time

import pytest

from smartkeys.locks import lane_lock, lock_dir
from smartkeys.safe_files import FileInputError

SENDER = "0x" + "22" * 20


@pytest.fixture
def default_dir(tmp_path, monkeypatch):
    """The default lock directory ($TMPDIR/smartkeys-locks-<uid>) under a fresh temporary directory."""
    monkeypatch.delenv("SMARTKEYS_LOCK_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path / f"smartkeys-locks-{os.getuid()}"


def test_the_default_directory_is_created_private_and_used(default_dir):
    assert lock_dir() == default_dir
    with lane_lock(1, SENDER, kind="tx", timeout=1):
        pass
    info = os.lstat(default_dir)
    assert stat.S_ISDIR(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o700 and info.st_uid == os.getuid()
    lock_files = list(default_dir.iterdir())
    assert len(lock_files) == 1 and stat.S_IMODE(lock_files[0].stat().st_mode) == 0o600


def test_a_world_writable_directory_made_first_is_refused(default_dir):
    default_dir.mkdir()
    default_dir.chmod(0o777)
    with pytest.raises(FileInputError) as err, lane_lock(1, SENDER, kind="tx", timeout=1):
        pytest.fail("a lock was taken in a directory others can write")
    assert err.value.reason == "not_private" and err.value.path == str(default_dir)
    assert "mode 777" in str(err.value) and "chmod 700" in str(err.value) and "SMARTKEYS_LOCK_DIR" in str(err.value)
    assert list(default_dir.iterdir()) == []  # nothing was created in it


def test_a_directory_of_another_user_is_refused(default_dir, monkeypatch):
    default_dir.mkdir(mode=0o700)  # owned by this process's user ...
    real = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: real + 1)  # ... which smartkeys now takes for someone else's
    with pytest.raises(FileInputError) as err, lane_lock(1, SENDER, kind="tx", timeout=1):
        pytest.fail("a lock was taken in another user's directory")
    # the name follows the (pretended) uid: the check is on the directory that was there
    assert err.value.reason == "not_private" and f"user id {real}" in str(err.value)


def test_a_symlink_at_the_default_name_is_refused(default_dir, tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    default_dir.symlink_to(target)
    with pytest.raises(FileInputError) as err, lane_lock(1, SENDER, kind="tx", timeout=1):
        pytest.fail("a lock was taken through a symlink")
    assert err.value.reason == "not_private" and "symbolic link" in str(err.value)
    assert list(target.iterdir()) == []


def test_a_lock_file_that_is_a_fifo_is_refused_without_blocking(tmp_path, monkeypatch):
    monkeypatch.setenv("SMARTKEYS_LOCK_DIR", str(tmp_path))
    os.mkfifo(tmp_path / f"tx-1-{SENDER}-0.lock")
    start = time.monotonic()
    with pytest.raises(FileInputError) as err, lane_lock(1, SENDER, kind="tx", timeout=1):
        pytest.fail("a FIFO was used as a lock file")
    assert time.monotonic() - start < 1 and "not a regular file" in str(err.value)
    # the thread lock was released: the same lane can be taken once the file is fixed
    (tmp_path / f"tx-1-{SENDER}-0.lock").unlink()
    with lane_lock(1, SENDER, kind="tx", timeout=1):
        pass
