"""The scenario generator: a seeded professional-services firm and the script of its
deals. Same seed and start, same firm, record for record; all randomness comes from the
`random.Random` and Faker instances made here from the seed."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from faker import Faker

BillingModel = Literal["time_and_materials", "fixed_fee_milestone", "retainer"]
BILLING_MODELS: tuple[BillingModel, ...] = ("time_and_materials", "fixed_fee_milestone", "retainer")
CENT = Decimal("0.01")


def money(value: float | Decimal) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class LegalEntity:
    code: str
    name: str
    currency: str
    country: str
    locale: str


@dataclass(frozen=True)
class Practice:
    code: str
    name: str


@dataclass(frozen=True)
class Consultant:
    key: str
    name: str
    email: str
    entity: str
    practice: str
    role: str
    weekly_capacity_hours: int


@dataclass(frozen=True)
class Account:
    key: str
    name: str
    parent_key: str | None
    entity: str
    industry: str
    payment_terms_days: int
    lateness_days: float


@dataclass(frozen=True)
class Assignment:
    consultant_key: str
    role: str
    hours_per_week: float


@dataclass(frozen=True)
class Milestone:
    key: str
    name: str
    amount: Decimal
    due_week: int


@dataclass(frozen=True)
class Amendment:
    """Executed `after_weeks` after the project starts: a T&M cap raised by `cap_factor`,
    or a retainer extended by `extra_months`."""

    after_weeks: int
    cap_factor: Decimal | None
    extra_months: int | None


@dataclass(frozen=True)
class DealPlan:
    key: str
    name: str
    account_key: str
    entity: str
    currency: str
    practice: str
    owner: str
    created_on: dt.date
    close_on: dt.date
    won: bool
    billing_model: BillingModel
    amount: Decimal
    rate_card: tuple[tuple[str, Decimal], ...]
    weeks: int
    staffing: tuple[Assignment, ...]
    cap: Decimal | None
    po_number: str | None
    milestones: tuple[Milestone, ...]
    monthly_fee: Decimal | None
    term_months: int | None
    execute_after_days: int
    amendment: Amendment | None

    def rate(self, role: str) -> Decimal:
        return dict(self.rate_card)[role]

    @property
    def executed_on(self) -> dt.date:
        return self.close_on + dt.timedelta(days=self.execute_after_days)

    @property
    def project_start(self) -> dt.date:
        """The Monday after a week's mobilisation."""
        ready = self.executed_on + dt.timedelta(days=7)
        return ready - dt.timedelta(days=ready.weekday())


@dataclass(frozen=True)
class Firm:
    seed: int
    start: dt.date
    days: int
    entities: tuple[LegalEntity, ...]
    practices: tuple[Practice, ...]
    consultants: tuple[Consultant, ...]
    accounts: tuple[Account, ...]
    deals: tuple[DealPlan, ...]

    def entity(self, code: str) -> LegalEntity:
        return next(e for e in self.entities if e.code == code)

    def account(self, key: str) -> Account:
        return next(a for a in self.accounts if a.key == key)

    def consultant(self, key: str) -> Consultant:
        return next(c for c in self.consultants if c.key == key)

    def deal(self, key: str) -> DealPlan:
        return next(d for d in self.deals if d.key == key)

    def to_dict(self) -> dict[str, Any]:
        plain: dict[str, Any] = _plain(dataclasses.asdict(self))
        return plain


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


ENTITIES = (
    LegalEntity("US01", "Throughline Advisory Inc.", "USD", "US", "en_US"),
    LegalEntity("UK01", "Throughline Advisory Ltd", "GBP", "GB", "en_GB"),
    LegalEntity("DE01", "Throughline Advisory GmbH", "EUR", "DE", "de_DE"),
)
PRACTICES = (
    Practice("STRAT", "Strategy & Operations"),
    Practice("DATA", "Data & AI"),
    Practice("CLOUD", "Cloud Engineering"),
    Practice("SEC", "Cybersecurity"),
)
# role -> multiple of the entity's base hourly rate
ROLES = (
    ("Analyst", Decimal("1.0")),
    ("Consultant", Decimal("1.35")),
    ("Senior Consultant", Decimal("1.7")),
    ("Manager", Decimal("2.1")),
    ("Partner", Decimal("2.9")),
)
BASE_RATE = {"USD": Decimal("115"), "GBP": Decimal("92"), "EUR": Decimal("105")}
INDUSTRIES = (
    "Banking",
    "Insurance",
    "Retail",
    "Manufacturing",
    "Healthcare",
    "Energy",
    "Logistics",
    "Media",
    "Public Sector",
    "Telecommunications",
)


