"""The friendly policy model: files in three formats, exact amounts, times, and clear errors for bad input."""

from __future__ import annotations

import copy
import datetime as dt
import json

import pytest

from smartkeys.errors import InvalidInputError
from smartkeys.policy import (
    ANY_FUNCTION,
    MAX_LIFETIME,
    AllowCall,
    AllowNativeTransfer,
    Duration,
    Instant,
    Limits,
    NativeLimits,
    PolicyModel,
    Token,
    decompile,
    dump_policy,
    format_amount,
    load_policy,
    parse_amount,
    parse_duration,
    parse_period,
    parse_policy,
    policy_to_toml,
)
from smartkeys.policy_codec import Permission, PermissionMode, SessionPolicy, TokenCap, selector_of

NOW = 1_750_000_000
KEY = "0x1111111111111111111111111111111111111111"
USDC = "0xaAaAaAaaAaAaAaaAaAAAAAAAAaaaAaAaAaaAaaAa"
ROUTER = "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"
PAYEE = "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"
PAYMASTER = "0xDDdDddDdDdddDDddDDddDDDDdDdDDdDDdDDDDDDd"
UNTIL = 1_750_086_400  # NOW + 1 day
UNTIL_ISO = "2025-06-16T15:06:40Z"

TRANSFER = selector_of("transfer(address,uint256)")
APPROVE = selector_of("approve(address,uint256)")

# The same policy, written three ways (different but equivalent spellings).
JSON_TEXT = json.dumps({
    "key": KEY,
    "valid_until": UNTIL,
    "tokens": {"USDC": {"address": USDC, "decimals": 6}},
    "contracts": {"router": ROUTER},
    "allow": [
        {"contract": "USDC", "functions": ["transfer(address,uint256)", "approve(address,uint256)"]},
        {"contract": "router", "functions": "*"},
        {"send_native_to": PAYEE},
    ],
    "limits": {
        "native": {"per_call": "0.1 ether", "total": "1 ether", "per_period": "0.2 ether", "period": "day"},
        "tokens": {"USDC": {"total": "100.5 USDC", "per_period": "20 USDC", "period": "per day"}},
        "max_uses": 10,
        "gas_budget": "0.05 ether",
        "paymasters": [PAYMASTER],
    },
})

TOML_TEXT = f"""
key = "{KEY}"
valid_until = {UNTIL_ISO}

[tokens.USDC]
address = "{USDC}"
decimals = 6

[contracts]
router = "{ROUTER}"

[[allow]]
contract = "USDC"
functions = ["transfer(address,uint256)", "0x095ea7b3"]

[[allow]]
contract = "router"
functions = "*"

[[allow]]
send_native_to = "{PAYEE.lower()}"

[limits]
max_uses = 10
gas_budget = "50000000 gwei"
paymasters = ["{PAYMASTER}"]

[limits.native]
per_call = "100000000 gwei"
total = "1 ETH"
per_period = "0.2 ether"
period = "24h"

[limits.tokens.USDC]
total = "100.500 USDC"
per_period = "20 USDC"
period = "daily"
"""

YAML_TEXT = f"""
key: "{KEY}"
valid_until: {UNTIL_ISO}        # YAML reads this as a datetime
tokens:
  USDC: {{address: "{USDC}", decimals: 6}}
contracts:
  router: "{ROUTER}"
allow:
  - contract: USDC
    functions:
      - transfer(address,uint256)
      - approve(address,uint256)
  - contract: router
    functions: "*"
  - send_native_to: "{PAYEE}"
limits:
  native:
    per_call: 0.1 ether
    total: 1 ether
    per_period: 0.2 ether
    period: 1d
  tokens:
    USDC:
      total: 100.5 USDC
      per_period: 20 USDC
      period: day
  max_uses: 10
  gas_budget: 0.05 ether
  paymasters: ["{PAYMASTER}"]
"""

