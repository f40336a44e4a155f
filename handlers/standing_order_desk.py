"""Standing orders in the district's dispatcher chat: the card's buttons, the typed other time
or reason, and `/regular` with the district's orders and tomorrow's rides from them.

Like the ride card: the district is the chat (and topic) the press comes from, only its
dispatchers act, every press re-reads the order, and the service's row lock makes one of two
simultaneous presses win. Secondary menus replace the card's buttons in place. After «Other
reason» or «Type another time» the dispatcher's next plain message in the chat is the answer.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from aiogram import F, Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.state import State
from aiogram.types import CallbackQuery, Message
from pydantic import ValidationError

from bot.callbacks.standing_orders import OrderAct, StandingOrderAct
from bot.cards import standing_order as card
from bot.cards.ride import desk_status
from bot.context import Context
from bot.i18n import N_, Translator
from bot.services import booking, dispatch
from bot.services import standing_orders as orders
from bot.services.i18n_types import Reason
from bot.services.outbox import enqueue_card
from bot.states.standing_orders import OrderDesk, OrderDeskData
from handlers.dispatch import OUT_OF_DATE, Desk, desk_for_command, find_desk, send_lines
from models import OrderStatus, Rider, StandingOrder

log = logging.getLogger(__name__)

router = Router(name=__name__)
router.message.filter(F.chat.type.in_({"group", "supergroup"}))
router.callback_query.filter(F.message.chat.type.in_({"group", "supergroup"}))

NOT_HERE = N_("This standing order belongs to another district.")
APPROVED = N_("Standing order №{number} is approved.")
APPROVED_OVER_CAP = N_(
    "Standing order №{number} is approved, although it goes over the cap for standing orders."
)
PROPOSED = N_("Standing order №{number}: the rider is asked about {time}.")
REJECTED = N_("Standing order №{number} is refused.")
NO_CAR_FITS = N_("No car of the district suits this standing order.")
TYPE_TIME = N_("Write the other pickup time in this chat as a message, for example 08:30.")
TYPE_REASON = N_("Write the reason in this chat as a message, in words.")
BAD_TIME = N_("Please write the time as 08:30.")
BAD_REASON = N_("Please write the reason in words, up to 300 characters.")
# The group's command menu entry for /regular (the menu itself is set at start-up).
REGULAR_COMMAND = N_("The district's standing orders and tomorrow's rides from them")


def refused(t: Translator, order: StandingOrder | None, reason: Reason | None) -> str:
    if order is None:
        return t(NOT_HERE)
    return (reason or orders.NOT_PENDING).render(t)


async def refresh(ctx: Context, desk: Desk, order: StandingOrder) -> None:
    await enqueue_card(
        ctx.session,
        kind=orders.STANDING_ORDER_CARD,
        subject_id=order.id,
        chat_id=desk.district.chat_id,
        topic_id=desk.district.topic_id,
    )


def said(
    ctx: Context, desk: Desk, result: orders.OrderResult, msgid: str, **params: object
) -> None:
    """The press's answer: done, or why not (the card itself is refreshed by the service)."""
    t = desk.t
    if result.ok and result.order is not None:
        ctx.toast(t(msgid, number=result.order.id, **params))
    else:
        ctx.toast(refused(t, result.order, result.reason), alert=True)


@router.callback_query(StandingOrderAct.filter())
async def card_pressed(
    query: CallbackQuery, callback_data: StandingOrderAct, ctx: Context
) -> None:
    message = query.message
    if not isinstance(message, Message):
        ctx.toast(ctx.i18n.translator(ctx.settings.default_language)(OUT_OF_DATE), alert=True)
        return
    desk, why, t = await find_desk(ctx, query.from_user)
    if desk is None:
        ctx.toast(t(why), alert=True)
        return
    order = await orders.order_for_desk(ctx.session, callback_data.order, desk.district.id)
    if order is None:
        log.warning("a press for another district's order", extra={"order": callback_data.order})
        ctx.toast(t(NOT_HERE), alert=True)
        return
    if order.card_message_id != message.message_id or order.card_chat_id != message.chat.id:
        ctx.toast(t(OUT_OF_DATE), alert=True)
        return
    if order.status != OrderStatus.PENDING:
        await ctx.fsm.clear()
        ctx.toast(orders.NOT_PENDING.render(t), alert=True)
        await refresh(ctx, desk, order)
        return
    await handle_act(ctx, message, callback_data, desk, order)


async def handle_act(
    ctx: Context, message: Message, data: StandingOrderAct, desk: Desk, order: StandingOrder
) -> None:
    session, t, act, now = ctx.session, desk.t, data.act, ctx.now
    district_id = desk.district.id
    if act is OrderAct.APPROVE or act is OrderAct.VEHICLE:
        vehicle_id = data.arg if act is OrderAct.VEHICLE else None
        result = await orders.approve(
            session, order.id, desk.actor, now, vehicle_id=vehicle_id, district_id=district_id
        )
        over = result.capacity is not None and result.capacity.over
        said(ctx, desk, result, APPROVED_OVER_CAP if over else APPROVED)
        await ctx.fsm.clear()
    elif act is OrderAct.BACK:
        await ctx.fsm.clear()
        ctx.edit_markup(message, card.card_keyboard(t, order))
    elif act is OrderAct.VEHICLES:
        vehicles = await orders.fitting_vehicles(session, order)
        if not vehicles:
            ctx.toast(t(NO_CAR_FITS), alert=True)
            return
        ctx.edit_markup(message, card.vehicles_menu(t, order.id, vehicles))
    elif act is OrderAct.PROPOSE:
        slots = orders.proposal_times(desk.district, order.pickup_time)
        ctx.edit_markup(message, card.propose_menu(t, order.id, slots))
    elif act is OrderAct.SLOT:
        at = card.slot_time(data.arg)
        if at is None:
            ctx.toast(t(OUT_OF_DATE), alert=True)
            return
        result = await orders.propose_time(
            session, order.id, desk.actor, at, now, district_id=district_id
        )
        said(ctx, desk, result, PROPOSED, time=at.strftime("%H:%M"))
        await ctx.fsm.clear()
    elif act is OrderAct.REJECT:
        ctx.edit_markup(message, card.reject_menu(t, order.id))
    elif act is OrderAct.REJECT_REASON:
        codes = orders.REJECT_REASON_CODES
        if not 0 <= data.arg < len(codes):
            ctx.toast(t(OUT_OF_DATE), alert=True)
            return
        result = await orders.reject(
            session, order.id, desk.actor, codes[data.arg], now, district_id=district_id
        )
        said(ctx, desk, result, REJECTED)
        await ctx.fsm.clear()
    elif act is OrderAct.PROPOSE_TYPED:
        await start_typing(ctx, message, desk, order, OrderDesk.proposed_time, TYPE_TIME)
    elif act is OrderAct.REJECT_TYPED:
        await start_typing(ctx, message, desk, order, OrderDesk.reject_reason, TYPE_REASON)


