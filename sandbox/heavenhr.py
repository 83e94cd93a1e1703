#!/usr/bin/env python3
"""HeavenHR sandbox provider.

    python3 sandbox/heavenhr.py --port 9104 [--client-id ID --client-secret S]
                                [--token-ttl SECONDS] [--accept-basic]
                                [--seed N] [--today YYYY-MM-DD] [--verbose]

Behaves like the HeavenHR public API v2 described in
shared/reference/providers-peoplehr-heavenhr-clayhr.md part 2 (§2.1-§2.7).
An account whose base_url is http://127.0.0.1:PORT stands for
https://api.heavenhr.com/api/v2: every route answers both at
/api/v2/<route> and at /<route> (a trailing slash is ignored).

Public information on HeavenHR is thin. VERIFIED (exact, from the vendor's
own docs or real clients) and kept exact here:
  * token exchange: GET /oauth2/token?grant_type=client_credentials&scope=all
    with `Authorization: Basic base64(client_id:client_secret)` [H1];
  * GET /health/check -> 200 {"message": "OK"} [H1];
  * ids are opaque base64url strings wrapped in underscores,
    e.g. "_bE1Zi2WRANH76y0vDbdEdA_" [H1, H7];
  * create-employee field names, camelCase keys, UPPER_CASE enums,
    yyyy-MM-dd dates, employeeNumber as a number [H1];
  * page-number pagination whose end shows as 404 on a page past the
    last one (CORROBORATED [H2]);
  * every response carries X-B3-SpanId (CORROBORATED [H2]).
Everything else is a PLAUSIBLE mock design (§2.7) and is marked so below.

Routes (under /api/v2 or bare):

  GET|POST /oauth2/token          client credentials (no bearer needed)
  GET  /health/check              {"message":"OK"} (no auth)
  GET  /employees                 page envelope, limited fields; filters
                                  employeeNumber, departmentId, jobStatus,
                                  startDate (>=), updatedDate (>=)
  GET  /employees/{id}            the full employee object
  POST /employees                 create (VERIFIED path; validation PLAUSIBLE:
                                  firstName and lastName not blank, dates
                                  yyyy-MM-dd, enums, known locationId and
                                  departmentId, a free employeeNumber (409)
                                  and professionalEmail (409), a known
                                  supervisorId; 201 with the full object)
  GET  /companies[/{id}]          legal entities
  GET  /departments[/{id}]        with parentId (null = top level)
  GET  /locations[/{id}]          name + flat address
  GET  /absence-types[/{id}]
  GET  /absences[/{id}]           filters employeeId, startDate, endDate
                                  (overlap), status (comma list),
                                  absenceTypeId, updatedDate (>=)
  DELETE /absences/{id}           204 (CORROBORATED "remove"; shape PLAUSIBLE)
  PUT|PATCH /absences/{id}/status {"status":"APPROVED"|"REJECTED"} (PLAUSIBLE)

Every list: ?page=N (0-based, PLAUSIBLE) &pageSize=M (default 50, larger
than 200 is silently clamped to 200, PLAUSIBLE, Spring Data style) ->
{"currentPage","pageSize","totalItems","totalPages","data":[...]};
a page past the end (also page 0 of an empty result) -> 404
{"message":"No <things> found"}.

Auth (PLAUSIBLE bodies in Spring Security OAuth2 style, §2.2): data
endpoints want `Authorization: Bearer <token from /oauth2/token>`; with
--accept-basic the Basic key (base64(id:secret)) is accepted as well.
  no / unsupported Authorization -> 401 {"error":"unauthorized",
      "error_description":"Full authentication is required to access this resource"}
  unknown or expired bearer      -> 401 {"error":"invalid_token", ...}
  token endpoint, bad client     -> 401 {"error":"unauthorized","error_description":"Bad credentials"}
Tokens live --token-ttl seconds (wall clock, monotonic); each exchange
issues a new one; the old ones stay valid until they expire. Tokens survive
POST /_sandbox/reset (which restores the data set after writes).

X-B3-SpanId (16 random hex digits) is on every provider answer, 401s, 404s
and the 429/5xx fault answers included (those carry a JSON {"message"},
PLAUSIBLE) and `slow`; the html, html500, truncated and truncated_json
answers are built by common.py (think of an intermediary) and have none.

The data set is generated deterministically by generate_dataset() (same
--seed and --today: byte-identical bodies). Only the X-B3-SpanId header and
tokens are random.
"""

import base64
import binascii
import datetime
import hashlib
import os
import random
import re
import sys
import threading
import time
import unicodedata
import uuid
from urllib.parse import parse_qsl, unquote

# Import the shared server from this directory without leaving a
# __pycache__ behind in the source tree.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (needs the path above)

DEFAULT_CLIENT_ID = "sandbox-heavenhr-client-id"
DEFAULT_CLIENT_SECRET = "sandbox-heavenhr-client-secret"
DEFAULT_TOKEN_TTL = 3600
DEFAULT_SEED = 20260601
# "Today" is fixed so that the data never depends on the wall clock.
DEFAULT_TODAY = "2026-06-01"
EMPLOYEE_COUNT = 265
ABSENCE_COUNT = 560
ABSENCE_WINDOW = ("2025-01-01", "2026-12-31")

DEFAULT_PAGE_SIZE = 50       # PLAUSIBLE
MAX_PAGE_SIZE = 200          # PLAUSIBLE (larger values are clamped)

EMAIL_DOMAIN = "nordlicht.example"

# ---------------------------------------------------------------------------
# Reference data (all PLAUSIBLE: HeavenHR's shapes for these are not public)
# ---------------------------------------------------------------------------

# (key, name, legalName, country, vatId, street, streetNumber, zipCode, city)
COMPANIES = [
    ("de", "Nordlicht Software", "Nordlicht Software GmbH", "DE", "DE298765432",
     "Friedrichstraße", 68, "10117", "Berlin"),
    ("at", "Nordlicht Austria", "Nordlicht Services Austria GmbH", "AT", "ATU12345678",
     "Mariahilfer Straße", 123, "1060", "Wien"),
    ("ch", "Nordlicht Schweiz", "Nordlicht Schweiz AG", "CH", "CHE-123.456.789",
     "Bahnhofstrasse", 10, "8001", "Zürich"),
]

