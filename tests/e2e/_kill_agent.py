"""Child process for tests/e2e/test_exactly_once_kill.py: an agent that is SIGKILLed at a chosen step.

    python _kill_agent.py STEP sdk  RPC BUNDLER|self|direct ACCOUNT KEY_HEX SESSION_ID OUTBOX TOKEN TO AMOUNT
    python _kill_agent.py STEP cli  ARGV...   (runs `smartkeys ARGV`)

STEP is where the process dies: ``signed`` (signed, before the outbox record), ``recorded`` (recorded, not
sent), ``sent`` (sent, before any receipt), ``landed`` (receipt read, outcome not yet written to the outbox),
or ``none``. Exit codes: 0 sent and landed, 3 refused as a duplicate (it had landed), 4 outcome unknown.
"""

from __future__ import annotations

import os
import signal
import sys


def die() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def arm(step: str) -> None:
    from web3.eth import Eth

    from smartkeys import _once
    from smartkeys.bundler import BundlerClient
    from smartkeys.outbox import Outbox

    if step == "signed":
        Outbox.record = lambda self, intent: die()
    elif step == "recorded":
        original = Outbox.record

        def record(self, intent):
            original(self, intent)
            die()

        Outbox.record = record
    elif step == "sent":
        send_op, send_raw = BundlerClient.send_user_operation, Eth.send_raw_transaction

        def op(self, *a, **kw):
            send_op(self, *a, **kw)
            die()

        def raw(self, *a, **kw):
            send_raw(self, *a, **kw)
            die()

        BundlerClient.send_user_operation = op
        Eth.send_raw_transaction = raw
    elif step == "landed":
        _once.IntentGuard.done = lambda self, *a, **kw: die()
    elif step != "none":
        raise SystemExit(f"unknown step {step}")


def run_sdk(rpc, bundler, account, key_hex, session_id, outbox, token, to, amount) -> int:
    from eth_account import Account

    from smartkeys.account import SessionAgent
    from smartkeys.bundler import BundlerClient
    from smartkeys.errors import DuplicateIntentError, OutcomeUnknownError
    from smartkeys.outbox import Outbox
    from smartkeys.policy import policy_from_chain
    from smartkeys.rpc import connect

    w3 = connect(rpc)
    policy = policy_from_chain(w3, account, bytes.fromhex(session_id[2:]))
    agent = SessionAgent(w3, account, Account.from_key(key_hex), policy, outbox=Outbox(outbox))
    if bundler == "direct":
        kw = {"via": "direct"}
    elif bundler == "self":
        kw = {"via": "user_op", "bundler": Account.from_key(key_hex)}
    else:
        kw = {"via": "user_op", "bundler": BundlerClient(bundler, poll_interval=0.05)}
    try:
        agent.transfer(token, to, int(amount), **kw)
    except DuplicateIntentError as exc:
        print(f"duplicate: {exc}")
        return 3
    except OutcomeUnknownError as exc:
        print(f"unknown: {exc}")
        return 4
    return 0


def run_loop(count, rpc, bundler, account, key_hex, session_id, outbox, token, to, base) -> int:
    """``count`` transfers of ``base + i``; a typed retryable conflict is retried. Prints a JSON summary."""
    import json

    from eth_account import Account

    from smartkeys.account import SessionAgent
    from smartkeys.errors import NonceConflictError, SmartKeysError
    from smartkeys.outbox import Outbox
    from smartkeys.policy import policy_from_chain
    from smartkeys.rpc import connect

    w3 = connect(rpc)
    policy = policy_from_chain(w3, account, bytes.fromhex(session_id[2:]))
    key = Account.from_key(key_hex)
    agent = SessionAgent(w3, account, key, policy, outbox=Outbox(outbox))
    kw = {"via": "direct"} if bundler == "direct" else {"via": "user_op", "bundler": key}
    summary = {"ok": 0, "conflicts": 0, "typed": [], "untyped": []}
    import time

    start_at = float(os.environ.get("START_AT", "0"))  # both processes begin together
    time.sleep(max(0.0, start_at - time.time()))
    for i in range(int(count)):
        for _ in range(20):
            try:
                agent.transfer(token, to, int(base) + i, **kw)
                summary["ok"] += 1
                break
            except NonceConflictError:
                summary["conflicts"] += 1
            except SmartKeysError as exc:
                summary["typed"].append(f"{type(exc).__name__}: {str(exc)[:160]}")
                break
            except Exception as exc:  # noqa: BLE001 - what the test hunts for
                summary["untyped"].append(f"{type(exc).__name__}: {str(exc)[:160]}")
                break
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    step, mode, *rest = sys.argv[1:]
    arm(step)
    if mode == "loop":
        raise SystemExit(run_loop(*rest))
    if mode == "cli":
        from smartkeys.cli import main

        raise SystemExit(main(rest))
    raise SystemExit(run_sdk(*rest))