async def start_typing(
    ctx: Context, message: Message, desk: Desk, order: StandingOrder, step: State, hint: str
) -> None:
    """The next plain message of this dispatcher in this chat is the answer; Back undoes it."""
    await ctx.fsm.set_state(step)
    await ctx.fsm.set_data(
        OrderDeskData(order_id=order.id, card_message_id=message.message_id).model_dump()
    )
    ctx.toast(desk.t(hint), alert=True)
    ctx.edit_markup(message, card.vehicles_menu(desk.t, order.id, []))


@router.message(StateFilter(OrderDesk), F.text, ~F.text.startswith("/"))
async def typed_answer(message: Message, ctx: Context) -> None:
    """Another time or a reason, typed as a message after the button asked for it."""
    try:
        data = OrderDeskData.model_validate(await ctx.fsm.get_data())
    except ValidationError:
        await ctx.fsm.clear()
        return
    if message.from_user is None:
        return
    desk, why, t = await find_desk(ctx, message.from_user)
    if desk is None:
        await ctx.fsm.clear()
        ctx.reply_to(message.message_id, t(why))
        return
    order = await orders.order_for_desk(ctx.session, data.order_id, desk.district.id)
    if order is None:
        await ctx.fsm.clear()
        return
    step = await ctx.fsm.get_state()
    text = dispatch.typed_words(message.text)
    if step == OrderDesk.proposed_time.state:
        at = booking.parse_time(text or "")
        if at is None:
            ctx.reply_to(message.message_id, t(BAD_TIME))
            return
        result = await orders.propose_time(
            ctx.session, order.id, desk.actor, at, ctx.now, district_id=desk.district.id
        )
        done = t(PROPOSED, number=order.id, time=at.strftime("%H:%M"))
    else:
        if text is None:
            ctx.reply_to(message.message_id, t(BAD_REASON))
            return
        result = await orders.reject(
            ctx.session, order.id, desk.actor, text, ctx.now, district_id=desk.district.id
        )
        done = t(REJECTED, number=order.id)
    if result.reason is not None and result.reason.code not in ("not_pending", "order_not_found"):
        # A time outside the service hours: say why and wait for another one.
        ctx.reply_to(message.message_id, result.reason.render(t))
        return
    await ctx.fsm.clear()
    if result.ok:
        ctx.reply_to(message.message_id, done)
    else:
        ctx.reply_to(message.message_id, refused(t, result.order, result.reason))
        await refresh(ctx, desk, order)


@router.message(Command("regular"))
async def district_orders(message: Message, ctx: Context) -> None:
    """The district's pending and running standing orders, then tomorrow's rides from them."""
    desk = await desk_for_command(message, ctx)
    if desk is None:
        return
    t, tz = desk.t, ctx.settings.tz
    views = await orders.district_orders(ctx.session, desk.district.id, ctx.now, tz=tz)
    lines = [t("Standing orders of the district: {count}", count=len(views))]
    for view in views:
        order = view.order
        times = order.pickup_time.strftime("%H:%M")
        if order.return_time is not None:
            times += "–" + order.return_time.strftime("%H:%M")
        lines.append(
            t(
                "№{number} · {state} · {name} · {days} {times} · {destination}",
                number=order.id,
                state=card.status_text(t, order),
                name=view.rider.full_name,
                days=card.weekdays_text(t, order.weekdays),
                times=times,
                destination=order.destination,
            )
        )
        link = dispatch.card_link(
            desk.district.chat_id, order.card_message_id, desk.district.topic_id
        )
        if link:
            lines.append(link)
    tomorrow = ctx.today + timedelta(days=1)
    rides = await orders.occurrences_on(ctx.session, desk.district.id, tomorrow, tz=tz)
    lines.append("")
    if not rides:
        lines.append(
            t("No rides from standing orders on {date}.", date=tomorrow.strftime("%d.%m.%Y"))
        )
    else:
        lines.append(
            t("Rides from standing orders on {date}:", date=tomorrow.strftime("%d.%m.%Y"))
        )
    for ride in rides:
        rider = await ctx.session.get(Rider, ride.rider_id)
        lines.append(
            t(
                "{time} — №{number} · {state} · {name} · {origin} → {destination}",
                time=ride.pickup_at.astimezone(tz).strftime("%H:%M"),
                number=ride.number,
                state=t(desk_status(ride.status)),
                name=rider.full_name if rider else "—",
                origin=ride.pickup_address,
                destination=ride.destination,
            )
        )
    send_lines(ctx, lines)
