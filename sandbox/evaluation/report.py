"""The human report of an evaluation: report.md and a self-contained report.html.

Both are rendered from the same list of sections (a title, a note, tables, an image) built
from summary.json, so they always show the same numbers.
"""
from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

MARKDOWN_FILE = "report.md"
HTML_FILE = "report.html"


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    align_right: set[int] = field(default_factory=set)   # numeric columns


@dataclass
class Section:
    title: str
    note: str = ""
    tables: list[Table] = field(default_factory=list)
    image: str = ""            # a file next to the report
    collapsed: bool = False    # HTML: inside <details>


def percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _pass_columns(ks: list[int]) -> list[str]:
    return [f"pass@{k}" for k in ks]


def _group_table(groups: dict, ks: list[int], name: str) -> Table:
    rows = []
    for group, entry in groups.items():
        rows.append([group, str(entry["problems"]), str(entry["samples"]), str(entry["passed"])]
                    + [percent(entry["pass_at_k"][f"pass@{k}"]["value"]) for k in ks])
    return Table([name, "problems", "samples", "passed", *_pass_columns(ks)], rows,
                 set(range(1, 4 + len(ks))))


def build_sections(summary: dict, image: str | None = None) -> list[Section]:
    ks = summary["ks"]
    counts = summary["counts"]
    sections = []
    overview = Table(["", "value"], [
        ["benchmark", summary.get("benchmark") or "–"],
        ["problems in the file", str(counts["problems"])],
        ["problems evaluated", str(counts["problems_evaluated"])],
        ["samples", str(counts["samples"])],
        ["graded", str(counts["graded"])],
        ["not graded (yet)", str(counts["not_graded"])],
        ["accepted samples", str(counts["passed"])],
    ], {1})
    sections.append(Section("Overview", tables=[overview]))
    pass_rows = [[f"pass@{k}", percent(summary["pass_at_k"][f"pass@{k}"]["value"]),
                  str(summary["pass_at_k"][f"pass@{k}"]["problems"])] for k in ks]
    sections.append(Section(
        "pass@k", note="Unbiased estimator 1 − C(n−c, k)/C(n, k), averaged over problems; a "
                       "problem with fewer than k samples is left out of pass@k.",
        tables=[Table(["k", "pass@k", "problems"], pass_rows, {1, 2})]))
    for title, name in (("difficulty", "Per difficulty"), ("platform", "Per platform"),
                        ("month", "Per month (contest date)")):
        groups = summary["breakdowns"].get(title) or {}
        sections.append(Section(name, tables=[_group_table(groups, ks, title)]))
    graded = max(1, counts["graded"])
    verdict_rows = [[verdict, str(count), percent(count / graded)]
                    for verdict, count in summary["verdicts"].items()]
    sections.append(Section(
        "Verdict distribution",
        note="NO_CODE: no fenced code block in the completion (not run, counted as a failure). "
             "SE: the sandbox failed, not the code.",
        tables=[Table(["verdict", "samples", "share"], verdict_rows, {1, 2})]))
    if summary.get("budgets"):
        budget_rows = [[b["label"], str(b["problems"]), str(b["samples"]), percent(b["pass@1"]),
                        percent(b["accepted"])] for b in summary["budgets"]]
        sections.append(Section(
            "Accuracy vs budget",
            note="pass@1: the mean over problems of each problem's share of accepted samples "
                 "at that budget.",
            tables=[Table(["budget", "problems", "samples", "pass@1", "accepted"], budget_rows,
                          {1, 2, 3, 4})],
            image=image or ""))
    rating = summary.get("codeforces_rating")
    if rating is not None:
        sections.append(_rating_section(rating))
    problem_rows = [[p["id"], p["difficulty"] or "–", p["platform"] or "–", p["month"],
                     str(p["samples"]), str(p["passed"])] for p in summary["problems"]]
    sections.append(Section("Per problem", collapsed=True, tables=[Table(
        ["problem", "difficulty", "platform", "month", "samples", "passed"], problem_rows,
        {4, 5})]))
    return sections


