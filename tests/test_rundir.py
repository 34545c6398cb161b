"""harness.job.rundir: the progress line a user watches during a long run."""

import io
import re

from harness.job.rundir import RunRecorder


def _line_rate_eta(line):
    rate = float(re.search(r"([\d.]+) steps/s", line).group(1))
    h, m, s = map(int, re.search(r"eta (\d+)h(\d+)m(\d+)s", line).group(1, 2, 3))
    return rate, 3600 * h + 60 * m + s


def test_progress_reports_recent_speed_not_the_warm_up_average(tmp_path):
    """5,000 warm-up steps in 100 s, then 1 step/s: the run-long average would print 4.8
    steps/s and an ETA 4.8x too short; the line must print the recent 1 step/s."""
    stream = io.StringIO()
    rec = RunRecorder(tmp_path, "t", stream=stream)
    clock = {"t": 0.0}
    rec.elapsed = lambda: clock["t"]
    for t in range(10, 101, 10):
        clock["t"] = float(t)
        rec.progress(50 * t, 25_000, None)
    for t in range(110, 1301, 10):
        clock["t"] = float(t)
        rec.progress(5_000 + (t - 100), 25_000, 99.0)
    rate, eta = _line_rate_eta(stream.getvalue().splitlines()[-1])
    assert rate == 1.0
    assert abs(eta - (25_000 - 6_200)) <= 1
    assert "over the last 0h10m" in stream.getvalue().splitlines()[-1]


def test_first_progress_line_uses_the_time_since_start(tmp_path):
    stream = io.StringIO()
    rec = RunRecorder(tmp_path, "t", stream=stream)
    rec.elapsed = lambda: 20.0
    rec.progress(100, 1_000, None)
    rate, eta = _line_rate_eta(stream.getvalue())
    assert (rate, eta) == (5.0, 180)
    assert "last eval return n/a" in stream.getvalue()
