"""Run and sweep states of the hyperdial API, generated from the Rust definitions
(crates/wire). Do not edit: refresh with `UPDATE_WIRE=1 cargo test -p hyperdial-server --test generated`."""


class RunState:
    """The states of a run."""

    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    CRASHED = "crashed"
    STOPPED_EARLY = "stopped_early"
    CANCELLED = "cancelled"


class SweepState:
    """The states of a sweep."""

    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"
    CANCELLED = "cancelled"


#: Every run state, in lifecycle order.
RUN_STATES = ("queued", "running", "finished", "failed", "crashed", "stopped_early", "cancelled")
#: The states a run can end in.
TERMINAL_RUN_STATES = ("finished", "failed", "crashed", "stopped_early", "cancelled")
#: The states of a run that is waiting or in progress.
IN_FLIGHT_RUN_STATES = ("queued", "running")
#: Every sweep state, in lifecycle order.
SWEEP_STATES = ("running", "paused", "finished", "cancelled")
