"""The native kernel's cache on a shared machine: the folder is created 0700, a folder or library
owned by another user or writable by group or others is refused (and the kernel built elsewhere),
and a cached library is loaded only when it matches the SHA-256 recorded when it was built.

Most tests use a stand-in compiler (a shell script that writes a small file) so that they check the
cache logic in milliseconds; one test builds and runs the real kernel from a refused cache."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from hqnn.sim import native

FOREIGN_UID = 65534  # "nobody"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """HQNN_CACHE_DIR, the system temp dir and HQNN_CC (a fake compiler counting its builds) under tmp_path."""
    log = tmp_path / "builds.log"
    cc = tmp_path / "fakecc"
    cc.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "--version" ]; then echo "fakecc 1.0"; exit 0; fi\n'
        'prev=""; for a in "$@"; do if [ "$prev" = "-o" ]; then out="$a"; fi; prev="$a"; done\n'
        f'echo built >> "{log}"\n'
        'printf "fake kernel library" > "$out"\n'
    )
    cc.chmod(0o755)
    monkeypatch.setenv("HQNN_CC", str(cc))
    monkeypatch.setenv("HQNN_CACHE_DIR", str(tmp_path / "cache"))
    temp = tmp_path / "tmp"
    temp.mkdir(mode=0o700)
    monkeypatch.setattr(tempfile, "tempdir", str(temp))

    class Cache:
        root = tmp_path
        kernels = tmp_path / "cache" / "kernels"
        fallback = temp / f"hqnn-kernels-{os.getuid()}"

        @staticmethod
        def builds() -> int:
            return len(log.read_text().splitlines()) if log.exists() else 0

    return Cache


def _make_foreign(path: Path, monkeypatch) -> None:
    """Give ``path`` another owner: really (chown, as root), else by making hqnn see another uid."""
    if os.getuid() == 0:
        os.chown(path, FOREIGN_UID, FOREIGN_UID, follow_symlinks=False)
    else:  # pragma: no cover - depends on who runs the tests
        monkeypatch.setattr(native, "_current_uid", lambda: os.getuid() + 1)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fresh_cache_is_private_and_recorded(cache):
    path = native._build("double")
    assert path.parent == cache.kernels and _mode(cache.kernels) == 0o700
    assert _mode(path) & 0o077 == 0
    assert (path.parent / (path.name + ".sha256")).read_text().strip() == _sha(path)
    assert native._build("double") == path and cache.builds() == 1  # reused, not rebuilt


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o722, 0o702])
def test_group_or_world_writable_directory_is_refused(cache, mode, caplog):
    cache.kernels.mkdir(parents=True)
    cache.kernels.chmod(mode)
    path = native._build("double")
    assert path.parent == cache.fallback and _mode(cache.fallback) == 0o700
    assert not list(cache.kernels.iterdir())  # nothing built in (or read from) the refused folder
    assert "writable by group or others" in caplog.text


def test_foreign_directory_is_refused(cache, monkeypatch, caplog):
    native._build("double")
    planted = next(cache.kernels.glob("*.so"))
    planted.write_bytes(b"another user's library")  # what an attacker would place there
    (planted.parent / (planted.name + ".sha256")).write_text(_sha(planted))
    _make_foreign(cache.kernels, monkeypatch)
    path = native._build("double")
    assert path.parent == cache.fallback and path.read_bytes() != b"another user's library"
    assert "not by this user" in caplog.text


def test_both_shared_locations_refused_uses_a_private_folder(cache, monkeypatch, caplog):
    for folder in (cache.kernels, cache.fallback):
        folder.mkdir(parents=True)
        folder.chmod(0o777)
    path = native._build("single")
    assert path.parent not in (cache.kernels, cache.fallback)
    assert path.parent.parent == Path(tempfile.gettempdir()) and _mode(path.parent) == 0o700
    assert caplog.text.count("not using") == 2


def test_a_file_in_place_of_the_directory_is_refused(cache):
    cache.kernels.parent.mkdir(parents=True)
    cache.kernels.write_text("not a folder")
    assert native._build("double").parent == cache.fallback


def _tamper_library(path: Path, monkeypatch) -> None:
    path.write_bytes(path.read_bytes() + b"\x90")


def _library_writable(path: Path, monkeypatch) -> None:
    path.chmod(0o777)


def _record_writable(path: Path, monkeypatch) -> None:
    (path.parent / (path.name + ".sha256")).chmod(0o666)


def _library_foreign(path: Path, monkeypatch) -> None:
    if os.getuid() != 0:
        pytest.skip("needs root to give a file another owner")
    os.chown(path, FOREIGN_UID, FOREIGN_UID)


def _record_missing(path: Path, monkeypatch) -> None:
    (path.parent / (path.name + ".sha256")).unlink()


def _record_rewritten_to_match(path: Path, monkeypatch) -> None:
    """A swapped library with a matching record, but the pair is owned by someone else."""
    if os.getuid() != 0:
        pytest.skip("needs root to give a file another owner")
    path.write_bytes(b"swapped")
    record = path.parent / (path.name + ".sha256")
    record.write_text(_sha(path))
    os.chown(record, FOREIGN_UID, FOREIGN_UID)


def _library_symlink(path: Path, monkeypatch) -> None:
    elsewhere = path.parent.parent / "elsewhere.so"
    shutil.copy(path, elsewhere)
    path.unlink()
    path.symlink_to(elsewhere)


@pytest.mark.parametrize("attack", [_tamper_library, _library_writable, _record_writable, _library_foreign,
                                    _record_missing, _record_rewritten_to_match, _library_symlink],
                         ids=lambda f: f.__name__.strip("_"))
def test_untrusted_cached_library_is_rebuilt(cache, attack, monkeypatch, caplog):
    path = native._build("double")
    good = path.read_bytes()
    attack(path, monkeypatch)
    assert native._build("double") == path
    assert cache.builds() == 2 and not path.is_symlink() and path.read_bytes() == good
    assert _mode(path) & 0o077 == 0 and os.stat(path).st_uid == os.getuid()
    assert (path.parent / (path.name + ".sha256")).read_text().strip() == _sha(path)
    assert "rebuilding the native kernel" in caplog.text


def test_real_kernel_built_and_run_from_a_private_folder(tmp_path):
    """End to end with the real compiler: a world-writable cache is refused and the kernel still runs."""
    if shutil.which(os.environ.get("HQNN_CC", "cc")) is None:
        pytest.skip("no C compiler")
    shared = tmp_path / "shared" / "kernels"
    shared.mkdir(parents=True)
    shared.chmod(0o777)
    temp = tmp_path / "tmp"
    temp.mkdir(mode=0o700)
    code = (
        "import torch; from hqnn.sim import run; from hqnn.sim.native import library, _cache_dir\n"
        "from hqnn.templates.recipes import rezk_qnn\n"
        "c = rezk_qnn(3); x, w = torch.rand(5, 3, dtype=torch.float64), torch.rand(6, dtype=torch.float64)\n"
        "assert library(torch.float64) is not None\n"
        "print(_cache_dir(), float((run(c, x, w, method='native') - run(c, x, w, method='gates')).abs().max()))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HQNN_CACHE_DIR": str(shared.parent), "TMPDIR": str(temp)})
    assert done.returncode == 0, done.stderr
    folder, error = done.stdout.split()
    assert Path(folder) == temp / f"hqnn-kernels-{os.getuid()}" and float(error) < 1e-12
    assert not list(shared.iterdir()) and "writable by group or others" in done.stderr
