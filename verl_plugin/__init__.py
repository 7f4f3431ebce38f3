"""verl plugin: Elastic-Reasoning budgeted rollout, sandbox reward, data preparation, evaluation.

- `verl_plugin.rollout.BudgetedRollout`: verl agent loop (two-phase budgeted generation);
- `verl_plugin.budget`: the two-phase logic shared by the rollout and the evaluation;
- `verl_plugin.reward.compute_score`: async reward through the sandbox's gRPC API;
- `python -m verl_plugin.data`: LiveCodeBench / DeepCoder / Codeforces rows → verl parquet;
- `python -m verl_plugin.evaluate`: budgeted evaluation grid with vLLM offline.

Importing the package imports neither verl nor vLLM; `verl_plugin.rollout` needs verl.
"""