EXPECTED = SessionPolicy(
    key=KEY,
    valid_after=NOW - 1,  # no valid_from: usable from NOW itself (the on-chain start is exclusive)
    valid_until=UNTIL,
    permissions=(
        Permission(USDC, TRANSFER, PermissionMode.EXACT),
        Permission(USDC, APPROVE, PermissionMode.EXACT),
        Permission(ROUTER, b"\x00" * 4, PermissionMode.ANY_SELECTOR),
        Permission(PAYEE, b"\x00" * 4, PermissionMode.EMPTY_CALLDATA),
    ),
    token_caps=(TokenCap(USDC, cap=100_500_000, period=86_400, per_period=20_000_000),),
    paymasters=(PAYMASTER,),
    max_uses=10,
    native_per_call=10**17,
    native_total=10**18,
    native_period=86_400,
    native_per_period=2 * 10**17,
    gas_budget=5 * 10**16,
)


def base() -> dict:
    return json.loads(JSON_TEXT)


# ------------------------------------------------------------------------------- formats


@pytest.fixture
def files(tmp_path):
    out = {}
    for ext, text in (("json", JSON_TEXT), ("toml", TOML_TEXT), ("yaml", YAML_TEXT), ("yml", YAML_TEXT)):
        path = tmp_path / f"policy.{ext}"
        path.write_text(text)
        out[ext] = path
    return out


@pytest.mark.parametrize("ext", ["json", "toml", "yaml", "yml"])
def test_each_format_compiles_to_the_expected_policy(files, ext):
    assert load_policy(files[ext]).compile(NOW) == EXPECTED


def test_json_toml_and_yaml_compile_to_identical_bytes(files):
    encoded = {ext: load_policy(path).compile(NOW).encode() for ext, path in files.items()}
    assert len(set(encoded.values())) == 1
    assert encoded["json"] == EXPECTED.encode()


@pytest.mark.parametrize("ext", ["json", "toml", "yaml"])
def test_model_round_trips_through_dict_and_file(tmp_path, files, ext):
    model = load_policy(files["json"])
    data = model.to_dict()
    assert parse_policy(data) == model
    path = dump_policy(model, tmp_path / f"out.{ext}")
    again = load_policy(path)
    assert again == model
    assert again.compile(NOW) == EXPECTED


def test_relative_policy_round_trips_and_keeps_durations(tmp_path):
    data = base()
    del data["valid_until"]
    data["valid_from"] = "1h"
    data["valid_for"] = "7d"
    model = parse_policy(data)
    for ext in ("json", "toml", "yaml"):
        assert load_policy(dump_policy(model, tmp_path / f"rel.{ext}")) == model
    assert model.to_dict()["valid_for"] == "1w"
    compiled = model.compile(NOW)
    assert (compiled.valid_after, compiled.valid_until) == (NOW + 3_600, NOW + 3_600 + 7 * 86_400)


def test_dump_refuses_to_overwrite(tmp_path):
    model = parse_policy(base())
    path = dump_policy(model, tmp_path / "p.json")
    with pytest.raises(FileExistsError):
        dump_policy(model, path)
    dump_policy(model, path, overwrite=True)
    assert load_policy(path) == model


def test_toml_writer_output_is_valid_toml():
    import tomllib

    text = policy_to_toml(parse_policy(base()).to_dict())
    assert tomllib.loads(text)["limits"]["tokens"]["USDC"]["total"] == "100.5 USDC"


def test_wildcard_is_explicit_and_maps_to_any_selector():
    model = parse_policy(base())
    assert model.allow[1] == AllowCall("router", ANY_FUNCTION) and model.allow[1].any_function
    assert model.allow[0].any_function is False
    modes = [p.mode for p in model.compile(NOW).permissions]
    assert modes.count(PermissionMode.ANY_SELECTOR) == 1


def test_send_native_to_is_empty_calldata_only():
    perm = parse_policy(base()).compile(NOW).permissions[-1]
    assert perm == Permission(PAYEE, b"\x00" * 4, PermissionMode.EMPTY_CALLDATA)


def test_describe_summarises_in_human_units():
    text = parse_policy(base()).describe()
    for part in ("Session key " + KEY, "USDC: transfer(address,uint256)", "router: ANY function",
                 "0.1 ether per call", "1 ether in total", "100.5 USDC in total",
                 "0.2 ether per UTC day (a calendar window, not a rolling one: resets at 00:00 UTC)",
                 "20 USDC per UTC day (a calendar window, not a rolling one: resets at 00:00 UTC)", "Uses: 10", "gas budget: 0.05 ether"):
        assert part in text, part
    assert UNTIL_ISO in parse_policy(base()).describe(now=NOW)