# (key, name, company key, street, streetNumber, zipCode, city, country, weight)
LOCATIONS = [
    ("berlin", "Berlin HQ", "de", "Friedrichstraße", 68, "10117", "Berlin", "DE", 40),
    ("hamburg", "Hamburg", "de", "Große Elbstraße", 145, "22767", "Hamburg", "DE", 15),
    ("munich", "München", "de", "Leopoldstraße", 31, "80802", "München", "DE", 15),
    ("vienna", "Wien", "at", "Mariahilfer Straße", 123, "1060", "Wien", "AT", 10),
    ("zurich", "Zürich", "ch", "Bahnhofstrasse", 10, "8001", "Zürich", "CH", 8),
    ("remote", "Remote", "de", None, None, None, None, "DE", 12),
]

# (key, name, parent key or None, weight for employees,
#  [(jobTitle, occupation), ...])
DEPARTMENTS = [
    ("management", "Management", None, 2,
     [("Managing Director", "Manager"), ("Executive Assistant", "Clerk")]),
    ("engineering", "Engineering", None, 3,
     [("VP Engineering", "Manager"), ("Engineering Manager", "Manager")]),
    ("backend", "Backend", "engineering", 22,
     [("Backend Developer", "Software Developer"),
      ("Senior Backend Developer", "Software Developer")]),
    ("frontend", "Frontend", "engineering", 14,
     [("Frontend Developer", "Software Developer"), ("UI Developer", "Software Developer")]),
    ("platform", "Platform & SRE", "engineering", 7,
     [("Site Reliability Engineer", "Software Developer"),
      ("Cloud Engineer", "Software Developer")]),
    ("product", "Product", None, 8,
     [("Product Manager", "Manager"), ("Product Designer", "Designer")]),
    ("sales", "Sales", None, 3, [("Head of Sales", "Manager")]),
    ("sales-dach", "Sales DACH", "sales", 12,
     [("Account Executive", "Sales Representative"),
      ("Sales Development Representative", "Sales Representative")]),
    ("sales-intl", "Sales International", "sales", 7,
     [("Account Executive", "Sales Representative"),
      ("Partner Manager", "Sales Representative")]),
    ("marketing", "Marketing", None, 7,
     [("Marketing Manager", "Manager"), ("Content Marketing Specialist", "Marketing Specialist"),
      ("Performance Marketing Specialist", "Marketing Specialist")]),
    ("people", "People & Culture", None, 5,
     [("HR Business Partner", "HR Specialist"), ("Recruiter", "HR Specialist"),
      ("Payroll Specialist", "Accountant")]),
    ("finance", "Finance", None, 5,
     [("Accountant", "Accountant"), ("Financial Controller", "Accountant")]),
    ("customer-success", "Customer Success", None, 12,
     [("Customer Success Manager", "Customer Service Representative"),
      ("Support Agent", "Customer Service Representative")]),
]
DEPARTMENT_BY_KEY = {d[0]: d for d in DEPARTMENTS}

# (key, name, unit, halfDaysSupported, paid, weight)
ABSENCE_TYPES = [
    ("vacation", "Vacation", "DAYS", True, True, 48),
    ("sickness", "Sickness", "DAYS", False, True, 22),
    ("child-sickness", "Child sickness", "DAYS", False, True, 5),
    ("overtime", "Overtime compensation", "HOURS", False, True, 12),
    ("parental", "Parental leave", "DAYS", False, False, 2),
    ("special", "Special leave", "DAYS", True, True, 6),
    ("unpaid", "Unpaid leave", "DAYS", False, False, 5),
]

ABSENCE_STATUSES = ("APPROVED", "PENDING", "REJECTED", "CANCELLED")
JOB_STATUSES = ("ACTIVE", "INACTIVE")
GENDERS = ("MALE", "FEMALE", "DIVERSE")                       # DIVERSE: PLAUSIBLE
CONTRACT_KINDS = ("PERMANENT", "TEMPORARY")                    # PERMANENT: VERIFIED
# PLAUSIBLE: (employmentType, weeklyHours choices, weight)
EMPLOYMENT_TYPES = [
    ("FULL_TIME", (40.0, 40.0, 40.0, 38.5), 74),
    ("PART_TIME", (20.0, 24.0, 30.0, 32.0), 14),
    ("WORKING_STUDENT", (20.0,), 6),
    ("MINI_JOB", (10.0,), 3),
    ("INTERN", (40.0,), 3),
]
NATIONALITIES = {"DE": 60, "AT": 8, "CH": 4, "FR": 4, "ES": 4, "IT": 4, "PL": 5, "TR": 4,
                 "NL": 2, "US": 2, "IN": 3}

FIRST_NAMES = [
    "Anna", "Lukas", "Lena", "Leon", "Hannah", "Finn", "Mia", "Jonas", "Emma", "Paul", "Sophie",
    "Felix", "Marie", "Maximilian", "Laura", "Elias", "Julia", "Noah", "Lea", "Ben", "Clara",
    "Tim", "Johanna", "David", "Sarah", "Jan", "Lisa", "Niklas", "Katrin", "Tobias", "Miriam",
    "Sebastian", "Nina", "Florian", "Carla", "Moritz", "Frieda", "Henrik", "Greta", "Oskar",
    "Amelie", "Emil", "Ida", "Anton", "Luisa", "Mehmet", "Elif", "Priya", "Arjun", "Marco",
    "Giulia", "Pierre", "Camille", "Pablo", "Lucía", "Piotr", "Zofia", "Sven", "Ingrid", "Hugo",
    "Renée", "Björn", "Jörg", "Käthe", "Agnieszka", "Noémie", "Małgorzata", "Timo", "Selin",
]
LAST_NAMES = [
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz",
    "Hoffmann", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz",
    "Zimmermann", "Braun", "Krüger", "Hofmann", "Hartmann", "Lange", "Schmitt", "Werner",
    "Krause", "Meier", "Lehmann", "Köhler", "Huber", "Kaiser", "Fuchs", "Peters", "Lang",
    "Scholz", "Möller", "Weiß", "Jung", "Hahn", "Vogel", "Friedrich", "Keller", "Günther",
    "Frank", "Berger", "Winkler", "Roth", "Beck", "Lorenz", "Baumann", "Öztürk", "Kaya",
    "Kowalski", "Nowak", "Rossi", "Bianchi", "Dubois", "Martin", "Fernández", "Jansen",
    "Sharma", "Patel", "Nguyen", "Andersson", "van der Berg", "O'Connor",
]
# Fixed names at fixed positions, so tests can rely on some unicode.
FIXED_NAMES = {0: ("Katharina", "Schäfer"), 1: ("Jürgen", "Groß"), 2: ("Matthias", "Brunner"),
               3: ("Zoë", "Müller"), 5: ("José", "García"), 8: ("Søren", "Ødegaard"),
               13: ("Łukasz", "Wójcik"), 21: ("Ayşe", "Yılmaz"), 34: ("Chloé", "Lefèvre")}
