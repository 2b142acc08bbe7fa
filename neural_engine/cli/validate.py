"""``neural-engine validate PACK``: check a scenario pack without playing it.

Exit 0 and a one-line summary when the pack is valid; otherwise exit 1 with one line
per problem (file, line, key, what is wrong), through the CLI edge's usual path.
"""

from __future__ import annotations

import argparse

from neural_engine.packs import load_pack


def add_parser(sub) -> None:
    p = sub.add_parser("validate", help="check a scenario pack",
                       description="Check a scenario pack (its folder or pack.toml): keys, "
                                   "types, ranges, actions, key names, files and paths. "
                                   "Exits 1 with one line per problem.")
    p.add_argument("pack", metavar="PACK", help="the pack's folder or its pack.toml")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    pack = load_pack(args.pack)
    print(f"ok: {pack.summary()}")
    return 0