@dataclass(frozen=True)
class ScenarioSettings:
    """The knobs of the flow of work: how many people, customers and opportunities."""

    consultants_per_practice_and_entity: int = 3
    accounts: int = 36
    opportunities_per_week: float = 6.0
    win_rate: float = 0.45
    lead_days: int = 60


def generate_firm(
    seed: int, start: dt.date, days: int, settings: ScenarioSettings | None = None
) -> Firm:
    """The firm and its script from `start - lead_days` (the open pipeline) to
    `start + days`."""
    knobs = settings or ScenarioSettings()
    rng = random.Random(f"firm:{seed}")
    fakers = {e.code: Faker(e.locale) for e in ENTITIES}
    for n, fake in enumerate(fakers.values()):
        fake.seed_instance(seed * 10 + n)

    consultants = _consultants(rng, fakers, knobs)
    accounts = _accounts(rng, fakers, knobs)
    deals = _deals(rng, fakers, knobs, start, days, consultants, accounts)
    return Firm(seed, start, days, ENTITIES, PRACTICES, consultants, accounts, deals)


def _consultants(
    rng: random.Random, fakers: dict[str, Faker], knobs: ScenarioSettings
) -> tuple[Consultant, ...]:
    people: list[Consultant] = []
    roles = [r for r, _ in ROLES]
    weights = [3, 4, 3, 2, 1]
    for entity in ENTITIES:
        fake = fakers[entity.code]
        for practice in PRACTICES:
            for _ in range(knobs.consultants_per_practice_and_entity):
                name = fake.name()
                handle = "".join(ch for ch in name.lower() if ch.isalpha())[:12]
                people.append(
                    Consultant(
                        key=f"C{len(people) + 1:03d}",
                        name=name,
                        email=f"{handle}{len(people) + 1}@throughline-advisory.example",
                        entity=entity.code,
                        practice=practice.code,
                        role=rng.choices(roles, weights)[0],
                        weekly_capacity_hours=40,
                    )
                )
    return tuple(people)


def _accounts(
    rng: random.Random, fakers: dict[str, Faker], knobs: ScenarioSettings
) -> tuple[Account, ...]:
    accounts: list[Account] = []
    for n in range(knobs.accounts):
        entity = rng.choices(ENTITIES, [5, 3, 3])[0]
        parents = [a for a in accounts if a.parent_key is None and a.entity == entity.code]
        parent = rng.choice(parents) if parents and rng.random() < 0.25 else None
        name = fakers[entity.code].company()
        if parent is not None:
            name = f"{parent.name} - {fakers[entity.code].city()}"
        accounts.append(
            Account(
                key=f"A{n + 1:03d}",
                name=name,
                parent_key=parent.key if parent else None,
                entity=entity.code,
                industry=parent.industry if parent else rng.choice(INDUSTRIES),
                payment_terms_days=parent.payment_terms_days
                if parent
                else rng.choices([30, 45, 60], [35, 35, 30])[0],
                lateness_days=round(rng.uniform(4.0, 24.0), 1),
            )
        )
    return tuple(accounts)


def _deals(
    rng: random.Random,
    fakers: dict[str, Faker],
    knobs: ScenarioSettings,
    start: dt.date,
    days: int,
    consultants: tuple[Consultant, ...],
    accounts: tuple[Account, ...],
) -> tuple[DealPlan, ...]:
    load: dict[tuple[str, int], float] = {}  # (consultant, week index) -> planned hours
    deals: list[DealPlan] = []
    day = start - dt.timedelta(days=knobs.lead_days)
    end = start + dt.timedelta(days=days)
    per_day = knobs.opportunities_per_week / 5
    while day < end:
        if day.weekday() < 5:
            arrivals = sum(1 for _ in range(4) if rng.random() < per_day / 4)
            for _ in range(arrivals):
                deals.append(
                    _deal(rng, fakers, knobs, day, start, consultants, accounts, load, deals)
                )
        day += dt.timedelta(days=1)
    return tuple(deals)