MANAGER_COUNT = 20           # indices 0..19 are always ACTIVE; everybody reports to one

ABSENCE_NOTES = [
    "Familienurlaub", "Hochzeit meiner Schwester", "Umzug nach Köln", "Arzttermin",
    "Skiurlaub in Österreich", "Kita geschlossen", "Summer holiday", "Visiting family in İzmir",
    "Weiterbildung", "Brückentag", "Zahnarzt", "Ferien à Paris",
]
CONTRACT_NOTES = ["30 days leave per year.", "28 days leave per year.",
                  "Probation period of 6 months.", "Company car eligible.",
                  "Remote work up to 3 days a week."]
STREETS = ["Hauptstraße", "Schulstraße", "Gartenstraße", "Bahnhofstraße", "Dorfstraße",
           "Bergstraße", "Lindenstraße", "Kirchstraße", "Waldstraße", "Ringstraße"]
CITIES = {"DE": [("10243", "Berlin"), ("20095", "Hamburg"), ("80331", "München"),
                 ("50667", "Köln"), ("14467", "Potsdam")],
          "AT": [("1010", "Wien"), ("1150", "Wien")], "CH": [("8004", "Zürich")]}
PHONE_PREFIX = {"DE": "+49 151 ", "AT": "+43 664 ", "CH": "+41 79 "}


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------

def heaven_id(seed, kind, n):
    """VERIFIED id style: 16 bytes as unpadded base64url (22 characters)
    wrapped in underscores. Derived from a hash, so deterministic."""
    digest = hashlib.sha256(("heavenhr/%d/%s/%s" % (seed, kind, n)).encode()).digest()[:16]
    return "_" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii") + "_"


def parse_date(text):
    """datetime.date for a strict yyyy-MM-dd string, else None."""
    if not isinstance(text, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return None
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        return None


def parse_instant(text):
    """yyyy-MM-dd (midnight UTC) or an ISO-8601 timestamp with a zone, as the
    canonical "yyyy-MM-ddTHH:MM:SSZ" string; None when unreadable."""
    day = parse_date(text)
    if day is not None:
        return day.isoformat() + "T00:00:00Z"
    if not isinstance(text, str) or "T" not in text:
        return None
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def ascii_slug(text):
    """Jürgen -> jurgen, Ødegaard -> odegaard, O'Connor -> oconnor."""
    text = text.replace("Ø", "O").replace("ø", "o").replace("ł", "l").replace("Ł", "L")
    text = text.replace("ß", "ss").replace("ı", "i")
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z]", "", plain.lower()) or "x"


def weighted(rng, pairs):
    """Deterministic weighted choice from [(value, weight), ...]."""
    total = sum(w for _, w in pairs)
    point = rng.randrange(total)
    for value, weight in pairs:
        if point < weight:
            return value
        point -= weight
    raise AssertionError("unreachable")


def random_date(rng, first, last):
    return first + datetime.timedelta(days=rng.randrange((last - first).days + 1))


def timestamp(day, rng):
    """ISO-8601 UTC instant, second precision, `Z` (PLAUSIBLE precision)."""
    return "%sT%02d:%02d:%02dZ" % (day.isoformat(), rng.randrange(6, 20), rng.randrange(60),
                                   rng.randrange(60))


def add_weekdays(start, count):
    """The date of the `count`-th weekday counting `start` (a weekday) as 1."""
    day, seen = start, 1
    while seen < count:
        day += datetime.timedelta(days=1)
        if day.weekday() < 5:
            seen += 1
    return day


def weekdays_between(first, last):
    days, day = 0, first
    while day <= last:
        days += day.weekday() < 5
        day += datetime.timedelta(days=1)
    return days


# ---------------------------------------------------------------------------
# Data set generation
# ---------------------------------------------------------------------------

class Dataset:
    """Everything the sandbox serves. Lists are in the order they are served."""

    def __init__(self, seed, today):
        self.seed = seed
        self.today = today
        self.companies = []
        self.departments = []
        self.locations = []
        self.absence_types = []
        self.employees = []           # full objects, by employeeNumber
        self.absences = []            # by startDate, employeeNumber
        self.index()

    def index(self):
        """(Re)build the id lookups; call after replacing a list."""
        self.company_by_id = {c["id"]: c for c in self.companies}
        self.department_by_id = {d["id"]: d for d in self.departments}
        self.location_by_id = {loc["id"]: loc for loc in self.locations}
        self.absence_type_by_id = {t["id"]: t for t in self.absence_types}
        self.employee_by_id = {e["id"]: e for e in self.employees}
        self.absence_by_id = {a["id"]: a for a in self.absences}


