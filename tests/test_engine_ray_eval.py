"""`evaluate` on the Ray engine: the same per-image values as the local engine, a network method loaded through
the weight store inside the actors (golden tolerance), an actor killed mid-run, and a driver interrupted and
resumed (under the other engine). One local Ray (2 CPUs) for the module; CI installs the `.[ray]` extra."""

from __future__ import annotations

import _thread
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ray = pytest.importorskip("ray", reason="the Ray engine needs the optional extra: pip install 'celebref[ray]'")

from baselines.base import RestorationMethod, RestoreResult  # noqa: E402
from baselines.registry import METHODS  # noqa: E402
from celebref.app.cli import main  # noqa: E402
from celebref.app.evaluate import EvalConfig, evaluate  # noqa: E402
from celebref.imageio import read_image, write_image  # noqa: E402
from celebref.testset import load_test_set  # noqa: E402

COLUMNS = ["id", "method", "status", "reason", "output_path", "psnr", "ssim"]


class SlowLQ(RestorationMethod):
    """The LQ image as is, ``delay`` seconds per image: long enough to kill an actor or interrupt the driver."""

    name = "slow-lq"
    input_size = None
    param_defaults = {"delay": 0.5}
    calls = 0

    def _restore(self, items):
        type(self).calls += len(items)
        time.sleep(self.params["delay"] * len(items))
        return [RestoreResult(it.id, np.array(it.image)) for it in items]


if SlowLQ.name not in METHODS.names():
    METHODS.register(SlowLQ.name, f"{__name__}:SlowLQ", description="test method: slow copy of the input", source="tests")


@pytest.fixture(scope="module")
def data(mini_dir: Path, tmp_path_factory) -> Path:
    """Six celebref-mini faces degraded with the dfdnet preset (native LQ kept, so bicubic has work)."""
    tmp = tmp_path_factory.mktemp("raydata")
    for ident in ("00005", "00022"):
        for p in sorted((mini_dir / "hq" / ident).glob("*.png"))[:3]:
            (tmp / "hq" / ident).mkdir(parents=True, exist_ok=True)
            (tmp / "hq" / ident / p.name).write_bytes(p.read_bytes())
    assert main(["degrade", "--preset", "dfdnet", "--seed", "0", "--input", str(tmp / "hq"), "--out", str(tmp / "test")]) == 0
    return tmp / "test"


def _evaluate(data: Path, out: Path, engine, methods: str, metrics: str = "psnr,ssim", batch_size: int = 2):
    ts = load_test_set(data, None, None)
    cfg = EvalConfig(out=out, methods=[methods], metrics=metrics.split(","), device="cpu", batch_size=batch_size,
                     engine=engine)
    return evaluate(ts.records, ts.info, cfg)


