"""Atomic writes made cheaper: a rename that leaves freeing the replaced file to a background thread,
and several files (the PENDING records of a launch) fsynced at once."""

from __future__ import annotations

import json
import os
import time

import pytest

from orchestrator.ledger import PENDING, Study, TrialRecord, write_json
from orchestrator.ledger.files import write_texts


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


def records(n: int) -> list[TrialRecord]:
    return [TrialRecord(trial_id=f"t{i}", variant="baseline", seed=i, gpus=0.0) for i in range(n)]


def test_new_records_written_at_once_are_what_one_by_one_writes(tmp_path):
    one, together = (Study.create(tmp_path / name, "name: s\n", "s") for name in ("one", "together"))
    for record in records(5):
        one.trial(record.trial_id).write(record)
    together.write_new(records(5))
    for record in records(5):
        assert together.trial(record.trial_id).record_path.read_bytes() == \
            one.trial(record.trial_id).record_path.read_bytes()
    assert together.index.path.read_text() == one.index.path.read_text()
    assert Study(together.path).states() == {f"t{i}": PENDING for i in range(5)}
    assert not list(together.trials_dir.glob("*/.*.tmp"))


def test_files_written_at_once_are_each_fsynced_before_their_rename(tmp_path, monkeypatch):
    synced: set[int] = set()
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):  # a spy: which files reached the disk before they were renamed into place
        synced.add(os.fstat(fd).st_ino)
        real_fsync(fd)

    def replace(src, dst):
        assert os.stat(src).st_ino in synced, f"{dst} renamed into place before its fsync"
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    write_texts([(tmp_path / f"f{i}.json", f"{i}\n") for i in range(20)])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"f{i}.json" for i in range(20))


def test_a_failed_write_of_several_files_leaves_none_of_them(tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(OSError):
        write_texts([(tmp_path / "a" / "x.json", "1"), (tmp_path / "missing" / "y.json", "2")])
    assert list((tmp_path / "a").iterdir()) == []
