"""Starts the daemon's parts, runs the meter's clock, and stops everything on SIGTERM.

Order at start: the certificate (the API cannot serve without one), the outbox, then the
listeners (a port in use is an error a person must see, before anything runs in the
background), then the threads. Order at stop: the watch first (no new state), one last cut
of what is due, the listeners, the sender thread, then a bounded flush of the outbox while
the hub answers; whatever is left stays in the outbox for the next start, and open intervals
continue then (their pods are still running, or their real end is in the API).
"""

from __future__ import annotations

import datetime as dt
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from worldland_cli import __version__
from worldland_cli.auth.certs import ensure_certificate
from worldland_cli.config import Config
from worldland_cli.daemon.api import NodeApi, Route
from worldland_cli.daemon.gpus import GpuMonitor
from worldland_cli.daemon.heartbeat import Heartbeat
from worldland_cli.daemon.hubaccess import CALL_TIMEOUT, HubAccess
from worldland_cli.daemon.logs import EventLog
from worldland_cli.daemon.meter import Meter
from worldland_cli.daemon.metrics import Sources, registry, serve
from worldland_cli.daemon.outbox import Outbox
from worldland_cli.daemon.podwatch import PodWatch
from worldland_cli.daemon.sender import Sender
from worldland_cli.daemon.settings import DaemonSettings
from worldland_cli.daemon.slices import settle_seconds
from worldland_cli.daemon.status import DaemonStatus
from worldland_cli.daemon.tls import ServerIdentity
from worldland_cli.errors import ActionableError
from worldland_cli.host import Host
from worldland_cli.times import format_time

SHUTDOWN_FLUSH_SECONDS = 10.0
TICK_MAX_WAIT = 5.0
JOIN_SECONDS = CALL_TIMEOUT + 2


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else format_time(dt.datetime.fromtimestamp(epoch, dt.UTC))


