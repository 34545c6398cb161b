"""The run directory contract (docs/pipeline.md "The run directory"): atomic file writes and
the recorder that turns an algorithm's reports into `eval.csv` and `train.csv`.

Every file is written to a temporary sibling and renamed into place, so a reader (or a
killed job) never sees a half-written file; a run counts as finished only once
`done.json` exists.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TextIO

EVAL_COLUMNS = ("step", "episode", "return", "length")
# Every file `mbrl-bench train` writes into a run directory: `train` deletes or overwrites
# nothing else, and refuses a directory holding anything else. The CSVs: eval and train, the
# diagnostics tables the algorithms report (`Recorder.table`), critic (an optional table).
RUN_CSVS = ("eval.csv", "train.csv", "model.csv", "compounding.csv", "coadaptation.csv",
            "visitation.csv", "critic.csv")  # fmt: skip
RUN_FILES = ("config.json", "provenance.json", "done.json", "checkpoint.pt", ".lock", *RUN_CSVS)
WALL_CLOCK_SUFFIX = "wall_s"  # train.csv columns ending in this are wall-clock times
_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read the process umask (the only portable way is to set and restore it)


def atomic_write(path: Path, write: Callable[[IO], Any], *, binary: bool = False) -> None:
    """The one atomic writer: `write(fh)` fills a temporary sibling of `path` (text mode,
    no newline translation, or binary), which is then fsynced and renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp creates 0600; results are meant to be shared
        with os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", newline="") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda fh: fh.write(text))


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def _fmt(value: Any) -> str:
    """Full-precision, platform-independent text for a CSV cell."""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return str(value)


class CsvTable:
    """A CSV file rewritten atomically on every append (the files are small: one row per
    evaluation episode or model period)."""

    def __init__(self, path: Path, columns: tuple[str, ...] | None = None) -> None:
        self.path, self.columns = path, columns
        self.rows: list[dict[str, Any]] = []

    def append(self, rows: list[dict[str, Any]]) -> None:
        if self.columns is None:
            self.columns = tuple(rows[0])
        for row in rows:
            if tuple(row) != self.columns:
                raise ValueError(f"{self.path.name}: columns {tuple(row)} != {self.columns}")
        self.rows.extend(rows)
        self._write()

    def reset(self, columns: tuple[str, ...] | None, rows: list[dict[str, Any]]) -> None:
        """Rewind to a snapshot: exactly these rows on disk (no file when there are none)."""
        self.columns, self.rows = columns, list(rows)
        if self.rows:
            self._write()
        else:
            self.path.unlink(missing_ok=True)

    def _write(self) -> None:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(self.columns)
        for row in self.rows:
            writer.writerow([_fmt(v) for v in row.values()])
        atomic_write_text(self.path, buf.getvalue())


RATE_WINDOW_S = 600.0  # spans a few model fits (every 250 env steps), so the rate is not spiky


class RunRecorder:
    """Implements `algorithms.parts.loop.Recorder` for one run directory."""

    def __init__(self, run_dir: Path, label: str, stream: TextIO = sys.stderr) -> None:
        self.run_dir, self.label, self.stream = run_dir, label, stream
        self.eval_csv = CsvTable(run_dir / "eval.csv", EVAL_COLUMNS)
        self.train_csv = CsvTable(run_dir / "train.csv")
        self.tables: dict[str, CsvTable] = {}
        self.start = time.perf_counter()
        self.notes: list[str] = []
        self._marks: deque[tuple[float, int]] = deque()  # (elapsed, step) at each print

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def eval(self, step: int, returns: list[float], lengths: list[int]) -> None:
        self.eval_csv.append(
            [
                {"step": step, "episode": i, "return": float(r), "length": int(n)}
                for i, (r, n) in enumerate(zip(returns, lengths, strict=True))
            ]
        )

    def train(self, row: dict[str, Any]) -> None:
        self.train_csv.append([{"step": row["step"], "wall_s": self.elapsed(), **row}])

    def table(self, name: str, rows: list[dict[str, Any]]) -> None:
        if f"{name}.csv" not in RUN_CSVS:
            raise ValueError(f"table {name!r} is not one of the run directory's files {RUN_CSVS}")
        if name not in self.tables:
            self.tables[name] = CsvTable(self.run_dir / f"{name}.csv")
        self.tables[name].append(rows)

    def log(self, message: str) -> None:
        """A note kept in done.json and printed."""
        self.notes.append(message)
        self.status(message)

    def status(self, message: str) -> None:
        """A printed line only (e.g. checkpoints: not part of the run's record)."""
        print(f"[{self.label}] {message}", file=self.stream, flush=True)

    def snapshot(self) -> dict[str, Any]:
        """Rows and elapsed time, for a checkpoint."""
        return {
            "elapsed": self.elapsed(),
            "notes": list(self.notes),
            "tables": {
                t.path.name: (t.columns, list(t.rows))
                for t in (self.eval_csv, self.train_csv, *self.tables.values())
            },
        }

    def restore(self, snap: dict[str, Any]) -> None:
        """Rewind the run directory's CSVs to `snap` (rows written after it are dropped)."""
        self.start = time.perf_counter() - snap["elapsed"]
        self.notes = list(snap["notes"])
        saved = snap["tables"]
        for name in RUN_CSVS:
            if name not in saved:
                (self.run_dir / name).unlink(missing_ok=True)
        for name, (columns, rows) in saved.items():
            if name == self.eval_csv.path.name:
                table = self.eval_csv
            elif name == self.train_csv.path.name:
                table = self.train_csv
            else:
                table = self.tables.setdefault(name[: -len(".csv")], CsvTable(self.run_dir / name))
            table.reset(columns, rows)

    def progress(self, step: int, total: int, last_return: float | None) -> None:
        """Print the speed over the last RATE_WINDOW_S, not since the start: the random
        warm-up runs far faster than the model-based steps after it, so a run-long average
        overstates the speed and understates the ETA."""
        now = self.elapsed()
        if step != total and self._marks and now - self._marks[-1][0] < 10.0:
            return
        self._marks.append((now, step))
        while len(self._marks) > 2 and self._marks[1][0] <= now - RATE_WINDOW_S:
            self._marks.popleft()
        t0, s0 = self._marks[0] if len(self._marks) > 1 else (0.0, 0)
        rate = (step - s0) / (now - t0) if now > t0 else float("nan")
        eta = (total - step) / rate if rate > 0 else float("nan")
        ret = "n/a" if last_return is None else f"{last_return:.1f}"
        print(
            f"[{self.label}] step {step}/{total} ({100 * step / total:.1f}%) "
            f"{rate:.1f} steps/s over the last {_hms(now - t0)}, last eval return {ret}, "
            f"eta {_hms(eta)}",
            file=self.stream,
            flush=True,
        )


def _hms(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s"
