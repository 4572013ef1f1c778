"""`celebref tables` against hand-written expected LaTeX and Markdown (two runs, three methods)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from celebref.app.cli import main

SUMMARY_A = """method,metric,mean,std,n,n_failed,higher_is_better
lq,psnr,20.5,1.0,3,0,True
lq,lpips,0.6,0.1,3,0,False
dmdnet,psnr,24.25,1.0,3,0,True
dmdnet,lpips,0.25,0.1,3,0,False
dfdnet,psnr,23.0,1.0,3,0,True
dfdnet,lpips,0.3,0.1,3,0,False
"""
SUMMARY_B = """method,metric,mean,std,n,n_failed,higher_is_better
lq,psnr,19.0,1.0,3,0,True
lq,lpips,0.7,0.1,3,0,False
dmdnet,psnr,22.0,1.0,3,0,True
dmdnet,lpips,0.35,0.1,3,0,False
dfdnet,psnr,22.5,1.0,3,0,True
dfdnet,lpips,0.35,0.1,3,0,False
"""

EXPECTED_LATEX = r"""\begin{table}[t]
\centering
\caption{Metric profile: default. Best in bold, second best underlined among the restoration methods (lq: reference row, not ranked); arrows give the better direction. Each mean over n = 3 images.}
\begin{tabular}{lcccc}
\toprule
 & \multicolumn{2}{c}{generic} & \multicolumn{2}{c}{specific} \\
\cmidrule(lr){2-3} \cmidrule(lr){4-5}
Method & PSNR$\uparrow$ & LPIPS$\downarrow$ & PSNR$\uparrow$ & LPIPS$\downarrow$ \\
\midrule
lq & 20.50 & 0.60 & 19.00 & 0.70 \\
dmdnet & \textbf{24.25} & \textbf{0.25} & \underline{22.00} & \textbf{0.35} \\
dfdnet & \underline{23.00} & \underline{0.30} & \textbf{22.50} & \textbf{0.35} \\
\bottomrule
\end{tabular}
\end{table}
"""

EXPECTED_MD = """| Method | generic PSNR ↑ | generic LPIPS ↓ | specific PSNR ↑ | specific LPIPS ↓ |
| --- | ---: | ---: | ---: | ---: |
| lq | 20.50 | 0.60 | 19.00 | 0.70 |
| dmdnet | **24.25** | **0.25** | <u>22.00</u> | **0.35** |
| dfdnet | <u>23.00</u> | <u>0.30</u> | **22.50** | **0.35** |

