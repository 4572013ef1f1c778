"""celebref.lock: one run per output folder; a stale lock (dead owner on this host) is taken over with a message;
a takeover waits for the dead run's worker processes; locks from other hosts are never taken over."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from celebref.errors import ConfigError
from celebref.lock import LOCK_NAME, WORKER_ENV, WORKERS_NAME, FolderLock, lock_folder, read_owner

fcntl = pytest.importorskip("fcntl", reason="flock-based parts of the lock are POSIX only")


def _holder(folder: Path, command: str = "celebref degrade --seed 1", extra: str = "") -> subprocess.Popen:
    """A process that holds the lock on ``folder`` until its stdin closes; returns once it holds it."""
    script = textwrap.dedent(f"""
        import sys
        from celebref.lock import lock_folder
        with lock_folder({str(folder)!r}, command={command!r}):
            {extra or 'pass'}
            print("locked", flush=True)
            sys.stdin.read()
    """)
    p = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "locked"
    return p


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _write_lock(folder: Path, **fields) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    data = {"pid": fields.pop("pid"), "host": fields.pop("host", socket.gethostname()), "command": "celebref degrade",
            "started": "2024-01-01T00:00:00+00:00", **fields}
    (folder / LOCK_NAME).write_text(json.dumps(data))


def test_lock_records_its_owner_and_is_removed_on_release(tmp_path):
    out = tmp_path / "out"
    with lock_folder(out, command="celebref degrade --out x") as lock:
        owner = read_owner(out)
        assert owner.pid == os.getpid() and owner.host == socket.gethostname()
        assert owner.command == "celebref degrade --out x" and owner.started.endswith("+00:00")
        assert str(out / WORKERS_NAME) in os.environ[WORKER_ENV]
        with lock_folder(out):  # re-entrant in one process
            assert lock.held
        assert (out / LOCK_NAME).exists()
    assert not (out / LOCK_NAME).exists() and WORKER_ENV not in os.environ


def test_a_second_live_run_gets_a_clear_error_naming_the_owner(tmp_path):
    out = tmp_path / "out"
    holder = _holder(out)
    try:
        with pytest.raises(ConfigError) as e:
            with lock_folder(out, command="celebref degrade --seed 2"):
                pass
        msg = str(e.value)
        assert "in use by another celebref run" in msg and f"pid {holder.pid}" in msg and "--seed 1" in msg
        assert read_owner(out).pid == holder.pid  # the owner's lock is untouched
    finally:
        holder.stdin.close()
        holder.wait(30)
    assert not (out / LOCK_NAME).exists()
    with lock_folder(out):  # free again
        pass


def test_a_stale_lock_of_a_dead_process_is_taken_over_with_a_message(tmp_path, capfd):
    out = tmp_path / "out"
    dead = _dead_pid()
    _write_lock(out, pid=dead)
    with lock_folder(out, command="rerun"):
        assert read_owner(out).pid == os.getpid() and read_owner(out).command == "rerun"
    err = capfd.readouterr().err
    assert "taking over the stale lock" in err and f"pid {dead}" in err and len(err.strip().splitlines()) == 1


def test_a_reused_pid_does_not_keep_a_lock_alive(tmp_path, capfd):
    """The pid of the lock's owner now belongs to another process (other start time): the lock is stale."""
    out = tmp_path / "out"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _write_lock(out, pid=other.pid, pid_start="1")
        with lock_folder(out):
            pass
        assert "taking over the stale lock" in capfd.readouterr().err
    finally:
        other.kill()
        other.wait()


def test_a_lock_from_another_host_is_never_taken_over(tmp_path):
    out = tmp_path / "out"
    _write_lock(out, pid=_dead_pid(), host="elsewhere.example")
    with pytest.raises(ConfigError, match="another host.*delete"):
        with lock_folder(out):
            pass
    assert read_owner(out).host == "elsewhere.example"


def test_a_takeover_waits_for_the_dead_runs_workers(tmp_path):
    """A worker of the dead owner still holds the workers file: the takeover waits for it to exit (or fails)."""
    out = tmp_path / "out"
    out.mkdir()
    _write_lock(out, pid=_dead_pid())
    script = textwrap.dedent(f"""
        import os, sys, time
        os.environ[{WORKER_ENV!r}] = {str(out / WORKERS_NAME)!r}
        from celebref.lock import hold_worker_locks
        hold_worker_locks()
        print("held", flush=True)
        time.sleep(float(sys.argv[1]))
        open(sys.argv[2], "w").close()  # written before exiting (and releasing the workers file)
    """)
    worker = subprocess.Popen([sys.executable, "-c", script, "60", str(tmp_path / "never")], stdout=subprocess.PIPE, text=True)
    try:
        assert worker.stdout.readline().strip() == "held"
        with pytest.raises(ConfigError, match="worker processes .* still run"):
            FolderLock(out, worker_wait_s=0.3).acquire()
    finally:
        worker.kill()
        worker.wait()
    worker = subprocess.Popen([sys.executable, "-c", script, "0.5", str(tmp_path / "exited")], stdout=subprocess.PIPE, text=True)
    assert worker.stdout.readline().strip() == "held"
    lock = FolderLock(out, worker_wait_s=60).acquire()
    try:
        assert (tmp_path / "exited").exists()  # the takeover happened only after the worker had finished
    finally:
        lock.release()
        worker.wait()
