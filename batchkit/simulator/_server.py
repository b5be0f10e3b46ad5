"""Serving the simulator over real HTTP: in a background thread (:func:`serve`) or as a
separate process (:func:`spawn`).

The HTTP server (:mod:`._http`) is one asyncio event loop in one thread: HTTP/1.1 keep-alive,
a request's simulated latency a timer rather than a sleeping thread, quick calls (messages,
token counts, models) answered on the loop and the rest (batches, control endpoints, anything
that may take long) on worker threads, and one thing a generic WSGI server cannot do: drop a
connection on purpose (mid-body for results) when a fault says so. It binds loopback
addresses only.

Every request gets an HTTP answer in the API's error shape, however malformed: a
``Content-Length`` that is not a whole number (or two that disagree) is a 400, a chunked body a
411, a body that stops arriving a 408, a bad request line or oversized headers the stdlib's
status — each then closes the connection, since where the next request starts is unknown.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from ._config import Faults, Processing
from ._http import HTTPServer
from ._simulator import SIM_API_KEY, Simulator

if TYPE_CHECKING:
    import anthropic

__all__ = ["LOOPBACK", "Server", "SpawnedSimulator", "serve", "spawn"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")
READY_PREFIX = "batchkit simulator listening on "


def _check_loopback(host: str) -> None:
    if host not in LOOPBACK:
        raise ValueError(f"the simulator binds loopback addresses only ({', '.join(LOOPBACK)}), not {host!r}")


class _OverHTTP:
    """SDK clients for a simulator reached over real HTTP at ``base_url``."""

    base_url: str
    api_key: str = SIM_API_KEY

    def client(self, **kwargs: Any) -> anthropic.Anthropic:
        """A sync SDK client over real HTTP to this simulator."""
        kwargs.setdefault("api_key", self.api_key)
        kwargs.setdefault("base_url", self.base_url)
        import anthropic  # only here: a served simulator's process never needs the SDK

        return anthropic.Anthropic(**kwargs)

    def async_client(self, **kwargs: Any) -> anthropic.AsyncAnthropic:
        """An async SDK client over real HTTP to this simulator."""
        kwargs.setdefault("api_key", self.api_key)
        kwargs.setdefault("base_url", self.base_url)
        import anthropic

        return anthropic.AsyncAnthropic(**kwargs)


class Server(_OverHTTP):
    """A :class:`Simulator` served over HTTP on loopback from a background thread.

    Use :func:`serve` to make one. ``base_url`` is ``http://127.0.0.1:PORT``.
    """

    def __init__(self, simulator: Simulator, *, host: str = "127.0.0.1", port: int = 0) -> None:
        _check_loopback(host)
        self.simulator = simulator
        self.stop: Callable[[], None] = self.close
        """Stop serving (:func:`batchkit.start_simulator` also restores the default client)."""
        self._http = HTTPServer(simulator.wsgi_app, host, port, name=f"batchkit-sim:{port}")
        self.host = host
        self.port = self._http.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        self.base_url = f"http://{shown}:{self.port}"
        # Served, batches are worked through in the background as they come due (in process,
        # lazily, when the next request arrives): a client's next create need not wait.
        simulator.engine.start_worker()

    def stats(self) -> dict[str, Any]:
        return self.simulator.stats()

    def advance(self, seconds: float) -> None:
        self.simulator.advance(seconds)

    def close(self) -> None:
        """Stop serving and release the port (idempotent)."""
        self._http.close()
        self.simulator.engine.stop_worker()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve(simulator: Simulator, *, host: str = "127.0.0.1", port: int = 0) -> Server:
    """Serve ``simulator`` over HTTP on loopback in a background thread.

    The returned :class:`Server` is already running; use it as a context manager (or call
    ``close()``) to stop it.

    >>> with serve(Simulator(), port=0) as server:      # doctest: +SKIP
    ...     client = server.client()
    """
    return Server(simulator, host=host, port=port)


# --------------------------------------------------------------------------- spawn


def _rates(mapping: dict[Any, float]) -> str:
    return ",".join(f"{k}={v:g}" for k, v in mapping.items() if v)


def _schedule_arg(faults: Faults) -> str:
    entries = []
    for target, nth, action in faults.schedule:
        nths = [nth] if isinstance(nth, int) else list(nth)
        entries.append(f"{target}:{'/'.join(str(n) for n in nths)}:{action}")
    return ";".join(entries)


def cli_args(processing: Processing | None = None, faults: Faults | None = None) -> list[str]:
    """Command-line flags that reproduce ``processing`` and ``faults``."""
    args: list[str] = []
    if processing is not None:
        args += [
            "--fixed-latency",
            repr(processing.fixed_latency),
            "--per-request",
            repr(processing.per_request),
            "--concurrency",
            str(processing.concurrency),
            "--cancel-latency",
            repr(processing.cancel_latency),
        ]
    if faults is not None:
        if faults.errored_rate:
            args += ["--errored-rate", _rates(dict(faults.errored_rate))]
        if faults.expired_rate:
            args += ["--expired-rate", repr(faults.expired_rate)]
        if faults.http_error_rate:
            args += ["--http-error-rate", _rates(dict(faults.http_error_rate))]
        if faults.drop_results_rate:
            args += ["--drop-results-rate", repr(faults.drop_results_rate)]
        if faults.slow:
            args += ["--slow", repr(faults.slow)]
        if faults.rpm is not None:
            args += ["--rpm", str(faults.rpm)]
        if faults.tpm is not None:
            args += ["--tpm", str(faults.tpm)]
        args += ["--retry-after", "none" if faults.retry_after is None else repr(faults.retry_after)]
        if faults.schedule:
            args += ["--fault-schedule", _schedule_arg(faults)]
        if faults.overloaded_bursts is not None:
            period, length = faults.overloaded_bursts
            args += ["--overloaded-bursts", f"{period!r}:{length!r}"]
    return args


class SpawnedSimulator(_OverHTTP):
    """A simulator running as a separate process (``python -m batchkit.simulator``)."""

    def __init__(self, argv: list[str], env: dict[str, str], startup_timeout: float) -> None:
        if "--api-key" in argv[:-1]:  # the child accepts only the keys given: use the first
            self.api_key = argv[argv.index("--api-key") + 1]
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, env=env, text=True)
        self.pid = self.process.pid
        lines: queue.Queue[str] = queue.Queue()
        stdout = self.process.stdout
        assert stdout is not None

        def pump() -> None:
            for line in stdout:
                lines.put(line)
            lines.put("")

        self._reader = threading.Thread(target=pump, daemon=True)
        self._reader.start()
        try:
            first = lines.get(timeout=startup_timeout)
        except queue.Empty:
            self.close()
            raise RuntimeError(f"the simulator did not start within {startup_timeout} s") from None
        if not first.startswith(READY_PREFIX):
            code = self.process.wait(timeout=10)
            self.close()
            raise RuntimeError(f"the simulator failed to start (exit code {code}): {first!r}")
        self.base_url = first[len(READY_PREFIX) :].strip()
        import urllib.request  # only here: a served simulator's process never needs it

        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _control(self, method: str, path: str, body: dict | None = None) -> Any:
        import urllib.request

        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"content-type": "application/json", "x-api-key": self.api_key},
        )
        with self._opener.open(request, timeout=30) as response:
            return json.loads(response.read())

    def stats(self, *, catch_up: bool = True) -> dict[str, Any]:
        """The child's stats (``GET /_sim/stats``; see :meth:`Simulator.stats`)."""
        return self._control("GET", "/_sim/stats" + ("" if catch_up else "?catch_up=0"))

    def advance(self, seconds: float) -> None:
        """Advance the child's simulated clock (``POST /_sim/clock/advance``)."""
        self._control("POST", "/_sim/clock/advance", {"seconds": seconds})

    def reset_stats(self) -> None:
        self._control("POST", "/_sim/reset-stats", {})

    def close(self) -> None:
        """Stop the process: SIGTERM, then SIGKILL after 10 s (idempotent)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self._reader.join(timeout=5)
            self.process.stdout.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def spawn(
    *,
    port: int = 0,
    host: str = "127.0.0.1",
    time_scale: float = 1.0,
    seed: int = 0,
    processing: Processing | None = None,
    faults: Faults | None = None,
    responder: str | None = None,
    extra_args: list[str] | tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    startup_timeout: float = 30.0,
) -> SpawnedSimulator:
    """Start the simulator's CLI as a separate process and wait until it listens.

    The child runs exactly what ``python -m batchkit.simulator`` runs, but without importing
    the rest of batchkit (see ``_BOOT``); a ``--responder`` module must therefore not need
    ``import batchkit`` itself.

    Args:
        port: port to bind (0 → a free one; read ``.base_url``).
        host: a loopback address.
        time_scale, seed: as in :class:`SimConfig`.
        processing, faults: turned into the equivalent command-line flags.
        responder: ``"module:function"`` importable in the child.
        extra_args: more command-line flags (e.g. ``["--cache-miss-rate", "0.1"]``).
        env: the child's environment (default: this one).
        startup_timeout: seconds to wait for the "listening on" line.

    Returns:
        A :class:`SpawnedSimulator`; use it as a context manager to stop the process.
    """
    _check_loopback(host)
    package_dir = str(Path(__file__).resolve().parents[1])
    argv = [
        sys.executable,
        "-c",
        _BOOT,
        package_dir,
        "--port",
        str(port),
        "--host",
        host,
        "--time-scale",
        repr(float(time_scale)),
        "--seed",
        str(seed),
    ]
    argv += cli_args(processing, faults)
    if responder is not None:
        argv += ["--responder", responder]
    argv += list(extra_args)
    child_env = dict(os.environ if env is None else env)
    return SpawnedSimulator(argv, child_env, startup_timeout)


# Runs ``python -m batchkit.simulator`` without executing ``batchkit/__init__.py``: the simulator
# imports nothing from the client side, so the child skips pandas & co. (it starts in a fraction
# of the time) and works whatever state the rest of the package is in. A placeholder package
# module whose ``__path__`` is the real directory is enough for the import system.
_BOOT = """\
import runpy, sys, types
package = types.ModuleType("batchkit")
package.__path__ = [sys.argv.pop(1)]
sys.modules["batchkit"] = package
runpy.run_module("batchkit.simulator", run_name="__main__", alter_sys=True)
"""
