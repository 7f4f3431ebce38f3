"""L1's target-length instruction (LCPO, arXiv 2503.04697; cmu-l3/l1 `scripts/data/deepscaler_dataset.py`).

The prompt states the target length: "Think for N tokens." (L1-Exact) or "Think for maximum N
tokens." (L1-Max), appended to the user message after the answer-format instruction. Training
rows draw N uniformly from the integers 100..4000 (`random.randint(100, 4000)` there); the L1-Max
data (`--use_both_both` there) turns each row into a "maximum" row with probability 1/2 and keeps
the others exact, so one model learns both. The row carries `extra_info.length_mode`
("exact" | "max") and `extra_info.target_tokens` (N), which `verl_plugin.l1_reward` reads.

Math prompts join with one space, as L1's training data ("... within \\boxed{}. Think for N
tokens."); code prompts end in a code block or a format line, so the instruction goes after a
blank line.
"""
from __future__ import annotations

import argparse
import random

EXACT = "exact"
MAX = "max"
MODES = (EXACT, MAX)
VARIANTS = ("none", EXACT, MAX)
TARGET_RANGE = (100, 4000)
MAX_SHARE = 0.5
L1_AGENT = "l1_rollout"


def instruction(mode: str, target: int) -> str:
    if mode not in MODES:
        raise ValueError(f"length mode must be one of {MODES}, got {mode!r}")
    if int(target) < 1:
        raise ValueError(f"a target length must be >= 1 token, got {target}")
    return f"Think for maximum {int(target)} tokens." if mode == MAX else f"Think for {int(target)} tokens."


def with_instruction(messages: list[dict], mode: str, target: int, separator: str = " ") -> list[dict]:
    """A copy of the chat with the instruction appended to its last user message."""
    out = [dict(m) for m in messages]
    for message in reversed(out):
        if message.get("role") == "user":
            message["content"] = f"{str(message['content']).rstrip()}{separator}{instruction(mode, target)}"
            return out
    raise ValueError("the prompt has no user message to add the target length to")


def parse_range(text: str) -> tuple[int, int]:
    low, sep, high = text.partition(":")
    if not sep or int(low) < 1 or int(high) < int(low):
        raise ValueError(f"target range {text!r}: write LOW:HIGH with 1 <= LOW <= HIGH, e.g. 100:4000")
    return int(low), int(high)


def draw(variant: str, rng: random.Random, target_range: tuple[int, int] = TARGET_RANGE,
         max_share: float = MAX_SHARE, fixed: int | None = None) -> tuple[str, int]:
    """(mode, target) of one row: exact rows only for "exact"; for "max", L1-Max's mixture."""
    if variant not in MODES:
        raise ValueError(f"length-control variant must be one of {MODES}, got {variant!r}")
    target = int(fixed) if fixed else rng.randint(*target_range)
    mode = MAX if variant == MAX and rng.random() < max_share else EXACT
    return mode, target


def annotate(rows: list[dict], variant: str, *, seed: int = 0, target_range: tuple[int, int] = TARGET_RANGE,
             max_share: float = MAX_SHARE, fixed: int | None = None, separator: str = " ",
             agent_name: str | None = L1_AGENT) -> list[dict]:
    """The rows with the L1 instruction in their prompt and the target in extra_info (in place)."""
    if variant == "none":
        return rows
    rng = random.Random(seed)
    for row in rows:
        mode, target = draw(variant, rng, target_range, max_share, fixed)
        row["prompt"] = with_instruction(row["prompt"], mode, target, separator)
        row["extra_info"] = {**row.get("extra_info", {}), "length_mode": mode, "target_tokens": target}
        if agent_name:
            row["agent_name"] = agent_name
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("L1 target lengths (LCPO)")
    group.add_argument("--length-control", choices=VARIANTS, default="none",
                       help="add L1's target-length instruction: exact ('Think for N tokens.'), max "
                            "(L1-Max's mixture: 'Think for maximum N tokens.' on --max-share of the "
                            "rows, exact on the others), none (default)")
    group.add_argument("--target-range", default=f"{TARGET_RANGE[0]}:{TARGET_RANGE[1]}",
                       help="N drawn uniformly from LOW:HIGH (default 100:4000, as L1)")
    group.add_argument("--target-length", type=int, default=None,
                       help="the same N for every row (evaluation data) instead of drawing it")
    group.add_argument("--max-share", type=float, default=MAX_SHARE,
                       help="--length-control max: share of 'maximum' rows (default 0.5, as L1)")
    group.add_argument("--length-seed", type=int, default=0, help="seed of the draws (default 0)")


def default_agent_name(args: argparse.Namespace, default: str) -> argparse.Namespace:
    """Fills --agent-name's default, remembering whether it was given (an explicit one wins
    over the `l1_rollout` loop that --length-control picks otherwise)."""
    args.agent_name_given = args.agent_name is not None
    if args.agent_name is None:
        args.agent_name = default
    return args


def annotate_from_args(rows: list[dict], args: argparse.Namespace, separator: str) -> list[dict]:
    """`annotate` with the CLI's options; with --length-control, rows go to the `l1_rollout` loop
    unless --agent-name was given explicitly."""
    if args.length_control == "none":
        return rows
    agent = None if getattr(args, "agent_name_given", False) else L1_AGENT
    fixed = args.target_length
    if fixed is not None and fixed < 1:
        raise ValueError(f"--target-length must be >= 1, got {fixed}")
    if not 0.0 <= args.max_share <= 1.0:
        raise ValueError(f"--max-share must be in [0, 1], got {args.max_share}")
    return annotate(rows, args.length_control, seed=args.length_seed, target_range=parse_range(args.target_range),
                    max_share=args.max_share, fixed=fixed, separator=separator, agent_name=agent)
