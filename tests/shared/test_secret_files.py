"""Secret settings from X_FILE (shared/secret_files.py), with real files and the services' real Settings classes:
what Docker secrets (/run/secrets/<name>) give a container in the Swarm stack."""

import pytest
from pydantic import SecretStr
from pydantic_settings import SettingsError

from services.frontend.app import create_app
from services.frontend.app.config import Settings as FrontendSettings
from services.inference.app.config import Settings as InferenceSettings
from shared.secret_files import is_secret

SETTINGS_CLASSES = [InferenceSettings, FrontendSettings]


def secret_fields(settings_cls) -> list[str]:
    return [name for name, field in settings_cls.model_fields.items() if is_secret(field)]


def test_the_secrets_of_the_swarm_stack_are_secret_settings():
    assert {"admin_token", "api_keys"} <= set(secret_fields(InferenceSettings))
    assert "secret_key" in secret_fields(FrontendSettings)


@pytest.mark.parametrize("settings_cls", SETTINGS_CLASSES, ids=lambda cls: cls.__module__)
def test_every_secret_setting_reads_its_file_without_the_trailing_newline(settings_cls, tmp_path, monkeypatch):
    for name in secret_fields(settings_cls):
        path = tmp_path / name
        path.write_text(f"value-of-{name}\n\n")  # what `echo` and editors leave at the end
        monkeypatch.setenv(f"{name.upper()}_FILE", str(path))
        monkeypatch.delenv(name.upper(), raising=False)
    settings = settings_cls()
    for name in secret_fields(settings_cls):
        value = getattr(settings, name)
        assert isinstance(value, SecretStr) and value.get_secret_value() == f"value-of-{name}"
        assert f"value-of-{name}" not in repr(settings)


def test_api_keys_from_a_file_and_crlf_line_ends(tmp_path, monkeypatch):
    keys = tmp_path / "api_keys"
    keys.write_bytes(b"key-one, key-two\r\n")
    monkeypatch.setenv("API_KEYS_FILE", str(keys))
    assert InferenceSettings().api_key_list == ["key-one", "key-two"]


def test_the_value_keeps_what_is_inside_it(tmp_path, monkeypatch):
    """Only trailing newlines go (the page's SECRET_KEY takes any text; the API's tokens must be sendable in a
    header, which their own validator checks, whether they come from a file or not)."""
    key = tmp_path / "secret_key"
    key.write_text("  spaced\tkey with a\nsecond line  \n")
    monkeypatch.setenv("SECRET_KEY_FILE", str(key))
    assert FrontendSettings().secret_key.get_secret_value() == "  spaced\tkey with a\nsecond line  "


def test_a_token_from_a_file_is_checked_like_one_from_the_environment(tmp_path, monkeypatch):
    token = tmp_path / "token"
    token.write_text("token with spaces\n")
    monkeypatch.setenv("ADMIN_TOKEN_FILE", str(token))
    with pytest.raises(ValueError, match="printable ASCII without spaces"):
        InferenceSettings()


def test_both_the_value_and_its_file_set_is_an_error_naming_both(tmp_path, monkeypatch):
    token = tmp_path / "token"
    token.write_text("from-file")
    monkeypatch.setenv("ADMIN_TOKEN_FILE", str(token))
    monkeypatch.setenv("ADMIN_TOKEN", "from-env")
    with pytest.raises(SettingsError, match="ADMIN_TOKEN and ADMIN_TOKEN_FILE are both set"):
        InferenceSettings()


def test_a_file_that_cannot_be_read_is_an_error_naming_the_variable_and_path(tmp_path, monkeypatch):
    missing = tmp_path / "not-there"
    monkeypatch.setenv("SECRET_KEY_FILE", str(missing))
    with pytest.raises(SettingsError, match=f"SECRET_KEY_FILE={missing}: cannot read the secret file"):
        FrontendSettings()


def test_empty_file_variables_and_plain_variables_work_as_before(tmp_path, monkeypatch):
    monkeypatch.setenv("ADMIN_TOKEN_FILE", "")  # empty = not set, as with the official images
    monkeypatch.setenv("ADMIN_TOKEN", "plain")
    monkeypatch.setenv("api_keys_file", str(tmp_path / "keys"))  # names are matched case-insensitively
    (tmp_path / "keys").write_text("k1")
    settings = InferenceSettings()
    assert settings.admin_token.get_secret_value() == "plain" and settings.api_key_list == ["k1"]


def test_an_explicit_argument_wins_over_the_file(tmp_path, monkeypatch):
    (tmp_path / "token").write_text("from-file")
    monkeypatch.setenv("ADMIN_TOKEN_FILE", str(tmp_path / "token"))
    assert InferenceSettings(admin_token="argument").admin_token.get_secret_value() == "argument"


def test_the_page_uses_the_secret_key_from_its_file(tmp_path, monkeypatch):
    (tmp_path / "secret_key").write_text("page-secret-from-a-docker-secret\n")
    monkeypatch.setenv("SECRET_KEY_FILE", str(tmp_path / "secret_key"))
    monkeypatch.delenv("SECRET_KEY", raising=False)
    assert create_app(FrontendSettings()).config["SECRET_KEY"] == "page-secret-from-a-docker-secret"
