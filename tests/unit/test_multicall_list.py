"""The Python multicall list (used by policy files, preflight and tool definitions) is the contract's."""

from __future__ import annotations

import re
from pathlib import Path

from eth_utils import keccak

from smartkeys.policy_codec import MULTICALL_SELECTORS, MULTICALL_SIGNATURES

SOURCE = Path(__file__).resolve().parents[2] / "contracts" / "SmartKeysAccount.sol"


def _contract_multicall_selectors() -> set[bytes]:
    source = SOURCE.read_text()
    body = source[source.index("function _isMulticall(") :]
    body = body[: body.index("}")]
    selectors = {bytes.fromhex(h) for h in re.findall(r"s == 0x([0-9a-fA-F]{8})", body)}
    if "SmartKeysAccount.executeAsSession.selector" in body:
        selectors.add(keccak(text="executeAsSession(bytes,(address,uint256,bytes)[])")[:4])
    return selectors


def test_python_multicall_selectors_equal_the_contracts():
    contract = _contract_multicall_selectors()
    assert len(contract) >= 14
    assert set(MULTICALL_SELECTORS) == contract


def test_each_selector_comes_from_its_signature():
    assert len(MULTICALL_SELECTORS) == len(MULTICALL_SIGNATURES)
    for selector, signature in MULTICALL_SELECTORS.items():
        assert keccak(text=signature)[:4] == selector
