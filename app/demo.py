"""Demo data: an organization filled with realistic contacts, companies, notes and
opportunities, and a known share of duplicates in every form the match rules fold.

Base records never share a match key with one another (a generated value whose key is
taken is drawn again), so every group that detection finds is one this module planted.
Each planted group is an original and one to three later duplicates; a duplicate
shares with its original the key of one *form*: the same email in other case and
spacing, the email moved to ``additional_emails``, the phone written another way, with
``00`` for ``+``, with its extension written another way, a LinkedIn URL variant or a
bare vanity, or the same first and last name.

Rows go in with COPY in one transaction, their match keys written in the same
transaction, so the data is ready for detection the moment the command returns.
"""

from __future__ import annotations

import argparse
import random
import string
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from app import commands
from app.errors import ValidationFailed
from app.logs import event
from app.metadata import ObjectMeta, load_model
from app.repository import core
from app.services import accounts
from app.services.keys import Key, mark_fresh, record_keys, write_keys
from app.settings import Settings

Row = dict[str, Any]

CONTACT_FORMS = (
    "email_case",
    "additional_email",
    "phone_format",
    "phone_00_prefix",
    "phone_extension",
    "linkedin_variant",
    "linkedin_vanity",
    "same_name",
)
COMPANY_FORMS = ("name_case", "email_case", "phone_format", "linkedin_vanity")

MAX_CONTACTS = 1_000_000
_ROLES = (
    "Decision maker",
    "Champion",
    "Economic buyer",
    "Technical evaluator",
    "Influencer",
    "User",
)
_STAGES = ("prospecting", "qualification", "proposal", "negotiation", "won", "lost")
_INDUSTRIES = (
    "Software",
    "Manufacturing",
    "Retail",
    "Health care",
    "Logistics",
    "Finance",
    "Education",
    "Energy",
    "Media",
    "Hospitality",
)
_PRODUCTS = ("renewal", "expansion", "pilot", "platform", "support plan", "licences")
_FREE_MAIL = ("gmail.com", "outlook.com", "yahoo.com", "proton.me", "icloud.com")
# Area codes in service across the United States, so numbers look like ones people
# really type (and libphonenumber calls them possible).
_US_AREAS = (
    "201 206 212 213 303 305 312 401 404 415 469 502 503 512 602 615 617 646 702 "
    "704 713 718 720 773 801 805 813 818 832 858 916 917 919 949 971"
)
_COMPANY_MAILBOXES = ("info", "hello", "contact", "sales")
_TLDS = ("com", "io", "co", "net")
# Abroad: London, Paris and Berlin numbers, written with + or 00.
_ABROAD = (("44", "20", 8), ("33", "1", 8), ("49", "30", 8))
_CREATED_SPAN = timedelta(days=730)


@dataclass
class DemoSummary:
    """What `fill` wrote."""

    organization: str
    schema: str
    companies: int = 0
    contacts: int = 0
    notes: int = 0
    opportunities: int = 0
    opportunity_links: int = 0
    planted_groups: int = 0
    planted_duplicates: int = 0
    forms: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    # Each planted group: the original's id first, then its duplicates'.
    groups: list[tuple[str, list[uuid.UUID]]] = field(default_factory=list, repr=False)

    def as_json(self) -> dict[str, Any]:
        return {
            "organization": self.organization,
            "schema": self.schema,
            "companies": self.companies,
            "contacts": self.contacts,
            "notes": self.notes,
            "opportunities": self.opportunities,
            "opportunity_links": self.opportunity_links,
            "planted_groups": self.planted_groups,
            "planted_duplicates": self.planted_duplicates,
            "forms": self.forms,
            "seconds": round(self.seconds, 2),
        }

    def text(self) -> str:
        forms = ", ".join(
            f"{name} {count}" for name, count in sorted(self.forms.items())
        )
        return "\n".join(
            [
                f"filled organization {self.organization} (schema {self.schema}) "
                f"in {self.seconds:.1f} s:",
                f"  {self.contacts} contacts, {self.companies} companies, "
                f"{self.notes} notes, {self.opportunities} opportunities, "
                f"{self.opportunity_links} opportunity-contact links",
                f"  {self.planted_groups} planted duplicate groups holding "
                f"{self.planted_duplicates} duplicates ({forms})",
            ]
        )


