"""smartkeys.errors: the exception tree, the ABI error registry and the revert decoder.

Revert payloads are built independently here with eth_abi + keccak (selector ‖ abi.encode).
"""

from __future__ import annotations

import pickle

import pytest
from eth_abi import encode
from eth_utils import keccak

from smartkeys import artifacts, errors
from smartkeys.errors import (
    ChainMismatchError,
    ContractRevertError,
    ErrorNotRegistered,
    FailedOp,
    FailedOpWithRevert,
    InvalidInputError,
    PanicError,
    RevertError,
    RevertReasonError,
    SmartKeysError,
    TransactionFailedError,
    UnknownRevertError,
    UserOperationError,
    decode_revert,
    get_error_class,
    register_contract_errors,
)

TOKEN = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"


def selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


def error_string(reason: str) -> bytes:
    return selector("Error(string)") + encode(["string"], [reason])


# A small hand-written ABI shaped like our policy engine's errors.
POLICY_ABI = [
    {"type": "function", "name": "foo", "inputs": [], "outputs": []},
    {
        "type": "error",
        "name": "SpendCapExceeded",
        "inputs": [
            {"name": "token", "type": "address", "internalType": "address"},
            {"name": "spent", "type": "uint256", "internalType": "uint256"},
            {"name": "cap", "type": "uint256", "internalType": "uint256"},
        ],
    },
    {"type": "error", "name": "WindowClosedForTest", "inputs": [{"name": "validUntil", "type": "uint48"}]},
    {
        "type": "error",
        "name": "TargetNotAllowed",
        "inputs": [{"name": "target", "type": "address"}, {"name": "selector", "type": "bytes4"}],
    },
    {
        "type": "error",
        "name": "Weird",
        "inputs": [
            {"name": "data", "type": "bytes"},
            {"name": "from", "type": "address"},
            {"name": "", "type": "uint8"},
            {
                "name": "calls",
                "type": "tuple[]",
                "components": [{"name": "to", "type": "address"}, {"name": "value", "type": "uint256"}],
            },
        ],
    },
]


@pytest.fixture(scope="module")
def policy_errors():
    return register_contract_errors(POLICY_ABI, hints={"SpendCapExceeded": "lower the amount"})


# --------------------------------------------------------------------------- tree


def test_doctests_pass():
    import doctest

    result = doctest.testmod(errors)
    assert result.attempted > 10 and result.failed == 0


def test_every_exception_derives_from_the_root():
    for cls in (InvalidInputError, ChainMismatchError, TransactionFailedError, UserOperationError,
                RevertError, ContractRevertError, UnknownRevertError, RevertReasonError,
                PanicError, FailedOp, FailedOpWithRevert, ErrorNotRegistered):
        assert issubclass(cls, SmartKeysError), cls


def test_invalid_input_error_is_a_value_error_naming_field_expected_got_and_fix():
    err = InvalidInputError("amount", -5, "a non-negative integer", "pass wei as an int")
    assert isinstance(err, ValueError)
    assert (err.field, err.value, err.hint) == ("amount", -5, "pass wei as an int")
    assert str(err) == "field 'amount': expected a non-negative integer, got -5; fix: pass wei as an int"


def test_invalid_input_error_with_secret_keeps_no_trace_of_the_value():
    secret = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
    err = InvalidInputError("private_key", secret, "32 bytes", secret=True)
    assert err.value is None
    for text in (str(err), repr(err), repr(err.__dict__), pickle.dumps(err).hex()):
        assert secret.hex() not in text
        assert "4c0883a6" not in text
    assert "<redacted bytes>" in str(err)


def test_invalid_input_error_truncates_long_values():
    err = InvalidInputError("call_data", b"\x01" * 5000, "at most 100 bytes")
    assert len(str(err)) < 200
    assert "(5000 bytes)" in str(err)


def test_chain_mismatch_error_names_both_chains_and_the_fix():
    err = ChainMismatchError(expected=1, actual=31337)
    assert (err.expected, err.actual) == (1, 31337)
    assert "expected chain 1" in str(err) and "got chain 31337" in str(err) and "fix:" in str(err)


