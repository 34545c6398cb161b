"""Checkpoints of one run directory (`checkpoint.pt`), for resuming killed jobs.

The payload is the algorithm's whole mutable state, the loop's position, every random
stream (see `algorithms.parts.loop.online_loop`) and the recorder's rows, pickled by torch and
written atomically, so a kill at any moment leaves either the previous checkpoint or the
new one. Resuming rewinds the CSVs to the checkpoint, so rows written after it (by the
killed process) are replaced by the same rows recomputed: the finished files equal an
uninterrupted run's. The file is deleted once the run is finished (it can be hundreds of
MB: the model buffer is part of it). It is not a declared Snakemake output, so Snakemake's
`--rerun-incomplete` does not delete it.

SIGTERM (what a cluster sends at a job's time limit; `--signal` in the SLURM profile sends it
early enough) asks for a checkpoint at the next safe point, the next episode end, whatever
`every` is; the run then stops with `Interrupted` (exit code `EXIT_INTERRUPTED`) and the
same command resumes it.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from harness.errors import ConfigError
from harness.job.rundir import RunRecorder

CHECKPOINT = "checkpoint.pt"
EXIT_INTERRUPTED = 75  # sysexits' EX_TEMPFAIL: stopped on SIGTERM after a checkpoint; rerun


class Interrupted(Exception):
    """Raised after the checkpoint that a SIGTERM asked for: the run stops, resumable."""

    def __init__(self, step: int) -> None:
        super().__init__(f"stopped by SIGTERM after the checkpoint at env step {step}")
        self.step = step


class FileCheckpoint:
    """Implements `algorithms.parts.loop.Checkpointer` for a run directory."""

    def __init__(
        self,
        run_dir: Path,
        every: int,
        rec: RunRecorder,
        identity: dict[str, Any],
        device: torch.device,
    ) -> None:
        if every < 0:
            raise ConfigError(f"checkpoint_every must be >= 0, got {every}")
        self.path, self._every, self.rec = run_dir / CHECKPOINT, every, rec
        self.identity, self.device = identity, device
        self.stop_requested = False
        self._payload: dict[str, Any] | None = None

    @property
    def every(self) -> int:
        """Env steps between checkpoints; 1 once a stop is requested, so the loop's test
        (`algorithms.parts.loop.online_loop`) takes one at its next episode end."""
        return 1 if self.stop_requested else self._every

    def request_stop(self, *_: Any) -> None:
        """The SIGTERM handler: checkpoint at the next safe point, then stop."""
        if not self.stop_requested:
            self.rec.status("SIGTERM: checkpointing at the next episode end, then stopping")
        self.stop_requested = True

    def preload(self) -> None:
        """Read and check the checkpoint (if any) now, before the run directory is touched:
        a bad or foreign checkpoint is refused with nothing rewritten."""
        self._payload = self._read()

    @property
    def preloaded_step(self) -> int | None:
        """The env step of the checkpoint `preload` read (None without one): where this
        process resumes the run, recorded in its provenance."""
        return None if self._payload is None else int(self._payload["loop"].t)

    def load(self) -> dict[str, Any] | None:
        payload = self._payload if self._payload is not None else self._read()
        self._payload = None
        if payload is None:
            return None
        self.rec.restore(payload["recorder"])
        self.rec.log(f"resumed from the checkpoint at env step {payload['loop'].t}")
        return payload

    def _read(self) -> dict[str, Any] | None:
        if not self.path.exists():
            return None
        try:
            payload = torch.load(self.path, map_location=self.device, weights_only=False)
        except Exception as exc:  # unpickling errors have no common base class
            raise ConfigError(f"cannot read checkpoint {self.path}: {exc}".splitlines()[0]) from exc
        if not isinstance(payload, dict) or payload.get("identity") != self.identity:
            raise ConfigError(
                f"checkpoint {self.path} belongs to a different configuration; "
                "delete it to start over, or use another --out"
            )
        return payload

    def save(self, payload: dict[str, Any]) -> None:
        start = time.perf_counter()
        full = {**payload, "identity": self.identity, "recorder": self.rec.snapshot()}
        fd, tmp = tempfile.mkstemp(prefix=f".{CHECKPOINT}.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                torch.save(full, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        mb = self.path.stat().st_size / 2**20
        self.rec.status(
            f"checkpoint at env step {payload['loop'].t} ({mb:.0f} MB, "
            f"{time.perf_counter() - start:.1f} s)"
        )
        if self.stop_requested:
            raise Interrupted(payload["loop"].t)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
