"""Policy presets (``smartkeys.policy_presets``): each file names its placeholders, the loader refuses every
unfilled one naming the field and the fix, and once filled it loads and compiles to what its name promises."""

from __future__ import annotations

import re

import pytest

from smartkeys.errors import InvalidInputError
from smartkeys.policy import load_policy, parse_policy
from smartkeys.policy_codec import PermissionMode, selector_of
from smartkeys.policy_presets import PRESETS, placeholders, preset_text, write_preset
from smartkeys.safe_files import tomllib

NOW = 1_800_000_000
FILLED = [f"0x{i:040x}" for i in range(0xA001, 0xA010)]
_PLACEHOLDER = re.compile(r'^([\w.-]+\s*=\s*)"<FILL IN:[^"]*>"', re.M)  # a value, not the header's mention


def fill(text: str, keep: int | None = None) -> str:
    """``text`` with its placeholders replaced by distinct addresses, as a user edits the file; the one at
    position ``keep`` (0-based, file order) is left as it is."""
    values = iter(FILLED)
    counter = iter(range(100))

    def one(m: re.Match) -> str:
        value = next(values)
        return m.group(0) if next(counter) == keep else f'{m.group(1)}"{value}"'

    return _PLACEHOLDER.sub(one, text)


def test_presets_are_the_three_documented_ones():
    assert list(PRESETS) == ["observer", "operator", "admin-in-window"]


@pytest.mark.parametrize("name", list(PRESETS))
def test_each_unfilled_placeholder_is_refused_naming_its_field_and_the_fix_then_the_file_loads(name, tmp_path):
    text = preset_text(name)
    paths = placeholders(tomllib.loads(text))
    assert paths and paths[0] == "key" and len(paths) == len(_PLACEHOLDER.findall(text))
    for left, path in enumerate(paths):  # each one alone left unfilled is named
        file = tmp_path / f"{name}-{left}.toml"
        file.write_text(fill(text, keep=left))
        with pytest.raises(InvalidInputError) as info:
            load_policy(file)
        assert info.value.field == path, (left, str(info.value))
        assert "fix: replace the placeholder with " in str(info.value) and "<FILL IN" in str(info.value)
    file = tmp_path / f"{name}.toml"
    file.write_text(fill(text))
    assert placeholders(tomllib.loads(file.read_text())) == []
    policy = load_policy(file).compile(now=NOW)
    assert policy.key == parse_policy(tomllib.loads(fill(text))).key


def _compiled(name: str):
    model = parse_policy(tomllib.loads(fill(preset_text(name))))
    return model, model.compile(now=NOW)


# the functions through which a key could move a token (ERC-20 and friends) or hand out an allowance
_TOKEN_FUNCTIONS = {selector_of(s) for s in (
    "transfer(address,uint256)", "transferFrom(address,address,uint256)", "approve(address,uint256)",
    "increaseAllowance(address,uint256)", "permit(address,address,uint256,uint256,uint8,bytes32,bytes32)",
    "setApprovalForAll(address,bool)", "safeTransferFrom(address,address,uint256)", "burn(uint256)",
    "withdraw(uint256)", "deposit()")}


def test_observer_moves_nothing_no_value_no_token_function_no_wildcard():
    _, policy = _compiled("observer")
    assert (policy.native_total, policy.native_per_call, policy.native_per_period) == (0, 0, 0)
    assert policy.token_caps == () and not policy.allow_uncapped_assets and not policy.allow_standing_allowances
    assert policy.permissions and all(p.mode is PermissionMode.EXACT for p in policy.permissions)
    assert not {p.selector for p in policy.permissions} & _TOKEN_FUNCTIONS
    assert policy.rate_limited and policy.max_uses


def test_operator_writes_within_caps_to_its_recipient_list_under_a_rate_limit():
    model, policy = _compiled("operator")
    (perm,) = policy.permissions
    assert perm.selector == selector_of("transfer(address,uint256)")
    to, amount = perm.rules
    assert (to.index, to.op.name, len(to.values)) == (0, "ONE_OF", 2)
    assert set(to.values) == {model.address_book["treasury"], model.address_book["supplier"]}
    assert (amount.index, amount.op.name, amount.values) == (1, "LE", (50 * 10**6,))
    (cap,) = policy.token_caps
    assert (cap.cap, cap.per_period, cap.period) == (200 * 10**6, 100 * 10**6, 86_400)
    assert (policy.min_interval, policy.uses_per_period, policy.use_period) == (600, 20, 86_400)
    assert "to one of [treasury, supplier], amount <= 50 USDC" in model.describe()


def test_admin_in_window_is_broad_for_one_hour_with_small_caps():
    _, policy = _compiled("admin-in-window")
    assert policy.valid_until - policy.valid_after == 3_600  # one hour from the grant (valid_after = now - 1)
    assert any(p.mode is PermissionMode.ANY_SELECTOR for p in policy.permissions)
    assert policy.native_total <= 10**16 and policy.native_per_call <= policy.native_total
    assert all(c.cap <= 25 * 10**6 for c in policy.token_caps) and policy.token_caps
    assert policy.max_uses and policy.max_uses <= 20


def test_write_preset_refuses_to_overwrite_unless_forced(tmp_path):
    target = tmp_path / "policy.toml"
    target.write_text("mine\n")
    with pytest.raises(InvalidInputError) as info:
        write_preset("operator", target)
    assert info.value.field == "path" and "--force" in str(info.value)
    assert target.read_text() == "mine\n"
    assert write_preset("operator", target, force=True) == target
    assert target.read_text().startswith("# smartkeys policy preset: operator")


@pytest.mark.parametrize("name, path, field, fix", [
    ("operater", "p.toml", "preset", "did you mean 'operator'?"),
    ("operator", "p.yaml", "path", "p.toml"),
])
def test_write_preset_refuses_an_unknown_preset_or_format_with_the_fix(tmp_path, name, path, field, fix):
    with pytest.raises(InvalidInputError) as info:
        write_preset(name, tmp_path / path)
    assert info.value.field == field and fix in str(info.value)
    assert not (tmp_path / path).exists()


def test_doctests_pass():
    import doctest

    from smartkeys import policy_presets

    result = doctest.testmod(policy_presets)
    assert result.attempted and not result.failed
