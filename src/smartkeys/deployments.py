"""Where smartkeys' contracts live: deterministic CREATE2 addresses, identical on every chain.

Everything is deployed through the deterministic deployment proxy, so an address depends only on the
shipped creation bytecode and the salt. EntryPoint v0.8 must be at its canonical address (bundlers pick
the EntryPoint version from its ``0x433708`` prefix).
"""

from __future__ import annotations

from functools import cache

from eth_typing import ChecksumAddress
from eth_utils import keccak, to_bytes, to_canonical_address, to_checksum_address

from smartkeys import artifacts

__all__ = [
    "ACCOUNT_ARTIFACT",
    "CREATE2_DEPLOYER",
    "ENTRY_POINT_SALT",
    "ENTRY_POINT_V08",
    "SIMPLE7702_ADDRESS",
    "SMARTKEYS_SALT",
    "account_address",
    "create2_address",
]

ENTRY_POINT_V08 = to_checksum_address("0x4337084D9E255Ff0702461CF8895CE9E3b5Ff108")
CREATE2_DEPLOYER = to_checksum_address("0x4e59b44847b379578588920cA78FbF26c0B4956C")
ENTRY_POINT_SALT = 0x0A59DBFF790C23C976A548690C27297883CC66B4C67024F9117B0238995E35E9
SIMPLE7702_ADDRESS = to_checksum_address("0xe6Cae83BdE06E4c305530e199D7217f42808555B")
SMARTKEYS_SALT = keccak(text="smartkeys.v1")
ACCOUNT_ARTIFACT = "SmartKeysAccount"


def _salt_bytes(salt: bytes | int | str) -> bytes:
    if isinstance(salt, int):
        if salt < 0 or salt >= 2**256:
            raise ValueError("salt must fit in 32 bytes")
        return salt.to_bytes(32, "big")
    raw = to_bytes(hexstr=salt) if isinstance(salt, str) else bytes(salt)
    if len(raw) != 32:
        raise ValueError(f"salt must be exactly 32 bytes, got {len(raw)}")
    return raw


def create2_address(deployer: str | bytes, salt: bytes | int | str, init_code: bytes | str) -> ChecksumAddress:
    """EIP-1014: ``keccak256(0xff ++ deployer ++ salt ++ keccak256(init_code))[12:]``.

    >>> create2_address("0x" + "00" * 20, 0, b"\\x00")
    '0x4D1A2e2bB4F88F0250f26Ffff098B0b30B26BF38'
    """
    code = to_bytes(hexstr=init_code) if isinstance(init_code, str) else bytes(init_code)
    digest = keccak(b"\xff" + to_canonical_address(deployer) + _salt_bytes(salt) + keccak(code))
    return to_checksum_address(digest[12:])


@cache
def account_address() -> str:
    """The SmartKeysAccount implementation every EOA delegates to (same on every chain)."""
    bytecode = artifacts.load(ACCOUNT_ARTIFACT)["bytecode"]
    return create2_address(CREATE2_DEPLOYER, SMARTKEYS_SALT, bytes.fromhex(bytecode.removeprefix("0x")))
