"""Outbox compaction: the file shrinks to what the exactly-once rules still need, and nothing else is lost --
not under concurrent writers (threads and processes), not when a compaction dies half way.

What must survive (smartkeys.outbox): every entry still pending or whose outcome was never acknowledged, with
its signed payload (settling re-sends it); every settled named intent that landed or reverted (its name keeps
refusing a retry), within ``keep_named_for``. Settled and acknowledged unnamed entries and dropped ones go.
"""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import smartkeys
from smartkeys.outbox import DROPPED, LANDED, PENDING, REVERTED, Intent, Outbox

ADDR = "0x" + "11" * 20
SRC = str(Path(smartkeys.__file__).resolve().parents[1])


def intent(tag: str, nonce: int, *, named: bool = False) -> Intent:
    """A synthetic signed transaction intent whose hash is derived from ``tag`` (unique per test)."""
    from eth_utils import keccak

    return Intent(intent_id=tag if named else "auto:" + keccak(text=tag).hex()[:32], kind="transaction",
                  hash=keccak(text="hash:" + tag), chain_id=31337, sender=ADDR, nonce=nonce, signer=ADDR,
                  account=ADDR, via="direct", from_block=0, created=time.time(),
                  payload={"raw": "0x" + "ab" * 300})


def by_hash(outbox: Outbox) -> dict[bytes, Intent]:
    return {i.hash: i for i in outbox.read()}


def test_compaction_keeps_what_the_rules_need_and_drops_the_rest(tmp_path):
    box = Outbox(tmp_path / "outbox.jsonl", auto_compact_bytes=None)
    pending = box.record(intent("pending", 1))
    unreported = box.mark(box.record(intent("landed-not-reported", 2)), LANDED, transaction_hash=b"\x01" * 32)
    named = box.mark(box.record(intent("invoice-42", 3, named=True)), LANDED, transaction_hash=b"\x02" * 32,
                     block_number=7, gas_used=21000, acknowledged=True)
    named_reverted = box.mark(box.record(intent("invoice-43", 4, named=True)), REVERTED, acknowledged=True)
    named_dropped = box.acknowledge(box.mark(box.record(intent("invoice-44", 5, named=True)), DROPPED))
    done = [box.mark(box.record(intent(f"done-{n}", 10 + n)), LANDED, acknowledged=True) for n in range(20)]
    dropped = box.acknowledge(box.mark(box.record(intent("dropped", 40)), DROPPED))
    before = by_hash(box)
    size_before = box.path.stat().st_size

    report = box.compact()

    after = by_hash(box)
    assert set(after) == {pending.hash, unreported.hash, named.hash, named_reverted.hash}
    assert report.kept == 4 and report.dropped == 20 + 2 and report.bytes_before == size_before
    assert box.path.stat().st_size == report.bytes_after < size_before / 4
    # unsettled entries are whole (the payload is what settling re-sends), with their state
    for h in (pending.hash, unreported.hash):
        assert after[h] == before[h]
    assert after[unreported.hash].status == LANDED and not after[unreported.hash].acknowledged
    # a settled named intent keeps everything but the payload: its retry is still refused
    kept = after[named.hash]
    assert kept.payload == {} and (kept.status, kept.acknowledged, kept.transaction_hash, kept.block_number,
                                   kept.gas_used) == (LANDED, True, b"\x02" * 32, 7, 21000)
    assert box.find("invoice-42", chain_id=31337, signer=ADDR)[0].status == LANDED
    assert after[named_reverted.hash].status == REVERTED
    assert named_dropped.hash not in after and dropped.hash not in after and done[0].hash not in after
    assert [i.hash for i in box.unsettled()] == [pending.hash, unreported.hash]
    assert box.path.stat().st_mode & 0o077 == 0
    assert not box._temp_path.exists()
    # compacting again changes nothing
    again = box.compact()
    assert again.kept == 4 and again.dropped == 0 and by_hash(box) == after


def test_named_intents_are_kept_for_the_retention_window_only(tmp_path):
    box = Outbox(tmp_path / "outbox.jsonl", auto_compact_bytes=None, keep_named_for=3600)
    old = box.mark(box.record(intent("invoice-old", 1, named=True)), LANDED, acknowledged=True)
    new = box.mark(box.record(intent("invoice-new", 2, named=True)), LANDED, acknowledged=True)
    box.compact(now=time.time() + 1800)
    assert set(by_hash(box)) == {old.hash, new.hash}
    box.compact(now=old.settled + 3601, keep_named_for=3600)
    assert set(by_hash(box)) == set()  # both settled at about the same time: both past the window
    box2 = Outbox(tmp_path / "o2.jsonl", auto_compact_bytes=None)  # default: kept for good
    kept = box2.mark(box2.record(intent("invoice-forever", 3, named=True)), LANDED, acknowledged=True)
    box2.compact(now=time.time() + 10 * 365 * 86400)
    assert set(by_hash(box2)) == {kept.hash}


def test_a_held_unnamed_intent_survives_compaction_for_its_window_only(tmp_path):
    """Issue 16: an unnamed intent that settle() found landed after an unknown outcome keeps refusing a
    retry for ``hold_settled_for`` seconds -- compaction must not forget it earlier, and forgets it after."""
    box = Outbox(tmp_path / "outbox.jsonl", auto_compact_bytes=None, hold_settled_for=3600)
    held = box.mark(box.record(intent("held", 1)), LANDED, acknowledged=True, hold=True)
    plain = box.mark(box.record(intent("plain", 2)), LANDED, acknowledged=True)  # reported at once: no hold
    assert held.hold_until is not None and held.settled is not None
    assert 3599 <= held.hold_until - held.settled <= 3601 and plain.hold_until is None
    box.compact(now=time.time() + 1800)
    (kept,) = box.read()
    assert kept.hash == held.hash and kept.hold_until == pytest.approx(held.hold_until)
    assert kept.status == LANDED and kept.acknowledged and kept.payload == {}  # no signed payload kept
    box.compact(now=held.hold_until + 1)
    assert box.read() == []


