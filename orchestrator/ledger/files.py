"""Durable files: atomic JSON and text, appended lines, and the cut of a torn last line.

A JSON file is written to a temporary file beside it and renamed, so a reader sees the
old or the new content, never half; the temporary file is removed when the write fails.
A JSON-lines file is only appended to, one whole line per write; a last line without
its newline is a write in progress (or torn by a killed writer), never data.
"""

from __future__ import annotations

import errno
import json
import os
import queue
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..errors import LedgerDamaged, NoRoom

#: fsync every write; only a benchmark that builds a throw-away ledger turns it off
FSYNC = True

NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def no_room(path: Path, exc: OSError) -> NoRoom:
    """The error of a write that found no room: it names the path."""
    return NoRoom(f"{path}: cannot write: {exc.strerror}. Free some space on that disk; "
                  "nothing written before is lost.")


def as_no_room(exc: BaseException) -> NoRoom | None:
    """A full disk behind `exc` as NoRoom: a ledger write's NoRoom, or an OSError ENOSPC, EDQUOT
    or EFBIG from any code (the user's too); None for anything else."""
    if isinstance(exc, NoRoom):
        return exc
    if isinstance(exc, OSError) and exc.errno in NO_ROOM:
        return no_room(Path(exc.filename or "a file"), exc)
    return None


def write_json(path: Path, data: Any, compact: bool = False, sync: bool = True) -> None:
    """Write JSON atomically (temp file + rename); no temp file stays behind on failure."""
    write_text(path, json_text(data, compact), sync=sync)


def json_text(data: Any, compact: bool = False) -> str:
    """The text `write_json` writes."""
    return json.dumps(data, default=str, **({"separators": (",", ":")} if compact else {"indent": 1}))


def write_text(path: Path, text: str, sync: bool = True) -> None:
    """Write a text file atomically (temp file + rename): a reader sees the old or the new text.

    Fsynced before the rename unless `sync` is False (a file whose loss in a power cut only
    repeats work: no result depends on it)."""
    path = Path(path)
    tmp = _tmp_name(path)
    try:
        with open(tmp, "w") as fh:
            fh.write(text)
            fh.flush()
            if FSYNC and sync:
                os.fsync(fh.fileno())
        replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in NO_ROOM:
            raise no_room(path, exc) from None
        raise


def write_texts(items: list[tuple[Path, str]]) -> None:
    """Write several text files atomically, each as `write_text` does (fsynced before its rename),
    their fsyncs at once from a few threads: the file system commits them together, where one
    after another each waits for its own commit. A failure leaves none of the temporary files."""
    tmps = [_tmp_name(Path(path)) for path, _ in items]
    try:
        for tmp, (_, text) in zip(tmps, items):
            with open(tmp, "w") as fh:
                fh.write(text)
        if FSYNC:
            with ThreadPoolExecutor(SYNC_THREADS) as pool:
                list(pool.map(_fsync_file, tmps))
        for tmp, (path, _) in zip(tmps, items):
            replace(tmp, Path(path))
    except BaseException as exc:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in NO_ROOM:
            raise no_room(Path(exc.filename or items[0][0]), exc) from None
        raise


#: threads that fsync the files of one `write_texts` at once
SYNC_THREADS = 16


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:6]}.tmp")


def replace(tmp: Path, path: Path) -> None:
    """``os.replace(tmp, path)``, the same atomic rename, without waiting for the kernel to free
    the file it replaces: a descriptor of that file is held over the rename and closed by a
    background thread, so freeing its blocks (a journal update that costs as much as an fsync
    here) overlaps the caller's next work instead of delaying it."""
    try:
        old = os.open(path, os.O_RDONLY)
    except OSError:
        old = None
    try:
        os.replace(tmp, path)
    finally:
        if old is not None:
            _releaser().put(old)


_release: tuple[int, queue.SimpleQueue] | None = None  # (the pid whose thread reads it, the queue)


def _releaser() -> queue.SimpleQueue:
    """The queue of descriptors that this process's releasing thread closes (one thread per process)."""
    global _release
    if _release is None or _release[0] != os.getpid():  # none yet, or a forked child: its own thread
        fds: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=_close_forever, args=(fds,), daemon=True, name="ablator-release").start()
        _release = (os.getpid(), fds)
    return _release[1]


