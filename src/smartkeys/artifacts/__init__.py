"""Compiled contract artifacts shipped with smartkeys, so users need no compiler.

Layout (all JSON, one file per contract):

- ``<Name>.json``          -- contracts built from ``contracts/`` by ``python -m smartkeys.build``
- ``test/<Name>.json``     -- test-only mocks built from ``contracts/test/``
- ``vendor/<Name>.json``   -- verbatim copies of ``@account-abstraction/contracts`` artifacts
  (EntryPoint v0.8, Simple7702Account); EntryPoint must be deployed from this exact creation
  bytecode to land at its canonical address.

Every artifact has at least ``abi``, ``bytecode`` and ``deployedBytecode`` (0x-prefixed hex).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

ARTIFACTS_DIR = Path(__file__).resolve().parent

__all__ = ["ARTIFACTS_DIR", "ArtifactNotFoundError", "load", "names"]


class ArtifactNotFoundError(LookupError):
    """No shipped artifact has that name."""


@lru_cache(maxsize=None)
def load(name: str) -> dict[str, Any]:
    """Return the artifact called ``name`` (e.g. ``"SmartKeysAccount"``, ``"vendor/EntryPoint"``).

    A bare name is looked up in the top folder, then ``vendor/`` and ``test/``.
    """
    candidates = [name] if "/" in name else [name, f"vendor/{name}", f"test/{name}"]
    for candidate in candidates:
        path = ARTIFACTS_DIR / f"{candidate}.json"
        if path.is_file():
            return json.loads(path.read_text())
    available = ", ".join(names()) or "none"
    raise ArtifactNotFoundError(
        f"no artifact named {name!r}; available: {available}. "
        "If you edited contracts/, rebuild with `python -m smartkeys.build`."
    )


def names() -> list[str]:
    """All shipped artifact names, sorted (``vendor/EntryPoint``, ``SmartKeysAccount``, ...)."""
    return sorted(
        str(p.relative_to(ARTIFACTS_DIR).with_suffix(""))
        for p in ARTIFACTS_DIR.rglob("*.json")
    )
