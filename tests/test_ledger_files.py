"""files.replace: the atomic rename that leaves freeing the replaced file to a background thread."""

from __future__ import annotations

import json
import os
import time

from orchestrator.ledger import write_json


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_a_replaced_file_is_released_and_a_reader_that_had_it_open_keeps_its_content(tmp_path):
    path = tmp_path / "record.json"
    write_json(path, {"n": 0})
    with open(path) as reader:
        before = open_fds()
        for n in range(1, 40):
            write_json(path, {"n": n})
        assert json.loads(path.read_text()) == {"n": 39}
        assert json.load(reader) == {"n": 0}  # the old file, whole, for whoever had it open
    deadline = time.monotonic() + 30
    while open_fds() - before and time.monotonic() < deadline:
        time.sleep(0.05)  # the releasing thread closes the replaced files' descriptors
    assert not open_fds() - before, "the replaced files were never released"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["record.json"]