def test_the_outbox_compacts_itself_past_its_size_limit(tmp_path):
    box = Outbox(tmp_path / "outbox.jsonl", auto_compact_bytes=20_000)
    keep = box.record(intent("still-pending", 0))
    for n in range(200):  # about 1 KiB each: without compaction the file would pass 200 KB
        box.mark(box.record(intent(f"auto-{n}", n + 1)), LANDED, acknowledged=True)
    assert box.path.stat().st_size < 25_000
    assert keep.hash in by_hash(box)


def test_a_crash_mid_compaction_loses_nothing(tmp_path, monkeypatch):
    box = Outbox(tmp_path / "outbox.jsonl", auto_compact_bytes=None)
    pending = box.record(intent("pending", 1))
    for n in range(5):
        box.mark(box.record(intent(f"done-{n}", n + 2)), LANDED, acknowledged=True)
    before = box.path.read_bytes()

    # 1. died while writing the temporary file: a torn temp file is left behind
    box._temp_path.write_bytes(before[: len(before) // 3])
    assert box.path.read_bytes() == before and pending.hash in by_hash(box)
    # 2. died after the temp file was complete, before the rename
    real_replace = os.replace

    def die(*a, **k):
        raise KeyboardInterrupt("killed before the rename")

    monkeypatch.setattr(os, "replace", die)
    with pytest.raises(KeyboardInterrupt):
        box.compact()
    monkeypatch.setattr(os, "replace", real_replace)
    assert box._temp_path.exists() and box.path.read_bytes() == before
    # the process restarts: writers append to the real file, the leftover temp file is never read
    late = box.record(intent("after-restart", 20))
    assert set(by_hash(box)) >= {pending.hash, late.hash} and len(box.read()) == 7
    # the next compaction overwrites the stale temp file and keeps what must be kept
    box.compact()
    assert set(by_hash(box)) == {pending.hash, late.hash} and not box._temp_path.exists()


def test_a_torn_last_line_does_not_swallow_the_next_record(tmp_path):
    box = Outbox(tmp_path / "outbox.jsonl", auto_compact_bytes=None)
    box.record(intent("first", 1))
    with open(box.path, "ab") as fp:
        fp.write(b'{"v":1,"event":"intent","intent_id":"auto:ab')  # a writer died mid-line
    second = box.record(intent("second", 2))
    assert second.hash in by_hash(box) and len(box.read()) == 2


WRITER = r"""
import sys, time
sys.path.insert(0, {src!r})
from eth_utils import keccak
from smartkeys.outbox import Intent, Outbox, LANDED


def write(name, n, path):
    box = Outbox(path, auto_compact_bytes=8_000)  # every writer compacts too, often
    a = "0x" + "11" * 20
    for i in range(n):
        tag = f"{{name}}-{{i}}"
        named = i % 3 == 0
        it = Intent(intent_id=tag if named else "auto:" + keccak(text=tag).hex()[:32], kind="transaction",
                    hash=keccak(text="hash:" + tag), chain_id=31337, sender=a, nonce=i, signer=a, account=a,
                    via="direct", from_block=0, created=time.time(), payload={{"raw": "0x" + "cd" * 200}})
        box.record(it)
        if i % 4 != 1:  # every 4th stays pending
            box.mark(it, LANDED, transaction_hash=keccak(text="tx:" + tag), acknowledged=True)


if __name__ == "__main__":
    write(sys.argv[1], int(sys.argv[2]), sys.argv[3])
"""


def test_compaction_under_concurrent_writers_loses_nothing(tmp_path):
    """3 processes and 3 threads record and settle intents while they (and a compacting thread) compact the
    same file again and again: every pending and every named intent is there at the end, with its state."""
    from eth_utils import keccak

    path = tmp_path / "outbox.jsonl"
    n = 60
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(src=SRC))
    procs = [subprocess.Popen([sys.executable, str(script), f"p{k}", str(n), str(path)]) for k in range(3)]
    compactions = []
    stop = threading.Event()

    write = runpy.run_path(str(script), run_name="writer")["write"]  # the same writer, in threads

    def thread_writer(name):
        write(name, n, path)

    def compactor():
        box = Outbox(path, auto_compact_bytes=None)
        while not stop.is_set():
            if path.exists():
                compactions.append(box.compact())
            time.sleep(0.005)

    threads = [threading.Thread(target=thread_writer, args=(f"t{k}",)) for k in range(3)]
    comp = threading.Thread(target=compactor)
    comp.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for p in procs:
        assert p.wait(timeout=120) == 0
    stop.set()
    comp.join(timeout=30)
    assert len(compactions) > 10 and any(c.dropped for c in compactions)

    found = by_hash(Outbox(path))
    missing = []
    for name in [f"p{k}" for k in range(3)] + [f"t{k}" for k in range(3)]:
        for i in range(n):
            h = keccak(text=f"hash:{name}-{i}")
            pending, named = i % 4 == 1, i % 3 == 0
            if pending:
                if h not in found or found[h].status != PENDING or found[h].payload.get("raw") != "0x" + "cd" * 200:
                    missing.append((name, i, "pending"))
            elif named:
                if h not in found or found[h].status != LANDED or not found[h].acknowledged \
                        or found[h].transaction_hash != keccak(text=f"tx:{name}-{i}"):
                    missing.append((name, i, "named"))
            elif h in found:  # an unnamed settled entry may stay until the next compaction: with its state
                assert found[h].status == LANDED and found[h].acknowledged
    assert missing == []
