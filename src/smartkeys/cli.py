"""The ``smartkeys`` command."""

from __future__ import annotations

import argparse
import sys

from smartkeys import __version__

__all__ = ["main"]


def _cmd_demo(args: argparse.Namespace) -> int:
    from smartkeys.demo import run_demo

    return run_demo(sys.stdout, color=sys.stdout.isatty() and not args.no_color)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smartkeys",
        description="Scoped, expiring, revocable on-chain keys for AI agents (EIP-7702 + ERC-4337).",
    )
    parser.add_argument("--version", action="version", version=f"smartkeys {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="run the whole story on an embedded chain (no node, no network)",
        description="Delegate an EOA, act as its owner, grant an agent a scoped session key, watch the "
        "key work within its limits and be refused beyond them, then revoke it. Runs in-process.",
    )
    demo.add_argument("--no-color", action="store_true", help="plain output")
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
