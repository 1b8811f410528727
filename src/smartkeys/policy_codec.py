"""The packed session policy: exactly the bytes ``contracts/SessionPolicy.sol`` decodes.

A policy is granted on-chain once (the account logs it in ``SessionGranted``) and presented again with
every use; its ``keccak256`` is the session id. Layout, version 3 (big-endian, no padding)::

    0    1   version (3)
    1   20   key                session signer
    21   6   valid_after        exclusive
    27   6   valid_until        inclusive
    33   4   max_uses           0 = unlimited
    37  12   native_per_call
    49  12   native_total
    61   4   native_period      seconds, 0 = none
    65  12   native_per_period
    77  12   gas_budget         wei
    89   4   salt
    93   1   flags              bit 0: ALLOW_UNCAPPED_ASSETS, bit 1: RATE_LIMIT
    94   1   n permissions, then n x [target 20 | selector 4 | mode 1 | rules offset 2 (0 = none)]
         1   m token caps,  then m x [token 20 | cap 14 | period 4 | per_period 14]
         1   k paymasters,  then k x [paymaster 20]
        12   RATE_LIMIT only:   [min_interval 4 | uses_per_period 4 | use_period 4]
             rule groups, in permission order: [count 1 | rules] (see ``smartkeys.argument_rules``)

This module is pure: no network, no clock. The friendly policy model (human units, files) builds on it.

>>> p = SessionPolicy(key="0x" + "11" * 20, valid_after=0, valid_until=2**32,
...                   permissions=(Permission("0x" + "22" * 20, "0xa9059cbb"),))
>>> len(p.encode())
124
>>> SessionPolicy.decode(p.encode()) == p
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, cast

from eth_utils import is_address, keccak, to_checksum_address

from smartkeys.argument_rules import MAX_RULES, ArgumentRule, RuleOp
from smartkeys.errors import InvalidInputError

__all__ = [
    "ArgumentRule",
    "FLAG_ALLOW_STANDING_ALLOWANCES",
    "FLAG_ALLOW_UNCAPPED_ASSETS",
    "FLAG_RATE_LIMIT",
    "RuleOp",
    "MAX_PAYMASTERS",
    "MULTICALL_SELECTORS",
    "MAX_PERMISSIONS",
    "MAX_TOKEN_CAPS",
    "MULTICALL_SIGNATURES",
    "POLICY_VERSION",
    "Permission",
    "PermissionMode",
    "SessionPolicy",
    "TokenCap",
    "selector_of",
]

POLICY_VERSION = 3
MAX_PERMISSIONS = 32
MAX_TOKEN_CAPS = 16
MAX_PAYMASTERS = 8
_HEADER = 95
#: Policy flag bit: the owner lets the key reach assets the policy does not cap (``SessionPolicy.sol``).
FLAG_ALLOW_UNCAPPED_ASSETS = 1
FLAG_ALLOW_STANDING_ALLOWANCES = 2
#: Policy flag bit: the policy carries a rate limit (``RateLimits.sol``).
FLAG_RATE_LIMIT = 4
_KNOWN_FLAGS = FLAG_ALLOW_UNCAPPED_ASSETS | FLAG_ALLOW_STANDING_ALLOWANCES | FLAG_RATE_LIMIT

#: Functions that bundle inner calls a policy cannot see: a wildcard permission never reaches them and an
#: exact permission for one is refused. Mirrors ``SmartKeysAccount._isMulticall`` (a test compares them).
MULTICALL_SIGNATURES = (
    "multicall(bytes[])",
    "multicall(uint256,bytes[])",
    "multicall(bytes32,bytes[])",
    "aggregate((address,bytes)[])",
    "aggregate3((address,bool,bytes)[])",
    "aggregate3Value((address,bool,uint256,bytes)[])",
    "tryAggregate(bool,(address,bytes)[])",
    "blockAndAggregate((address,bytes)[])",
    "tryBlockAndAggregate(bool,(address,bytes)[])",
    "execute(bytes,bytes[],uint256)",  # universal router
    "execute(bytes,bytes[])",
    "execute(bytes32,bytes)",  # ERC-7821
    "executeBatch((address,uint256,bytes)[])",
    "executeAsSession(bytes,(address,uint256,bytes)[])",
)
#: selector -> signature for :data:`MULTICALL_SIGNATURES`.
MULTICALL_SELECTORS: dict[bytes, str] = {keccak(text=sig)[:4]: sig for sig in MULTICALL_SIGNATURES}

_U32 = 2**32 - 1
_U48 = 2**48 - 1
_U96 = 2**96 - 1
_U112 = 2**112 - 1


class PermissionMode(IntEnum):
    """How a permission matches a call's selector."""

    EXACT = 0
    """Only calls whose first four bytes equal the selector."""
    ANY_SELECTOR = 1
    """Any function of the target (known multicall functions excepted), and plain transfers to it."""
    EMPTY_CALLDATA = 2
    """Only calls with empty calldata: plain native transfers."""


