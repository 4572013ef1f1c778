"""`celebref tables` against hand-written expected LaTeX and Markdown (two runs, three methods)."""

from __future__ import annotations

import json
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
\caption{Metric profile: default. Best in bold, second best underlined; arrows give the better direction.}
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

Metric profile: default. Best in bold, second best underlined; arrows give the better direction.
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
    assert lines[0] == "method,group,metric,value,higher_is_better"
    assert "dmdnet,g,psnr,24.25,true" in lines and "dfdnet,s,lpips,0.35,false" in lines
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
