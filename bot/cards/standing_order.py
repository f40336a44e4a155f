"""The standing order's card in the district's dispatcher chat: one card for the whole order.

Rendered from the database when the outbox sends it, in the district's language, and edited in
place as the order is decided and changed. Like the ride card it shows what the desk needs to
plan the trips and nothing more: no IIN, diagnosis, disability group or category. While the order
waits, the card says whether approving it would push some day's standing-order share of car-hours
past the district's cap, so one-off requests still find a car.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time
from typing import Any

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.callbacks.standing_orders import OrderAct, StandingOrderAct, StandingOrderAnswer
from bot.cards.registry import CardRenderer, CardView, register_card
from bot.i18n import N_, I18n, Translator
from bot.keyboards.registry import outbox_keyboard
from bot.services import standing_order_rules as so
from bot.services import standing_orders as orders
from bot.services.dispatch import REJECT_REASONS, reason_msgid
from bot.services.district_cache import district_by_id
from bot.services.ride_labels import purpose_label
from models import District, OrderStatus, Rider, StandingOrder, Vehicle

STATUS_LABELS = {
    OrderStatus.PENDING: N_("waiting for a dispatcher"),
    OrderStatus.APPROVED: N_("approved, rides are booked by themselves"),
    OrderStatus.REJECTED: N_("refused"),
    OrderStatus.ENDED: N_("ended"),
}
PROPOSED_STATUS = N_("another time offered, waiting for the rider's answer")
DECLINED_TEXT = N_("the rider did not accept the offered time")

APPROVE = N_("Approve")
APPROVE_WITH_CAR = N_("Approve with a usual car")
PROPOSE = N_("Offer another time")
PROPOSE_TYPED = N_("Type another time")
REJECT = N_("Refuse")
REJECT_TYPED = N_("Other reason (type it)")
BACK = N_("Back")
ACCEPT = N_("Accept the new time")
DECLINE = N_("Decline: close the standing order")


def _time(at: time) -> str:
    return at.strftime("%H:%M")


def _date(value: Any) -> str:
    return str(value.strftime("%d.%m.%Y"))


def _local(t: Translator, instant: datetime) -> str:
    return t.local(instant).strftime("%d.%m.%Y %H:%M")


def weekdays_text(t: Translator, weekdays: Sequence[int]) -> str:
    """Short weekday names in the reader's language: "пн, ср, пт" / "дс, ср, жм"."""
    return ", ".join(t(label) for label in so.weekday_labels(weekdays))


def needs_text(t: Translator, order: StandingOrder, rider: Rider | None) -> str:
    parts = []
    if order.wheelchair:
        parts.append(t("wheelchair (needs a ramp or lift)"))
    if rider is not None and rider.needs_walker:
        parts.append(t("walker"))
    if order.assistant:
        parts.append(t("an assistant rides along"))
    if order.companions:
        parts.append(t("companions: {count}", count=order.companions))
    return ", ".join(parts) if parts else t("no special needs")


def status_text(t: Translator, order: StandingOrder) -> str:
    if order.status == OrderStatus.PENDING and order.proposed_time is not None:
        return t(PROPOSED_STATUS)
    return t(STATUS_LABELS.get(OrderStatus(order.status), STATUS_LABELS[OrderStatus.PENDING]))


def reason_text(t: Translator, reason: str | None) -> str:
    if reason == orders.DECLINED:
        return t(DECLINED_TEXT)
    msgid = reason_msgid(reason)
    return t(msgid) if msgid else (reason or "")


