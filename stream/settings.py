"""The one place that reads the environment.

Every knob is a ``CSPA_``-prefixed variable (or a field of a ``.env`` file named
by ``CSPA_ENV_FILE``); everything else in the package receives a ``Settings``.
Faust's own environment variables (``BROKER_URL``, ``WEB_PORT``...) are never
consulted: the app is built with an empty environment, see ``stream.worker.app``.
"""

from __future__ import annotations

import os
import ssl
from datetime import time
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ROOT = Path(__file__).resolve().parent.parent
#: the shipped taxonomy (``CSPA_TAXONOMY_PATH`` may name another)
DEFAULT_TAXONOMY = ROOT / "topics" / "taxonomy.toml"
#: Table stores the worker accepts (``CSPA_STORE``): tests/integration/test_pipeline.py runs
#: its exactness test on each. Faust's rocksdb:// is not one (it needs rocksdict).
STORES = ("local://", "memory://")
#: secret setting -> its file form: ``CSPA_X_FILE`` names a file holding ``CSPA_X`` (issue 26.6),
#: kept out of the environment (``/proc/PID/environ``, ``docker inspect``)
SECRET_FILES = {"sasl_password": "sasl_password_file", "web_password": "web_password_file"}


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

    # hide_input_in_errors: a validation error would otherwise quote every value, secrets too
    model_config = SettingsConfigDict(env_prefix="CSPA_", extra="forbid", frozen=True,
                                      hide_input_in_errors=True)

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
    create_topics: bool = Field(
        True, description="the worker creates missing topics at start (development); false "
        "in production: the admin creates them (python -m stream topics) and the worker, which "
        "then needs no Create right, only checks that they exist")

    # Secrets from files (issue 26.6)
    sasl_password_file: Path | None = Field(
        None, description="file holding the SASL password (instead of CSPA_SASL_PASSWORD)")

    # Worker
    app_id: str = "cspa"
    web_host: str = Field("127.0.0.1", description="bind address of /metrics and /cells")
    web_port: int = 6066
    store: str = Field("local://", description="table store: local:// (in memory, "
                       "checkpointed to data_dir: a restart reads only the changelog's tail) "
                       "or memory:// (Faust's: the whole changelog at every start)")
    checkpoint_seconds: float = Field(60.0, gt=0, description="how often a local:// worker "
                                      "checkpoints its state, if it changed")
    huge_pages: bool = Field(True, description="before each checkpoint, ask Linux to map "
                             "the worker's heap in 2 MiB pages, so the checkpoint's fork "
                             "holds the event loop for milliseconds, not tens of them "
                             "(stream.worker.hugepages); off: 4 KiB pages, as before")
    stall_log_seconds: float = Field(60.0, ge=0, description="at most one 'event loop "
                                     "stalled' log line per this many seconds, with the "
                                     "count and the longest stall over 50 ms since the "
                                     "last (one of a second or more at once); 0: a line "
                                     "per stall (stream.worker.stallwatch)")
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
    live_port: int = Field(6067, ge=0, le=65535, description="port of /live, served on "
                           "web_host by a thread of its own (0: not served)")
    liveness_seconds: float = Field(
        300.0, gt=0, description="/live fails once the event loop has not run for this long "
        "(above the longest stall recorded: a national year's cold refold, 92-112 s)")
    workers: str = Field("http://127.0.0.1:6066", description="every worker's base URL, "
                         "comma separated: where report and due ask (their --workers wins)")

    # Authenticated endpoints (issue 26.3)
    web_config_file: Path | None = Field(
        None, description="web configuration (Prometheus exporter-toolkit format): TLS and "
        "bcrypt basic-auth users for every route but /live; without it the worker binds to "
        "loopback only")
    web_insecure: bool = Field(
        False, description="allow a non-loopback CSPA_WEB_HOST without CSPA_WEB_CONFIG_FILE "
        "(the endpoints are then open to that network; logged at every start)")
    web_username: str = Field("", description="user report, due and the bench send to workers")
    web_password: SecretStr = SecretStr("")
    web_password_file: Path | None = Field(
        None, description="file holding CSPA_WEB_PASSWORD")
    web_cafile: Path | None = Field(
        None, description="CA that report, due and the bench trust for https:// workers")

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
        False, description="a working-day clock started out of office hours (contact received, "
        "MAP enquiry opened, progression to early help) starts at the next office opening")
    service_level_seconds: float = 20.0
    service_level_variant: ServiceLevelVariant = ServiceLevelVariant.OFFERED
    short_abandon_seconds: float = Field(
        0.0, description="abandons at or under this wait are excluded (0: none excluded)")
    period_combination: PeriodCombination = PeriodCombination.RATIO_OF_SUMS
    timeliness_target_percent: float = Field(
        80.0, ge=0, le=100, description="target share (%) of progressions within timescale: "
        "the HTML report's timeliness charts draw it as their target line")
    calls_waiting_limit_seconds: float = Field(
        3600.0, gt=0, description="a queued call with no answer or abandon after this long "
        "stops counting as waiting and is counted as expired (its outcome never arrived)")
    metrics_months: int = Field(13, description="calendar months exported to Prometheus")
    pseudonym_key_file: Path | None = Field(
        None, description="secret (>= 16 bytes) keying the importer's pseudonymous keys")
    clock_file: Path | None = Field(
        None, description="tests/rehearsals only: read 'now' from this file (ISO 8601)")
    # Running totals and publication (report --since, --publish, --since-published)
    since_map_within_days: str = Field(
        "1,5", description="report --since: the MAP enquiry thresholds (working days, comma "
        "separated) whose shares it gives; 1 working day is always given")
    published_dir: Path = Field(
        ROOT / ".cache" / "published", description="report --publish keeps one JSON snapshot "
        "per publication here, named by its time (UTC)")

    # Repeat contacts and re-referrals (stream/state/children.py): folded, so in the
    # state fingerprint.
    child_window_grace_days: float = Field(
        92.0, ge=0, le=3660, description="days a child's contacts and referrals are kept "
        "beyond the 12 months a repeat looks back (event time), for late events; a hop "
        "older than that is dead-lettered (child_window_passed)")

    # Open work: applied when open items are read (scrape, /due), never folded.
    open_work_horizon: float = Field(
        20.0, gt=0, description="working days: an open item whose deadline passed more than "
        "this long ago is stale, left out of the due list and the open-item gauges and "
        "counted apart (cspa_open_items_stale); a real item a month late is a data-quality "
        "question, not the morning list's")

    # Rates per 10,000 children (report only): unset, the report prints no rates, and says
    # how to set them. The three go together: a rate is never printed without its base.
    child_population: int | None = Field(
        None, gt=0, description="children aged 0-17 in the council's area: the denominator "
        "of the report's rates per 10,000 children (section 7)")
    child_population_year: int | None = Field(
        None, ge=1900, le=2100, description="the year of CSPA_CHILD_POPULATION (e.g. the "
        "ONS mid-year estimate's year), printed under every rate")
    child_population_source: str = Field(
        "", max_length=300, description="where CSPA_CHILD_POPULATION comes from, printed "
        "under every rate")

    @classmethod
    def settings_customise_sources(
            cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The environment first, then the ``.env`` file ``CSPA_ENV_FILE`` names (if any)."""
        env_file = os.environ.get("CSPA_ENV_FILE")
        if not env_file:
            return init_settings, env_settings, dotenv_settings, file_secret_settings
        if not Path(env_file).is_file():  # pydantic-settings would ignore it silently
            raise ValueError(f"CSPA_ENV_FILE names no readable file: {env_file}")
        return (init_settings, env_settings,
                DotEnvSettingsSource(settings_cls, env_file=env_file), file_secret_settings)

    @model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, values: object) -> object:
        """``CSPA_X_FILE`` fills ``CSPA_X`` from the file (one trailing newline dropped)."""
        if not isinstance(values, dict):
            return values
        for secret, file_field in SECRET_FILES.items():
            path = values.get(file_field)
            if not path:
                continue
            if values.get(secret):
                raise ValueError(f"set CSPA_{secret.upper()} or CSPA_{file_field.upper()}, "
                                 "not both")
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as exc:  # the path only: never the content
                raise ValueError(f"CSPA_{file_field.upper()}: cannot read {path}: "
                                 f"{exc.strerror or type(exc).__name__}") from None
            values = {**values, secret: text.removesuffix("\n").removesuffix("\r")}
        return values

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
        self.map_within_days()  # ValueError on a malformed list
        if self.child_population is not None and not (self.child_population_year
                                                      and self.child_population_source.strip()):
            raise ValueError("CSPA_CHILD_POPULATION needs CSPA_CHILD_POPULATION_YEAR and "
                             "CSPA_CHILD_POPULATION_SOURCE: every rate prints its base's "
                             "year and source")
        if self.store not in STORES:  # each one accepted is run by the exactness test
            raise ValueError(f"CSPA_STORE must be one of {', '.join(STORES)}"
                             + (" (rocksdb:// is not supported: it needs rocksdict and no "
                                "test runs it)" if self.store.startswith("rocksdb:") else ""))
        return self

    def map_within_days(self) -> tuple[float, ...]:
        """``since_map_within_days`` with 1 added: distinct, ascending, each > 0."""
        try:
            days = {float(x) for x in self.since_map_within_days.split(",") if x.strip()}
        except ValueError:
            raise ValueError("CSPA_SINCE_MAP_WITHIN_DAYS: not a comma-separated list of "
                             "numbers") from None
        if any(not d > 0 or d != d or d == float("inf") for d in days):
            raise ValueError("CSPA_SINCE_MAP_WITHIN_DAYS: every threshold must be a "
                             "positive number of working days")
        return tuple(sorted(days | {1.0}))

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
