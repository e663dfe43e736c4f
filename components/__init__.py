"""The example studies' code, run from the repository as a user's own project runs.

Not installed with the package: `ablator` imports a trainable (``components.quickstart:run``)
from the directory it is launched in, as it would ``mytrain:run`` in a user's project.
Examples: ``components.quickstart`` (a spiral MLP), ``components.chord`` (CTC and
autoregressive heads scored with mir_eval) and ``components.digits`` (a small CNN on
scikit-learn's digits). The building blocks they use live in ``orchestrator.blocks``.
"""
