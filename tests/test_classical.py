"""Weight-free baselines (``lq``, ``bicubic``) and results produced elsewhere (``external:LABEL=<folder>``)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from baselines.base import STATUS_ERROR, STATUS_FALLBACK_INPUT, STATUS_MISSING, STATUS_OK, RestoreItem
from baselines.classical import NO_NATIVE_REASON, BicubicMethod, LQMethod
from baselines.external import ExternalMethod
from baselines.registry import create_method
from celebref.errors import ConfigError
from celebref.imageio import write_image


def _img(seed: int, h: int = 64, w: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_lq_returns_the_input_bytes():
    items = [RestoreItem("a", _img(0)), RestoreItem("b/c", _img(1, 40, 30))]
    res = create_method("lq").restore(items)
    for it, r in zip(items, res):
        assert r.status == STATUS_OK and r.id == it.id
        assert r.image.tobytes() == it.image.tobytes() and r.image.shape == it.image.shape
        assert r.image is not it.image  # a copy: later edits of the input cannot change the result
    assert isinstance(create_method("lq"), LQMethod)


def test_bicubic_is_opencv_inter_cubic_of_the_native_lq():
    native = _img(2, 16, 12)
    item = RestoreItem("x", _img(3, 64, 48), native=native)
    (r,) = create_method("bicubic").restore([item])
    assert r.status == STATUS_OK and r.image.shape == (64, 48, 3) and r.image.dtype == np.uint8
    np.testing.assert_array_equal(r.image, cv2.resize(native, (48, 64), interpolation=cv2.INTER_CUBIC))
    # known answers independent of OpenCV: a constant image stays constant; a channel-separable op
    flat = np.full((8, 8, 3), 77, np.uint8)
    (rf,) = BicubicMethod().restore([RestoreItem("f", _img(4, 32, 32), native=flat)])
    assert (rf.image == 77).all()
    swapped = BicubicMethod().restore([RestoreItem("s", item.image, native=np.ascontiguousarray(native[:, :, ::-1]))])[0]
    np.testing.assert_array_equal(swapped.image, r.image[:, :, ::-1])


def test_bicubic_without_native_lq_uses_the_lq_itself_and_says_so():
    """Issue 21.1: every input gets a bicubic row; without a native LQ the LQ itself is the output, recorded."""
    x = _img(5)
    res = BicubicMethod().restore([RestoreItem("x", x), RestoreItem("y", _img(6), native=np.zeros((8, 8), np.uint8))])
    assert [r.status for r in res] == [STATUS_FALLBACK_INPUT, STATUS_ERROR]
    assert res[0].reason == NO_NATIVE_REASON
    np.testing.assert_array_equal(res[0].image, x)
    assert res[0].image is not x  # a copy: the method never hands out its input buffer
    assert "RGB uint8" in res[1].reason


@pytest.fixture
def results_dir(tmp_path):
    d = tmp_path / "theirs"
    write_image(d / "a.png", _img(10))
    write_image(d / "00005" / "3.png", _img(11))
    write_image(d / "c.JPG", _img(12))
    write_image(d / "small.png", _img(13, 32, 32))
    (d / "broken.webp").write_bytes(b"not an image")
    (d / "notes.txt").write_text("ignored")
    return d


IDS = ["a", "00005/3", "c", "small", "broken"]


def test_external_pairs_by_id(results_dir):
    m = create_method(f"external:mine={results_dir}", device="cpu", precision="fp32", landmark_policy="skip")
    assert isinstance(m, ExternalMethod) and m.label == "mine" and m.weight_hashes() == {}
    m.check_ids(IDS)  # exactly the test set: no error
    items = [RestoreItem(i, _img(99)) for i in IDS] + [RestoreItem("gone", _img(99))]
    res = {r.id: r for r in m.restore(items)}
    assert res["a"].status == STATUS_OK and np.array_equal(res["a"].image, _img(10))
    assert res["00005/3"].status == STATUS_OK and np.array_equal(res["00005/3"].image, _img(11))
    assert res["c"].status == STATUS_OK and res["c"].image.shape == (64, 64, 3)  # JPEG: lossy, size checked
    assert res["small"].status == STATUS_ERROR and "32x32" in res["small"].reason
    assert res["broken"].status == STATUS_ERROR and res["broken"].image is None
    assert res["gone"].status == STATUS_MISSING and "gone.png" in res["gone"].reason


def test_external_refuses_missing_and_extra_ids_listing_them(results_dir):
    m = ExternalMethod("mine", results_dir)
    with pytest.raises(ConfigError) as e:
        m.check_ids(["a", "00005/3", "c", "small", "broken", "new/1", "new/2"])
    msg = str(e.value)
    assert "2 missing ids" in msg and "new/1" in msg and "new/2" in msg and "extra ids" not in msg
    with pytest.raises(ConfigError) as e:
        m.check_ids(["a", "c"])
    msg = str(e.value)
    assert "3 extra ids" in msg and "00005/3" in msg and "broken" in msg and "missing ids" not in msg


def test_external_ambiguous_and_bad_configuration(tmp_path, results_dir):
    write_image(results_dir / "a.jpg", _img(10))
    m = ExternalMethod("mine", results_dir)
    with pytest.raises(ConfigError, match="ambiguous ids.*a"):
        m.check_ids(IDS)
    (r,) = m.restore([RestoreItem("a", _img(10))])
    assert r.status == STATUS_ERROR and "a.jpg" in r.reason and "a.png" in r.reason
    (r,) = m.restore([RestoreItem("../a", _img(10))])
    assert r.status == STATUS_ERROR and "safe" in r.reason
    with pytest.raises(ConfigError, match="does not exist"):
        ExternalMethod("x", tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="label"):
        ExternalMethod("a/b", results_dir)
    with pytest.raises(ConfigError):
        create_method("external:nofolder")


def test_bicubic_scores_every_image_of_a_folder_without_native_lq(tmp_path, monkeypatch):
    """Issue 21.1: on a plain LQ/GT folder pair (no native-resolution LQ) ``bicubic`` used to fail on every image
    (exit 3, lq averaged over n images and bicubic over none); now every image has a row, recorded, exit 0."""
    import pandas as pd

    from celebref.app.cli import main

    for i in range(3):
        write_image(tmp_path / "gt" / f"{i}.png", _img(i, 32, 32))
        write_image(tmp_path / "lq" / f"{i}.png", (_img(i, 32, 32) // 2).astype(np.uint8))
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "--lq", "lq", "--gt", "gt", "--methods", "bicubic", "--metrics", "psnr",
                 "--device", "cpu", "--out", "run"]) == 0
    per = pd.read_csv(tmp_path / "run" / "per_image.csv", keep_default_na=False)
    bic = per[per["method"] == "bicubic"]
    lq = per[per["method"] == "lq"]
    assert len(bic) == len(lq) == 3
    assert set(bic["status"]) == {STATUS_FALLBACK_INPUT} and set(bic["reason"]) == {NO_NATIVE_REASON}
    # the LQ itself: the same PSNR as the lq row, image by image
    assert list(bic.sort_values("id")["psnr"]) == list(lq.sort_values("id")["psnr"])