def test_decompile_shows_a_chain_policy_in_human_units_and_recompiles_exactly():
    model = decompile(EXPECTED, tokens={"USDC": (USDC, 6)}, contracts={"router": ROUTER})
    data = model.to_dict()
    assert data["limits"]["tokens"]["USDC"]["total"] == "100.5 USDC"
    assert data["allow"][0] == {"contract": "USDC", "functions": ["transfer(address,uint256)", "approve(address,uint256)"]}
    assert data["allow"][1] == {"contract": "router", "functions": "*"}
    assert model.compile(NOW + 5) == EXPECTED
    assert parse_policy(data).compile(NOW + 5) == EXPECTED


def test_decompile_without_names_uses_addresses_and_base_units():
    model = decompile(EXPECTED)
    (name,) = model.tokens
    assert model.tokens[name] == Token(USDC, 0)
    assert model.to_dict()["limits"]["tokens"][name]["total"] == f"100500000 {name}"
    assert model.compile(NOW) == EXPECTED


def test_decompile_accepts_policies_the_friendly_checks_would_flag():
    odd = SessionPolicy(key=KEY, valid_after=0, valid_until=UNTIL, gas_budget=10**18,
                        permissions=(Permission(USDC, TRANSFER), Permission(PAYEE, mode=PermissionMode.EMPTY_CALLDATA)))
    model = decompile(odd, tokens={"USDC": (USDC, 6)})
    assert model.compile(NOW) == odd
    assert "USDC: transfer(address,uint256)" in model.describe()


# ------------------------------------------------------------------------------- exact amounts


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.1 ether", 10**17),
        ("1 ether", 10**18),
        ("0.000000000000000001 ether", 1),
        ("2 gwei", 2 * 10**9),
        ("1000 wei", 1000),
        ("1_000 wei", 1000),
        ("1.5ETH", 15 * 10**17),
        ("100.5 USDC", 100_500_000),
        ("0.000001 USDC", 1),
        ("100.500000 USDC", 100_500_000),
        ("79228162514.264337593543950335 ether", 2**96 - 1),
        ("123456789.123456 USDC", 123_456_789_123_456),
    ],
)
def test_amounts_are_exact(text, expected):
    assert parse_amount(text, tokens={"USDC": Token(USDC, 6)}) == expected


def test_precision_beyond_float():
    # 0.1 + 0.2 style errors and 2**53 limits would show here if a float were involved
    assert parse_amount("9007199254.740993 ether") == 9_007_199_254_740_993 * 10**12
    assert format_amount(9_007_199_254_740_993 * 10**12, 18, "ether") == "9007199254.740993 ether"


@pytest.mark.parametrize(("value", "decimals", "text"), [(100_500_000, 6, "100.5 USDC"), (0, 6, "0 USDC"), (1, 18, "0.000000000000000001 USDC")])
def test_format_amount_is_exact(value, decimals, text):
    assert format_amount(value, decimals, "USDC") == text


def test_durations_and_periods():
    assert [parse_duration(t) for t in ("30s", "90m", "24h", "7d", "2w", "1h30m", "1 day")] == [
        30, 5400, 86400, 604800, 1209600, 5400, 86400]
    assert [parse_period(t) for t in ("minute", "hour", "day", "week", "per day", "per week", "12h", "daily")] == [
        60, 3600, 86400, 604800, 86400, 604800, 43200, 86400]


def test_absolute_times_accept_iso_with_timezone_and_unix_seconds():
    for value in (UNTIL, str(UNTIL), UNTIL_ISO, "2025-06-16T17:06:40+02:00",
                  dt.datetime(2025, 6, 16, 15, 6, 40, tzinfo=dt.timezone.utc)):
        data = base()
        data["valid_until"] = value
        assert parse_policy(data).valid_until == Instant(UNTIL), value


def test_allow_long_lifetime_unlocks_long_sessions():
    data = base()
    del data["valid_until"]
    data["valid_for"] = "500d"
    assert MAX_LIFETIME == 400 * 86_400
    with pytest.raises(InvalidInputError):
        parse_policy(data)
    data["allow_long_lifetime"] = True
    compiled = parse_policy(data).compile(NOW)
    assert compiled.valid_until - compiled.valid_after == 500 * 86_400


