#!/usr/bin/env python3
"""ClayHR sandbox provider.

    python3 sandbox/clayhr.py --port 9105 [--api-key KEY --user-id N] [--verbose]

Behaves like the ClayHR (formerly BizMerlin HR) API of
shared/reference/providers-peoplehr-heavenhr-clayhr.md part 3 (§3.1-§3.7).
Field names and parameters come from the Konfig SDK generated from ClayHR's
own OpenAPI document ([C1] konfig-sdks/clay-hr-typescript-sdk, models/*.ts);
most response bodies are untyped there, so every shape the reference does
not settle is marked PLAUSIBLE below and in the code.

URL shapes (§3.1: the real prefix is ambiguous). An account whose base_url
is http://127.0.0.1:PORT stands for https://{subdomain}.clayhr.net/rm/api.
Every route answers identically at

    /<route>   /api/<route>   /rm/api/<route>   /rm/api/api/<route>

and /resource also at /rm/resource. A trailing slash is ignored (`/user/`).

Authentication (§3.2): headers `x-api-key: KEY` and `userid: N` on every
request; the key must belong to that user id. The legacy JSON header
`Authorization: {"userId": 123456, "apiKey": "KEY"}` (or
`Authorization: {"x-API-key": "KEY"}` plus a `userid` header) is accepted
too. Anything else: 401 {"message": "Unauthorized"} (PLAUSIBLE text).
Authentication comes before routing: an unknown path with bad credentials
is a 401, with good ones a 404 {"message": "Not Found"}.

Routes (GET only):

  /token               {"accessToken": "<64 hex>"} (deterministic per key; not
                       accepted as a credential: its use is UNVERIFIED)
  /users               §3.4 `/api/users` items, bare JSON array, all values
                       strings; ordered by userId
  /users/basic         §3.4 basic items, same parameters and paging
      page (1-based, default 1), pageSize (default 20, 1..500), status
      (A|I|F, default A), name, search, startDateBefore, startDateAfter,
      endDateBefore, endDateAfter (yyyy-MM-dd); 204, empty body, when the
      page is past the end or nothing matches; invalid parameter → 400
  /resource            {"code": "200", "data": [...], "message": "Success"};
                       name, page, pageSize, sortBy, sortOrder, status
  /user/list?name=     full UserModel objects, every status, bare array
                       (200 [] when nothing matches); `name` also matches an
                       exact userId, empId or email: THE READ-ONE ENDPOINT
  /user                the caller's own full UserModel object
  /user/basic?email=   one basic item (404 {"message"} when unknown)
  /user/compensation?email=  FinancialModel array (default: the caller)
  /orgunits            every DepartmentModel, bare array, int ids
  /leaverequests?startDate=&endDate=[&leaveUserid=&status=]
  /jobprofiles, /ptopolicies

PLAUSIBLE choices (the reference leaves them open):
  * status takes ONE value (the spec's enum 'A'|'I'|'F'); a comma list such
    as `A,I,F` or a lower-case letter is a 400 (the real server might as well
    answer 204). A client that wants every user walks A, I and F in turn.
    `--status-lists` makes comma lists (`A,I,F`) acceptable instead. The
    same holds for /leaverequests' status (AP|WA|RJ|PAP|RCAL, default AP).
  * pageSize max 500 (400 above it; never silently clamped).
  * Date filters are strict (Before: <, After: >); users without
    userEndDate never match end-date filters.
  * `name` is a case-insensitive substring of "first last"; `search` of
    first, last, full name, email or empId, or an exact userId.
  * List shapes (/users, /users/basic, /resource) carry strings, as the
    typed list models say; the *ModelList members of /users are JSON arrays
    (the full UserModel types them so) whose objects keep their own model's
    types (int ids). Detail shapes (/user, /user/list) follow the typed
    UserModel: userId, cid, profileId, star are numbers, isView and
    hasAccess booleans. Timestamps (createts, lastupdatets) are
    "yyyy-MM-dd HH:mm:ss" strings; dates yyyy-MM-dd; missing strings "".
  * /users items carry exactly the §3.4 list fields: no departmentName,
    position, empId or userEndDate (those are in /user/list and /resource).
  * /resource: resourceId = userId, default sortBy name (ties by userId),
    data [] past the end (never 204).
  * Leave requests, job profiles, PTO policies and compensation records:
    shapes built from LeaveModel, PtoPolicyModel and FinancialModel.
  * 429/5xx faults answer {"message": "..."} JSON (rate limits: no public
    information).

Data set (deterministic: same arguments, byte-identical answers; built by
generate_dataset(), which other code may import; `--seed` default 20261101,
`--today` default 2026-06-01):
  * 280 users, userId 123400..124770 ascending with gaps: 238 A, 30 I (all
    with a past userEndDate), 12 F (userStartDate after today). Two Active
    users are leaving (future userEndDate): 123611, 124120.
  * 123400 Amara Okafor, CEO, no supervisor; 123456 Sofia Hernández (the
    default key owner), HR Administrator, People & Culture (2113), reports
    to 123400. Unicode names: Björn Ødegaard 123460, José Núñez 123473,
    Zoë Müller 123530, Łukasz Wiśniewski 123507, Siobhán Ó Briain 123608.
    Some display names repeat; emails (first.last@acme-clay.example) are
    unique. empId "E-0001".. in userId order.
  * Supervisors are Active users; 5 users have two; 123613, 123636 and
    123693 (future joiners) have none yet.
  * 18 org units 2100..2117; 9 top-level (parentDepartmentId 0), a chain
    2103 -> 2102 -> 2101, 2117 "Research Lab" has no head (deptHead 0) and
    no staff.
  * Custom fields T-Shirt Size (501), Emergency Contact (502), Badge Number
    (503); 31 users have none, some values are "".
  * 320 leave requests 880001..880320 (date order), 2025-01-01..2026-12-31:
    AP 172, WA 59, RCAL 32, RJ 30, PAP 27; policies 301..306 (306 in hours).
"""

import datetime
import hashlib
import json
import os
import random
import re
import sys
import unicodedata
import uuid
from urllib.parse import unquote

# Import the shared server from this directory without leaving a
# __pycache__ behind in the source tree.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (needs the path above)

DEFAULT_API_KEY = "clayhr-sandbox-0123456789abcdef"
DEFAULT_USER_ID = 123456
DEFAULT_SEED = 20261101
# "Today" is fixed so that answers never depend on the wall clock.
DEFAULT_TODAY = "2026-06-01"
COMPANY_ID = 1001
USER_COUNT = 280
INACTIVE_COUNT = 30
FUTURE_COUNT = 12
LEAVE_COUNT = 320
LEAVE_WINDOW = ("2025-01-01", "2026-12-31")
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 500           # PLAUSIBLE: the reference has no documented max
STATUSES = ("A", "I", "F")
LEAVE_STATUSES = ("AP", "WA", "RJ", "PAP", "RCAL")
EMAIL_DOMAIN = "acme-clay.example"