def test_transaction_failed_error_chains_the_decoded_revert():
    revert = decode_revert(error_string("nope"))
    err = TransactionFailedError(tx_hash=b"\xab" * 32, receipt={"gasUsed": 21000}, revert=revert)
    assert err.tx_hash == "0x" + "ab" * 32
    assert err.__cause__ is revert
    assert "gas used 21000" in str(err) and "nope" in str(err)


def test_exceptions_survive_pickling(policy_errors):
    cls = policy_errors["SpendCapExceeded"]
    originals = [
        InvalidInputError("x", 1, "2", "3"),
        ChainMismatchError(1, 2),
        UserOperationError("AA21 didn't pay prefund", op_index=2),
        cls(TOKEN, 150, 100),
        decode_revert(selector("FailedOpWithRevert(uint256,string,bytes)") + encode(
            ["uint256", "string", "bytes"], [0, "AA23 reverted", error_string("inner")])),
        UnknownRevertError(b"\xde\xad\xbe\xef"),
    ]
    for original in originals:
        copy = pickle.loads(pickle.dumps(original))
        assert type(copy) is type(original)
        assert str(copy) == str(original)
    assert pickle.loads(pickle.dumps(originals[3])).spent == 150


# --------------------------------------------------------------------------- registry


def test_register_contract_errors_builds_one_class_per_error_entry(policy_errors):
    assert set(policy_errors) == {"SpendCapExceeded", "WindowClosedForTest", "TargetNotAllowed", "Weird"}
    cls = policy_errors["SpendCapExceeded"]
    assert cls.__name__ == "SpendCapExceeded"
    assert issubclass(cls, ContractRevertError)
    assert cls.error_signature == "SpendCapExceeded(address,uint256,uint256)"
    assert cls.error_selector == selector("SpendCapExceeded(address,uint256,uint256)")


def test_registering_again_returns_the_same_cached_classes(policy_errors):
    again = register_contract_errors({"abi": POLICY_ABI})  # artifact-shaped input
    assert again["SpendCapExceeded"] is policy_errors["SpendCapExceeded"]
    assert get_error_class("SpendCapExceeded") is policy_errors["SpendCapExceeded"]
    assert get_error_class("SpendCapExceeded(address,uint256,uint256)") is policy_errors["SpendCapExceeded"]


def test_except_clause_with_registered_class_catches_decoded_revert(policy_errors):
    data = selector("SpendCapExceeded(address,uint256,uint256)") + encode(
        ["address", "uint256", "uint256"], [TOKEN, 150, 100])
    with pytest.raises(get_error_class("SpendCapExceeded")) as info:
        raise decode_revert(data)
    err = info.value
    assert (err.token, err.spent, err.cap) == (TOKEN, 150, 100)
    assert err.name == "SpendCapExceeded"
    assert err.args == {"token": TOKEN, "spent": 150, "cap": 100}
    assert err.data == data
    assert "SpendCapExceeded(token='0xA0b8" in str(err)
    assert "spent=150, cap=100" in str(err) and "fix: lower the amount" in str(err)


def test_decoded_addresses_are_checksummed(policy_errors):
    data = selector("TargetNotAllowed(address,bytes4)") + encode(
        ["address", "bytes4"], [TOKEN.lower(), b"\xa9\x05\x9c\xbb"])
    err = decode_revert(data)
    assert err.target == TOKEN
    assert err.selector == selector("TargetNotAllowed(address,bytes4)")  # the error's selector
    assert err.args["selector"] == b"\xa9\x05\x9c\xbb"  # the field, by ABI name
    assert err.selector_ == b"\xa9\x05\x9c\xbb"  # the field, as attribute


def test_camel_case_fields_get_snake_case_aliases(policy_errors):
    err = decode_revert(selector("WindowClosedForTest(uint48)") + encode(["uint48"], [1_700_000_000]))
    assert err.validUntil == err.valid_until == 1_700_000_000


