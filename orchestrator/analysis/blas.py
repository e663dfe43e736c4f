"""The analysis' least-squares fits on one BLAS thread.

The fits are small (trials x design columns: a few hundred rows, a few dozen columns). OpenBLAS still
splits them across its threads, which then wait on each other: on a busy 2-core machine one 240 x 20 SVD
took 78 ms on two threads against 2 ms on one, and a test of 60 random-design analyses 195 s against 8 s.
``one_blas_thread`` runs a function with BLAS (numpy's and scipy's) on one thread and gives the threads
back after it (threadpoolctl), so code outside the analysis keeps its own setting.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

from threadpoolctl import ThreadpoolController

F = TypeVar("F", bound=Callable)
_controller: ThreadpoolController | None = None


def one_blas_thread(fn: F) -> F:
    """``fn`` with BLAS limited to one thread while it runs (nested calls are fine)."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        global _controller
        if _controller is None:  # finds the BLAS libraries loaded by now (numpy's, scipy's): once
            _controller = ThreadpoolController()
        with _controller.limit(limits=1, user_api="blas"):
            return fn(*args, **kwargs)

    return run  # type: ignore[return-value]
