"""Frontend settings, from environment variables (``INFERENCE_URL=http://api:8000 python -m services.frontend``)."""

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.secret_files import SettingsWithSecretFiles


class Settings(SettingsWithSecretFiles):  # SECRET_KEY also from SECRET_KEY_FILE
    model_config = SettingsConfigDict(extra="ignore")

    inference_url: str = Field("http://127.0.0.1:8000", description="base URL of the inference API")
    inference_api_key: SecretStr = Field(SecretStr(""), description="this page's key to the API, one of the API's "
                                         "API_KEYS (sent as `Authorization: Bearer`; never shown or logged)")
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="cache; the page works without it")
    host: str = Field("127.0.0.1", description="listen address (containers set 0.0.0.0)")
    port: int = Field(5000, ge=1, le=65535, description="listen port")
    secret_key: SecretStr | None = Field(None, description="Flask secret; a random one per process when unset")
    workers: int = Field(2, ge=1, description="gunicorn worker processes")
    threads: int = Field(4, ge=1, description="threads per gunicorn worker (requests mostly wait on the API)")
    worker_timeout_s: int = Field(30, ge=5, description="gunicorn kills a worker stuck this long")
    forwarded_allow_ips: str = Field("127.0.0.1,::1", description="peers (addresses or networks) whose "
                                     "X-Forwarded-For/-Proto are believed: the edge's (gunicorn's setting too)")

    sample_ttl_s: int = Field(3600, ge=1, description="how long a rendered sample + prediction stays cached")
    metrics_ttl_s: float = Field(10.0, ge=0, description="how long the API's /metrics stays cached (0 = never)")
    training_ttl_s: float = Field(2.0, ge=0, description="how long the API's /training stays cached (0 = never)")
    training_poll_s: float = Field(3.0, gt=0, description="how often the page asks for the progress of a run")
    api_connect_timeout_s: float = Field(2.0, gt=0, description="connect timeout of every call to the API")
    api_read_timeout_s: float = Field(5.0, gt=0, description="read timeout of every call to the API")
    api_health_timeout_s: float = Field(2.0, gt=0, description="read timeout of the /ready call behind /health (its "
                                        "connect timeout: half of it at most): short, so that a hung API never makes "
                                        "this page look unhealthy too")
    redis_timeout_s: float = Field(0.2, gt=0, description="socket connect/read timeout for every Redis call")
    redis_retry_s: float = Field(1.0, ge=0, description="after a Redis failure, skip Redis this long before retrying")
    cache_prefix: str = Field("fmnist:", description="prefix of every Redis key this app writes")

    max_upload_bytes: int = Field(2 * 1024 * 1024, ge=1024, description="largest picture accepted (413 above)")
    top_k: int = Field(3, ge=1, le=10, description="probabilities shown per prediction")
