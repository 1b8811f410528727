"""``smartkeys policy new --preset NAME``: write a commented policy file to edit (see :mod:`smartkeys.policy_presets`)."""

from __future__ import annotations

import argparse

from smartkeys.cli._context import EXIT_OK, Context


def preset_help() -> str:
    """The presets, one per line, for ``--help``."""
    from smartkeys.policy_presets import PRESETS

    width = max(len(n) for n in PRESETS)
    return "presets:\n" + "\n".join(f"  {name:<{width}}  {summary}" for name, (summary, _) in PRESETS.items())


def add_policy_command(commands: argparse._SubParsersAction, common, sub_epilog: str) -> None:
    """``smartkeys policy new``: ``common(parser)`` adds the global options (as every command has them)."""
    from smartkeys.policy_presets import PRESETS

    policy = commands.add_parser("policy", help="write a policy file to edit, from a preset (" + ", ".join(PRESETS) + ")",
                                 description="Policy files in human units (TOML, JSON or YAML): what a session key "
                                             "may do. `policy new` starts one from a preset.",
                                 epilog=preset_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = policy.add_subparsers(dest="policy_command", metavar="ACTION", parser_class=type(policy), required=True)
    new = actions.add_parser(
        "new", help="write a commented policy file from a preset",
        description="Write a commented policy file (TOML) from a preset. Fill in every \"<FILL IN: ...>\" it "
                    "lists, check it with `smartkeys grant --policy FILE --dry-run`, then grant it. An existing "
                    "file is not replaced unless --force.",
        epilog=preset_help() + "\n\n" + sub_epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    common(new)
    new.set_defaults(func=cmd_policy_new)
    new.add_argument("--preset", required=True, choices=list(PRESETS), metavar="PRESET",
                     help="one of: " + ", ".join(PRESETS) + " (see below)")
    new.add_argument("--out", metavar="FILE", default="policy.toml",
                     help="the .toml file to write (default policy.toml; '-' prints it on stdout)")
    new.add_argument("--force", action="store_true", help="replace FILE if it exists")


def cmd_policy_new(ctx: Context):
    from smartkeys.policy_presets import placeholders, preset_text, write_preset
    from smartkeys.safe_files import tomllib

    name = ctx.args.preset
    if ctx.args.out == "-":
        text = preset_text(name)
        if ctx.ui.json_mode:
            return EXIT_OK, {"preset": name, "path": None, "text": text,
                             "placeholders": placeholders(tomllib.loads(text))}
        ctx.ui.out.write(text)
        return EXIT_OK, None
    path = write_preset(name, ctx.path(ctx.args.out), force=ctx.args.force)
    todo = placeholders(tomllib.loads(path.read_text(encoding="utf-8")))
    ctx.ui.print(f"wrote the {name} preset to {path}")
    ctx.ui.print("fill in: " + ", ".join(todo))
    ctx.ui.print(f"then check it: smartkeys grant --policy {ctx.args.out} --dry-run")
    return EXIT_OK, {"preset": name, "path": str(path), "placeholders": todo}