def test_reserved_keyword_and_unnamed_fields_are_renamed_but_args_keep_abi_names(policy_errors):
    cls = policy_errors["Weird"]
    assert cls.field_names == ("data_", "from_", "arg2", "calls")
    values = [b"\x01\x02", TOKEN, 7, [(TOKEN, 5)]]
    data = cls.error_selector + encode(["bytes", "address", "uint8", "(address,uint256)[]"], values)
    err = decode_revert(data)
    assert err.data_ == b"\x01\x02" and err.from_ == TOKEN and err.arg2 == 7
    assert err.calls == ((TOKEN, 5),)
    assert err.data == data
    assert list(err.args) == ["data", "from", "arg2", "calls"]


def test_hand_built_error_encodes_its_own_revert_data(policy_errors):
    cls = policy_errors["SpendCapExceeded"]
    err = cls(TOKEN, spent=150, cap=100)
    assert err.data == cls.error_selector + encode(["address", "uint256", "uint256"], [TOKEN, 150, 100])
    assert type(decode_revert(err.data)) is cls
    with pytest.raises(TypeError):
        cls(TOKEN, 1)  # missing cap
    with pytest.raises(TypeError):
        cls(TOKEN, 1, 2, nonsense=3)


def test_get_error_class_unknown_name_suggests_close_matches(policy_errors):
    with pytest.raises(ErrorNotRegistered) as info:
        get_error_class("SpendCapExceded")
    assert isinstance(info.value, LookupError)
    assert "did you mean SpendCapExceeded" in str(info.value)


def test_entry_point_errors_are_registered_by_default():
    abi = artifacts.load("vendor/EntryPoint")["abi"]
    names = {e["name"] for e in abi if e["type"] == "error"}
    for name in names:
        assert get_error_class(name).error_name == name
    assert get_error_class("FailedOp") is FailedOp
    assert get_error_class("FailedOpWithRevert") is FailedOpWithRevert
    assert set(errors.registered_errors()) >= {"FailedOp(uint256,string)", "Error(string)", "Panic(uint256)"}


# --------------------------------------------------------------------------- decoder


def test_error_string_decodes_to_revert_reason_error():
    err = decode_revert(error_string("ERC20: transfer amount exceeds balance"))
    assert type(err) is RevertReasonError
    assert err.reason == "ERC20: transfer amount exceeds balance"
    assert err.name == "Error" and err.args == {"reason": err.reason}


def test_error_string_with_aa_code_decodes_to_user_operation_error():
    err = decode_revert(error_string("AA93 invalid paymasterAndData"))
    assert type(err) is UserOperationError
    assert err.code == "AA93" and err.op_index is None
    assert "fix:" in str(err)


@pytest.mark.parametrize("code,meaning", [(0x01, "assert"), (0x11, "overflow"), (0x12, "division"),
                                          (0x32, "out of bounds"), (0x99, "unknown")])
def test_panic_decodes_code_and_meaning(code, meaning):
    err = decode_revert("0x" + (selector("Panic(uint256)") + encode(["uint256"], [code])).hex())
    assert type(err) is PanicError
    assert err.code == code and meaning in err.meaning and meaning in str(err)


def test_failed_op_decodes_to_user_operation_error_with_aa_code():
    data = selector("FailedOp(uint256,string)") + encode(["uint256", "string"], [4, "AA25 invalid account nonce"])
    err = decode_revert(data)
    assert isinstance(err, UserOperationError) and isinstance(err, ContractRevertError)
    assert type(err) is FailedOp
    assert (err.code, err.reason, err.op_index) == ("AA25", "AA25 invalid account nonce", 4)
    assert err.args == {"opIndex": 4, "reason": "AA25 invalid account nonce"}
    assert err.inner is None and err.data == data
    assert str(err).startswith("user operation 4 failed: AA25 invalid account nonce; fix: ")


