"""A run as `compare` sees it: its kind, its raw latency samples, and the verdict of each check, scenario or SLO.

One loader per report kind, chosen by the report's own identifying fields: `check`'s report.json (its
`schema_version` and `tool.name`), and a load test's `load_vapi.json` (its `kind`). Anything else, a report too
new for this version, or one that keeps no raw samples, is named in one line (`ConfigError`, exit 2).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from harness.load.stats import LOAD_SUMMARY_KIND
from harness.metrics import METRICS
from harness.reporting import SCHEMA_VERSION, TOOL_NAME, validate_document
from mock_vapi.errors import ConfigError

__all__ = [
    "COMPARED_METRICS",
    "FIRST_SAMPLES_VERSION",
    "ItemKind",
    "RunKind",
    "RunView",
    "load_run",
    "run_from_document",
]

# Latencies only: a count of chunks or a rate of characters does not regress by rising.
COMPARED_METRICS = tuple(name for name, unit in METRICS.items() if unit == "ms")
FIRST_SAMPLES_VERSION = 2  # the first report schema whose latency keeps its raw samples
_LOAD_KEYS = ("turns", "errors", "error_rate", "metrics")


class RunKind(StrEnum):
    """What produced a report; only runs of one kind compare."""

    CHECK = "check"
    SUITE = "check --suite"
    LOAD = "load"
    EXPLORE = "explore"


class ItemKind(StrEnum):
    """What passes or fails in a run, besides its latencies."""

    CHECK = "check"
    SCENARIO = "scenario"
    SLO = "slo"
    ERROR = "failed turns"  # a load run's error class: failed when any turn failed with it
    FAILURE = "explore failure"  # a distinct failure an exploration found (its check and normalised title)


@dataclass(frozen=True)
class RunView:
    """The figures of one run that a comparison reads."""

    kind: RunKind
    source: str  # the file it was read from, as given
    run_id: str
    version: str  # of vapi-harness that wrote it
    started_at: str
    samples: Mapping[str, list[float]]  # metric -> sorted raw samples
    outcomes: Mapping[tuple[ItemKind, str], str]  # -> "passed", "failed" or "not_judged"
    setup: str = ""  # what was sent (probes, suites, profile): runs set up differently get a note
    interrupted: bool = False
    notes: tuple[str, ...] = field(default=())

    def status(self, key: tuple[ItemKind, str]) -> str | None:
        """The item's verdict; a load run's error class it does not name had no failed turn, and an exploration
        did not find a failure it does not name (both passed)."""
        found = self.outcomes.get(key)
        if found is None and key[0] in (ItemKind.ERROR, ItemKind.FAILURE):
            return "passed"
        return found

    def document(self) -> dict[str, Any]:
        """What a comparison report says of this run."""
        return {
            "source": self.source,
            "kind": self.kind.value,
            "run_id": self.run_id,
            "version": self.version,
            "started_at": self.started_at,
            "interrupted": self.interrupted,
            "samples": {name: len(values) for name, values in self.samples.items()},
        }


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not JSON (not UTF-8 text)") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{path}: not JSON: {exc}") from None


def load_run(path: Path) -> RunView:
    """Read a report file of any kind compare knows."""
    return run_from_document(_read(path), str(path), path)


def run_from_document(document: Any, source: str, path: Path | None = None) -> RunView:
    """The run of a parsed report; `path` finds a load run's samples file beside it."""
    if not isinstance(document, dict):
        raise ConfigError(f"{source}: not a vapi-harness report (a JSON object is expected)")
    if document.get("command") == "explore":
        return _from_explore(document, source)
    if "schema_version" in document:
        return _from_check(document, source)
    if document.get("kind") == LOAD_SUMMARY_KIND:
        return _from_load(document, source, path)
    if all(key in document for key in _LOAD_KEYS):
        raise ConfigError(
            f"{source}: a load summary from before load runs kept their raw samples; run the load "
            "test again with this vapi-harness"
        )
    raise ConfigError(f"{source}: not a vapi-harness report (check's report.json or load's load_vapi.json)")


def _versioned(document: dict[str, Any], source: str, what: str, kind: str, newest: int) -> tuple[int, str]:
    """A versioned document's schema version and the vapi-harness version that wrote it; one line when it is not
    `what` ("a vapi-harness report") or its `kind` of schema is newer than this version reads."""
    version = document.get("schema_version")
    tool = document.get("tool")
    if not isinstance(tool, dict) or tool.get("name") != TOOL_NAME:
        raise ConfigError(f"{source}: not {what} (its tool is not {TOOL_NAME})")
    written_by = str(tool.get("version", "?"))
    if not isinstance(version, int) or isinstance(version, bool):
        raise ConfigError(f"{source}: not {what} (schema_version {version!r} is not a number)")
    if version > newest:
        raise ConfigError(
            f"{source}: {kind} schema {version} (vapi-harness {written_by}) is newer than this "
            f"vapi-harness reads ({newest}); upgrade vapi-harness"
        )
    return version, written_by


