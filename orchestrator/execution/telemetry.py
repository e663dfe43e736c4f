"""The study as Ray application metrics: Prometheus, Grafana and the dashboard's Metrics view.

The driver feeds every trial record it sees to :class:`StudyMetrics`; Ray exports the values
with a ``ray_`` prefix (counters also get ``_total``) from the node's metrics port. Labels are
bounded: study, study_id, stage, state, kind, variant, seed; never a step or a trial id.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter as Tally

from ..ledger import COMPLETED, FAILED, SEARCH, VARIANT, TrialRecord

#: metric names as Ray exports them (launch/monitoring/grafana-ablator.json uses only these)
EXPORTED = {
    "trials": "ray_ablator_trials",
    "restarts": "ray_ablator_trial_restarts_total",
    "failures": "ray_ablator_trial_failures_total",
    "duration": "ray_ablator_trial_duration_seconds",
    "primary": "ray_ablator_primary_metric",
    "best": "ray_ablator_tuning_best",
}
DURATION_BUCKETS_S = [1, 10, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 48 * 3600]


def failure_kind(error: str) -> str:
    """Which kind of failure an attempt's recorded error is."""
    text = error.lower()
    if "worker" in text and "died" in text:
        return "worker_died"
    if "out of memory" in text or "outofmemory" in text:
        return "oom"
    if "timed out" in text or "stalled" in text:
        return "timeout"
    return "exception"


def export_interval_s() -> float:
    """How often Ray exports application metrics (RAY_metrics_report_interval_ms, at least 1 s)."""
    return max(int(os.environ.get("RAY_metrics_report_interval_ms", "10000")), 1000) / 1000  # noqa: SIM112 (Ray's name)


class StudyMetrics:
    """Counts trial states and events from records, incrementally (O(1) per record).

    Ray's metrics agent forgets a gauge that is not set again within two export intervals, so
    a background thread sets the study's gauges again every interval while the driver lives.
    """

    def __init__(self, study: str, study_id: str, primary: str, mode: str):
        from ray.util.metrics import Counter, Gauge, Histogram

        base = ("study", "study_id", "stage")
        self._tags = {"study": study, "study_id": study_id}
        self._primary, self._sign = primary, 1.0 if mode == "max" else -1.0
        self._best_value: float | None = None
        self._trials = Gauge("ablator_trials", "Trials of the study by stage and state",
                             tag_keys=(*base, "state"))
        self._restarts = Counter("ablator_trial_restarts", "Restarts of trials (attempts after the first)",
                                 tag_keys=base)
        self._failures = Counter("ablator_trial_failures", "Failed attempts by kind",
                                 tag_keys=(*base, "kind"))
        self._duration = Histogram("ablator_trial_duration_seconds", "Wall time of finished trials",
                                   boundaries=DURATION_BUCKETS_S, tag_keys=base)
        self._metric = Gauge("ablator_primary_metric", f"Final {primary} of each ablation trial",
                             tag_keys=("study", "study_id", "variant", "seed"))
        self._best = Gauge("ablator_tuning_best", "Best value of the tuning stage so far",
                           tag_keys=("study", "study_id"))
        self._seen: dict[str, tuple[str, str, int, int]] = {}  # trial -> stage, state, attempts, errors
        self._counts: Tally = Tally()
        self._gauges: dict[tuple, tuple] = {}  # (gauge, sorted tags) -> (gauge, tags, value)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        threading.Thread(target=self._keep_alive, name="ablator-telemetry", daemon=True).start()

    def update(self, record: TrialRecord) -> None:
        """A trial's record as the driver sees it now (any stage, any state)."""
        tid, stage, state, errors = record.trial_id, record.stage, record.state, record.errors
        before = self._seen.get(tid)
        _, old_state, old_attempts, old_errors = before or (stage, None, 1, 0)
        self._seen[tid] = (stage, state, max(1, record.attempts), len(errors))
        tags = {**self._tags, "stage": stage}
        if state != old_state:
            if old_state is not None:
                self._counts[stage, old_state] -= 1
                self._set_count(stage, old_state)
            self._counts[stage, state] += 1
            self._set_count(stage, state)
            if state in (COMPLETED, FAILED):
                self._duration.observe(float(record.duration_s), tags=tags)
        restarts = self._seen[tid][2] - old_attempts
        if restarts > 0:
            self._restarts.inc(restarts, tags=tags)
        for error in errors[old_errors:]:
            self._failures.inc(1, tags={**tags, "kind": failure_kind(error.error)})
        final = record.final or {}
        if state != COMPLETED or self._primary not in final:
            return
        value = float(final[self._primary])
        if record.purpose == VARIANT:
            self._set(self._metric, {**self._tags, "variant": record.variant, "seed": str(record.seed)}, value)
        elif (record.purpose == SEARCH and not record.stopped_early  # a pruned trial is no candidate
              and (self._best_value is None or self._sign * value > self._sign * self._best_value)):
            self._best_value = value
            self._set(self._best, self._tags, value)

    def close(self, flush: bool = False) -> None:
        """Stop refreshing; with `flush`, first wait until the last values are exported."""
        if flush:
            time.sleep(export_interval_s() + 0.5)
        self._stop.set()

    def _set_count(self, stage: str, state: str) -> None:
        self._set(self._trials, {**self._tags, "stage": stage, "state": state}, self._counts[stage, state])

    def _set(self, gauge, tags: dict, value: float) -> None:
        with self._lock:
            self._gauges[id(gauge), tuple(sorted(tags.items()))] = (gauge, tags, float(value))
        gauge.set(float(value), tags=tags)

    def _keep_alive(self) -> None:
        while not self._stop.wait(export_interval_s() / 2):
            with self._lock:
                current = list(self._gauges.values())
            for gauge, tags, value in current:
                gauge.set(value, tags=tags)
