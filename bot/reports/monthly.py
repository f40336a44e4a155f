"""The monthly report as files: an XLSX workbook, the rides as CSV, and two PNG charts.

The figures come from `bot.services.report_figures` (one definition each); this module only
lays them out, in Kazakh or Russian, with dates and numbers as people in Kazakhstan write them
(25.11.2026, 14:30, 1 234,5). Rides are streamed once: each is appended to the rides sheet and
the CSV as it arrives (openpyxl's write-only workbook keeps no rows in memory), and the summary
and the cars sheet are written at the end from the totals.

No rider's name, phone, address or IIN is read, let alone written: the rides sheet says what a
budget report needs (number, date, purpose, category, outcome, car, dispatcher, times).
"""

from __future__ import annotations

import asyncio
import csv
import functools
import io
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import IO, Any, Final
from zoneinfo import ZoneInfo

from babel.dates import format_date
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import Cell
from openpyxl.styles import Font
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import DEFAULT_TIMEZONE
from bot.documents import Document, document_renderer
from bot.i18n import N_, I18n, Translator
from bot.reports import charts
from bot.services import report_figures as rf
from bot.services.dispatch import CANCEL_REASONS, REJECT_REASONS
from bot.services.registration import category_label
from bot.services.ride_labels import PURPOSE_LABELS, status_label
from models import District, RideStatus, utcnow

S = RideStatus

SHEET_SUMMARY = N_("Summary")
SHEET_RIDES = N_("Rides")
SHEET_CARS = N_("Cars")
TITLE = N_("Invataxi: report for {month}")
SCOPE_DISTRICT = N_("District: {district}")
SCOPE_REGION = N_("All districts of the region")
PREPARED = N_("Prepared: {when}")
COUNTING_RULE = N_(
    "Rides are counted in the month of their pickup date, local time; each outcome is the "
    "ride's state when the report was prepared."
)
FIGURE = N_("Figure")
VALUE = N_("Value")
REQUESTS = N_("Requests received")
COMPLETED = N_("Rides completed")
REJECTED = N_("Rejected by the dispatcher")
REJECTED_FOR = N_("Rejected: {reason}")
CANCELLED = N_("Cancelled, in all")
CANCELLED_BY_RIDER = N_("Cancelled by the rider or a representative")
CANCELLED_BY_DISPATCHER = N_("Cancelled by the dispatcher")
CANCELLED_LATE = N_("Cancelled late")
NO_SHOWS = N_("No-shows: the rider did not come out")
EXPIRED = N_("Expired: nobody decided before the pickup time")
STILL_OPEN = N_("Still under way")
UNIQUE_RIDERS = N_("Unique riders")
WHEELCHAIR_RIDES = N_("Rides with a wheelchair")
RIDERS_IN = N_("Riders by category: {category}")
RIDES_FOR = N_("Rides by purpose: {purpose}")
BY_REPRESENTATIVES = N_("Rides booked by representatives")
FROM_STANDING_ORDERS = N_("Rides from standing orders")
MEDIAN_WAIT = N_("Time from request to the dispatcher's decision, median, minutes")
P90_WAIT = N_("Time from request to the dispatcher's decision, 90th percentile, minutes")
IN_TIME = N_("Share of requests decided within the escalation time")
TYPED_REASON = N_("another reason, typed by the dispatcher")

COL_NUMBER = N_("Ride No.")
COL_DATE = N_("Pickup date")
COL_TIME = N_("Pickup time")
COL_DISTRICT = N_("District")
COL_PURPOSE = N_("Purpose")
COL_CATEGORY = N_("Category")
COL_OUTCOME = N_("Outcome")
COL_REASON = N_("Reason")
COL_LATE = N_("Cancelled late")
COL_WHEELCHAIR = N_("Wheelchair")
COL_BOOKED_BY = N_("Booked by")
COL_CAR = N_("Car")
COL_DECIDED_BY = N_("Decided by")
COL_WAIT = N_("Minutes to decision")
COL_MAKE = N_("Make")
COL_CAR_RIDES = N_("Rides completed")
COL_CAR_DAYS = N_("Days in service")
YES = N_("yes")
NO = N_("no")
BOOKED_BY: Final = {
    "rider": N_("rider"),
    "representative": N_("representative"),
    "dispatcher": N_("dispatcher"),
}
# One column per state: when the ride last entered it.
STATE_COLUMNS: Final = {
    S.REQUESTED: N_("Requested at"),
    S.TAKEN: N_("Taken at"),
    S.TIME_PROPOSED: N_("Another time offered at"),
    S.SCHEDULED: N_("Car assigned at"),
    S.EN_ROUTE: N_("Car on its way at"),
    S.ARRIVED: N_("Car arrived at"),
    S.ON_BOARD: N_("Rider on board at"),
    S.COMPLETED: N_("Completed at"),
    S.REJECTED: N_("Rejected at"),
    S.CANCELLED: N_("Cancelled at"),
    S.NO_SHOW: N_("No-show at"),
    S.EXPIRED: N_("Expired at"),
}