def _from_check(document: dict[str, Any], source: str) -> RunView:
    version, written_by = _versioned(document, source, "a vapi-harness report", "report", SCHEMA_VERSION)
    if version < FIRST_SAMPLES_VERSION:
        raise ConfigError(
            f"{source}: report schema {version} (vapi-harness {written_by}) keeps no raw samples; "
            f"compare needs schema {FIRST_SAMPLES_VERSION} or later: run it again"
        )
    problems = validate_document(document)
    if problems:
        raise ConfigError(f"{source}: not a valid vapi-harness report (schema {version}): {problems[0]}")
    latency = document["latency"]
    samples = {name: sorted(latency[name]["samples"]) for name in COMPARED_METRICS if name in latency}
    outcomes: dict[tuple[ItemKind, str], str] = {(ItemKind.CHECK, c["id"]): c["status"] for c in document["checks"]}
    for scenario in document.get("scenarios") or []:
        label = scenario["name"] + (f" [call {scenario['copy'] + 1}]" if scenario["copy"] else "")
        outcomes[(ItemKind.SCENARIO, label)] = scenario["verdict"]
    settings = document["settings"]
    suites = settings.get("suites") or []
    setup = f"suites {', '.join(suites)}" if suites else f"probes {', '.join(settings['probes'])}"
    return RunView(
        kind=RunKind.SUITE if suites else RunKind.CHECK,
        source=source,
        run_id=document["run_id"],
        version=written_by,
        started_at=document["started_at"],
        samples=samples,
        outcomes=outcomes,
        setup=setup + f"; repeat {settings['repeat']}",
        interrupted=bool(document["interrupted"] or document["stopped_early"]),
    )


def _load_samples(document: dict[str, Any], source: str, path: Path | None) -> dict[str, list[float]]:
    raw = document.get("samples")
    where = source
    if raw is None and path is not None:
        beside = path.with_name(path.stem + "_samples.json")
        if beside.exists():
            raw, where = _read(beside), str(beside)
    if raw is None:
        raise ConfigError(
            f"{source}: this load summary keeps no raw samples (written before load runs kept "
            "them); run the load test again with this vapi-harness"
        )
    if not isinstance(raw, dict) or not all(
        isinstance(values, list) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        for values in raw.values()
    ):
        raise ConfigError(f"{where}: the raw samples are not metric -> list of numbers")
    return {name: sorted(float(v) for v in raw[name]) for name in COMPARED_METRICS if raw.get(name)}


def _from_load(document: dict[str, Any], source: str, path: Path | None) -> RunView:
    try:
        samples = _load_samples(document, source, path)
        outcomes: dict[tuple[ItemKind, str], str] = {}
        for slo in document.get("slos") or []:
            met = slo["met"]
            outcomes[(ItemKind.SLO, str(slo["name"]))] = "not_judged" if met is None else "passed" if met else "failed"
        for name, count in (document.get("errors") or {}).items():
            if int(count) > 0:
                outcomes[(ItemKind.ERROR, str(name))] = "failed"
        setup = f"profile {document.get('profile')}, {document.get('users')} callers"
        return RunView(
            kind=RunKind.LOAD,
            source=source,
            run_id=f"{document.get('started_at', '?')} test {document.get('test', 1)}",
            version=str(document.get("version", "?")),
            started_at=str(document.get("started_at", "")),
            samples=samples,
            outcomes=outcomes,
            setup=setup,
            interrupted=bool(document.get("interrupted")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: a load summary this version cannot read: {exc!r}") from None


def _from_explore(document: dict[str, Any], source: str) -> RunView:
    """An exploration keeps no latency samples: what compares is the distinct failures it found."""
    from harness.explore.reports import EXPLORE_SCHEMA_VERSION

    _, written_by = _versioned(document, source, "an explore report", "explore report", EXPLORE_SCHEMA_VERSION)
    try:
        outcomes = {(ItemKind.FAILURE, str(f["key"])): "failed" for f in document["failures"]}
        settings = document.get("settings") or {}
        return RunView(
            kind=RunKind.EXPLORE,
            source=source,
            run_id=str(document["run_id"]),
            version=written_by,
            started_at=str(document.get("started_at", "")),
            samples={},
            outcomes=outcomes,
            setup=f"seed {settings.get('seed')}, {settings.get('max_examples')} examples",
            interrupted=bool(document.get("interrupted") or document.get("stopped_early")),
        )
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"{source}: an explore report this version cannot read: {exc!r}") from None