# ---------------------------------------------------------------------------
# Reference data
# ---------------------------------------------------------------------------

# Org units: (departmentId, name, departmentCode, departmentLabel,
# parentDepartmentId, description, weight of rank-and-file staff).
ORG_UNITS = [
    (2100, "Executive", "EXEC", "Department", 0, "Executive leadership team", 1),
    (2101, "Engineering", "ENG", "Department", 0, "Product engineering", 6),
    (2102, "Platform Engineering", "ENG-PLT", "Team", 2101, "Core services and APIs", 14),
    (2103, "Site Reliability", "ENG-SRE", "Team", 2102, "Infrastructure and on-call", 6),
    (2104, "Mobile Engineering", "ENG-MOB", "Team", 2101, "iOS and Android apps", 8),
    (2105, "Quality Assurance", "ENG-QA", "Team", 2101, "Testing and release quality", 5),
    (2106, "Product & Design", "PROD", "Department", 0, "Product management and design", 8),
    (2107, "Sales", "SALES", "Department", 0, "Revenue organisation", 3),
    (2108, "Sales EMEA", "SALES-EMEA", "Team", 2107, "Sales in Europe, Middle East, Africa", 9),
    (2109, "Sales Americas", "SALES-AM", "Team", 2107, "Sales in North and South America", 9),
    (2110, "Marketing", "MKT", "Department", 0, "Brand, content and demand generation", 7),
    (2111, "Customer Success", "CS", "Department", 0, "Support and account management", 11),
    (2112, "Finance", "FIN", "Department", 0, "Accounting and FP&A", 5),
    (2113, "People & Culture", "HR", "Department", 0, "Human resources", 4),
    (2114, "Legal", "LEGAL", "Department", 2100, "Legal and compliance", 2),
    (2115, "Operations", "OPS", "Department", 0, "Business operations", 4),
    (2116, "IT", "IT", "Team", 2115, "Internal IT and workplace", 4),
    (2117, "Research Lab", "LAB", "Team", 2101, "Dormant unit without staff", 0),
]
UNIT_BY_ID = {u[0]: u for u in ORG_UNITS}
EMPTY_UNIT = 2117
# Heads, in user order from index 0: the CEO, then the key owner (HR), then
# the other units. The empty unit has no head.
HEAD_ORDER = [2100, 2113, 2101, 2102, 2103, 2104, 2105, 2106, 2107, 2108, 2109, 2110,
              2111, 2112, 2114, 2115, 2116]
TEAM_LEADS = range(17, 40)            # user indexes of team leads

TITLES = {
    2100: ["Executive Assistant", "Chief of Staff"],
    2101: ["Software Engineer", "Senior Software Engineer", "Staff Engineer"],
    2102: ["Backend Engineer", "Senior Backend Engineer", "API Engineer"],
    2103: ["Site Reliability Engineer", "Senior SRE", "Cloud Engineer"],
    2104: ["iOS Engineer", "Android Engineer", "Mobile Engineer"],
    2105: ["QA Analyst", "Test Automation Engineer"],
    2106: ["Product Manager", "Product Designer", "UX Researcher"],
    2107: ["Sales Operations Analyst", "Deal Desk Specialist"],
    2108: ["Account Executive", "Sales Development Rep"],
    2109: ["Account Executive", "Sales Development Rep", "Solutions Consultant"],
    2110: ["Marketing Specialist", "Content Writer", "Demand Generation Manager"],
    2111: ["Support Engineer", "Customer Success Manager", "Onboarding Specialist"],
    2112: ["Accountant", "Financial Analyst", "Payroll Specialist"],
    2113: ["HR Generalist", "Recruiter", "People Partner"],
    2114: ["Legal Counsel", "Paralegal"],
    2115: ["Operations Coordinator", "Office Manager"],
    2116: ["IT Support Specialist", "Systems Administrator"],
}
HEAD_TITLES = {2100: "Chief Executive Officer", 2113: "HR Administrator",
               2101: "VP Engineering", 2107: "VP Sales", 2112: "Chief Financial Officer"}

# LocationModel: (locationId, name, code, timezone, country, iso2, countryId,
# currency, city, state, zip, weight)
LOCATIONS = [
    (11, "London", "LON", "Europe/London", "United Kingdom", "GB", 826, "GBP",
     "London", "", "EC2M 2PF", 30),
    (12, "Berlin", "BER", "Europe/Berlin", "Germany", "DE", 276, "EUR",
     "Berlin", "Berlin", "10117", 18),
    (13, "New York", "NYC", "America/New_York", "United States", "US", 840, "USD",
     "New York", "NY", "10166", 22),
    (14, "Bengaluru", "BLR", "Asia/Kolkata", "India", "IN", 356, "INR",
     "Bengaluru", "Karnataka", "560001", 14),
    (15, "São Paulo", "SAO", "America/Sao_Paulo", "Brazil", "BR", 76, "BRL",
     "São Paulo", "SP", "01310-100", 8),
    (16, "Remote (US)", "REM", "America/Chicago", "United States", "US", 840, "USD",
     "Chicago", "IL", "60601", 8),
]
LOCATION_BY_ID = {loc[0]: loc for loc in LOCATIONS}

WORKER_TYPES = {"Full Time": 75, "Part Time": 10, "Contractor": 8, "Intern": 7}
# (profileId, profileName)
PROFILES = {"admin": (1, "Administrator"), "hr": (2, "HR Admin"),
            "manager": (3, "Manager"), "employee": (4, "Employee")}

# Custom fields: (customFieldId, customfieldName)
CUSTOM_FIELDS = [(501, "T-Shirt Size"), (502, "Emergency Contact"), (503, "Badge Number")]
SHIRT_SIZES = ["XS", "S", "M", "L", "XL", "XXL"]

# PtoPolicyModel subset: (ptoPolicyId, policyName, leaveType, unit, paid, weight)
PTO_POLICIES = [
    (301, "Annual Leave", "Vacation", "days", 1, 50),
    (302, "Sick Leave", "Sick", "days", 1, 22),
    (303, "Parental Leave", "Parental", "days", 1, 3),
    (304, "Unpaid Leave", "Unpaid", "days", 0, 5),
    (305, "Bereavement Leave", "Bereavement", "days", 1, 4),
    (306, "Time Off In Lieu", "TOIL", "hours", 1, 16),
]
LEAVE_STATUS_WEIGHTS = {"AP": 55, "WA": 15, "RJ": 10, "PAP": 10, "RCAL": 10}

