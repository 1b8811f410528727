#!/usr/bin/env bash
# The test command from README.md: sets everything up on a fresh machine, then runs the suite.
#   - a virtual environment in .venv with smartkeys and its test extras
#   - the pinned Solidity toolchain from package-lock.json (solcjs; used by the artifact check)
#   - the shipped-artifacts check, then the linters (ruff check, mypy; configured in pyproject.toml),
#     then pytest on eth-tester (with the Alto bundler and deploy e2e tests), then the chain tests on anvil,
#     then the Ape project in its own venv (Ape pins web3 7.x), also from a copy of the checkout under a
#     hidden folder
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "== installing node and npm (apt)"
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq nodejs npm; else sudo apt-get update -qq && sudo apt-get install -y -qq nodejs npm; fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv"
  python3 -m venv .venv
fi
echo "== installing smartkeys[test] into .venv"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"

echo "== installing the pinned Solidity toolchain (npm ci)"
npm ci --no-audit --no-fund --loglevel=error

echo "== checking shipped artifacts against a fresh compile of contracts/"
.venv/bin/python -m smartkeys.build --check

echo "== linting: ruff check and mypy (configuration in pyproject.toml)"
.venv/bin/ruff check
.venv/bin/mypy

echo "== running the test suite on the embedded chain (eth-tester)"
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"

echo "== running the chain tests again on a real anvil node (npm @foundry-rs/anvil-linux-amd64)"
.venv/bin/python -m pytest -q -p no:cacheprovider --chain anvil tests/contracts tests/property tests/integration \
  --ignore tests/integration/test_gas_snapshot.py "$@"  # the gas snapshot is defined on eth-tester

echo "== Ape: compile with tools/solc via ape-solidity, ape test (EthTester + anvil), ape run deploy (own venv .venv-ape)"
bash scripts/ape_test.sh

# A clone in ~/.cache/... is a real case, and eth-ape ignores every source under a folder named .cache
# (scripts/ape_test.sh explains): run the Ape tests once more from a copy of this checkout under one.
HIDDEN_PARENT="$(mktemp -d)"
trap 'rm -rf "$HIDDEN_PARENT"' EXIT
HIDDEN="$HIDDEN_PARENT/.cache/smartkeys"
echo "== Ape from a checkout under a hidden folder ($HIDDEN): ape test on EthTester"
mkdir -p "$HIDDEN"
tar -cf - --exclude=./.git --exclude=./.venv --exclude=./.venv-ape --exclude=./node_modules \
  --exclude=./.hypothesis --exclude=./.build . | tar -xf - -C "$HIDDEN"
ln -s "$PWD/node_modules" "$HIDDEN/node_modules"
SMARTKEYS_APE_VENV="$PWD/.venv-ape" bash "$HIDDEN/scripts/ape_test.sh" --quick
