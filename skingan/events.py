"""The training loop's events, each on its own schedule: the progress line, sample grids,
quality scores and checkpoints. The loop (loop.py) calls every event that is due after an
iteration, in list order, once the iteration's metrics have been read back and checked.

An event is an object with `due(state)` and `__call__(state)`; `Event` gives the usual
schedule (every `every` iterations, and at the end of the run or on a stop request). To add
one, subclass Event and append it in loop.make_events. What checkpoints hold, which are kept
and how they are written is checkpoints.py's: the events only say when.
"""
import dataclasses
import os
import time

import numpy as np

from skingan import checkpoints, multiworker
from skingan import images as image_io
from skingan.conditional import with_labels
from skingan.families import numpy_normal


@dataclasses.dataclass
class LoopState:
    step: int                  # iterations done
    total: int                 # the run's length in iterations
    stopping: bool = False     # Ctrl-C / SIGTERM received
    rows: list = None          # [(step, {metric: float})] read back since the last events
    rate: float = 0.0          # images/s over the last interval
    epoch: str = ""            # "epoch e/E" for epoch-based runs

    @property
    def finished(self):
        return self.step >= self.total

    @property
    def last(self):
        return self.finished or self.stopping


class Event:
    every = 0

    def due(self, state):
        return state.last or bool(self.every and state.step % self.every == 0)


class Progress(Event):
    """One line per log interval: losses, D's accuracy, speed, time left.

    The time left is estimated from steady iterations only: the wall time per iteration
    since this process's first progress line (events such as sample grids and checkpoints
    included, as they recur). The first interval holds tf.function's tracing (a resumed run
    traces again), which can take longer than many later intervals together, so the first
    line says the ETA is being measured instead of extrapolating it. `clock`: seconds,
    monotonic (a fake one in tests)."""

    def __init__(self, every, batch_size, log, clock=time.monotonic):
        self.every, self.batch_size, self.log, self.clock = every, batch_size, log, clock
        self.origin = None     # (clock, step) at the first line: the end of the tracing

    def eta(self, state):
        """Seconds left, or None while there is no steady interval yet."""
        now = self.clock()
        if self.origin is None or state.step <= self.origin[1]:
            self.origin = self.origin or (now, state.step)
            return None
        per_step = (now - self.origin[0]) / (state.step - self.origin[1])
        return (state.total - state.step) * per_step

    def __call__(self, state):
        m = state.rows[-1][1]
        eta = self.eta(state)
        extra = "".join(f"  {k} {m[k]:.3f}" for k in ("ada_p", "ada_rt") if k in m)
        self.log(f"step {state.step}/{state.total}{state.epoch}  d {m['d_loss']:.4f}  "
                 f"g {m['g_loss']:.4f}  D acc real {m['acc_real']:.2f} fake "
                 f"{m['acc_fake']:.2f}{extra}  {state.rate:.1f} img/s  "
                 f"ETA {'measuring' if eta is None else format_seconds(round(eta))}")


MAX_CLASS_ROWS = 8     # a conditional grid shows the first 8 classes, one row each


def class_grid_inputs(parts, cols):
    """A conditional run's grid inputs: row r shows class r (the first MAX_CLASS_ROWS
    classes) from the same `cols` fixed latents, so a column differs only in its class.
    Returns (inputs with labels, number of rows)."""
    rows = min(len(parts.classes), MAX_CLASS_ROWS)
    base = parts.draw_inputs(numpy_normal(parts.cfg["seed"]), cols)
    tile = lambda t: np.concatenate([t] * rows)                       # (rows * cols, ...)
    inputs = [tile(t) for t in base] if isinstance(base, list) else tile(base)
    labels = np.repeat(np.arange(rows, dtype=np.int32), cols)         # 0 .. 0, 1 .. 1, ...
    return with_labels(inputs, labels), rows


