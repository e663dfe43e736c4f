"""Test support shared by the tests and the benchmarks: simulated trainables with known true effects
(``simulated``: components and pairs; ``simulated_factors``: alternatives and factors), their ledger
records without Ray, and the session's adaptive-seeds loop run on the formula."""
