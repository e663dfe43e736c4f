"""The TPE search: Optuna ask/tell in the study directory, trials on Ray through the TrialExecutor.

Storage: an Optuna JournalStorage on a JournalFileBackend, ``<study>/tuning/optuna.log``.
Chosen over SQLite because the study directory is meant to live on a shared filesystem
(NFS on a cluster, so `ablator tune` can run from any machine that reads it, and Ray
workers report pruning steps to it): the journal is an append-only file of JSON lines,
fsync'ed, guarded by a lock that works on NFS, and SQLite's file locking is unreliable
there. A SIGKILLed writer leaves at most a torn last line and a stale lock, which the
next driver (holding the study lock) trims and clears.

Resume: Optuna keeps every told trial. A trial that was RUNNING when the driver died is
matched to its ledger record ``tune-NNNN``: COMPLETED/FAILED records are told now;
the others are submitted again with the same number and parameters (the worker
continues from the trial's last checkpoint, as any restart does).
"""

from __future__ import annotations

import math
import os
import shutil
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from ..config import StudyConfig
from ..errors import Interrupted
from ..execution import runner
from ..execution.nodes import stop_on_node_loss
from ..ledger import COMPLETED, SEARCH, TUNING, Study, TrialRecord, TuningInfo
from ..ledger.tuning_results import TUNING_DIR
from ..plan import TrialSpec
from .tuning_plan import TuningPlan

JOURNAL = "optuna.log"
STAGE = TUNING


def trial_id_for(number: int) -> str:
    return f"tune-{number:04d}"


def journal_path(study_path: str | Path) -> Path:
    return Path(study_path) / TUNING_DIR / JOURNAL


def open_storage(study_path: str | Path) -> optuna.storages.JournalStorage:
    """The study's Optuna storage (created empty if absent)."""
    from optuna.storages.journal import JournalFileBackend

    path = journal_path(study_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(str(path)))


def open_optuna_study(study_path: str | Path, study_name: str | None = None) -> optuna.Study:
    """`optuna.load_study` on a study directory's tuning storage (the only Optuna study if no name)."""
    storage = open_storage(study_path)
    if study_name is None:
        names = optuna.get_all_study_names(storage)
        if len(names) != 1:
            raise ValueError(f"{journal_path(study_path)} holds {len(names)} Optuna studies; give study_name")
        study_name = names[0]
    return optuna.load_study(study_name=study_name, storage=storage)