CHART_DAYS_TITLE = N_("Rides per day by outcome, {month}")
CHART_DAYS_X = N_("Pickup date")
CHART_DAYS_Y = N_("Rides")
CHART_WAIT_TITLE = N_("Time from request to the dispatcher's decision, {month}")
CHART_WAIT_X = N_("Minutes")
CHART_WAIT_Y = N_("Requests")
CHART_WAIT_EMPTY = N_("No decisions this month")
BIN_RANGE = N_("{low}–{high}")
BIN_OVER = N_("over {low}")
CAPTION = N_("Invataxi report for {month}: {scope}")
# Minutes: the edges of the waiting-time chart's bars (the last bar is "over 120").
WAIT_BINS: Final = (0, 5, 10, 15, 30, 60, 120)

DATE_FORMAT = "DD.MM.YYYY"
TIME_FORMAT = "HH:MM"
DATETIME_FORMAT = "DD.MM.YYYY HH:MM"
BOLD = Font(bold=True)


@functools.cache
def catalogs() -> I18n:
    """The Kazakh and Russian catalogs, read once per process."""
    return I18n()


def number(value: float, digits: int = 1) -> str:
    """1 234,5: a space between thousands and a decimal comma, as written in Kazakhstan (and
    as `babel` writes it for kk_KZ and ru_KZ; done by hand here, it is once per ride)."""
    return f"{value:,.{digits}f}".replace(",", "\u00a0").replace(".", ",")


def month_name(first: date, lang: str) -> str:
    """ "қараша 2026" / "ноябрь 2026"."""
    return format_date(first, "LLLL yyyy", locale=lang).lower()


@dataclass(frozen=True)
class ReportFiles:
    """The names of the report's files, all from one stem: invataxi-2026-11-taldykorgan."""

    stem: str

    @property
    def workbook(self) -> str:
        return f"{self.stem}.xlsx"

    @property
    def csv(self) -> str:
        return f"{self.stem}.csv"

    @property
    def per_day_chart(self) -> str:
        return f"{self.stem}-rides-per-day.png"

    @property
    def wait_chart(self) -> str:
        return f"{self.stem}-decision-time.png"


def files_for(first: date, district_id: str | None) -> ReportFiles:
    return ReportFiles(f"invataxi-{rf.month_code(first)}-{district_id or 'region'}")


