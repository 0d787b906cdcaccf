"""The LR range test (Smith 2017): one short run whose learning rate rises exponentially
while the loss is recorded, and the learning rate it suggests (:func:`lr_range_test`,
:class:`LRRangeTest`). The result is stored in the run's summary under
``LR_RANGE_SUMMARY_KEY``, which marks the run as an LR range test.
"""

import math
import numbers
import sys

from ._values import _metric_value


#: The summary key that marks a run as an LR range test (its value: :meth:`LRRangeTest.result`).
LR_RANGE_SUMMARY_KEY = "lr_range_test"


_LR_RANGE_MIN_POINTS = 5  # points the suggestion needs after the skips


def lr_range_schedule(min_lr, max_lr, steps):
    """The learning rates of an LR range test: ``steps`` values rising exponentially (evenly on
    a log scale) from ``min_lr`` to ``max_lr``, both included: ``min_lr *
    (max_lr / min_lr) ** (i / (steps - 1))`` for step ``i``. ``steps`` is at least 2;
    ``0 < min_lr < max_lr``, else ``ValueError``."""
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 2:
        raise ValueError("hyperdial.lr_range_test: steps must be an integer >= 2, got %r" % (steps,))
    min_lr, max_lr = float(min_lr), float(max_lr)
    if not (math.isfinite(min_lr) and math.isfinite(max_lr) and 0.0 < min_lr < max_lr):
        raise ValueError(
            "hyperdial.lr_range_test: need 0 < min_lr < max_lr, got min_lr=%r max_lr=%r"
            % (min_lr, max_lr))
    ratio = max_lr / min_lr
    rates = [min_lr * ratio ** (i / (steps - 1)) for i in range(steps)]
    rates[-1] = max_lr
    return rates


def smooth_losses(losses, beta=0.98):
    """Exponentially smoothed losses with bias correction: ``avg = beta * avg + (1 - beta) *
    loss`` from ``avg = 0``, and the smoothed value at step ``i`` (from 0) is ``avg / (1 -
    beta ** (i + 1))``, so the first one is the first loss. A non-finite loss makes it and every
    later smoothed value NaN."""
    out, avg = [], 0.0
    for i, loss in enumerate(losses):
        avg = beta * avg + (1.0 - beta) * float(loss)
        out.append(avg / (1.0 - beta ** (i + 1)) if math.isfinite(avg) else float("nan"))
    return out


