"""The order's business rules, one error class each.

::

    DomainError
     ├── InvalidAmount            (shared) a float or malformed price/payment
     └── OrderError
          ├── OrderNotPlaced      a command before ``place``
          ├── OrderAlreadyPlaced  ``place`` twice
          ├── OrderNotOpen        items changed or payment made after payment/shipping/cancel
          ├── InvalidItem         empty sku, quantity not a positive int, negative price
          ├── EmptyOrder          ``place`` without items, ``pay`` with none left
          ├── ItemNotInOrder      removing a sku (or more units) than the order holds
          ├── PriceMismatch       adding a sku again at another unit price
          ├── PaymentMismatch     ``pay`` an amount other than the total
          ├── OrderNotPaid        ``ship`` before ``pay``
          ├── InvalidCustomer     an empty customer
          ├── AlreadyShipped      ``cancel`` or ``ship`` after shipping
          └── AlreadyCancelled    anything after ``cancel``
"""

from __future__ import annotations

from .._errors import DomainError


class OrderError(DomainError):
    """An order command broke one of the order's rules."""

    rule = "order-rule"


class OrderNotPlaced(OrderError):
    rule = "order-not-placed"


class OrderAlreadyPlaced(OrderError):
    rule = "order-already-placed"


class OrderNotOpen(OrderError):
    rule = "order-not-open"


class InvalidItem(OrderError):
    rule = "invalid-item"


class EmptyOrder(OrderError):
    rule = "empty-order"


class ItemNotInOrder(OrderError):
    rule = "item-not-in-order"


class PriceMismatch(OrderError):
    rule = "price-mismatch"


class PaymentMismatch(OrderError):
    rule = "payment-mismatch"


class OrderNotPaid(OrderError):
    rule = "order-not-paid"


class InvalidCustomer(OrderError):
    rule = "invalid-customer"


class AlreadyShipped(OrderError):
    rule = "already-shipped"


class AlreadyCancelled(OrderError):
    rule = "already-cancelled"