class MonthlyReport:
    """One report being written: feed it rides (`add`), then `finish` it."""

    def __init__(
        self,
        t: Translator,
        first: date,
        tz: tzinfo,
        districts: dict[str, District],
        district_id: str | None,
        csv_out: IO[str] | None = None,
    ) -> None:
        self.t = t
        self.lang = t.lang
        self.first = first
        self.tz = tz
        self.districts = districts
        self.district_id = district_id
        self.figures = rf.MonthlyFigures(tz=tz, districts=districts)
        self.workbook = Workbook(write_only=True)
        # Created in the order the reader sees them; rows may be appended to any at any time.
        self.summary = self.workbook.create_sheet(t(SHEET_SUMMARY))
        self.rides = self.workbook.create_sheet(t(SHEET_RIDES))
        self.cars = self.workbook.create_sheet(t(SHEET_CARS))
        header = [t(h) for h in self.ride_header()]
        self.rides.append([self._bold(self.rides, h) for h in header])
        self.rides.freeze_panes = "B2"
        self.csv = csv.writer(csv_out, delimiter=";") if csv_out is not None else None
        if self.csv is not None:
            self.csv.writerow(header)

    # -- rides ----------------------------------------------------------------------------------

    @staticmethod
    def ride_header() -> list[str]:
        return [
            COL_NUMBER,
            COL_DATE,
            COL_TIME,
            COL_DISTRICT,
            COL_PURPOSE,
            COL_CATEGORY,
            COL_OUTCOME,
            COL_REASON,
            COL_LATE,
            COL_WHEELCHAIR,
            COL_BOOKED_BY,
            COL_CAR,
            COL_DECIDED_BY,
            COL_WAIT,
            *STATE_COLUMNS.values(),
        ]

    def outcome_label(self, outcome: str) -> str:
        return self.t(STILL_OPEN if outcome == rf.OPEN else status_label(outcome))

    def reason_label(self, code: str | None) -> str:
        if code is None:
            return ""
        msgid = REJECT_REASONS.get(code) or CANCEL_REASONS.get(code)
        return self.t(msgid or TYPED_REASON)

    def district_name(self, district_id: str) -> str:
        district = self.districts.get(district_id)
        return district.name(self.lang) if district is not None else district_id

    def category_name(self, code: str, district_id: str | None) -> str:
        district = self.districts.get(district_id) if district_id else None
        return category_label(self.t, self.lang, code, district)

    def add(self, ride: rf.RideFacts) -> None:
        """Count the ride and write its row to the rides sheet and the CSV."""
        self.figures.add(ride)
        t = self.t
        local = ride.pickup_at.astimezone(self.tz)
        decision = ride.decision
        wait = ride.decision_wait
        minutes = round(wait.total_seconds() / 60, 1) if wait is not None else None
        times = ride.state_times()
        stamps = [self._local(times.get(status)) for status in STATE_COLUMNS]
        texts: list[str] = [
            str(ride.id),
            local.strftime("%d.%m.%Y"),
            local.strftime("%H:%M"),
            self.district_name(ride.district_id),
            t(PURPOSE_LABELS.get(ride.purpose, PURPOSE_LABELS["other"])),
            self.category_name(ride.category, ride.district_id),
            self.outcome_label(ride.outcome),
            self.reason_label(ride.reason_code)
            if ride.status in (S.REJECTED, S.CANCELLED)
            else "",
            t(YES if ride.cancelled_late else NO) if ride.status == S.CANCELLED else "",
            t(YES if ride.wheelchair else NO),
            t(BOOKED_BY.get(ride.booked_by_kind, BOOKED_BY["rider"])),
            ride.vehicle_plate or "",
            (decision.actor_name or "") if decision is not None else "",
        ]
        sheet = self.rides
        cells: list[Any] = [
            ride.id,
            self._cell(sheet, local.date(), DATE_FORMAT),
            self._cell(sheet, local.time(), TIME_FORMAT),
            *texts[3:],
            self._cell(sheet, minutes, "0.0") if minutes is not None else None,
            *[self._cell(sheet, s, DATETIME_FORMAT) if s is not None else None for s in stamps],
        ]
        sheet.append(cells)
        if self.csv is not None:
            self.csv.writerow(
                [
                    *texts,
                    number(minutes) if minutes is not None else "",
                    *[s.strftime("%d.%m.%Y %H:%M") if s is not None else "" for s in stamps],
                ]
            )

    def _local(self, instant: datetime | None) -> datetime | None:
        """Local wall-clock time without a zone: spreadsheets have no time zones."""
        if instant is None:
            return None
        return instant.astimezone(self.tz).replace(tzinfo=None)

    @staticmethod
    def _cell(sheet: WriteOnlyWorksheet, value: Any, number_format: str) -> Cell:
        cell = WriteOnlyCell(sheet, value=value)
        cell.number_format = number_format
        return cell

    @staticmethod
    def _bold(sheet: WriteOnlyWorksheet, value: Any) -> Cell:
        cell = WriteOnlyCell(sheet, value=value)
        cell.font = BOLD
        return cell

    # -- the summary and the cars ---------------------------------------------------------------

    def scope(self) -> str:
        if self.district_id is None:
            return self.t(SCOPE_REGION)
        return self.t(SCOPE_DISTRICT, district=self.district_name(self.district_id))

    def summary_rows(self) -> list[tuple[str, int | float | None, str]]:
        """(label, value, number format) in the order the summary shows them."""
        t, f = self.t, self.figures
        rows: list[tuple[str, int | float | None, str]] = [
            (t(REQUESTS), f.requests, "#,##0"),
            (t(COMPLETED), f.outcomes[S.COMPLETED], "#,##0"),
            (t(REJECTED), f.outcomes[S.REJECTED], "#,##0"),
        ]
        for code, count in sorted(f.rejected_by_reason.items()):
            rows.append((t(REJECTED_FOR, reason=self.reason_label(code)), count, "#,##0"))
        rows += [
            (t(CANCELLED), f.outcomes[S.CANCELLED], "#,##0"),
            (t(CANCELLED_BY_RIDER), f.cancelled_by_rider, "#,##0"),
            (t(CANCELLED_BY_DISPATCHER), f.cancelled_by_dispatcher, "#,##0"),
            (t(CANCELLED_LATE), f.cancelled_late, "#,##0"),
            (t(NO_SHOWS), f.outcomes[S.NO_SHOW], "#,##0"),
            (t(EXPIRED), f.outcomes[S.EXPIRED], "#,##0"),
            (t(STILL_OPEN), f.outcomes[rf.OPEN], "#,##0"),
            (t(UNIQUE_RIDERS), f.unique_riders, "#,##0"),
            (t(WHEELCHAIR_RIDES), f.wheelchair, "#,##0"),
        ]
        for code, count in sorted(f.riders_by_category.items()):
            category = self.category_name(code, self.district_id)
            rows.append((t(RIDERS_IN, category=category), count, "#,##0"))
        for code in PURPOSE_LABELS:
            if f.by_purpose[code]:
                purpose = t(PURPOSE_LABELS[code])
                rows.append((t(RIDES_FOR, purpose=purpose), f.by_purpose[code], "#,##0"))
        rows += [
            (t(BY_REPRESENTATIVES), f.by_representatives, "#,##0"),
            (t(FROM_STANDING_ORDERS), f.from_standing_orders, "#,##0"),
            (t(MEDIAN_WAIT), _rounded(f.median_wait_minutes), "0.0"),
            (t(P90_WAIT), _rounded(f.p90_wait_minutes), "0.0"),
            (t(IN_TIME), f.share_decided_in_time, "0.0%"),
        ]
        return rows

    def write_summary(self, now: datetime) -> None:
        t, sheet = self.t, self.summary
        sheet.column_dimensions["A"].width = 70
        sheet.column_dimensions["B"].width = 14
        sheet.append([self._bold(sheet, t(TITLE, month=month_name(self.first, self.lang)))])
        sheet.append([self.scope()])
        sheet.append([t(PREPARED, when=now.astimezone(self.tz).strftime("%d.%m.%Y %H:%M"))])
        sheet.append([t(COUNTING_RULE)])
        sheet.append([])
        sheet.append([self._bold(sheet, t(FIGURE)), self._bold(sheet, t(VALUE))])
        for label, value, fmt in self.summary_rows():
            sheet.append([label, self._cell(sheet, value if value is not None else "—", fmt)])

    def write_cars(self) -> None:
        t, sheet = self.t, self.cars
        header = [t(COL_CAR), t(COL_MAKE), t(COL_CAR_RIDES), t(COL_CAR_DAYS)]
        sheet.append([self._bold(sheet, h) for h in header])
        for car in sorted(self.figures.cars.values(), key=lambda c: c.plate):
            sheet.append([car.plate, car.make, car.rides, len(car.days)])

    def finish(self, workbook_out: IO[bytes], now: datetime | None = None) -> None:
        """Write the summary and the cars sheet, then the workbook itself."""
        self.write_summary(now or utcnow())
        self.write_cars()
        self.workbook.save(workbook_out)

    # -- charts ---------------------------------------------------------------------------------

    def per_day_chart(self) -> bytes:
        t, f = self.t, self.figures
        days = f.days(self.first)
        kinds = [*rf.OUTCOMES, rf.OPEN]
        series = [
            (self.outcome_label(k), [f.per_day[d][k] if d in f.per_day else 0 for d in days])
            for k in kinds
        ]
        series = [(label, counts) for label, counts in series if any(counts)] or series[:1]
        return charts.stacked_bars(
            title=t(CHART_DAYS_TITLE, month=month_name(self.first, self.lang)),
            xlabel=t(CHART_DAYS_X),
            ylabel=t(CHART_DAYS_Y),
            ticks=[d.strftime("%d.%m") for d in days],
            series=series,
        )

    def wait_chart(self) -> bytes:
        t = self.t
        labels, counts = wait_histogram(t, self.figures.waits)
        return charts.bars(
            title=t(CHART_WAIT_TITLE, month=month_name(self.first, self.lang)),
            xlabel=t(CHART_WAIT_X),
            ylabel=t(CHART_WAIT_Y),
            ticks=labels,
            counts=counts,
            note=None if sum(counts) else t(CHART_WAIT_EMPTY),
        )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def wait_histogram(t: Translator, waits: dict[int, int]) -> tuple[list[str], list[int]]:
    """Decisions counted in bars of minutes: 0–5, 5–10, ..., over 120 (a bar holds its lower
    edge, not its upper one)."""
    labels = [t(BIN_RANGE, low=low, high=high) for low, high in itertools.pairwise(WAIT_BINS)]
    labels.append(t(BIN_OVER, low=WAIT_BINS[-1]))
    counts = [0] * len(labels)
    for seconds, count in waits.items():
        index = sum(1 for edge in WAIT_BINS[1:] if seconds >= edge * 60)
        counts[index] += count
    return labels, counts