FIRST_NAMES = [
    "Ava", "Liam", "Olivia", "Noah", "Emma", "Mason", "Sophia", "Lucas", "Mia", "Ethan",
    "Amelia", "Logan", "Harper", "James", "Evelyn", "Benjamin", "Abigail", "Elijah", "Emily",
    "Oliver", "Ella", "Jacob", "Grace", "Daniel", "Chloe", "Henry", "Riley", "Aria", "Lily",
    "Samuel", "Hannah", "David", "Layla", "Nora", "Priya", "Owen", "Ananya", "Mei", "Yuki",
    "Fatima", "Aisha", "Ingrid", "Chiara", "Nadia", "Elena", "Camila", "Lucía", "Mateo",
    "Renée", "Chloé", "Kwame", "Zoë", "José", "Björn", "Søren", "François", "Łukasz",
    "Siobhán", "Tomás", "Anaïs", "Dmitri", "Saoirse", "Arjun", "Rohan", "Kavya", "Hiroshi",
    "Thandiwe", "Oluwaseun", "Małgorzata", "Jürgen", "Ümit", "Åsa",
]
LAST_NAMES = [
    "Smith", "Nguyen", "Park", "Lee", "Johnson", "Williams", "Brown", "Jones", "Garcia",
    "Miller", "Davis", "Martinez", "Lopez", "Wilson", "Anderson", "Taylor", "Moore", "Martin",
    "Thompson", "White", "Harris", "Clark", "Lewis", "Robinson", "Walker", "Young", "King",
    "Wright", "Scott", "Hill", "Green", "Adams", "Baker", "Campbell", "Kim", "Patel", "Singh",
    "Chen", "Wang", "Yamamoto", "Okafor", "Haddad", "Novak", "Kowalski", "Schmidt", "Rossi",
    "Dubois", "O'Brien", "Müller", "Núñez", "Ødegaard", "Şahin", "García", "Lefèvre",
    "Iyer", "Mensah", "Nakamura", "Fernández", "Johansson", "Kovač", "Ó Briain",
]
MIDDLE_NAMES = ["Marie", "James", "Anne", "Lee", "Rose", "Kumar", "Louise", "Thomas", "Jean"]
# Fixed names at fixed user indexes, so tests can rely on them (and on unicode).
FIXED_NAMES = {0: ("Amara", "Okafor"), 1: ("Sofia", "Hernández"), 2: ("Björn", "Ødegaard"),
               5: ("José", "Núñez"), 8: ("Chloé", "Lefèvre"), 13: ("Łukasz", "Wiśniewski"),
               20: ("Zoë", "Müller"), 44: ("Siobhán", "Ó Briain")}
SECOND_LAST_NAMES = {5: "García"}     # Hispanic double surname (UserModel.secondLastName)


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------

def parse_date(text):
    """datetime.date for a strict yyyy-MM-dd string, else None."""
    if not isinstance(text, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return None
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        return None


def ascii_slug(text):
    """José -> jose, O'Brien -> obrien (for e-mail addresses)."""
    plain = text.replace("Ø", "O").replace("ø", "o").replace("Ł", "L").replace("ł", "l")
    plain = unicodedata.normalize("NFKD", plain).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z]", "", plain.lower()) or "x"


def weighted(rng, weights):
    """Deterministic weighted choice from a {value: weight} dict."""
    total = sum(weights.values())
    point = rng.randrange(total)
    for value, weight in weights.items():
        if point < weight:
            return value
        point -= weight
    raise AssertionError("unreachable")


def random_date(rng, first, last):
    return first + datetime.timedelta(days=rng.randrange((last - first).days + 1))


def timestamp(day, rng):
    """PLAUSIBLE createts/lastupdatets format: "yyyy-MM-dd HH:mm:ss"."""
    return "%s %02d:%02d:%02d" % (day.isoformat(), rng.randrange(7, 20), rng.randrange(60),
                                  rng.randrange(60))


def fold(text):
    return unicodedata.normalize("NFC", text or "").casefold()


def working_days(first, last):
    return sum(1 for n in range((last - first).days + 1)
               if (first + datetime.timedelta(days=n)).weekday() < 5)


# ---------------------------------------------------------------------------
# Data set
# ---------------------------------------------------------------------------

class Dataset:
    """Everything the sandbox serves. Users are sorted by userId."""

    def __init__(self, today):
        self.today = today
        self.users = []
        self.by_id = {}
        self.units = []           # DepartmentModel dicts, by departmentId
        self.unit_by_id = {}
        self.leaves = []
        self.compensation = {}    # userId -> [FinancialModel]
        self.job_profiles = []

    def user(self, uid):
        return self.by_id.get(uid)

    def unit(self, unit_id):
        return self.unit_by_id.get(unit_id)


def generate_dataset(seed=DEFAULT_SEED, today=DEFAULT_TODAY, user_count=USER_COUNT):
    """Build the deterministic ClayHR data set (same arguments, same data).

    Internal user records hold typed values (ints, dates as strings); the
    renderers below turn them into each endpoint's shape."""
    rng = random.Random(seed)
    day = parse_date(today)
    ds = Dataset(today)
    ids = _user_ids(rng, user_count)
    kinds = _user_kinds(rng, user_count)
    for index, uid in enumerate(ids):
        user = _make_user(rng, index, uid, kinds[index], day)
        ds.users.append(user)
        ds.by_id[uid] = user
    _assign_units_and_supervisors(rng, ds)
    _unique_emails(ds.users)
    for user in ds.users:
        _finish_user(rng, user)
    ds.units = _org_units(ds)
    ds.unit_by_id = {unit["departmentId"]: unit for unit in ds.units}
    for user in ds.users:
        ds.compensation[user["userId"]] = _compensation(rng, user, day)
    ds.job_profiles = _job_profiles(ds)
    ds.leaves = _leave_requests(rng, ds, LEAVE_COUNT)
    return ds


def _user_ids(rng, count):
    """123400 (the CEO), 123456 (the default key owner), then ascending with
    gaps from 123460: never contiguous."""
    ids, current = [123400, DEFAULT_USER_ID], 123460
    while len(ids) < count:
        ids.append(current)
        current += rng.choice((1, 2, 3, 4, 7, 11))
    return ids[:count]


def _user_kinds(rng, count):
    """index -> 'A' | 'I' | 'F' | 'leaving' (Active with a future end date).
    The first 40 users (heads and team leads) are always Active."""
    pool = list(range(40, count))
    rng.shuffle(pool)
    kinds = ["A"] * count
    for index in pool[:INACTIVE_COUNT]:
        kinds[index] = "I"
    for index in pool[INACTIVE_COUNT:INACTIVE_COUNT + FUTURE_COUNT]:
        kinds[index] = "F"
    for index in pool[INACTIVE_COUNT + FUTURE_COUNT:INACTIVE_COUNT + FUTURE_COUNT + 2]:
        kinds[index] = "leaving"
    return kinds


