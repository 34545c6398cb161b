"""Checkpoints of one run directory (`checkpoint.pt`), for resuming killed jobs.

The payload is the algorithm's whole mutable state, the loop's position, every random
stream (see `algorithms.parts.loop.online_loop`) and the recorder's rows, pickled by torch and
written atomically, so a kill at any moment leaves either the previous checkpoint or the
new one. Resuming rewinds the CSVs to the checkpoint, so rows written after it (by the
killed process) are replaced by the same rows recomputed: the finished files equal an
uninterrupted run's. The file is deleted once the run is finished (it can be hundreds of
MB: the model buffer is part of it). It is not a declared Snakemake output, so Snakemake's
`--rerun-incomplete` does not delete it.
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
        self.path, self.every, self.rec = run_dir / CHECKPOINT, every, rec
        self.identity, self.device = identity, device

    def load(self) -> dict[str, Any] | None:
        if not self.path.exists():
            return None
        try:
            payload = torch.load(self.path, map_location=self.device, weights_only=False)
        except Exception as exc:  # unpickling errors have no common base class
            raise ConfigError(f"cannot read checkpoint {self.path}: {exc}".splitlines()[0]) from exc
        if payload.get("identity") != self.identity:
            raise ConfigError(
                f"checkpoint {self.path} belongs to a different configuration; "
                "delete it to start over, or use another --out"
            )
        self.rec.restore(payload["recorder"])
        self.rec.log(f"resumed from the checkpoint at env step {payload['loop'].t}")
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

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
