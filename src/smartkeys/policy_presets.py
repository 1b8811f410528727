"""Starting points for a policy file: commented TOML to edit (``smartkeys policy new --preset NAME``).

=================== ==========================================================================================
preset              what the key may do
=================== ==========================================================================================
``observer``        call named functions of one contract that move nothing: no native value, no token
                    function, no wildcard; a gas budget and a rate limit
``operator``        ERC-20 transfers within caps: to a recipient list (address book) only, a bound per
                    transfer, a total and a daily cap, one use every 10 minutes, 20 uses per UTC day
``admin-in-window`` any function of one contract (an explicit wildcard) and token transfers/approvals,
                    for one hour only, with small caps
=================== ==========================================================================================

Each file names what the owner must fill in with a placeholder ``"<FILL IN: …>"``; until it is filled,
:func:`smartkeys.policy.load_policy` refuses the file naming the field and the fix (``field 'key':
expected an address …, got '<FILL IN: …>'; fix: replace the placeholder with …``). Filled in, the file loads,
compiles and is granted as it is (the tests do exactly that).

>>> sorted(PRESETS)
['admin-in-window', 'observer', 'operator']
>>> preset_text("operator").startswith("# smartkeys policy preset: operator")
True
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from smartkeys.errors import InvalidInputError

__all__ = ["PRESETS", "placeholders", "preset_text", "write_preset"]

_KEY = '"<FILL IN: the agent\'s key address (smartkeys keys show agent --address)>"'

_HEADER = """\
# smartkeys policy preset: {name}
# {summary}
#
# Fill in every "<FILL IN: ...>" below, then check the file and grant it:
#   smartkeys grant --policy {{file}} --dry-run     # prints what the key may do; nothing is sent
#   smartkeys grant --policy {{file}}
# Amounts carry their unit ("0.01 ether", "50 USDC"); durations look like "10m", "24h", "7d".
# The contract enforces all of it on-chain, whatever the agent signs.

key = {key}
"""

_OBSERVER = """\
valid_for = "30d"                 # every session expires; at most 400 days

[contracts]
app = "<FILL IN: the address of the contract the agent reports to>"

# Functions that move nothing: a status report, a vote, a heartbeat. Never a token function (transfer,
# approve, ...) and never "*": the account refuses at grant a target that holds or is an asset with no cap
# (UncappedAsset), and there is no native budget below, so no call can carry ETH.
[[allow]]
contract = "app"
functions = ["checkIn()"]         # replace with the signature(s) of your contract's functions

[limits]
max_uses = 1000
every = "1m"                      # at most one use a minute
uses_per_day = 200                # and at most 200 per UTC day
gas_budget = "0.02 ether"         # what its user operations may cost the account, each charged its maximum
                                  # cost (gas limits x max fee); 0: direct sends only, the key pays its gas
"""

_OPERATOR = """\
valid_for = "7d"

[tokens.USDC]                     # the token the agent pays with; amounts below are in its units
address = "<FILL IN: the token's address>"
decimals = 6                      # the token's decimals() (6 for USDC, 18 for most tokens)

[address_book]                    # who the agent may pay, by name (at most 32 per list)
treasury = "<FILL IN: the treasury's address>"
supplier = "<FILL IN: a supplier's address>"

[[allow]]
contract = "USDC"
functions = ["transfer(address,uint256)"]
where = { to = ["treasury", "supplier"], amount = "<= 50 USDC" }   # recipients, and at most 50 USDC a transfer

[limits]
max_uses = 100
every = "10m"                     # at most one use every 10 minutes
uses_per_day = 20                 # and at most 20 per UTC day
gas_budget = "0.05 ether"         # what its user operations may cost the account (each its maximum cost)

[limits.tokens.USDC]
total = "200 USDC"                # for the whole session
per_period = "100 USDC"           # and per UTC day (a calendar day: resets at 00:00 UTC)
period = "day"
"""

_ADMIN = """\
valid_for = "1h"                  # a short window: the key stops working an hour after the grant
# valid_from = "2030-01-01T09:00:00Z"   # or open the window later (the hour then counts from here)