def _make_user(rng, index, uid, kind, today):
    first, last = FIXED_NAMES.get(index) or (rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES))
    middle = rng.choice(MIDDLE_NAMES) if rng.random() < 0.2 else ""
    if index < 17:
        start = random_date(rng, datetime.date(2012, 1, 1), datetime.date(2019, 12, 31))
    elif index < 40:
        start = random_date(rng, datetime.date(2014, 1, 1), datetime.date(2022, 12, 31))
    elif kind == "F":
        start = today + datetime.timedelta(days=rng.randrange(7, 150))
    elif kind == "I":
        start = random_date(rng, datetime.date(2014, 1, 1), datetime.date(2024, 6, 30))
    else:
        start = random_date(rng, datetime.date(2015, 1, 1), today - datetime.timedelta(days=30))
    end = ""
    if kind == "I":
        last_day = min(today - datetime.timedelta(days=1), start + datetime.timedelta(days=1500))
        end = random_date(rng, start + datetime.timedelta(days=120), last_day).isoformat()
    elif kind == "leaving":
        end = (today + datetime.timedelta(days=rng.randrange(10, 60))).isoformat()
    birth = random_date(rng, datetime.date(1962, 1, 1), datetime.date(2003, 12, 31))
    created = start - datetime.timedelta(days=rng.randrange(5, 40))
    if created > today:                      # future joiners were created already
        created = today - datetime.timedelta(days=rng.randrange(1, 60))
    if index < 40:
        worker = "Full Time"
    else:
        worker = weighted(rng, WORKER_TYPES)
    location = weighted(rng, {loc[0]: loc[-1] for loc in LOCATIONS})
    gender = weighted(rng, {"F": 47, "M": 47, "": 6})   # PLAUSIBLE codes
    return {
        "index": index, "userId": uid, "kind": kind,
        "status": "A" if kind == "leaving" else kind,
        "empId": "E-%04d" % (index + 1),
        "firstName": first, "middleName": middle, "lastName": last,
        "secondLastName": SECOND_LAST_NAMES.get(index, ""),
        "userStartDate": start.isoformat(), "userEndDate": end,
        "userDateOfBirth": birth.isoformat(),
        "createts": timestamp(created, rng),
        "lastupdatets": timestamp(max(created, min(today, start + datetime.timedelta(
            days=rng.randrange(0, 900)))), rng),
        "guid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "workerType": worker, "locationId": location, "gender": gender,
        "cellPhone": "", "phone": "", "departmentId": 0, "position": "", "jobGrade": "",
        "supervisors": [], "profile": "employee",
    }


def _assign_units_and_supervisors(rng, ds):
    """Heads (indexes 0..16) run HEAD_ORDER's units and report to the head of
    the parent unit (top units: the CEO). Team leads (17..39) report to their
    unit's head; everybody else to a lead of their unit or its head. Five
    users have a second (matrix) supervisor; three future joiners have none
    yet."""
    users = ds.users
    head_of = {}
    for index, unit_id in enumerate(HEAD_ORDER):
        users[index]["departmentId"] = unit_id
        head_of[unit_id] = users[index]
    staffed = {u[0]: u[6] for u in ORG_UNITS if u[6] and u[0] != 2100}
    leads_of = {}
    for index in TEAM_LEADS:
        unit_id = weighted(rng, staffed)
        users[index]["departmentId"] = unit_id
        leads_of.setdefault(unit_id, []).append(users[index])
    staffed[2100] = 1
    for user in users[40:]:
        user["departmentId"] = weighted(rng, staffed)

    for index, unit_id in enumerate(HEAD_ORDER):
        parent = UNIT_BY_ID[unit_id][4]
        if unit_id != 2100:
            users[index]["supervisors"] = [head_of[parent or 2100]["userId"]]
        users[index]["profile"] = ("admin" if index == 0 else "hr" if index == 1 else "manager")
        users[index]["jobGrade"] = "G8"
        users[index]["position"] = HEAD_TITLES.get(unit_id, "Head of " + UNIT_BY_ID[unit_id][1])
    for index in TEAM_LEADS:
        user = users[index]
        user["supervisors"] = [head_of[user["departmentId"]]["userId"]]
        user["profile"] = "manager"
        user["jobGrade"] = "G6"
        user["position"] = UNIT_BY_ID[user["departmentId"]][1] + " Team Lead"
    future_without = 0
    matrix = 0
    for user in users[40:]:
        unit_id = user["departmentId"]
        leads = leads_of.get(unit_id, [])
        if leads and rng.random() < 0.85:
            boss = rng.choice(leads)
        else:
            boss = head_of[unit_id]
        user["supervisors"] = [boss["userId"]]
        if user["kind"] == "F" and future_without < 3:
            user["supervisors"] = []            # not assigned yet
            future_without += 1
        elif user["kind"] == "A" and matrix < 5 and rng.random() < 0.1:
            other = rng.choice([h for u_id, h in head_of.items() if u_id != unit_id])
            user["supervisors"].append(other["userId"])
            matrix += 1
        user["jobGrade"] = "G%d" % rng.randrange(2, 6)
        user["position"] = rng.choice(TITLES[unit_id])


def _unique_emails(users):
    seen = set()
    for user in users:
        base = "%s.%s" % (ascii_slug(user["firstName"]), ascii_slug(user["lastName"]))
        email, n = base, 1
        while email in seen:
            n += 1
            email = "%s%d" % (base, n)
        seen.add(email)
        user["email"] = "%s@%s" % (email, EMAIL_DOMAIN)


def _finish_user(rng, user):
    index = user["index"]
    loc = LOCATION_BY_ID[user["locationId"]]
    user["cellPhone"] = _phone(rng, loc[5]) if rng.random() < 0.85 else ""
    user["phone"] = _phone(rng, loc[5]) if rng.random() < 0.3 else ""
    user["shortName"] = (user["firstName"][:1] + user["lastName"][:1]).upper()
    user["timezone"] = loc[3]
    user["userCountry"] = loc[4]
    user["userDateFormat"] = "MM/dd/yyyy" if loc[5] == "US" else "dd/MM/yyyy"
    user["allocation"] = 50 if user["workerType"] == "Part Time" else 100
    user["star"] = 1 if index in (0, 1, 7) else 0
    user["createuserid"] = 0 if index < 2 else DEFAULT_USER_ID
    # Custom field values: most users have all three, some none, some blanks.
    values = []
    if index % 9 != 4:
        shirt = rng.choice(SHIRT_SIZES) if rng.random() < 0.9 else ""
        contact = ("%s %s" % (rng.choice(FIRST_NAMES), user["lastName"])
                   if rng.random() < 0.7 else "")
        badge = "B-%05d" % (10000 + index * 7)
        for (field_id, field_name), value in zip(CUSTOM_FIELDS, (shirt, contact, badge)):
            values.append({"cid": COMPANY_ID, "createUserId": DEFAULT_USER_ID,
                           "customFieldId": field_id, "customFieldObjectId": user["userId"],
                           "customFieldValue": value,
                           "customFieldValueId": 700000 + index * 3 + field_id - 501,
                           "customfieldName": field_name})
    user["customFields"] = values
    # One home address (AddressModel) for most users.
    user["addresses"] = []
    if index % 11 != 6:
        user["addresses"].append({
            "addressId": 900000 + index, "addressLine1": "%d %s" % (
                rng.randrange(1, 250), rng.choice(["High Street", "Main Street", "Park Road",
                                                    "Rua Augusta", "Hauptstraße", "MG Road"])),
            "addressLine2": "", "addressType": "Home", "cid": COMPANY_ID,
            "city": loc[8], "state": loc[9], "zipCode": loc[10],
            "countryId": loc[6],
            "countryModel": {"countryId": loc[6], "countryName": loc[4], "iso2": loc[5]},
            "status": "A", "userId": user["userId"]})
    # Previous employment (EmploymentModel) for some users.
    user["employment"] = []
    if index % 5 == 2:
        prev_end = (parse_date(user["userStartDate"])
                    - datetime.timedelta(days=rng.randrange(14, 90)))
        user["employment"].append({
            "cid": COMPANY_ID, "city": loc[8], "countryId": loc[6],
            "department": "", "duties": "", "empId": index + 1,
            "employerName": rng.choice(["Globex Ltd", "Initech", "Umbrella plc", "Hooli GmbH"]),
            "employmentType": "Full Time", "endDate": prev_end.isoformat(),
            "position": user["position"],
            "startDate": (prev_end - datetime.timedelta(days=rng.randrange(300, 2000))).isoformat(),
            "state": loc[9], "userId": user["userId"]})


