"""The one recipe for pseudonymous keys (issue 25, point 2)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stream.cli import main
from stream.contract.keys import SecretError, load_secret, pseudonymous_key
from stream.contract.taxonomy import load_taxonomy
from stream.upstream.importer import load_mapping, read_rows, rows_to_events

ROOT = Path(__file__).resolve().parents[3]
SECRET = b"council-test-secret-2026"
# Computed with OpenSSL, not with this code:
#   printf 'contact:LCS-CONTACT-1001' | openssl dgst -sha256 -hmac 'council-test-secret-2026'
#   SHA2-256(stdin)= 7a2719530a68a71aac609ce8110a7b26a70feeeff2a9109a0dd6847b8fb59c1c
OPENSSL = "7a2719530a68a71aac609ce8110a7b26a70feeeff2a9109a0dd6847b8fb59c1c"


def test_the_recipe_matches_openssl():
    assert pseudonymous_key(SECRET, "contact", "LCS-CONTACT-1001") == OPENSSL[:32]


def test_the_documented_vector_is_the_openssl_one():
    doc = (ROOT / "docs" / "contract.md").read_text()
    assert "printf 'contact:LCS-CONTACT-1001' | openssl dgst -sha256 -hmac " \
           "'council-test-secret-2026'" in doc
    assert re.search(rf"\b{OPENSSL[:32]}\b", doc)


def test_kinds_separate_and_cannot_be_forged():
    assert pseudonymous_key(SECRET, "child", "1001") != pseudonymous_key(SECRET, "contact", "1001")
    with pytest.raises(ValueError, match="lower-case word"):
        pseudonymous_key(SECRET, "contact:lcs", "1001")  # a colon would let pairs collide


def test_secret_file_rules(tmp_path):
    path = tmp_path / "secret"
    path.write_text("00112233445566778899aabbccddeeff\n")
    assert load_secret(path) == bytes.fromhex("00112233445566778899aabbccddeeff")
    path.write_text("too short")
    with pytest.raises(SecretError, match="shorter than 16 bytes"):
        load_secret(path)


def test_key_command_prints_one_key_per_id(tmp_path, capsys):
    path = tmp_path / "secret"
    path.write_bytes(SECRET)
    assert main(["key", "--kind", "contact", "--secret-file", str(path),
                 "LCS-CONTACT-1001", "LCS-CONTACT-1002"]) == 0
    lines = capsys.readouterr().out.split()
    assert lines[0] == OPENSSL[:32] and len(lines) == 2 and lines[1] != lines[0]


def test_a_contact_gets_one_key_from_the_case_system_and_the_early_help_module(tmp_path):
    # The case system's export, with its contact id, and the early-help module's
    # allocation of the same contact: the allocation must join the contact's record.
    mappings = ROOT / "topics" / "mappings"
    case_toml = (mappings / "annex_a_contacts.toml").read_text().replace(
        "[columns]\n", '[columns]\ncontact_id = "Contact ID"\n')
    (tmp_path / "lcs.toml").write_text(case_toml)
    (tmp_path / "lcs.csv").write_text(
        "Contact ID,Child ID,Date of contact,Contact source,Contact method,Outcome,"
        "Outcome date,Actual outcome\n"
        "CN-10021,972732,04/11/2019 09:37,Police,Email,Level 1,04/11/2019 15:15,"
        "Progress to Early Help\n")
    taxonomy = load_taxonomy()

    def events(csv: Path, mapping: Path):
        m = load_mapping(mapping)
        return [e for r in rows_to_events(read_rows(csv, m), m, key=SECRET, taxonomy=taxonomy)
                for e in r.events]

    case = events(tmp_path / "lcs.csv", tmp_path / "lcs.toml")
    early_help = events(ROOT / "topics" / "samples" / "early_help_allocations.csv",
                        mappings / "early_help_allocations.toml")
    assert {e.source_system for e in case} == {"lcs"}
    assert [(e.event_type, e.source_system) for e in early_help] == [
        ("early_help.allocated", "ehm")] * 2
    want = pseudonymous_key(SECRET, "contact", "CN-10021")
    assert {e.key for e in case} == {want} == {early_help[0].key}
    assert early_help[1].key == pseudonymous_key(SECRET, "contact", "CN-10022")
