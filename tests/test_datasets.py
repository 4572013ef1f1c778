"""Named real-world test sets (celebref.datasets, `celebref data`, `celebref list datasets`): declarations, local
status, offline instructions, downloads against a loopback server (sha256-checked files, safe zip extraction)."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import numpy as np
import pytest

from celebref import datasets as D
from celebref.app import cli
from celebref.errors import UnknownNameError, WeightError
from celebref.imageio import write_image
from celebref.registry import Entry
from test_weights import _Server  # the loopback HTTP server with Range support


@pytest.fixture(scope="module")
def server():
    s = _Server()
    yield s
    s.close()


@pytest.fixture
def home(tmp_path, monkeypatch):
    h = tmp_path / "home"
    monkeypatch.setenv("CELEBREF_HOME", str(h))
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    return h


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    from PIL import Image

    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _declare(monkeypatch, src: D.DatasetSource) -> None:
    monkeypatch.setitem(D.DATASETS._entries, src.name, Entry(name=src.name, target=src, description=src.title))


def test_declared_sets():
    names = set(D.DATASETS.names())
    assert {"wider-test", "lfw-test", "webphoto-test", "celebchild-test", "dmdnet-reallqs"} <= names
    assert D.get("LFW").name == "lfw-test" and D.get("reallqs").name == "dmdnet-reallqs"
    with pytest.raises(UnknownNameError, match="did you mean"):
        D.get("lfw-tset")
    published = {"lfw-test": 1711, "celebchild-test": 180, "webphoto-test": 469, "wider-test": 970, "dmdnet-reallqs": 7}
    for n, count in published.items():
        src = D.get(n)
        assert src.n_images == count and src.licence and src.noncommercial and (src.urls or src.files)
    real = D.get("dmdnet-reallqs")
    assert len(real.files) == 7 and all(len(sha) == 64 for _, sha in real.files.values())


def test_offline_and_manual_messages_say_what_to_put_where(home, capsys):
    with pytest.raises(WeightError) as e:
        D.fetch("webphoto-test")
    msg = str(e.value)
    assert "drive.google.com" in msg and str(home / "datasets" / "webphoto-test") in msg
    assert "CELEBREF_DATASET_WEBPHOTO_TEST" in msg and "NON-COMMERCIAL" in msg
    with pytest.raises(WeightError, match="offline mode"):  # conftest sets CELEBREF_OFFLINE=1
        D.fetch("dmdnet-reallqs")
    assert cli.main(["data", "fetch", "wider", "reallqs"]) == 3
    err = capsys.readouterr().err
    assert "shangchenzhou.com" in err and "0007.png" in err and "2 of 2" in err
    assert cli.main(["data", "fetch", "nope"]) == 2  # unknown name: usage error, one line
    assert "unknown dataset 'nope'" in capsys.readouterr().err


def test_local_folder_status_and_override(home, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "my-lfw"
    (folder / "sub").mkdir(parents=True)
    write_image(folder / "sub" / "a.png", np.zeros((8, 8, 3), np.uint8))
    monkeypatch.setenv("CELEBREF_DATASET_LFW_TEST", str(folder))
    st = D.status("lfw-test")
    assert st.ok and st.n_images == 1 and st.source == "env" and "1711 published" in st.detail
    assert D.fetch("lfw-test") == folder  # present: no network, no instructions
    assert cli.main(["data", "path", "lfw"]) == 0
    assert capsys.readouterr().out.strip() == str(folder)
    assert cli.main(["data", "status", "--json", "lfw-test"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["state"] == "present" and row["images"] == 1 and row["noncommercial"] is True


def test_fetch_files_checks_each_sha256(home, server, monkeypatch):
    monkeypatch.delenv("CELEBREF_OFFLINE")
    good, other = _png(1), _png(2)
    server.files["/ds/a.png"] = good
    server.files["/ds/b.png"] = other
    src = D.DatasetSource("test-files", "Test", "two files", licence="test", kind="files", noncommercial=False,
                          files={"a.png": (server.url("/ds/a.png"), hashlib.sha256(good).hexdigest()),
                                 "b.png": (server.url("/ds/b.png"), hashlib.sha256(good).hexdigest())})
    _declare(monkeypatch, src)
    with pytest.raises(WeightError, match="checksum mismatch"):  # b.png is not the declared file
        D.fetch("test-files")
    folder = home / "datasets" / "test-files"
    assert (folder / "a.png").read_bytes() == good and not (folder / "b.png").exists()
    assert D.status("test-files").state == "incomplete"
    server.files["/ds/b.png"] = good
    assert D.fetch("test-files") == folder
    assert D.status("test-files").ok
    (folder / "b.png").write_bytes(other)
    assert D.status("test-files").state == "bad hash"


def test_fetch_zip_extracts_safely(home, server, monkeypatch):
    monkeypatch.delenv("CELEBREF_OFFLINE")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("Set/x.png", _png(3))
        zf.writestr("Set/y.png", _png(4))
    data = buf.getvalue()
    server.files["/set.zip"] = data
    src = D.DatasetSource("test-zip", "Zip", "an archive", licence="test", kind="zip", urls=(server.url("/set.zip"),),
                          sha256=hashlib.sha256(data).hexdigest(), size=len(data), n_images=2)
    _declare(monkeypatch, src)
    folder = D.fetch("test-zip")
    assert sorted(p.name for p in folder.glob("*.png")) == ["x.png", "y.png"]
    assert not (folder.parent / "test-zip.zip").exists()
    assert D.status("test-zip").ok and D.status("test-zip").detail == ""
    bad = io.BytesIO()
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("../escape.png", _png(5))
    server.files["/bad.zip"] = bad.getvalue()
    _declare(monkeypatch, D.DatasetSource("test-bad", "Bad", "traversal", licence="test", kind="zip",
                                          urls=(server.url("/bad.zip"),), sha256=hashlib.sha256(bad.getvalue()).hexdigest()))
    with pytest.raises(WeightError, match="escapes"):
        D.fetch("test-bad")
    assert not (home / "datasets" / "escape.png").exists()


def test_list_datasets_cli(capsys):
    assert cli.main(["list", "datasets"]) == 0
    out = capsys.readouterr().out
    for n in ("wider-test", "lfw-test", "webphoto-test", "celebchild-test", "dmdnet-reallqs"):
        assert n in out
