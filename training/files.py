"""Atomic writes: a file is replaced whole or not at all, and no temporary file outlives its writer.

The temporary file sits in the target's own directory (``os.replace`` is atomic only within one
file system) and is named ``.<target>.<pid>.<random>.tmp``. A failing write removes it
(``finally``); a writer killed outright (SIGKILL, power cut) cannot, so every later write of the
same target removes the temporaries whose writer's pid no longer runs on this host.
"""

from __future__ import annotations

import glob
import os
import re
import secrets
import shutil
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

SUFFIX = ".tmp"
_PID = re.compile(r"\.(\d+)\.[0-9a-f]{8}\.tmp$")


class WriteError(OSError):
    """The target cannot be written: a directory stands where the file should be, or the
    directory is not writable."""


def temporary_name(target: Path) -> Path:
    return target.parent / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}{SUFFIX}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # someone else's process, or a pid this OS cannot hold: leave it
    return True


def remove_stale(target: Path) -> list[Path]:
    """Remove temporaries of ``target`` left by writers that no longer run; return them."""
    removed = []
    for name in glob.glob(glob.escape(str(target.parent / f".{target.name}.")) + "*" + SUFFIX):
        match = _PID.search(name)
        if match and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
            Path(name).unlink(missing_ok=True)
            removed.append(Path(name))
    return removed


def write_atomic(target: Path, data: bytes | Path, *, check: Callable[[Path], None] | None = None,
                 fsync: bool = True) -> None:
    """Write ``data`` (bytes, or a file to copy) to ``target`` through a temporary file in the
    same directory and ``os.replace``: a reader sees the old file or the new one, never half.
    ``check(temporary)`` may refuse the written bytes (raise) before they replace anything."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_dir():
        raise WriteError(f"{target} is a directory where a file should be written; "
                         "move or remove it and run again")
    remove_stale(target)
    tmp = temporary_name(target)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "wb") as out:
            if isinstance(data, Path):
                with open(data, "rb") as source:
                    shutil.copyfileobj(source, out, 1 << 20)
            else:
                out.write(data)
            out.flush()
            if fsync:
                os.fsync(out.fileno())
        if check is not None:
            check(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)  # gone already after a successful replace


def read_once(path: Path, parse: Callable[[Path], Any]) -> Any:
    """``parse(path)``, computed once per process for each state of the file (size, times,
    inode): a report reads the same result and benchmark files dozens of times, and a file
    rewritten since is parsed again, so a stale parse is never served. The parse is shared
    between callers, which must not change it."""
    st = path.stat()
    return _parsed(parse, str(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


@lru_cache(maxsize=128)
def _parsed(parse: Callable[[Path], Any], path: str, *_state: int) -> Any:
    return parse(Path(path))