def card_text(
    t: Translator,
    order: StandingOrder,
    rider: Rider | None,
    vehicle: Vehicle | None,
    capacity: so.CapacityVerdict | None,
    cap: float,
) -> str:
    """One fact per line, labels in the district's language."""
    lines = [
        t("Standing order №{number} — {state}", number=order.id, state=status_text(t, order)),
        t(
            "Days: {days}; from {first} to {end}",
            days=weekdays_text(t, order.weekdays),
            first=_date(order.first_date),
            end=_date(order.end_date),
        ),
    ]
    if order.return_time is not None:
        lines.append(
            t(
                "Pickup at {time}, way back at {back}",
                time=_time(order.pickup_time),
                back=_time(order.return_time),
            )
        )
    else:
        lines.append(t("Pickup at {time}, no way back", time=_time(order.pickup_time)))
    if order.proposed_time is not None and order.status == OrderStatus.PENDING:
        back = order.proposed_return_time
        lines.append(
            t(
                "Offered instead: pickup at {time}, way back at {back}",
                time=_time(order.proposed_time),
                back=_time(back) if back else "—",
            )
        )
    lines += [
        t("From: {address}", address=order.pickup_address),
        t("To: {address}", address=order.destination),
        t("Purpose: {purpose}", purpose=t(purpose_label(order.purpose))),
        t(
            "Rider: {name}, {phone}",
            name=rider.full_name if rider else "—",
            phone=rider.phone if rider else "—",
        ),
        t("Needs: {needs}", needs=needs_text(t, order, rider)),
    ]
    if order.comment:
        lines.append(t("Comment: {comment}", comment=order.comment))
    if rider is not None:
        expires = rider.vkk_expires_on
        lines.append(
            t(
                "Verified until (VKK): {date}",
                date=_date(expires) if expires else t("indefinite"),
            )
        )
    if vehicle is not None:
        colour = vehicle.colour_kk if t.lang == "kk" else vehicle.colour_ru
        lines.append(
            t(
                "Usual car: {make}, {colour}, {plate}. Driver: {driver}, {phone}",
                make=vehicle.make,
                colour=colour,
                plate=vehicle.plate,
                driver=vehicle.driver_name,
                phone=vehicle.driver_phone,
            )
        )
    for change in order.time_changes or []:
        lines.append(
            t(
                "From {date}: pickup at {time}, way back at {back}",
                date=_date(datetime.fromisoformat(change["from"])),
                time=change["pickup"],
                back=change.get("back") or "—",
            )
        )
    for pause in order.pauses or []:
        lines.append(
            t(
                "Paused from {start} to {end}",
                start=_date(datetime.fromisoformat(pause["start"])),
                end=_date(datetime.fromisoformat(pause["end"])),
            )
        )
    skipped = orders.skipped_dates(order)
    if skipped:
        lines.append(
            t(
                "No ride on: {dates}",
                dates=", ".join(f"{s.day:%d.%m} ({t(s.label)})" for s in skipped),
            )
        )
    if capacity is not None and capacity.over and capacity.day is not None:
        lines.append(
            t(
                "⚠ Over the cap: on {date} standing orders would take more of the cars' hours "
                "than allowed ({share}%, the district allows {cap}%).",
                date=_date(capacity.day),
                share=round(capacity.share * 100),
                cap=round(cap * 100),
            )
        )
    elif order.over_capacity and order.status == OrderStatus.APPROVED:
        lines.append(
            t(
                "⚠ Approved although it goes over the cap for standing orders ({cap}%).",
                cap=round(cap * 100),
            )
        )
    if order.reason and order.status == OrderStatus.REJECTED:
        lines.append(t("Reason: {reason}", reason=reason_text(t, order.reason)))
    if order.decided_at is not None:
        lines.append(
            t(
                "Decided by: {who}, {when}",
                who=order.decided_by_name or str(order.decided_by or "—"),
                when=_local(t, order.decided_at),
            )
        )
    return "\n".join(lines)


def _button(text: str, order_id: int, act: OrderAct, arg: int = 0) -> InlineKeyboardButton:
    return InlineKeyboardButton(
        text=text, callback_data=StandingOrderAct(order=order_id, act=act, arg=arg).pack()
    )


def card_keyboard(t: Translator, order: StandingOrder) -> InlineKeyboardMarkup | None:
    """Approve (with or without a usual car), offer another time, refuse: while it waits."""
    if order.status != OrderStatus.PENDING:
        return None
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [_button(t(APPROVE), order.id, OrderAct.APPROVE)],
            [_button(t(APPROVE_WITH_CAR), order.id, OrderAct.VEHICLES)],
            [
                _button(t(PROPOSE), order.id, OrderAct.PROPOSE),
                _button(t(REJECT), order.id, OrderAct.REJECT),
            ],
        ]
    )


