"""verl on CPU, for CI and laptops (not for training real models).

- `backend`: loaded in every verl process (`VERL_USE_EXTERNAL_MODULES=verl_plugin.cpu.backend`,
  `VERL_PLATFORM=cpu`): the CPU platform (`platform`) and the "cpu" rollout backend (`rollout`,
  generation by `engine` with `transformers`);
- `tiny_model`: a tokenizer and a 2-layer model built locally in seconds, warm-started on
  `smoke_problems`.

`python -m verl_plugin.smoke` puts it all together.
"""
