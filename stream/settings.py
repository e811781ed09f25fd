"""The one place that reads the environment.

Every knob is a ``CSPA_``-prefixed variable (or a field of a ``.env`` file named
by ``CSPA_ENV_FILE``); everything else in the package receives a ``Settings``.
Faust's own environment variables (``BROKER_URL``, ``WEB_PORT``...) are never
consulted: the app is built with an empty environment, see ``stream.worker.app``.
"""

from __future__ import annotations

import ssl
from datetime import time
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
#: the shipped taxonomy (``CSPA_TAXONOMY_PATH`` may name another)
DEFAULT_TAXONOMY = ROOT / "topics" / "taxonomy.toml"


class ServiceLevelVariant(StrEnum):
    """Denominator of the call service level (vendors differ; the report never said)."""

    #: answered within T / (answered + abandoned)
    OFFERED = "offered"
    #: answered within T / answered
    ANSWERED = "answered"
    #: answered within T / (answered + abandoned after the short-abandon threshold)
    OFFERED_LESS_SHORT = "offered_less_short_abandons"


class PeriodCombination(StrEnum):
    """How a percentage over several months is formed."""

    RATIO_OF_SUMS = "ratio_of_sums"      # correct: pool the calls, then divide
    MEAN_OF_MONTHS = "mean_of_months"    # legacy: reproduces the 2019 report's totals


class Settings(BaseSettings):
    """Worker, simulator and report configuration (environment prefix ``CSPA_``)."""

    model_config = SettingsConfigDict(env_prefix="CSPA_", extra="forbid", frozen=True)

    # Kafka
    broker: str = Field("127.0.0.1:19092", description="Kafka bootstrap servers, comma separated")
    security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SSL", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] = "SCRAM-SHA-512"
    sasl_username: str = ""
    sasl_password: SecretStr = SecretStr("")
    ssl_cafile: Path | None = None
    processing_guarantee: Literal["at_least_once", "exactly_once"] = "at_least_once"
    session_timeout_seconds: float = Field(
        10.0, description="a worker silent this long is dropped from the group (rebalance)")
    replication_factor: int = Field(
        -1, ge=-1, description="replicas of every topic the worker creates (-1: the cluster's "
        "default.replication.factor); at start the worker refuses topics with fewer")
    min_insync_replicas: int | None = Field(
        None, ge=1, description="min.insync.replicas of every topic created (unset: the "
        "cluster's default); at start the worker refuses topics with fewer")

    # Worker
    app_id: str = "cspa"
    web_host: str = Field("127.0.0.1", description="bind address of /metrics and /figures")
    web_port: int = 6066
    store: str = Field("local://", description="table store: local:// (in memory, "
                       "checkpointed to data_dir: a restart reads only the changelog's tail), "
                       "memory:// (Faust's: the whole changelog at every start) or rocksdb://")
    checkpoint_seconds: float = Field(60.0, gt=0, description="how often a local:// worker "
                                      "checkpoints its state, if it changed")
    data_dir: Path = ROOT / ".cache" / "worker"
    batch_size: int = Field(5000, description="records fetched per poll, at most (a batch "
                            "is a poll's records of one partition)")
    batches_buffered: int = Field(4, description="fetched batches an agent may have queued")
    standby_replicas: int = Field(0, ge=0, description="Faust table standby replicas: other "
                                  "workers keep a copy of each partition's records, so a "
                                  "failover reads only the changelog's tail")
    commit_seconds: float = Field(1.0, description="how often the consumer group's offsets "
                                  "follow the progress markers")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    taxonomy_path: Path = DEFAULT_TAXONOMY
    rules_path: Path = ROOT / "config" / "rules.toml"

    # Checkpoint signing (docs/security.md): no key file, no checkpoint read or taken
    checkpoint_key_file: Path | None = Field(
        None, description="secret (>= 32 bytes) signing the local:// checkpoints with "
        "HMAC-SHA-256; unset: no checkpoint is taken or read (every start restores from "
        "the changelogs). Keep it outside data_dir")

    # Input checks
    max_payload_bytes: int = 65_536
    max_future_skew_seconds: float = 600.0
    earliest_event_year: int = 2000

    # Definitions (shown beside every figure they change)
    timezone: str = "Europe/London"
    office_start: time = time(9, 0)
    office_end: time = time(17, 0)
    roll_after_hours: bool = Field(
        False, description="a contact received out of hours starts its clock next working day")
    service_level_seconds: float = 20.0
    service_level_variant: ServiceLevelVariant = ServiceLevelVariant.OFFERED
    short_abandon_seconds: float = Field(
        0.0, description="abandons at or under this wait are excluded (0: none excluded)")
    period_combination: PeriodCombination = PeriodCombination.RATIO_OF_SUMS
    calls_waiting_limit_seconds: float = Field(
        3600.0, gt=0, description="a queued call with no answer or abandon after this long "
        "stops counting as waiting and is counted as expired (its outcome never arrived)")
    metrics_months: int = Field(13, description="calendar months exported to Prometheus")
    pseudonym_key_file: Path | None = Field(
        None, description="secret (>= 16 bytes) keying the importer's pseudonymous keys")
    clock_file: Path | None = Field(
        None, description="tests/rehearsals only: read 'now' from this file (ISO 8601)")

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.office_end <= self.office_start:
            raise ValueError("office_end must be after office_start")
        if self.security_protocol.startswith("SASL") and not self.sasl_username:
            raise ValueError("SASL needs CSPA_SASL_USERNAME and CSPA_SASL_PASSWORD")
        if self.replication_factor == 0:
            raise ValueError("replication_factor must be -1 (the cluster's default) or >= 1")
        if 0 < self.replication_factor < (self.min_insync_replicas or 0):
            raise ValueError("min_insync_replicas exceeds replication_factor: "
                             "no write with acks=all could succeed")
        return self

    def ssl_context(self) -> ssl.SSLContext | None:
        """TLS context for SSL/SASL_SSL, verifying the broker against ``ssl_cafile``."""
        if not self.security_protocol.endswith("SSL"):
            return None
        return ssl.create_default_context(cafile=str(self.ssl_cafile) if self.ssl_cafile else None)

    def kafka_client_kwargs(self) -> dict[str, object]:
        """Security keyword arguments for aiokafka clients."""
        kwargs: dict[str, object] = {"security_protocol": self.security_protocol}
        if self.security_protocol.startswith("SASL"):
            kwargs.update(sasl_mechanism=self.sasl_mechanism,
                          sasl_plain_username=self.sasl_username,
                          sasl_plain_password=self.sasl_password.get_secret_value())
        context = self.ssl_context()
        if context is not None:
            kwargs["ssl_context"] = context
        return kwargs
