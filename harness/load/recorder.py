"""Each test of a Locust process (standalone or master): its clock, the callers active over time, its reports
when it ends, and a clean stop on SIGINT.

Locust fires `test_start` and `test_stop` for every test, the web UI's too. A test's reports are written when it
stops, and again when Locust quits if worker reports arrived after the stop. Headless, they go to the report
prefix (`reports/<run-id>/load_vapi.json`); with the web UI, each test has its folder (`test-1/`, `test-2/`,
...). A test still running when the process is told to stop (SIGINT: Ctrl-C, or `vapi-harness load` passing on
the signal it got, or that command's process gone) is stopped as Locust stops one, its reports say
`interrupted`, and its SLOs are not judged.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gevent
from locust.env import Environment
from locust.runners import STATE_INIT, STATE_RUNNING, STATE_SPAWNING, MasterRunner

from harness.load.slo import Slo, evaluate, parse_slo_lines, slo_rows
from harness.load.stats import LOAD_SUMMARY_KIND, LoadStats, timeline

__all__ = ["TestRecorder", "html_path_of_test", "write_summary"]

log = logging.getLogger(__name__)
_USERS_EVERY_S = 0.5
_CSV_COLUMNS = ("n", "min", "mean", "p50", "p90", "p95", "p99", "max")


def html_path_of_test(path: Path, test: int, per_test: bool) -> Path:
    """Where test `test`'s HTML page goes: `path` itself, or numbered (`load-2.html`) when each test has its own."""
    return path.with_name(f"{path.stem}-{test}{path.suffix}") if per_test else path


def _write_text(path: Path, text: str) -> None:
    """Replace `path` whole: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_summary(summary: dict[str, Any], prefix: Path) -> tuple[Path, Path]:
    """`<prefix>_vapi.json` (the summary) and `<prefix>_vapi.csv` (one row per metric), beside Locust's CSVs."""
    json_path = prefix.with_name(prefix.name + "_vapi.json")
    csv_path = prefix.with_name(prefix.name + "_vapi.csv")
    _write_text(json_path, json.dumps(summary, indent=2) + "\n")
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["metric", *_CSV_COLUMNS])
        for name, row in summary["metrics"].items():
            writer.writerow([name, *(round(row[c], 3) if c != "n" else row[c] for c in _CSV_COLUMNS)])
        writer.writerow(["turns", summary["turns"], *([""] * (len(_CSV_COLUMNS) - 1))])
        for error, count in sorted(summary["errors"].items()):
            writer.writerow([f"error:{error}", count, *([""] * (len(_CSV_COLUMNS) - 1))])
    return json_path, csv_path


