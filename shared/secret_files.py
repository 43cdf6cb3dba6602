"""Secret settings from files: any ``SecretStr`` setting X can also come from the file named by X_FILE.

Orchestrators hand secrets to a container as files (Docker Swarm and Compose secrets under /run/secrets/,
Kubernetes secret volumes), so that they never appear in the container's environment, where ``docker inspect``,
``/proc/<pid>/environ`` and crash reports would show them. The official images (postgres, mysql, redis' docs)
read ``X_FILE`` for each secret ``X``; the services do the same, for every setting typed ``SecretStr``:

- the value is the file's content with trailing newlines stripped (``echo token > file`` works);
- X and X_FILE both set (non-empty) is an error, as is an X_FILE naming a file that cannot be read: a secret
  that silently falls back to a default would leave an endpoint open or disabled without anyone noticing;
- an explicit argument (``Settings(admin_token=...)``) still wins over both.

A service's Settings class inherits ``SettingsWithSecretFiles``; a new secret setting needs nothing but the
``SecretStr`` type.
"""

import os
import typing
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsError

FILE_SUFFIX = "_FILE"


def is_secret(field: FieldInfo) -> bool:
    """Whether a field is typed SecretStr (or SecretStr | None)."""
    annotation = field.annotation
    return annotation is SecretStr or SecretStr in typing.get_args(annotation)


def read_secret_file(variable: str, path: str) -> str:
    """The content of the file ``variable`` names, trailing newlines stripped; a clear error when unreadable."""
    try:
        return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as error:
        raise SettingsError(f"{variable}={path}: cannot read the secret file ({error})") from error


class SecretFilesSource(PydanticBaseSettingsSource):
    """Reads X_FILE for every SecretStr field X of the settings class (environment names as pydantic-settings
    matches them: the field name with the class's env_prefix, case-insensitive unless case_sensitive)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: typing.Mapping[str, str] | None = None) -> None:
        super().__init__(settings_cls)
        self.environ = os.environ if environ is None else environ

    def _lookup(self, name: str) -> str:
        if self.config.get("case_sensitive", False):
            return self.environ.get(name, "")
        wanted = name.lower()
        return next((value for key, value in self.environ.items() if key.lower() == wanted), "")

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        variable = f"{self.config.get('env_prefix', '')}{field_name}".upper()
        path = self._lookup(variable + FILE_SUFFIX)
        if not path:
            return None, field_name, False
        if self._lookup(variable):
            raise SettingsError(f"{variable} and {variable}{FILE_SUFFIX} are both set: set one of them "
                                f"({variable}{FILE_SUFFIX} names a file holding the value)")
        return read_secret_file(variable + FILE_SUFFIX, path), field_name, False

    def __call__(self) -> dict[str, Any]:
        values = {}
        for field_name, field in self.settings_cls.model_fields.items():
            if not is_secret(field):
                continue
            value, key, _ = self.get_field_value(field, field_name)
            if value is not None:
                values[key] = value
        return values


class SettingsWithSecretFiles(BaseSettings):
    """BaseSettings whose SecretStr settings also come from X_FILE (see the module's docstring). Sources, first
    wins: arguments, X_FILE files, the environment, a .env file, pydantic's secrets_dir."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, SecretFilesSource(settings_cls), env_settings, dotenv_settings, file_secret_settings