def _deal(
    rng: random.Random,
    fakers: dict[str, Faker],
    knobs: ScenarioSettings,
    created: dt.date,
    start: dt.date,
    consultants: tuple[Consultant, ...],
    accounts: tuple[Account, ...],
    load: dict[tuple[str, int], float],
    deals: list[DealPlan],
) -> DealPlan:
    account = rng.choice(accounts)
    entity = next(e for e in ENTITIES if e.code == account.entity)
    practice = rng.choice(PRACTICES)
    model = rng.choices(BILLING_MODELS, [50, 30, 20])[0]
    close_on = created + dt.timedelta(days=rng.randint(20, 75))
    while close_on.weekday() >= 5:
        close_on += dt.timedelta(days=1)
    won = rng.random() < knobs.win_rate
    discount = Decimal(str(round(rng.uniform(0.0, 0.12), 2)))
    rate_card = tuple(
        (role, money(BASE_RATE[entity.currency] * factor * (1 - discount)))
        for role, factor in ROLES
    )
    weeks = rng.randint(6, 20) if model != "retainer" else 0
    term_months = rng.randint(6, 12) if model == "retainer" else None
    execute_after = rng.choice([1, 2, 3, 4, 6, 8])
    executed = close_on + dt.timedelta(days=execute_after)
    ready = executed + dt.timedelta(days=7)
    project_start = ready - dt.timedelta(days=ready.weekday())
    span_weeks = weeks if weeks else (term_months or 6) * 4 + 2
    staffing = _staff(
        rng,
        consultants,
        practice.code,
        entity.code,
        model,
        project_start,
        start,
        span_weeks,
        load if won else {},
    )
    rates = dict(rate_card)
    weekly_value = sum(
        (rates[a.role] * Decimal(str(a.hours_per_week)) for a in staffing), Decimal(0)
    )
    cap: Decimal | None = None
    milestones: tuple[Milestone, ...] = ()
    monthly_fee: Decimal | None = None
    if model == "time_and_materials":
        amount = money(weekly_value * weeks)
        if rng.random() < 0.6:
            cap = money(amount * Decimal("1.1"))
    elif model == "fixed_fee_milestone":
        amount = Decimal(round(weekly_value * weeks * Decimal("1.1") / 1000)) * 1000
        count = rng.randint(3, 4)
        shares = [Decimal(1) / count] * count
        due = [max(1, round(weeks * (i + 1) / count)) for i in range(count)]
        parts = [money(amount * s) for s in shares]
        parts[-1] = amount - sum(parts[:-1], Decimal(0))
        labels = ["Discovery", "Design", "Build", "Handover"]
        milestones = tuple(
            Milestone(f"D{len(deals) + 1:04d}-M{i + 1}", labels[i], parts[i], due[i])
            for i in range(count)
        )
    else:
        monthly_fee = Decimal(round(weekly_value * Decimal("4.33") / 100)) * 100
        amount = monthly_fee * (term_months or 1)
    amendment: Amendment | None = None
    if model == "time_and_materials" and cap is not None and rng.random() < 0.3:
        amendment = Amendment(max(2, weeks // 2), Decimal("1.2"), None)
    elif model == "retainer" and rng.random() < 0.3:
        amendment = Amendment(8, None, 3)
    fake = fakers[entity.code]
    topic = rng.choice(
        [
            "data platform",
            "cloud migration",
            "operating model",
            "security review",
            "cost programme",
            "AI pilot",
            "ERP roll-out",
            "zero-trust design",
        ]
    )
    owner_pool = [c for c in consultants if c.role in ("Manager", "Partner")] or list(consultants)
    return DealPlan(
        key=f"D{len(deals) + 1:04d}",
        name=f"{account.name}: {topic}",
        account_key=account.key,
        entity=entity.code,
        currency=entity.currency,
        practice=practice.code,
        owner=rng.choice(owner_pool).name,
        created_on=created,
        close_on=close_on,
        won=won,
        billing_model=model,
        amount=amount,
        rate_card=rate_card,
        weeks=weeks,
        staffing=staffing,
        cap=cap,
        po_number=f"PO-{fake.random_number(digits=7, fix_len=True)}"
        if rng.random() < 0.55
        else None,
        milestones=milestones,
        monthly_fee=monthly_fee,
        term_months=term_months,
        execute_after_days=execute_after,
        amendment=amendment,
    )


def _staff(
    rng: random.Random,
    consultants: tuple[Consultant, ...],
    practice: str,
    entity: str,
    model: BillingModel,
    project_start: dt.date,
    firm_start: dt.date,
    span_weeks: int,
    load: dict[tuple[str, int], float],
) -> tuple[Assignment, ...]:
    """Two to four people (one or two on a retainer) with room in their weeks."""
    first = (project_start - firm_start).days // 7
    weeks = range(first, first + span_weeks)
    pool = [c for c in consultants if c.practice == practice]
    pool.sort(
        key=lambda c: (c.entity != entity, sum(load.get((c.key, w), 0.0) for w in weeks), c.key)
    )
    wanted = rng.randint(1, 2) if model == "retainer" else rng.randint(2, 4)
    team: list[Assignment] = []
    for person in pool:
        if len(team) == wanted:
            break
        free = min(person.weekly_capacity_hours - load.get((person.key, w), 0.0) for w in weeks)
        desired = float(rng.choice([8, 12, 16, 20, 24, 32]))
        hours = min(desired, free)
        if hours < 8:
            continue
        team.append(Assignment(person.key, person.role, hours))
        for w in weeks:
            load[(person.key, w)] = load.get((person.key, w), 0.0) + hours
    if not team:
        team.append(Assignment(pool[0].key, pool[0].role, 8.0))
    return tuple(team)
