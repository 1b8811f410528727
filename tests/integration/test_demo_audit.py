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
        "refused as expected: reverted with TokenSpendCapExceeded",
        "refused as expected: reverted with CallNotAllowed",
        "The owner audits the key",
        "budget_nearly_used",
        "refusal: TokenSpendCapExceeded(",
        "refusal: CallNotAllowed(",
        "status now: revoked",
        "refused as expected: reverted with SessionNotActive",
    ):
        assert expected in text, f"missing {expected!r} in demo output:\n{text}"
    table = [line.strip() for line in text.splitlines() if "45 USDC" in line and "5 USDC" in line]
    assert len(table) == 1 and "2/5" in table[0] and "active" in table[0]
    assert "NOT refused" not in text
    assert elapsed < 10  # the story itself takes about 2-3 s; leave room for a loaded machine
