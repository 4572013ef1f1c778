"""Rendering of :mod:`reports.tables` as LaTeX (booktabs) and Markdown, with the escaping each needs.

``cells`` maps ``(group index, method, metric)`` to ``{text, rank, dagger, ddagger, n}``: the formatted value, 1 for
bold / 2 for underlined, whether infinite values were left out (†), whether the mean is over another image set
than the rest of its column (‡, with its ``n``).
"""

from __future__ import annotations

import re

_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
        "|": r"\textbar{}", "†": r"$^\dagger$", "‡": r"$^\ddagger$", "≠": r"$\neq$", "…": r"\ldots{}",
        "↑": r"$\uparrow$", "↓": r"$\downarrow$"}
_TEX_RE = re.compile("|".join(map(re.escape, _TEX)))


def latex_escape(text: str) -> str:
    """``text`` as LaTeX prints it literally (one pass: ``\\`` becomes ``\\textbackslash{}`` and its braces stay)."""
    return _TEX_RE.sub(lambda m: _TEX[m.group(0)], str(text))


_MD_RE = re.compile(r"([\\|*_`<>\[\]])")


def markdown_escape(text: str) -> str:
    """``text`` for a Markdown table cell, printed literally: ``|`` (the cell separator) and the other markup
    characters backslash-escaped, line breaks as spaces."""
    return _MD_RE.sub(r"\\\1", " ".join(str(text).split()))


def render_markdown(names: list[str], methods: list[str], group_metrics: list[list[str]], labels: list[dict[str, str]],
                    higher: dict[str, bool], cells: dict, caption: str) -> str:
    """A Markdown (GFM) table: one column per (group, metric), every label escaped; the caption below it."""
    head = ["Method"] + [f"{markdown_escape(name)} {markdown_escape(labels[gi][met])} {'↑' if higher[met] else '↓'}"
                         for gi, name in enumerate(names) for met in group_metrics[gi]]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join([" --- "] + [" ---: "] * (len(head) - 1)) + "|"]
    for m in methods:
        row = [markdown_escape(m)]
        for gi in range(len(names)):
            for met in group_metrics[gi]:
                c = cells[(gi, m, met)]
                text = f"**{c['text']}**" if c["rank"] == 1 else f"<u>{c['text']}</u>" if c["rank"] == 2 else c["text"]
                text += ("†" if c["dagger"] else "") + (f"‡ (n={int(c['n'])})" if c["ddagger"] else "")
                row.append(text)
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + f"\n\n{markdown_escape(caption)}\n"


def render_latex(names: list[str], methods: list[str], group_metrics: list[list[str]], labels: list[dict[str, str]],
                 higher: dict[str, bool], cells: dict, caption: str) -> str:
    """A booktabs ``table`` environment: groups as ``\\multicolumn`` headers of their own widths, every label
    escaped (:func:`latex_escape`)."""
    widths = [len(g) for g in group_metrics]
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{latex_escape(caption)}}}",
             r"\begin{tabular}{l" + "c" * sum(widths) + "}", r"\toprule"]
    if len(names) > 1:
        groups = " & ".join(rf"\multicolumn{{{k}}}{{c}}{{{latex_escape(name)}}}" for name, k in zip(names, widths))
        lines.append(f" & {groups} \\\\")
        starts = [2 + sum(widths[:gi]) for gi in range(len(names))]
        lines.append(" ".join(rf"\cmidrule(lr){{{a}-{a + k - 1}}}" for a, k in zip(starts, widths)))
    arrow = {True: r"$\uparrow$", False: r"$\downarrow$"}
    heads = " & ".join(latex_escape(labels[gi][met]) + arrow[higher[met]]
                       for gi in range(len(names)) for met in group_metrics[gi])
    lines += [rf"Method & {heads} \\", r"\midrule"]
    for m in methods:
        row = [latex_escape(m)]
        for gi in range(len(names)):
            for met in group_metrics[gi]:
                c = cells[(gi, m, met)]
                text = rf"\textbf{{{c['text']}}}" if c["rank"] == 1 else rf"\underline{{{c['text']}}}" if c["rank"] == 2 \
                    else c["text"]
                text += (r"$^\dagger$" if c["dagger"] else "") + (rf"$^\ddagger$ ({int(c['n'])})" if c["ddagger"] else "")
                row.append(text)
        lines.append(" & ".join(row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"
