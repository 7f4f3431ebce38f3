"""The committed generated modules must match what `python -m sandbox.proto_gen` makes."""
import tempfile
from pathlib import Path

from sandbox import proto_gen


def test_generated_code_is_up_to_date():
    with tempfile.TemporaryDirectory() as tmp:
        for fresh in proto_gen.generate(Path(tmp)):
            committed = proto_gen.REPO / "sandbox" / "v1" / fresh.name
            assert committed.read_bytes() == fresh.read_bytes(), (
                f"{committed} is out of date: run `python -m sandbox.proto_gen`")


def test_every_message_and_field_is_documented():
    """Each message, field, enum and RPC in the proto carries a comment (the contract's docs)."""
    text = proto_gen.PROTO_FILE.read_text().splitlines()
    undocumented = []
    for number, line in enumerate(text):
        stripped = line.strip()
        is_decl = stripped.startswith(("message ", "enum ", "rpc ")) or (
            stripped.endswith(";") and "=" in stripped and not stripped.startswith(
                ("syntax", "package", "option")))
        if not is_decl:
            continue
        previous = text[number - 1].strip() if number else ""
        if stripped.startswith("message ") and stripped.endswith("{}"):
            continue  # empty request messages
        if not previous.startswith("//") and "//" not in stripped:
            undocumented.append(f"line {number + 1}: {stripped}")
    assert not undocumented, "undocumented in sandbox.proto:\n" + "\n".join(undocumented)