def _table(per: pd.DataFrame) -> pd.DataFrame:
    return per[COLUMNS].sort_values(["method", "id"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def local_result(data: Path, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "run"
    res = _evaluate(data, out, "local", "lq,bicubic,slow-lq:delay=0")
    return out, _table(res.per_image)


def _same_outputs(a: Path, b: Path, table: pd.DataFrame) -> None:
    for rel in table["output_path"]:
        if rel:
            assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_ray_gives_the_local_per_image_values(ray_engine, data, local_result, tmp_path: Path) -> None:
    local_out, local = local_result
    local = local[local["method"].isin(["lq", "bicubic"])].reset_index(drop=True)
    assert (local["status"] == "ok").sum() >= 9 and local["psnr"].notna().sum() >= 9
    res = _evaluate(data, tmp_path / "run", ray_engine, "lq,bicubic")
    got = _table(res.per_image)
    pd.testing.assert_frame_equal(got, local, check_exact=True)
    _same_outputs(local_out, tmp_path / "run", got)
    assert res.stages["restore"] > 0 and res.stages["metrics"] > 0 and res.stages["decode"] > 0


def test_actor_killed_during_evaluate_gives_identical_results(ray_engine, data, local_result, tmp_path: Path) -> None:
    _, local = local_result
    out = tmp_path / "run"
    killed: list = []
    finished: list = []

    def killer() -> None:  # once the first output of the slow method exists, kill an actor of the running map
        deadline = time.time() + 600
        while time.time() < deadline and not killed and not finished:
            if list((out / "restored" / "slow-lq:delay=1.0").rglob("*.png")) and ray_engine.actors:
                victim = ray_engine.actors[0]
                ray.kill(victim, no_restart=False)  # Ray restarts it; its batches are retried
                killed.append(victim)
            time.sleep(0.05)

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    try:
        res = _evaluate(data, out, ray_engine, "slow-lq:delay=1.0", batch_size=1)
    finally:
        finished.append(True)
    t.join(5)
    assert killed, "the run ended before an actor could be killed"
    _same_as_local(res.per_image, local)


def _same_as_local(per: pd.DataFrame, local: pd.DataFrame) -> None:
    """The lq and slow-lq rows equal the local run's (whatever the delay: the label's parameters are set aside)."""
    def bare(t: pd.DataFrame) -> pd.DataFrame:
        t = t.assign(method=t["method"].str.split(":").str[0],
                     output_path=t["output_path"].str.replace(r"^restored/slow-lq[^/]*/", "restored/slow-lq/", regex=True))
        return _table(t[t["method"].isin(["lq", "slow-lq"])])

    got, want = bare(per), bare(local)
    assert len(got) == 12 and (got["status"] == "ok").all()
    pd.testing.assert_frame_equal(got, want, check_exact=True)


def test_driver_interrupted_then_resumed_under_the_other_engine(ray_engine, data, local_result, tmp_path: Path) -> None:
    _, local = local_result
    out = tmp_path / "run"
    journal = out / "restored" / "slow-lq" / ".status.jsonl"  # default delay: the label is the bare name

    def interrupt() -> None:  # Ctrl-C in the driver once some of the slow method's rows are journalled
        deadline = time.time() + 600
        while time.time() < deadline:
            if journal.is_file() and len(journal.read_text().splitlines()) >= 2:
                _thread.interrupt_main()
                return
            time.sleep(0.02)

    threading.Thread(target=interrupt, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        _evaluate(data, out, ray_engine, "slow-lq", batch_size=1)
    done = len(journal.read_text().splitlines())
    assert 2 <= done < 6
    SlowLQ.calls = 0
    res = _evaluate(data, out, "local", "slow-lq", batch_size=1)  # resumed here, by the local engine
    assert SlowLQ.calls == 6 - done  # only what was not journalled is redone
    _same_as_local(res.per_image, local)


def test_network_method_loaded_through_the_weight_store_in_the_actor(ray_engine, golden_dir, synth_weights, tmp_path: Path,
                                                                     monkeypatch) -> None:
    """GFPGAN from the golden's synthetic weights, saved as a file and found through CELEBREF_WEIGHT_<NAME>: the
    actor rebuilds and loads the method itself; its output is within the golden tolerance (README)."""
    import torch
    from _restoration_golden import golden_weights
    from _golden_acceptance import gfpgan_acceptance

    from celebref.engine_ray import RayEngine
    from celebref.weights import env_var

    root = golden_dir / "gfpgan"
    report_path = sorted(root.glob("case_*.report.json"))[0]
    import json

    report = json.loads(report_path.read_text())
    arrays = dict(np.load(report_path.with_name(report_path.name.replace(".report.json", ".npz"))))
    torch.save({"params_ema": golden_weights(synth_weights, root, report)}, tmp_path / "gfpgan.pth")
    monkeypatch.setenv(env_var("gfpgan-v1.4"), str(tmp_path / "gfpgan.pth"))  # taken to the actor by the spec
    lq = arrays["lq_rgb_uint8"]
    write_image(tmp_path / "lq" / "a.png", lq)
    write_image(tmp_path / "gt" / "a.png", arrays["output_rgb_uint8"])
    ts = load_test_set(None, tmp_path / "lq", tmp_path / "gt")
    cfg = EvalConfig(out=tmp_path / "run", methods=["gfpgan"], metrics=["psnr"], device="cpu",
                     engine=RayEngine(actors=1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the synthetic file differs from the published sha256 (an override)
        res = evaluate(ts.records, ts.info, cfg)
    row = res.per_image.set_index("method").loc["gfpgan"]
    assert row["status"] == "ok", row["reason"]
    out = read_image(tmp_path / "run" / row["output_path"])
    off = np.abs(out.astype(int) - arrays["output_rgb_uint8"].astype(int))
    assert off.max() <= 1 and (off > 0).mean() <= gfpgan_acceptance(golden_dir)["uint8_frac_off_by_one"]
    assert row["psnr"] > 50  # the metric ran on the actor's output, against the golden output
