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
