"""smartkeys through Ape: compile with the project's solc shim, delegate an EOA, grant a session, use it,
and be refused outside its scope. Runs on ape-test (EthTester) and on ape-foundry's anvil."""

import ape
from smartkeys.policy_codec import Permission, SessionPolicy

DELEGATION_PREFIX = bytes.fromhex("ef0100")


def _policy(agent, target, now):
    return SessionPolicy(
        key=agent.address, valid_after=0, valid_until=now + 86_400, max_uses=5,
        permissions=(Permission(target.address, "ping(uint256)"),),
    )


def test_ape_compiles_smartkeys_account_with_the_shim(project):
    ctype = project.SmartKeysAccount.contract_type
    selectors = {abi.name for abi in ctype.abi if getattr(abi, "name", None)}
    assert {"grantSession", "executeAsSession", "revokeSession", "validateUserOp"} <= selectors
    assert len(ctype.deployment_bytecode.bytecode) > 1000


def test_set_delegate_gives_the_eoa_the_delegation_designator(chain, owner, implementation, delegated):
    code = bytes(chain.provider.get_code(owner.address))
    assert code == DELEGATION_PREFIX + bytes.fromhex(implementation.address[2:])
    assert delegated.entryPoint() == "0x4337084D9E255Ff0702461CF8895CE9E3b5Ff108"


def test_granted_session_key_calls_allowed_function_and_is_refused_elsewhere(chain, delegated, owner, agent, target):
    policy = _policy(agent, target, chain.pending_timestamp)
    encoded = policy.encode()
    delegated.grantSession(encoded, sender=owner)

    ping = target.ping.encode_input(7)
    receipt = delegated.executeAsSession(encoded, [(target.address, 0, ping)], sender=agent)
    assert not receipt.failed

    other = target.other.encode_input()
    with ape.reverts():  # CallNotAllowed(target, other.selector)
        delegated.executeAsSession(encoded, [(target.address, 0, other)], sender=agent)

    delegated.revokeSession(policy.session_id, sender=owner)
    with ape.reverts():  # SessionNotActive
        delegated.executeAsSession(encoded, [(target.address, 0, ping)], sender=agent)


def test_outsider_cannot_grant_a_session(chain, delegated, outsider, agent, target):
    policy = _policy(agent, target, chain.pending_timestamp)
    with ape.reverts():
        delegated.grantSession(policy.encode(), sender=outsider)