def generate_dataset(seed=DEFAULT_SEED, today=DEFAULT_TODAY, employee_count=EMPLOYEE_COUNT,
                     absence_count=ABSENCE_COUNT):
    """Build the deterministic HeavenHR data set (same arguments, same data)."""
    rng = random.Random(seed)
    today_date = parse_date(today)
    ds = Dataset(seed, today)
    keys = {}
    created = "2019-03-01T09:00:00Z"
    for n, (key, name, legal, country, vat, street, number, zip_code, city) in enumerate(COMPANIES):
        keys["company", key] = cid = heaven_id(seed, "company", n)
        ds.companies.append({       # PLAUSIBLE shape (Kombo "legal entities": id, name)
            "id": cid, "name": name, "legalName": legal, "vatId": vat,
            "street": street, "streetNumber": number, "zipCode": zip_code, "city": city,
            "country": country, "createdAt": created, "updatedAt": "2024-11-18T10:12:40Z"})
    for n, (key, name, company, street, number, zip_code, city, country, _) in enumerate(LOCATIONS):
        keys["location", key] = lid = heaven_id(seed, "location", n)
        ds.locations.append({       # PLAUSIBLE shape (Kombo "work locations": name, address)
            "id": lid, "name": name, "companyId": keys["company", company],
            "street": street, "streetNumber": number, "zipCode": zip_code, "city": city,
            "country": country, "createdAt": created, "updatedAt": "2025-02-03T08:30:00Z"})
    for n, (key, name, parent, _, _) in enumerate(DEPARTMENTS):
        keys["department", key] = heaven_id(seed, "department", n)
    for n, (key, name, parent, _, _) in enumerate(DEPARTMENTS):
        ds.departments.append({     # PLAUSIBLE shape (Truto "groups")
            "id": keys["department", key], "name": name,
            "parentId": keys["department", parent] if parent else None,
            "createdAt": created, "updatedAt": "2025-01-15T07:45:00Z"})
    for n, (key, name, unit, half, paid, _) in enumerate(ABSENCE_TYPES):
        keys["absence-type", key] = tid = heaven_id(seed, "absence-type", n)
        ds.absence_types.append({   # PLAUSIBLE shape (Kombo: name, half_days_supported)
            "id": tid, "name": name, "unit": unit, "halfDaysSupported": half, "paid": paid})
    ds.employees = _make_employees(rng, seed, keys, today_date, employee_count)
    ds.absences = _make_absences(rng, seed, keys, ds.employees, today_date, absence_count)
    ds.index()
    return ds


