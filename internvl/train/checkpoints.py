"""Which Trainer checkpoints a run may resume, and how they are kept.

A step checkpoint counts only once every rank has finished writing it: then rank 0 writes a marker
(``COMPLETE_NAME``) into it. A folder without the marker was cut off mid-save (a kill, a node failure)
and is never resumed: transformers would pick it as the latest by its number and fail on it every
retry. Rotation is ours for the same reason: an older checkpoint is removed only after a newer one is
marked complete.

Checkpoints are tied to a fingerprint of what decides the optimisation (:func:`run_fingerprint`).
Checkpoints of another fingerprint, and incomplete ones, are moved aside under ``superseded/`` in the
work dir, never deleted: a changed setting may have been a mistake, and a day of 64 GPUs is worth
the disk until someone removes it on purpose.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

COMPLETE_NAME = "internvl_complete.json"
STAMP_NAME = "run_fingerprint.json"
ASIDE_DIR = "superseded"
_CKPT_RE = re.compile(r"^checkpoint-(\d+)$")


def checkpoints(work: Path) -> list[tuple[int, Path]]:
    """``checkpoint-N`` folders of a work dir, by step."""
    if not work.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in work.iterdir() if p.is_dir() and (m := _CKPT_RE.match(p.name))]
    return sorted(found)


def is_complete(ckpt: Path, fingerprint: str | None = None) -> bool:
    marker = ckpt / COMPLETE_NAME
    if not marker.is_file():
        return False
    try:
        rec = json.loads(marker.read_text())
    except json.JSONDecodeError:
        return False
    return fingerprint is None or rec.get("fingerprint") == fingerprint


def mark_complete(ckpt: Path, fingerprint: str, step: int, world_size: int) -> None:
    rec = {"fingerprint": fingerprint, "step": step, "world_size": world_size,
           "time": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    tmp = ckpt / (COMPLETE_NAME + ".tmp")
    tmp.write_text(json.dumps(rec, indent=1) + "\n")
    os.replace(tmp, ckpt / COMPLETE_NAME)


def rotate(work: Path, keep: int | None) -> list[Path]:
    """Remove this run's oldest complete checkpoints beyond ``keep`` (None: keep all); never an incomplete one."""
    if not keep or keep < 1:
        return []
    complete = [p for _, p in checkpoints(work) if is_complete(p)]
    removed = complete[:-keep]
    for p in removed:
        shutil.rmtree(p)
    return removed


def _move_aside(work: Path, ckpts: list[Path], why: str) -> Path | None:
    if not ckpts:
        return None
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    dest = work / ASIDE_DIR / f"{stamp}-{why}"
    n = 0
    while dest.exists():
        n += 1
        dest = work / ASIDE_DIR / f"{stamp}-{why}-{n}"
    dest.mkdir(parents=True)
    for c in ckpts:
        os.replace(c, dest / c.name)
    old_stamp = work / STAMP_NAME
    if old_stamp.exists():
        shutil.copyfile(old_stamp, dest / STAMP_NAME)
    return dest


def vet_work_dir(work: str | Path, fingerprint: str, record: dict[str, Any] | None = None) -> Path | None:
    """Prepare ``work`` for a run with ``fingerprint``; return the checkpoint to resume from, or None.

    Checkpoints of another run (another fingerprint, or none recorded) and incomplete ones are moved
    aside (logged, with where they went); the newest complete checkpoint of this run is returned.
    ``record`` (what went into the fingerprint) is written beside it, so a moved-aside run says why.
    """
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    stamp = work / STAMP_NAME
    found = [p for _, p in checkpoints(work)]
    ours = [p for p in found if is_complete(p, fingerprint)]
    other_run = [p for p in found if p not in ours and is_complete(p)]
    incomplete = [p for p in found if not is_complete(p)]
    if dest := _move_aside(work, other_run, "other-run"):
        log.warning("moved %d checkpoint(s) of another run (settings, initial weights, data or world size changed) "
                    "to %s; delete them there when they are no longer wanted", len(other_run), dest)
    if dest := _move_aside(work, incomplete, "incomplete"):
        log.warning("moved %d incomplete checkpoint(s) (cut off while being written) to %s", len(incomplete), dest)
    tmp = stamp.with_name(stamp.name + ".tmp")
    tmp.write_text(json.dumps({"fingerprint": fingerprint, **(record or {})}, indent=1, sort_keys=True,
                              default=str) + "\n")
    os.replace(tmp, stamp)
    return ours[-1] if ours else None


def fingerprint_of(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