def _phone(rng, iso2):
    prefix = {"GB": "+44 7700 9", "DE": "+49 151 2", "US": "+1 212 55", "IN": "+91 98450 ",
              "BR": "+55 11 9"}[iso2]
    return prefix + "%05d" % rng.randrange(100000)


def _org_units(ds):
    """DepartmentModel objects: int ids, parentDepartmentId 0 at the top,
    noOfEmployees = Active users directly in the unit (PLAUSIBLE)."""
    heads = {user["departmentId"]: user for user in ds.users[:len(HEAD_ORDER)]}
    units = []
    for unit_id, name, code, label, parent, description, _ in ORG_UNITS:
        head = heads.get(unit_id)
        units.append({
            "departmentId": unit_id, "name": name, "description": description,
            "departmentCode": code, "departmentLabel": label,
            "parentDepartmentId": parent,
            "parentDepartmentName": UNIT_BY_ID[parent][1] if parent else "",
            "deptHead": head["userId"] if head else 0,
            "deptHeadName": full_name(head) if head else "",
            "noOfEmployees": sum(1 for u in ds.users
                                 if u["departmentId"] == unit_id and u["status"] == "A"),
            "cid": COMPANY_ID,
        })
    return units


CURRENCY_SCALE = {"GBP": 1.0, "EUR": 1.15, "USD": 1.3, "INR": 60.0, "BRL": 4.0}


def _compensation(rng, user, today):
    """FinancialModel records (PLAUSIBLE shape): an archived and an active
    salary, hourly pay for part-timers and interns, a one-off bonus for some;
    future joiners have a provisional record, leavers archived ones only."""
    index = user["index"]
    currency = LOCATION_BY_ID[user["locationId"]][7]
    scale = CURRENCY_SCALE[currency]
    hourly = user["workerType"] in ("Part Time", "Intern")
    if hourly:
        base, comp_type, period = round(rng.uniform(14, 30) * scale, 2), "pay", "HRLY"
    else:
        grade = int(user["jobGrade"][1:])
        base, comp_type, period = round((28000 + grade * 9000 + rng.randrange(0, 9000)) * scale,
                                        -2), "sal", "YRLY"
    start = parse_date(user["userStartDate"])
    records = []

    def record(n, value, ctype, per, effective, end, status, notes):
        records.append({
            "financialId": 500000 + index * 10 + n, "userId": user["userId"],
            "guid": user["guid"], "cid": COMPANY_ID, "compensationType": ctype,
            "value": value, "currencyCode": currency, "period": per,
            "effectivedate": effective.isoformat(), "enddate": end.isoformat() if end else "",
            "status": status, "notes": notes, "createUserId": DEFAULT_USER_ID})

    if user["kind"] == "F":
        record(1, base, comp_type, period, start, None, "PVNL", "Offer accepted")
        return records
    raise_day = start + datetime.timedelta(days=rng.randrange(365, 1100))
    leaving = parse_date(user["userEndDate"]) if user["kind"] == "I" else None
    if raise_day < (leaving or today):
        record(1, round(base * 0.92, 2), comp_type, period, start,
               raise_day - datetime.timedelta(days=1), "ARCHV", "Starting salary")
        record(2, base, comp_type, period, raise_day, leaving,
               "ARCHV" if leaving else "ACTV", "Annual review")
    else:
        record(1, base, comp_type, period, start, leaving, "ARCHV" if leaving else "ACTV",
               "Starting salary")
    if not hourly and index % 6 == 3:
        bonus_day = min(today, (leaving or today)) - datetime.timedelta(days=rng.randrange(20, 200))
        if bonus_day > start:
            record(5, round(base * 0.05, -1), "bonus", "ONEF", bonus_day, None,
                   "ARCHV" if leaving else "ACTV", "Performance bonus")
    return records


def _job_profiles(ds):
    """One job profile per distinct position (PLAUSIBLE shape)."""
    seen = {}
    for user in ds.users:
        key = user["position"]
        if key not in seen:
            seen[key] = (user["departmentId"], user["jobGrade"])
    profiles = []
    for n, (title, (unit_id, grade)) in enumerate(sorted(seen.items())):
        profiles.append({"jobProfileId": 401 + n, "jobProfileName": title,
                         "jobCode": "JP-%03d" % (n + 1), "jobGrade": grade,
                         "departmentId": unit_id, "departmentName": UNIT_BY_ID[unit_id][1],
                         "description": "", "status": "A", "cid": COMPANY_ID})
    return profiles


