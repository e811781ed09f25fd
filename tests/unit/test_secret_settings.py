"""Secrets from files (issue 26.6): every secret setting has a ``_FILE`` form, a
``CSPA_ENV_FILE`` is read as the settings' docstring promises, and no validation error
quotes a secret."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from stream.report.webclient import WebClient
from stream.settings import SECRET_FILES, Settings

SECRET = "s3cret-Qv8-from-a-file"


@pytest.mark.parametrize("secret, file_field", sorted(SECRET_FILES.items()))
def test_every_secret_reads_from_its_file(tmp_path, monkeypatch, secret, file_field):
    path = tmp_path / "secret"
    path.write_text(SECRET + "\n")  # as `echo` writes it: the newline is not the secret's
    monkeypatch.setenv(f"CSPA_{file_field.upper()}", str(path))
    assert getattr(Settings(), secret).get_secret_value() == SECRET
    monkeypatch.setenv(f"CSPA_{secret.upper()}", "other")
    with pytest.raises(ValidationError, match="not both") as info:
        Settings()
    assert SECRET not in str(info.value) and "other" not in str(info.value)


def test_every_secret_field_has_a_file_form():
    secrets = {name for name, f in Settings.model_fields.items()
               if "SecretStr" in str(f.annotation)}
    assert secrets == set(SECRET_FILES)
    assert set(SECRET_FILES.values()) <= set(Settings.model_fields)


def test_an_unreadable_secret_file_names_the_path(tmp_path, monkeypatch):
    monkeypatch.setenv("CSPA_SASL_PASSWORD_FILE", str(tmp_path / "absent"))
    with pytest.raises(ValidationError, match="cannot read .*absent"):
        Settings()


def test_validation_errors_quote_no_secret(monkeypatch):
    monkeypatch.setenv("CSPA_SASL_PASSWORD", SECRET)
    monkeypatch.setenv("CSPA_SECURITY_PROTOCOL", "SASL_SSL")  # without a user: refused
    with pytest.raises(ValidationError, match="SASL needs") as info:
        Settings()
    assert SECRET not in str(info.value)  # what a traceback prints


def test_env_file_is_read_and_the_environment_wins(tmp_path, monkeypatch):
    (tmp_path / "pw").write_text(SECRET)
    env = tmp_path / "cspa.env"
    env.write_text(f"CSPA_APP_ID=from-file\nCSPA_WEB_PORT=7000\n"
                   f"CSPA_WEB_PASSWORD_FILE={tmp_path / 'pw'}\nCSPA_WEB_USERNAME=report\n")
    monkeypatch.setenv("CSPA_ENV_FILE", str(env))
    monkeypatch.setenv("CSPA_WEB_PORT", "7001")
    settings = Settings()
    assert (settings.app_id, settings.web_port) == ("from-file", 7001)
    client = WebClient.of(settings)
    assert client.headers()["Authorization"].startswith("Basic ")
    assert SECRET not in repr(settings) and SECRET not in repr(client)


def test_an_env_file_line_that_is_no_setting_is_refused(tmp_path, monkeypatch):
    env = tmp_path / "cspa.env"
    env.write_text("CSPA_APP_ID=x\nCSPA_WEB_PROT=7000\n")  # a typo: not silently ignored
    monkeypatch.setenv("CSPA_ENV_FILE", str(env))
    with pytest.raises(ValidationError, match="web_prot"):
        Settings()


def test_a_missing_env_file_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("CSPA_ENV_FILE", str(tmp_path / "absent.env"))
    with pytest.raises(ValueError, match="CSPA_ENV_FILE"):
        Settings()


def test_every_setting_has_its_row_in_the_operations_guide():
    # docs/operations.md is where on-call looks a setting up: none may be missing
    from pathlib import Path

    guide = (Path(__file__).parents[2] / "docs" / "operations.md").read_text()
    missing = [name for name in Settings.model_fields if f"CSPA_{name.upper()}" not in guide]
    assert missing == []