Metric profile: default. Best in bold, second best underlined among the restoration methods (lq: reference row, not ranked); arrows give the better direction. Each mean over n = 3 images.
"""


@pytest.fixture()
def runs(tmp_path: Path) -> list[Path]:
    out = []
    for name, text in (("a", SUMMARY_A), ("b", SUMMARY_B)):
        d = tmp_path / name
        d.mkdir()
        (d / "summary.csv").write_text(text)
        (d / "run.json").write_text(json.dumps({"profile": {"profile": "default"}, "data": {"path": str(d)}}))
        out.append(d)
    return out


@pytest.mark.parametrize("fmt,expected", [("latex", EXPECTED_LATEX), ("markdown", EXPECTED_MD)])
def test_tables_match_hand_written(runs, capsys, fmt, expected) -> None:
    rc = main(["tables", *map(str, runs), "--format", fmt, "--precision", "2", "--names", "generic,specific",
               "--metrics", "psnr,lpips"])
    assert rc == 0
    assert capsys.readouterr().out == expected


def test_tables_csv_long_form(runs, capsys) -> None:
    assert main(["tables", *map(str, runs), "--format", "csv", "--names", "g,s"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "method,group,metric,value,higher_is_better,label,n,n_inf,n_common,setting"
    assert "dmdnet,g,psnr,24.25,true,PSNR,3,0,," in lines and "dfdnet,s,lpips,0.35,false,LPIPS,3,0,," in lines
    assert len(lines) == 1 + 3 * 2 * 2


def test_tables_unknown_metric_is_a_clear_error(runs, capsys) -> None:
    assert main(["tables", str(runs[0]), "--metrics", "psnr,fidd"]) == 2
    assert "fidd" in capsys.readouterr().err


def test_latex_table_compiles_in_a_minimal_document(runs, capsys, tmp_path) -> None:
    import shutil
    import subprocess

    pdflatex = shutil.which("pdflatex")
    if pdflatex is None:
        pytest.skip("pdflatex not installed (.ci/run installs Debian's texlive-latex-recommended)")
    assert main(["tables", *map(str, runs), "--format", "latex", "--names", "g_1,s&2"]) == 0
    table = capsys.readouterr().out
    doc = "\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n" + table + "\\end{document}\n"
    (tmp_path / "t.tex").write_text(doc)
    r = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", "t.tex"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-2000:]
    assert (tmp_path / "t.pdf").stat().st_size > 1000


def _run(root: Path, name: str, summary: str, meta: dict) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "summary.csv").write_text(summary)
    (d / "run.json").write_text(json.dumps(meta))
    return d


# The numbers of issue 12: bicubic was bold on SSIM 0.7483 while the LQ row had 0.7541.
REFS = """method,metric,mean,std,n,n_failed,higher_is_better
lq,ssim,0.7541,0.1,3,0,True
bicubic,ssim,0.7483,0.1,3,0,True
dmdnet,ssim,0.7012,0.1,3,0,True
dfdnet,ssim,0.6950,0.1,3,0,True
"""


def test_reference_rows_are_not_ranked_unless_asked(tmp_path, capsys) -> None:
    run = _run(tmp_path, "r", REFS, {"profile": {"profile": "default"}, "data": {"path": str(tmp_path / "t")}})
    assert main(["tables", str(run), "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    rows = {ln.split("|")[1].strip(): ln.split("|")[2].strip() for ln in out.splitlines()[2:6]}
    assert rows == {"lq": "0.7541", "bicubic": "0.7483", "dmdnet": "**0.7012**", "dfdnet": "<u>0.6950</u>"}
    assert "among the restoration methods (lq, bicubic: reference rows, not ranked)" in out
    assert main(["tables", str(run), "--format", "markdown", "--rank-references"]) == 0
    out = capsys.readouterr().out
    rows = {ln.split("|")[1].strip(): ln.split("|")[2].strip() for ln in out.splitlines()[2:6]}
    assert rows == {"lq": "**0.7541**", "bicubic": "<u>0.7483</u>", "dmdnet": "0.7012", "dfdnet": "0.6950"}
    assert "not ranked" not in out


def test_same_folder_name_gets_distinct_group_labels(tmp_path, capsys) -> None:
    a = _run(tmp_path, "run_a", SUMMARY_A, {"data": {"path": str(tmp_path / "generic" / "test")}})
    b = _run(tmp_path, "run_b", SUMMARY_B, {"data": {"path": str(tmp_path / "specific" / "test")}})
    assert main(["tables", str(a), str(b), "--format", "markdown", "--metrics", "psnr"]) == 0
    head = capsys.readouterr().out.splitlines()[0]
    assert head == "| Method | generic/test PSNR ↑ | specific/test PSNR ↑ |"
    # the same test set evaluated twice: told apart by the run folders
    c = _run(tmp_path, "run_c", SUMMARY_B, {"data": {"path": str(tmp_path / "generic" / "test")}})
    assert main(["tables", str(a), str(c), "--format", "csv", "--metrics", "psnr"]) == 0
    groups = {ln.split(",")[1] for ln in capsys.readouterr().out.splitlines()[1:]}
    assert groups == {"test (run_a)", "test (run_c)"}
    assert main(["tables", str(a), str(b), "--names", "x,x"]) == 2
    assert "same name" in capsys.readouterr().err


def test_identity_columns_name_their_backend(tmp_path, capsys) -> None:
    dlib = """method,metric,mean,std,n,n_failed,higher_is_better,label,n_inf,inf_ids,note
