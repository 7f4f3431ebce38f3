"""Fast unit tests of the code extraction (the reward's first step), kept apart so that mutation
testing (`mutmut run`, see pyproject.toml) can run them per mutant."""
from __future__ import annotations

from sandbox.benchmarks.extract import extract_code, solution_part


def test_last_block_wins_with_its_language():
    text = ("```python\nprint('draft')\n```\nbetter:\n```cpp\nint main(){}\n```\n"
            "and finally\n```python\nprint('final')\n```\n")
    assert extract_code(text) == ("print('final')\n", "python")


def test_fence_languages_and_default():
    assert extract_code("```cpp\nint main(){}\n```") == ("int main(){}\n", "cpp")
    assert extract_code("```c++\nint main(){}\n```")[1] == "cpp"
    assert extract_code("```\nx = 1\n```") == ("x = 1\n", "python")
    assert extract_code("```\nx = 1\n```", default_language="cpp") == ("x = 1\n", "cpp")
    assert extract_code("```Python3 extra\nx = 1\n```") == ("x = 1\n", "python")


def test_no_block():
    assert extract_code("no code") is None
    assert extract_code("") is None
    assert extract_code(None) is None


def test_solution_part_is_after_the_last_think_end():
    assert solution_part("a</think>b</think>c") == "c"
    assert solution_part("no thinking") == "no thinking"
    assert solution_part("x[/t]y", end_think="[/t]") == "y"
