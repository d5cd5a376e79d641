"""The Ledger's rules, as given/when/then specifications."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from aggregates import DomainError, scenario
from aggregates.ledger import (
    LEDGER_UPCASTERS,
    Closed,
    CurrencyMismatch,
    Deposited,
    Frozen,
    InsufficientFunds,
    InvalidAmount,
    InvalidCurrency,
    InvalidOwner,
    Ledger,
    LedgerAlreadyOpen,
    LedgerClosed,
    LedgerFrozen,
    LedgerNotFrozen,
    LedgerNotOpen,
    LedgerStatus,
    NonZeroBalance,
    Opened,
    Unfrozen,
    Withdrawn,
)
from eventstore import EventCodec, NewEvent, UpcastError

D = Decimal
OPENED = Opened(owner="ann", currency="EUR")
OPENED_WITH_LIMIT = Opened(owner="ann", currency="EUR", overdraft_limit=D(50))


def eur(amount: str) -> Deposited:
    return Deposited(amount=D(amount), currency="EUR")


def out(amount: str, description: str = "") -> Withdrawn:
    return Withdrawn(amount=D(amount), currency="EUR", description=description)


# -- open ---------------------------------------------------------------------


def test_open_records_owner_currency_and_limit() -> None:
    ledger = (
        scenario(Ledger)
        .when(lambda ledger: ledger.open("ann", "EUR", overdraft_limit="50"))
        .then(OPENED_WITH_LIMIT)
    )
    assert ledger.status is LedgerStatus.OPEN
    assert ledger.overdraft_limit == D(50)


def test_open_twice_is_refused() -> None:
    scenario(Ledger).given(OPENED).when(lambda ledger: ledger.open("bob", "USD")).then_raises(
        LedgerAlreadyOpen
    )


@pytest.mark.parametrize("currency", ["eur", "EURO", "", "E1R", None])
def test_open_needs_a_currency_code(currency: object) -> None:
    scenario(Ledger).when(lambda ledger: ledger.open("ann", currency)).then_raises(  # type: ignore[arg-type]
        InvalidCurrency
    )


@pytest.mark.parametrize("owner", ["", "   ", None])
def test_open_needs_an_owner(owner: object) -> None:
    scenario(Ledger).when(lambda ledger: ledger.open(owner, "EUR")).then_raises(InvalidOwner)  # type: ignore[arg-type]


def test_open_refuses_a_negative_overdraft_limit() -> None:
    scenario(Ledger).when(lambda ledger: ledger.open("ann", "EUR", overdraft_limit=-1)).then_raises(
        InvalidAmount, match="overdraft"
    )


@pytest.mark.parametrize(
    "command",
    [
        lambda ledger: ledger.deposit(1),
        lambda ledger: ledger.withdraw(1),
        lambda ledger: ledger.freeze(),
        lambda ledger: ledger.unfreeze(),
        lambda ledger: ledger.close(),
    ],
)
def test_nothing_happens_before_open(command: object) -> None:
    scenario(Ledger).when(command).then_raises(LedgerNotOpen)  # type: ignore[arg-type]


# -- money ----------------------------------------------------------------------


def test_deposit_records_the_amount_in_the_ledger_currency() -> None:
    ledger = (
        scenario(Ledger)
        .given(OPENED, eur("10.00"))
        .when(lambda ledger: ledger.deposit(D("0.10")))
        .then(eur("0.10"))
    )
    assert ledger.balance == D("10.10")


@pytest.mark.parametrize("amount", [5, "5", "5.00", D("5")])
def test_ints_and_decimal_strings_are_accepted(amount: object) -> None:
    ledger = (
        scenario(Ledger)
        .given(OPENED)
        .when(lambda ledger: ledger.deposit(amount))
        .then(  # type: ignore[arg-type]
            eur(str(D(amount)))  # type: ignore[arg-type]
        )
    )
    assert ledger.balance == 5


def test_a_float_amount_is_refused_with_a_clear_error() -> None:
    error = (
        scenario(Ledger)
        .given(OPENED)
        .when(lambda ledger: ledger.deposit(0.1))  # type: ignore[arg-type]
        .then_raises(InvalidAmount, match="not the float 0.1")
    )
    assert "Decimal('0.1')" in str(error)


def test_a_float_cannot_even_be_put_into_an_event() -> None:
    with pytest.raises(ValueError, match="float"):
        Deposited(amount=0.1, currency="EUR")  # type: ignore[arg-type]


@pytest.mark.parametrize("amount", [0, -1, "-0.01", "NaN", "Infinity", "abc", True, None, [1]])
@pytest.mark.parametrize("action", ["deposit", "withdraw"])
def test_amounts_must_be_positive_finite_numbers(amount: object, action: str) -> None:
    scenario(Ledger).given(OPENED_WITH_LIMIT).when(
        lambda ledger: getattr(ledger, action)(amount)
    ).then_raises(InvalidAmount)


def test_amounts_are_serialized_as_strings() -> None:
    assert eur("10.10").to_new_event().data == {"amount": "10.10", "currency": "EUR"}


def test_deposit_in_another_currency_is_refused() -> None:
    scenario(Ledger).given(OPENED).when(
        lambda ledger: ledger.deposit(1, currency="USD")
    ).then_raises(CurrencyMismatch, match="USD")


def test_withdraw_within_the_balance() -> None:
    ledger = (
        scenario(Ledger)
        .given(OPENED, eur("10"))
        .when(lambda ledger: ledger.withdraw(D("9.99"), description="rent"))
        .then(out("9.99", "rent"))
    )
    assert ledger.balance == D("0.01")


def test_withdraw_into_the_overdraft_up_to_the_limit() -> None:
    ledger = (
        scenario(Ledger)
        .given(OPENED_WITH_LIMIT, eur("10"))
        .when(lambda ledger: ledger.withdraw(60))
        .then(out("60"))
    )
    assert ledger.balance == D(-50)


def test_withdraw_past_the_limit_is_refused_and_names_ledger_and_rule() -> None:
    error = (
        scenario(Ledger, "acct-7")
        .given(OPENED_WITH_LIMIT, eur("10"))
        .when(lambda ledger: ledger.withdraw(D("60.01")))
        .then_raises(InsufficientFunds)
    )
    assert error.aggregate_id == "acct-7"
    assert "acct-7" in str(error) and "insufficient-funds" in str(error)


def test_no_overdraft_without_a_limit() -> None:
    scenario(Ledger).given(OPENED).when(lambda ledger: ledger.withdraw(D("0.01"))).then_raises(
        InsufficientFunds
    )


# -- freeze ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (lambda ledger: ledger.deposit(1), "cannot deposit: the ledger is frozen"),
        (lambda ledger: ledger.withdraw(1), "cannot withdraw: the ledger is frozen"),
        (lambda ledger: ledger.close(), "cannot close: the ledger is frozen"),
    ],
)
def test_a_frozen_ledger_takes_no_money_and_cannot_close(command: object, message: str) -> None:
    scenario(Ledger).given(OPENED, eur("5"), Frozen(reason="audit")).when(command).then_raises(  # type: ignore[arg-type]
        LedgerFrozen, match=message
    )


def test_freeze_and_unfreeze() -> None:
    scenario(Ledger).given(OPENED).when(lambda ledger: ledger.freeze("audit")).then(
        Frozen(reason="audit")
    )
    scenario(Ledger).given(OPENED, Frozen()).when(lambda ledger: ledger.freeze()).then_raises(
        LedgerFrozen
    )
    ledger = (
        scenario(Ledger)
        .given(OPENED, Frozen())
        .when(lambda ledger: ledger.unfreeze("cleared"))
        .then(Unfrozen(reason="cleared"))
    )
    assert ledger.status is LedgerStatus.OPEN
    scenario(Ledger).given(OPENED).when(lambda ledger: ledger.unfreeze()).then_raises(
        LedgerNotFrozen
    )


# -- close ----------------------------------------------------------------------


def test_close_at_zero_balance() -> None:
    ledger = (
        scenario(Ledger)
        .given(OPENED, eur("5"), out("5"))
        .when(lambda ledger: ledger.close())
        .then(Closed())
    )
    assert ledger.status is LedgerStatus.CLOSED


@pytest.mark.parametrize("history", [[eur("5")], [out("5")]])
def test_close_with_money_left_or_owed_is_refused(history: list[Deposited]) -> None:
    scenario(Ledger).given(OPENED_WITH_LIMIT, *history).when(
        lambda ledger: ledger.close()
    ).then_raises(NonZeroBalance)


@pytest.mark.parametrize(
    "command",
    [
        lambda ledger: ledger.deposit(1),
        lambda ledger: ledger.withdraw(1),
        lambda ledger: ledger.freeze(),
        lambda ledger: ledger.unfreeze(),
        lambda ledger: ledger.close(),
    ],
)
def test_nothing_after_close(command: object) -> None:
    scenario(Ledger).given(OPENED, Closed()).when(command).then_raises(LedgerClosed)  # type: ignore[arg-type]


def test_every_refusal_is_a_domain_error() -> None:
    for error in (InsufficientFunds, LedgerClosed, InvalidAmount, CurrencyMismatch):
        assert issubclass(error, DomainError)


# -- events of release 1 (upcasting) -------------------------------------------


def test_release_1_events_load_through_the_current_classes() -> None:
    ledger = (
        scenario(Ledger)
        .given_stored(
            NewEvent("ledger.AccountOpened", {"holder": "ann", "currency": "EUR"}),
            NewEvent("ledger.Deposited", {"amount": 10.1}),
            NewEvent("ledger.Withdrawn", {"amount": 3, "memo": "coffee"}),
            NewEvent("ledger.Deposited", {"amount": "0.2", "currency": "EUR"}, schema_version=2),
        )
        .when(lambda ledger: ledger.withdraw(D("7.3")))
        .then(out("7.3"))
    )
    assert ledger.owner == "ann"
    assert ledger.balance == 0  # 10.1 - 3 + 0.2 - 7.3, exactly: no float drift
    assert ledger.version == 5


def test_each_release_1_step_gives_the_current_shape() -> None:
    codec = EventCodec(Ledger.events, LEDGER_UPCASTERS)

    def current(type_: str, data: dict[str, object]) -> object:
        from datetime import UTC, datetime
        from uuid import uuid4

        from eventstore import Position, RecordedEvent

        return codec.decode(
            RecordedEvent(
                "ledger-x", 1, Position(1, 1), uuid4(), type_, 1, data, {}, datetime.now(UTC)
            )
        )

    assert current("ledger.AccountOpened", {"holder": "ann", "currency": "EUR"}) == Opened(
        owner="ann", currency="EUR", overdraft_limit=D(0)
    )
    assert current("ledger.Deposited", {"amount": 0.1}) == Deposited(amount=D("0.1"), currency=None)
    assert current("ledger.Withdrawn", {"amount": 2, "memo": None}) == Withdrawn(
        amount=D(2), currency=None, description=""
    )
    with pytest.raises(UpcastError, match=r"ledger\.AccountOpened v1 -> ledger\.Opened v2"):
        current("ledger.AccountOpened", {"owner": "ann", "currency": "EUR"})


@pytest.mark.parametrize("amount", ["1" + "0" * 15, "0.00001", Decimal("1E+20")])
def test_amounts_beyond_exact_decimal_range_are_refused(amount: Any) -> None:
    # Decimal keeps 28 significant digits and silently rounds past them.
    ledger = Ledger("range")
    ledger.open("Ann", "EUR")
    with pytest.raises(InvalidAmount, match="out of range"):
        ledger.deposit(amount)
    assert ledger.balance == 0 and len(ledger.pending_events) == 1