def selector_of(signature_or_hex: str | bytes) -> bytes:
    """Four-byte selector from ``"transfer(address,uint256)"``, ``"0xa9059cbb"`` or raw bytes.

    >>> selector_of("transfer(address,uint256)").hex()
    'a9059cbb'
    """
    if isinstance(signature_or_hex, bytes):
        if len(signature_or_hex) != 4:
            raise InvalidInputError("selector", signature_or_hex.hex(), "4 bytes", "pass a 4-byte selector")
        return signature_or_hex
    text = signature_or_hex.strip()
    if text.startswith("0x") and len(text) == 10:
        try:
            return bytes.fromhex(text[2:])
        except ValueError:
            pass
    if "(" in text and text.endswith(")") and " " not in text:
        return keccak(text=text)[:4]
    raise InvalidInputError(
        "selector",
        signature_or_hex,
        "a function signature like 'transfer(address,uint256)' or a 0x-prefixed 4-byte selector",
        "write the canonical signature without spaces or parameter names",
    )


def _address(name: str, value: str) -> str:
    if not isinstance(value, str) or not is_address(value):
        raise InvalidInputError(name, value, "a 20-byte hex address", "check the address (0x + 40 hex digits)")
    return to_checksum_address(value)


def _uint(name: str, value: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise InvalidInputError(name, value, f"an integer from 0 to {maximum}", "use a smaller value")
    return value


@dataclass(frozen=True)
class Permission:
    """One allowlist entry: the session may call ``selector`` on ``target`` (see :class:`PermissionMode`).

    ``rules`` (EXACT mode only, at most 16): :class:`~smartkeys.argument_rules.ArgumentRule` s that must all
    hold for the call's arguments. Several permissions for the same call are alternatives (OR).
    """

    target: str
    selector: bytes | str = b"\x00\x00\x00\x00"
    mode: PermissionMode = PermissionMode.EXACT
    rules: tuple[ArgumentRule, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "target", _address("permission.target", self.target))
        object.__setattr__(self, "mode", PermissionMode(self.mode))
        if self.mode is PermissionMode.EXACT:
            object.__setattr__(self, "selector", selector_of(self.selector))
        else:
            sel = self.selector if isinstance(self.selector, bytes) else selector_of(self.selector)
            if sel != b"\x00\x00\x00\x00":
                raise InvalidInputError(
                    "permission.selector",
                    "0x" + sel.hex(),
                    f"no selector with mode {self.mode.name}",
                    "use mode EXACT for one function, or drop the selector",
                )
            object.__setattr__(self, "selector", sel)
        rules = tuple(self.rules)
        if rules and self.mode is not PermissionMode.EXACT:
            raise InvalidInputError("permission.rules", len(rules), f"no argument rules with mode {self.mode.name}",
                                    "use mode EXACT with a selector to constrain arguments")
        if len(rules) > MAX_RULES:
            raise InvalidInputError("permission.rules", len(rules), f"at most {MAX_RULES} rules",
                                    "merge rules (one ONE_OF holds up to 32 values) or split the permission")
        for r in rules:
            if not isinstance(r, ArgumentRule):
                raise InvalidInputError("permission.rules", r, "ArgumentRule values", "build each with ArgumentRule(...)")
        object.__setattr__(self, "rules", rules)

    def encode(self, rules_offset: int = 0) -> bytes:
        """The 27-byte entry; ``rules_offset`` is where its rule group starts in the policy (0 = none)."""
        return bytes.fromhex(self.target[2:]) + cast(bytes, self.selector) + bytes([self.mode]) + rules_offset.to_bytes(2, "big")

    def encode_rules(self) -> bytes:
        """The rule group ``count | rules`` (empty if the permission has no rules)."""
        if not self.rules:
            return b""
        return bytes([len(self.rules)]) + b"".join(r.encode() for r in self.rules)


@dataclass(frozen=True)
class TokenCap:
    """ERC-20 budget: ``cap`` base units in total, and optionally ``per_period`` within each ``period`` s."""

    token: str
    cap: int
    period: int = 0
    per_period: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "token", _address("token_cap.token", self.token))
        _uint("token_cap.cap", self.cap, _U112)
        _uint("token_cap.period", self.period, _U32)
        _uint("token_cap.per_period", self.per_period, _U112)

    def encode(self) -> bytes:
        return (
            bytes.fromhex(self.token[2:])
            + self.cap.to_bytes(14, "big")
            + self.period.to_bytes(4, "big")
            + self.per_period.to_bytes(14, "big")
        )