def repair_journal(path: Path) -> bool:
    """Trim a torn last line left by a writer killed mid-append; return True if trimmed."""
    if not path.exists() or path.stat().st_size == 0:
        return False
    with open(path, "rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) == b"\n":
            return False
        fh.seek(0)
        data = fh.read()
        fh.truncate(data.rfind(b"\n") + 1)
    return True


def clear_stale_lock(path: Path, wait_s: float = 2.0) -> bool:
    """Remove the journal's lock left by a writer killed while appending; True if removed.

    A live writer holds the lock for one append (milliseconds), so a lock that outlasts
    `wait_s` is stale. Only the driver holding the study lock calls this, at its start;
    without it the next driver would stall for Optuna's 30 s grace period.
    """
    from optuna.storages.journal._file import LOCK_FILE_SUFFIX

    lock = Path(str(path) + LOCK_FILE_SUFFIX)
    deadline = time.monotonic() + wait_s
    while os.path.lexists(lock):
        if time.monotonic() > deadline:
            try:
                lock.unlink()
            except FileNotFoundError:
                pass
            return True
        time.sleep(0.05)
    return False


def quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def n_startup(budget: int | None) -> int:
    """Random start-up trials before TPE models anything: Optuna's 10, fewer for small budgets.

    A quarter of the budget, between 3 and 10: at 20 trials on the simulated objective this
    halves the mean regret against Optuna's default of 10 (see benchmarks/tuning.py).
    """
    return 10 if budget is None else max(3, min(10, budget // 4))


def make_sampler(seed: int, budget: int | None = None) -> optuna.samplers.TPESampler:
    """Seeded multivariate TPE (grouped, for conditional spaces); constant liar so parallel trials don't all
    sample the same point."""
    quiet_optuna()
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True,
                                      n_startup_trials=n_startup(budget))


def make_pruner(kind: str) -> optuna.pruners.BasePruner:
    if kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    if kind == "asha":
        return optuna.pruners.SuccessiveHalvingPruner()
    return optuna.pruners.NopPruner()


def create_optuna_study(study: Study, config: StudyConfig, plan: TuningPlan, budget: int | None = None) -> optuna.Study:
    """Create or reopen the Optuna study; the sampler seed moves on with each resume.

    A fresh driver with the same seed would replay the first driver's random start-up
    points, so the seed is ``sampler_seed + number of trials already in storage``
    (an uninterrupted stage uses ``sampler_seed`` itself).
    """
    quiet_optuna()
    clear_stale_lock(journal_path(study.path))
    repair_journal(journal_path(study.path))
    storage = open_storage(study.path)
    name = config.name
    existing = 0
    if name in optuna.get_all_study_names(storage):
        existing = len(optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False))
    ostudy = optuna.create_study(study_name=name, storage=storage, direction=plan.direction,
                                 sampler=make_sampler(config.tuning.sampler_seed + existing,
                                                      budget or config.tuning.n_trials),
                                 load_if_exists=True)
    if "metric" not in ostudy.user_attrs:
        ostudy.set_user_attr("metric", plan.metric)
        ostudy.set_user_attr("mode", plan.mode)
        ostudy.set_user_attr("ablator_study_id", study.study_id)
    return ostudy


class PruneHook:
    """The stop hook of one tuning trial: report each step to Optuna, stop when pruned.

    Pickled to the Ray worker: it holds only paths and ids, and opens the journal there.
    Pruning never breaks a trial: a storage problem means "go on".
    """

    def __init__(self, study_path: str, study_name: str, optuna_trial_id: int, metric: str, pruner: str):
        self.study_path = study_path
        self.study_name = study_name
        self.optuna_trial_id = optuna_trial_id
        self.metric = metric
        self.pruner = pruner
        self._trial = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_trial": None}

    def __call__(self, step: int, metrics: dict) -> bool:
        value = metrics.get(self.metric)
        if value is None or not math.isfinite(value):
            return False
        try:
            if self._trial is None:
                quiet_optuna()
                ostudy = optuna.load_study(study_name=self.study_name, storage=open_storage(self.study_path),
                                           pruner=make_pruner(self.pruner))
                self._trial = optuna.trial.Trial(ostudy, self.optuna_trial_id)
            self._trial.report(float(value), int(step))
            return bool(self._trial.should_prune())
        except Exception as exc:  # a pruning problem must not fail the trial
            warnings.warn(f"pruning check failed, trial goes on: {exc}", stacklevel=2)
            return False


def tell(ostudy: optuna.Study, number: int, record: TrialRecord, metric: str) -> TrialState:
    """Tell Optuna how a tuning trial ended, from its ledger record."""
    state = TrialState.FAIL
    value = None
    if record.state == COMPLETED:
        value = record.metric(metric)
        if record.stopped_early:
            state = TrialState.PRUNED
        elif value is not None and math.isfinite(value):
            state = TrialState.COMPLETE
    if state == TrialState.COMPLETE:
        ostudy.tell(number, float(value), skip_if_finished=True)
    else:
        ostudy.tell(number, state=state, skip_if_finished=True)
    return state


class Search:
    """The ask/tell loop of one driver, up to `slots()` trials in flight."""

    def __init__(self, study: Study, config: StudyConfig, plan: TuningPlan, ostudy: optuna.Study,
                 on_update: Callable[[TrialRecord], None], tick: Callable[[], None] = lambda: None):
        self.study, self.config, self.plan, self.ostudy = study, config, plan, ostudy
        self.tick = tick
        self._optuna_ids: dict[str, int] = {}
        pruner = config.tuning.pruner
        factory = None
        if pruner != "none":
            path, name, metric = str(study.path.resolve()), ostudy.study_name, plan.metric

            def factory(spec: TrialSpec):
                oid = self._optuna_ids.get(spec.trial_id)
                if spec.purpose != SEARCH or oid is None:
                    return None
                return PruneHook(path, name, oid, metric, pruner)

        self.executor = runner.TrialExecutor(study, config, on_update=on_update,
                                             max_concurrent=config.tuning.max_concurrent,
                                             stop_hook_factory=factory)
        self.told: dict[str, int] = {}

    # ------------------------------------------------------------ counts

    def n_trials(self) -> int:
        """Trials that count against the budget: every asked trial (waiting ones are not yet asked)."""
        return sum(t.state != TrialState.WAITING for t in self.ostudy.get_trials(deepcopy=False))

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.ostudy.get_trials(deepcopy=False):
            out[t.state.name] = out.get(t.state.name, 0) + 1
        return out

    # ------------------------------------------------------------ resume

    def reconcile(self) -> list[optuna.trial.FrozenTrial]:
        """Tell Optuna what the ledger knows; return the RUNNING trials to submit again."""
        again = []
        for ft in self.ostudy.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            record = self.study.trial(trial_id_for(ft.number)).read()
            if record is not None and self._matches(record, ft.number) and record.finished:
                self._tell(ft.number, record)
            else:
                again.append(ft)
        return again

    def _matches(self, record: TrialRecord, number: int) -> bool:
        return record.purpose == SEARCH and record.tuning is not None and record.tuning.number == number

    def _tell(self, number: int, record: TrialRecord) -> None:
        state = tell(self.ostudy, number, record, self.plan.metric)
        self.told[state.name] = self.told.get(state.name, 0) + 1

    # ------------------------------------------------------------ the loop

    def _submit(self, number: int, raw: dict[str, Any], optuna_trial_id: int) -> None:
        tid = trial_id_for(number)
        values = self.plan.decode(raw)
        spec = TrialSpec(trial_id=tid, stage=STAGE, purpose=SEARCH, variant="tuned", removed=list(self.plan.removed),
                         seed=self.config.tuning.trial_seed, group=self.plan.group,
                         overrides=self.plan.overrides(self.config, values))
        store = self.study.trial(tid)
        record = store.read()
        if record is not None and not (self._matches(record, number) and record.tuning.params == values):
            # a leftover of another Optuna history (e.g. a deleted optuna.log): keep it aside
            stale = self.study.path / TUNING_DIR / "stale" / f"{tid}-{int(time.time())}"
            stale.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(store.path), stale)
            record = None
        if record is None or record.finished:
            record = runner.new_record(spec)
            record.tuning = TuningInfo(number=number, params=values)
            store.write(record)
        self._optuna_ids[tid] = optuna_trial_id
        self.executor.submit(spec)
        self.executor.on_update(record)

    def run(self, budget: int, again: list[optuna.trial.FrozenTrial] | None = None) -> None:
        """Run trials until `budget` trials are asked and every in-flight one is told.

        `again`: what `reconcile()` returned (it is called here when not given).
        """
        again = self.reconcile() if again is None else list(again)
        with stop_on_node_loss(self.executor):
            self._run(budget, again)

    def _run(self, budget: int, again: list[optuna.trial.FrozenTrial]) -> None:
        try:
            while True:
                slots = self.executor.slots()
                while len(self.executor.inflight) < slots:
                    if again:
                        ft = again.pop(0)
                        self._submit(ft.number, ft.params, ft._trial_id)
                    elif self.n_trials() < budget:
                        trial = self.ostudy.ask()
                        self.plan.suggest(trial)  # define-by-run: a branch's ranges exist only in its trials
                        trial.set_user_attr("trial_id", trial_id_for(trial.number))
                        self._submit(trial.number, trial.params, trial._trial_id)
                    else:
                        break
                if not self.executor.inflight:
                    self.executor.release()
                    return
                for record in self.executor.wait(timeout=runner.POLL_S):
                    self._tell(record.tuning.number, record)
                self.executor.refresh()
                self.tick()
        except (Interrupted, KeyboardInterrupt):
            self.executor.cancel_all()
            raise
