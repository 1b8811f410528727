"""``python -m smartkeys.cli``."""

import sys

from smartkeys.cli import main

sys.exit(main())