# -- entry points -------------------------------------------------------------------------------


async def build_report(
    session: AsyncSession,
    *,
    first: date,
    tz: tzinfo,
    lang: str,
    district_id: str | None = None,
    csv_out: IO[str] | None = None,
) -> MonthlyReport:
    """Stream the month's rides into a new report (the CSV, if given, is written on the way)."""
    districts = await rf.districts_by_id(session)
    report = MonthlyReport(
        catalogs().translator(lang), first, tz, districts, district_id, csv_out=csv_out
    )
    async for ride in rf.stream_rides(session, first, tz, district_id):
        report.add(ride)
    return report


async def write_report(
    session: AsyncSession,
    *,
    first: date,
    tz: tzinfo,
    lang: str,
    out_dir: Path,
    district_id: str | None = None,
) -> list[Path]:
    """The four files in `out_dir` (which exists): workbook, CSV (UTF-8 with BOM, ";"), and
    two charts. The CSV is written while the rides stream; the rest at the end."""
    names = files_for(first, district_id)
    csv_path = out_dir / names.csv
    # utf-8-sig writes the BOM by which spreadsheets recognise UTF-8 (Cyrillic stays readable).
    with csv_path.open("w", encoding="utf-8-sig", newline="") as csv_out:
        report = await build_report(
            session, first=first, tz=tz, lang=lang, district_id=district_id, csv_out=csv_out
        )
    paths = [out_dir / names.workbook, csv_path]
    with paths[0].open("wb") as workbook_out:
        report.finish(workbook_out)
    for name, content in (
        (names.per_day_chart, report.per_day_chart()),
        (names.wait_chart, report.wait_chart()),
    ):
        path = out_dir / name
        path.write_bytes(content)
        paths.append(path)
    return paths