[contracts]
app = "<FILL IN: the address of the contract the agent administers>"

[tokens.USDC]
address = "<FILL IN: the token's address>"
decimals = 6

# Any function of the app (the wildcard is explicit; multicall-style functions stay refused). If the app
# holds or is an asset, the grant is refused (UncappedAsset) unless you cap it or set allow_uncapped_assets.
[[allow]]
contract = "app"
functions = "*"

[[allow]]
contract = "USDC"
functions = ["transfer(address,uint256)", "approve(address,uint256)"]   # an approval counts in full

[limits]
max_uses = 20
gas_budget = "0.02 ether"

[limits.native]                   # ETH the calls may carry
total = "0.01 ether"
per_call = "0.005 ether"

[limits.tokens.USDC]
total = "25 USDC"
"""

#: Preset name -> (one-line summary, TOML body after the key).
PRESETS: dict[str, tuple[str, str]] = {
    "observer": (("moves nothing: named functions of one contract, no native value, no token functions, "
                  "rate-limited"), _OBSERVER),
    "operator": (("ERC-20 transfers within caps, to a recipient list only, with a bound per transfer and a "
                  "rate limit"), _OPERATOR),
    "admin-in-window": ("broad scope (any function of one contract) for one hour only, with small caps", _ADMIN),
}


def placeholders(data: Any, path: str = "") -> list[str]:
    """Field paths of the ``"<FILL IN: …>"`` values left in a parsed policy mapping (``tomllib.loads(text)``),
    in file order: ``['key', 'tokens.USDC.address', 'address_book.treasury', …]``."""
    if isinstance(data, dict):
        return [p for k, v in data.items() for p in placeholders(v, f"{path}.{k}" if path else str(k))]
    if isinstance(data, list):
        return [p for i, v in enumerate(data) for p in placeholders(v, f"{path}[{i}]")]
    return [path] if isinstance(data, str) and data.lstrip().startswith("<FILL IN") else []


def _check_name(name: str) -> str:
    if name not in PRESETS:
        import difflib

        close = difflib.get_close_matches(str(name), PRESETS, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"use one of {', '.join(PRESETS)}"
        raise InvalidInputError("preset", name, f"one of {', '.join(PRESETS)}", hint)
    return name


def preset_text(name: str, *, file: str = "policy.toml") -> str:
    """The commented TOML of preset ``name`` (``file`` is the name its comments use in example commands).

    Raises :class:`~smartkeys.errors.InvalidInputError` (field ``preset``) for an unknown name."""
    summary, body = PRESETS[_check_name(name)]
    return _HEADER.format(name=name, summary=summary, key=_KEY).format(file=file) + "\n" + body


def write_preset(name: str, path: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Write preset ``name`` to ``path`` (a ``.toml`` file) and return the path.

    An existing file is never replaced unless ``force``: :class:`~smartkeys.errors.InvalidInputError` (field
    ``path``, exit code 2) says so with the fix; the new file is created with ``open(..., "x")``, so a file
    appearing meanwhile is not overwritten either. The same error names an unknown preset or a path that is
    not ``.toml``.
    """
    _check_name(name)
    target = Path(path)
    if target.suffix.lower() != ".toml":
        raise InvalidInputError("path", str(target), "a .toml file (the presets are commented TOML)",
                                f"name it e.g. {target.with_suffix('.toml').name}")
    text = preset_text(name, file=str(target))
    exists = InvalidInputError("path", str(target), "a file that does not exist yet",
                               "choose another file name (--out), or pass --force to replace it")
    if target.exists() and not force:
        raise exists
    try:
        with open(target, "w" if force else "x", encoding="utf-8") as fh:
            fh.write(text)
    except FileExistsError:
        raise exists from None
    return target