def lr_range_suggestion(lrs, smoothed, skip_start=10, skip_end=5):
    """The suggestion of an LR range test from its learning rates and smoothed losses.

    Only the points from index ``skip_start`` to ``len - skip_end`` (exclusive) are looked at
    (the first losses are the noisiest relative to how little they move; the last ones are
    where the loss blows up), and only finite ones. Returns a dict:

    * ``min_loss_lr``: the learning rate of the lowest smoothed loss, and
      ``tenth_min_loss_lr``, a tenth of it;
    * ``steepest_lr``: where the smoothed loss falls fastest against log(lr), the slope taken
      between the points ``k`` places either side (``k`` is a twentieth of the points looked
      at, at least 1), which keeps step-to-step noise from picking the point;
    * ``suggested_lr``: ``tenth_min_loss_lr`` (the rule, ``"tenth_min_loss"``; docs/python.md
      gives the measurements behind the choice).

    All are None when fewer than 5 points are left (``reason`` then says why, else it is None).
    """
    end = len(lrs) - skip_end
    window = [i for i in range(max(skip_start, 0), end)
              if math.isfinite(smoothed[i]) and lrs[i] > 0]
    result = {"suggested_lr": None, "steepest_lr": None, "min_loss_lr": None,
              "tenth_min_loss_lr": None, "reason": None}
    if len(window) < _LR_RANGE_MIN_POINTS:
        result["reason"] = (
            "%d points are left after leaving out the first %d and the last %d; the suggestion "
            "needs %d: run more steps, or a wider range" % (
                len(window), skip_start, skip_end, _LR_RANGE_MIN_POINTS))
        return result
    best = min(window, key=lambda i: smoothed[i])
    span = max(1, len(window) // 20)
    steepest, steepest_slope = None, None
    for j in range(span, len(window) - span):
        a, i, b = window[j - span], window[j], window[j + span]
        slope = (smoothed[b] - smoothed[a]) / (math.log(lrs[b]) - math.log(lrs[a]))
        if steepest_slope is None or slope < steepest_slope:
            steepest, steepest_slope = i, slope
    result["steepest_lr"] = lrs[steepest]
    result["min_loss_lr"] = lrs[best]
    result["tenth_min_loss_lr"] = lrs[best] / 10.0
    result["suggested_lr"] = result["tenth_min_loss_lr"]
    return result


class LRRangeTest:
    """An LR range test driving one training loop; made by :func:`lr_range_test`.

    Iterating gives the learning rate of each step; after each step the loop calls
    :meth:`record` with that step's training loss. Iteration ends after the last step, or
    early when the loss diverges (see :meth:`record`); then :meth:`finish` runs by itself.
    """

    def __init__(self, min_lr, max_lr, steps, run=None, beta=0.98, diverge_factor=4.0,
                 skip_start=10, skip_end=5):
        """See :func:`lr_range_test`."""
        self.schedule = lr_range_schedule(min_lr, max_lr, steps)
        beta, diverge_factor = float(beta), float(diverge_factor)
        if not 0.0 <= beta < 1.0:
            raise ValueError("hyperdial.lr_range_test: beta must be in [0, 1), got %r" % beta)
        if not (math.isfinite(diverge_factor) and diverge_factor > 1.0):
            raise ValueError(
                "hyperdial.lr_range_test: diverge_factor must be above 1, got %r" % diverge_factor)
        for name, value in (("skip_start", skip_start), ("skip_end", skip_end)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
                raise ValueError(
                    "hyperdial.lr_range_test: %s must be an integer >= 0, got %r" % (name, value))
        self.run = run
        self.beta = beta
        self.diverge_factor = diverge_factor
        self.skip_start = int(skip_start)
        self.skip_end = int(skip_end)
        #: The learning rates of the steps recorded so far.
        self.lrs = []
        #: The raw losses recorded (NaN for a non-finite one).
        self.losses = []
        #: The smoothed losses (see :func:`smooth_losses`).
        self.smoothed = []
        #: Why the test ended: None while it runs, else ``"completed"`` (every step ran),
        #: ``"diverged"`` (the smoothed loss passed ``diverge_factor`` times its minimum),
        #: ``"non_finite"`` (a loss was NaN or infinite) or ``"ended"`` (:meth:`finish` was
        #: called before either).
        self.stop = None
        #: The learning rate of the step that stopped the test (``"diverged"`` or
        #: ``"non_finite"``), else None.
        self.divergence_lr = None
        self._avg = 0.0
        self._best = math.inf
        self._pending = None  # the lr handed out and not recorded yet
        self._result = None

    def __iter__(self):
        return self

    def __next__(self):
        if self._pending is not None:
            raise RuntimeError(
                "hyperdial.lr_range_test: call record(loss) once for each learning rate")
        if self.stop is None and len(self.lrs) >= len(self.schedule):
            self.stop = "completed"
        if self.stop is not None:
            self.finish()
            raise StopIteration
        self._pending = self.schedule[len(self.lrs)]
        return self._pending

    @property
    def lr(self):
        """The learning rate handed out last (the one :meth:`record` expects a loss for)."""
        return self._pending if self._pending is not None else (self.lrs[-1] if self.lrs else None)

    def record(self, loss):
        """Record the training loss of the step just run at :attr:`lr`; return True when the
        test should stop (and then iteration ends).

        The point is logged to the run as ``lr``, ``loss`` and ``loss_smoothed``. The test
        stops when the loss is not finite, or when the smoothed loss is above
        ``diverge_factor`` times the lowest smoothed loss so far (fastai's rule, factor 4)."""
        if self._pending is None:
            raise RuntimeError(
                "hyperdial.lr_range_test: record() comes after taking a learning rate from the test")
        loss = _metric_value("loss", loss)
        loss = float("nan") if loss is None else float(loss)
        lr, self._pending = self._pending, None
        i = len(self.lrs)
        smoothed = float("nan")
        if math.isfinite(loss) and math.isfinite(self._avg):
            self._avg = self.beta * self._avg + (1.0 - self.beta) * loss
            smoothed = self._avg / (1.0 - self.beta ** (i + 1))
        else:
            self._avg = float("nan")
        self.lrs.append(lr)
        self.losses.append(loss)
        self.smoothed.append(smoothed)
        if self.run is not None:
            self.run.log({"lr": lr, "loss": loss, "loss_smoothed": smoothed})
        if not math.isfinite(smoothed):
            self.stop, self.divergence_lr = "non_finite", lr
        elif smoothed > self.diverge_factor * self._best:
            self.stop, self.divergence_lr = "diverged", lr
        self._best = min(self._best, smoothed) if math.isfinite(smoothed) else self._best
        return self.stop is not None

    def result(self):
        """The test's outcome as a dict (what :meth:`finish` stores in the summary): the
        settings (``min_lr``, ``max_lr``, ``steps``, ``beta``, ``diverge_factor``,
        ``skip_start``, ``skip_end``), ``points`` recorded, ``stop``, ``divergence_lr``, and
        the keys of :func:`lr_range_suggestion` (``rule`` names the one suggested:
        ``"tenth_min_loss"``)."""
        out = {
            "min_lr": self.schedule[0], "max_lr": self.schedule[-1], "steps": len(self.schedule),
            "beta": self.beta, "diverge_factor": self.diverge_factor,
            "skip_start": self.skip_start, "skip_end": self.skip_end,
            "points": len(self.lrs), "stop": self.stop, "divergence_lr": self.divergence_lr,
            "rule": "tenth_min_loss",
        }
        out.update(lr_range_suggestion(self.lrs, self.smoothed, self.skip_start, self.skip_end))
        return out

    @property
    def suggested_lr(self):
        """The suggested learning rate (None while too few points were recorded)."""
        return self.result()["suggested_lr"]

    def finish(self):
        """End the test (``stop`` becomes ``"ended"`` if it was still running) and store
        :meth:`result` in the run's summary under ``lr_range_test``, the key that marks the
        run as an LR range test. Returns :meth:`result`. Calling it again stores nothing new."""
        if self._result is None:
            self._pending = None
            if self.stop is None:
                self.stop = "completed" if len(self.lrs) >= len(self.schedule) else "ended"
            self._result = self.result()
            if self.run is not None:
                self.run.summary[LR_RANGE_SUMMARY_KEY] = self._result
        return self._result

    def __repr__(self):
        return "LRRangeTest(points=%d/%d, stop=%r)" % (len(self.lrs), len(self.schedule), self.stop)


def lr_range_test(min_lr=1e-7, max_lr=10.0, steps=100, run=None, beta=0.98, diverge_factor=4.0,
                  skip_start=10, skip_end=5):
    """Start an LR range test (Smith 2017, "Cyclical Learning Rates for Training Neural
    Networks", section 3.3): one short training run whose learning rate rises exponentially
    from ``min_lr`` to ``max_lr`` over ``steps`` steps while the loss is recorded.

    Returns an :class:`LRRangeTest`; use it as::

        test = hyperdial.lr_range_test(1e-5, 10.0, steps=200)
        for lr in test:
            loss = train_one_batch(lr)
            test.record(loss)
        print(test.suggested_lr)

    ``run`` is the run to log to (default: the current run of :func:`init`; with none, nothing
    is logged). ``beta`` smooths the loss (:func:`smooth_losses`); the test stops when the
    smoothed loss passes ``diverge_factor`` times its minimum, or at a non-finite loss.
    ``skip_start`` and ``skip_end`` points are left out of the suggestion
    (:func:`lr_range_suggestion`). ``ValueError`` for settings out of range.
    """
    if run is None:
        # The package's current run (hyperdial.run, set by init): looked up at call time,
        # since this module is imported while the package is being imported.
        run = sys.modules[__package__].run
    return LRRangeTest(min_lr, max_lr, steps, run=run,
                       beta=beta, diverge_factor=diverge_factor, skip_start=skip_start,
                       skip_end=skip_end)
