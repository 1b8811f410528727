"""What an account's EIP-7702 code runs, and which delegation targets are smartkeys deployments.

- :func:`known_implementations` lists the smartkeys account deployments trusted on a chain: the canonical
  CREATE2 address (same on every chain) and the ``SmartKeysAccount`` entry of ``deployments/<chainId>.json``
  written by ``smartkeys deploy``.
- :func:`implementation_name` gives a readable name for a delegation target (``smartkeys``,
  ``Simple7702Account``, or the address).
- :func:`require_smartkeys` raises :class:`~smartkeys.errors.NotDelegatedError` when an account does not run
  a smartkeys implementation: owner calls (grant, revoke) and session uses on such an account would do
  nothing, or fail with an undecodable empty answer.

I/O functions take the ``Web3`` first.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address

from smartkeys.deployments import ACCOUNT_ARTIFACT, SIMPLE7702_ADDRESS, account_address
from smartkeys.encoding import parse_delegation
from smartkeys.errors import NotDelegatedError

__all__ = ["DEPLOYMENTS_DIR_ENV", "implementation_name", "known_implementations", "require_smartkeys"]

#: Environment variable naming the directory of ``<chainId>.json`` deployment files (default: ./deployments).
DEPLOYMENTS_DIR_ENV = "SMARTKEYS_DEPLOYMENTS_DIR"


def _deployment_file_address(chain_id: int, deployments_dir: str | os.PathLike[str] | None) -> str | None:
    directory = Path(deployments_dir or os.environ.get(DEPLOYMENTS_DIR_ENV) or "deployments")
    path = directory / f"{int(chain_id)}.json"
    from smartkeys.deploy import DEPLOYMENTS_MAX_BYTES
    from smartkeys.safe_files import FileMissingError, load_file

    try:  # bounded (size, depth, values), never blocking (FIFOs, devices refused): FileInputError names the file
        data = load_file(path, "JSON", kind="deployments file", max_bytes=DEPLOYMENTS_MAX_BYTES, max_depth=8)
    except FileMissingError:
        return None
    try:
        if int(data.get("chain_id", chain_id)) != int(chain_id):
            return None
        entry = data["contracts"]["SmartKeysAccount"]
        return to_checksum_address(entry["address"])
    except (ValueError, KeyError, TypeError, AttributeError):  # no SmartKeysAccount entry of this chain
        return None


def known_implementations(chain_id: int, *, deployments_dir: str | os.PathLike[str] | None = None) -> tuple[str, ...]:
    """The smartkeys account deployments trusted on ``chain_id``: the canonical address first, then the
    ``SmartKeysAccount`` address of ``<deployments_dir>/<chain_id>.json`` (default ``$SMARTKEYS_DEPLOYMENTS_DIR``
    or ``./deployments``) if that file names another one. A file that is there but cannot be read safely (not a
    regular file, over 1 MiB, not JSON, nested deeper than 8 levels) raises
    :class:`~smartkeys.safe_files.FileInputError` naming it and the fix (exit code 2)."""
    out = [account_address()]
    recorded = _deployment_file_address(chain_id, deployments_dir)
    if recorded is not None and recorded not in out:
        out.append(recorded)
    return tuple(out)


def implementation_name(address: str | None) -> str:
    """``"no code"``, ``"smartkeys"`` (canonical), ``"Simple7702Account (eth-infinitism)"`` or the address."""
    if address is None:
        return "no code"
    address = to_checksum_address(address)
    if address == account_address():
        return f"smartkeys ({ACCOUNT_ARTIFACT})"
    if address == SIMPLE7702_ADDRESS:
        return "Simple7702Account (eth-infinitism)"
    return f"an unknown contract at {address}"


def require_smartkeys(
    w3: Any,
    account: str,
    *,
    action: str,
    implementation: str | None = None,
    block: Any = "latest",
) -> str:
    """Return the smartkeys implementation ``account`` delegates to (EIP-7702 designator ``0xef0100||address``).

    ``implementation`` given: the account must delegate to exactly it. Otherwise any of
    :func:`known_implementations` of the chain. Raises :class:`~smartkeys.errors.NotDelegatedError` naming
    ``action`` (e.g. ``"grant a session"``) and what the account runs instead (no code, another
    implementation). ``block`` reads the code at that block.
    """
    account = to_checksum_address(account)
    delegation = parse_delegation(bytes(w3.eth.get_code(account, block)))
    if implementation is not None:
        expected: str = to_checksum_address(implementation)
        if delegation == expected:
            return expected
    else:
        if delegation == account_address():
            return delegation
        known = known_implementations(int(w3.eth.chain_id))
        if delegation in known:
            return delegation
        expected = known[0]
    raise NotDelegatedError(account, delegation, expected, action=action, runs=implementation_name(delegation),
                            at_block=block)
