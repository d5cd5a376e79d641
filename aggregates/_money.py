"""Money: ``Decimal`` in memory, a string in JSON, never a float anywhere.

A binary float cannot hold 0.10 exactly, so a float amount is refused at every
entrance (commands, event and state models) rather than rounded silently.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, TypeAlias

from pydantic import BeforeValidator

MoneyInput: TypeAlias = Decimal | int | str
"""What commands accept as an amount: a Decimal, an int, or a decimal string."""


MAX_MONEY_INTEGER_DIGITS = 15
MAX_MONEY_FRACTION_DIGITS = 4


class MoneyFormatError(ValueError):
    """A value is not a valid amount of money (the caller wraps it in a DomainError)."""


def _refuse_float(value: Any) -> Any:
    if isinstance(value, float):
        raise ValueError(
            f"money must be a Decimal, an int or a decimal string, not the float {value!r}"
        )
    return value


Money = Annotated[Decimal, BeforeValidator(_refuse_float)]
"""Model field type for amounts: serialized as a string, floats rejected."""


def parse_money(value: object, what: str = "amount") -> Decimal:
    """``value`` as a finite Decimal; ``MoneyFormatError`` for floats, bools and junk."""
    if isinstance(value, float):
        raise MoneyFormatError(
            f"{what} must be a Decimal, an int or a decimal string, not the float {value!r} "
            f"(write Decimal({str(value)!r}))"
        )
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise MoneyFormatError(
            f"{what} must be a Decimal, an int or a decimal string, got {type(value).__name__}"
        )
    try:
        amount = value if isinstance(value, Decimal) else Decimal(value)
    except InvalidOperation:
        raise MoneyFormatError(f"{what} {value!r} is not a decimal number") from None
    if not amount.is_finite():
        raise MoneyFormatError(f"{what} must be finite, got {value!r}")
    # Decimal arithmetic keeps 28 significant digits and rounds beyond them
    # without a word; bounding each amount keeps every balance exact (a ledger
    # would need over a billion maximal deposits to reach 28 digits).
    digits = amount.as_tuple()
    fraction = -int(digits.exponent) if int(digits.exponent) < 0 else 0
    if amount.adjusted() >= MAX_MONEY_INTEGER_DIGITS or fraction > MAX_MONEY_FRACTION_DIGITS:
        raise MoneyFormatError(
            f"{what} {value!r} is out of range: at most {MAX_MONEY_INTEGER_DIGITS} digits "
            f"before the decimal point and {MAX_MONEY_FRACTION_DIGITS} after it"
        )
    return amount
