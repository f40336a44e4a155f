"""Periodic sweeps (filled in by the reliability work)."""

from __future__ import annotations

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.app import App, create_scheduler


def start_sweeps(app: App) -> AsyncIOScheduler:
    scheduler = create_scheduler(app.settings)
    scheduler.start()
    return scheduler