def vehicles_menu(
    t: Translator, order_id: int, vehicles: Sequence[Vehicle]
) -> InlineKeyboardMarkup:
    """The cars that fit the order (the handler picks them with `dispatch.suits`)."""
    rows = [[_button(f"{v.make} {v.plate}", order_id, OrderAct.VEHICLE, v.id)] for v in vehicles]
    return InlineKeyboardMarkup(
        inline_keyboard=[*rows, [_button(t(BACK), order_id, OrderAct.BACK)]]
    )


def propose_menu(t: Translator, order_id: int, slots: Sequence[time]) -> InlineKeyboardMarkup:
    """A few pickup times near the asked one; the arg is minutes after midnight."""
    buttons = [_button(_time(s), order_id, OrderAct.SLOT, s.hour * 60 + s.minute) for s in slots]
    rows = [buttons[i : i + 3] for i in range(0, len(buttons), 3)]
    rows.append([_button(t(PROPOSE_TYPED), order_id, OrderAct.PROPOSE_TYPED)])
    rows.append([_button(t(BACK), order_id, OrderAct.BACK)])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def reject_menu(t: Translator, order_id: int) -> InlineKeyboardMarkup:
    """The desk's usual reasons (indexes into REJECT_REASON_CODES), then a typed one."""
    rows = [
        [_button(t(REJECT_REASONS[code]), order_id, OrderAct.REJECT_REASON, index)]
        for index, code in enumerate(orders.REJECT_REASON_CODES)
    ]
    rows.append([_button(t(REJECT_TYPED), order_id, OrderAct.REJECT_TYPED)])
    rows.append([_button(t(BACK), order_id, OrderAct.BACK)])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def slot_time(arg: int) -> time | None:
    """The time a SLOT button stands for; None for a forged arg."""
    if not 0 <= arg < 24 * 60:
        return None
    return time(arg // 60, arg % 60)


@outbox_keyboard(orders.PROPOSAL_KEYBOARD)
def proposal_keyboard(t: Translator, args: dict[str, Any]) -> InlineKeyboardMarkup:
    """The rider's answer to another time offered for the standing order."""
    order_id = int(args["order_id"])
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=t(ACCEPT),
                    callback_data=StandingOrderAnswer(order=order_id, accept=True).pack(),
                )
            ],
            [
                InlineKeyboardButton(
                    text=t(DECLINE),
                    callback_data=StandingOrderAnswer(order=order_id, accept=False).pack(),
                )
            ],
        ]
    )


async def build(
    session: AsyncSession, order: StandingOrder, district: District, i18n: I18n
) -> tuple[str, InlineKeyboardMarkup | None]:
    """Text and main buttons of the card as it is now (shared with the phase-2 handlers)."""
    t = i18n.translator(district.language)
    rider = await session.get(Rider, order.rider_id)
    vehicle = await session.get(Vehicle, order.vehicle_id) if order.vehicle_id else None
    capacity = None
    if order.status == OrderStatus.PENDING:
        capacity = await orders.capacity_of(session, order, district)
    cap = district.standing_order_capacity_share or so.DEFAULT_CAPACITY_SHARE
    return card_text(t, order, rider, vehicle, capacity, cap), card_keyboard(t, order)


async def render(session: AsyncSession, order_id: int, i18n: I18n) -> CardView | None:
    order = await session.get(StandingOrder, order_id, populate_existing=True)
    if order is None:
        return None
    district = await district_by_id(session, order.district_id)
    if district is None:
        return None
    text, markup = await build(session, order, district, i18n)
    same_chat = order.card_chat_id == district.chat_id
    message_id = order.card_message_id if same_chat and order.card_message_id else None
    return CardView(
        text=text,
        markup=markup,
        chat_id=district.chat_id,
        topic_id=district.topic_id,
        message_id=message_id,
    )


async def posted(session: AsyncSession, order_id: int, chat_id: int, message_id: int) -> None:
    """Remember the card's message; 0 means it is gone and the next refresh posts it again."""
    await session.execute(
        update(StandingOrder)
        .where(StandingOrder.id == order_id)
        .values(card_chat_id=chat_id, card_message_id=message_id or None)
        .execution_options(synchronize_session=False)
    )


register_card(orders.STANDING_ORDER_CARD, CardRenderer(render, posted))
