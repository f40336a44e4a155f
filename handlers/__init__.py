"""Routers by feature. The order of inclusion is part of the design (see `get_routers`)."""

from __future__ import annotations

from aiogram import Router

from bot.settings import Settings


def get_routers(settings: Settings) -> list[Router]:
    """Feature routers, most specific first.

    Deep links and commands that work in any state come first; conversations next; the dispatcher
    group's router is scoped to groups; the catch-all fallback is last so it only sees what no
    feature claimed.
    """
    from handlers import (
        admin,
        booking,
        dispatch,
        fallback,
        my_rides,
        onboarding,
        profile,
        registration,
        reports,
        representatives,
        rider_updates,
        setup,
        standing_order_desk,
        standing_orders,
        start,
        status,
        verification,
    )

    return [
        start.router,
        profile.router,
        representatives.router,
        booking.router,
        my_rides.router,
        # After booking and my rides (their commands win in any state), before the fallback.
        standing_orders.router,
        onboarding.router,
        registration.router,
        verification.router,
        status.router,
        setup.router,
        rider_updates.router,
        admin.router,
        # Before the desk's router: /report as a reply while a reason is awaited is a command.
        reports.router,
        # Its typed answers are plain messages: before the desk's own router and the fallback.
        standing_order_desk.router,
        dispatch.router,
        fallback.router,
    ]