def _leave_requests(rng, ds, count):
    """Leave requests in LEAVE_WINDOW of Active and Inactive users, between
    their start and end dates; every status; ids in date order."""
    first, last_day = (parse_date(d) for d in LEAVE_WINDOW)
    eligible = [u for u in ds.users if u["status"] in ("A", "I")]
    policy_weights = {p[0]: p[-1] for p in PTO_POLICIES}
    policies = {p[0]: p for p in PTO_POLICIES}
    drafts = []
    while len(drafts) < count:
        user = rng.choice(eligible)
        begin = max(first, parse_date(user["userStartDate"]))
        last = last_day
        if user["userEndDate"]:
            last = min(last, parse_date(user["userEndDate"]) - datetime.timedelta(days=12))
        if begin > last:
            continue
        start = random_date(rng, begin, last)
        if start.weekday() >= 5:
            continue
        policy = policies[weighted(rng, policy_weights)]
        status = weighted(rng, LEAVE_STATUS_WEIGHTS)
        meridiem = end_meridiem = ""
        if policy[3] == "hours":
            end = start
            hours = float(rng.randrange(1, 9))
            days = hours / 8
            number = 1
        else:
            span = {301: 9, 302: 3, 303: 40, 304: 10, 305: 4}[policy[0]]
            end = start + datetime.timedelta(days=rng.randrange(span + 1))
            number = working_days(start, end)
            days = float(number)
            if start == end and rng.random() < 0.2:
                meridiem = end_meridiem = rng.choice(("AM", "PM"))     # half day
                days = 0.5
            hours = days * 8
        created = start - datetime.timedelta(days=rng.randrange(1, 60))
        creator = user if rng.random() < 0.85 else ds.users[1]   # sometimes HR books it
        drafts.append((start, user["userId"], {
            "userId": user["userId"], "date": start.isoformat(), "endDate": end.isoformat(),
            "numberOfDays": number, "totalLeaveDays": days, "totalLeaveHours": hours,
            "meridiem": meridiem, "endDateMeridiem": end_meridiem,
            "description": rng.choice(["", "Family trip", "Doctor's appointment",
                                       "Moving house", "Conference", "Personal"]),
            "status": status,
            "ptoPolicyModel": {"ptoPolicyId": policy[0], "policyName": policy[1],
                               "leaveType": policy[2], "unit": policy[3], "paid": policy[4]},
            "userModel": {"userId": user["userId"], "empId": user["empId"],
                          "firstName": user["firstName"], "lastName": user["lastName"],
                          "displayFullName": full_name(user), "email": user["email"]},
            "createUserViewModel": {"userId": creator["userId"], "name": full_name(creator),
                                    "email": creator["email"]},
            "createts": timestamp(max(created, parse_date(user["userStartDate"])), rng),
        }))
    drafts.sort(key=lambda d: (d[0], d[1]))
    leaves = []
    for n, (_, _, leave) in enumerate(drafts):
        leaves.append(dict({"leaveId": 880001 + n}, **leave))
    return leaves


# ---------------------------------------------------------------------------
# Renderers (one per endpoint shape)
# ---------------------------------------------------------------------------

def full_name(user):
    return "%s %s" % (user["firstName"], user["lastName"])


def _s(value):
    return "" if value is None else str(value)


def supervisor_list_item(boss):
    """§3.4 supervisorModelList[] item as typed in the list model: strings."""
    return {"userId": str(boss["userId"]), "firstName": boss["firstName"],
            "empId": boss["empId"], "lastName": boss["lastName"],
            "middleName": boss["middleName"], "email": boss["email"],
            "displayFullName": full_name(boss), "userStartDate": boss["userStartDate"],
            "locationId": str(boss["locationId"]), "departmentID": str(boss["departmentId"])}


def supervisor_thin_model(boss):
    """UserThinModel (detail shape): int ids."""
    return {"userId": boss["userId"], "firstName": boss["firstName"], "empId": boss["empId"],
            "lastName": boss["lastName"], "middleName": boss["middleName"],
            "email": boss["email"], "displayFullName": full_name(boss),
            "userStartDate": boss["userStartDate"], "locationId": boss["locationId"],
            "departmentID": boss["departmentId"], "status": boss["status"]}


def users_item(ds, user):
    """GET /users item: exactly the §3.4 list fields, scalar values strings."""
    return {
        "cid": str(COMPANY_ID), "userId": str(user["userId"]),
        "firstName": user["firstName"], "shortName": user["shortName"],
        "lastName": user["lastName"], "displayFullName": full_name(user),
        "userStartDate": user["userStartDate"], "email": user["email"],
        "cellPhone": user["cellPhone"], "userName": user["email"],
        "employmentModelList": user["employment"], "educationModelList": [],
        "licenseModelList": [],
        "supervisorModelList": [supervisor_list_item(ds.user(b)) for b in user["supervisors"]],
        "awardModelList": [], "addressModelList": user["addresses"],
        "customFieldValueModelList": user["customFields"],
        "status": user["status"], "gender": user["gender"], "phone": user["phone"],
        "createts": user["createts"], "financialModelList": [],
        "allocation": str(user["allocation"]), "userDisplayName": full_name(user),
        "star": str(user["star"]), "isView": "true",
    }


def basic_item(user):
    """GET /users/basic item (§3.4), all strings."""
    return {
        "userId": str(user["userId"]), "firstName": user["firstName"],
        "lastName": user["lastName"], "name": full_name(user), "phone": user["phone"],
        "email": user["email"], "status": user["status"], "shortName": user["shortName"],
        "timezone": user["timezone"], "userStartDate": user["userStartDate"],
        "cellPhone": user["cellPhone"], "allocation": str(user["allocation"]),
        "userDateFormat": user["userDateFormat"], "star": str(user["star"]),
        "createuserid": str(user["createuserid"]), "cid": str(COMPANY_ID),
        "guid": user["guid"], "hasAccess": "false" if user["status"] == "I" else "true",
    }


def location_model(loc_id):
    loc = LOCATION_BY_ID[loc_id]
    return {"locationId": loc[0], "locationName": loc[1], "locationCode": loc[2],
            "locationLabel": "Office", "locationDescription": "",
            "locationType": "Remote" if loc[0] == 16 else "Office",
            "locationUID": "LOC-%d" % loc[0], "parentLocationId": 0,
            "address": "%s, %s" % (loc[8], loc[4]), "lattitude": "", "longitude": "",
            "status": "A", "workingDays": "MON,TUE,WED,THU,FRI", "cid": COMPANY_ID}


def user_model(ds, user):
    """Full UserModel (GET /user, GET /user/list), typed as models/user-model.ts."""
    unit = ds.unit(user["departmentId"])
    profile_id, profile_name = PROFILES[user["profile"]]
    return {
        "userId": user["userId"], "cid": COMPANY_ID, "empId": user["empId"],
        "guid": user["guid"], "firstName": user["firstName"],
        "middleName": user["middleName"], "lastName": user["lastName"],
        "secondLastName": user["secondLastName"], "shortName": user["shortName"],
        "displayFullName": full_name(user), "userDisplayName": full_name(user),
        "email": user["email"], "userName": user["email"], "cellPhone": user["cellPhone"],
        "phone": user["phone"], "gender": user["gender"],
        "userDateOfBirth": user["userDateOfBirth"], "userStartDate": user["userStartDate"],
        "userEndDate": user["userEndDate"], "status": user["status"],
        "position": user["position"], "jobGrade": user["jobGrade"],
        "workerType": user["workerType"], "departmentName": unit["name"],
        "departmentModel": unit, "locationModel": location_model(user["locationId"]),
        "profileId": profile_id, "profileName": profile_name,
        "timezone": user["timezone"], "userCountry": user["userCountry"],
        "userDateFormat": user["userDateFormat"],
        "allocation": user["allocation"], "star": user["star"], "isView": True,
        "hasAccess": user["status"] != "I",
        "supervisorModelList": [supervisor_thin_model(ds.user(b)) for b in user["supervisors"]],
        "reportsToListMap": {str(b): full_name(ds.user(b)) for b in user["supervisors"]},
        "customFieldValueModelList": user["customFields"],
        "addressModelList": user["addresses"], "employmentModelList": user["employment"],
        "educationModelList": [], "licenseModelList": [], "awardModelList": [],
        "financialModelList": [],
        "createts": user["createts"], "lastupdatets": user["lastupdatets"],
    }