class TestRecorder:
    """Listens to one Locust environment's tests; `install` once, from the `init` event."""

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self, environment: Environment, stats: LoadStats, prefix: Path | None) -> None:
        self.environment = environment
        self.stats = stats
        self.prefix = prefix
        self.per_test = environment.web_ui is not None  # the web UI runs one test after another
        self.slos: list[Slo] = parse_slo_lines(os.environ.get("VAPI_HARNESS_LOAD_SLO"))
        html = os.environ.get("VAPI_HARNESS_LOAD_HTML")
        self.html = Path(html) if html else None
        self.keep_samples = bool(os.environ.get("VAPI_HARNESS_LOAD_SAMPLES")) or self.html is not None
        self.api_key = os.environ.get("VAPI_HARNESS_API_KEY") or None
        self.interrupted = False
        self.test = 0  # tests started so far
        self.running = False
        self.started_wall = self.started = self.stopped = 0.0
        self.ended = ""
        self.users: list[tuple[float, int]] = []
        self._sampler: Any = None
        self._written: tuple[int, int, int, int] | None = None  # what the last written reports counted

    def install(self) -> None:
        """Listen to the test events and take over SIGINT (Ctrl-C) from Locust's KeyboardInterrupt."""
        events = self.environment.events
        events.test_start.add_listener(self._on_test_start)
        events.spawning_complete.add_listener(self._on_spawned)
        events.test_stopping.add_listener(self._on_test_stopping)
        events.test_stop.add_listener(self._on_test_stop)
        events.reset_stats.add_listener(self.stats.reset)
        events.quitting.add_listener(self._on_quitting)
        gevent.signal_handler(signal.SIGINT, self.interrupt)
        parent = os.environ.get("VAPI_HARNESS_LOAD_PARENT_PID")
        if parent:
            gevent.spawn(self._watch_parent, int(parent))

    def _watch_parent(self, pid: int) -> None:
        """`vapi-harness load` keeps Locust out of the terminal's signals; if it dies, this process stops too."""
        while os.getppid() == pid:
            gevent.sleep(1.0)
        log.warning("vapi-harness load is gone")
        self.interrupt()

    # -- the test's life

    def _on_test_start(self, **_: Any) -> None:
        self.stats.reset()
        self.test += 1
        self.running, self.ended, self._written = True, "", None
        self.started_wall, self.started = time.time(), time.monotonic()
        self.users = [(self.started_wall, self._user_count())]
        self._sampler = gevent.spawn(self._sample_users)

    def _user_count(self) -> int:
        runner = self.environment.runner
        return int(runner.user_count) if runner is not None else 0

    def _sample_users(self) -> None:
        while True:  # until the test stops (the greenlet is killed)
            gevent.sleep(_USERS_EVERY_S)
            self.users.append((time.time(), self._user_count()))

    def _on_spawned(self, user_count: int, **_: Any) -> None:
        if self.running:
            self.users.append((time.time(), int(user_count)))

    def _on_test_stopping(self, **_: Any) -> None:
        if self.running:
            self.stopped = time.monotonic()
            self.users.append((time.time(), self._user_count()))

    def _on_test_stop(self, **_: Any) -> None:
        if not self.running:
            return
        if self._sampler is not None:
            self._sampler.kill(block=False)
        if self.stopped < self.started:
            self.stopped = time.monotonic()
        self.running = False
        shape = self.environment.shape_class
        if self.interrupted:
            self.ended = "interrupted"
        elif shape is not None:
            self.ended = "completed" if getattr(shape, "finished", True) else "stopped"
        else:
            self.ended = "stopped" if self.per_test else "completed"
        self.write()

    def _on_quitting(self, **_: Any) -> None:
        runner = self.environment.runner
        if self.running and runner is not None and runner.state in (STATE_RUNNING, STATE_SPAWNING):
            self.interrupted = True  # Locust quits with the test still running: it was cut short
        if self.running:
            self._on_test_stop()
        elif self.test == 0 and not self.per_test:
            self.ended = "interrupted" if self.interrupted else "completed"
            self.started_wall, self.started = time.time(), time.monotonic()
            self.stopped = self.started
            self.write()  # nothing ran; the reports say so
        elif self._written is not None and self._counts()[0] == self._written[0] and self._counts() != self._written:
            self.write()  # worker reports that arrived after the test stopped (not a "Reset stats" since)

    def interrupt(self) -> None:
        """SIGINT: stop the running test (its reports say `interrupted`), then let Locust quit as it does."""
        if self.interrupted:
            return  # one is enough; `vapi-harness load` kills Locust if it does not stop in time
        self.interrupted = True
        log.warning("Interrupted: stopping the test and writing its reports")
        runner = self.environment.runner
        if runner is None:
            raise SystemExit(1)
        nothing_started = self.test == 0 and runner.state == STATE_INIT
        runner.stop()  # kills the shape's greenlet: Locust's main greenlet goes on to quit and shut down
        web_ui = self.environment.web_ui
        if web_ui is not None:
            web_ui.stop()  # its greenlet is the main one Locust waits for
        elif nothing_started and isinstance(runner, MasterRunner):
            # Still waiting for workers: Locust's main greenlet would wait forever; end it as Locust ends.
            self._on_quitting()
            runner.quit()
            gevent.get_hub().parent.throw(SystemExit(0))
        elif self.environment.shape_class is None:
            runner.quit()  # headless without a profile: Locust's main greenlet waits for the runner's greenlets

    # -- the reports

    def _counts(self) -> tuple[int, int, int, int]:
        return self.stats.resets, self.stats.turns, len(self.stats.samples["ttft_ms"]), sum(self.stats.errors.values())

    def _planned_s(self) -> float | None:
        planned = getattr(self.environment.shape_class, "run_time_s", None)
        if planned:
            return float(planned)
        options = self.environment.parsed_options
        run_time = getattr(options, "run_time", None)
        return float(run_time) if run_time else None

    def summary(self) -> dict[str, Any]:
        """The current test's summary, as `load_vapi.json` holds it."""
        from harness import __version__
        from harness.reporting import Redactor

        measured = self.stats.summary()
        interrupted = self.ended == "interrupted"
        duration_s = max(0.0, self.stopped - self.started)
        shape = self.environment.shape_class
        options = self.environment.parsed_options
        summary: dict[str, Any] = {
            "kind": LOAD_SUMMARY_KIND,
            "version": __version__,
            "test": max(1, self.test),
            "target": self.environment.host,
            "profile": getattr(shape, "profile", None),
            "started_at": datetime.fromtimestamp(self.started_wall, UTC).isoformat(timespec="seconds"),
            "duration_s": round(duration_s, 3),
            "run_time_s": self._planned_s(),
            "ended": self.ended,
            "interrupted": interrupted,
            "users": getattr(shape, "peak_users", None) or getattr(options, "num_users", None),
            "peak_users": max((n for _, n in self.users), default=0),
            **measured,
            "slos": slo_rows(evaluate(self.slos, measured), interrupted),
            "timeline": timeline(self.stats, self.started_wall, duration_s, self.users),
        }
        return Redactor([self.api_key]).deep(summary)  # type: ignore[no-any-return]

    def _folder_prefix(self) -> Path | None:
        if self.prefix is None:
            return None
        if self.per_test:
            return self.prefix.parent / f"test-{max(1, self.test)}" / self.prefix.name
        return self.prefix

    def write(self) -> None:
        """Write the current test's reports (summary JSON and CSV, raw samples, Locust's stats, HTML page)."""
        prefix = self._folder_prefix()
        if prefix is None and self.html is None:
            return
        self._written = self._counts()
        summary = self.summary()
        samples = {name: values.tolist() for name, values in self.stats.samples.items()}
        # The raw samples, sorted, in the summary itself: `vapi-harness compare` and `load --baseline` read them.
        summary["samples"] = {name: sorted(round(v, 3) for v in values) for name, values in samples.items()}
        self._guarded("the summary", lambda: self._write_files(prefix, summary, samples))
        if self.html is not None:
            path = html_path_of_test(self.html, summary["test"], self.per_test)
            self._guarded(str(path), lambda: self._write_html(path, summary, samples))

    def _write_files(self, prefix: Path | None, summary: dict[str, Any], samples: dict[str, list[float]]) -> None:
        if prefix is None:
            return
        json_path, _ = write_summary(summary, prefix)
        if self.keep_samples:  # the raw samples: the HTML report's distributions (`vapi-harness report` too)
            _write_text(prefix.with_name(prefix.name + "_vapi_samples.json"), json.dumps(samples))
        runner = self.environment.runner
        if self.per_test and runner is not None:  # Locust's own numbers of this test
            from locust.stats import save_stats_json

            save_stats_json(runner.stats, str(json_path.with_name("locust")))
        log.info("Test %s: reports in %s", summary["test"], json_path.parent)

    @staticmethod
    def _write_html(path: Path, summary: dict[str, Any], samples: dict[str, list[float]]) -> None:
        from harness import __version__
        from harness.reporting import render_load_html

        _write_text(path, render_load_html(summary, samples, __version__))

    @staticmethod
    def _guarded(what: str, write: Callable[[], None]) -> None:
        try:
            write()
        except OSError as exc:  # one unwritable report must not lose the others
            log.error("Could not write %s: %s", what, exc.strerror or exc)
