"""``python -m smartkeys``: the same as the ``smartkeys`` command."""

from smartkeys.cli import main

raise SystemExit(main())