class SampleGrid(Event):
    """The family's sample grid: rows of latents drawn for this snapshot, then the rows
    of the run's fixed latents (the same at every snapshot, so progress compares), and
    the loss curve beside it. A conditional run's grid has one row per class instead,
    all from fixed latents, and the health monitor judges it class by class: real_diversity
    is then {label: the diversity of that class's real images}."""

    def __init__(self, every, parts, folder, train_log, health, real_diversity, log):
        self.every, self.parts, self.folder = every, parts, folder
        self.train_log, self.health, self.real_diversity, self.log = \
            train_log, health, real_diversity, log
        rows, cols, fixed_rows = parts.family.grid
        self.labels = None                  # each grid sample's class (conditional runs)
        if parts.classes:
            self.fixed, rows = class_grid_inputs(parts, cols)
            self.labels = np.repeat(np.arange(rows, dtype=np.int32), cols)
            fixed_rows = rows
        else:
            self.fixed = parts.draw_inputs(numpy_normal(parts.cfg["seed"]), fixed_rows * cols)
        self.shape = (rows, cols, fixed_rows)

    def __call__(self, state):
        rows, cols, fixed_rows = self.shape
        cfg = self.parts.cfg
        fresh = (rows - fixed_rows) * cols
        batches = [self.fixed]
        if fresh:
            batches.insert(0, self.parts.draw_inputs(numpy_normal([cfg["seed"], state.step]),
                                                     fresh))
        fakes = np.concatenate([generate_uint8(self.parts, b) for b in batches])
        grid = image_io.make_grid(fakes, rows, cols)
        image_io.save_png(grid, os.path.join(self.folder.out_dir,
                                             f"samples_{state.step:06d}.png"))
        self.train_log.add_image("samples", grid, state.step)
        self.train_log.plot(f"{self.folder.run}: {cfg['model']} {cfg['resolution']}px")
        warning = self.health.check_samples(state.step, fakes, self.real_diversity,
                                            self.labels, self.parts.classes)
        if warning:
            self.log(warning)


class QualityScore(Event):
    """SWD (and FID with weights) on fixed latents; the best generator is exported as
    generator_best.keras and its checkpoint kept (checkpoints.Checkpoints.save_best).
    Scored on schedule and at the end of the run, not on a stop request (it takes a while)."""

    def __init__(self, every, parts, folder, tracker, store, train_log, log):
        self.every, self.parts, self.folder = every, parts, folder
        self.tracker, self.store, self.train_log, self.log = tracker, store, train_log, log

    def due(self, state):
        return state.step % self.every == 0 or state.finished

    def __call__(self, state):
        scores, improved = self.tracker.evaluate(
            state.step, lambda inputs: generate_uint8(self.parts, inputs), self.parts.draw_inputs)
        # every worker saves the best checkpoint at the same step: the chief's verdict holds
        improved = multiworker.chief_says(self.parts.strategy, improved)
        self.train_log.scalars(state.step, {k: v for k, v in scores.items() if v is not None})
        text = "  ".join(f"{k} {v:.4g}" for k, v in scores.items() if v is not None)
        self.log(f"quality at step {state.step}: {text}"
                 + ("  (best so far: saved as generator_best.keras)" if improved else ""))
        if improved:
            self.tracker.record_best(state.step, scores)
            path = os.path.join(self.folder.run_dir, "generator_best.keras")
            with checkpoints.disk_full_stops(path, checkpoints.last_good(self.store.last_saved)
                                             + " (generator_best.keras is the previous best)"):
                self.folder.export(self.parts.shown, "generator_best")   # atomic
            self.store.save_best(state.step)


class Checkpoint(Event):
    """A checkpoint of everything the run needs to continue, and generator.keras
    (checkpoints.Checkpoints.save)."""

    def __init__(self, every, store):
        self.every, self.store = every, store

    def __call__(self, state):
        self.store.save(state.step)


def generate_uint8(parts, inputs, batch_size=64):
    """Images of the shown generator for `inputs` (Family.draw_inputs), uint8 NHWC."""
    def rows(x, i):
        return [t[i:i + batch_size] for t in x] if isinstance(x, list) else x[i:i + batch_size]
    n = len(inputs[0] if isinstance(inputs, list) else inputs)
    out = [parts.shown(rows(inputs, i), training=False).numpy() for i in range(0, n, batch_size)]
    return image_io.to_uint8(np.concatenate(out), parts.family.value_range)


def format_seconds(seconds):
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"