def _employee_kinds(rng, count):
    """index -> 'active' | 'inactive' | 'future'. Managers are always active."""
    pool = list(range(MANAGER_COUNT, count))
    inactive = set(rng.sample(pool, count // 10))
    future = set(rng.sample([i for i in pool if i not in inactive], 3))
    return ["inactive" if i in inactive else "future" if i in future else "active"
            for i in range(count)]


def _make_employees(rng, seed, keys, today, count):
    kinds = _employee_kinds(rng, count)
    employees, number, seen_mail = [], 100, set()
    for index in range(count):
        number += 1 if index == 0 else rng.choice((1, 1, 2, 3, 5))
        emp = _make_employee(rng, seed, keys, index, number, kinds[index], today)
        local = "%s.%s" % (ascii_slug(emp["firstName"]), ascii_slug(emp["lastName"]))
        candidate, n = local, 1
        while candidate in seen_mail:
            n += 1
            candidate = "%s%d" % (local, n)
        seen_mail.add(candidate)
        if emp["professionalEmail"] is not None:
            emp["professionalEmail"] = "%s@%s" % (candidate, EMAIL_DOMAIN)
        employees.append(emp)
    # Managers: 0 (the CEO) and 2 (head of the Swiss entity) report to
    # nobody; everybody else to one of the first MANAGER_COUNT employees.
    for emp in employees:
        index = emp.pop("_index")
        if index in (0, 2):
            continue
        boss = 0 if index < 3 else rng.randrange(0, min(index, MANAGER_COUNT))
        emp["supervisorId"] = employees[boss]["id"]
    # Dirty data: two INACTIVE employees without an endOfContract.
    inactive = [e for e in employees if e["jobStatus"] == "INACTIVE"]
    for emp in inactive[3:5]:
        emp["endOfContract"] = None
    return employees


def _make_employee(rng, seed, keys, index, number, kind, today):
    """One full employee object (create-employee fields VERIFIED, the rest
    PLAUSIBLE). Field order is the serving order."""
    first, last = FIXED_NAMES.get(index) or (rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES))
    if index == 0:
        dept, (title, occupation) = DEPARTMENT_BY_KEY["management"], ("Chief Executive Officer",
                                                                       "Manager")
    else:
        dept = weighted(rng, [(d, d[3]) for d in DEPARTMENTS])
        title, occupation = rng.choice(dept[4])
    location = LOCATIONS[0] if index == 0 else weighted(rng, [(loc, loc[8]) for loc in LOCATIONS])
    if index == 2:
        location = LOCATIONS[4]                       # runs the Swiss entity
    emp_type, hours_choices, _ = weighted(rng, [(t, t[2]) for t in EMPLOYMENT_TYPES])
    if index < MANAGER_COUNT:
        emp_type, hours_choices = "FULL_TIME", (40.0,)
    hours = rng.choice(hours_choices)
    temporary = emp_type in ("WORKING_STUDENT", "INTERN") or rng.random() < 0.08
    if kind == "future":
        start = today + datetime.timedelta(days=rng.randrange(10, 90))
    else:
        start = random_date(rng, datetime.date(2014, 1, 2), today - datetime.timedelta(days=120))
    if kind == "inactive":
        end = random_date(rng, start + datetime.timedelta(days=90), today - datetime.timedelta(days=1))
    elif temporary:
        end = today + datetime.timedelta(days=rng.randrange(30, 700))
    else:
        end = None
    birth = random_date(rng, datetime.date(1962, 1, 1),
                        datetime.date(1988 if index < MANAGER_COUNT else 2005, 12, 31))
    gender = rng.choice(GENDERS[:2] * 6 + GENDERS[2:] + (None,))
    nationality = weighted(rng, list(NATIONALITIES.items()))
    country = location[7]
    zip_code, city = rng.choice(CITIES[country])
    street, street_number = rng.choice(STREETS), rng.randrange(1, 240)
    note = rng.choice(CONTRACT_NOTES + [None, None, ""])
    created_day = (start if start <= today else today) - datetime.timedelta(days=rng.randrange(5, 40))
    created_day = max(created_day, datetime.date(2019, 3, 1))
    updated_day = random_date(rng, max(created_day, datetime.date(2024, 1, 1)), today)
    created, updated = timestamp(created_day, rng), timestamp(updated_day, rng)
    if updated < created:
        updated = created
    emp = {
        "id": heaven_id(seed, "employee", index),
        "employeeNumber": number,                     # VERIFIED: a number
        "firstName": first,
        "lastName": last,
        "gender": gender,
        "dateOfBirth": birth.isoformat(),
        "nationality": nationality,                   # VERIFIED: ISO 3166 alpha-2
        # None: no work e-mail (list "email": null); else set by _make_employees.
        "professionalEmail": None if index % 31 == 17 else "",
        "privateEmail": None if index % 4 == 3 else "%s.%s%d@mail.example" % (
            ascii_slug(first), ascii_slug(last), index),
        "mobilePhone": None if index % 5 == 4 else "%s%07d" % (PHONE_PREFIX[country],
                                                               (index * 7919) % 10000000),
        "streetPersonal": street,
        "streetNumberPersonal": street_number,        # VERIFIED: a number
        "zipCodePersonal": zip_code,
        "cityPersonal": city,
        "countryPersonal": country,
        "companyId": keys["company", location[2]],
        "departmentId": keys["department", dept[0]],
        "departmentName": dept[1],
        "locationId": keys["location", location[0]],
        "supervisorId": None,                         # PLAUSIBLE (manager UNVERIFIED)
        "jobTitle": title,
        "occupation": occupation,
        "permanentOrTemporary": "TEMPORARY" if temporary else "PERMANENT",
        "employmentType": emp_type,                   # PLAUSIBLE enum
        "weeklyHours": hours,
        "startDate": start.isoformat(),
        "endOfContract": end.isoformat() if end else None,
        "additionalContractInformation": note,
        "jobStatus": "INACTIVE" if kind == "inactive" else "ACTIVE",
        "createdAt": created,
        "updatedAt": updated,
        "_index": index,
    }
    # Unset dates (dirty data): null mostly, "" for a few migrated records.
    if index % 47 == 9:
        emp["dateOfBirth"] = None
    elif index % 89 == 44:
        emp["dateOfBirth"] = ""
    if kind == "active" and index % 59 == 30:
        emp["startDate"] = None
    if kind == "active" and index == 151:
        emp["startDate"] = ""
    return emp


def _employed_on(emp, first, last):
    start = parse_date(emp["startDate"])
    end = parse_date(emp["endOfContract"])
    return (start is None or start <= first) and (end is None or end >= last)


def _make_absences(rng, seed, keys, employees, today, count):
    window_start, window_end = (parse_date(d) for d in ABSENCE_WINDOW)
    drafts = []
    while len(drafts) < count:
        atype = weighted(rng, [(t, t[5]) for t in ABSENCE_TYPES])
        start = random_date(rng, window_start, window_end - datetime.timedelta(days=14))
        if start.weekday() >= 5:
            continue                                  # absences start on a weekday
        key, name, unit, half_ok, _, _ = atype
        if unit == "HOURS":
            end, amount = start, rng.randrange(2, 17) / 2.0
            half_start = half_end = False
        else:
            length = {"vacation": (1, 1, 2, 3, 5, 5, 10), "sickness": (1, 1, 2, 3, 5),
                      "child-sickness": (1, 2, 3), "parental": (20, 40, 60),
                      "special": (1, 1, 2), "unpaid": (1, 5, 10)}[key]
            end = add_weekdays(start, rng.choice(length))
            half_start = half_ok and rng.random() < 0.15
            half_end = half_ok and end > start and rng.random() < 0.1
            amount = weekdays_between(start, end) - 0.5 * half_start - 0.5 * half_end
        if end > window_end:
            continue                                  # keep every absence inside the window
        staff = [e for e in employees if _employed_on(e, start, end)]
        emp = rng.choice(staff)
        if key == "sickness":
            status = "APPROVED" if rng.random() < 0.93 else "CANCELLED"
        elif start > today:
            status = weighted(rng, [("PENDING", 35), ("APPROVED", 50), ("REJECTED", 5),
                                    ("CANCELLED", 10)])
        else:
            status = weighted(rng, [("APPROVED", 74), ("REJECTED", 9), ("CANCELLED", 12),
                                    ("PENDING", 5)])
        roll = rng.random()
        note = None if roll < 0.45 else "" if roll < 0.55 else rng.choice(ABSENCE_NOTES)
        lead = rng.randrange(0, 60) if key not in ("sickness", "child-sickness") else 0
        created_day = min(start - datetime.timedelta(days=lead), today - datetime.timedelta(days=1))
        created = timestamp(created_day, rng)
        updated_day = min(created_day + datetime.timedelta(days=rng.randrange(0, 8)), today)
        updated = timestamp(updated_day, rng) if status != "PENDING" else created
        if updated < created:
            updated = created
        drafts.append({
            "employeeId": emp["id"], "_number": emp["employeeNumber"],
            "absenceType": {"id": keys["absence-type", key], "name": name},
            "startDate": start.isoformat(), "endDate": end.isoformat(),
            "startHalfDay": half_start, "endHalfDay": half_end,    # PLAUSIBLE
            "amount": float(amount), "unit": unit, "status": status,
            "employeeNote": note, "createdAt": created, "updatedAt": updated,
        })
    drafts.sort(key=lambda a: (a["startDate"], a["_number"], a["absenceType"]["name"]))
    absences = []
    for n, draft in enumerate(drafts):
        del draft["_number"]
        absences.append(dict({"id": heaven_id(seed, "absence", n)}, **draft))
    return absences


def list_item(emp):
    """The limited employee record of GET /employees (fields CORROBORATED by
    [H2], names PLAUSIBLE per §2.7)."""
    return {"id": emp["id"], "firstName": emp["firstName"], "lastName": emp["lastName"],
            "employeeNumber": emp["employeeNumber"], "jobStatus": emp["jobStatus"],
            "updatedAt": emp["updatedAt"], "departmentName": emp["departmentName"],
            "departmentId": emp["departmentId"], "email": emp["professionalEmail"]}


# ---------------------------------------------------------------------------
# Errors and pagination
# ---------------------------------------------------------------------------

class ApiError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.response = common.json_response({"message": message}, status)   # PLAUSIBLE body


def int_arg(req, name, default):
    value = req.arg(name)
    if value is None or value == "":
        return default
    if not re.fullmatch(r"-?\d{1,9}", value.strip()):
        raise ApiError(400, "Parameter '%s' must be an integer" % name)
    return int(value)


def date_arg(req, name):
    value = req.arg(name)
    if value is None or value == "":
        return None
    day = parse_date(value)
    if day is None:
        raise ApiError(400, "Parameter '%s' must be a date (yyyy-MM-dd)" % name)
    return value


def instant_arg(req, name):
    value = req.arg(name)
    if value is None or value == "":
        return None
    moment = parse_instant(value)
    if moment is None:
        raise ApiError(400, "Parameter '%s' must be a date (yyyy-MM-dd) or an ISO-8601 "
                            "timestamp" % name)
    return moment


def page(req, items, noun):
    """The v2 page envelope (key names PLAUSIBLE, §2.7). Pages are 0-based
    (PLAUSIBLE); a page at or past totalPages is a 404 (VERIFIED behaviour)."""
    number = int_arg(req, "page", 0)
    size = int_arg(req, "pageSize", DEFAULT_PAGE_SIZE)
    if number < 0:
        raise ApiError(400, "Parameter 'page' must not be negative")
    if size < 1:
        raise ApiError(400, "Parameter 'pageSize' must be at least 1")
    size = min(size, MAX_PAGE_SIZE)
    total = len(items)
    total_pages = (total + size - 1) // size
    if number >= total_pages:
        raise ApiError(404, "No %s found" % noun)
    return common.json_response({
        "currentPage": number, "pageSize": size, "totalItems": total, "totalPages": total_pages,
        "data": items[number * size:(number + 1) * size]})


# ---------------------------------------------------------------------------
# The provider
# ---------------------------------------------------------------------------

# /api/v2/<route> or /<route>.
PREFIX = re.compile(r"^(?:/api/v2)?(?P<rest>/.*)$")
SPRING_MESSAGES = {429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
                   503: "Service Unavailable", 504: "Gateway Timeout"}


def span_id():
    return os.urandom(8).hex()


def oauth_error(status, error, description, challenge=None):
    """Spring Security OAuth2 error body (PLAUSIBLE, §2.2)."""
    headers = [("Cache-Control", "no-store"), ("Pragma", "no-cache")]
    if challenge:
        headers.append(("WWW-Authenticate", challenge))
    return common.json_response({"error": error, "error_description": description}, status,
                                headers)


class HeavenHR(common.Provider):
    """HeavenHR sandbox provider."""

    name = "heavenhr"

    @staticmethod
    def add_arguments(parser):
        parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID,
                            help="accepted OAuth2 client id (default %s)" % DEFAULT_CLIENT_ID)
        parser.add_argument("--client-secret", default=DEFAULT_CLIENT_SECRET,
                            help="accepted OAuth2 client secret (default %s)"
                                 % DEFAULT_CLIENT_SECRET)
        parser.add_argument("--token-ttl", type=int, default=DEFAULT_TOKEN_TTL, metavar="SECONDS",
                            help="access token lifetime (default %d)" % DEFAULT_TOKEN_TTL)
        parser.add_argument("--accept-basic", action="store_true",
                            help="data endpoints also accept the Basic key "
                                 "base64(client_id:client_secret)")
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="data set seed")
        parser.add_argument("--today", default=DEFAULT_TODAY,
                            help="the sandbox's fixed 'today' (YYYY-MM-DD)")

    def __init__(self, args):
        super().__init__(args)
        if parse_date(args.today) is None:
            raise SystemExit("--today must be YYYY-MM-DD")
        if args.token_ttl < 1:
            raise SystemExit("--token-ttl must be at least 1")
        self.client = (args.client_id, args.client_secret)
        self.ttl = args.token_ttl
        self.accept_basic = args.accept_basic
        self.lock = threading.Lock()
        self.tokens = {}              # access token -> monotonic expiry
        self.ds = generate_dataset(seed=args.seed, today=args.today)
        self.created = 0              # employees created through POST /employees
        self.router = self._build_router()

    def reset(self):
        """POST /_sandbox/reset: undo writes (issued tokens stay valid)."""
        fresh = generate_dataset(seed=self.args.seed, today=self.args.today)
        with self.lock:
            self.ds = fresh
            self.created = 0

    def _build_router(self):
        r = common.Router()
        r.add("GET", "/oauth2/token", self.token)
        r.add("POST", "/oauth2/token", self.token)
        r.add("GET", "/health/check", self.health)
        r.add("GET", "/employees", self.list_employees)
        r.add("POST", "/employees", self.create_employee)
        r.add("GET", "/employees/{id}", self.get_employee)
        r.add("GET", "/companies", self.lister("companies", "companies"))
        r.add("GET", "/companies/{id}", self.getter("company_by_id", "Company"))
        r.add("GET", "/departments", self.lister("departments", "departments"))
        r.add("GET", "/departments/{id}", self.getter("department_by_id", "Department"))
        r.add("GET", "/locations", self.lister("locations", "locations"))
        r.add("GET", "/locations/{id}", self.getter("location_by_id", "Location"))
        r.add("GET", "/absence-types", self.lister("absence_types", "absence types"))
        r.add("GET", "/absence-types/{id}", self.getter("absence_type_by_id", "Absence type"))
        r.add("GET", "/absences", self.list_absences)
        r.add("GET", "/absences/{id}", self.get_absence)
        r.add("DELETE", "/absences/{id}", self.delete_absence)
        r.add("PUT", "/absences/{id}/status", self.set_absence_status)
        r.add("PATCH", "/absences/{id}/status", self.set_absence_status)
        return r

    # -- dispatch --

    def handle(self, req):
        resp = self._route(req)
        resp.header("X-B3-SpanId", span_id())          # CORROBORATED [H2]
        return resp

    def _route(self, req):
        rest = PREFIX.match(req.path).group("rest")
        path = unquote(rest).rstrip("/") or "/"
        public = path in ("/oauth2/token", "/health/check")
        if not public:
            denied = self.authenticate(req)
            if denied:
                return denied
        handler, params = self.router.match(req.method, path)
        if handler is None:
            if params == 405:
                return common.json_response({"message": "Method Not Allowed"}, 405)
            return common.json_response({"message": "Not Found"}, 404)
        req.params = params
        try:
            return handler(req)
        except ApiError as err:
            return err.response

    def fault_response(self, req, status, retry_after):
        """PLAUSIBLE: HeavenHR's rate limit and outage answers are not public;
        a JSON {"message"} like its other errors."""
        resp = common.json_response({"message": SPRING_MESSAGES.get(status, "Error")}, status)
        if retry_after is not None:
            resp.header("Retry-After", retry_after)
        resp.header("X-B3-SpanId", span_id())
        return resp

    # -- authentication --

    def _basic_client(self, req):
        """(client_id, client_secret) from a Basic header, or None."""
        scheme, _, credentials = (req.header("Authorization") or "").strip().partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeError, binascii.Error):
            return ("", "")
        client_id, _, secret = decoded.partition(":")
        return (client_id, secret)

    def authenticate(self, req):
        """None when the request may pass, else the 401 response (PLAUSIBLE
        bodies, Spring Security style)."""
        scheme, _, credentials = (req.header("Authorization") or "").strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            token = credentials.strip()
            now = time.monotonic()
            with self.lock:
                expiry = self.tokens.get(token)
                if expiry is not None and expiry <= now:
                    del self.tokens[token]
            if expiry is None:
                return self._invalid_token("Invalid access token")
            if expiry <= now:
                return self._invalid_token("Access token expired")
            return None
        if scheme == "basic" and self.accept_basic:
            if self._basic_client(req) == self.client:
                return None
            return oauth_error(401, "unauthorized", "Bad credentials",
                               'Basic realm="oauth2/client"')
        return oauth_error(401, "unauthorized",
                           "Full authentication is required to access this resource",
                           'Bearer realm="oauth2-resource"')

    @staticmethod
    def _invalid_token(description):
        return oauth_error(401, "invalid_token", description,
                           'Bearer realm="oauth2-resource", error="invalid_token", '
                           'error_description="%s"' % description)

    def token(self, req):
        """VERIFIED request shape (GET, grant in the query, Basic client
        auth); POST with a form body and client_id/client_secret in the form
        (client_secret_post) are PLAUSIBLE extras. Body PLAUSIBLE (§2.2)."""
        params = {}
        if req.method == "POST" and req.body:
            params.update(parse_qsl(req.body.decode("utf-8", "replace"), keep_blank_values=True))
        params.update(req.query_pairs)
        client = self._basic_client(req)
        if client is None and "client_id" in params:
            client = (params.get("client_id", ""), params.get("client_secret", ""))
        if client is None:
            return oauth_error(401, "unauthorized",
                               "Full authentication is required to access this resource",
                               'Basic realm="oauth2/client"')
        if client != self.client:
            return oauth_error(401, "unauthorized", "Bad credentials", 'Basic realm="oauth2/client"')
        grant = params.get("grant_type")
        if not grant:
            return oauth_error(400, "invalid_request", "Missing grant type")
        if grant != "client_credentials":
            return oauth_error(400, "unsupported_grant_type", "Unsupported grant type: %s" % grant)
        scope = params.get("scope")
        if scope not in (None, "", "all"):
            return oauth_error(400, "invalid_scope", "Invalid scope: %s" % scope)
        token = str(uuid.uuid4())
        now = time.monotonic()
        with self.lock:
            for old in [t for t, expiry in self.tokens.items() if expiry <= now]:
                del self.tokens[old]
            self.tokens[token] = now + self.ttl
        return common.json_response(
            {"access_token": token, "token_type": "bearer", "expires_in": self.ttl, "scope": "all"},
            200, [("Cache-Control", "no-store"), ("Pragma", "no-cache")])

    def health(self, req):
        return common.json_response({"message": "OK"})     # VERIFIED [H1]

    # -- generic lists --

    def lister(self, attribute, noun):
        def handler(req):
            return page(req, getattr(self.ds, attribute), noun)
        return handler

    def getter(self, attribute, noun):
        def handler(req):
            found = getattr(self.ds, attribute).get(req.params["id"])
            if found is None:
                raise ApiError(404, "%s not found" % noun)
            return common.json_response(found)
        return handler

    # -- employees --

    def list_employees(self, req):
        """Filters (names PLAUSIBLE; [H2] lists employee number, department
        ID, job status, start date and updated date): exact employeeNumber,
        departmentId and jobStatus; startDate and updatedDate are lower
        bounds (employees starting / updated on or after them)."""
        ds = self.ds
        number = int_arg(req, "employeeNumber", None)
        department = req.arg("departmentId") or None
        status = req.arg("jobStatus") or None
        if status is not None:
            status = status.upper()
            if status not in JOB_STATUSES:
                raise ApiError(400, "Parameter 'jobStatus' must be one of ACTIVE, INACTIVE")
        start = date_arg(req, "startDate")
        updated = instant_arg(req, "updatedDate")
        matched = []
        for emp in ds.employees:
            if number is not None and emp["employeeNumber"] != number:
                continue
            if department is not None and emp["departmentId"] != department:
                continue
            if status is not None and emp["jobStatus"] != status:
                continue
            if start is not None and not (parse_date(emp["startDate"]) and emp["startDate"] >= start):
                continue
            if updated is not None and emp["updatedAt"] < updated:
                continue
            matched.append(list_item(emp))
        return page(req, matched, "employees")

    def get_employee(self, req):
        emp = self.ds.employee_by_id.get(req.params["id"])
        if emp is None:
            raise ApiError(404, "Employee not found")
        return common.json_response(emp)

    def create_employee(self, req):
        """POST /employees/ (VERIFIED path and field names); validation and
        answer (201 with the full object) PLAUSIBLE."""
        try:
            body = req.json_body()
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "Malformed JSON request body")
        if not isinstance(body, dict):
            raise ApiError(400, "Request body must be a JSON object")
        for name in ("firstName", "lastName"):
            if not isinstance(body.get(name), str) or not body[name].strip():
                raise ApiError(400, "Field '%s' must not be blank" % name)
        for name in ("startDate", "endOfContract", "dateOfBirth"):
            if body.get(name) is not None and parse_date(body[name]) is None:
                raise ApiError(400, "Field '%s' must be a date (yyyy-MM-dd)" % name)
        enums = {"gender": GENDERS, "permanentOrTemporary": CONTRACT_KINDS,
                 "employmentType": tuple(t[0] for t in EMPLOYMENT_TYPES)}
        for name, allowed in enums.items():
            if body.get(name) is not None and body[name] not in allowed:
                raise ApiError(400, "Field '%s' must be one of %s" % (name, ", ".join(allowed)))
        with self.lock:
            ds = self.ds
            location = ds.location_by_id.get(body.get("locationId") or ds.locations[0]["id"])
            if location is None:
                raise ApiError(400, "Unknown locationId")
            department = ds.department_by_id.get(body.get("departmentId")
                                                 or ds.departments[0]["id"])
            if department is None:
                raise ApiError(400, "Unknown departmentId")
            # PLAUSIBLE: a taken professionalEmail is a conflict, like a taken
            # employeeNumber; a supervisorId must name an employee
            email = body.get("professionalEmail")
            if email and any((e["professionalEmail"] or "").lower() == str(email).lower()
                             for e in ds.employees):
                raise ApiError(409, "Employee with professionalEmail %s already exists"
                               % email)
            if body.get("supervisorId") is not None \
                    and body["supervisorId"] not in ds.employee_by_id:
                raise ApiError(400, "Unknown supervisorId")
            numbers = {e["employeeNumber"] for e in ds.employees}
            number = body.get("employeeNumber")
            if number is None:
                number = max(numbers) + 1
            elif not isinstance(number, int) or isinstance(number, bool) or number < 1:
                raise ApiError(400, "Field 'employeeNumber' must be a positive number")
            elif number in numbers:
                raise ApiError(409, "Employee number %d is already taken" % number)
            self.created += 1
            now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            emp = {key: None for key in ds.employees[0]}
            emp.update({key: value for key, value in body.items() if key in emp})
            emp.update({
                "id": heaven_id(ds.seed, "created-employee", self.created),
                "employeeNumber": number, "companyId": location["companyId"],
                "locationId": location["id"], "departmentId": department["id"],
                "departmentName": department["name"], "jobStatus": "ACTIVE",
                "createdAt": now, "updatedAt": now})
            employees = sorted(ds.employees + [emp], key=lambda e: e["employeeNumber"])
            ds.employees = employees
            ds.index()
        return common.json_response(emp, 201)

    # -- absences --

    def list_absences(self, req):
        """Filters PLAUSIBLE: employeeId (unknown employee: 404 "Employee not
        found"), startDate/endDate as an overlap window, status (comma list),
        absenceTypeId, updatedDate (lower bound)."""
        ds = self.ds
        employee = req.arg("employeeId") or None
        if employee is not None and employee not in ds.employee_by_id:
            raise ApiError(404, "Employee not found")
        first, last = date_arg(req, "startDate"), date_arg(req, "endDate")
        if first and last and first > last:
            raise ApiError(400, "Parameter 'startDate' must not be after 'endDate'")
        statuses = None
        if req.arg("status"):
            statuses = {s.strip().upper() for s in req.arg("status").split(",") if s.strip()}
            if not statuses or statuses - set(ABSENCE_STATUSES):
                raise ApiError(400, "Parameter 'status' must be among %s"
                               % ", ".join(ABSENCE_STATUSES))
        type_id = req.arg("absenceTypeId") or None
        updated = instant_arg(req, "updatedDate")
        matched = [a for a in ds.absences
                   if (employee is None or a["employeeId"] == employee)
                   and (first is None or a["endDate"] >= first)
                   and (last is None or a["startDate"] <= last)
                   and (statuses is None or a["status"] in statuses)
                   and (type_id is None or a["absenceType"]["id"] == type_id)
                   and (updated is None or a["updatedAt"] >= updated)]
        return page(req, matched, "absences")

    def _absence(self, ds, absence_id):
        found = ds.absence_by_id.get(absence_id)
        if found is None:
            raise ApiError(404, "Absence not found")
        return found

    def get_absence(self, req):
        return common.json_response(self._absence(self.ds, req.params["id"]))

    def delete_absence(self, req):
        """CORROBORATED operation (unified.to "Remove"); 204 PLAUSIBLE."""
        with self.lock:
            ds = self.ds
            gone = self._absence(ds, req.params["id"])
            ds.absences = [a for a in ds.absences if a is not gone]
            ds.index()
        return common.Response(204, b"")

    def set_absence_status(self, req):
        """PLAUSIBLE (§2.7): {"status": "APPROVED"|"REJECTED"} on a PENDING
        absence; anything else already decided is a 409."""
        try:
            body = req.json_body()
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "Malformed JSON request body")
        status = body.get("status") if isinstance(body, dict) else None
        if status not in ("APPROVED", "REJECTED"):
            raise ApiError(400, "Field 'status' must be APPROVED or REJECTED")
        with self.lock:
            ds = self.ds
            old = self._absence(ds, req.params["id"])
            if old["status"] != "PENDING":
                raise ApiError(409, "Absence is %s, not PENDING" % old["status"])
            new = dict(old, status=status, updatedAt=datetime.datetime.now(
                datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
            ds.absences = [new if a is old else a for a in ds.absences]
            ds.index()
        return common.json_response(new)


def main(argv=None):
    common.serve(HeavenHR, argv, "HeavenHR sandbox provider")


if __name__ == "__main__":
    main()