lq,identity_cos,0.9,0.01,3,0,True,ID(dlib),0,,
dmdnet,identity_cos,0.95,0.01,3,0,True,ID(dlib),0,,
"""
    arc = dlib.replace("ID(dlib)", "IDS(ArcFace)")
    a = _run(tmp_path, "a", dlib, {"data": {"path": str(tmp_path / "x")}})
    b = _run(tmp_path, "b", arc, {"data": {"path": str(tmp_path / "y")}})
    # a run folder from before the label column: the backend comes from run.json's metric description
    legacy = _run(tmp_path, "c", "\n".join(ln.rsplit(",", 4)[0] for ln in dlib.splitlines()) + "\n",
                  {"data": {"path": str(tmp_path / "z")},
                   "metrics": [{"name": "identity", "columns": ["identity_cos", "identity_angle"], "face": {"backend": "dlib"}}]})
    assert main(["tables", str(a), str(b), str(legacy), "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "| Method | x ID(dlib) ↑ | y IDS(ArcFace) ↑ | z ID(dlib) ↑ |"
    assert "IDS |" not in out and "ID(dlib) a different model" in out
    assert main(["tables", str(a), "--format", "latex"]) == 0
    assert r"Method & ID(dlib)$\uparrow$ \\" in capsys.readouterr().out


def test_infinite_psnr_is_left_out_and_flagged(tmp_path, capsys) -> None:
    text = """method,metric,mean,std,n,n_failed,higher_is_better,label,n_inf,inf_ids,note
