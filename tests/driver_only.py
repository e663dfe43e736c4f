"""A trainable whose module imports on the driver but not on a Ray worker (a dependency that
only the driver's machine has): a real late user mistake, not a fault a retry can fix."""

import os
import sys

if os.path.basename(sys.argv[0]) == "default_worker.py":  # inside a Ray worker process
    raise ImportError("No module named 'only_on_the_driver'")


def run(ctx):
    ctx.report({"score": 1.0})
