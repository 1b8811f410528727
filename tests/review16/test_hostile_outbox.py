"""Issue 16, kind 4 (hostile files) applied to the one file the fix added: the outbox. It is read with a
plain ``Path.read_bytes()`` + ``json.loads`` (not ``smartkeys.safe_files``), by every send (``check_prior``),
``agent.pending()``/``settle()`` and ``smartkeys pending``.

Reproduce: ``SMARTKEYS_HOME=$D smartkeys pending`` with ``$D/outbox.jsonl`` one line of 100,000 ``[``
(SIGSEGV), a FIFO (blocks forever, also past ``--timeout``), or a symlink to itself (exit 1, untyped OSError).
"""

from __future__ import annotations

import os

import pytest

from tests.review16._helpers import run_cli, run_python

BAD_INPUT_EXIT = 2


def _home(tmp_path, kind):
    home = tmp_path / "home"
    home.mkdir()
    box = home / "outbox.jsonl"
    if kind == "deep":
        box.write_text("[" * 100_000 + "\n")
    elif kind == "fifo":
        os.mkfifo(box)
    elif kind == "symlink-loop":
        box.symlink_to(box)
    elif kind == "directory":
        box.mkdir()
    return home


@pytest.mark.parametrize("kind", ["deep", "fifo", "symlink-loop", "directory"])
def test_smartkeys_pending_on_a_hostile_outbox_exits_2_within_a_second(tmp_path, kind):
    home = _home(tmp_path, kind)
    rc, out, secs = run_cli(["--home", str(home), "--timeout", "3", "pending"], timeout=15)
    # observed: deep -> -11 (SIGSEGV); fifo -> still blocked at 15 s despite --timeout 3; symlink loop and
    # directory -> exit 1 "error: OSError: [Errno 40] Too many levels of symbolic links" (untyped)
    assert rc == BAD_INPUT_EXIT and "outbox" in out and secs < 5, (rc, round(secs, 1), out[-300:])


@pytest.mark.parametrize("kind", ["deep", "fifo", "symlink-loop"])
def test_sdk_outbox_read_of_a_hostile_file_raises_a_typed_error(tmp_path, kind):
    """What SessionAgent.batch/transfer/send_* do first (IntentGuard.check_prior -> Outbox.find -> read)."""
    home = _home(tmp_path, kind)
    rc, out, secs = run_python(
        "import eth_account  # the SDK always has it loaded: it raises the recursion limit to 100,000\n"
        "from smartkeys.outbox import Outbox\n"
        "from smartkeys.errors import SmartKeysError\n"
        "try:\n"
        f"    Outbox({str(home / 'outbox.jsonl')!r}).find('x', chain_id=1, signer='0x' + '11' * 20)\n"
        "    print('read')\n"
        "except SmartKeysError as e: print('typed', type(e).__name__)\n"
        "except Exception as e: print('UNTYPED', type(e).__name__)\n", timeout=10)
    assert rc == 0 and "typed" in out and "UNTYPED" not in out and secs < 5, (rc, round(secs, 1), out[-300:])


def test_outbox_on_an_unwritable_home_is_a_typed_error(tmp_path):
    """An outbox whose directory cannot be created/written (here under /proc, which even root cannot write).
    Observed: a bare FileNotFoundError from Outbox.record (the CLI would say exit 1)."""
    rc, out, _ = run_python(
        "from smartkeys.outbox import Outbox, Intent\n"
        "from smartkeys.errors import SmartKeysError\n"
        "it = Intent(intent_id='x', kind='transaction', hash=b'\\x01' * 32, chain_id=1, sender='0x' + '11' * 20,\n"
        "            nonce=0, signer='0x' + '11' * 20, account='0x' + '11' * 20, via='direct', from_block=0, created=0.0)\n"
        "try:\n"
        "    Outbox('/proc/smartkeys-review/outbox.jsonl').record(it)\n"
        "except SmartKeysError as e: print('typed', type(e).__name__)\n"
        "except Exception as e: print('UNTYPED', type(e).__name__, e)\n")
    assert "typed" in out and "UNTYPED" not in out, out[-300:]