lq,psnr,24.5,1.0,2,0,True,PSNR,1,00005/3,mean over 2 finite value(s)
dmdnet,psnr,26.0,1.0,3,0,True,PSNR,0,,
old,psnr,inf,,3,0,True,PSNR,0,,
"""
    run = _run(tmp_path, "r", text, {"data": {"path": str(tmp_path / "t")}})
    assert main(["tables", str(run), "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert "| lq | 24.5000† |" in out and "| old | -- |" in out and "inf" not in out.split("\n\n")[0]
    assert "†: mean over finite values only" in out and "--: no value." in out
    assert main(["tables", str(run), "--format", "latex"]) == 0
    assert r"lq & 24.5000$^\dagger$ \\" in capsys.readouterr().out


def test_reduced_precision_is_stated_in_the_caption(tmp_path, capsys) -> None:
    """A run whose networks ran in bf16 says so (issue 14: the precision is recorded in paper tables); the exact
    fp32 default goes unsaid."""
    exact = _run(tmp_path, "exact", REFS, {"precision": "fp32", "data": {"path": str(tmp_path / "a")}})
    fast = _run(tmp_path, "fast", REFS, {"precision": "bf16", "data": {"path": str(tmp_path / "b")}})
    assert main(["tables", str(exact), "--format", "markdown"]) == 0
    assert "Networks run in" not in capsys.readouterr().out
    assert main(["tables", str(exact), str(fast), "--format", "latex"]) == 0
    assert "Networks run in bf16 (not the exact fp32 of the reference implementations)" in capsys.readouterr().out


# --- issue 21 items 1 and 5, issue 22 item 16, issue 19 item 5 ------------------------------------------------

def _md_table(text: str) -> list[list[str]]:
    """The first Markdown table of ``text`` as parsed by a CommonMark/GFM parser: rows of cell texts."""
    markdown_it = pytest.importorskip("markdown_it", reason="markdown-it-py not installed")
    tokens = markdown_it.MarkdownIt("commonmark").enable("table").parse(text)
    rows, row, inline = [], None, False
    for t in tokens:
        if t.type == "tr_open":
            row = []
        elif t.type in ("th_open", "td_open"):
            inline = True
        elif t.type == "inline" and inline:
            row.append("".join(c.content for c in (t.children or []) if c.type in ("text", "code_inline")))
            inline = False
        elif t.type == "tr_close":
            rows.append(row)
        elif t.type == "table_close":
            break
    return rows


IDENT_RUN = """method,metric,mean,std,n,n_failed,higher_is_better,label,n_inf,inf_ids,note,n_common,common_only
lq,psnr,20.0,1.0,76,0,True,PSNR,0,,,75,False
bicubic,psnr,21.0,1.0,75,1,True,PSNR,0,,,75,False
dmdnet,psnr,24.0,1.0,76,0,True,PSNR,0,,,75,False
lq,identity_cos,0.8,0.1,76,0,True,ID(dlib),0,,,76,False
bicubic,identity_cos,0.81,0.1,76,0,True,ID(dlib),0,,,76,False
dmdnet,identity_cos,0.9,0.1,76,0,True,ID(dlib),0,,,76,False
"""
PSNR_RUN = """method,metric,mean,std,n,n_failed,higher_is_better,label,n_inf,inf_ids,note,n_common,common_only
lq,psnr,19.0,1.0,40,0,True,PSNR,0,,,40,False
bicubic,psnr,20.0,1.0,40,0,True,PSNR,0,,,40,False
dmdnet,psnr,23.0,1.0,40,0,True,PSNR,0,,,40,False
"""


def test_columns_only_for_computed_metrics_and_groups_named_by_test_set(tmp_path, capsys) -> None:
    a = _run(tmp_path, "ra", IDENT_RUN, {"data": {"path": str(tmp_path / "celeba"), "preset": "dfdnet"}})
    b = _run(tmp_path, "rb", PSNR_RUN, {"data": {"path": str(tmp_path / "test"), "preset": "gfpgan"}})
    assert main(["tables", str(a), str(b), "--format", "markdown", "--precision", "2"]) == 0
    out = capsys.readouterr().out
    rows = _md_table(out)
    assert rows[0] == ["Method", "celeba (preset dfdnet) PSNR ↑", "celeba (preset dfdnet) ID(dlib) ↑",
                       "test (preset gfpgan) PSNR ↑"]
    for absent in ("IDS", "Deg", "LMD"):
        assert absent not in out.split("\n\n")[0], absent
    assert all(len(r) == 4 for r in rows)
    # bicubic's PSNR is over 75 images, the others' over 76: flagged with its n, explained once
    cells = {r[0]: r[1:] for r in rows[1:]}
    assert cells["bicubic"][0] == "21.00‡ (n=75)" and cells["dmdnet"][0] == "24.00"
    assert "‡" not in "".join(cells["bicubic"][1:] + cells["lq"] + cells["dmdnet"])
    caption = out.split("\n\n")[1]
    assert "‡: mean over another image set than the rest of its column" in caption
    assert "celeba (preset dfdnet) n = 76; test (preset gfpgan) n = 40" in caption
    # with no preset and no test-set path the group is still a test set, never a bare preset name
    c = _run(tmp_path, "rc", PSNR_RUN, {"data": {"preset": "gfpgan"}})
    assert main(["tables", str(c), str(a), "--format", "csv"]) == 0
    groups = {ln.split(",")[1] for ln in capsys.readouterr().out.splitlines()[1:]}
    assert groups == {"test set (preset gfpgan)", "celeba (preset dfdnet)"}


HOSTILE = "a\\b<c>|d_$5 and $6&%#{x}~^"


def test_labels_are_escaped_in_latex_and_markdown(tmp_path, capsys) -> None:
    text = f"""method,metric,mean,std,n,n_failed,higher_is_better
