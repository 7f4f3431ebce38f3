"""The final answer of a math response: the last `\\boxed{...}` after `</think>`.

E1-Math (rllm's `math_reward.py`, which the Elastic-Reasoning reference trains with) and L1 grade
the last boxed answer of the text after `</think>`; a response without `</think>` or without a
boxed answer scores 0. Braces are matched, so `\\boxed{\\frac{1}{2}}` and nested boxes work.
"""
from __future__ import annotations

THINK_END = "</think>"
_BOX_COMMANDS = ("\\boxed", "\\fbox")


def after_think(response: str, think_end: str = THINK_END) -> str | None:
    """The text after the last `</think>`, or None when the response has none."""
    if think_end not in response:
        return None
    return response.rsplit(think_end, 1)[1]


def _braced(text: str, start: int) -> tuple[str, int] | None:
    """The content of the `{...}` group opening at text[start], and the index after it."""
    depth = 0
    for index in range(start, len(text)):
        char = text[index]
        escaped = index > 0 and text[index - 1] == "\\"  # \{ and \} are literal braces
        if char == "{" and not escaped:
            depth += 1
        elif char == "}" and not escaped:
            depth -= 1
            if depth == 0:
                return text[start + 1:index], index + 1
    return None


def last_boxed(text: str) -> str | None:
    """The content of the last complete `\\boxed{...}` / `\\fbox{...}` (or `\\boxed 5`) in text."""
    found: str | None = None
    position = 0
    while True:
        starts = [(text.find(command, position), command) for command in _BOX_COMMANDS]
        starts = [(index, command) for index, command in starts if index >= 0]
        if not starts:
            return found
        index, command = min(starts)
        after = index + len(command)
        if after < len(text) and text[after] == "{":
            group = _braced(text, after)
            if group is None:  # an unclosed box: nothing after it can be complete either
                return found
            found, position = group[0], group[1]
        elif text.startswith(" ", after):  # `\boxed 5` (as MATH's remove_boxed accepts)
            word = text[after + 1:].split(None, 1)
            found = word[0].rstrip("$.,") if word else found
            position = after + 1
        else:
            position = after  # e.g. \boxedsomething: not a box
    return found


def ground_truths(value) -> list[str]:
    """The acceptable answers of a row: a string, a number or a list of them; a boxed
    ground truth (a whole MATH solution) is reduced to its boxed answer."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)) or (hasattr(value, "tolist") and not isinstance(value, str)):
        items = list(value.tolist() if hasattr(value, "tolist") else value)
    else:
        items = [value]
    answers = []
    for item in items:
        text = str(item).strip()
        if "\\boxed" in text or "\\fbox" in text:
            text = (last_boxed(text) or "").strip()
        if text:
            answers.append(text)
    return answers
