"""Weight store: registry, downloads against a loopback HTTP server, safe zip extraction, safe loading, CLI."""

from __future__ import annotations

import hashlib
import http.server
import io
import re
import socket
import stat
import threading
import zipfile
from pathlib import Path

import contextlib
import os
import warnings

import numpy as np
import pytest
import torch

from baselines.base import RestorationMethod, RestoreResult
from celebref.app import cli
from celebref import download as dl
from celebref import weights
from celebref.errors import WeightError

@contextlib.contextmanager
def warnings_as_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# --- a tiny HTTP server with Range support ---------------------------------------------------------


class _Server:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server API
                rng = self.headers.get("Range")
                server.requests.append((self.path, rng))
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                m = re.fullmatch(r"bytes=(\d+)-", rng or "")
                if m and not self.path.startswith("/norange/"):
                    start = int(m.group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    body = data[start:]
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    body = data
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # silence
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return self.base + path

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def server():
    s = _Server()
    yield s
    s.close()


@pytest.fixture
def home(tmp_path, monkeypatch, server):
    h = tmp_path / "home"
    monkeypatch.setenv("CELEBREF_HOME", str(h))
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    server.requests.clear()
    return h


def _blob(n: int, seed: int) -> bytes:
    return bytes((i * 131 + seed * 7 + (i >> 8)) & 0xFF for i in range(n))


def _entry(monkeypatch, name: str, urls, data: bytes | None, **kw) -> weights.WeightFile:
    w = weights.WeightFile(
        name=name, filename=kw.pop("filename", f"{name}.bin"), urls=tuple(urls), licence="test",
        sha256=kw.pop("sha256", hashlib.sha256(data).hexdigest() if data is not None else None),
        size=kw.pop("size", len(data) if data is not None else None), **kw,
    )
    monkeypatch.setitem(weights.REGISTRY, name, w)
    return w


# --- downloads ---------------------------------------------------------------------------------


def test_fetch_success_lands_file_and_verifies(server, home, monkeypatch):
    monkeypatch.setenv("CELEBREF_OFFLINE", "0")
    data = _blob(3 * dl.CHUNK + 12345, 1)
    server.files["/w/ok.bin"] = data
    _entry(monkeypatch, "t-ok", [server.url("/w/ok.bin")], data)
    path = weights.fetch("t-ok")
    assert path == home / "weights" / "t-ok" / "t-ok.bin"
    assert path.read_bytes() == data
    assert not dl.part_path(path).exists()
    assert weights.weight_path("t-ok") == path
    assert weights.status("t-ok").state == weights.PRESENT
    assert weights.file_sha256("t-ok") == hashlib.sha256(data).hexdigest()
    n = len(server.requests)
    assert weights.fetch("t-ok") == path  # already present: no second request
    assert len(server.requests) == n


def test_fetch_resumes_partial_file_with_range(server, home, monkeypatch):
    monkeypatch.setenv("CELEBREF_OFFLINE", "0")
    data = _blob(2 * dl.CHUNK + 777, 2)
    server.files["/w/resume.bin"] = data
    _entry(monkeypatch, "t-resume", [server.url("/w/resume.bin")], data)
    dest = weights.default_path("t-resume")
    dest.parent.mkdir(parents=True)
    cut = dl.CHUNK + 100
    dl.part_path(dest).write_bytes(data[:cut])
    weights.fetch("t-resume")
    assert server.requests == [("/w/resume.bin", f"bytes={cut}-")]
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()
    assert not dl.part_path(dest).exists()


def test_server_without_range_support_restarts_cleanly(server, home):
    data = _blob(50_000, 3)
    server.files["/norange/x.bin"] = data
    dest = home / "x.bin"
    dest.parent.mkdir(parents=True)
    dl.part_path(dest).write_bytes(b"stale-prefix-that-is-not-data")
    dl.download(server.url("/norange/x.bin"), dest, sha256=hashlib.sha256(data).hexdigest())
    assert server.requests[-1][1] is not None  # we asked for a range ...
    assert dest.read_bytes() == data  # ... got a full 200 body and did not append it to the stale prefix


def test_checksum_mismatch_deletes_and_reports(server, home, monkeypatch):
    monkeypatch.setenv("CELEBREF_OFFLINE", "0")
    data = _blob(10_000, 4)
    server.files["/w/bad.bin"] = data
    wrong = hashlib.sha256(b"something else").hexdigest()
    _entry(monkeypatch, "t-bad", [server.url("/w/bad.bin")], data, sha256=wrong)
    with pytest.raises(WeightError) as ei:
        weights.fetch("t-bad")
    msg = str(ei.value)
    assert "checksum mismatch" in msg and wrong in msg and hashlib.sha256(data).hexdigest() in msg
    dest = weights.default_path("t-bad")
    assert not dest.exists() and not dl.part_path(dest).exists()


def test_offline_never_touches_network_and_says_where(server, home, monkeypatch):
    monkeypatch.setenv("CELEBREF_OFFLINE", "1")
    data = _blob(1000, 5)
    server.files["/w/off.bin"] = data
    w = _entry(monkeypatch, "t-off", [server.url("/w/off.bin")], data)
    for call in (lambda: weights.fetch("t-off"), lambda: weights.weight_path("t-off")):
        with pytest.raises(WeightError) as ei:
            call()
        msg = str(ei.value)
        assert server.url("/w/off.bin") in msg
        assert str(home / "weights" / "t-off" / "t-off.bin") in msg
        assert w.sha256 in msg and "CELEBREF_WEIGHT_T_OFF" in msg
    assert server.requests == []


def test_unreachable_host_gives_instructions(home, monkeypatch):
    monkeypatch.setenv("CELEBREF_OFFLINE", "0")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connection refused
    url = f"http://127.0.0.1:{port}/nothing.bin"
    _entry(monkeypatch, "t-down", [url], b"x")
    with pytest.raises(WeightError) as ei:
        weights.fetch("t-down", timeout=5)
    assert "download failed" in str(ei.value) and url in str(ei.value)
    assert str(weights.default_path("t-down")) in str(ei.value)


def test_fetch_zip_pack_extracts_into_folder(server, home, monkeypatch):
    monkeypatch.setenv("CELEBREF_OFFLINE", "0")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("pack/a.onnx", b"AAAA")
        zf.writestr("pack/b.onnx", b"BBBBBB")
    data = buf.getvalue()
    server.files["/w/pack.zip"] = data
    _entry(monkeypatch, "t-pack", [server.url("/w/pack.zip")], data, kind="zip", filename="pack.zip",
           members=("a.onnx", "b.onnx"), member_sha256={"a.onnx": hashlib.sha256(b"AAAA").hexdigest()})
    folder = weights.fetch("t-pack")
    assert folder == home / "weights" / "t-pack"
    assert (folder / "a.onnx").read_bytes() == b"AAAA" and (folder / "b.onnx").read_bytes() == b"BBBBBB"
    assert not (home / "weights" / "pack.zip").exists()  # archive removed after extraction
    assert weights.weight_path("t-pack") == folder
    (folder / "a.onnx").write_bytes(b"tampered")
    assert weights.status("t-pack").state == weights.BAD_HASH


# --- zip safety --------------------------------------------------------------------------------


def _zip_with(tmp_path: Path, name: str, *, symlink: bool = False) -> Path:
    p = tmp_path / "evil.zip"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("good.txt", b"fine")
        info = zipfile.ZipInfo(name)
        if symlink:
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, b"/etc/passwd" if symlink else b"pwned")
    return p