def test_direct_construction_is_validated_too():
    with pytest.raises(InvalidInputError) as info:
        PolicyModel(key=KEY, allow=(), valid_for=Duration(3600))
    assert info.value.field == "allow"
    model = PolicyModel(
        key=KEY.lower(), allow=(AllowNativeTransfer(PAYEE.lower()),), valid_for=Duration(3600),
        limits=Limits(native=NativeLimits(total=10**17)),
    )
    assert model.allow[0].send_native_to == PAYEE
    assert model.compile(NOW).native_per_call == 10**17


# ------------------------------------------------------------------------------- bad input


def _set(data: dict, path: str, value) -> None:
    *parents, last = path.split(".")
    node = data
    for p in parents:
        node = node[int(p)] if p.isdigit() else node[p]
    if value is _DELETE:
        del node[int(last) if last.isdigit() else last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value


_DELETE = object()

BAD = [
    # (id, {path: value}, expected field, text the fix contains)
    ("key-short", {"key": "0x1234"}, "key", "copy the address again"),
    ("key-missing", {"key": _DELETE}, "key", "add key"),
    ("key-zero", {"key": "0x" + "00" * 20}, "key", "pass the real address"),
    ("key-unquoted-yaml", {"key": int(KEY, 16)}, "key", "quote the address"),
    ("unit-typo-duration", {"valid_until": _DELETE, "valid_for": "24x"}, "valid_for", "s, m, h, d or w"),
    ("duration-ms", {"valid_until": _DELETE, "valid_for": "500ms"}, "valid_for", "sub-second"),
    ("duration-negative", {"valid_until": _DELETE, "valid_for": "-1h"}, "valid_for", "remove the minus sign"),
    ("duration-fraction", {"valid_until": _DELETE, "valid_for": "1.5h"}, "valid_for", "'90m'"),
    ("duration-no-unit", {"valid_until": _DELETE, "valid_for": 3600}, "valid_for", "add a unit"),
    ("lifetime-too-long", {"valid_until": _DELETE, "valid_for": "401d"}, "valid_for", "allow_long_lifetime: true"),
    ("until-too-long", {"valid_until": "2y"}, "valid_until", "'365d'"),
    ("unix-milliseconds", {"valid_until": UNTIL * 1000}, "valid_until", f"use seconds, {UNTIL}"),
    ("unix-ms-text", {"valid_until": str(UNTIL * 1000)}, "valid_until", "milliseconds"),
    ("small-int-time", {"valid_until": 3600}, "valid_until", "'3600s'"),
    ("iso-naive", {"valid_until": "2025-06-16T15:06:40"}, "valid_until", "add a timezone"),
    ("iso-date-only", {"valid_until": "2025-06-16"}, "valid_until", "add a timezone"),
    ("both-ends", {"valid_for": "1d"}, "valid_until", "remove one of them"),
    ("no-end", {"valid_until": _DELETE}, "valid_for", "every session must expire"),
    ("inverted-window", {"valid_from": UNTIL_ISO, "valid_until": "2025-06-15T15:06:40Z"}, "valid_until", "inverted"),
    ("valid-for-absolute", {"valid_until": _DELETE, "valid_for": UNTIL_ISO}, "valid_for", "use valid_until"),
    ("allow-empty", {"allow": []}, "allow", "empty scope"),
    ("allow-missing", {"allow": _DELETE}, "allow", "empty scope can do nothing"),
    ("functions-missing", {"allow.1.functions": _DELETE}, "allow[1].functions", 'functions: "*"'),
    ("functions-star-in-list", {"allow.1.functions": ["*"]}, "allow[1].functions[0]", 'functions: "*" instead'),
    ("functions-bare-string", {"allow.1.functions": "swap(uint256)"}, "allow[1].functions", 'write a list: ["swap(uint256)"]'),
    ("signature-with-space", {"allow.0.functions.0": "transfer(address, uint256)"}, "allow[0].functions[0]", "no spaces"),
    ("multicall", {"allow.1.functions": ["multicall(bytes[])"]}, "allow[1].functions[0]", "hides inner calls"),
    ("duplicate-function", {"allow.0.functions.1": "0xa9059cbb"}, "allow[0].functions[1]", "remove the duplicate"),
    ("contract-typo", {"allow.1.contract": "routr"}, "allow[1].contract", "did you mean 'router'?"),
    ("contract-unknown", {"allow.1.contract": "uniswap"}, "allow[1].contract", "add it to `contracts"),
    ("allow-entry-typo", {"allow.1": {"contract": "router", "function": "*"}}, "allow[1].function", "did you mean 'functions'?"),
    ("token-uncapped", {"limits.tokens": _DELETE}, "allow[0].functions[0]", "add limits.tokens.USDC.total"),
    ("native-unbudgeted", {"limits.native": _DELETE}, "allow[2].send_native_to", "add limits.native.total"),
    ("token-decimals-overflow", {"limits.tokens.USDC.total": "0.0000001 USDC"}, "limits.tokens.USDC.total", "round to 6 decimal places"),
    ("token-negative", {"limits.tokens.USDC.total": "-5 USDC"}, "limits.tokens.USDC.total", "cannot be negative"),
    ("token-non-numeric", {"limits.tokens.USDC.total": "lots USDC"}, "limits.tokens.USDC.total", "plain decimal number"),
    ("token-exponent", {"limits.tokens.USDC.total": "1e6 USDC"}, "limits.tokens.USDC.total", "no exponent"),
    ("token-no-unit", {"limits.tokens.USDC.total": 100}, "limits.tokens.USDC.total", "'100 USDC'"),
    ("token-wrong-unit", {"limits.tokens.USDC.per_period": "20 ether"}, "limits.tokens.USDC.per_period", "'20 USDC'"),
    ("token-case", {"limits.tokens.USDC.total": "100 usdc"}, "limits.tokens.USDC.total", "did you mean 'USDC'?"),
    ("token-name-typo", {"limits.tokens": {"USDCC": {"total": "1 USDCC"}}}, "limits.tokens.USDCC", "did you mean 'USDC'?"),
    ("token-per-period-over-total", {"limits.tokens.USDC.per_period": "200 USDC"}, "limits.tokens.USDC.per_period", "raise total"),
    ("token-total-missing", {"limits.tokens.USDC.total": _DELETE}, "limits.tokens.USDC.total", "add total"),
    ("token-decimals-absurd", {"tokens.USDC.decimals": 300}, "tokens.USDC.decimals", "decimals()"),
    ("token-decimals-missing", {"tokens.USDC.decimals": _DELETE}, "tokens.USDC.decimals", "add decimals"),
    ("native-unit-typo", {"limits.native.total": "1 ethr"}, "limits.native.total", "did you mean 'ether'?"),
    ("native-unit-token", {"limits.native.total": "1 USDC"}, "limits.native.total", "token amounts go under limits.tokens"),
    ("native-key-typo", {"limits.native.per_cal": "0.1 ether"}, "limits.native.per_cal", "did you mean 'per_call'?"),
    ("native-period-missing", {"limits.native.period": _DELETE}, "limits.native.period", "add period"),
    ("native-period-month", {"limits.native.period": "month"}, "limits.native.period", "'30d'"),
    ("native-period-unknown", {"limits.native.period": "fortnight"}, "limits.native.period", "use minute, hour, day, week"),
    ("native-per-call-over-total", {"limits.native.per_call": "2 ether"}, "limits.native.per_call", "raise total"),
    ("top-level-max-uses", {"max_uses": 3}, "max_uses", "move it under 'limits.max_uses'"),
    ("top-level-typo", {"valid_untill": "1d"}, "valid_untill", "did you mean 'valid_until'?"),
    ("max-uses-negative", {"limits.max_uses": -1}, "limits.max_uses", "0 or absent = unlimited"),
    ("max-uses-bool", {"limits.max_uses": True}, "limits.max_uses", "whole number"),
    ("gas-budget-no-unit", {"limits.gas_budget": "0.05"}, "limits.gas_budget", "'0.05 ether'"),
    ("paymaster-duplicate", {"limits.paymasters": [PAYMASTER, PAYMASTER.lower()]}, "limits.paymasters[1]", "remove the duplicate"),
    ("paymaster-bad", {"limits.paymasters": ["0x12"]}, "limits.paymasters[0]", "copy the address again"),
    ("paymasters-not-list", {"limits.paymasters": PAYMASTER}, "limits.paymasters", 'paymasters: ["0x'),
    ("contract-bad-checksum", {"contracts.router": "0xBbBBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"}, "contracts.router", "EIP-55"),
    ("name-clash", {"contracts.USDC": ROUTER}, "contracts.USDC", "remove it from contracts"),
    ("token-named-ether", {"tokens.ether": {"address": ROUTER, "decimals": 18}}, "tokens.ether", "rename the token"),
]


@pytest.mark.parametrize(("changes", "field", "fix"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_input_names_the_field_and_the_fix(changes, field, fix):
    data = copy.deepcopy(base())
    for path, value in changes.items():
        _set(data, path, value)
    with pytest.raises(InvalidInputError) as info:
        parse_policy(data)
    err = info.value
    assert err.field == field, str(err)
    assert fix in str(err), str(err)
    assert err.hint and fix in err.hint


def test_bad_input_table_is_large():
    assert len(BAD) >= 20
    assert len({c[0] for c in BAD}) == len(BAD)


@pytest.mark.parametrize(
    ("changes", "now", "field", "fix"),
    [
        ({"valid_until": "2025-06-15T00:00:00Z"}, NOW, "valid_until", "already ended"),
        ({"valid_until": _DELETE, "valid_from": "2025-06-14T00:00:00Z", "valid_for": "1h"}, NOW, "valid_for", "already ended"),
        ({"valid_until": "2027-01-01T00:00:00Z"}, NOW, "valid_until", "allow_long_lifetime: true"),
        ({}, NOW * 1000, "now", f"use {NOW}"),
        ({}, -1, "now", "non-negative"),
    ],
    ids=["past-window", "past-window-from-start", "long-absolute", "now-in-ms", "now-negative"],
)
def test_compile_time_checks_name_the_field(changes, now, field, fix):
    data = base()
    for path, value in changes.items():
        _set(data, path, value)
    model = parse_policy(data)
    with pytest.raises(InvalidInputError) as info:
        model.compile(now)
    assert info.value.field == field, str(info.value)
    assert fix in str(info.value)


# ------------------------------------------------------------------------------- bad files


def test_unquoted_yaml_wildcard_gets_a_quoting_hint(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(YAML_TEXT.replace('functions: "*"', "functions: *"))
    with pytest.raises(InvalidInputError) as info:
        load_policy(path)
    assert info.value.field == "path"
    assert 'quote the wildcard: functions: "*"' in str(info.value)


def test_unquoted_yaml_address_gets_a_quoting_hint(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(YAML_TEXT.replace(f'key: "{KEY}"', f"key: {KEY}"))
    with pytest.raises(InvalidInputError) as info:
        load_policy(path)
    assert info.value.field == "key" and "quote the address" in str(info.value)


@pytest.mark.parametrize(
    ("name", "text", "field"),
    [
        ("dup.json", f'{{"key": "{KEY}", "key": "{KEY}"}}', "key"),
        ("dup.yaml", f'key: "{KEY}"\nkey: "{KEY}"\n', "key"),
        ("broken.json", "{not json", "path"),
        ("broken.toml", "key = ", "path"),
        ("policy.txt", "{}", "path"),
        ("list.json", "[1, 2]", "policy"),
    ],
)
def test_bad_files_are_refused_with_the_field(tmp_path, name, text, field):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InvalidInputError) as info:
        load_policy(path)
    assert info.value.field == field, str(info.value)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(InvalidInputError) as info:
        load_policy(tmp_path / "nope.toml")
    assert info.value.field == "path" and "nope.toml" in str(info.value)


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [("limits.max_uses", "²", "limits.max_uses"), ("limits.max_uses", "1" * 5000, "limits.max_uses"),
     ("tokens.USDC.decimals", "²", "tokens.USDC.decimals"), ("valid_until", "1" * 5000, "valid_until"),
     ("valid_until", "9" * 5000 + "h", "valid_until")],
    ids=["uses-superscript", "uses-5000-digits", "decimals-superscript", "until-5000-digits", "duration-5000-digits"],
)
def test_digit_strings_int_cannot_read_name_the_field(path, value, field):
    """(Found by the hostile-files fuzz: int() raised a bare ValueError for these.)"""
    data = base()
    _set(data, path, value)
    with pytest.raises(InvalidInputError) as info:
        parse_policy(data)
    assert info.value.field == field, str(info.value)
