"""The study session: one object drives a study's lifecycle for launch, resume and tune.

    open (create or continue the study dir, take its lock) -> connect Ray (user code shipped)
    -> steps: ablation (tiers, adaptive seeds) -> report -> tuning (now, scheduled or manual)
    -> close (tracker flushed, lock released)

The session is the only layer that knows every stage: execution runs trials, analysis
reads the ledger, tuning reads verdicts; the session sequences them in one driver
process, the same on every path (local Ray, `--address`, sbatch, a RayJob), so no second
process ever needs the study lock while this one holds it. SIGTERM, SIGINT and SIGHUP
stop the session cleanly: running trials are cancelled and left PENDING, the tracker is
flushed, the resume command printed, and ``Interrupted`` carries exit code 128+signal.

Modules: study_session (the session: open, close, the steps, running trials), ablation (tiers,
adaptive seeds, the tier gate), scheduling (the tuning stage at a set time), report (report.md
and report.html as the session composes them), commands (launch, resume, tune), mending
(damaged records), plan_table (the plan before a launch), project (the launch's project directory and
code, which later commands run, ship and check).
"""

from .ablation import adaptive_seeds
from .commands import failed_trials, in_project, launch, resume, tune
from .mending import mend_records
from .plan_table import print_plan
from .report import write_report
from .scheduling import cancel_schedule
from .study_session import Cluster, StudySession, study_dir_for

__all__ = ["Cluster", "StudySession", "adaptive_seeds", "cancel_schedule", "failed_trials", "in_project", "launch",
           "mend_records", "print_plan", "resume", "study_dir_for", "tune", "write_report"]