def _close_forever(fds: queue.SimpleQueue) -> None:
    while True:
        os.close(fds.get())


def read_json(path: Path, default: Any = None, mend: str = "") -> Any:
    """The JSON in `path` (`default` if there is none); LedgerDamaged if it cannot be read."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        return default
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        what = "it is empty" if not raw.strip() else f"not valid JSON ({_why(exc)})"
        raise LedgerDamaged(path, what, mend) from None


def looks_whole(path: Path) -> bool:
    """A cheap check that a JSON object file was not cut short: its last byte closes it."""
    with open(path, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        fh.seek(max(0, size - 64))
        return fh.read().rstrip().endswith(b"}")


def _why(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"line {exc.lineno} column {exc.colno}: {exc.msg}"
    return str(exc)


def append_line(path: Path, line: str, sync: bool = True) -> None:
    """Append one whole line in one write (O_APPEND), fsynced unless `sync` is False (a line that
    can be rebuilt from files that are: see the study index)."""
    data = (line + "\n").encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        if exc.errno in NO_ROOM:
            raise no_room(Path(path), exc) from None
        raise
    try:
        if os.write(fd, data) != len(data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        if FSYNC and sync:
            os.fsync(fd)
    except OSError as exc:
        if exc.errno in NO_ROOM:
            raise no_room(Path(path), exc) from None
        raise
    finally:
        os.close(fd)


def cut_torn_tail(path: Path) -> bytes:
    """Cut a last line without its newline; keep the cut bytes in `<name>.torn`. Returns them."""
    path = Path(path)
    if not has_torn_tail(path):
        return b""
    with open(path, "rb+") as fh:
        size = fh.seek(0, os.SEEK_END)
        keep = _last_newline_end(fh, size)
        fh.seek(keep)
        torn = fh.read()
        with open(path.with_name(path.name + ".torn"), "ab") as aside:
            aside.write(f"# cut {time.strftime('%Y-%m-%dT%H:%M:%S')} at byte {keep}\n".encode())
            aside.write(torn + b"\n")
            aside.flush()
            os.fsync(aside.fileno())
        fh.truncate(keep)
        fh.flush()
        os.fsync(fh.fileno())
    return torn


def has_torn_tail(path: Path) -> bool:
    """Whether the file's last line lacks its newline (False for a missing or empty file)."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            if size == 0:
                return False
            fh.seek(size - 1)
            return fh.read(1) != b"\n"
    except FileNotFoundError:
        return False


def _last_newline_end(fh, size: int, chunk: int = 1 << 16) -> int:
    """The offset just after the last newline before `size` (0 if there is none)."""
    end = size
    while end > 0:
        start = max(0, end - chunk)
        fh.seek(start)
        at = fh.read(end - start).rfind(b"\n")
        if at >= 0:
            return start + at + 1
        end = start
    return 0


def complete_lines(path: Path, offset: int = 0) -> tuple[bytes, int]:
    """The bytes of whole lines from `offset` on, and the offset after them (a torn tail waits)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return b"", offset
    end = data.rfind(b"\n") + 1
    return data[:end], offset + end


def parse_lines(data: bytes, path: Path, first_line: int = 1) -> tuple[list[dict], list[str]]:
    """JSON objects of whole lines; every unreadable line is named `file:line` and skipped."""
    lines = data.split(b"\n")[:-1] if data else []
    try:  # the common case in one C-speed parse
        rows = json.loads(b"[" + b",".join(ln for ln in lines if ln.strip()) + b"]")
        if all(isinstance(r, dict) for r in rows):
            return rows, []
    except (json.JSONDecodeError, UnicodeDecodeError):
        pass
    rows, problems = [], []
    for i, line in enumerate(lines, start=first_line):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            why = f"column {exc.colno}: {exc.msg}" if isinstance(exc, json.JSONDecodeError) else str(exc)
            problems.append(f"{path}:{i}: unreadable line skipped ({why})")
            continue
        if isinstance(row, dict):
            rows.append(row)
        else:
            problems.append(f"{path}:{i}: not a JSON object, skipped")
    return rows, problems
