"""`notellm2 models`: the model registry by hand (docs/OPERATIONS.md).

    notellm2 models status   --models-root DIR [--json]
    notellm2 models rollback --models-root DIR
    notellm2 models withdraw --models-root DIR --version V
    notellm2 models prune    --models-root DIR --keep N

`status` shows the serving version, the one rolling out and how many days of its window it
has embedded, the previous ones and the withdrawn ones. `rollback` serves the previous
version again at once (its rows are still in the tables; the next daily run embeds only the
days that version never saw) and withdraws the current one, so that it is not adopted again
from `current`. `withdraw` stops a rollout. `prune` deletes the checkpoints of all but the
serving, pending and N-1 previous versions. Exit 2 with a one-line reason on refusal.
"""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    for name, help_text in (("status", "what serves, what rolls out, how far it got"),
                            ("rollback", "serve the previous version again"),
                            ("withdraw", "stop rolling out a version, never adopt it again"),
                            ("prune", "delete old versions' checkpoints")):
        action = actions.add_parser(name, help=help_text)
        action.add_argument("--models-root", required=True, metavar="DIR")
        if name == "status":
            action.add_argument("--json", action="store_true", help="one JSON object")
        if name == "withdraw":
            action.add_argument("--version", required=True)
        if name == "prune":
            action.add_argument("--keep", type=int, required=True,
                                help="serving + previous versions to keep (>= 1)")


def run(args: argparse.Namespace) -> int:
    from notellm2_udf.registry import versions as registry

    try:
        if args.action == "status":
            print(_status_text(registry.status(args.models_root), args.json))
        elif args.action == "rollback":
            withdrawn, serving = registry.rollback(args.models_root)
            print(f"models: {serving.version} serves again ({serving.dir}); "
                  f"{withdrawn.version} withdrawn")
        elif args.action == "withdraw":
            registry.withdraw(args.models_root, args.version)
            print(f"models: {args.version} withdrawn")
        else:
            removed = registry.prune(args.models_root, args.keep)
            print(f"models: pruned {removed or 'nothing'}")
    except registry.RegistryError as err:
        print(f"models: {err}", file=sys.stderr)
        return 2
    return 0


def _status_text(status: dict, as_json: bool) -> str:
    if as_json:
        return json.dumps(status, sort_keys=True)
    serving, pending, previous = status["serving"], status["pending"], status["previous"]
    lines = [f"serving:   {_describe(serving, 'since')}"]
    if pending:
        window = pending.get("window") or []
        span = f" of [{window[0]}, {window[-1]}]" if window else ""
        lines.append(f"pending:   {_describe(pending, 'adopted_at')}, embedded "
                     f"{status['progress'] or '0 days'}{span}")
    else:
        lines.append("pending:   none")
    lines.append(f"previous:  {_describe(previous, 'since')}")
    lines.append(f"withdrawn: {', '.join(status['withdrawn']) or 'none'}")
    lines.append(f"on disk:   {', '.join(status['versions_on_disk']) or 'none'}")
    return "\n".join(lines)


def _describe(entry: dict | None, when: str) -> str:
    if not entry:
        return "none"
    return f"{entry['version']} ({when} {entry.get(when)}, {entry['dir']})"