class Daemon:
    """The parts, wired; :meth:`run` blocks until ``stopping`` is set."""

    def __init__(self, cfg: Config, settings: DaemonSettings, host: Host, log: EventLog) -> None:
        self.settings = settings
        self.host = host
        self.log = log
        self.stopping = threading.Event()
        self.failed: str | None = None  # the part whose thread died, if one did
        self._wake = threading.Event()  # the meter's clock: a new interval, or stopping
        self.status = DaemonStatus(settings.node_id)
        self.access = HubAccess(settings.endpoint, settings.certs, cfg, settings.sign_in, host, log)
        if not host.exists(settings.certs.cert):
            ensure_certificate(
                settings.endpoint,
                settings.node_id,
                cert_dir=settings.certs.directory,
                token=self.access.token,
                host=host,
                retries=0,
                timeout=CALL_TIMEOUT,
            )
        self.identity = ServerIdentity(host, settings.certs)
        self.identity.current()  # a certificate it cannot serve with stops it here
        self.outbox = Outbox(host, settings.outbox_path, settings.node_id)
        self.sender = Sender(self.outbox, self.access, self.status, log)
        self.meter = Meter(
            self.outbox,
            price_per_sec_wei=settings.price_per_sec_wei,
            slice_seconds=settings.slice_seconds,
            log=log,
            on_queued=self.sender.poke,
            on_opened=self._wake.set,
        )
        self.watch = PodWatch(
            host,
            settings.kubeconfig,
            settings.node_name,
            self.meter,
            log,
            settle=settle_seconds(settings.slice_seconds),
        )
        self.heartbeat = Heartbeat(
            settings.node_id,
            self.access,
            self.status,
            log,
            interval=settings.heartbeat_seconds,
            on_hub_back=self.sender.poke,
        )
        self.gpus = GpuMonitor(host, log)
        routes: dict[str, Route] = {
            "/health": (False, self.health),
            "/v1/gpus": (True, self.gpus.to_json),
            "/v1/usage": (True, self.usage),
        }
        self.api = _listening(
            settings.listen, lambda: NodeApi(settings.listen, self.identity, routes, log)
        )
        self.metrics: Any = None
        if settings.metrics_listen is not None:
            reg = registry(
                Sources(
                    status=self.status,
                    outbox=self.outbox,
                    gpus=self.gpus,
                    hostname=host.hostname(),
                    open_intervals=lambda: len(self.meter.open_intervals()),
                    watch_connected=lambda: self.watch.state() == "watching",
                    relists=lambda: self.watch.relists,
                    certificate_expiry=lambda: self.identity.current().not_after.timestamp(),
                )
            )
            address = settings.metrics_listen
            self.metrics, _ = _listening(address, lambda: serve(reg, address))

    # ---------------------------------------------------------------------- documents

    def health(self) -> dict[str, Any]:
        now = time.time()
        status = self.status
        served = self.identity.current()
        depth = self.outbox.depth()
        watching = self.watch.state() == "watching"
        return {
            "ok": True,
            "status": "ok" if status.hub_reachable is not False and watching else "degraded",
            "version": __version__,
            "node_id": self.settings.node_id,
            "hub_reachable": status.hub_reachable,
            "last_heartbeat": _iso(status.last_heartbeat),
            "hub_error": status.last_hub_error,
            "certificate_not_after": format_time(served.not_after),
            "certificate_expires_in_s": int(served.not_after.timestamp() - now),
            "outbox_depth": depth.events,
            "outbox_refused": depth.refused,
            "outbox_oldest": _iso(depth.oldest_queued_at),
            "watch": self.watch.state(),
            "open_intervals": len(self.meter.open_intervals()),
            "uptime_s": int(now - status.started_at),
        }

    def usage(self) -> dict[str, Any]:
        depth = self.outbox.depth()
        return {
            "node_id": self.settings.node_id,
            "outbox_depth": depth.events,
            "outbox_refused": depth.refused,
            "billed_seconds_since_start": self.status.billed_seconds,
            **self.outbox.recent(),
        }

    # ------------------------------------------------------------------------ running

    def run(self) -> int:
        threads = [
            self._thread("api", lambda: self.api.serve_forever(poll_interval=0.5)),
            self._thread("watch", self.watch.run),
            self._thread("sender", lambda: self.sender.run(self.stopping)),
            self._thread("heartbeat", lambda: self.heartbeat.run(self.stopping)),
            self._thread("xid", lambda: self.gpus.listen(self.stopping)),
        ]
        for thread in threads:
            thread.start()
        self.log.info(
            "daemon.started",
            version=__version__,
            node_id=self.settings.node_id,
            hub=self.access.endpoint.url,
            listen=f"{self.settings.listen[0]}:{self.api.port}",
            metrics=None
            if self.metrics is None
            else f"{self.metrics.server_address[0]}:{self.metrics.server_address[1]}",
            node_name=self.settings.node_name,
            outbox=self.outbox.path,
            price_per_sec_wei=str(self.settings.price_per_sec_wei),
        )
        while not self.stopping.is_set():
            now = time.time()
            self.meter.tick(int(now), self.watch.current(now))
            upcoming = self.meter.next_cut()
            wait = TICK_MAX_WAIT if upcoming is None else min(TICK_MAX_WAIT, upcoming - now)
            self._wake.wait(max(0.2, wait))
            self._wake.clear()
        return self._stop(threads)

    def stop(self) -> None:
        """Ask :meth:`run` to stop (what SIGTERM does)."""
        self.stopping.set()
        self._wake.set()

    def _thread(self, name: str, target: Callable[[], object]) -> threading.Thread:
        """A part's thread. A part that dies of an unforeseen error stops the daemon with
        exit status 1, so that systemd (Restart=always) starts a whole one again, instead of
        a daemon that answers /health but no longer bills or beats."""

        def guarded() -> None:
            try:
                target()
            except Exception as e:
                self.log.error("daemon.part_failed", part=name, error=f"{type(e).__name__}: {e}")
                self.failed = name
                self.stop()

        return threading.Thread(target=guarded, name=f"worldland:{name}", daemon=True)

    def _stop(self, threads: list[threading.Thread]) -> int:
        self.log.info("daemon.stopping")
        now = time.time()
        current = self.watch.current(now)
        self.watch.stop()
        self.meter.tick(int(now), current)
        self.meter.stopping(int(now), current)
        self.api.shutdown()
        self.api.server_close()
        if self.metrics is not None:
            self.metrics.shutdown()
            self.metrics.server_close()
        self.sender.poke()
        for thread in threads:
            if thread.name in ("worldland:sender", "worldland:heartbeat"):
                thread.join(JOIN_SECONDS)
        flushed = self.sender.flush(time.time() + SHUTDOWN_FLUSH_SECONDS)
        depth = self.outbox.depth()
        self.log.info("daemon.stopped", outbox_flushed=flushed, outbox_depth=depth.events)
        self.outbox.close()
        self.access.close()
        return 0 if self.failed is None else 1


def _listening(address: tuple[str, int], bind: Callable[[], Any]) -> Any:
    """Bind a listener, or say in words why the port cannot be had."""
    try:
        return bind()
    except OSError as e:
        where = f"{address[0]}:{address[1]}"
        raise ActionableError(
            f"cannot listen on {where}: {e.strerror or e}",
            "is another worldland daemon running? `systemctl status worldland-node`; "
            "or choose another address with --listen / --metrics-listen",
        ) from None


def run_daemon(cfg: Config, settings: DaemonSettings, host: Host | None = None) -> int:
    """Run until SIGTERM or SIGINT; the exit status (0 after a clean stop, 1 when a part
    failed)."""
    log = EventLog(settings.verbose)
    daemon = Daemon(cfg, settings, host or Host(), log)
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: daemon.stop())
    return daemon.run()
