"""Token-in, token-out generation with Hugging Face `transformers` on CPU, in vLLM's terms.

What verl's rollout servers promise and this engine keeps (so that agent loops written for vLLM,
ours included, behave the same):
- `max_tokens` new tokens at most, also bounded by the context length;
- generation stops after a token of `stop_token_ids` or an EOS (from the model's generation
  config and the tokenizer), unless `ignore_eos`; the stop token is part of the output, as in vLLM;
- sampling with temperature / top-k / top-p (temperature 0: greedy), an optional per-request seed;
- log-probs as vLLM's default `processed_logprobs` mode: the log-probability of the chosen token
  under the distribution it was sampled from (after temperature, top-k and top-p), which is what
  verl's actor recomputes with `logits / temperature` (equal when top-k / top-p keep everything);
- prompt log-probs in verl's layout (`extra_fields["prompt_logprobs"]` entry j is the log-prob of
  prompt token j + 1, with a dummy last entry; `extra_fields["prompt_ids"]` alongside);
- a KV cache per request (prefill once, one token per step).

Not for training real models: one request at a time on the CPU, float32.
"""
from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import torch


class Aborted(Exception):
    """The request was aborted (abort_all_requests / abort_request) before it finished."""


@dataclass
class SamplingOptions:
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    repetition_penalty: float = 1.0
    stop_token_ids: tuple[int, ...] = ()
    ignore_eos: bool = False
    logprobs: bool = False
    prompt_logprobs: bool = False
    seed: int | None = None

    KNOWN = ("max_tokens", "max_new_tokens", "temperature", "top_p", "top_k", "repetition_penalty",
             "stop_token_ids", "ignore_eos", "logprobs", "prompt_logprobs", "seed", "do_sample", "n",
             "min_p", "presence_penalty", "frequency_penalty", "detokenize", "skip_special_tokens")

    @classmethod
    def from_params(cls, params: Mapping, default_max_tokens: int) -> "SamplingOptions":
        unknown = sorted(set(params) - set(cls.KNOWN))
        if unknown:
            raise ValueError(f"unsupported sampling parameters for the CPU engine: {unknown}")
        max_tokens = params.get("max_tokens", params.get("max_new_tokens", default_max_tokens))
        temperature = float(params.get("temperature", 1.0))
        if params.get("do_sample") is False:
            temperature = 0.0
        top_k = params.get("top_k", -1)
        prompt_logprobs = params.get("prompt_logprobs")
        return cls(max_tokens=int(max_tokens), temperature=temperature,
                   top_p=float(params.get("top_p", 1.0)),
                   top_k=int(top_k) if top_k is not None else -1,
                   repetition_penalty=float(params.get("repetition_penalty", 1.0) or 1.0),
                   stop_token_ids=tuple(int(t) for t in (params.get("stop_token_ids") or ())),
                   ignore_eos=bool(params.get("ignore_eos", False)),
                   logprobs=params.get("logprobs") not in (None, False),
                   prompt_logprobs=prompt_logprobs is not None and prompt_logprobs is not False,
                   seed=int(params["seed"]) if params.get("seed") is not None else None)


@dataclass
class EngineOutput:
    token_ids: list[int]
    log_probs: list[float] | None
    finish_reason: str  # "stop" | "length" | "abort"
    extra_fields: dict = field(default_factory=dict)


