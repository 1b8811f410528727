"""The README's "Signers" example runs as written against a local chain and a loopback remote signer.

The prelude is the one the README names: ``w3``, ``owner_eoa`` (accounts[1]), ``bundler`` (accounts[0]) and
``usdc``; the signer URL in the example (Clef's default port) is replaced by a loopback signer
(tests/loopback_signer.py, Clef's method names) that holds the owner's key.
"""

from __future__ import annotations

import re
from pathlib import Path

from loopback_signer import LoopbackSigner

README = Path(__file__).resolve().parents[2] / "README.md"
SHOP = "0x000000000000000000000000000000000000bEEF"


def signers_blocks() -> list[str]:
    match = re.search(r"^## Signers\n(.*?)(?=^## )", README.read_text(), re.S | re.M)
    assert match, "README has no '## Signers' section"
    return re.findall(r"^```python\n(.*?)^```", match.group(1), re.S | re.M)


def test_signers_example_runs_through_a_loopback_clef(chain, token):
    (code,) = signers_blocks()
    assert "http://127.0.0.1:8550" in code
    server = LoopbackSigner([chain.accounts[1]])
    try:
        namespace = {"w3": chain.w3, "owner_eoa": chain.accounts[1], "bundler": chain.accounts[0],
                     "usdc": token.address}
        exec(compile(code.replace("http://127.0.0.1:8550", server.url), "README.md[Signers]", "exec"), namespace)
    finally:
        server.close()
    assert server.calls.count("account_signTransaction") == 2  # grant, revoke
    assert server.calls.count("account_signTypedData") == 1  # the owner operation
    assert token.functions.balanceOf(SHOP).call() == 10**6
    assert namespace["owner"].session_id_used(namespace["session_id"])
