"""The refusal journal: append-only JSONL, safe under concurrent writers, tolerant of a corrupt line."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from smartkeys.account import Call
from smartkeys.errors import get_error_class
from smartkeys.journal import JournalWarning, RefusalJournal, default_journal_path
from smartkeys.preflight import ACCOUNT_ERRORS  # noqa: F401 - registers the account's errors

ACCOUNT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
OTHER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
KEY = "0x000000000000000000000000000000000000dEaD"
TOKEN = "0x00000000000000000000000000000000000000AA"
SID = bytes(range(32))


def refusal_error():
    return get_error_class("TokenSpendCapExceeded")(TOKEN, spent=45, requested=10, cap=50)


def record(journal, account=ACCOUNT, chain_id=1, **kw):
    data = bytes.fromhex("a9059cbb") + bytes(64)
    return journal.record(chain_id=chain_id, account=account, session_id=SID, key=KEY,
                          calls=[Call(TOKEN, 0, data), Call(KEY, 5, b"")], error=refusal_error(), path="direct",
                          block_number=7, block_time=100, **kw)


def test_default_path_follows_smartkeys_home(monkeypatch, tmp_path):
    monkeypatch.setenv("SMARTKEYS_HOME", str(tmp_path))
    assert default_journal_path() == tmp_path / "refusals.jsonl"
    monkeypatch.delenv("SMARTKEYS_HOME")
    assert default_journal_path() == __import__("pathlib").Path.home() / ".smartkeys" / "refusals.jsonl"


def test_record_then_read_round_trips_without_calldata(tmp_path):
    journal = RefusalJournal(tmp_path / "j" / "refusals.jsonl")
    written = record(journal)
    (read,) = journal.read()
    assert read == written
    assert read.error == "TokenSpendCapExceeded" and read.fields == {"token": TOKEN, "spent": "45",
                                                                     "requested": "10", "cap": "50"}
    assert [(c.target, c.selector, c.value) for c in read.calls] == [(TOKEN, bytes.fromhex("a9059cbb"), 0),
                                                                     (KEY, b"", 5)]
    assert "00" * 64 not in journal.path.read_text()  # arguments are never written
    assert stat.S_IMODE(os.stat(journal.path).st_mode) == 0o600


def test_read_filters_by_account_and_chain(tmp_path):
    journal = RefusalJournal(tmp_path / "refusals.jsonl")
    record(journal)
    record(journal, account=OTHER)
    record(journal, chain_id=2)
    assert len(journal.read()) == 3
    assert len(journal.read(account=ACCOUNT.lower())) == 2
    assert len(journal.read(account=ACCOUNT, chain_id=1)) == 1
    assert journal.read(chain_id=3) == []


def test_missing_file_is_an_empty_journal(tmp_path):
    assert RefusalJournal(tmp_path / "none.jsonl").read() == []


def test_corrupt_line_is_skipped_with_a_warning(tmp_path):
    journal = RefusalJournal(tmp_path / "refusals.jsonl")
    record(journal)
    with open(journal.path, "a") as fp:
        fp.write('{"not": "a refusal"}\n{broken json\n')
    record(journal)
    with pytest.warns(JournalWarning) as caught:
        assert len(journal.read()) == 2
    assert [str(w.message).split(": ")[0].rsplit(":", 1)[1] for w in caught] == ["2", "3"]


def test_concurrent_writers_lose_and_interleave_nothing(tmp_path):
    journal = RefusalJournal(tmp_path / "refusals.jsonl")

    def writer():
        for _ in range(50):
            record(RefusalJournal(journal.path))

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = journal.path.read_text().splitlines()
    assert len(lines) == 400 and len(journal.read()) == 400


def test_invalid_path_kind_is_refused(tmp_path):
    with pytest.raises(ValueError, match="path"):
        RefusalJournal(tmp_path / "j.jsonl").record(chain_id=1, account=ACCOUNT, session_id=SID, key=KEY, calls=[],
                                                    error=refusal_error(), path="bundle")


# ------------------------------------------------------------------------------- hostile journal paths


def _within(seconds, func):
    """``func()``'s result or exception, or AssertionError if it has not returned after ``seconds`` (a FIFO
    opened for writing without O_NONBLOCK would wait for a reader forever)."""
    box = {}

    def run():
        try:
            box["value"] = func()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still blocked after {seconds} s"
    if "error" in box:
        raise box["error"]
    return box.get("value")


@pytest.mark.parametrize("kind", ["fifo", "fifo-with-reader", "directory", "symlink-loop", "dev-null"])
def test_recording_into_a_special_file_raises_a_typed_oserror_without_blocking(tmp_path, kind):
    from smartkeys.journal import JournalFileError
    from smartkeys.safe_files import FileInputError

    path = tmp_path / "refusals.jsonl"
    reader = None
    if kind.startswith("fifo"):
        os.mkfifo(path)
        if kind == "fifo-with-reader":
            reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    elif kind == "directory":
        path.mkdir()
    elif kind == "symlink-loop":
        os.symlink(path, path)
    else:
        os.symlink("/dev/null", path)
    try:
        with pytest.raises(JournalFileError) as info:
            _within(2.0, lambda: record(RefusalJournal(path)))
        with pytest.raises(FileInputError) as read_info:
            _within(2.0, lambda: RefusalJournal(path).read())
    finally:
        if reader is not None:
            os.close(reader)
    assert isinstance(info.value, OSError) and str(path) in str(info.value) and "fix:" in str(info.value)
    assert read_info.value.reason in ("unreadable", "not_regular") and str(path) in str(read_info.value)