@pytest.mark.parametrize("entry", ["../escape.txt", "sub/../../escape.txt", "/abs/escape.txt", "C:/escape.txt",
                                   "..\\escape.txt"])
def test_zip_refuses_traversal_and_absolute_paths(tmp_path, entry):
    archive = _zip_with(tmp_path, entry)
    dest = tmp_path / "out" / "pack"
    with pytest.raises(WeightError) as ei:
        dl.safe_extract_zip(archive, dest)
    assert repr(entry) in str(ei.value)
    assert not (tmp_path / "out").exists()  # checked before writing anything, not even the good entry
    assert not (tmp_path / "escape.txt").exists() and not Path("/abs/escape.txt").exists()


def test_zip_refuses_symlinks(tmp_path):
    archive = _zip_with(tmp_path, "link", symlink=True)
    with pytest.raises(WeightError, match="symbolic link"):
        dl.safe_extract_zip(archive, tmp_path / "pack")
    assert not (tmp_path / "pack").exists()


def test_zip_extracts_plain_archive(tmp_path):
    p = tmp_path / "ok.zip"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("x/1.bin", b"1")
        zf.writestr("y/2.bin", b"22")
    assert dl.safe_extract_zip(p, tmp_path / "d") == ["x/1.bin", "y/2.bin"]  # two top dirs: kept
    assert (tmp_path / "d" / "y" / "2.bin").read_bytes() == b"22"


