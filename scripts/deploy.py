"""`ape run deploy --network ethereum:local:foundry` (from the repository root): deploy SmartKeysAccount
(compiled by Ape) and delegate a test account to it with EIP-7702. For real networks use `smartkeys deploy`,
which places the shipped artifacts at their deterministic CREATE2 addresses."""

from ape import accounts, chain, project


def main():
    deployer = accounts.test_accounts[0]
    implementation = deployer.deploy(project.SmartKeysAccount)
    print(f"SmartKeysAccount deployed at {implementation.address} on chain {chain.chain_id}")
    owner = accounts.test_accounts[1]
    owner.set_delegate(implementation)
    code = bytes(chain.provider.get_code(owner.address))
    assert code == bytes.fromhex("ef0100") + bytes.fromhex(implementation.address[2:]), code.hex()
    account = project.SmartKeysAccount.at(owner.address)
    print(f"{owner.address} delegated to it; entryPoint() = {account.entryPoint()}")