def test_failed_op_with_revert_decodes_inner_custom_error_recursively(policy_errors):
    inner = selector("SpendCapExceeded(address,uint256,uint256)") + encode(
        ["address", "uint256", "uint256"], [TOKEN, 150, 100])
    data = selector("FailedOpWithRevert(uint256,string,bytes)") + encode(
        ["uint256", "string", "bytes"], [0, "AA23 reverted", inner])
    with pytest.raises(UserOperationError) as info:
        raise decode_revert(data)
    err = info.value
    assert type(err) is FailedOpWithRevert
    assert err.code == "AA23" and err.op_index == 0
    assert err.inner_data == inner
    assert isinstance(err.inner, get_error_class("SpendCapExceeded"))
    assert err.inner.spent == 150
    assert err.__cause__ is err.inner
    assert "SpendCapExceeded" in str(err) and "AA23 reverted" in str(err)


def test_nested_failed_op_with_revert_decodes_every_level():
    level2 = error_string("deep")
    level1 = selector("FailedOpWithRevert(uint256,string,bytes)") + encode(
        ["uint256", "string", "bytes"], [0, "AA13 EIP7702 sender init failed", level2])
    level0 = selector("FailedOpWithRevert(uint256,string,bytes)") + encode(
        ["uint256", "string", "bytes"], [1, "AA23 reverted", level1])
    err = decode_revert(level0)
    assert err.code == "AA23" and err.inner.code == "AA13" and err.inner.inner.reason == "deep"


def test_failed_op_with_revert_with_empty_or_unknown_inner():
    for inner, expected in ((b"", "without data"), (b"\x12\x34\x56\x78\x00", "unknown error selector")):
        data = selector("FailedOpWithRevert(uint256,string,bytes)") + encode(
            ["uint256", "string", "bytes"], [0, "AA33 reverted", inner])
        err = decode_revert(data)
        assert isinstance(err.inner, UnknownRevertError)
        assert err.inner.data == inner and expected in str(err.inner)


def test_unknown_selector_empty_and_short_data_give_unknown_revert_error():
    for data in (b"", None, b"\x01\x02", b"\xde\xad\xbe\xef" + b"\x00" * 32):
        err = decode_revert(data)
        assert type(err) is UnknownRevertError
        assert isinstance(err, RevertError)
    assert "register" in str(decode_revert(b"\xde\xad\xbe\xef"))


def test_known_selector_with_malformed_payload_gives_unknown_revert_error():
    err = decode_revert(selector("FailedOp(uint256,string)") + b"\x00" * 7)
    assert type(err) is UnknownRevertError
    assert "FailedOp(uint256,string)" in str(err)


def test_decode_revert_registers_the_abis_it_is_given():
    abi = [{"type": "error", "name": "OnlyViaDecodeArg", "inputs": [{"name": "x", "type": "uint256"}]}]
    data = selector("OnlyViaDecodeArg(uint256)") + encode(["uint256"], [9])
    assert type(decode_revert(data)) is UnknownRevertError
    err = decode_revert(data, abis=[abi])
    assert err.name == "OnlyViaDecodeArg" and err.x == 9
    assert type(decode_revert(data)) is type(err)  # cached for later calls


def test_bad_revert_data_type_is_invalid_input():
    with pytest.raises(InvalidInputError):
        decode_revert(12345)
    with pytest.raises(InvalidInputError):
        decode_revert("0xzz")


def test_parse_aa_code_finds_codes_wrapped_by_bundlers():
    assert errors.parse_aa_code("AA24 signature error") == "AA24"
    assert errors.parse_aa_code("UserOperation reverted with reason: AA22 expired or not due") == "AA22"
    assert errors.parse_aa_code("AAA24") is None
    assert errors.parse_aa_code(None) is None


def test_every_aa_code_in_the_entry_point_sources_has_a_hint():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "node_modules/@account-abstraction/contracts/core"
    if not root.is_dir():
        pytest.skip("node_modules not installed")
    codes = set()
    for path in root.glob("*.sol"):
        codes |= set(re.findall(r'"(AA\d\d) ', path.read_text()))
    assert codes, "no AA codes found"
    assert codes <= set(errors.AA_CODE_HINTS), codes - set(errors.AA_CODE_HINTS)
