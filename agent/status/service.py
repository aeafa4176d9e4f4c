"""StatusService: the status part of `cctv-agent run`; feeds the systemd watchdog and sends heartbeats.

Two threads, each with its own agent.db connection: a monitor (about once a second: watchdog feeding,
change detection) and a sender (heartbeats every interval and on a change, retried with capped backoff).
Nothing here holds a lock or a database transaction across network I/O, so a slow, dead or failing
control room never delays recording or uploads; the other stages talk to it only through agent.db
and trigger(), which never blocks.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import deque
from collections.abc import Callable

from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential

from agent.clock import Clock, iso_utc
from agent.config import Config
from agent.db import connect, db_path
from agent.errors import TransientError
from agent.http import HttpClient
from agent.state import StateStore
from agent.status.heartbeat import MAX_ACKS, HeartbeatClient, Rejected, Unauthorized, build_payload, encode
from agent.status.instructions import ConfigVersion, HoldRange, Ping, ReleaseHold, UploadRange
from agent.status.liveness import Liveness, WatchdogFeeder
from agent.status.probes import Probes
from agent.status.sdnotify import Notifier
from agent.threads import Health, supervised
from protocol.times import parse_aware

log = logging.getLogger(__name__)

Instruction = UploadRange | ConfigVersion | Ping | HoldRange | ReleaseHold
UNAUTHORIZED_BACKOFF_S = 3600.0  # a wrong (not revoked) token: try again hourly, not every minute
BACKOFF_FIRST_S = 2.0


def auth_fingerprint(cfg: Config) -> str:
    """Identifies the (url, token) pair a revocation applies to; never the token itself."""
    token = cfg.status.token.get_secret_value() if cfg.status.token else ""
    return hashlib.sha256(f"{cfg.status.url}\0{token}".encode()).hexdigest()[:16]


class StatusService:
    """start() (sends READY=1: start it last), stop(), join(timeout); trigger(reason) sends soon.

    `on_instruction` is called from the sender thread for instructions the service cannot carry out
    itself (`upload_range`); it must only queue the work and return True once it is queued. It may
    also be set after construction (the runner wires it to the upload pipeline).
    """

    def __init__(
        self,
        cfg: Config,
        clock: Clock,
        *,
        probes: Probes | None = None,
        notifier: Notifier | None = None,
        on_instruction: Callable[[Instruction], bool] | None = None,
        session: HttpClient | None = None,
        tick_s: float = 1.0,
        min_gap_s: float = 5.0,
    ) -> None:
        self.cfg = cfg
        self._clock = clock
        self._probes = probes or Probes.from_config(cfg.status.gpsd, cfg.status.modem)
        self._notifier = notifier or Notifier()
        self.on_instruction = on_instruction
        self._session = session
        self._tick_s = tick_s
        self._min_gap_s = min_gap_s
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()  # guards _pending only
        self._pending: str | None = None
        self._threads: list[threading.Thread] = []
        self.feeder = WatchdogFeeder(self._notifier, Liveness(cfg, clock.monotonic()))
        # sender-thread state (persisted in the `status` component row)
        self._seq = 0
        self._acked: list[str] = []
        self._seen: deque[str] = deque(maxlen=256)
        self._last_attempt: float | None = None
        self._next_due: float | None = None
        self._info: dict[str, object] = {}
        self._blocked_until: float | None = None  # monotonic; in memory only (reboots reset it)
        self.passes = 0  # sender-loop decisions taken (send or stay silent): progress seen from outside

    # -- called from other threads -------------------------------------------------------------

    name = "status"

    def start(self) -> None:
        # a dead monitor starves the watchdog: systemd restarts us
        self._threads = [supervised(name, target) for name, target in
                         (("status-monitor", self._monitor_loop), ("status-sender", self._send_loop))]
        self._notifier.ready("running")

    def health(self) -> Health:
        dead = [t.name for t in self._threads if not t.is_alive()]
        if not self._threads or (dead and not self._stopping.is_set()):
            return Health(False, f"{', '.join(dead) or 'threads'} not running")
        return Health(True, str(self._info.get("last_error") or "running"))

    def stop(self) -> None:
        self._notifier.stopping()
        self._stopping.set()
        self._wake.set()

    def join(self, timeout: float | None = None) -> bool:
        for t in self._threads:
            t.join(timeout)
        return not any(t.is_alive() for t in self._threads)

    def trigger(self, reason: str = "change") -> None:
        """Ask for a heartbeat now (rate-limited to one per min_gap_s); never blocks."""
        with self._lock:
            if self._pending != "event":
                self._pending = reason
        self._wake.set()

    def apply_config(self, cfg: Config) -> None:
        """A reloaded config (reload.py); a new token or URL lifts a revocation."""
        old = self.feeder.liveness
        fresh = Liveness(cfg, old.started)
        fresh.seed(old)
        self.feeder.liveness = fresh
        self.cfg = cfg
        self.trigger("change")  # the control room sees the new config_version at once

    # -- monitor thread ---------------------------------------------------------------------

    def _monitor_loop(self) -> None:
        conn = connect(db_path(self.cfg.unit.data_dir))
        store = StateStore(conn, self._clock)
        last: tuple | None = None
        try:
            while not self._stopping.is_set():
                try:
                    states = store.read_all()
                    counters = store.counters()
                    self.feeder.tick(states, self._clock.monotonic())
                    last = self._detect_change(states, counters, last)
                except Exception:
                    log.exception("status monitor tick failed")
                self._stopping.wait(self._tick_s)
        finally:
            conn.close()

    def _detect_change(self, states: dict, counters: dict[str, int], last: tuple | None) -> tuple:
        def field(component: str, key: str) -> object:
            row = states.get(component)
            return row.state.get(key) if row is not None else None

        disk = self._probes.disk(self.cfg.unit.data_dir)
        alarm = bool(disk and disk["total_bytes"] and
                     100.0 * disk["free_bytes"] / disk["total_bytes"] < self.cfg.retention.min_free_percent)
        now = (field("camera", "state"), field("recording", "state"), alarm, counters.get("events_lost", 0),
               field("motion", "last_event_at"))
        if last is not None:
            # a stage appearing for the first time (None -> state) is start-up, not a change
            changed = [i for i, (a, b) in enumerate(zip(last, now, strict=True))
                       if a != b and not (i < 2 and a is None)]
            if changed:
                self.trigger("event" if changed == [4] else "change")
        return now

    # -- sender thread ----------------------------------------------------------------------

    def _send_loop(self) -> None:
        conn = connect(db_path(self.cfg.unit.data_dir))
        store = StateStore(conn, self._clock)
        self._restore(store)
        client_cfg = None
        client: HeartbeatClient | None = None
        try:
            while not self._stopping.is_set():
                cfg = self.cfg
                if client is None or client_cfg is not cfg:
                    if client is not None:
                        client.close()
                    client, client_cfg = HeartbeatClient(cfg.status, cfg.unit.id, self._session), cfg
                reason = self._due(cfg)
                self.passes += 1
                if reason is None:
                    self._wake.wait(self._tick_s)
                    self._wake.clear()
                    continue
                self._cycle(store, client, cfg, reason)
        finally:
            if client is not None:
                client.close()
            conn.close()

    def _restore(self, store: StateStore) -> None:
        row = store.read("status")
        if row is None:
            return
        self._info = dict(row.state)
        self._seq = int(row.state.get("seq") or 0)
        self._acked = [str(a) for a in row.state.get("acked") or []][:64]

    def _due(self, cfg: Config) -> str | None:
        if not (cfg.status.enabled and cfg.status.url):
            return None
        if self._info.get("revoked") and self._info.get("auth") == auth_fingerprint(cfg):
            return None  # revoked: silent until the token or URL changes
        now = self._clock.monotonic()
        if self._blocked_until is not None:
            if now < self._blocked_until and self._info.get("auth") == auth_fingerprint(cfg):
                return None
            self._blocked_until = None
        if self._next_due is None:
            return "startup"
        with self._lock:
            pending = self._pending
        if pending and (self._last_attempt is None or now - self._last_attempt >= self._min_gap_s):
            return pending
        return "interval" if now >= self._next_due else None

    def _take_pending(self, default: str) -> str:
        with self._lock:
            reason, self._pending = self._pending, None
        return reason or default

    def _cycle(self, store: StateStore, client: HeartbeatClient, cfg: Config, reason: str) -> None:
        started = self._clock.monotonic()
        retrying = Retrying(
            retry=retry_if_exception_type(TransientError),
            wait=wait_exponential(multiplier=BACKOFF_FIRST_S, max=cfg.status.interval_s),
            stop=lambda _state: self._stopping.is_set(),
            sleep=self._pause,
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    self._attempt(store, client, cfg, self._take_pending(reason))
        except TransientError:
            pass  # stopping
        except Unauthorized as err:
            self._refused(store, cfg, err)
        except Rejected as err:
            log.warning("%s", err)
            self._info.update(last_error=str(err), failures=int(self._info.get("failures") or 0) + 1)
            self._save(store)
        except Exception:
            log.exception("heartbeat failed")
        # the next one is due an interval after this one began, or after the last try of a long outage
        self._next_due = max(started, self._last_attempt or started) + cfg.status.interval_s

    def _log_retry(self, state: RetryCallState) -> None:
        if state.attempt_number in (1, 5) or state.attempt_number % 30 == 0:
            err = state.outcome.exception() if state.outcome else None
            log.warning("heartbeat not delivered (attempt %d): %s; retrying with backoff",
                        state.attempt_number, err)

    def _pause(self, seconds: float) -> None:
        """Backoff sleep on the injected clock, cut short by stop()."""
        deadline = self._clock.monotonic() + seconds
        while not self._stopping.is_set():
            left = deadline - self._clock.monotonic()
            if left <= 0:
                return
            self._stopping.wait(min(self._tick_s, left))

    def _attempt(self, store: StateStore, client: HeartbeatClient, cfg: Config, reason: str) -> None:
        acked = self._acked[:MAX_ACKS]
        payload = build_payload(cfg, store.read_all(), store.counters(), self._probes, self._clock,
                                seq=self._seq, reason=reason, acked=acked)
        self._seq += 1
        self._last_attempt = self._clock.monotonic()
        self._info.update(seq=self._seq, last_attempt_at=iso_utc(self._clock.time()))
        try:
            reply = client.post(encode(payload))
        except TransientError as err:
            self._info.update(last_error=str(err), failures=int(self._info.get("failures") or 0) + 1)
            self._save(store)
            raise
        self._acked = self._acked[len(acked):]
        for instruction in reply.instructions:
            self._carry_out(instruction, cfg)
        offset = None
        if reply.server_time:
            offset = round(self._clock.time() - _epoch(reply.server_time), 3)
        self._info.update(last_sent_at=iso_utc(self._clock.time()), last_error=None, failures=0,
                          revoked=False, server_offset_s=offset,
                          auth=auth_fingerprint(cfg))
        self._save(store)

    def _save(self, store: StateStore) -> None:
        store.report("status", **(self._info | {"acked": self._acked}))

    def _refused(self, store: StateStore, cfg: Config, err: Unauthorized) -> None:
        self._info.update(last_error=str(err), auth=auth_fingerprint(cfg), revoked=err.revoked)
        if err.revoked:
            log.error("control room says this unit is revoked: heartbeats stop until the token changes")
            self._notifier.status("revoked by the control room; heartbeats stopped")
        else:
            log.error("%s; next try in %.0f s", err, UNAUTHORIZED_BACKOFF_S)
            self._blocked_until = self._clock.monotonic() + UNAUTHORIZED_BACKOFF_S
        self._save(store)

    def _carry_out(self, instruction: Instruction, cfg: Config) -> None:
        if instruction.id in self._seen:
            return
        done = True
        if isinstance(instruction, ConfigVersion):
            mine = cfg.status.config_version
            if instruction.version != mine:
                log.warning("config version mismatch: control room expects %r, unit has %r",
                            instruction.version, mine)
            self._info["config_version_expected"] = instruction.version
        elif isinstance(instruction, UploadRange | HoldRange | ReleaseHold):
            done = self._hand_over(instruction)
        if done:
            self._seen.append(instruction.id)
            self._acked.append(instruction.id)

    def _hand_over(self, instruction: UploadRange | HoldRange | ReleaseHold) -> bool:
        if self.on_instruction is None:
            log.warning("instruction %s (%s) not carried out: no upload pipeline attached",
                        instruction.id, instruction.type)
            return False
        try:
            return bool(self.on_instruction(instruction))
        except Exception:
            log.exception("instruction %s could not be handed over", instruction.id)
            return False


def _epoch(text: str) -> float:
    return parse_aware(text).timestamp()