@dataclass(frozen=True)
class SessionPolicy:
    """Everything a session key may do, in on-chain units (wei, base units, unix seconds).

    Only the layout is checked here; the account refuses semantically bad grants (inverted window,
    empty scope, duplicates, forbidden targets, uncapped assets) with its own custom errors.

    ``allow_standing_allowances`` is the owner's explicit choice to let the key call contracts the account has
    already approved to spend a capped token (a router, a Permit2-like forwarder): what they pull during a use
    is measured and charged, but what they let anyone pull later is not. Without it the contract refuses such a
    grant or call (``StandingAllowance``).

    ``allow_uncapped_assets`` is the owner's explicit choice to let the key reach assets that no
    ``token_caps`` entry caps (a token without a cap, an NFT collection). Without it the contract refuses
    such a grant (``UncappedAsset``): default deny.

    Rate limits (``RateLimits.sol``, checked at execution on both paths): ``min_interval`` seconds between
    uses (0 = none), and at most ``uses_per_period`` uses per fixed window of ``use_period`` seconds (both or
    neither). The contract refuses ``UseTooSoon`` / ``UsesPerPeriodReached``.
    """

    key: str
    valid_after: int
    valid_until: int
    permissions: tuple[Permission, ...] = ()
    token_caps: tuple[TokenCap, ...] = ()
    paymasters: tuple[str, ...] = ()
    max_uses: int = 0
    native_per_call: int = 0
    native_total: int = 0
    native_period: int = 0
    native_per_period: int = 0
    gas_budget: int = 0
    salt: int = 0
    allow_uncapped_assets: bool = False
    allow_standing_allowances: bool = False
    min_interval: int = 0
    uses_per_period: int = 0
    use_period: int = 0
    version: int = field(default=POLICY_VERSION)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", _address("key", self.key))
        _uint("valid_after", self.valid_after, _U48)
        _uint("valid_until", self.valid_until, _U48)
        _uint("max_uses", self.max_uses, _U32)
        for name in ("native_per_call", "native_total", "native_per_period", "gas_budget"):
            _uint(name, getattr(self, name), _U96)
        _uint("native_period", self.native_period, _U32)
        _uint("salt", self.salt, _U32)
        if not isinstance(self.allow_standing_allowances, bool):
            raise InvalidInputError("allow_standing_allowances", self.allow_standing_allowances, "True or False",
                                    "pass a bool: True only if the key may call contracts the account already "
                                    "approved to spend a capped token")
        for name in ("min_interval", "uses_per_period", "use_period"):
            _uint(name, getattr(self, name), _U32)
        if (self.uses_per_period == 0) != (self.use_period == 0):
            raise InvalidInputError("uses_per_period", self.uses_per_period, "a count together with use_period",
                                    "give both uses_per_period and use_period, or neither")
        if not isinstance(self.allow_uncapped_assets, bool):
            raise InvalidInputError("allow_uncapped_assets", self.allow_uncapped_assets, "True or False",
                                    "pass a bool: True only if the key may reach assets the policy does not cap")
        object.__setattr__(self, "permissions", tuple(self.permissions))
        object.__setattr__(self, "token_caps", tuple(self.token_caps))
        object.__setattr__(
            self, "paymasters", tuple(_address("paymasters", p) for p in self.paymasters)
        )
        for name, items, limit in (
            ("permissions", self.permissions, MAX_PERMISSIONS),
            ("token_caps", self.token_caps, MAX_TOKEN_CAPS),
            ("paymasters", self.paymasters, MAX_PAYMASTERS),
        ):
            if len(items) > limit:
                raise InvalidInputError(name, len(items), f"at most {limit} entries", "split the policy")

    def encode(self) -> bytes:
        """The packed bytes the contract decodes."""
        out = bytearray()
        out += bytes([self.version])
        out += bytes.fromhex(self.key[2:])
        out += self.valid_after.to_bytes(6, "big")
        out += self.valid_until.to_bytes(6, "big")
        out += self.max_uses.to_bytes(4, "big")
        out += self.native_per_call.to_bytes(12, "big")
        out += self.native_total.to_bytes(12, "big")
        out += self.native_period.to_bytes(4, "big")
        out += self.native_per_period.to_bytes(12, "big")
        out += self.gas_budget.to_bytes(12, "big")
        out += self.salt.to_bytes(4, "big")
        out += bytes([(FLAG_ALLOW_UNCAPPED_ASSETS if self.allow_uncapped_assets else 0)
                      | (FLAG_ALLOW_STANDING_ALLOWANCES if self.allow_standing_allowances else 0)
                      | (FLAG_RATE_LIMIT if self.rate_limited else 0)])
        out += bytes([len(self.permissions)])
        groups = [p.encode_rules() for p in self.permissions]
        cursor = _HEADER + 27 * len(self.permissions) + 1 + 52 * len(self.token_caps) + 1 + 20 * len(self.paymasters)
        cursor += 12 if self.rate_limited else 0
        for p, g in zip(self.permissions, groups, strict=True):
            out += p.encode(cursor if g else 0)
            cursor += len(g)
        if cursor > 0xFFFF:
            raise InvalidInputError("permissions.rules", cursor, "a policy under 64 KiB", "use fewer rule values")
        out += bytes([len(self.token_caps)])
        for c in self.token_caps:
            out += c.encode()
        out += bytes([len(self.paymasters)])
        for pm in self.paymasters:
            out += bytes.fromhex(pm[2:])
        if self.rate_limited:
            out += b"".join(v.to_bytes(4, "big") for v in (self.min_interval, self.uses_per_period, self.use_period))
        for g in groups:
            out += g
        return bytes(out)

    @property
    def rate_limited(self) -> bool:
        """True if the policy carries a rate limit (the RATE_LIMIT flag)."""
        return bool(self.min_interval or self.use_period)

    @property
    def session_id(self) -> bytes:
        """keccak256 of the packed policy: the on-chain session id."""
        return keccak(self.encode())

    @classmethod
    def decode(cls, data: bytes) -> SessionPolicy:
        """Parse packed policy bytes (for instance from a ``SessionGranted`` log)."""
        data = bytes(data)
        pos = 0

        def take(n: int) -> bytes:
            nonlocal pos
            if pos + n > len(data):
                raise InvalidInputError("policy", f"{len(data)} bytes", f"at least {pos + n} bytes", "the policy bytes are truncated")
            chunk = data[pos : pos + n]
            pos += n
            return chunk

        def num(n: int) -> int:
            return int.from_bytes(take(n), "big")

        version = num(1)
        if version != POLICY_VERSION:
            raise InvalidInputError("policy.version", version, f"{POLICY_VERSION}", "upgrade smartkeys to read this policy")
        key = "0x" + take(20).hex()
        header: dict[str, Any] = dict(  # int fields, then the two bool flags
            valid_after=num(6), valid_until=num(6), max_uses=num(4), native_per_call=num(12),
            native_total=num(12), native_period=num(4), native_per_period=num(12), gas_budget=num(12),
            salt=num(4),
        )
        flags = num(1)
        if flags & ~_KNOWN_FLAGS:
            raise InvalidInputError("policy.flags", flags, f"only bits in {_KNOWN_FLAGS:#04x}", "upgrade smartkeys to read this policy")
        header["allow_uncapped_assets"] = bool(flags & FLAG_ALLOW_UNCAPPED_ASSETS)
        header["allow_standing_allowances"] = bool(flags & FLAG_ALLOW_STANDING_ALLOWANCES)
        entries = []
        for _ in range(num(1)):
            target = "0x" + take(20).hex()
            selector = take(4)
            entries.append((target, selector, PermissionMode(num(1)), num(2)))
        caps = []
        for _ in range(num(1)):
            caps.append(TokenCap("0x" + take(20).hex(), num(14), num(4), num(14)))
        paymasters = ["0x" + take(20).hex() for _ in range(num(1))]
        if flags & FLAG_RATE_LIMIT:
            header.update(min_interval=num(4), uses_per_period=num(4), use_period=num(4))
        permissions = []
        for target, selector, mode, offset in entries:
            rules: list[ArgumentRule] = []
            if offset:
                if offset != pos:
                    raise InvalidInputError("policy.rules", offset, f"the next rule group at byte {pos}",
                                            "the policy bytes are not canonical")
                for _ in range(num(1)):
                    rule, pos = ArgumentRule.decode_from(data, pos)
                    rules.append(rule)
            permissions.append(Permission(target, selector, mode, tuple(rules)))
        if pos != len(data):
            raise InvalidInputError("policy", f"{len(data)} bytes", f"exactly {pos} bytes", "remove trailing bytes")
        return cls(key=key, permissions=tuple(permissions), token_caps=tuple(caps), paymasters=tuple(paymasters), **header)