def resource_item(ds, user):
    """GET /resource data item (§3.4), strings; resourceId = userId (PLAUSIBLE)."""
    unit = ds.unit(user["departmentId"])
    return {
        "resourceId": str(user["userId"]), "name": full_name(user),
        "position": user["position"], "assignments": "0",
        "allocation": str(user["allocation"]), "startDate": user["userStartDate"],
        "endDate": user["userEndDate"], "workerType": user["workerType"],
        "location": LOCATION_BY_ID[user["locationId"]][1], "timeZone": user["timezone"],
        "notes": "", "emailAddress": user["email"], "phone": user["phone"], "im": "",
        "dateOfBirth": user["userDateOfBirth"], "gender": user["gender"], "imageName": "",
        "customFieldList": user["customFields"], "department": unit["name"],
        "departmentLabel": unit["departmentLabel"],
        "profileName": PROFILES[user["profile"]][1],
        "userReporterList": {str(b): full_name(ds.user(b)) for b in user["supervisors"]},
        "empId": user["empId"],
    }


# ---------------------------------------------------------------------------
# The provider
# ---------------------------------------------------------------------------

# /<route>, /api/<route>, /rm/api/<route>, /rm/api/api/<route>; /rm/resource.
PREFIX = re.compile(r"^(?:/rm/api/api|/rm/api|/api|/rm(?=/resource(?:/|$)))?(?P<rest>/.*)$")


class ApiError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.response = message_response(status, message)


def message_response(status, message):
    """ClayHR error body (§3.6): {"message": "..."}."""
    return common.json_response({"message": message}, status)


def no_content():
    """204 No Content: empty body, no Content-Type (common adds Content-Length: 0)."""
    return common.Response(204, b"")


