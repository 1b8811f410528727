"""CREATE2 address formula against the EIP-1014 examples and the canonical deployments."""

import pytest

from smartkeys import artifacts
from smartkeys.localchain import (
    CREATE2_DEPLOYER,
    ENTRY_POINT_SALT,
    ENTRY_POINT_V08,
    SIMPLE7702_ADDRESS,
    create2_address,
    init_code,
)

ZERO_ADDR = "0x" + "00" * 20
ZERO_SALT = "0x" + "00" * 32
CAFEBABE = "0x00000000000000000000000000000000000000000000000000000000cafebabe"

# https://eips.ethereum.org/EIPS/eip-1014 "Examples"
EIP1014_VECTORS = [
    (ZERO_ADDR, ZERO_SALT, "0x00", "0x4D1A2e2bB4F88F0250f26Ffff098B0b30B26BF38"),
    ("0xdeadbeef00000000000000000000000000000000", ZERO_SALT, "0x00",
     "0xB928f69Bb1D91Cd65274e3c79d8986362984fDA3"),
    ("0xdeadbeef00000000000000000000000000000000",
     "0x000000000000000000000000feed000000000000000000000000000000000000", "0x00",
     "0xD04116cDd17beBE565EB2422F2497E06cC1C9833"),
    (ZERO_ADDR, ZERO_SALT, "0xdeadbeef", "0x70f2b2914A2a4b783FaEFb75f459A580616Fcb5e"),
    ("0x00000000000000000000000000000000deadbeef", CAFEBABE, "0xdeadbeef",
     "0x60f3f640a8508fC6a86d45DF051962668E1e8AC7"),
    ("0x00000000000000000000000000000000deadbeef", CAFEBABE, "0x" + "deadbeef" * 11,
     "0x1d8bfDC5D46DC4f61D6b6115972536eBE6A8854C"),
    (ZERO_ADDR, ZERO_SALT, "0x", "0xE33C0C7F7df4809055C3ebA6c09CFe4BaF1BD9e0"),
]


@pytest.mark.parametrize("deployer,salt,code,expected", EIP1014_VECTORS)
def test_eip1014_examples(deployer, salt, code, expected):
    assert create2_address(deployer, bytes.fromhex(salt[2:]), bytes.fromhex(code[2:])) == expected


def test_salt_as_int_equals_salt_as_bytes():
    code = b"\xde\xad\xbe\xef"
    assert create2_address(ZERO_ADDR, 0xCAFEBABE, code) == create2_address(
        ZERO_ADDR, bytes.fromhex(CAFEBABE[2:]), code
    )
    assert create2_address(ZERO_ADDR, 1, code) != create2_address(ZERO_ADDR, 0, code)


def test_bad_salt_rejected():
    with pytest.raises(ValueError):
        create2_address(ZERO_ADDR, b"\x01" * 31, b"")
    with pytest.raises(ValueError):
        create2_address(ZERO_ADDR, 2**256, b"")
    with pytest.raises(ValueError):
        create2_address(ZERO_ADDR, -1, b"")


def test_canonical_addresses_from_vendored_artifacts():
    assert create2_address(CREATE2_DEPLOYER, ENTRY_POINT_SALT, init_code("vendor/EntryPoint")) == ENTRY_POINT_V08
    assert create2_address(CREATE2_DEPLOYER, 0, init_code("vendor/Simple7702Account")) == SIMPLE7702_ADDRESS


def test_init_code_appends_constructor_args():
    art = {
        "abi": [{"type": "constructor", "inputs": [{"name": "x", "type": "uint256"}], "stateMutability": "nonpayable"}],
        "bytecode": "0x6000",
    }
    assert init_code(art, [5]) == bytes.fromhex("6000") + (5).to_bytes(32, "big")
    assert init_code(art, b"\x01\x02") == bytes.fromhex("60000102")
    with pytest.raises(ValueError):
        init_code(art, [1, 2])
    assert init_code("vendor/Simple7702Account") == bytes.fromhex(
        artifacts.load("vendor/Simple7702Account")["bytecode"][2:]
    )
