"""Running trials on Ray: the worker side (worker.py) and the driver side (runner.py)."""
