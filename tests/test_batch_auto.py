"""`--batch-size auto` and out-of-memory recovery: a pass that runs out of device memory is redone on the same
images at half the size, every image is restored and written exactly once (a real method that raises the CUDA
out-of-memory error above 2 images per pass, registered like any method), and stage seconds are recorded."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

import celebref.app.outputs as outputs
import celebref.app.restore_worker as rw
from baselines.base import STATUS_ERROR, STATUS_OK, RestorationMethod, RestoreResult
from baselines.registry import METHODS, create_method
from celebref.app.cli import main
from celebref.app.pipeline import AdaptiveBatch
from celebref.app.restore import AUTO_CPU, AUTO_CUDA_CAP, AUTO_START, RestoreRunner, batch_plan, parse_batch_size
from celebref.errors import ConfigError
from celebref.imageio import read_image, write_image
from celebref.testset import read_inputs

LIMIT = 2  # passes of more images than this run "out of memory"


class OOMAbove2(RestorationMethod):
    """Inverts the image; a forward pass of more than LIMIT images raises torch.cuda.OutOfMemoryError."""

    name = "oom-above-2"
    input_size = None
    restored: Counter = Counter()
    passes: list[int] = []

    def _restore(self, items):
        type(self).passes.append(len(items))
        if len(items) > LIMIT:
            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {len(items)} GiB")
        type(self).restored.update(it.id for it in items)
        return [RestoreResult(it.id, 255 - it.image) for it in items]


class OOMCaught(OOMAbove2):
    """Like OOMAbove2, but (as the shipped networks do) the method catches the error and reports it per image."""

    name = "oom-caught"

    def _restore(self, items):
        try:
            return super()._restore(items)
        except torch.cuda.OutOfMemoryError as e:
            return [RestoreResult(it.id, None, STATUS_ERROR, f"OutOfMemoryError: {e}") for it in items]


for _cls in (OOMAbove2, OOMCaught):
    if _cls.name not in METHODS.names():
        METHODS.register(_cls.name, f"{__name__}:{_cls.__name__}", description="test method: fake CUDA OOM", source="tests")


@pytest.fixture()
def inputs(tmp_path: Path) -> list:
    rng = np.random.default_rng(0)
    for i in range(11):
        write_image(tmp_path / "in" / f"im{i:02d}.png", rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    return read_inputs(tmp_path / "in")


@pytest.fixture()
def count_writes(monkeypatch) -> Counter:
    """Counts the output files the driver's writer writes (the real writer underneath)."""
    writes: Counter = Counter()
    real = outputs.atomic_write_bytes

    def counting(path, data):
        writes[Path(path).stem] += 1
        real(path, data)

    monkeypatch.setattr(outputs, "atomic_write_bytes", counting)
    return writes


@pytest.mark.parametrize("name", ["oom-above-2", "oom-caught"])
def test_out_of_memory_halves_and_every_image_is_written_once(name, inputs, count_writes, tmp_path: Path) -> None:
    cls = type(create_method(name, device="cpu"))
    cls.restored, cls.passes = Counter(), []
    runner = RestoreRunner(tmp_path / "out", batch_size=8)
    run = runner.prepare(create_method(name, device="cpu"))
    rows = runner.run_method(run, inputs)
    assert [r["status"] for r in rows] == [STATUS_OK] * len(inputs)
    ids = [r.id for r in inputs]
    assert cls.restored == Counter(ids)  # each image restored once ...
    assert count_writes == Counter(ids)  # ... and written once
    for r in inputs:
        np.testing.assert_array_equal(read_image(tmp_path / "out" / name / f"{r.id}.png"), 255 - read_image(r.lq_path))
    # 8 failed -> 4 failed -> 2 fit; the halved size stays for the rest of the run (no more failures)
    assert cls.passes[:3] == [8, 4, 2] and all(n <= LIMIT for n in cls.passes[3:])
    assert sum(cls.passes[2:]) == len(inputs)
    assert runner.forward_sizes[name] == cls.passes
    journal = [json.loads(line) for line in (tmp_path / "out" / name / ".status.jsonl").read_text().splitlines()]
    assert sorted(j["id"] for j in journal) == ids  # one journal line per image


def test_auto_grows_until_out_of_memory_then_stays(inputs, tmp_path: Path) -> None:
    """The CUDA policy of --batch-size auto, run on the CPU: double after each pass that fits, halve on OOM."""
    OOMAbove2.restored, OOMAbove2.passes = Counter(), []
    method = create_method("oom-above-2", device="cpu")
    method.load()
    worker = rw.MethodBatcher(method, forward_size=1, max_forward=16, grow=True)
    items = [rw.restore_item(r, rw.load_inputs(r, "detect", None, False, {}), method) for r in inputs]
    results = worker.restore_items(items)
    assert [results[r.id].status for r in inputs] == [STATUS_OK] * len(inputs)
    assert OOMAbove2.passes == [1, 2, 4, 2, 2, 2, 2]  # 1 fits -> 2 fits -> 4 fails, redone as 2+2; 2 stays
    assert OOMAbove2.restored == Counter(r.id for r in inputs)
    assert worker.batch.size == 2 and worker.batch.shrinks == 1
    assert worker.forward_sizes == OOMAbove2.passes and worker.clock.take()["restore"] > 0  # the passes' seconds


def test_adaptive_batch_and_batch_plan() -> None:
    b = AdaptiveBatch(4, cap=16, grow=True)
    b.fitted(2)
    assert b.size == 4  # a short pass says nothing about larger ones
    b.fitted(4), b.fitted(8), b.fitted(16)
    assert b.size == 16
    b.shrink(16)
    b.fitted(8)
    assert (b.size, b.grow) == (8, False)
    assert batch_plan("auto", torch.device("cuda")) == (AUTO_CUDA_CAP, AUTO_START, True)
    assert batch_plan("auto", torch.device("cpu")) == (AUTO_CPU, AUTO_CPU, False)
    assert batch_plan(3, "cpu") == (3, 3, False)
    assert parse_batch_size("Auto") == "auto" and parse_batch_size("5") == 5
    for bad in ("0", "x", -1):
        with pytest.raises(ConfigError, match="batch_size"):
            parse_batch_size(bad)


def test_cli_batch_size_auto_on_cpu_records_stages(inputs, tmp_path: Path, capsys) -> None:
    out = tmp_path / "o"
    assert main(["restore", "--methods", "lq", "--input", str(tmp_path / "in"), "--out", str(out), "--device", "cpu",
                 "--batch-size", "auto"]) == 0
    meta = json.loads((out / "restore.json").read_text())
    assert meta["batch_size"] == "auto" and meta["engine"]["engine"] == "local"
    assert set(meta["stage_seconds"]) >= {"decode", "restore", "metrics", "write"}
    assert meta["stage_seconds"]["decode"] > 0 and meta["stage_seconds"]["write"] > 0
    assert "stages (seconds" in capsys.readouterr().err
    for r in inputs:
        np.testing.assert_array_equal(read_image(out / "lq" / f"{r.id}.png"), read_image(r.lq_path))
    with pytest.raises(SystemExit) as e:  # a usage error, named by argparse
        main(["restore", "--methods", "lq", "--input", str(tmp_path / "in"), "--out", str(out), "--batch-size", "0"])
    assert e.value.code == 2 and "batch_size must be >= 1 or 'auto', got 0" in capsys.readouterr().err
