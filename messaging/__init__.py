"""Messaging: change data capture (CDC) from PostgreSQL tables in Debezium's format.

``ChangeCapture`` sets up a publication and a ``pgoutput`` replication slot for
some tables, takes an initial snapshot consistent with the slot, then streams
row changes as Debezium change events (``ChangeEvent``: topic, key, envelope).
"""

from ._cdc_capture import CdcOptions, ChangeCapture
from ._cdc_envelope import ChangeEvent
from ._cdc_errors import CdcDecodeError, CdcDeliveryError, CdcError, CdcSetupError, WalLevelError
from ._cdc_slot import SlotBatch, SlotLag, slot_lag
from ._cdc_source import ChangeEventSource, RowChange

__all__ = [
    "CdcDecodeError",
    "CdcDeliveryError",
    "CdcError",
    "CdcOptions",
    "CdcSetupError",
    "ChangeCapture",
    "ChangeEvent",
    "ChangeEventSource",
    "RowChange",
    "SlotBatch",
    "SlotLag",
    "WalLevelError",
    "slot_lag",
]
