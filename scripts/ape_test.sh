#!/usr/bin/env bash
# Ape integration: compile the contracts with ape-solidity through tools/solc (the solcjs shim), run the
# Ape tests (ape/tests) on ape-test (EthTester) and on ape-foundry's anvil, and `ape run deploy` on anvil.
# Ape pins web3 7.x, so it gets its own virtual environment (.venv-ape) with smartkeys installed editable
# (which also checks that the core library works on web3 7.16 / eth-account 0.13.7).
# Needs `npm ci` done (solcjs, OpenZeppelin, account-abstraction, anvil in node_modules).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
VENV="$ROOT/.venv-ape"

if [ ! -x node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil ] || [ ! -f node_modules/solc/package.json ]; then
  echo "error: node_modules is incomplete; run \`npm ci\` first" >&2
  exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "== creating $VENV"
  python3 -m venv "$VENV"
fi
echo "== installing Ape (eth-ape 0.8.51, ape-foundry 0.8.12, ape-solidity 0.8.6) and smartkeys into $VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q eth-ape==0.8.51 ape-foundry==0.8.12 ape-solidity==0.8.6
"$VENV/bin/python" -m pip install -q -e .
"$VENV/bin/python" -m pip check

# Keep Ape's and py-solc-x's state inside the venv, not in ~/.ape and ~/.solcx.
export APE_DATA_FOLDER="$VENV/ape-data"
export SOLCX_BINARY_PATH="$VENV/solcx"
# py-solc-x looks for "solc-v<version>" there: register the shim as solc 0.8.30 (it finds solcjs next to itself).
mkdir -p "$SOLCX_BINARY_PATH"
ln -sfn "$ROOT/tools/solc" "$SOLCX_BINARY_PATH/solc-v0.8.30"
"$SOLCX_BINARY_PATH/solc-v0.8.30" --version | grep -q "Version: 0.8.30" || { echo "error: tools/solc is not solc 0.8.30" >&2; exit 1; }
# ape-foundry starts `anvil` from PATH.
export PATH="$ROOT/node_modules/@foundry-rs/anvil-linux-amd64/bin:$PATH"

cd ape
# Every step starts from a clean state: with a cached manifest (.build) and dependency sources
# (contracts/.cache, which lands in the repository's contracts/ through the symlink), Ape 0.8.51 fails
# on a later run to find the contracts of contracts/test (MockTarget, ...). The trap leaves nothing behind.
clean() { rm -rf .build contracts/.cache; }
trap clean EXIT
echo "== ape compile (ape-solidity -> tools/solc -> solcjs)"
clean && "$VENV/bin/ape" compile --force
echo "== ape test on ape-test (EthTester)"
clean && "$VENV/bin/ape" test -p no:cacheprovider "$@"
echo "== ape test on ape-foundry (anvil)"
clean && "$VENV/bin/ape" test -p no:cacheprovider --network ethereum:local:foundry "$@"
echo "== ape run deploy on ape-foundry (anvil)"
clean && "$VENV/bin/ape" run deploy --network ethereum:local:foundry
