"""The `vapi-harness` command: one subcommand per verb."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

from harness import __version__
from harness.cli.options import Handler
from mock_vapi.errors import HarnessError

__all__ = ["build_parser", "main"]


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser with every subcommand, or with only the plugin command named `only`.

    A plugin command (`vapi-harness proxy`) runs as a long-lived server: it should not carry the imports of
    `check` (rich, the checks, the openai schemas) in its memory.
    """
    parser = argparse.ArgumentParser(
        prog="vapi-harness",
        description="Check, time and load-test a custom LLM server the way Vapi calls it.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, dest="log_verbosity", help="more logging on stderr"
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    plugins = sorted(entry_points(group="vapi_harness.commands"), key=lambda e: e.name)
    if only is None:
        from harness.cli import check, compare, explore, fake_llm, load, mock_vapi, report

        check.add_parser(subparsers)
        compare.add_parser(subparsers)
        explore.add_parser(subparsers)
        fake_llm.add_parser(subparsers)
        load.add_parser(subparsers)
        mock_vapi.add_parser(subparsers)
        report.add_parser(subparsers)
    for entry_point in plugins:
        if only is None or entry_point.name == only:
            entry_point.load()(subparsers)
    return parser


def _plugin_named(argv: Sequence[str]) -> str | None:
    first = argv[0] if argv else None
    names = {e.name for e in entry_points(group="vapi_harness.commands")}
    return first if first in names else None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 pass, 1 fail, 2 bad input)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(only=_plugin_named(args_list))
    args = parser.parse_args(args_list)
    level = logging.WARNING - 10 * min(args.log_verbosity, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    handler: Handler = args.handler
    try:
        code = handler(args)
    except HarnessError as exc:
        sys.stderr.write(f"vapi-harness: error: {exc}\n")
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
