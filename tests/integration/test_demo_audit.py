"""``smartkeys demo`` tells the whole story, audit included, quickly (run in-process)."""

from __future__ import annotations

import io
import time

from smartkeys.demo import run_demo


def test_demo_tells_the_story_with_the_audit_and_the_journal():
    out = io.StringIO()
    started = time.perf_counter()
    assert run_demo(out) == 0, out.getvalue()
    elapsed = time.perf_counter() - started
    text = out.getvalue()
    for expected in (
        "Delegate the owner's EOA",
        "grants an agent a session key",
        "succeeded: True",
        "refused as expected (TokenSpendCapExceeded): asked for 10 USDC, but only 5 USDC",
        "refused as expected (CallNotAllowed): calling approve(address,uint256) on USDC",
        "The owner audits the key",
        "budget_nearly_used",
        "refusal: asked for 10 USDC, but only 5 USDC of the session's 50 USDC total is left (45 USDC spent); "
        "send at most 5 USDC",
        "(TokenSpendCapExceeded, via direct)",
        "(CallNotAllowed, via direct)",
        "pay 1 USDC to 0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65, who is not on its recipient list",
        "refused as expected (ArgumentRuleViolated): transfer(address,uint256) on USDC",
        "to 0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65 is not on the session's list [shop]; use one of them",
        "the account itself refuses it",
        "was mined but the account refused it: transfer(address,uint256) on USDC",
        "0x15d34AAf… has 0.00 USDC",
        "status now: revoked",
        "refused as expected (SessionNotActive): the session is not active",
    ):
        assert expected in text, f"missing {expected!r} in demo output:\n{text}"
    table = [line.strip() for line in text.splitlines() if "45 USDC" in line and "5 USDC" in line
             and "refus" not in line]
    assert len(table) == 1 and "2/5" in table[0] and "active" in table[0]
    # the recipient list is refused twice before the audit: by the SDK (nothing signed) and by the chain (mined)
    story = text.split("The owner audits the key")[0]
    assert story.count("(ArgumentRuleViolated)") == 2 and "(TransactionFailedError)" not in text
    refusals = [line for line in text.splitlines() if line.strip().startswith("refusal:")]
    assert len(refusals) == 4 and sum("not on the session's list [shop]" in r for r in refusals) == 2
    assert "NOT refused" not in text
    assert "45000000" not in text and "reverted with" not in text  # no raw base units, no raw revert
    assert elapsed < 15  # 8.4 s measured at a load average of 8 on 2 cores (the story has a mined refusal now)


def test_demo_json_gives_the_story_as_data(tmp_path):
    """`smartkeys --json demo`: each step with its outcome, path, error name and values (decimal strings),
    and the session's final status in the model of `status --json`, so no script has to parse the text."""
    import json

    from smartkeys.cli import main

    out = io.StringIO()
    assert main(["--json", "demo"], stdout=out, stderr=io.StringIO(), env={"SMARTKEYS_HOME": str(tmp_path)}) == 0
    doc = json.loads(out.getvalue())
    assert doc["ok"] is True and doc["checks_passed"] is True and doc["transcript"]
    token = doc["token"]["address"]
    steps = {s["step"]: s for s in doc["steps"]}
    assert list(steps) == ["pay-user-op", "pay-direct", "over-cap", "approve", "recipient-list",
                           "recipient-list-on-chain", "after-revoke"]
    op, direct = steps["pay-user-op"], steps["pay-direct"]
    assert (op["outcome"], op["via"], op["values"]["amount"], op["values"]["amount_text"]) == \
        ("allowed", "user_op", "20000000", "20 USDC")
    assert op["user_op_hash"].startswith("0x") and len(op["user_op_hash"]) == 66 and op["tx"] != direct["tx"]
    assert (direct["via"], direct["user_op_hash"], direct["values"]["amount"]) == ("direct", None, "25000000")
    over = steps["over-cap"]
    assert (over["outcome"], over["via"], over["error"]) == ("refused", "preflight", "TokenSpendCapExceeded")
    assert over["values"] == {"token": token, "spent": "45000000", "requested": "10000000", "cap": "50000000"}
    assert over["tx"] is None and "only 5 USDC" in over["text"]
    assert (steps["approve"]["error"], steps["approve"]["values"]["selector"]) == ("CallNotAllowed", "0x095ea7b3")
    sdk, chain = steps["recipient-list"], steps["recipient-list-on-chain"]
    assert sdk["error"] == chain["error"] == "ArgumentRuleViolated" and sdk["values"] == chain["values"]
    assert (sdk["via"], sdk["tx"]) == ("preflight", None)  # nothing signed
    assert chain["via"] == "direct" and chain["tx"].startswith("0x")  # mined, reverted by the account
    assert (steps["after-revoke"]["error"], steps["after-revoke"]["values"]) == \
        ("SessionNotActive", {"sessionId": doc["session_id"]})
    assert [r["error"] for r in doc["audit_refusals"]] == ["TokenSpendCapExceeded", "CallNotAllowed",
                                                           "ArgumentRuleViolated", "ArgumentRuleViolated"]
    status = doc["status"]
    assert (status["session_id"], status["key"], status["status"], status["uses"]) == \
        (doc["session_id"], doc["key"], "revoked", 2)
    (usdc,) = [a for a in status["assets"] if a["asset"] == token]
    assert (usdc["spent"], usdc["remaining"], usdc["remaining_text"]) == ("45000000", "5000000", "5 USDC")