def _filtered_logprobs(logits: torch.Tensor, options: SamplingOptions) -> torch.Tensor:
    """log-softmax of the sampling distribution (temperature, top-k, top-p), float32."""
    logits = logits.float()
    if options.temperature > 0:
        logits = logits / options.temperature
    if 0 < options.top_k < logits.shape[-1]:
        kth = torch.topk(logits, options.top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if options.top_p < 1.0:
        ordered, order = torch.sort(logits, descending=True)
        cumulative = torch.softmax(ordered, dim=-1).cumsum(-1)
        drop = cumulative - torch.softmax(ordered, dim=-1) >= options.top_p  # keeps the first token
        logits = logits.masked_fill(torch.zeros_like(drop).scatter(0, order, drop), float("-inf"))
    return torch.log_softmax(logits, dim=-1)


def _penalize(logits: torch.Tensor, seen: Iterable[int], penalty: float) -> torch.Tensor:
    """vLLM / HF repetition penalty: divide positive logits of seen tokens, multiply negative ones."""
    if penalty == 1.0:
        return logits
    ids = torch.tensor(sorted(set(seen)), dtype=torch.long)
    if ids.numel() == 0:
        return logits
    values = logits[ids]
    logits = logits.clone()
    logits[ids] = torch.where(values > 0, values / penalty, values * penalty)
    return logits


class HFEngine:
    """One causal LM on CPU; `generate` is thread-safe (one request runs at a time)."""

    def __init__(self, model_path: str, *, max_model_len: int, dtype: torch.dtype = torch.float32,
                 trust_remote_code: bool = False) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype,
                                                          trust_remote_code=trust_remote_code)
        self.model.eval()
        self.max_model_len = int(max_model_len)
        eos: set[int] = set()
        for value in (getattr(self.model.generation_config, "eos_token_id", None),
                      getattr(self.model.config, "eos_token_id", None)):
            if isinstance(value, int):
                eos.add(value)
            elif isinstance(value, (list, tuple)):
                eos.update(int(v) for v in value)
        try:
            tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=trust_remote_code)
            if tokenizer.eos_token_id is not None:
                eos.add(int(tokenizer.eos_token_id))
        except (OSError, ValueError):
            pass
        self.eos_ids = frozenset(eos)
        self._lock = threading.Lock()
        self._aborted: set[str] = set()
        self._abort_all = False
        self.weight_version = 0

    # ---------------------------------------------------------------- weights

    @torch.no_grad()
    def load_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> int:
        """Copies the actor's weights in (HF state-dict names); returns how many were loaded."""
        state = self.model.state_dict()
        loaded = 0
        with self._lock:
            for name, tensor in named_tensors:
                key = name if name in state else name.removeprefix("model.") if \
                    name.removeprefix("model.") in state else None
                if key is None:
                    raise KeyError(f"the rollout model has no parameter {name!r}")
                target = state[key]
                if tuple(target.shape) != tuple(tensor.shape):
                    raise ValueError(f"{name}: shape {tuple(tensor.shape)} != rollout's {tuple(target.shape)}")
                target.copy_(tensor.to(dtype=target.dtype, device=target.device))
                loaded += 1
            self.weight_version += 1
        return loaded

    def save_weights(self, path: str) -> None:
        from safetensors.torch import save_file

        with self._lock:
            state = {k: v.detach().clone().contiguous() for k, v in self.model.state_dict().items()}
        save_file(state, path)

    # ---------------------------------------------------------------- aborts

    def abort(self, request_id: str | None = None) -> None:
        if request_id is None:
            self._abort_all = True
        else:
            self._aborted.add(request_id)

    def resume(self) -> None:
        self._abort_all = False
        self._aborted.clear()

    def _check_abort(self, request_id: str) -> None:
        if self._abort_all or request_id in self._aborted:
            raise Aborted(request_id)

    # ---------------------------------------------------------------- generation

    @torch.no_grad()
    def generate(self, prompt_ids: list[int], options: SamplingOptions, request_id: str = "") -> EngineOutput:
        if not prompt_ids:
            raise ValueError("empty prompt")
        room = self.max_model_len - len(prompt_ids)
        if room < 1:
            raise ValueError(f"prompt length {len(prompt_ids)} leaves no room within the model's "
                             f"maximum context length {self.max_model_len}")
        max_tokens = max(1, min(int(options.max_tokens), room))
        stops = set(options.stop_token_ids) | (set() if options.ignore_eos else set(self.eos_ids))
        generator = None
        if options.seed is not None:
            generator = torch.Generator().manual_seed(options.seed)
        with self._lock:
            try:
                return self._generate_locked(list(prompt_ids), options, max_tokens, stops, generator,
                                             request_id)
            except Aborted:
                return EngineOutput(token_ids=[], log_probs=None, finish_reason="abort")
            finally:
                self._aborted.discard(request_id)

    def _generate_locked(self, prompt: list[int], options: SamplingOptions, max_tokens: int,
                         stops: set[int], generator, request_id: str) -> EngineOutput:
        self._check_abort(request_id)
        out = self.model(input_ids=torch.tensor([prompt]), use_cache=True)
        extra: dict = {}
        if options.prompt_logprobs:
            logprobs = torch.log_softmax(out.logits[0, :-1].float() / (options.temperature or 1.0), dim=-1)
            targets = torch.tensor(prompt[1:], dtype=torch.long)
            values = logprobs.gather(1, targets[:, None])[:, 0].tolist() if len(prompt) > 1 else []
            extra["prompt_logprobs"] = [[v] for v in values] + [[0.0]]
            extra["prompt_ids"] = [[t] for t in prompt[1:]] + [[0]]
        past = out.past_key_values
        logits = out.logits[0, -1]
        tokens: list[int] = []
        logprobs_out: list[float] = []
        finish = "length"
        for _ in range(max_tokens):
            self._check_abort(request_id)
            logits = _penalize(logits, prompt + tokens, options.repetition_penalty)
            if options.temperature <= 0:
                token = int(torch.argmax(logits))
                logprob = float(torch.log_softmax(logits.float(), dim=-1)[token])
            else:
                dist = _filtered_logprobs(logits, options)
                token = int(torch.multinomial(dist.exp(), 1, generator=generator))
                logprob = float(dist[token])
            tokens.append(token)
            logprobs_out.append(logprob)
            if token in stops:
                finish = "stop"
                break
            if len(tokens) == max_tokens:
                break
            out = self.model(input_ids=torch.tensor([[token]]), past_key_values=past, use_cache=True)
            past = out.past_key_values
            logits = out.logits[0, -1]
        return EngineOutput(token_ids=tokens, log_probs=logprobs_out if options.logprobs else None,
                            finish_reason=finish, extra_fields=extra)
