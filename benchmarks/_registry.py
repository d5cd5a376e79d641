"""Every case, in the order the default run takes them."""

from __future__ import annotations

from . import (
    _aggregates,
    _append,
    _cdc,
    _consume,
    _feed,
    _freshness,
    _kafka,
    _overhead,
    _projection,
    _sagas,
    _scaling,
    _sync,
    _upcast,
)
from ._cases import Case

ALL_CASES: tuple[Case, ...] = (
    *_append.CASES,
    *_feed.CASES,
    *_aggregates.CASES,
    *_sync.CASES,
    *_upcast.CASES,
    *_projection.CASES,
    *_overhead.CASES,
    *_freshness.CASES,
    *_kafka.CASES,
    *_consume.CASES,
    *_sagas.CASES,
    *_scaling.CASES,
    *_cdc.CASES,
)
