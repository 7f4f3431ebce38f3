"""A tiny chat model built locally in seconds: the CPU harness's stand-in for DeepCoder.

- a byte-level BPE tokenizer trained on the prompts and completions it will see, with `<think>`,
  `</think>`, `<|im_start|>`, `<|im_end|>` (EOS) and a ChatML template whose generation prompt
  opens `<think>` (as DeepSeek-R1-Distill's does);
- a 2-layer Qwen2-architecture causal LM with random weights (float32);
- a short supervised warm start on (prompt, completion) pairs, so that sampling from it gives
  fenced code the sandbox really grades.

Nothing is downloaded. The result is a normal Hugging Face model directory (config, weights,
tokenizer, chat template) that verl loads with `actor_rollout_ref.model.path=DIR`. It is cached:
`build_tiny_model` returns at once when DIR already holds a fixture made from the same inputs.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

FIXTURE_VERSION = 1
EOS = "<|im_end|>"
PAD = "<|endoftext|>"
SPECIAL_TOKENS = [PAD, "<|im_start|>", EOS]
THINK_TOKENS = ["<think>", "</think>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n<think>\n{% endif %}")
MARKER = "tiny_fixture.json"

Pairs = Sequence[tuple[list[dict], Sequence[str]]]


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "code-sandbox" / "tiny-model"


def fixture_key(pairs: Pairs, *, steps: int, seed: int, hidden_size: int) -> str:
    payload = json.dumps({"version": FIXTURE_VERSION, "pairs": [[m, list(c)] for m, c in pairs],
                          "steps": steps, "seed": seed, "hidden": hidden_size}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def render_prompt(messages: list[dict]) -> str:
    """The chat template in plain Python (to train the tokenizer before it exists)."""
    text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return text + "<|im_start|>assistant\n<think>\n"


def train_tokenizer(texts: Sequence[str], vocab_size: int = 800):
    """A byte-level BPE tokenizer (Hugging Face `tokenizers`) with the chat and thinking tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    core.train_from_iterator(list(texts), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, eos_token=EOS, pad_token=PAD,
                                        bos_token=None, unk_token=None)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>"]})
    # As in Qwen3 / DeepSeek-R1-Distill: the thinking tags are added tokens, not special ones,
    # so decode(..., skip_special_tokens=True) keeps them.
    tokenizer.add_tokens(THINK_TOKENS, special_tokens=False)
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.model_max_length = 2048
    return tokenizer


def _training_batch(tokenizer, pairs: Pairs):
    import torch

    rows, masks = [], []
    for messages, completions in pairs:
        prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        if isinstance(prompt, dict) or hasattr(prompt, "input_ids"):
            prompt = prompt["input_ids"]
        prompt = list(prompt)
        for completion in completions:
            answer = tokenizer.encode(completion + EOS, add_special_tokens=False)
            rows.append(prompt + answer)
            masks.append([0] * len(prompt) + [1] * len(answer))
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    loss_mask = torch.zeros((len(rows), width), dtype=torch.bool)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (row, mask) in enumerate(zip(rows, masks)):
        ids[i, :len(row)] = torch.tensor(row)
        loss_mask[i, :len(row)] = torch.tensor(mask, dtype=torch.bool)
        attention[i, :len(row)] = 1
    return ids, attention, loss_mask


def build_tiny_model(out_dir: str | Path, pairs: Pairs, *, steps: int = 300, seed: int = 0,
                     hidden_size: int = 128, lr: float = 3e-3) -> Path:
    """Builds (or reuses) the fixture in `out_dir`; returns the directory."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    out = Path(out_dir)
    key = fixture_key(pairs, steps=steps, seed=seed, hidden_size=hidden_size)
    marker = out / MARKER
    if marker.exists():
        try:
            if json.loads(marker.read_text()).get("key") == key:
                return out
        except (OSError, ValueError):
            pass
    texts = [render_prompt(m) + c + EOS for m, cs in pairs for c in cs]
    tokenizer = train_tokenizer(texts)
    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=2048, tie_word_embeddings=True, use_cache=True,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|im_start|>"),
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        torch_dtype="float32")
    model = Qwen2ForCausalLM(config)
    ids, attention, loss_mask = _training_batch(tokenizer, pairs)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    labels = ids.clone()
    labels[~loss_mask] = -100
    model.train()
    loss_value = float("nan")
    for _ in range(steps):
        loss = model(input_ids=ids, attention_mask=attention, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        loss_value = float(loss.detach())
    model.eval()
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    marker.write_text(json.dumps({"key": key, "warm_start_loss": round(loss_value, 4),
                                  "parameters": sum(p.numel() for p in model.parameters())}))
    log.info("tiny model in %s: warm-start loss %.3f", out, loss_value)
    return out
