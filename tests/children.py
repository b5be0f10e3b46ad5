"""Child processes for the tests, forked from a warm interpreter instead of started from nothing.

The process tests (recovery, ownership, realtime jobs, …) run a short script as a user's kernel
would, often killing it with SIGKILL at a crash point, several times per test. Each fresh
``python -c`` spends 1–2 s of CPU importing anthropic, pandas and batchkit before the script's first
line: about a third of the suite's CPU. Here one server process per test session imports them
once and forks a child for each script. The child is still a separate process with its own PID,
SQLite connections, threads and exit: ``BATCHKIT_CRASH_AT`` kills it with a real SIGKILL, another
process's lease sees it alive or dead, and a normal end runs the interpreter's own shutdown
(non-daemon threads joined, ``atexit`` handlers, buffers flushed), as ``python -c`` does. It
gets the environment, working directory, ``sys.argv`` and standard streams it is given, a fresh
``__main__`` and freshly seeded ``random`` state.

What it does not repeat is the import of those modules, so a test about importing (which modules
an import pulls in, warnings at import time) must start a fresh interpreter, and does. With
``BATCHKIT_TEST_FRESH_CHILDREN=1`` every child is a fresh ``python -c`` again.

Run as a script, this file is the server; :func:`start` and :func:`run` are the tests' side.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PRELOAD = ("anthropic", "pandas", "batchkit")
FRESH = "BATCHKIT_TEST_FRESH_CHILDREN"


# --------------------------------------------------------------------------- the server


def _serve(path: str) -> dict[str, Any]:
    """Import the heavy modules, then fork a child per request; returns only in a child."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # no BLAS threads alive across fork()
    for name in PRELOAD:
        __import__(name)
    assert threading.active_count() == 1, "a preloaded module started a thread: fork() is unsafe"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    print("READY", flush=True)
    waiting: dict[int, socket.socket] = {}  # child pid → the connection its status goes to
    while True:
        ready, _, _ = select.select([listener, sys.stdin], [], [], 0.01)
        while waiting:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            conn = waiting.pop(pid)
            conn.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
            conn.close()
        if sys.stdin in ready and not sys.stdin.buffer.read1(1):  # the test session ended
            os._exit(0)
        if listener not in ready:
            continue
        conn, _ = listener.accept()
        message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
        pid = os.fork()
        if pid == 0:
            listener.close()
            conn.close()
            for other in waiting.values():
                other.close()
            for target, fd in enumerate(fds):
                os.dup2(fd, target)
                os.close(fd)
            return json.loads(message)
        for fd in fds:
            os.close(fd)
        conn.sendall(f"{pid}\n".encode())
        waiting[pid] = conn


def _become(request: dict[str, Any]) -> dict[str, Any]:
    """Turn the forked child into ``python -c code args…`` in the given place; returns its globals."""
    import random
    import types

    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 - the child's standard input, for its whole life
    sys.argv = ["-c", *request["args"]]
    sys.path[0] = ""
    random.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    main = types.ModuleType("__main__")
    sys.modules["__main__"] = main
    return main.__dict__


# --------------------------------------------------------------------------- the tests' side

_server: dict[str, Any] = {}
_lock = threading.Lock()


def _address() -> str:
    """The server's socket, started on first use (one per test process, so per xdist worker)."""
    with _lock:
        if _server.get("proc") is not None and _server["proc"].poll() is None:
            return str(_server["path"])
        import tempfile

        folder = tempfile.mkdtemp(prefix="batchkit-children-")
        path = os.path.join(folder, "s")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "BATCHKIT_"))}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        proc = subprocess.Popen(
            [sys.executable, __file__, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=folder
        )
        assert proc.stdout is not None and proc.stdout.readline() == b"READY\n", "the children's server did not start"
        _server.update(proc=proc, path=path)
        return path


def stop() -> None:
    """End the server (at the end of the test session)."""
    proc = _server.pop("proc", None)
    if proc is not None:
        proc.stdin.close()
        proc.wait(timeout=30)
        proc.stdout.close()
        shutil.rmtree(os.path.dirname(_server.pop("path")), ignore_errors=True)


class Child:
    """A script running in a forked child: the parts of :class:`subprocess.Popen` the tests use
    (``pid``, ``stdout``, ``stderr`` as text, ``poll``, ``wait``, ``communicate``, ``kill``,
    ``send_signal``, ``returncode``)."""

    def __init__(self, code: str, args: tuple[str, ...], env: dict[str, str], cwd: str | os.PathLike[str] | None):
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        null = os.open(os.devnull, os.O_RDONLY)
        self._conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._conn.connect(_address())
        request = {"code": code, "args": list(args), "env": env, "cwd": str(cwd or os.getcwd())}
        socket.send_fds(self._conn, [json.dumps(request).encode()], [null, out_w, err_w])
        for fd in (null, out_w, err_w):
            os.close(fd)
        self._replies = self._conn.makefile("r")
        self.pid = int(self._replies.readline())
        self.stdout = open(out_r, encoding="utf-8")  # noqa: SIM115 - closed by communicate()
        self.stderr = open(err_r, encoding="utf-8")  # noqa: SIM115
        self.returncode: int | None = None
        self.args = ["-c", code, *args]

    def poll(self) -> int | None:
        if self.returncode is None and self._ready(0):
            self._finish()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            if not self._ready(timeout):
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
            self._finish()
        assert self.returncode is not None
        return self.returncode

    def _ready(self, timeout: float | None) -> bool:
        """Whether the exit status has arrived (``poll``, not ``select``: a test process may hold
        more than 1,024 descriptors)."""
        waiter = select.poll()
        waiter.register(self._conn, select.POLLIN)
        return bool(waiter.poll(None if timeout is None else timeout * 1000))

    def _finish(self) -> None:
        self.returncode = int(self._replies.readline())
        self._replies.close()
        self._conn.close()

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        """Read both streams to their end, then wait for the exit (as ``Popen.communicate``)."""
        got: dict[str, str] = {}
        readers = [
            threading.Thread(target=lambda n=name, f=f: got.__setitem__(n, f.read()), daemon=True)
            for name, f in (("out", self.stdout), ("err", self.stderr))
        ]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join(timeout)
            if reader.is_alive():
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
        try:
            self.wait(timeout)
        finally:
            self.stdout.close()
            self.stderr.close()
        return got["out"], got["err"]

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


def start(code: str, *args: str, env: dict[str, str], cwd: str | os.PathLike[str] | None = None) -> Any:
    """Start ``python -c code args…`` with ``env``: forked from the warm server, or — with
    ``BATCHKIT_TEST_FRESH_CHILDREN=1`` — a fresh interpreter (a :class:`subprocess.Popen`)."""
    if os.environ.get(FRESH) == "1":
        return subprocess.Popen(
            [sys.executable, "-c", code, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=cwd,
        )
    return Child(code, args, env, cwd)


def run(
    code: str, *args: str, env: dict[str, str], timeout: float, cwd: str | os.PathLike[str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -c code args…`` to its end, as ``subprocess.run(..., capture_output=True, text=True)``."""
    child = start(code, *args, env=env, cwd=cwd)
    try:
        out, err = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        raise
    return subprocess.CompletedProcess(child.args, child.wait(), out, err)


if __name__ == "__main__":
    _request = _serve(sys.argv[1])
    exec(compile(_request["code"], "<string>", "exec"), _become(_request))