# --- safe loading ------------------------------------------------------------------------------


class Sneaky:
    """A custom class: unpickling it would run arbitrary code paths; weights_only must refuse it."""

    def __init__(self) -> None:
        self.x = 1


def test_weights_only_refuses_custom_class(tmp_path):
    bad = tmp_path / "bad.pth"
    torch.save({"w": torch.ones(2), "obj": Sneaky()}, bad)
    with pytest.raises(WeightError, match="refusing to load"):
        weights.load_torch_checkpoint(bad)


def test_load_plain_and_safetensors_and_unwrap(tmp_path):
    from safetensors.torch import save_file

    sd = {"module.conv.weight": torch.arange(6.0).reshape(2, 3), "module.conv.bias": torch.zeros(2)}
    p = tmp_path / "ok.pth"
    torch.save({"params_ema": sd, "params": {"other": torch.ones(1)}, "iter": 5}, p)
    ck = weights.load_torch_checkpoint(p)
    un = weights.unwrap_state_dict(ck)
    assert sorted(un) == ["conv.bias", "conv.weight"]
    assert torch.equal(un["conv.weight"], sd["module.conv.weight"])
    st = tmp_path / "ok.safetensors"
    save_file({"a": torch.full((2, 2), 3.0)}, str(st))
    assert torch.equal(weights.load_torch_checkpoint(st)["a"], torch.full((2, 2), 3.0))
    assert weights.unwrap_state_dict({"state_dict": {"k": 1}}) == {"k": 1}


def test_load_by_name_uses_registry(tmp_path, home, monkeypatch):
    p = tmp_path / "model.pth"
    torch.save({"params": {"w": torch.ones(3)}}, p)
    data = p.read_bytes()
    _entry(monkeypatch, "t-load", ["http://127.0.0.1:9/none"], data)
    monkeypatch.setenv(weights.env_var("t-load"), str(p))
    assert torch.equal(weights.unwrap_state_dict(weights.load_torch_checkpoint("t-load"))["w"], torch.ones(3))


# --- local paths, hashes, status -----------------------------------------------------------------


def test_env_and_paths_json_overrides(tmp_path, home, monkeypatch, capsys):
    data = b"override-bytes"
    _entry(monkeypatch, "t-over", ["http://127.0.0.1:9/none"], data)
    local = tmp_path / "mine.bin"
    local.write_bytes(data)
    assert weights.env_var("t-over") == "CELEBREF_WEIGHT_T_OVER"
    assert cli.main(["weights", "path", "t-over", "--set", str(local)]) == 0
    assert weights.resolve("t-over") == (local.resolve(), "paths.json")
    assert weights.weight_path("t-over") == local.resolve()
    other = tmp_path / "env.bin"
    other.write_bytes(b"different")
    monkeypatch.setenv("CELEBREF_WEIGHT_T_OVER", str(other))
    with pytest.warns(UserWarning, match="does not match"):  # explicit override with wrong hash: used, warned
        assert weights.weight_path("t-over") == other
    assert weights.status("t-over").state == weights.BAD_HASH
    monkeypatch.delenv("CELEBREF_WEIGHT_T_OVER")
    assert cli.main(["weights", "path", "t-over", "--unset"]) == 3  # back to the (missing) cache path
    assert weights.resolve("t-over")[1] == "cache"


def test_bad_cached_file_is_an_error(home, monkeypatch):
    data = b"expected-content"
    _entry(monkeypatch, "t-corrupt", ["http://127.0.0.1:9/none"], data)
    dest = weights.default_path("t-corrupt")
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"expected-contenX")  # same size, wrong bytes
    with pytest.raises(WeightError, match="sha256"):
        weights.weight_path("t-corrupt")
    assert not weights.status("t-corrupt").ok