class _Phones:
    """Phone numbers, each drawn once, and the ways people write them."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()
        self.areas = _US_AREAS.split()

    def _digits(self, count: int) -> str:
        return "".join(self.rng.choice(string.digits) for _ in range(count))

    def us(self) -> tuple[str, str, str]:
        """(area, exchange, line) of a fresh US number."""
        while True:
            area = self.rng.choice(self.areas)
            exchange = str(self.rng.randint(2, 9)) + self._digits(2)
            line = self._digits(4)
            if exchange[1:] == "11" or exchange == "555":
                continue
            if area + exchange + line not in self.used:
                self.used.add(area + exchange + line)
                return area, exchange, line

    def abroad(self) -> tuple[str, str, str]:
        """(country code, area, subscriber) of a fresh number outside the US."""
        while True:
            country, area, length = self.rng.choice(_ABROAD)
            subscriber = str(self.rng.randint(2, 9)) + self._digits(length - 1)
            if country + area + subscriber not in self.used:
                self.used.add(country + area + subscriber)
                return country, area, subscriber

    def write_us(self, number: tuple[str, str, str], style: int | None = None) -> str:
        area, exchange, line = number
        styles = (
            f"({area}) {exchange}-{line}",
            f"{area}-{exchange}-{line}",
            f"+1 {area} {exchange} {line}",
            f"{area}.{exchange}.{line}",
            f"+1-{area}-{exchange}-{line}",
            f"1 ({area}) {exchange} {line}",
            f"{area}{exchange}{line}",
        )
        return styles[self.rng.randrange(len(styles)) if style is None else style]

    def write_abroad(self, number: tuple[str, str, str], zeros: bool) -> str:
        country, area, subscriber = number
        grouped = " ".join(
            subscriber[i : i + 2] for i in range(0, len(subscriber), 2)
        ).strip()
        prefix = "00" if zeros else "+"
        return f"{prefix}{country} {area} {grouped}"


def _vary_case(rng: random.Random, text: str) -> str:
    """The same text as someone else typed it: other case, stray spaces."""
    choice = rng.randrange(4)
    if choice == 0:
        varied = text.upper()
    elif choice == 1:
        varied = text.title()
    elif choice == 2:
        varied = "".join(c.upper() if rng.random() < 0.3 else c for c in text)
    else:
        varied = text.lower()
    if varied == text:
        varied = text.swapcase()
    return rng.choice(("  ", " ", "\t", "")) + varied + rng.choice((" ", "  ", ""))


def _vary_name(rng: random.Random, name: str) -> str:
    parts = name.split(" ")
    spaced = "  ".join(parts) if len(parts) > 1 and rng.random() < 0.5 else name
    return _vary_case(rng, spaced).strip() if rng.random() < 0.5 else spaced.upper()


def _slug(text: str) -> str:
    kept = "".join(c.lower() if c.isalnum() else "-" for c in text)
    return "-".join(part for part in kept.split("-") if part)


class _Generator:
    """Builds every row in memory; nothing here touches the database."""

    def __init__(
        self,
        seed: int | None,
        region: str,
        contacts_meta: ObjectMeta,
        companies_meta: ObjectMeta,
        now: datetime,
    ) -> None:
        # Imported here: Faker takes a while to load, and every CLI start loads this.
        from faker import Faker

        self.rng = random.Random(seed)
        self.fake = Faker("en_US")
        self.fake.seed_instance(seed if seed is not None else self.rng.getrandbits(32))
        self.region = region
        self.meta = {"contacts": contacts_meta, "companies": companies_meta}
        self.now = now
        self.phones = _Phones(self.rng)
        # (object, field, key) of every value written so far.
        self.used_keys: set[tuple[str, str, str]] = set()
        self.used_slugs: set[str] = set()

    # Keys --------------------------------------------------------------------------

    def keys(self, object_name: str, row: Row) -> set[tuple[str, str, str]]:
        found: set[Key] = record_keys(self.meta[object_name], row, self.region)
        return {(object_name, field, key) for field, key in found}

    def _claim(self, object_name: str, row: Row) -> bool:
        """Reserves the keys of a base row; False when one is taken already."""
        keys = self.keys(object_name, row)
        if keys & self.used_keys:
            return False
        self.used_keys |= keys
        return True

    def duplicate(
        self,
        object_name: str,
        original: Row,
        form: str,
        make: Callable[[Row, str], Row],
        group_keys: set[tuple[str, str, str]],
    ) -> Row:
        """A duplicate that shares keys with its own group and with no other record."""
        for _ in range(20):
            row = make(original, form)
            # A form may give the original a value it lacked (a second phone).
            group_keys |= self.keys(object_name, original)
            self.used_keys |= group_keys
            own = self.keys(object_name, row) - group_keys
            if not own & self.used_keys:
                self.used_keys |= own
                group_keys |= own
                return row
        raise RuntimeError(f"could not draw a {form} duplicate with keys of its own")

    def _unique_slug(self, base: str) -> str:
        slug = base or "x"
        while slug in self.used_slugs:
            slug = f"{base}-{self.rng.randrange(16**4):04x}"
        self.used_slugs.add(slug)
        return slug

    def _created(self, after: datetime | None = None) -> datetime:
        if after is None:
            start = self.now - _CREATED_SPAN
            return start + timedelta(
                seconds=self.rng.uniform(
                    0, (_CREATED_SPAN - timedelta(days=30)).total_seconds()
                )
            )
        room = max(60.0, (self.now - after).total_seconds())
        return after + timedelta(seconds=self.rng.uniform(60, room))

    # Companies ---------------------------------------------------------------------

    def company(self, parents: Sequence[Row]) -> Row:
        while True:
            name = self.fake.company()
            slug = self._unique_slug(_slug(name))
            domain = f"{slug.replace('-', '')[:30]}.{self.rng.choice(_TLDS)}"
            number = self.phones.us()
            row: Row = {
                "id": uuid.uuid4(),
                "name": name,
                "domain": domain,
                "email": f"{self.rng.choice(_COMPANY_MAILBOXES)}@{domain}",
                "phone": self.phones.write_us(number),
                "linkedin_url": f"https://www.linkedin.com/company/{slug}/"
                if self.rng.random() < 0.7
                else None,
                "industry": self.rng.choice(_INDUSTRIES),
                "employees": Decimal(int(self.rng.lognormvariate(4, 1.5)) + 1),
                "parent_company_id": (
                    self.rng.choice(parents)["id"]
                    if parents and self.rng.random() < 0.05
                    else None
                ),
                "created_at": self._created(),
            }
            row["updated_at"] = row["created_at"]
            row["_number"] = number
            if self._claim("companies", row):
                return row

    def company_duplicate(self, original: Row, form: str) -> Row:
        row: Row = {
            "id": uuid.uuid4(),
            "name": original["name"],
            "domain": None,
            "email": None,
            "phone": None,
            "linkedin_url": None,
            "industry": original["industry"] if self.rng.random() < 0.5 else None,
            "employees": None,
            "parent_company_id": None,
            "created_at": self._created(original["created_at"]),
        }
        row["updated_at"] = row["created_at"]
        if form == "name_case":
            row["name"] = _vary_name(self.rng, original["name"])
        elif form == "email_case":
            row["name"] = self._other_company_name(original["name"])
            row["email"] = _vary_case(self.rng, original["email"])
        elif form == "phone_format":
            row["name"] = self._other_company_name(original["name"])
            row["phone"] = self.phones.write_us(
                original["_number"], self._other_style()
            )
        else:  # linkedin_vanity
            if original["linkedin_url"] is None:
                original["linkedin_url"] = (
                    f"https://www.linkedin.com/company/{_slug(original['name'])}-"
                    f"{self.rng.randrange(16**6):06x}/"
                )
            slug = original["linkedin_url"].rstrip("/").rsplit("/", 1)[1]
            row["name"] = self._other_company_name(original["name"])
            row["linkedin_url"] = _vary_case(self.rng, slug).strip()
        return row

    def _other_company_name(self, name: str) -> str:
        """How an import writes a company differently enough not to match by name."""
        suffix = self.rng.choice((" Group", " Holdings", " (EMEA)", " - HQ", " Intl"))
        return name + suffix

    def _other_style(self) -> int:
        return self.rng.randrange(7)

    # Contacts ----------------------------------------------------------------------

    def contact(self, companies: Sequence[Row], earlier: Sequence[Row]) -> Row:
        while True:
            first = self.fake.first_name()
            last = self.fake.last_name()
            company = self.rng.choice(companies) if self.rng.random() < 0.85 else None
            handle = f"{_slug(first)}.{_slug(last)}"
            if self.rng.random() < 0.3:
                handle += str(self.rng.randint(1, 99))
            domain = (
                company["domain"]
                if company is not None and self.rng.random() < 0.7
                else self.rng.choice(_FREE_MAIL)
            )
            number = self.phones.us()
            vanity = f"{_slug(first)}-{_slug(last)}-{self.rng.randrange(16**6):06x}"
            row: Row = {
                "id": uuid.uuid4(),
                "first_name": first,
                "last_name": last,
                "email": f"{handle}@{domain}" if self.rng.random() < 0.92 else None,
                "additional_emails": (
                    [f"{_slug(first)}{self.rng.randint(100, 9999)}@{self._free_mail()}"]
                    if self.rng.random() < 0.15
                    else None
                ),
                "phone": self.phones.write_us(number)
                if self.rng.random() < 0.8
                else None,
                "additional_phones": (
                    [self.phones.write_us(self.phones.us())]
                    if self.rng.random() < 0.1
                    else None
                ),
                "linkedin_url": (
                    f"https://www.linkedin.com/in/{vanity}/"
                    if self.rng.random() < 0.6
                    else None
                ),
                "job_title": self.fake.job(),
                "city": self.fake.city(),
                "company_id": company["id"] if company is not None else None,
                "referred_by_id": (
                    self.rng.choice(earlier)["id"]
                    if earlier and self.rng.random() < 0.08
                    else None
                ),
                "created_at": self._created(),
            }
            row["updated_at"] = row["created_at"]
            row["_number"] = number
            row["_vanity"] = vanity
            if self._claim("contacts", row):
                return row

    def contact_duplicate(self, original: Row, form: str) -> Row:
        """A later copy of `original` that matches it through `form` only."""
        row: Row = {
            "id": uuid.uuid4(),
            "first_name": original["first_name"],
            "last_name": original["last_name"],
            "email": None,
            "additional_emails": None,
            "phone": None,
            "additional_phones": None,
            "linkedin_url": None,
            "job_title": original["job_title"] if self.rng.random() < 0.5 else None,
            "city": original["city"] if self.rng.random() < 0.6 else None,
            "company_id": original["company_id"] if self.rng.random() < 0.7 else None,
            "referred_by_id": None,
            "created_at": self._created(original["created_at"]),
        }
        row["updated_at"] = row["created_at"]
        if form == "same_name":
            row["first_name"] = _vary_name(self.rng, original["first_name"])
            row["last_name"] = _vary_name(self.rng, original["last_name"])
            return row
        # Otherwise the name alone must not match: an initial or no first name, as
        # imports that carry a surname only do.
        row["first_name"] = (
            original["first_name"][0] + "." if self.rng.random() < 0.5 else None
        )
        if form == "email_case":
            original["email"] = original["email"] or self._fresh_email(original)
            row["email"] = _vary_case(self.rng, original["email"])
        elif form == "additional_email":
            original["email"] = original["email"] or self._fresh_email(original)
            row["email"] = self._fresh_email(row, original)
            row["additional_emails"] = [_vary_case(self.rng, original["email"]).strip()]
        elif form == "phone_format":
            original["phone"] = original["phone"] or self.phones.write_us(
                original["_number"]
            )
            row["phone"] = self.phones.write_us(
                original["_number"], self._other_style()
            )
        elif form == "phone_00_prefix":
            number = self.phones.abroad()
            original["additional_phones"] = [
                *(original["additional_phones"] or []),
                self.phones.write_abroad(number, zeros=False),
            ]
            row["phone"] = self.phones.write_abroad(number, zeros=True)
        elif form == "phone_extension":
            number = self.phones.us()
            extension = str(self.rng.randint(2, 999))
            original["additional_phones"] = [
                *(original["additional_phones"] or []),
                f"{self.phones.write_us(number, 2)} ext. {extension}",
            ]
            row["phone"] = f"{self.phones.write_us(number, 0)} x{extension}"
        elif form == "linkedin_variant":
            original["linkedin_url"] = (
                f"https://www.linkedin.com/in/{original['_vanity']}/"
            )
            row["linkedin_url"] = self.rng.choice(
                (
                    "linkedin.com/in/{v}?trk=public_profile",
                    "https://uk.linkedin.com/in/{v}/details/experience/",
                    "http://m.linkedin.com/mwlite/in/{v}",
                    "https://www.linkedin.com/in/{v}#about",
                )
            ).format(v=_vary_case(self.rng, original["_vanity"]).strip())
        else:  # linkedin_vanity
            original["linkedin_url"] = (
                f"https://www.linkedin.com/in/{original['_vanity']}/"
            )
            row["linkedin_url"] = original["_vanity"]
        return row

    def _free_mail(self) -> str:
        return self.rng.choice(_FREE_MAIL)

    def _fresh_email(self, row: Row, original: Row | None = None) -> str:
        source = original or row
        while True:
            email = (
                f"{_slug(source['last_name'])}.{self.rng.randrange(16**5):05x}"
                f"@{self.rng.choice(_FREE_MAIL)}"
            )
            # Claimed by the caller, with the rest of the row's keys.
            if ("contacts", "email", email) not in self.used_keys:
                return email

    # Related rows ------------------------------------------------------------------

    def note(self, contact: Row | None, company: Row | None, after: datetime) -> Row:
        created = self._created(after)
        return {
            "id": uuid.uuid4(),
            "body": self.rng.choice(
                (
                    self.fake.paragraph(nb_sentences=3),
                    f"Call with {(contact or {}).get('first_name') or 'the team'}: "
                    + self.fake.sentence(),
                    "Follow up about " + self.fake.bs() + ".",
                )
            ),
            "contact_id": contact["id"] if contact else None,
            "company_id": company["id"] if company else None,
            "created_at": created,
            "updated_at": created,
        }

    def opportunity(self, company: Row, contact: Row | None) -> Row:
        created = self._created(company["created_at"])
        close = (created + timedelta(days=self.rng.randint(14, 240))).date()
        return {
            "id": uuid.uuid4(),
            "name": f"{company['name']} {self.rng.choice(_PRODUCTS)}",
            "amount": Decimal(self.rng.randrange(20, 2000) * 500),
            "stage": self.rng.choice(_STAGES),
            "close_date": close,
            "company_id": company["id"],
            "primary_contact_id": contact["id"] if contact else None,
            "created_at": created,
            "updated_at": created,
        }

    def link(self, opportunity: Row, contact: Row) -> Row:
        created = max(opportunity["created_at"], contact["created_at"])
        return {
            "id": uuid.uuid4(),
            "opportunity_id": opportunity["id"],
            "contact_id": contact["id"],
            "role": self.rng.choice(_ROLES),
            "created_at": created,
            "updated_at": created,
        }

    def group_sizes(self, duplicates: int) -> list[int]:
        """Duplicates per planted group: mostly one, sometimes two or three."""
        sizes: list[int] = []
        while duplicates > 0:
            size = min(duplicates, self.rng.choices((1, 2, 3), weights=(70, 22, 8))[0])
            sizes.append(size)
            duplicates -= size
        return sizes


@dataclass
class _Plan:
    companies: list[Row]
    contacts: list[Row]
    notes: list[Row]
    opportunities: list[Row]
    links: list[Row]
    groups: list[tuple[str, list[Row]]]
    forms: Counter[str]


def _plan(gen: _Generator, contacts: int, share: float) -> _Plan:
    rng = gen.rng
    duplicate_contacts = round(contacts * share)
    base_contacts = contacts - duplicate_contacts
    company_total = max(2, contacts // 5)
    duplicate_companies = round(company_total * share)
    base_companies = company_total - duplicate_companies

    companies: list[Row] = []
    for _ in range(base_companies):
        companies.append(gen.company(companies))
    people: list[Row] = []
    for _ in range(base_contacts):
        people.append(gen.contact(companies, people))

    groups: list[tuple[str, list[Row]]] = []
    forms: Counter[str] = Counter()

    def plant(
        object_name: str,
        originals: list[Row],
        count: int,
        form_names: Sequence[str],
        make: Callable[[Row, str], Row],
    ) -> list[Row]:
        made: list[Row] = []
        sizes = gen.group_sizes(count)
        chosen = rng.sample(originals, min(len(sizes), len(originals)))
        drawn = 0
        for original, size in zip(chosen, sizes, strict=False):
            members = [original]
            group_keys = gen.keys(object_name, original)
            for _ in range(size):
                # Taking the forms in turn shows each of them even in a small demo.
                form = form_names[drawn % len(form_names)]
                drawn += 1
                members.append(
                    gen.duplicate(object_name, original, form, make, group_keys)
                )
                forms[f"{object_name}:{form}"] += 1
            groups.append((object_name, members))
            made.extend(members[1:])
        return made

    companies += plant(
        "companies",
        companies[:],
        duplicate_companies,
        COMPANY_FORMS,
        gen.company_duplicate,
    )
    people += plant(
        "contacts", people[:], duplicate_contacts, CONTACT_FORMS, gen.contact_duplicate
    )

    notes: list[Row] = []
    for person in people:
        for _ in range(rng.choices((0, 1, 2, 3), weights=(35, 35, 20, 10))[0]):
            notes.append(gen.note(person, None, person["created_at"]))
    for company in companies:
        if rng.random() < 0.3:
            notes.append(gen.note(None, company, company["created_at"]))

    by_company: dict[uuid.UUID, list[Row]] = {}
    for person in people:
        if person["company_id"] is not None:
            by_company.setdefault(person["company_id"], []).append(person)
    opportunities: list[Row] = []
    links: list[Row] = []
    for company in companies:
        staff = by_company.get(company["id"], [])
        for _ in range(rng.choices((0, 1, 2), weights=(45, 40, 15))[0]):
            primary = rng.choice(staff) if staff else None
            opportunity = gen.opportunity(company, primary)
            opportunities.append(opportunity)
            pool = staff or people
            for person in rng.sample(pool, min(len(pool), rng.randint(1, 3))):
                links.append(gen.link(opportunity, person))
    # Some duplicates sit on the same deal as their original, as when two reps each
    # added "their" contact: a merge must then keep one link, not two.
    linked = {(link["opportunity_id"], link["contact_id"]) for link in links}
    for object_name, members in groups:
        if object_name != "contacts" or not opportunities or rng.random() < 0.6:
            continue
        opportunity = rng.choice(opportunities)
        for person in members:
            if (opportunity["id"], person["id"]) not in linked:
                linked.add((opportunity["id"], person["id"]))
                links.append(gen.link(opportunity, person))
    return _Plan(companies, people, notes, opportunities, links, groups, forms)


async def _copy(
    conn: asyncpg.Connection, schema: str, table: str, rows: Sequence[Row], extra: Row
) -> None:
    if not rows:
        return
    columns = [name for name in rows[0] if not name.startswith("_")] + list(extra)
    records = [
        tuple(row[name] for name in columns if name not in extra)
        + tuple(extra.values())
        for row in rows
    ]
    await conn.copy_records_to_table(
        table, records=records, columns=columns, schema_name=schema
    )


async def fill(
    conn: asyncpg.Connection,
    org_name: str,
    contacts: int,
    *,
    seed: int | None = None,
    duplicate_share: float = 0.2,
    create: bool = True,
) -> DemoSummary:
    """Fills `org_name` (created when missing and `create`) with demo records."""
    if not 2 <= contacts <= MAX_CONTACTS:
        raise ValidationFailed(f"--contacts must be between 2 and {MAX_CONTACTS}")
    if not 0 <= duplicate_share <= 0.5:
        raise ValidationFailed("--duplicate-share must be between 0 and 0.5")
    started = time.monotonic()
    org = await core.get_organization_by_name(conn, org_name)
    if org is None:
        if not create:
            raise ValidationFailed(f"no organization named {org_name!r}")
        org = await accounts.create_organization(conn, org_name)
    schema = org["schema_name"]
    model = await load_model(conn, org["id"])
    contacts_meta = model.object("contacts")
    companies_meta = model.object("companies")
    now = datetime.now(UTC)
    gen = _Generator(seed, org["phone_region"], contacts_meta, companies_meta, now)
    plan = _plan(gen, contacts, duplicate_share)

    fresh: Row = {"keys_stale": False}
    async with conn.transaction():
        await mark_fresh(conn)
        await _copy(conn, schema, companies_meta.table, plan.companies, fresh)
        await _copy(conn, schema, contacts_meta.table, plan.contacts, fresh)
        await _copy(
            conn, schema, model.object("opportunities").table, plan.opportunities, {}
        )
        await _copy(conn, schema, model.object("notes").table, plan.notes, {})
        link = model.object("opportunities").link("contacts")
        assert link is not None
        await _copy(conn, schema, link.junction_table, plan.links, {})
        region = org["phone_region"]
        await write_keys(conn, schema, companies_meta, plan.companies, region)
        await write_keys(conn, schema, contacts_meta, plan.contacts, region)

    summary = DemoSummary(
        organization=org["name"],
        schema=schema,
        companies=len(plan.companies),
        contacts=len(plan.contacts),
        notes=len(plan.notes),
        opportunities=len(plan.opportunities),
        opportunity_links=len(plan.links),
        planted_groups=len(plan.groups),
        planted_duplicates=sum(len(members) - 1 for _, members in plan.groups),
        forms=dict(sorted(plan.forms.items())),
        seconds=time.monotonic() - started,
        groups=[
            (object_name, [member["id"] for member in members])
            for object_name, members in plan.groups
        ],
    )
    event(
        "demo.filled",
        org_id=str(org["id"]),
        contacts=summary.contacts,
        companies=summary.companies,
        planted_groups=summary.planted_groups,
    )
    return summary


async def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """`dupes demo`: fills an organization and prints what it wrote."""
    import json

    from app.db import open_connection

    conn = await open_connection(settings)
    try:
        summary = await fill(
            conn,
            args.org,
            args.contacts,
            seed=args.seed,
            duplicate_share=args.duplicate_share,
        )
    finally:
        await conn.close()
    if args.json:
        print(json.dumps(summary.as_json(), indent=2))
    else:
        print(summary.text())
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    demo = sub.add_parser(
        "demo",
        parents=[common],
        help="fill an organization with realistic records and planted duplicates",
    )
    demo.add_argument(
        "--org",
        default=accounts.DEFAULT_ORG,
        help="organization to fill, created if missing (default: default)",
    )
    demo.add_argument(
        "--contacts", type=int, default=1000, help="contacts to create (default 1000)"
    )
    demo.add_argument("--seed", type=int, help="make the data reproducible")
    demo.add_argument(
        "--duplicate-share",
        type=float,
        default=0.2,
        help="share of records that are planted duplicates (default 0.2)",
    )
    demo.set_defaults(func=cmd_demo)


commands.REGISTRY.append(register)
