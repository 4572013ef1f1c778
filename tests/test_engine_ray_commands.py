"""``build`` and ``degrade`` with ``--engine ray`` give the same outputs as with the local engine (issue 15), and the
build's content cache is shared by both engines: a build interrupted on one engine is finished by the other with
identical outputs. One local Ray (2 CPUs) for the whole module; CI installs the ``.[ray]`` extra."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pandas as pd
import pytest

ray = pytest.importorskip("ray", reason="the Ray engine needs the optional extra: pip install 'celebref[ray]'")

from celebref.app.cli import main  # noqa: E402
from celebref.dataset.pipeline import BuildInterrupted  # noqa: E402
from celebref.dataset.synthetic import make_crawl  # noqa: E402

needs_dlib = pytest.mark.skipif(importlib.util.find_spec("dlib") is None, reason="dlib is not installed")

BUILD_OUTPUTS = ("images", "landmarks", "probes", "probe_landmarks", "manifest.csv", "manifest.parquet",
                 "identities.csv", "collisions.csv", "distances.parquet", "SpecificLists.txt")
DEGRADE_OUTPUTS = ("lq", "refs", "manifest.csv", "manifest.parquet", "GenericLists.txt", "SpecificLists.txt")


@pytest.fixture(scope="module")
def local_ray(ray_session):
    """The session's local Ray (conftest): the commands join it (``ray.is_initialized()``)."""
    yield


def _files(root: Path, names: tuple[str, ...]) -> dict[str, bytes]:
    out = {}
    for name in names:
        p = root / name
        if p.is_file():
            out[name] = p.read_bytes()
        for q in sorted(p.rglob("*")) if p.is_dir() else ():
            if q.is_file():
                out[q.relative_to(root).as_posix()] = q.read_bytes()
    return out


def _build(crawl: Path, out: Path, cache: Path, engine: str) -> int:
    return main(["build", str(crawl), "--out", str(out), "--cache-dir", str(cache), "--backend", "dlib",
                 "--workers", "2", "--engine", engine])


@pytest.fixture(scope="module")
def builds(mini_dir, tmp_path_factory, local_ray):
    base = tmp_path_factory.mktemp("ray_build")
    expected = make_crawl(mini_dir / "hq", base / "crawl", per_identity=4)
    mp = pytest.MonkeyPatch()
    mp.setenv("CELEBREF_PROGRESS", "0")
    try:
        rcs = {e: _build(base / "crawl", base / f"out_{e}", base / f"cache_{e}", e) for e in ("local", "ray")}
    finally:
        mp.undo()
    return {"base": base, "crawl": base / "crawl", "expected": expected, "rcs": rcs}


@needs_dlib
def test_build_on_ray_gives_the_local_decisions_reasons_and_bytes(builds):
    base, exp = builds["base"], builds["expected"]
    assert builds["rcs"] == {"local": 0, "ray": 0}  # unreadable files are decisions, not failures
    man = {e: pd.read_parquet(base / f"out_{e}" / "manifest.parquet") for e in ("local", "ray")}
    pd.testing.assert_frame_equal(man["local"], man["ray"])
    prim = man["ray"][man["ray"].is_primary].set_index("source_path")
    assert {p: (prim.loc[p, "decision"], prim.loc[p, "reason"]) for p in exp} == exp  # the crawl's right answers
    a, b = _files(base / "out_local", BUILD_OUTPUTS), _files(base / "out_ray", BUILD_OUTPUTS)
    assert sum(k.startswith("images/") for k in a) == int((prim.decision == "accepted").sum()) - len(
        [ln for ln in a["SpecificLists.txt"].decode().splitlines() if ln])  # references; probes are apart
    assert sorted(a) == sorted(b)
    assert [k for k in a if a[k] != b[k]] == []


@needs_dlib
@pytest.mark.parametrize("first,second", [("local", "ray"), ("ray", "local")])
def test_build_interrupted_on_one_engine_is_finished_by_the_other(builds, first, second, monkeypatch):
    """Half of the cache entries are missing (as if a first run had been killed early); a run on ``first`` is
    interrupted after 3 more analyses, and ``second`` finishes from the shared cache: same bytes as a full build."""
    base = builds["base"]
    cache = base / f"cache_{first}_{second}"
    shutil.copytree(base / f"cache_{first}", cache)
    entries = sorted((cache / "analyze").rglob("*.json"))
    for p in entries[::2]:
        p.unlink()
    shutil.rmtree(cache / "aligned")
    out = base / f"out_{first}_{second}"
    monkeypatch.setenv("CELEBREF_BUILD_INTERRUPT", "analyze:3")
    with pytest.raises(BuildInterrupted):  # the library hook (a KeyboardInterrupt) as a kill of the driver
        from celebref.dataset import BuildConfig, build_dataset

        build_dataset(BuildConfig(crawl=builds["crawl"], out=out, backend="dlib", workers=2, cache_dir=cache),
                      log=lambda s: None, engine=first)
    left = len(entries) - len(entries[::2]) + 3
    assert len(list((cache / "analyze").rglob("*.json"))) == left
    monkeypatch.delenv("CELEBREF_BUILD_INTERRUPT")
    assert _build(builds["crawl"], out, cache, second) == 0
    assert len(list((cache / "analyze").rglob("*.json"))) == len(entries)
    a, b = _files(base / "out_local", BUILD_OUTPUTS), _files(out, BUILD_OUTPUTS)
    assert sorted(a) == sorted(b)
    assert [k for k in a if a[k] != b[k]] == []


def test_degrade_is_byte_identical_across_engines(mini_dir, tmp_path, local_ray, capsys):
    hq = tmp_path / "hq"
    for d in sorted(p for p in (mini_dir / "hq").iterdir() if p.is_dir())[:4]:
        shutil.copytree(d, hq / d.name)
    n = len(list(hq.rglob("*.png")))
    (hq / sorted(p.name for p in hq.iterdir())[0] / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    rcs = {}
    for engine in ("local", "ray"):
        rcs[engine] = main(["degrade", "--preset", "dfdnet", "--seed", "7", "--input", str(hq), "--out",
                            str(tmp_path / engine), "--workers", "2", "--engine", engine])
    assert rcs == {"local": 3, "ray": 3}  # the broken input is a failure, named in the summary
    assert capsys.readouterr().err.count(f"1 of {n + 1} item(s) failed") == 2
    a, b = _files(tmp_path / "local", DEGRADE_OUTPUTS), _files(tmp_path / "ray", DEGRADE_OUTPUTS)
    assert sum(k.startswith("lq/") for k in a) == n and len(a["GenericLists.txt"].decode().splitlines()) == n
    assert sorted(a) == sorted(b)
    assert [k for k in a if a[k] != b[k]] == []
    man = pd.read_csv(tmp_path / "ray" / "manifest.csv", keep_default_na=False)
    assert man.loc[man["id"].str.contains("broken"), "reason"].str.startswith("unreadable").all()
