"""How the outbox file is read (issue 16, findings 6/7/10): a torn line (a crash mid-write) is skipped as
before, but a line nested deeper than any line smartkeys writes is a typed error naming file:line, and
special files are refused without blocking, both when reading and when appending."""

from __future__ import annotations

import os
import time

import pytest

from smartkeys.outbox import OUTBOX_MAX_DEPTH, Intent, Outbox
from smartkeys.safe_files import FileInputError

ADDR = "0x" + "11" * 20


def _intent(n: int) -> Intent:
    return Intent(intent_id=f"i{n}", kind="transaction", hash=bytes([n]) * 32, chain_id=1, sender=ADDR, nonce=n,
                  signer=ADDR, account=ADDR, via="direct", from_block=0, created=0.0)


def test_a_torn_line_is_skipped_and_a_deep_line_is_refused_by_line(tmp_path):
    box = Outbox(tmp_path / "outbox.jsonl")
    box.record(_intent(1))
    with open(box.path, "ab") as f:
        f.write(b'{"v":1,"event":"intent","intent_id":"i2","ha')  # a writer died here
    box.record(_intent(3))
    assert [i.intent_id for i in box.read()] == ["i1", "i3"]

    with open(box.path, "ab") as f:
        f.write(b'{"x":' + b"[" * OUTBOX_MAX_DEPTH + b"]" * OUTBOX_MAX_DEPTH + b"}\n")
    with pytest.raises(FileInputError) as err:
        box.read()
    assert err.value.reason == "too_deep" and err.value.path == f"{box.path}:4"
    assert "move the outbox away" in str(err.value)


def test_appending_to_a_fifo_is_refused_without_blocking(tmp_path):
    path = tmp_path / "outbox.jsonl"
    os.mkfifo(path)
    start = time.monotonic()
    with pytest.raises(FileInputError) as err:
        Outbox(path).record(_intent(1))
    assert time.monotonic() - start < 1 and err.value.reason == "not_regular" and str(path) in str(err.value)


def test_an_outbox_under_a_plain_file_names_the_directory(tmp_path):
    (tmp_path / "home").write_text("not a directory")
    with pytest.raises(FileInputError) as err:
        Outbox(tmp_path / "home" / "outbox.jsonl").record(_intent(1))
    assert err.value.reason == "unwritable" and err.value.path == str(tmp_path / "home")
    assert "SMARTKEYS_HOME" in str(err.value)
