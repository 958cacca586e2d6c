"""Settings, read from the environment once at start-up."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of the service. Environment variables carry the `DUPES_` prefix,
    except `DATABASE_URL`, which keeps the name every PostgreSQL tool knows."""

    model_config = SettingsConfigDict(env_prefix="DUPES_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        validation_alias="DATABASE_URL",
        description="PostgreSQL DSN; unset means the embedded server in data_dir.",
    )
    data_dir: Path = Field(
        default=Path(".dupes"),
        description="Folder of the embedded PostgreSQL (used without DATABASE_URL).",
    )
    host: str = "127.0.0.1"
    port: int = 8080
    pool_min_size: int = Field(default=2, ge=0)
    pool_max_size: int = Field(default=10, ge=1)
    pool_acquire_timeout: float = Field(
        default=5.0, gt=0, description="Seconds to wait for a pooled connection."
    )
    statement_timeout_ms: int = Field(default=60_000, ge=0)
    token_cache_ttl: float = Field(
        default=30.0,
        ge=0,
        description="Seconds a validated token stays cached (revocations are pushed).",
    )
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    detect_window: int = Field(
        default=5000,
        ge=0,
        description="Newest records scanned by detect; 0 scans every record.",
    )
    log_level: str = "INFO"
    bootstrap: bool = Field(
        default=True,
        description="On first start with no organization, create one with an admin.",
    )
