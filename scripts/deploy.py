#!/usr/bin/env python3
"""Deploy EntryPoint v0.8 (where missing) and SmartKeysAccount to a chain. See ``--help``.

    SMARTKEYS_DEPLOYER_KEY=0x… python scripts/deploy.py --rpc-url http://127.0.0.1:8545 --chain-id 31337
    python scripts/deploy.py --rpc-url $RPC --chain-id 8453 --keystore deployer.json --dry-run

The logic lives in :mod:`smartkeys.deploy`.
"""

import sys

from smartkeys.deploy import main

if __name__ == "__main__":
    sys.exit(main())
