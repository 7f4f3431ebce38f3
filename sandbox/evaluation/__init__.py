"""Benchmark evaluation: grade model samples, then pass@k, Codeforces rating and reports.

- problems.py: the benchmark's problems, from the loaders in sandbox/benchmarks;
- samples.py: the samples file (JSONL) and the code in each completion;
- results.py: results.jsonl, appended as gradings finish, read back to resume;
- runner.py: concurrent grading with progress, resume and Ctrl-C;
- summary.py: pass@k and breakdowns, verdicts, accuracy by budget, rating → summary.json;
- report.py / plot.py: report.md, report.html, accuracy_vs_budget.png;
- commands.py: the `sandbox eval`, `cf-rating` and `cf-fetch` commands.
"""
