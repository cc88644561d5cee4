"""Command-line options that also read `VAPI_HARNESS_<NAME>` environment variables (flag > env > default)."""

from __future__ import annotations

import argparse
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

from mock_vapi.errors import ConfigError, did_you_mean

__all__ = [
    "ENDPOINT_OPTIONS",
    "MAX_RUN_S_OPTION",
    "REPORT_FILE_OPTIONS",
    "Handler",
    "Option",
    "Subparsers",
    "add_options",
    "name_value",
    "non_negative_float",
    "number",
    "parse_bool",
    "port",
    "positive_float",
    "positive_int",
    "resolve",
]

# What `build_parser` hands each command's `add_parser`; typeshed's generic, not subscriptable at run time.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
# A command's `run`, set with `parser.set_defaults(handler=run)`: the parsed arguments in, the exit code out.
Handler: TypeAlias = Callable[[argparse.Namespace], int]


def parse_bool(text: str) -> bool:
    """Read a boolean from an environment variable."""
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{text!r} is not a boolean (use true or false)")


def number(text: str, *, minimum: float = 0.0, exclusive: bool = False, whole: bool = False) -> float:
    """Parse a number from a flag or variable, with a message that says what was wrong."""
    try:
        value = int(text) if whole else float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a {'whole ' if whole else ''}number") from None
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    if value < minimum or (exclusive and value == minimum):
        bound = "greater than" if exclusive else "at least"
        raise ValueError(f"{text!r} must be {bound} {minimum:g}")
    return value


def positive_float(text: str) -> float:
    """A number > 0."""
    return number(text, exclusive=True)


def non_negative_float(text: str) -> float:
    """A number >= 0."""
    return number(text)


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    return int(number(text, minimum=1, whole=True))


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def name_value(text: str) -> tuple[str, str]:
    """`NAME=VALUE`: a name as a template names it (letters, digits, `_`, `-`; not starting with a digit), then
    any value, `=` and spaces included (an empty one too)."""
    name, sep, value = text.partition("=")
    if not sep or not _NAME.fullmatch(name.strip()):
        raise ValueError(f"{text!r} is not NAME=VALUE (a name is letters, digits, _ or -, e.g. customerName=Ada)")
    return name.strip(), value


def port(text: str) -> int:
    """A TCP port number, 0 to 65535 (0: any free port)."""
    value = int(number(text, whole=True))
    if value > 65535:
        raise ValueError(f"{text!r} is not a port number")
    return value


@dataclass(frozen=True)
class Option:
    """One option: its flag, how to read it, its default and help."""

    flag: str
    help: str
    default: Any = None
    type: Callable[[str], object] = str
    flag_only: bool = False  # a switch without a value
    repeatable: bool = False
    choices: Sequence[str] | None = None
    metavar: str | None = None
    short: str | None = None  # a one-letter alias, e.g. "-v"

    @property
    def dest(self) -> str:
        """The attribute name: `--timeout-s` -> `timeout_s`."""
        return self.flag.lstrip("-").replace("-", "_")

    def env_name(self, prefix: str) -> str:
        """The environment variable, e.g. `VAPI_HARNESS_TIMEOUT_S`."""
        return f"{prefix}{self.dest.upper()}"


# Options that `check` and `explore` declare alike: the endpoint, the bound on a run and the report files.
ENDPOINT_OPTIONS = (
    Option(
        "--url", "Base URL of the custom LLM, as set in model.url; without it, the built-in endpoint", metavar="URL"
    ),
    Option(
        "--api-key", "Key Vapi sends as 'Authorization: Bearer KEY' (prefer the environment variable)", metavar="KEY"
    ),
)
MAX_RUN_S_OPTION = Option(
    "--max-run-s", "Hard bound on the whole run; reports are still written", default=300.0, type=positive_float
)
REPORT_FILE_OPTIONS = (
    Option("--json", "Also write the JSON report here", type=Path, metavar="PATH"),
    Option("--junit", "Also write the JUnit XML report here", type=Path, metavar="PATH"),
    Option("--markdown", "Also write a Markdown summary here (e.g. $GITHUB_STEP_SUMMARY)", type=Path, metavar="PATH"),
)


def add_options(parser: argparse.ArgumentParser, options: Sequence[Option], env_prefix: str) -> None:
    """Declare `options` on `parser`; defaults are applied later by `resolve`."""
    for option in options:
        env_help = f"[env {option.env_name(env_prefix)}]"
        default = f" (default: {option.default})" if option.default not in (None, False, []) else ""
        help_text = f"{option.help}{default} {env_help}".replace("%", "%%")  # argparse formats help with %
        flags = [option.flag] if option.short is None else [option.short, option.flag]
        if option.flag_only:
            parser.add_argument(*flags, action="store_const", const=True, default=None, help=help_text)
        elif option.repeatable:
            parser.add_argument(*flags, action="append", default=None, help=help_text, metavar=option.metavar)
        else:
            # Choices are checked by `resolve` (any case, with a suggestion), not by argparse's usage dump.
            metavar = option.metavar or ("{" + ",".join(option.choices) + "}" if option.choices else None)
            parser.add_argument(*flags, default=None, help=help_text, metavar=metavar)


def _choice(text: str, choices: Sequence[str]) -> str:
    """The choice `text` names, in any case; else a message with the choices and the closest one."""
    for choice in choices:
        if choice.lower() == text.strip().lower():
            return choice
    raise ValueError(f"{text!r} is not one of {', '.join(choices)}.{did_you_mean(text, choices)}".rstrip("."))


def resolve(
    args: argparse.Namespace, options: Sequence[Option], env_prefix: str, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Final values: the flag if given, else the environment variable, else the default; typed and validated."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for option in options:
        raw = getattr(args, option.dest)
        source = option.flag
        if raw is None and option.env_name(env_prefix) in environ:
            source = option.env_name(env_prefix)
            text = environ[option.env_name(env_prefix)]
            if option.flag_only:
                raw = text
            elif option.repeatable:
                raw = [line for line in text.splitlines() if line.strip()]
            else:
                raw = text
        if raw is None:
            values[option.dest] = list(option.default or []) if option.repeatable else option.default
            continue
        try:
            if option.flag_only:
                values[option.dest] = raw if isinstance(raw, bool) else parse_bool(raw)
            elif option.repeatable:
                values[option.dest] = [option.type(item) for item in raw]
            else:
                if option.choices is not None:
                    raw = _choice(raw, option.choices)
                values[option.dest] = option.type(raw)
        except ValueError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    return values
