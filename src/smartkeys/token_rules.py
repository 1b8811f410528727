"""What the account knows about token functions, mirrored offline (``contracts/TokenRules.sol``).

A session's token cap is only as good as the account's knowledge of what a call can do to the capped balance
and to third parties' power over it (security.md, "caps are what leaves the account"). These are the same
tables the contract uses, so that the SDK refuses at grant, and :mod:`smartkeys.preflight` refuses at use,
exactly what the chain would:

- :data:`ACCOUNTABLE_SELECTORS`: the only functions a session may call on a token it caps (anything else,
  an old ``increaseApproval``, ``permit``, an operator function, is ``TokenFunctionNotAccountable``);
- :data:`ASSET_MOVING_SELECTORS`: functions of the ERC-20, ERC-721, ERC-1155, ERC-777, ERC-1363, ERC-677,
  ERC-6909 and ERC-4626 standards that move a holder's assets or give someone power over them; a permission for one on a target the
  policy does not cap is ``UncappedAsset`` unless the policy sets ``allow_uncapped_assets`` (default deny);
- :data:`PERMIT2`: never a session target (an account that approved it lets any Permit2 caller pass that
  power on, outside every measurement).

:func:`check_permissions` applies the rules that need no chain. The contract also refuses, at grant, an
any-function permission on a target that answers ``balanceOf`` or says ERC-1155 through ERC-165; only the chain
can tell, so ``Owner.grant`` learns it from the grant's simulation, with the same error.
"""

from __future__ import annotations

from smartkeys import artifacts
from smartkeys.errors import register_contract_errors
from smartkeys.policy_codec import PermissionMode, SessionPolicy, selector_of

__all__ = [
    "ACCOUNTABLE_SELECTORS",
    "ASSET_MOVING_SELECTORS",
    "DECLARED_AMOUNT_OFFSET",
    "PERMIT2",
    "check_permissions",
]

_ERRORS = register_contract_errors(artifacts.load("SmartKeysAccount")["abi"])

#: The canonical Permit2 deployment (the same address on every chain).
PERMIT2 = "0x000000000022D473030F116dDEE9F6B43aC78BA3"

#: ``TokenRules.declaredAmount``: where the amount an ERC-20 call names sits in its calldata.
DECLARED_AMOUNT_OFFSET: dict[bytes, int] = {
    selector_of("transfer(address,uint256)"): 36,
    selector_of("approve(address,uint256)"): 36,
    selector_of("increaseAllowance(address,uint256)"): 36,
    selector_of("transferFrom(address,address,uint256)"): 68,
}

#: ``TokenRules.isAccountable``.
ACCOUNTABLE_SELECTORS: frozenset[bytes] = frozenset(DECLARED_AMOUNT_OFFSET) | {
    selector_of("decreaseAllowance(address,uint256)"),
    selector_of("deposit()"),  # WETH9: adds to the balance (native value is capped as native)
    selector_of("withdraw(uint256)"),  # WETH9: measured decrease
    selector_of("burn(uint256)"),  # OpenZeppelin ERC20Burnable: measured decrease
}

#: ``TokenRules.movesAssets``.
ASSET_MOVING_SELECTORS: frozenset[bytes] = ACCOUNTABLE_SELECTORS | {
    selector_of(signature)
    for signature in (
        "permit(address,address,uint256,uint256,uint8,bytes32,bytes32)",  # ERC-2612
        "increaseApproval(address,uint256)",
        "setApprovalForAll(address,bool)",  # ERC-721, ERC-1155
        "safeTransferFrom(address,address,uint256)",  # ERC-721
        "safeTransferFrom(address,address,uint256,bytes)",  # ERC-721
        "safeTransferFrom(address,address,uint256,uint256,bytes)",  # ERC-1155
        "safeBatchTransferFrom(address,address,uint256[],uint256[],bytes)",  # ERC-1155
        "send(address,uint256,bytes)",  # ERC-777
        "operatorSend(address,address,uint256,bytes,bytes)",  # ERC-777
        "authorizeOperator(address)",  # ERC-777
        "transferAndCall(address,uint256,bytes)",  # ERC-677, ERC-1363
        "transferAndCall(address,uint256)",  # ERC-1363
        "transferFromAndCall(address,address,uint256)",  # ERC-1363
        "transferFromAndCall(address,address,uint256,bytes)",  # ERC-1363
        "approveAndCall(address,uint256)",  # ERC-1363
        "approveAndCall(address,uint256,bytes)",  # ERC-1363
        "transfer(address,uint256,uint256)",  # ERC-6909
        "transferFrom(address,address,uint256,uint256)",  # ERC-6909
        "approve(address,uint256,uint256)",  # ERC-6909
        "setOperator(address,bool)",  # ERC-6909
        "withdraw(uint256,address,address)",  # ERC-4626
        "redeem(uint256,address,address)",  # ERC-4626
    )
}


def check_permissions(policy: SessionPolicy) -> None:
    """Refuse, with the contract's own custom error, what ``grantSession`` refuses about assets offline.

    In the contract's order, permission by permission: Permit2 as a target (``ForbiddenTarget``); on a capped
    token, an empty-calldata permission or an exact function outside :data:`ACCOUNTABLE_SELECTORS`
    (``TokenFunctionNotAccountable``); on any other target, without ``policy.allow_uncapped_assets``, an exact
    function in :data:`ASSET_MOVING_SELECTORS` (``UncappedAsset``); then against each earlier permission, the same
    call twice where either has no argument rules (``DuplicatePermission``) and an any-selector permission on
    the target of one with argument rules (``RulesBypassed(target, selector of the ruled one)``): permissions are
    alternatives, so either would make the rules void.
    """
    capped = {c.token for c in policy.token_caps}
    for i, p in enumerate(policy.permissions):
        if p.target == PERMIT2:
            raise _ERRORS["ForbiddenTarget"](p.target)
        exact = p.mode is PermissionMode.EXACT
        if p.target in capped:
            if p.mode is PermissionMode.EMPTY_CALLDATA or (exact and p.selector not in ACCOUNTABLE_SELECTORS):
                raise _ERRORS["TokenFunctionNotAccountable"](p.target, p.selector)
        elif exact and not policy.allow_uncapped_assets and p.selector in ASSET_MOVING_SELECTORS:
            raise _ERRORS["UncappedAsset"](p.target, p.selector)
        for q in policy.permissions[:i]:
            if q.target != p.target:
                continue
            if q.selector == p.selector and q.mode == p.mode and not (p.rules and q.rules):
                raise _ERRORS["DuplicatePermission"](p.target, p.selector, int(p.mode))
            if p.mode is PermissionMode.ANY_SELECTOR and q.rules:
                raise _ERRORS["RulesBypassed"](p.target, q.selector)
            if q.mode is PermissionMode.ANY_SELECTOR and p.rules:
                raise _ERRORS["RulesBypassed"](p.target, p.selector)
