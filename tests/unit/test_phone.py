"""Kazakhstan phone numbers in every usual spelling become +7XXXXXXXXXX; others are refused."""

from __future__ import annotations

import pytest

from bot.services.phone import normalize_phone


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+7 701 123 45 67", "+77011234567"),
        ("87011234567", "+77011234567"),
        ("8 (701) 123-45-67", "+77011234567"),
        ("7011234567", "+77011234567"),
        ("+77011234567", "+77011234567"),
        ("77011234567", "+77011234567"),
        ("  +7 (747) 555-00-11 ", "+77475550011"),
        ("8 775 000 00 00", "+77750000000"),
        ("8-771-123-45-67", "+77711234567"),
        ("+7 (7282) 24-12-34", "+77282241234"),  # Taldykorgan landline
        ("8 72840 2 12 34", "+77284021234"),  # a district landline (Ushtobe, 72840)
        ("+7 600 123 45 67", "+76001234567"),  # the 6xx range is Kazakhstan's too
        ("8\u00a0701\u00a0123\u00a045\u00a067", "+77011234567"),  # no-break spaces
        ("8.701.123.45.67", "+77011234567"),
    ],
)
def test_accepted(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "+7 916 123 45 67",  # Moscow mobile
        "89161234567",
        "9161234567",
        "+7 495 123 45 67",  # Moscow landline
        "+7 800 123 45 67",  # Russian toll-free
        "+7 343 123 45 67",  # Yekaterinburg
        "+7 501 123 45 67",
        "+8 701 123 45 67",
        "+87011234567",
        "+998 90 123 45 67",  # Uzbekistan
        "+996 555 123 456",  # Kyrgyzstan
        "701123456",  # one digit short
        "70112345678",  # one digit long without a prefix
        "870112345678",
        "+770112345678",
        "+7701123456",
        "97011234567",
        "7 701 123 45 67 ext 2",
        "+7 701 123 45 6a",
        "7+7011234567",
        "++77011234567",
        "８７０１１２３４５６７",  # full-width digits
    ],
)
def test_refused(raw: str) -> None:
    assert normalize_phone(raw) is None
