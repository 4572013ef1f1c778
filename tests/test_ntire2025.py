"""The NTIRE 2025 real-world face restoration score (evaluation.ntire2025) against eval.py's formula, with values
computed by hand (eval.py read at zhengchen1999/NTIRE2025_RealWorld_Face_Restoration@3b1903d3)."""

from __future__ import annotations

import pytest

from celebref.errors import ConfigError
from evaluation.ntire2025 import COUNTS, THRESHOLDS, ntire2025_score, score_terms


def _row(s, niqe, clip, maniqa, musiq, idsim, **extra):
    return {"set": s, "NIQE": niqe, "CLIP_IQA": clip, "MANIQA": maniqa, "MUSIQ": musiq, "ID_Sim": idsim, **extra}


ROWS = [
    # LFW-Test, threshold 0.6: one image below (0.55)
    _row("LFW-Test", 4.0, 0.6, 0.5, 70.0, 0.70),
    _row("LFW-Test", 6.0, 0.4, 0.3, 50.0, 0.55),
    # CelebChild-Test (declared 50 images), threshold 0.6: both below
    _row("CelebChild-Test", 3.0, 0.8, 0.6, 80.0, 0.30),
    _row("CelebChild-Test", 5.0, 0.6, 0.4, 60.0, 0.20),
    # Wider-Test, threshold 0.3: 0.3 is not below (strict <), 0.1 is
    _row("Wider-Test", 8.0, 0.2, 0.1, 30.0, 0.30),
    _row("Wider-Test", 10.0, 0.4, 0.3, 50.0, 0.10),
]


def test_constants_are_eval_py_s():
    assert THRESHOLDS == {"CelebA": 0.5, "LFW-Test": 0.6, "CelebChild-Test": 0.6, "Wider-Test": 0.3,
                          "WebPhoto-Test": 0.3}
    assert COUNTS == {"CelebA": 100, "LFW-Test": 100, "CelebChild-Test": 50, "WebPhoto-Test": 100, "Wider-Test": 100}


def test_known_answer_without_qalign():
    r = ntire2025_score(ROWS, fid=40.0)
    # per-set means and low-identity counts
    assert r.per_set["LFW-Test"]["NIQE"] == pytest.approx(5.0)
    assert r.per_set["LFW-Test"]["ID_Sim"] == pytest.approx(0.625)
    assert r.per_set["LFW-Test"]["low_ID_Sim"] == 1
    assert r.per_set["CelebChild-Test"]["low_ID_Sim"] == 2
    assert r.per_set["Wider-Test"]["low_ID_Sim"] == 1
    assert r.per_set["Wider-Test"]["MUSIQ"] == pytest.approx(40.0)
    # overall = sum(mean_s * declared_s) / sum(declared_s), declared 100, 50, 100 -> /250
    assert r.overall["NIQE"] == pytest.approx((5.0 * 100 + 4.0 * 50 + 9.0 * 100) / 250)      # 6.4
    assert r.overall["CLIP_IQA"] == pytest.approx((0.5 * 100 + 0.7 * 50 + 0.3 * 100) / 250)  # 0.46
    assert r.overall["MANIQA"] == pytest.approx((0.4 * 100 + 0.5 * 50 + 0.2 * 100) / 250)    # 0.34
    assert r.overall["MUSIQ"] == pytest.approx((60.0 * 100 + 70.0 * 50 + 40.0 * 100) / 250)  # 54.0
    assert r.overall["ID_Sim"] == pytest.approx((0.625 * 100 + 0.25 * 50 + 0.2 * 100) / 250)  # 0.38
    assert r.overall["low_ID_Sim"] == 4
    # weighted: (100-40)/100 + (10-6.4)/10 + 0.46 + 0.34 + 54/100 = 0.6 + 0.36 + 0.46 + 0.34 + 0.54
    assert r.weighted["FID"] == pytest.approx(0.6)
    assert r.weighted["NIQE"] == pytest.approx(0.36)
    assert r.weighted["MUSIQ"] == pytest.approx(0.54)
    assert "ID_Sim" not in r.weighted and "QALIGN" not in r.weighted
    assert r.total == pytest.approx(2.30)
    assert not r.qalign and any("Q-Align absent" in n for n in r.notes)
    assert any("CelebA" in n and "absent" in n for n in r.notes)


def test_qalign_term_and_clipping():
    rows = [{**x, "QALIGN": q} for x, q in zip(ROWS, (4.0, 3.0, 5.0, 3.0, 2.0, 1.0))]
    r = ntire2025_score(rows, fid=130.0)
    # Q-Align per set: 3.5, 4.0, 1.5 -> (350 + 200 + 150) / 250 = 2.8 -> 2.8 / 5 = 0.56; FID > 100 clips to 0
    assert r.qalign and r.overall["QALIGN"] == pytest.approx(2.8)
    assert r.weighted["QALIGN"] == pytest.approx(0.56)
    assert r.weighted["FID"] == 0.0
    assert r.total == pytest.approx(0.0 + 0.36 + 0.46 + 0.34 + 0.54 + 0.56)
    assert not any("Q-Align absent" in n for n in r.notes)
    assert score_terms({"NIQE": 12.0, "MUSIQ": 50.0})["NIQE"] == 0.0  # max(0, (10 - 12) / 10)