def test_file_sha256_cache_follows_content(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(b"one")
    assert weights.file_sha256(p) == hashlib.sha256(b"one").hexdigest()
    p.write_bytes(b"two!")  # size and mtime change: the cache must not answer with the old digest
    assert weights.file_sha256(p) == hashlib.sha256(b"two!").hexdigest()


def test_declared_hashes_agree_with_filename_prefixes():
    for w in weights.REGISTRY.values():
        if w.sha256:
            assert re.fullmatch(r"[0-9a-f]{64}", w.sha256), w.name
        m = re.search(r"-([0-9a-f]{8})\.pth$", w.filename)
        if m:  # torch-hub convention: the name carries the first 8 hex digits of the sha256
            assert (w.sha256 and w.sha256.startswith(m.group(1))) or w.sha256_prefix == m.group(1), w.name
    required = {"dmdnet", "dfdnet-generator", "dfdnet-dictionary", "gfpgan-v1.4", "codeformer",
                "insightface-buffalo_l", "fid-inception", "alexnet", "vgg16", "lpips-alex-v0.1",
                "lpips-vgg-v0.1", "niqe-params"}
    assert required <= set(weights.REGISTRY)
    for n in ("codeformer", "insightface-buffalo_l", "dmdnet"):
        assert weights.REGISTRY[n].noncommercial


# --- CLI ---------------------------------------------------------------------------------------


def test_cli_list_shows_every_entry_with_status(home, monkeypatch, capsys):
    data = b"listed"
    _entry(monkeypatch, "t-listed", ["http://127.0.0.1:9/none"], data)
    dest = weights.default_path("t-listed")
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"LISTED")  # wrong hash
    assert cli.main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    lines = {ln.split()[0]: ln for ln in out.splitlines() if ln and not ln.startswith((" ", "cache:"))}
    for name in weights.REGISTRY:
        assert name in lines, name
        assert re.search(r"\s(present|missing|bad hash|unverified)\s", lines[name]), lines[name]
    assert "bad hash" in lines["t-listed"]
    assert "missing" in lines["dmdnet"] and "NON-COMMERCIAL" in lines["codeformer"]
    assert cli.main(["weights", "verify"]) == 3  # a bad file makes verify fail
    assert "t-listed: bad hash" in capsys.readouterr().out