class ClayHR(common.Provider):
    """ClayHR sandbox provider."""

    name = "clayhr"

    @staticmethod
    def add_arguments(parser):
        parser.add_argument("--api-key", action="append", dest="api_keys", metavar="KEY",
                            help="accepted API key (repeatable; default %s)" % DEFAULT_API_KEY)
        parser.add_argument("--user-id", action="append", dest="user_ids", type=int,
                            metavar="N",
                            help="user id the key belongs to (default %d); one for all keys, "
                                 "or one per --api-key in the same order" % DEFAULT_USER_ID)
        parser.add_argument("--status-lists", action="store_true",
                            help="accept comma lists such as status=A,I,F (default: one value)")
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="data set seed")
        parser.add_argument("--today", default=DEFAULT_TODAY,
                            help="the sandbox's fixed 'today' (YYYY-MM-DD)")

    def __init__(self, args):
        super().__init__(args)
        keys = args.api_keys or [DEFAULT_API_KEY]
        uids = args.user_ids or [DEFAULT_USER_ID]
        if len(uids) == 1:
            uids = uids * len(keys)
        if len(uids) != len(keys):
            raise SystemExit("give one --user-id, or one per --api-key")
        self.owners = dict(zip(keys, uids))          # key -> user id
        if parse_date(args.today) is None:
            raise SystemExit("--today must be YYYY-MM-DD")
        self.status_lists = args.status_lists
        self.ds = generate_dataset(seed=args.seed, today=args.today)
        self.router = self._build_router()

    def _build_router(self):
        r = common.Router()
        r.add("GET", "/token", self.get_token)
        r.add("GET", "/users", self.get_users)
        r.add("GET", "/users/basic", self.get_users_basic)
        r.add("GET", "/resource", self.get_resource)
        r.add("GET", "/user", self.get_user)
        r.add("GET", "/user/list", self.get_user_list)
        r.add("GET", "/user/basic", self.get_user_basic)
        r.add("GET", "/user/compensation", self.get_compensation)
        r.add("GET", "/orgunits", self.get_orgunits)
        r.add("GET", "/leaverequests", self.get_leave_requests)
        r.add("GET", "/jobprofiles", self.get_job_profiles)
        r.add("GET", "/ptopolicies", self.get_pto_policies)
        return r

    # -- dispatch, auth --

    def handle(self, req):
        path = unquote(PREFIX.match(req.path).group("rest"))
        if len(path) > 1:
            path = path.rstrip("/")
        caller = self.authenticate(req)
        if caller is None:
            return message_response(401, "Unauthorized")
        req.context["user_id"] = caller
        handler, params = self.router.match(req.method, path)
        if handler is None:
            return message_response(params, "Not Found" if params == 404 else "Method Not Allowed")
        req.params = params
        try:
            return handler(req)
        except ApiError as err:
            return err.response

    def authenticate(self, req):
        """The caller's user id, or None. Primary: `x-api-key` + `userid`
        headers. Legacy (§3.2): `Authorization: {"userId": N, "apiKey": K}`,
        or `Authorization: {"x-API-key": K}` with the `userid` header."""
        key = req.header("x-api-key")
        uid = req.header("userid")
        if key is None:
            legacy = self._legacy_authorization(req.header("Authorization"))
            key = legacy.get("apiKey", legacy.get("x-API-key"))
            if "userId" in legacy:
                uid = legacy["userId"]
        if not isinstance(key, str) or key.strip() not in self.owners:
            return None
        owner = self.owners[key.strip()]
        if isinstance(uid, bool) or not isinstance(uid, (str, int)):
            return None
        uid = str(uid).strip()
        if not uid.isdigit() or int(uid) != owner:
            return None
        return owner

    @staticmethod
    def _legacy_authorization(value):
        if not value or not value.strip().startswith("{"):
            return {}
        try:
            data = json.loads(value)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def fault_response(self, req, status, retry_after):
        """PLAUSIBLE: throttling and outages answer ClayHR's {"message"} body."""
        text = {429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
                503: "Service Unavailable", 504: "Gateway Timeout"}.get(status, "Error")
        resp = message_response(status, text)
        if retry_after is not None:
            resp.header("Retry-After", retry_after)
        return resp

    # -- parameters --

    @staticmethod
    def int_param(req, name, default, low, high):
        raw = req.arg(name)
        if raw is None or raw == "":
            return default
        if not re.fullmatch(r"\d{1,9}", raw.strip()):
            raise ApiError(400, "Invalid value '%s' for parameter '%s'" % (raw, name))
        value = int(raw)
        if value < low or (high is not None and value > high):
            if high is None:
                raise ApiError(400, "Parameter '%s' must be at least %d" % (name, low))
            raise ApiError(400, "Parameter '%s' must be between %d and %d" % (name, low, high))
        return value

    def one_of(self, req, name, allowed, default):
        """A single enum value (PLAUSIBLE: comma lists are a 400 unless
        --status-lists); returns a set."""
        raw = req.arg(name)
        if raw is None or raw == "":
            return {default}
        values = raw.split(",") if self.status_lists else [raw]
        if any(v not in allowed for v in values):
            raise ApiError(400, "Invalid value '%s' for parameter '%s' (one of %s)"
                           % (raw, name, ", ".join(allowed)))
        return set(values)

    @staticmethod
    def date_param(req, name, required=False):
        raw = req.arg(name)
        if raw is None or raw == "":
            if required:
                raise ApiError(400, "Required parameter '%s' is missing" % name)
            return None
        if parse_date(raw) is None:
            raise ApiError(400, "Invalid date '%s' for parameter '%s' (yyyy-MM-dd)" % (raw, name))
        return raw

    def filtered_users(self, req, with_search=True):
        """Users matching status, name, search and the date filters (§3.3)."""
        statuses = self.one_of(req, "status", STATUSES, "A")
        name = fold(req.arg("name"))
        search = fold(req.arg("search")) if with_search else ""
        dates = {}
        if with_search:
            for key in ("startDateBefore", "startDateAfter", "endDateBefore", "endDateAfter"):
                dates[key] = self.date_param(req, key)
        out = []
        for user in self.ds.users:
            if user["status"] not in statuses:
                continue
            if name and name not in fold(full_name(user)):
                continue
            if search and not self._search_hit(user, search):
                continue
            if not self._dates_match(user, dates):
                continue
            out.append(user)
        return out

    @staticmethod
    def _search_hit(user, term):
        if term == str(user["userId"]):
            return True
        return any(term in fold(user[k]) for k in ("firstName", "lastName", "email", "empId")) \
            or term in fold(full_name(user))

    @staticmethod
    def _dates_match(user, dates):
        start, end = user["userStartDate"], user["userEndDate"]
        if dates.get("startDateBefore") and not start < dates["startDateBefore"]:
            return False
        if dates.get("startDateAfter") and not start > dates["startDateAfter"]:
            return False
        if dates.get("endDateBefore") and not (end and end < dates["endDateBefore"]):
            return False
        if dates.get("endDateAfter") and not (end and end > dates["endDateAfter"]):
            return False
        return True

    def page_of(self, req, users):
        page = self.int_param(req, "page", 1, 1, None)
        size = self.int_param(req, "pageSize", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
        first = (page - 1) * size
        return users[first:first + size]

    def user_or_404(self, uid):
        user = self.ds.user(uid)
        if user is None:
            raise ApiError(404, "User not found")
        return user

    def user_by_email(self, email):
        wanted = fold(email.strip())
        for user in self.ds.users:
            if fold(user["email"]) == wanted:
                return user
        raise ApiError(404, "User not found")

    # -- handlers --

    def get_token(self, req):
        key = req.header("x-api-key") or ""
        digest = hashlib.sha256(("clayhr-sandbox|%s|%s" % (key, req.context["user_id"]))
                                .encode("utf-8")).hexdigest()
        return common.json_response({"accessToken": digest})

    def get_users(self, req):
        page = self.page_of(req, self.filtered_users(req))
        if not page:
            return no_content()
        return common.json_response([users_item(self.ds, u) for u in page])

    def get_users_basic(self, req):
        page = self.page_of(req, self.filtered_users(req))
        if not page:
            return no_content()
        return common.json_response([basic_item(u) for u in page])

    RESOURCE_SORT = {"name": lambda u: fold(full_name(u)),
                     "startDate": lambda u: u["userStartDate"],
                     "empId": lambda u: u["empId"], "resourceId": lambda u: u["userId"],
                     "position": lambda u: fold(u["position"])}

    def get_resource(self, req):
        sort_by = req.arg("sortBy") or "name"
        if sort_by not in self.RESOURCE_SORT:
            raise ApiError(400, "Invalid value '%s' for parameter 'sortBy'" % sort_by)
        order = req.arg("sortOrder") or "asc"
        if order not in ("asc", "desc"):
            raise ApiError(400, "Invalid value '%s' for parameter 'sortOrder'" % order)
        users = self.filtered_users(req, with_search=False)
        key = self.RESOURCE_SORT[sort_by]
        users = sorted(users, key=lambda u: (key(u), u["userId"]), reverse=(order == "desc"))
        data = [resource_item(self.ds, u) for u in self.page_of(req, users)]
        return common.json_response({"code": "200", "data": data, "message": "Success"})

    def get_user(self, req):
        return common.json_response(user_model(self.ds, self.user_or_404(req.context["user_id"])))

    def get_user_list(self, req):
        """PLAUSIBLE: every user (all statuses), full UserModel, unpaginated.
        `name` matches an exact userId, empId or email, else a case-insensitive
        substring of "first last"."""
        term = (req.arg("name") or "").strip()
        if not term:
            users = self.ds.users
        else:
            wanted = fold(term)
            users = [u for u in self.ds.users
                     if wanted in (str(u["userId"]), fold(u["empId"]), fold(u["email"]))
                     or wanted in fold(full_name(u))]
        return common.json_response([user_model(self.ds, u) for u in users])

    def get_user_basic(self, req):
        email = req.arg("email")
        if not email:
            raise ApiError(400, "Required parameter 'email' is missing")
        return common.json_response(basic_item(self.user_by_email(email)))

    def get_compensation(self, req):
        email = req.arg("email")
        user = (self.user_by_email(email) if email
                else self.user_or_404(req.context["user_id"]))
        return common.json_response(self.ds.compensation[user["userId"]])

    def get_orgunits(self, req):
        return common.json_response(self.ds.units)

    def get_leave_requests(self, req):
        """PLAUSIBLE: bare array, overlap semantics (a leave is in the range
        when it ends on/after startDate and starts on/before endDate)."""
        start = self.date_param(req, "startDate", required=True)
        end = self.date_param(req, "endDate", required=True)
        if end < start:
            raise ApiError(400, "endDate must not be before startDate")
        user_id = self.int_param(req, "leaveUserid", 0, 0, None)
        statuses = self.one_of(req, "status", LEAVE_STATUSES, "AP")
        leaves = [leave for leave in self.ds.leaves
                  if leave["endDate"] >= start and leave["date"] <= end
                  and leave["status"] in statuses
                  and (user_id == 0 or leave["userId"] == user_id)]
        return common.json_response(leaves)

    def get_job_profiles(self, req):
        return common.json_response(self.ds.job_profiles)

    def get_pto_policies(self, req):
        return common.json_response([
            {"ptoPolicyId": p[0], "policyName": p[1], "leaveType": p[2], "unit": p[3],
             "paid": p[4], "halfDayAllowed": 1 if p[3] == "days" else 0,
             "isAccrued": "true" if p[0] in (301, 302) else "false", "cid": COMPANY_ID}
            for p in PTO_POLICIES])


def main(argv=None):
    common.serve(ClayHR, argv, "ClayHR sandbox provider")


if __name__ == "__main__":
    main()