@document_renderer("monthly_report")
async def render_monthly_report(
    session: AsyncSession, args: dict[str, Any], lang: str
) -> list[Document]:
    """The workbook and both charts, for a chat.

    args: {"month": "2026-11", "district_id": "taldykorgan" or None, "tz": "Asia/Almaty"}.
    """
    first = rf.parse_month(str(args["month"]))
    if first is None:
        raise ValueError(f"not a month: {args['month']!r}")
    tz = ZoneInfo(str(args.get("tz") or DEFAULT_TIMEZONE))
    district_id = args.get("district_id") or None
    report = await build_report(session, first=first, tz=tz, lang=lang, district_id=district_id)
    buffer = io.BytesIO()
    # Saving the workbook and drawing the charts take seconds for a big month: off the loop,
    # so the sender's other chats and the handlers of the same process are not held up.
    await asyncio.to_thread(report.finish, buffer)
    per_day = await asyncio.to_thread(report.per_day_chart)
    waits = await asyncio.to_thread(report.wait_chart)
    names = files_for(first, district_id)
    caption = report.t(CAPTION, month=month_name(first, lang), scope=report.scope())
    return [
        Document(names.workbook, buffer.getvalue(), caption),
        Document(names.per_day_chart, per_day),
        Document(names.wait_chart, waits),
    ]


def header_texts(lang: str) -> Sequence[str]:
    """The rides sheet's and CSV's column names in a language (tests compare them)."""
    t = catalogs().translator(lang)
    return [t(h) for h in MonthlyReport.ride_header()]
