"""Bad input to the consuming side (delivery policy, consumer construction): a
``MessagingConfigError`` naming the field and the value, raised before anything is
read, and still a ``ValueError`` for callers that catch that."""

from __future__ import annotations

import math

import pytest

from messaging import DeliveryPolicy, MessagingConfigError

POLICIES: list[tuple[dict[str, object], str]] = [
    ({"attempts": 0}, "attempts must be an int >= 1, not 0"),
    ({"attempts": True}, "attempts must be an int >= 1, not True"),
    ({"attempts": 2.0}, "attempts must be an int >= 1, not 2.0"),
    ({"retry_topics": -1}, "retry_topics must be an int >= 0, not -1"),
    ({"retry_topics": False}, "retry_topics must be an int >= 0, not False"),
    ({"initial_delay": -0.1}, "initial_delay must be finite seconds >= 0, not -0.1"),
    # NaN compares false with everything: min() in backoff() used to let it through.
    ({"initial_delay": math.nan}, "initial_delay must be finite seconds >= 0, not nan"),
    ({"max_delay": math.inf}, "max_delay must be finite seconds >= 0, not inf"),
    ({"retry_delay": -math.inf}, "retry_delay must be finite seconds >= 0, not -inf"),
    ({"retry_delay": "1"}, "retry_delay must be finite seconds >= 0, not '1'"),
    ({"max_delay": True}, "max_delay must be finite seconds >= 0, not True"),
]


@pytest.mark.parametrize(
    ("settings", "says"),
    POLICIES,
    ids=[f"{next(iter(s))}={s[next(iter(s))]!r}" for s, _ in POLICIES],
)
def test_a_delivery_policy_refuses_what_it_cannot_wait_or_count(
    settings: dict[str, object], says: str
) -> None:
    with pytest.raises(MessagingConfigError) as raised:
        DeliveryPolicy(**settings)  # type: ignore[arg-type]
    assert says in str(raised.value)
    assert str(raised.value).startswith("delivery policy: ")
    assert isinstance(raised.value, ValueError)


def test_a_delivery_policy_takes_zero_delays_and_int_seconds() -> None:
    policy = DeliveryPolicy(attempts=1, initial_delay=0, max_delay=3, retry_topics=0, retry_delay=0)
    assert policy.backoff(1) == 0.0 and policy.topics_for(["a"]) == []
