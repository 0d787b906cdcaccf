"""The client's settings: its version, the default server, the environment variables it reads
through :func:`env`, and the tunables (timeouts, sizes, intervals) of the other modules.

Every module reads a tunable as ``_settings.NAME`` when it needs it, never a copy taken at
import time, so one assignment here (``mock.patch.object(hyperdial._settings, ...)`` in the
tests) changes it for the whole package.
"""

import os

__version__ = "0.1.0"

#: The server used when ``HYPERDIAL_SERVER`` is not set.
DEFAULT_SERVER = "http://127.0.0.1:8337"

# Metrics of a run (see _run.Run).
FLUSH_INTERVAL = 0.5  # seconds between two flushes while points arrive
FLUSH_POINTS = 200  # flush at once when this many points are buffered
MAX_BUFFER = 100000  # points kept in memory while the server is away; the oldest spill first
BATCH_POINTS = 1000  # points per request at most
#: The API's one request-size limit in bytes (docs/api.md): the server's MAX_BODY_BYTES and the
#: agent's MAX_REQUEST_BYTES. Every request body of this client stays at or below it.
MAX_REQUEST_BYTES = 8 * 1024 * 1024
DEFAULT_RETRY_SECONDS = 60.0  # the retry window when HYPERDIAL_RETRY_SECONDS is not set
TERM_FLUSH_SECONDS = 5.0  # seconds finish() waits for the server after SIGTERM, then spills
# seconds finish() waits for a server that does not answer, under an agent with a spill
# directory, before it spills and lets the process end: the agent uploads the file itself
# (waiting for the server) and dates the run's end by the process's exit, so a longer wait
# would only stretch the run
AGENT_HANDOVER_SECONDS = 2.0
REQUEST_TIMEOUT = 5.0  # seconds, for one small request (1 s more per 256 KiB of body)
PROBE_TIMEOUT = 0.5  # seconds, for the request that looks for a server
# seconds init() waits for a server that is up but failing (5xx, or no answer in time: its
# database down or busy) before it logs offline, when HYPERDIAL_INIT_TIMEOUT is not set
DEFAULT_INIT_WAIT = 30.0
# seconds ``init(id=, resume=)`` waits for a run another process was still writing to (the
# server refuses it until it has been silent for its run timeout, 60 s by default)
RESUME_WAIT = 120.0
RETRY_DELAYS = (0.25, 0.75)  # sleeps between the attempts of one delivery
BACKOFF_MAX = 30.0  # seconds at most between two flush attempts while the server is down
HEARTBEAT_INTERVAL = 5.0  # seconds of silence before a heartbeat (server mode only)
GIT_TIMEOUT = 2.0  # seconds per git command

# Reading a run's history back (see _history).
HISTORY_TIMEOUT = 120.0  # seconds for one page of a history read (up to about 20 MB)
HISTORY_PAGE_STEPS = None  # steps per answer of a history() read; None: the server's cap

# Ask/tell (see _sweep) and finding a server (see _local_server).
ASK_TIMEOUT = 300.0  # seconds ask() waits while the server answers 204 (nothing startable yet)
ASK_BACKOFF = (0.05, 2.0)  # first and longest sleep between two claims answered 204 at once
ASK_WAIT = 20.0  # seconds a claim may be held open by the server (its long poll, wait_ms)
ASK_NOTE_AFTER = 10.0  # seconds ask() waits before saying why on standard error
CONNECT_SECONDS = 1.5  # seconds Sweep.create/get look for a named server before giving up
LOCAL_START_SECONDS = 20.0  # seconds a local server may take to start
# seconds a sweep call is retried while the server is unreachable or answers 5xx; None: the
# retry window (retry_seconds(), HYPERDIAL_RETRY_SECONDS or 60)
CALL_RETRY_FOR = None
TRIAL_HEARTBEAT = 5.0  # seconds of silence before an open trial gets a heartbeat
# seconds heartbeats may fail in a row before standard error says so (the server's run
# timeout, 60 s by default, crashes a trial it hears nothing from)
HEARTBEAT_WARN_AFTER = 15.0


def env(name, default=None):
    """The environment variable ``name``, or ``default`` when it is unset or blank."""
    value = os.environ.get(name, "")
    return value if value.strip() else default


def retry_seconds():
    """The retry window: ``HYPERDIAL_RETRY_SECONDS`` (seconds, > 0), else 60."""
    try:
        value = float(env("HYPERDIAL_RETRY_SECONDS", ""))
    except ValueError:
        return DEFAULT_RETRY_SECONDS
    if not (0 < value < 1e9):
        return DEFAULT_RETRY_SECONDS
    return max(0.1, value)


def init_wait_seconds():
    """How long ``init()`` waits for a server that accepted the connection but failed:
    ``HYPERDIAL_INIT_TIMEOUT`` (seconds, >= 0; 0 logs offline at once), else 30."""
    try:
        value = float(env("HYPERDIAL_INIT_TIMEOUT", ""))
    except ValueError:
        return DEFAULT_INIT_WAIT
    if not (0 <= value < 1e9):
        return DEFAULT_INIT_WAIT
    return value


def call_retry_seconds():
    """How long one ask/tell or read call is retried: ``CALL_RETRY_FOR`` when set (tests),
    else the retry window of :func:`retry_seconds`."""
    return CALL_RETRY_FOR if CALL_RETRY_FOR is not None else retry_seconds()