lq,psnr,20.0,1.0,3,0,True
"{HOSTILE}",psnr,24.0,1.0,3,0,True
x|y,psnr,23.0,1.0,3,0,True
"""
    run = _run(tmp_path, "r", text, {"data": {"path": str(tmp_path / "t")}})
    assert main(["tables", str(run), "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    rows = _md_table(md)
    assert [r[0] for r in rows[1:]] == ["lq", HOSTILE, "x|y"]
    assert all(len(r) == 2 for r in rows) and rows[2][1] == "24.0000" and rows[3][1] == "23.0000"  # in their column
    assert "| **24.0000** |" in md
    assert main(["tables", str(run), "--format", "latex", "--names", "g_1|<2>"]) == 0
    tex = capsys.readouterr().out
    assert (r"a\textbackslash{}b\textless{}c\textgreater{}\textbar{}d\_\$5 and \$6\&\%\#\{x\}\textasciitilde{}"
            r"\textasciicircum{}") in tex
    assert r"\{}" not in tex.replace(r"\textbackslash{}", "").replace(r"\textasciitilde{}", "") \
        .replace(r"\textasciicircum{}", "").replace(r"\textless{}", "").replace(r"\textgreater{}", "").replace(r"\textbar{}", "")
    pdflatex = shutil.which("pdflatex")
    if pdflatex is None:
        pytest.skip("pdflatex not installed (.ci/run installs Debian's texlive-latex-recommended)")
    doc = "\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage{booktabs}\n\\begin{document}\n" + tex + "\\end{document}\n"
    (tmp_path / "t.tex").write_text(doc)
    r = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", "t.tex"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-2000:]
    if shutil.which("pdftotext"):
        pdf = subprocess.run(["pdftotext", "t.pdf", "-"], cwd=tmp_path, capture_output=True, text=True).stdout
        assert "a\\b<c>|d_$5 and $6&%#{x}" in pdf and "g_1|<2>" in pdf


SPECIFIC_RUN = """method,metric,mean,std,n,n_failed,higher_is_better,label,n_inf,inf_ids,note,n_common,common_only
lq,psnr,20.0,1.0,4,0,True,PSNR,0,,,4,False
dmdnet,psnr,24.0,1.0,4,0,True,PSNR,0,,,4,False
gfpgan,psnr,23.0,1.0,4,0,True,PSNR,0,,,4,False
dmdnet-specific,psnr,25.0,1.0,4,0,True,PSNR,0,,,4,False
"""


def test_generic_and_specific_restoration_in_separate_tables(tmp_path, capsys) -> None:
    """As in the DMDNet paper: methods with references (registry's needs_references) in their own table, the
    reference count (per_image n_refs) in its caption."""
    import pandas as pd

    run = _run(tmp_path, "r", SPECIFIC_RUN, {"data": {"path": str(tmp_path / "celebref")}})
    pd.DataFrame({"id": ["a", "b", "c", "d"] * 2, "method": ["lq"] * 4 + ["dmdnet-specific"] * 4,
                  "n_refs": [3, 5, 4, 4] * 2}).to_parquet(run / "per_image.parquet")
    assert main(["tables", str(run), "--format", "markdown", "--precision", "1"]) == 0
    generic, specific = capsys.readouterr().out.split("\n\n| ")
    g_rows, s_rows = _md_table(generic), _md_table("| " + specific)
    assert [r[0] for r in g_rows[1:]] == ["lq", "dmdnet", "gfpgan"]
    assert [r[0] for r in s_rows[1:]] == ["lq", "dmdnet-specific"]
    assert "| dmdnet | **24.0** |" in generic and "| dmdnet-specific | **25.0** |" in specific  # ranked per setting
    assert generic.split("\n\n")[1].startswith("Generic restoration (methods without reference images).")
    assert ("Specific restoration (methods given reference images of the same person: dmdnet-specific; "
            "references 3 to 5 (median 4) per image).") in specific
    assert main(["tables", str(run), "--format", "latex"]) == 0
    assert capsys.readouterr().out.count(r"\begin{table}") == 2


def test_real_world_run_in_tables(tmp_path, capsys) -> None:
    """Issue 20.7 (tables): a run without ground truth shows its no-reference columns only, and the caption names
    the FID statistics and counts the faces below the low-identity threshold."""
    import pandas as pd
    from _synthetic_runs import make_real_world_run

    run = make_real_world_run(tmp_path, 12)
    assert main(["tables", str(run), "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert _md_table(out)[0] == ["Method", "lq NIQE ↓", "lq ID-in(dlib) ↑", "lq FID ↓"]
    per = pd.read_parquet(run / "per_image.parquet")
    low = {m: int((per[per["method"] == m]["identity_input_cos"] < 0.30).sum()) for m in ("codeformer", "gfpgan")}
    assert ("lq: no ground truth; FID against ffhq-512 (GFPGAN inception statistics) (70000 images); faces with "
            f"ID-in(dlib) (identity to the input) below 0.30 (default): codeformer {low['codeformer']} of 12, "
            f"gfpgan {low['gfpgan']} of 12.") in out.replace("\\(", "(").replace("\\)", ")")
