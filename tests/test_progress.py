"""The progress line's ETA: from steady iterations only, never the tracing (issue 23, item 9)."""
from skingan.events import LoopState, Progress


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def line_at(progress, clock, step, seconds_since_last, total=1000):
    clock.now += seconds_since_last
    lines = []
    progress.log = lines.append
    metrics = dict(d_loss=1.0, g_loss=1.0, acc_real=0.5, acc_fake=0.5)
    progress(LoopState(step=step, total=total, rows=[(step, metrics)], rate=1.0))
    return lines[0]


def eta_text(line):
    return line.rsplit("ETA ", 1)[1]


def test_the_first_interval_holds_tracing_and_gives_no_eta():
    clock = FakeClock()
    progress = Progress(10, 16, None, clock=clock)
    # 10 steps with the tracing: 60 s; then 1 s per 10 steps
    assert eta_text(line_at(progress, clock, 10, 60.0)) == "measuring"
    # 980 steps left at 0.1 s per step: 98 s (the first interval's 6 s per step: 98 min)
    assert eta_text(line_at(progress, clock, 20, 1.0)) == "1m38s"
    assert eta_text(line_at(progress, clock, 30, 1.0)) == "1m37s"
    # a slower interval (sample grids, checkpoints) counts too
    assert eta_text(line_at(progress, clock, 40, 1.0)) == "1m36s"
    assert eta_text(line_at(progress, clock, 50, 3.0)) == "2m22s"    # 6 s / 40 steps


def test_a_resumed_run_measures_again_from_its_own_steady_steps():
    clock = FakeClock()
    progress = Progress(10, 16, None, clock=clock)        # a new process at step 500
    assert eta_text(line_at(progress, clock, 510, 90.0)) == "measuring"
    assert eta_text(line_at(progress, clock, 520, 2.0)) == "1m36s"   # 480 steps x 0.2 s
