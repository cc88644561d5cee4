"""The suites of scenario files `check --suite` and the pytest plugin take: a file, a folder, or the name of a
suite shipped with vapi-harness (package data `harness.suites`, the repository's `scenarios/` folder).
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from mock_vapi.errors import did_you_mean
from mock_vapi.scenarios.loader import ScenarioError, load_file
from mock_vapi.scenarios.model import Scenario

__all__ = ["load_suites", "resolve_suite", "shipped_suites"]


def _shipped_root() -> Path | None:
    try:
        root = Path(str(resources.files("harness.suites")))
    except ModuleNotFoundError:
        return None
    return root if root.is_dir() else None


def shipped_suites() -> list[str]:
    """Names of the suites that come with vapi-harness (`conversations`, `resilience`, ...)."""
    root = _shipped_root()
    if root is None:
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.glob("*.yaml")))


def resolve_suite(name_or_path: str) -> list[Path]:
    """The scenario files of a suite: a file, a folder (recursively), or a shipped suite's name."""
    path = Path(name_or_path)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted([*path.rglob("*.yaml"), *path.rglob("*.yml")])
        if not files:
            raise ScenarioError(f"{path}: no .yaml scenario files in this folder")
        return files
    root = _shipped_root()
    if root is not None and (root / name_or_path).is_dir():
        return resolve_suite(str(root / name_or_path))
    names = shipped_suites()
    hint = did_you_mean(name_or_path, names) or (f" Shipped suites: {', '.join(names)}." if names else "")
    raise ScenarioError(f"--suite {name_or_path!r}: no such file, folder or shipped suite.{hint}")


def load_suites(names: Sequence[str]) -> list[Scenario]:
    """Every scenario of the given suites, in order; names must be unique across them."""
    scenarios: list[Scenario] = []
    seen: dict[str, str] = {}
    for name in names:
        for path in resolve_suite(name):
            scenario = load_file(path)
            if scenario.name in seen:
                raise ScenarioError(
                    f"{path}: name: {scenario.name!r} is already used by {seen[scenario.name]}; names must be unique"
                )
            seen[scenario.name] = str(path)
            scenarios.append(scenario)
    return scenarios