def _rating_section(rating: dict) -> Section:
    skipped = Table(["skipped contest", "reason"],
                    [[str(s["contest_id"]), s["reason"]] for s in rating.get("skipped") or []])
    if rating.get("rating") is None:
        return Section("Codeforces rating", note=f"Not computed: {rating.get('error', '')}",
                       tables=[skipped] if skipped.rows else [])
    value = rating.get("rating")
    head = [["rating", "–" if value is None else f"{value:.0f}"],
            ["percentile", "–" if rating.get("percentile") is None
             else f"{rating['percentile']:.1f}%"],
            ["contests rated", str(len(rating.get("contests") or []))],
            ["contests skipped", str(len(rating.get("skipped") or []))]]
    tables = [Table(["", "value"], head, {1})]
    if rating.get("contests"):
        tables.append(Table(
            ["contest", "participants", "solved", "points", "penalty", "rank", "rating"],
            [[str(c["contest_id"]), str(c["participants"]),
              f"{','.join(c['solved']) or '–'} ({len(c['solved'])}/{len(c['attempted'])})",
              f"{c['points']:g}", f"{c['penalty']:g}", str(c["rank"]), str(c["rating"])]
             for c in rating["contests"]], {1, 3, 4, 5, 6}))
    if skipped.rows:
        tables.append(skipped)
    note = (f"CodeElo method: a problem counts when one of the first {rating.get('pass_n', '?')} "
            "samples passes; the contest rating is where the expected seed meets the model's "
            "rank among rated participants; the rating is the mean over contests. The "
            "percentile is the share of users rated below it.")
    return Section("Codeforces rating", note=note, tables=tables)


# ---------------------------------------------------------------- Markdown

def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(sections: list[Section], title: str) -> str:
    lines = [f"# {title}", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        if section.note:
            lines += [section.note, ""]
        if section.image:
            lines += [f"![{section.title}]({section.image})", ""]
        for table in section.tables:
            if not table.rows:
                lines += ["(none)", ""]
                continue
            lines.append("| " + " | ".join(_md_cell(h) for h in table.headers) + " |")
            lines.append("|" + "|".join("---:" if i in table.align_right else "---"
                                        for i in range(len(table.headers))) + "|")
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows]
            lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------- HTML

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:960px;padding:0 1rem;color:#111827;line-height:1.45}
h1{font-size:1.6rem;border-bottom:2px solid #e5e7eb;padding-bottom:.4rem}
h2{font-size:1.2rem;margin-top:2rem}
p.note{color:#4b5563;font-size:.9rem}
table{border-collapse:collapse;margin:.6rem 0 1rem;font-size:.92rem}
th,td{border:1px solid #e5e7eb;padding:.3rem .7rem;text-align:left}
th{background:#f3f4f6}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr:nth-child(even) td{background:#fafafa}
img{max-width:100%;border:1px solid #e5e7eb}
summary{cursor:pointer;font-weight:600}
"""


def _html_table(table: Table) -> str:
    if not table.rows:
        return "<p class=note>(none)</p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.headers)
    body = []
    for row in table.rows:
        cells = "".join(f"<td{' class=num' if i in table.align_right else ''}>"
                        f"{html.escape(cell)}</td>" for i, cell in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render_html(sections: list[Section], title: str, directory: Path | None = None) -> str:
    """A self-contained page: images are embedded as data URIs when they exist."""
    parts = ["<!doctype html><html lang=en><head><meta charset=utf-8>",
             f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    for section in sections:
        inner = []
        if section.note:
            inner.append(f"<p class=note>{html.escape(section.note)}</p>")
        if section.image:
            image_path = (directory or Path(".")) / section.image
            if image_path.exists():
                data = base64.b64encode(image_path.read_bytes()).decode("ascii")
                source = f"data:image/png;base64,{data}"
            else:
                source = html.escape(section.image)
            inner.append(f"<p><a href=\"{html.escape(section.image)}\"><img src=\"{source}\" "
                         f"alt=\"{html.escape(section.title)}\"></a></p>")
        inner += [_html_table(table) for table in section.tables]
        if section.collapsed:
            parts.append(f"<h2>{html.escape(section.title)}</h2><details><summary>show "
                         f"</summary>{''.join(inner)}</details>")
        else:
            parts.append(f"<h2>{html.escape(section.title)}</h2>{''.join(inner)}")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_reports(summary: dict, directory: str | Path, image: str | None = None,
                  title: str | None = None) -> tuple[Path, Path]:
    directory = Path(directory)
    title = title or f"Evaluation report: {summary.get('benchmark') or 'benchmark'}"
    sections = build_sections(summary, image)
    markdown = directory / MARKDOWN_FILE
    markdown.write_text(render_markdown(sections, title), encoding="utf-8")
    page = directory / HTML_FILE
    page.write_text(render_html(sections, title, directory), encoding="utf-8")
    return markdown, page