def test_cli_fetch_offline_prints_instructions_without_traceback(home, capsys):
    assert cli.main(["weights", "fetch", "dmdnet"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "https://github.com/csxmli2016/DMDNet/releases/download/v1/DMDNet.pth" in err
    assert str(home / "weights" / "dmdnet" / "DMDNet.pth") in err
    assert cli.main(["weights", "fetch", "dfdnet-dictionary"]) == 2
    assert "drive.google.com" in capsys.readouterr().err


def test_complete_partial_file_is_verified_without_request(server, home, monkeypatch):
    monkeypatch.setenv("CELEBREF_OFFLINE", "0")
    data = _blob(5000, 6)
    server.files["/w/done.bin"] = data
    _entry(monkeypatch, "t-done", [server.url("/w/done.bin")], data)
    dest = weights.default_path("t-done")
    dest.parent.mkdir(parents=True)
    dl.part_path(dest).write_bytes(data)  # an interrupted run had received every byte
    assert weights.fetch("t-done").read_bytes() == data
    assert server.requests == []


def test_cli_fetch_all_offline_reports_each_and_fails(home, capsys):
    assert cli.main(["weights", "fetch", "--all"]) == 3
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for w in weights.REGISTRY.values():
        if w.kind != "package":
            assert f"{w.name}: weight {w.name!r} is not available" in err, w.name


# --- one message for every missing file (issue 12 item 3) ------------------------------------------------


def test_check_available_lists_every_missing_file_with_its_users(home, monkeypatch):
    _entry(monkeypatch, "t-a", ["https://example.org/a.bin"], b"aaaa")
    _entry(monkeypatch, "t-b", ["https://drive.google.com/some/folder"], None, manual=True, notes="the b file")
    _entry(monkeypatch, "t-c", ["https://example.org/c.bin"], b"cccc")
    _entry(monkeypatch, "t-ok", ["https://example.org/ok.bin"], b"okok")
    for name, data in (("t-c", b"CCCC"), ("t-ok", b"okok")):
        dest = weights.default_path(name)
        dest.parent.mkdir(parents=True)
        dest.write_bytes(data)  # t-c: right size, wrong sha256
    req = {"method m1": ["t-a", "t-b", "t-ok"], "method m2": ["t-a"], "metric x": ["t-c"]}
    missing = weights.check_available(req)
    assert [(m.name, m.users, m.state) for m in missing] == [
        ("t-a", ("method m1", "method m2"), weights.MISSING), ("t-b", ("method m1",), weights.MISSING),
        ("t-c", ("metric x",), weights.BAD_HASH)]
    assert weights.check_available(["t-ok"]) == []
    with pytest.raises(weights.WeightsUnavailableError) as ei:
        weights.require_available(req, hint="HINT: skip them")
    msg = str(ei.value)
    assert msg.startswith("3 weight files are not available for method m1, method m2, metric x:")
    for needle in ("[1/3] t-a (needed by method m1, method m2)", "https://example.org/a.bin", str(weights.default_path("t-a")),
                   "[2/3] t-b (needed by method m1)", "https://drive.google.com/some/folder", "the b file",
                   "[3/3] t-c (needed by metric x)", hashlib.sha256(b"cccc").hexdigest(), "allow_unverified=True"):
        assert needle in msg, needle
    assert msg.endswith("HINT: skip them")
    assert ei.value.users == ["method m1", "method m2", "metric x"]


def test_evaluate_and_restore_refuse_to_start_with_one_message(home, tmp_path, capsys):
    from celebref.imageio import write_image

    rng = np.random.default_rng(0)
    for d in ("lq", "gt"):
        write_image(tmp_path / d / "0.png", rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    out = tmp_path / "run"
    code = cli.main(["evaluate", "--lq", str(tmp_path / "lq"), "--gt", str(tmp_path / "gt"), "--methods", "dmdnet,gfpgan",
                     "--metrics", "psnr,lpips,fid", "--device", "cpu", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "5 weight files are not available for method dmdnet, method gfpgan, metric fid, metric lpips" in err
    for name in ("dmdnet", "gfpgan-v1.4", "fid-inception", "alexnet", "lpips-alex-v0.1"):
        w = weights.get(name)
        assert f"] {name} (needed by" in err and w.urls[0] in err and str(weights.default_path(name)) in err, name
    assert "--skip-unavailable" in err
    assert not (out / "restored").exists()  # nothing was started
    code = cli.main(["restore", "--input", str(tmp_path / "lq"), "--methods", "dmdnet,codeformer", "--device", "cpu",
                     "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "2 weight files are not available for method codeformer, method dmdnet" in err
    assert "csxmli2016/DMDNet/releases" in err and "sczhou/CodeFormer/releases" in err


# --- a file that is not a checkpoint ---------------------------------------------------------------------


def test_invalid_checkpoints_say_truncated_download_with_size_and_sha256(tmp_path, home, monkeypatch):
    good = tmp_path / "good.pth"
    torch.save({"w": torch.randn(64, 64)}, good)
    legacy = tmp_path / "legacy.pth"
    torch.save({"w": torch.randn(64, 64)}, legacy, _use_new_zipfile_serialization=False)
    data, leg = good.read_bytes(), legacy.read_bytes()
    cases = {
        "truncated.pth": data[: len(data) // 2], "head.pth": data[:100], "legacy_cut.pth": leg[: len(leg) // 2],
        "garbage.pth": bytes(range(256)) * 20, "pickle_like.pth": b"\x80\x04garbage" * 50, "empty.pth": b"",
        "page.pth": b"<!DOCTYPE html><html><head><title>Google Drive</title></head></html>\n",
        "cut.safetensors": b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":",
    }
    for name, blob in cases.items():
        p = tmp_path / name
        p.write_bytes(blob)
        with pytest.raises(WeightError) as ei:
            weights.load_torch_checkpoint(p)
        msg = str(ei.value)
        assert "is not a valid checkpoint (truncated download?)" in msg, (name, msg)
        assert f"It has {len(blob)} bytes" in msg and hashlib.sha256(blob).hexdigest() in msg, (name, msg)
        assert "weights_only=False" not in msg and "weights_only" not in msg, (name, msg)
    assert "HTML" in str(pytest.raises(WeightError, weights.load_torch_checkpoint, tmp_path / "page.pth").value)
    # by store name: the expected size/sha256 and where to get it again
    _entry(monkeypatch, "t-trunc", ["https://example.org/t.pth"], data)
    monkeypatch.setenv(weights.env_var("t-trunc"), str(tmp_path / "truncated.pth"))
    with pytest.warns(weights.UnverifiedWeightWarning), pytest.raises(WeightError) as ei:
        weights.load_torch_checkpoint("t-trunc")
    msg = str(ei.value)
    assert f"(expected {len(data)})" in msg and f"Expected sha256: {hashlib.sha256(data).hexdigest()}" in msg
    assert "https://example.org/t.pth" in msg
    # a well-formed checkpoint that holds Python objects is still refused as such
    evil = tmp_path / "evil.pth"
    torch.save({"o": Sneaky()}, evil)
    evil_legacy = tmp_path / "evil_legacy.pth"
    torch.save({"o": Sneaky()}, evil_legacy, _use_new_zipfile_serialization=False)
    for p in (evil, evil_legacy):
        with pytest.raises(WeightError, match="refusing to load"):
            weights.load_torch_checkpoint(p)


# --- accepting unverified files: explicit and recorded (issue 14 item 4) -----------------------------------


def test_allow_unverified_is_explicit_announced_and_recorded(home, monkeypatch):
    monkeypatch.delenv(weights.ALLOW_UNVERIFIED_ENV, raising=False)
    published = b"published-bytes"
    _entry(monkeypatch, "t-unv", ["https://example.org/u.bin"], published)
    dest = weights.default_path("t-unv")
    dest.parent.mkdir(parents=True)
    mine = b"my-own-checkpoint-bytes"
    dest.write_bytes(mine)
    actual = hashlib.sha256(mine).hexdigest()
    with pytest.raises(WeightError, match="allow_unverified=True") as ei:
        weights.weight_path("t-unv")
    assert f"expected {len(published)}" in str(ei.value)
    assert not [u for u in weights.unverified_uses() if u["name"] == "t-unv"]
    with pytest.warns(weights.UnverifiedWeightWarning, match="t-unv.*allow_unverified") as rec:
        assert weights.weight_path("t-unv", allow_unverified=True) == dest
    assert len(rec) == 1
    with warnings_as_errors():  # announced once per file and process
        assert weights.weight_path("t-unv", allow_unverified=True) == dest
    (use,) = [u for u in weights.unverified_uses() if u["name"] == "t-unv"]
    assert use == {"name": "t-unv", "path": str(dest), "source": "cache", "sha256": actual,
                   "expected_sha256": hashlib.sha256(published).hexdigest(), "reason": use["reason"],
                   "accepted_by": "allow_unverified"}
    assert weights.check_available(["t-unv"], allow_unverified=True) == []
    # the process-wide switch (a command-line flag) and the environment variable
    with pytest.raises(WeightError):
        weights.weight_path("t-unv", allow_unverified=False)
    with weights.allowing_unverified():
        assert os.environ[weights.ALLOW_UNVERIFIED_ENV] == "1"
        assert weights.weight_path("t-unv") == dest
    assert weights.ALLOW_UNVERIFIED_ENV not in os.environ
    monkeypatch.setenv(weights.ALLOW_UNVERIFIED_ENV, "1")
    assert weights.weight_path("t-unv") == dest
    monkeypatch.setenv(weights.ALLOW_UNVERIFIED_ENV, "0")
    with pytest.raises(WeightError):
        weights.weight_path("t-unv")


class _Weighted(RestorationMethod):
    """Copies its input; loads a weight file through the store (stands in for a network's checkpoint)."""

    name = "t-weighted"
    weights = ("t-unv2",)
    input_size = None

    def load(self) -> None:
        weights.weight_path("t-unv2")
        self.loaded = True

    def _restore(self, items):
        return [RestoreResult(it.id, it.image.copy()) for it in items]


def test_restore_flag_allow_unverified_weights_is_recorded(home, tmp_path, monkeypatch, capsys):
    import json

    from baselines.registry import METHODS
    from celebref.imageio import write_image

    monkeypatch.delenv(weights.ALLOW_UNVERIFIED_ENV, raising=False)
    monkeypatch.setattr(METHODS, "_entries", dict(METHODS._entries))
    METHODS.register("t-weighted", _Weighted, weights=_Weighted.weights)
    _entry(monkeypatch, "t-unv2", ["https://example.org/u2.bin"], b"published")
    dest = weights.default_path("t-unv2")
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"synthetic checkpoint")
    write_image(tmp_path / "in" / "a.png", np.zeros((8, 8, 3), np.uint8))
    argv = ["restore", "--input", str(tmp_path / "in"), "--methods", "t-weighted", "--device", "cpu"]
    assert cli.main(argv + ["--out", str(tmp_path / "r1")]) == 2
    err = capsys.readouterr().err
    assert "1 weight file is not available for method t-weighted" in err and "--allow-unverified-weights" in err
    with pytest.warns(weights.UnverifiedWeightWarning, match="t-unv2"):
        assert cli.main(argv + ["--out", str(tmp_path / "r2"), "--allow-unverified-weights"]) == 0
    meta = json.loads((tmp_path / "r2" / "restore.json").read_text())
    assert meta["allow_unverified_weights"] is True
    assert [(u["name"], u["path"], u["sha256"]) for u in meta["unverified_weights"]] == [
        ("t-unv2", str(dest), hashlib.sha256(b"synthetic checkpoint").hexdigest())]
    assert meta["methods"][0]["weights"] == {"t-unv2": hashlib.sha256(b"synthetic checkpoint").hexdigest()}
    assert weights.ALLOW_UNVERIFIED_ENV not in os.environ  # the flag does not leak past the command
    # evaluate: the same flag, recorded in run.json
    write_image(tmp_path / "gt" / "a.png", np.zeros((8, 8, 3), np.uint8))
    ev = ["evaluate", "--lq", str(tmp_path / "in"), "--gt", str(tmp_path / "gt"), "--methods", "t-weighted",
          "--metrics", "psnr", "--device", "cpu"]
    assert cli.main(ev + ["--out", str(tmp_path / "e1")]) == 2
    assert "--allow-unverified-weights" in capsys.readouterr().err
    assert cli.main(ev + ["--out", str(tmp_path / "e2"), "--allow-unverified-weights"]) == 0
    run = json.loads((tmp_path / "e2" / "run.json").read_text())
    assert run["allow_unverified_weights"] is True
    assert [(u["name"], u["sha256"]) for u in run["unverified_weights"]] == [
        ("t-unv2", hashlib.sha256(b"synthetic checkpoint").hexdigest())]


class _CallbackState:
    """A class a Lightning checkpoint names beside its tensors (a callback's state)."""

    built = 0

    def __setstate__(self, state):
        type(self).built += 1
        self.__dict__.update(state)


def test_lightning_checkpoints_load_with_inert_stand_ins_only_when_asked(tmp_path):
    """Lightning files pickle hyper-parameters and callbacks beside the tensors: refused by default
    (weights_only), loaded with ``inert_globals=True`` without ever importing or running those classes."""
    import argparse

    import torch

    from celebref.weights import load_torch_checkpoint

    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": {"model.w": torch.ones(2)}, "hyper_parameters": argparse.Namespace(arch="ir_50"),
                "callbacks": {"ModelCheckpoint": _CallbackState()}}, path)
    with pytest.raises(WeightError, match="refusing to load"):
        load_torch_checkpoint(path)
    _CallbackState.built = 0
    ckpt = load_torch_checkpoint(path, inert_globals=True)
    assert _CallbackState.built == 0 and type(ckpt["callbacks"]["ModelCheckpoint"]) is not _CallbackState
    assert torch.equal(ckpt["state_dict"]["model.w"], torch.ones(2))
