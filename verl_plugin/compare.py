"""`python -m verl_plugin.compare`: accuracy against the tokens actually used, every method and
setting of one or more evaluations in one table and one plot.

    python -m verl_plugin.compare eval-e1 eval-l1-exact eval-l1-max eval-base --out comparison

Each DIR is a `python -m verl_plugin.evaluate --grade` output: samples.jsonl (control, tokens)
and results.jsonl (`sandbox eval`'s verdicts for code, accepted iff AC; `verl_plugin.math_eval`'s
for math, `correct`), plus method.json (the method's label; `DIR=LABEL` overrides it). One row
per (label, control): problems, samples, accuracy (pass@1: the mean over problems of each one's
share of correct samples; code: LiveCodeBench pass@1, math: AIME / MATH500 accuracy), mean and
median tokens used. Writes OUT/comparison.json, OUT/comparison.md and OUT/accuracy_vs_tokens.png
(one line per label and method; needs matplotlib: pip install '.[eval]').
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

PLOT_FILE = "accuracy_vs_tokens.png"


class CompareError(ValueError):
    """An evaluation directory that cannot be compared (missing files, samples without results)."""


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        raise CompareError(f"{path} is missing: run python -m verl_plugin.evaluate ... --grade first")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def is_correct(result: dict) -> bool:
    if "correct" in result:
        return bool(result["correct"])
    return result.get("verdict") == "AC"


def control_of(sample: dict) -> dict:
    """The sample's control; samples from before `control` existed are E1 or plain by their budget."""
    control = sample.get("control")
    if isinstance(control, dict) and control.get("method"):
        return control
    budget = sample.get("budget")
    if isinstance(budget, dict) and {"thinking", "solution"} <= set(budget):
        return {"method": "e1", "thinking": budget["thinking"], "solution": budget["solution"]}
    return {"method": "none"}


def setting_label(control: dict) -> str:
    if control["method"] == "e1":
        return f"t={control['thinking']},s={control['solution']}"
    if control["method"] in ("l1-exact", "l1-max"):
        return f"N={control['target']}"
    return f"max_tokens={control['max_tokens']}" if control.get("max_tokens") else "-"


def evaluation_rows(directory: Path, label: str) -> list[dict]:
    samples = read_jsonl(directory / "samples.jsonl")
    results = {(r["problem_id"], r["sample_index"]): r for r in read_jsonl(directory / "results.jsonl")}
    groups: dict[str, dict] = {}
    for sample in samples:
        key = (sample["problem_id"], sample["sample_index"])
        if key not in results:
            raise CompareError(f"{directory}: sample {key} has no result: grade it first")
        control = control_of(sample)
        name = f"{control['method']} {setting_label(control)}"
        group = groups.setdefault(name, {"label": label, "method": control["method"],
                                         "setting": setting_label(control), "by_problem": {}, "tokens": []})
        group["by_problem"].setdefault(sample["problem_id"], []).append(is_correct(results[key]))
        if sample.get("tokens") is not None:
            group["tokens"].append(int(sample["tokens"]))
    rows = []
    for group in groups.values():
        per_problem = [sum(marks) / len(marks) for marks in group["by_problem"].values()]
        tokens = group["tokens"]
        rows.append({"label": group["label"], "method": group["method"], "setting": group["setting"],
                     "problems": len(per_problem), "samples": sum(len(m) for m in group["by_problem"].values()),
                     "accuracy": sum(per_problem) / len(per_problem),
                     "tokens_mean": sum(tokens) / len(tokens) if tokens else None,
                     "tokens_median": statistics.median(tokens) if tokens else None})
    return sorted(rows, key=lambda r: (r["label"], r["method"], r["tokens_mean"] or 0))


def markdown(rows: list[dict]) -> str:
    lines = ["# Accuracy vs tokens used", "",
             "| method | control | setting | problems | samples | accuracy (pass@1) | tokens (mean) | tokens (median) |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        mean = f"{r['tokens_mean']:.0f}" if r["tokens_mean"] is not None else "-"
        median = f"{r['tokens_median']:.0f}" if r["tokens_median"] is not None else "-"
        lines.append(f"| {r['label']} | {r['method']} | {r['setting']} | {r['problems']} | {r['samples']} | "
                     f"{100 * r['accuracy']:.1f}% | {mean} | {median} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    series: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        if row["tokens_mean"] is not None:
            series.setdefault((row["label"], row["method"]), []).append(row)
    for (label, method), points in sorted(series.items()):
        points.sort(key=lambda r: r["tokens_mean"])
        axes.plot([p["tokens_mean"] for p in points], [100 * p["accuracy"] for p in points], marker="o",
                  label=f"{label} ({method})")
        for p in points:
            axes.annotate(p["setting"], (p["tokens_mean"], 100 * p["accuracy"]), fontsize=7,
                          textcoords="offset points", xytext=(3, 3))
    axes.set_xlabel("tokens used (mean per sample)")
    axes.set_ylabel("accuracy, pass@1 (%)")
    axes.set_title("Accuracy vs tokens used")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m verl_plugin.compare",
                                     description="Accuracy against tokens used for every method and setting "
                                                 "of graded verl_plugin.evaluate directories.")
    parser.add_argument("evaluations", nargs="+", metavar="DIR[=LABEL]")
    parser.add_argument("--out", required=True, help="output directory")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    rows: list[dict] = []
    try:
        for spec in args.evaluations:
            path, sep, label = spec.partition("=")
            directory = Path(path)
            if not sep:
                method = directory / "method.json"
                label = json.loads(method.read_text()).get("label") if method.exists() else directory.name
            rows += evaluation_rows(directory, label or directory.name)
    except (CompareError, OSError, ValueError, KeyError) as exc:
        print(f"verl_plugin.compare: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.json").write_text(json.dumps(rows, indent=1))
    (out / "comparison.md").write_text(markdown(rows))
    try:
        plot(rows, out / PLOT_FILE)
    except ImportError:
        print("verl_plugin.compare: no plot (pip install matplotlib)", file=sys.stderr)
    print(markdown(rows), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