def test_actual_weights_and_our_column_names():
    rows = [{"set": x["set"], "niqe": x["NIQE"], "pyiqa_clipiqa": x["CLIP_IQA"], "pyiqa_maniqa": x["MANIQA"],
             "pyiqa_musiq": x["MUSIQ"], "identity_input_cos": x["ID_Sim"]} for x in ROWS]
    r = ntire2025_score(rows, fid=None, weights="actual")
    assert r.overall["NIQE"] == pytest.approx((5.0 + 4.0 + 9.0) / 3)  # 2 images each
    assert "FID" not in r.weighted and any("FID not computed" in n for n in r.notes)
    assert r.total == pytest.approx(sum(v for k, v in r.weighted.items() if k != "Total"))


def test_bad_input_is_a_clear_error():
    with pytest.raises(ConfigError, match="no identity threshold"):
        ntire2025_score([_row("MyPhotos", 4, 0.5, 0.5, 50, 0.5)], fid=10)
    r = ntire2025_score([_row("MyPhotos", 4, 0.5, 0.5, 50, 0.5)], fid=10, thresholds={"MyPhotos": 0.4},
                        weights="actual")
    assert r.per_set["MyPhotos"]["low_ID_Sim"] == 0
    with pytest.raises(ConfigError, match="lacks MUSIQ"):
        ntire2025_score([{"set": "LFW-Test", "NIQE": 4, "CLIP_IQA": 0.5, "MANIQA": 0.5, "ID_Sim": 0.9}], fid=10)
    with pytest.raises(ConfigError, match="weights"):
        ntire2025_score(ROWS, fid=1, weights="bogus")


def test_profile_entry():
    from celebref.registry import load_target
    from evaluation.fid import reference_name
    from evaluation.profiles import get_profile
    from evaluation.registry import METRICS

    p = get_profile("ntire2025")
    assert p.default_metrics == ("niqe", "clip-iqa", "maniqa", "musiq", "identity-input", "fid")
    # identity-input (AdaFace identity to the LQ input) is issue 20.3's metric; every other one is registered here
    assert all(m in METRICS for m in p.default_metrics if m != "identity-input")
    assert reference_name(p.fid_reference) == "ffhq-512"
    from evaluation.ntire2025 import score_table

    assert load_target(p.score) is score_table
    d = p.describe()
    assert d["fid_reference"] == "ffhq-512" and any("Q-Align" in n for n in d["notes"])
    assert "fid reference: ffhq-512" in p.summary()


def test_score_table_groups_methods_and_reads_sets_from_folders():
    from evaluation.ntire2025 import score_table, set_name

    assert set_name("lfw_test") == "LFW-Test" and set_name("wider") == "Wider-Test" and set_name("Mine") == "Mine"
    table = []
    for method, bump in (("a", 0.0), ("b", 1.0)):
        for x in ROWS:
            folder = x["set"].lower()
            table.append({"method": method, "status": "ok", "lq_path": f"/data/test/{folder}/img.png",
                          "niqe": x["NIQE"] + bump, "pyiqa_clipiqa": x["CLIP_IQA"], "pyiqa_maniqa": x["MANIQA"],
                          "pyiqa_musiq": x["MUSIQ"], "identity_input_cos": x["ID_Sim"]})
    table.append({"method": "b", "status": "failed", "lq_path": "/data/test/lfw-test/bad.png"})
    res = score_table(table, {"a": 40.0, "b": 40.0})
    assert res["a"].total == pytest.approx(2.30)  # the hand-computed value above
    assert res["b"].total == pytest.approx(2.30 - 0.1)  # NIQE +1 everywhere: (10 - 7.4) / 10 = 0.26
    assert any("left out" in n for n in res["b"].notes)


def test_evaluate_command_writes_the_profile_score(tmp_path, capsys):
    import json

    import pandas as pd

    from celebref.app.commands.evaluate import protocol_score

    per = pd.DataFrame([{"method": "m", "status": "ok", "lq_path": f"/x/{x['set']}/{i}.png", "niqe": x["NIQE"],
                         "pyiqa_clipiqa": x["CLIP_IQA"], "pyiqa_maniqa": x["MANIQA"], "pyiqa_musiq": x["MUSIQ"],
                         "identity_input_cos": x["ID_Sim"]} for i, x in enumerate(ROWS)])
    summary = pd.DataFrame([{"method": "m", "metric": "fid", "mean": 40.0}, {"method": "m", "metric": "niqe", "mean": 6.0}])
    data = protocol_score(tmp_path, "ntire2025", per, summary)
    assert data["m"]["weighted"]["Total"] == pytest.approx(2.30)
    assert json.loads((tmp_path / "ntire2025_score.json").read_text())["m"]["overall"]["low_ID_Sim"] == 4
    out = capsys.readouterr().out
    assert "ntire2025 score m: 2.3000" in out and "Q-Align absent" in out
    # a run without the identity-to-input column: one line, no traceback, nothing written
    assert protocol_score(tmp_path / "other", "ntire2025", per.drop(columns="identity_input_cos"), summary) is None
    assert "ntire2025 score not computed" in capsys.readouterr().err
    assert protocol_score(tmp_path, "default", per, summary) is None  # profiles without a score
