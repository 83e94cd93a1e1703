#!/usr/bin/env python3
"""PeopleHR sandbox provider.

    python3 sandbox/peoplehr.py --port 9103 [--api-key KEY ...] [--rate-limit N]
        [--rate-limit-mode envelope|429] [--rate-window SECONDS]
        [--no-records-is-error] [--seed N] [--today YYYY-MM-DD] [--verbose]

Behaves like the PeopleHR API (api.peoplehr.net, "v3.1") described in
shared/reference/providers-peoplehr-heavenhr-clayhr.md part 1 (sections
1.1-1.10 below). A gateway account whose base_url is http://127.0.0.1:PORT
stands for https://api.peoplehr.net, so requests go to {base_url}/Employee,
{base_url}/Holiday, ...

Protocol (1.1-1.4, 1.7)
-----------------------
* RPC over HTTP: always POST, JSON body (Content-Type application/json or
  text/json), `APIKey` and `Action` in the body; the Action picks the
  operation. Paths are served with and without a trailing slash.
* Every answer on these routes is HTTP 200 with the envelope
  {"isError": bool, "Status": int, "Message": str, "Result": ...},
  application errors included (isError true, Result {}); the only other
  statuses are 404 (unknown path), 429 (--rate-limit-mode 429) and the
  fault switches of common.py.
* Booleans (IncludeLeavers, IsIncludeHistory) are accepted as strings
  ("true", "False", ...) or JSON booleans. Anything else: Status 5
  "<Field> contains invalid data.".

Webhooks (1.9)
--------------
  The listener URL of Settings -> API is --webhook-url or POST
  /_sandbox/webhooks/listener {"url"}; AddNewHoliday posts an ActionId 4
  packet (JSON of the documented Field:Value pairs, PLAUSIBLE), once, no
  authentication, no retry. /_sandbox/webhooks/fire sends ActionIds 1-9 and
  18. Class Webhooks below; details in sandbox/README.md.

Routes and actions
------------------
  POST /Employee  GetAllEmployeeDetail    IncludeLeavers (optional, default false)
                                          -> Result: [employee, ...] (all, no paging)
                  GetEmployeeDetailById   EmployeeId -> Result: employee (object,
                                          history arrays filled)
                  GetCompanyInformation   -> Result: {CompanyId, SubDomain, CompanyName}
  POST /Holiday   GetHolidayDetail        EmployeeId, optional StartDate/EndDate
  POST /Absence   GetAbsenceDetail        EmployeeId, StartDate, EndDate (required)
  POST /Salary    GetSalaryDetail         EmployeeId, IsIncludeHistory (required)
  POST /Benefit   GetBenefitByEmployeeId  EmployeeId

Success messages (exact, per endpoint, 1.4):
  "The request processed successfully."    Employee, Benefit
  "The requested processed successfully."  Holiday, Salary, Absence (Absence: PLAUSIBLE)

Errors (HTTP 200, isError true, Result {}), checked in this order:
  body empty / not JSON content type  Status 7 "No json data found."
  unparseable JSON / not an object    Status 9 "Invalid json data."
  APIKey absent or ""                 Status 1 "API key is missing."
  APIKey unknown                      Status 2 "Invalid API Key."
  Action absent                       Status 3 "Action is missing."
  Action ""                           Status 4 "Action cannot be empty."
  Action unknown for this resource    Status 4 "Invalid Action."
  EmployeeId absent / "" / too long   Status 5 "EmployeeId is missing." /
                                      "EmployeeId cannot be empty." /
                                      "EmployeeId contains more than 15 characters."
  EmployeeId unknown                  Status 5 "EmployeeId does not exists."
  StartDate / EndDate                 Status 5 "StartDate is missing." (Absence),
                                      "StartDate cannot be empty.", "StartDate contains
                                      invalid data.", "StartDate should be before to EndDate."
                                      (same for EndDate)
  IsIncludeHistory absent             Status 5 "IsIncludeHistory is missing."
  no records (holidays, absences, benefits, salary)
                                      Status 10 "No records found." with isError false
                                      and Result [] (isError true with --no-records-is-error)

Rate limit (1.7): a sliding window of --rate-window seconds (default 60) per
client IP over every provider call (any path, any outcome), --rate-limit N
calls (default 30, 0 = off). Only calls that were let through count. Over the
limit:
  envelope mode (default): HTTP 200
      {"isError": true, "Status": 6,
       "Message": "API calls will be limited to a 30 per minute", "Result": []}
      and no Retry-After;
  429 mode: HTTP 429 with the same JSON body and Retry-After (seconds until
      the oldest call in the window expires), for testing the gateway's retry
      path.
Control endpoints (/_sandbox/...) are never limited. POST /_sandbox/reset
also empties the rate-limit windows. Fault switches act before the limit: a
faulted call is not counted, except `slow` and `truncated*`, which run the
handler. common.Request has no client address, so main() installs a
SandboxHandler subclass (this process only) that puts the peer IP in
req.context["client_ip"].

Data set (deterministic: same --seed/--today, byte-identical answers)
--------------------------------------------------------------------
generate_dataset(seed, today) builds it; other code may import it. With the
defaults (seed 20260601, today 2026-06-01):
* 300 employees, EmployeeIds "PW1".."PW447", strings, not contiguous
  (PW1..PW8, PW11, PW12, PW13, PW16, ...; they cross 10 and 100, so a string
  sort differs), listed in creation order. One rehire, "PW83-2": the leaver
  PW83 (same name) back with a new record, listed after PW348.
* 30 leavers (LeavingDate before today, EmployeeStatus "0"), left out of
  GetAllEmployeeDetail unless IncludeLeavers: 270 employees without, 300
  with leavers. Leavers: PW64 PW75 PW83 PW88 PW100 PW104 PW106 PW114 PW129
  PW130 PW151 PW157 PW162 PW168 PW184 PW233 PW249 PW251 PW260 PW277 PW282
  PW308 PW313 PW329 PW353 PW384 PW399 PW403 PW415 PW443.
  Pending leavers (LeavingDate after today, EmployeeStatus "1", listed as
  current): PW210 (2026-07-07), PW347 (2026-07-05). Future starters
  (StartDate after today, listed): PW248 (2026-08-24), PW413 (2026-08-18).
* PW1 Margaret "Maggie" Thornton is the CEO and reports to nobody
  (ReportsTo* ""); everybody else reports to one of the first 30 employees
  (never a leaver). Unicode names at fixed ids: PW2 José García, PW3 Zoë
  Müller, PW4 Björn Ødegaard, PW5 Siobhán O'Brien, PW6 Łukasz Wiśniewski.
* Departments include "R&D"; companies "Sandbox Trading Ltd" (GBP £),
  "Sandbox Trading Ireland Ltd" (Dublin, €), "Sandbox Trading Inc." (New
  York, $). Salary currency symbols follow the location.
* APIColumn1 = "EXT-<5 digits>" for most, APIColumn2 a cost centre for some,
  APIColumn3/4 occasionally set, APIColumn5 always "".
* Holidays: 0-6 per employee, 2025-01-01..2026-12-31, within employment,
  never overlapping; AnnualLeaveTxnId ints from 139400001; DurationType 1
  (days, possibly starting PM / ending AM), 2 (hours), 3 (half day AM/PM);
  Status "Approved", "Pending", "Declined". 773 holidays in all; 60
  employees have none (Status 10): about one in seven (e.g. PW5, PW16,
  PW26, PW34, PW43), the future starters and leavers gone before 2025.
  PW4 has three: 2025-04-11 (hours, Declined), 2025-06-23..25 (3.00 days,
  Approved), 2026-08-17..19 (Pending).
* Absences: 245, 0-3 per employee in the same window (172 employees have
  none, e.g. PW6, PW8, PW13), AbsenceLeaveTxnId ints from 2964100,
  DurationDays strings "1.00". PW1 has three.
* Salary: 588 rows, 1-3 per employee (history), SalaryAmount strings with 4
  decimals, SalaryType "Annual" (PW2: "Monthly"), PaymentFrequency
  "Monthly", "Weekly", "Four Weekly". PW4 has three rows; PW200 and PW25,
  PW290 have a raise dated 2026-08-01 (after today). Currency: PW5
  (Dublin) "€", PW7 (New York) "$", otherwise mostly "£".
* Benefits: 338, 0-3 per employee (PW1 and PW4 have none, PW2 two),
  BenefitId ints from 12600001, Value numbers.
* GetEmployeeDetailById history: PW7 was promoted (two job-role entries),
  PW6 changed last name, PW17 moved location.

PLAUSIBLE choices (the reference does not settle them)
------------------------------------------------------
* Status 10 has isError false and Result [] (configurable); errors carry
  Result {}; the throttled answer (Status 6, message, Result [], HTTP 200,
  no Retry-After) and the whole 429 mode; rejected calls do not count
  against the window.
* Action names, body keys (apikey, employeeid, ...) and resource paths
  (/employee) are matched case-insensitively (ASP.NET routing and JSON.NET
  binding are case-insensitive); EmployeeId lookup is case-insensitive too
  and numbers are accepted as ids.
* Non-POST methods get the envelope Status 7 "No json data found." (HTTP
  200), as the reference suggests; a body whose Content-Type is set but is
  neither application/json nor text/json likewise (a missing Content-Type is
  tolerated). Unknown paths: HTTP 404 with an IIS-like HTML page.
* Known write actions (CreateNewEmployee, UpdateHoliday, ...) and other
  real actions the sandbox does not implement answer Status 5 "API Key does
  not have access to this action." (the sandbox keys cannot write but
  AddNewHoliday).
* AddNewHoliday (1.4.2, 1.8): EmployeeId, DurationType (1 days, 2 hours,
  3 half day), StartDate, EndDate, DurationInDays and DurationInMinutes
  required (Status 5 "<name> is missing." / "... contains invalid data.");
  PartOfDay and Comments optional. A holiday of the employee that is not
  Declined and overlaps the dates: Status 5 "Holiday already exists for
  the given dates.". Success: HTTP 200 {"isError": false, "Status": 0,
  "Message": "Holiday added successfully.", "Result": {"AnnualLeaveTxnId":
  N}} (the fleet reference's shape; the peoplehr reference says write
  results are {}), N one above the highest; the holiday is Pending, its
  Approver the employee's manager, and GetHolidayDetail lists it. A
  DurationInMinutes of 0 is taken as DurationInDays working days of 450
  minutes. The messages, the overlap rule and the minutes are PLAUSIBLE.
  POST /_sandbox/reset also brings the data set back.
* The Absence success message ("The requested processed successfully.").
* EmployeeStatus "0" for leavers whose LeavingDate has passed ("1"
  otherwise); history order (newest first); salary history newest first and
  "current" salary = the latest row effective on or before today (or the
  first row if none is); DurationInDaysThisPeriod = the part inside the
  requested StartDate..EndDate (the whole duration without a range);
  holidays and absences are selected by overlap with that range;
  GetHolidayDetail accepts StartDate or EndDate alone (open range).
* Absence MedicalCertificateType 1/2/3 and AbsencePaidStatus 1 (paid) /
  2 (unpaid); Deduction/Entitlement value formats; IncludeInTotalSalary
  "True"/"False"; RightToWork entries on some employees; bank details empty.
* A working day is 7.5 hours (DurationInMinutes = 450 per day).
"""

import collections
import datetime
import json
import math
import os
import random
import re
import sys
import threading
import time
import unicodedata
import uuid
from urllib.parse import urlencode

# Import the shared server from this directory without leaving a
# __pycache__ behind in the source tree.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (needs the path above)
import webhooks  # noqa: E402

DEFAULT_API_KEY = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
DEFAULT_SEED = 20260601
DEFAULT_TODAY = "2026-06-01"       # fixed, so answers never depend on the clock
DEFAULT_RATE_LIMIT = 30            # calls per window per client IP (1.7)
DEFAULT_RATE_WINDOW = 60.0         # seconds
EMPLOYEE_COUNT = 300
LEAVER_COUNT = 30
MANAGER_COUNT = 30
CALENDAR_WINDOW = ("2025-01-01", "2026-12-31")
MINUTES_PER_DAY = 450              # PLAUSIBLE: a 7.5 h working day
MAX_EMPLOYEE_ID = 15               # "EmployeeId contains more than 15 characters."

MSG_REQUEST = "The request processed successfully."
MSG_REQUESTED = "The requested processed successfully."
MSG_NO_RECORDS = "No records found."

COMPANY_INFORMATION = {"CompanyId": 40123, "SubDomain": "sandboxtrading",
                       "CompanyName": "Sandbox Trading Ltd"}

# ---------------------------------------------------------------------------
# Reference lists
# ---------------------------------------------------------------------------

# name -> (company, currency symbol, address, work phone prefix, nationality pool)
LOCATIONS = {
    "Head Office": ("Sandbox Trading Ltd", "£", "1 Finsbury Square, London EC2A 1AE",
                    "020 7946 0"),
    "Manchester": ("Sandbox Trading Ltd", "£", "20 Piccadilly, Manchester M1 1LS",
                   "0161 496 0"),
    "Edinburgh": ("Sandbox Trading Ltd", "£", "5 Princes Street, Edinburgh EH2 2AN",
                  "0131 496 0"),
    "Remote (UK)": ("Sandbox Trading Ltd", "£", "", ""),
    "Dublin": ("Sandbox Trading Ireland Ltd", "€", "2 Grand Canal Quay, Dublin D02 A342",
               "01 555 0"),
    "New York": ("Sandbox Trading Inc.", "$", "200 Park Avenue, New York, NY 10166",
                 "212 555 0"),
}
LOCATION_WEIGHTS = {"Head Office": 40, "Manchester": 18, "Edinburgh": 10, "Remote (UK)": 12,
                    "Dublin": 12, "New York": 8}

# department -> [(job role, salary band low, high)], junior first
JOB_ROLES = {
    "R&D": [("Software Engineer", 38000, 60000), ("Senior Software Engineer", 60000, 85000),
            ("QA Engineer", 32000, 50000), ("DevOps Engineer", 50000, 75000),
            ("Engineering Manager", 80000, 105000)],
    "Sales": [("Sales Executive", 26000, 38000), ("Account Manager", 34000, 52000),
              ("Business Development Manager", 45000, 65000), ("Head of Sales", 80000, 110000)],
    "Marketing": [("Marketing Executive", 26000, 36000), ("Content Writer", 28000, 40000),
                  ("Marketing Manager", 45000, 62000)],
    "Customer Services": [("Customer Service Advisor", 22000, 27000),
                          ("Team Leader", 28000, 35000),
                          ("Customer Services Manager", 38000, 50000)],
    "Finance": [("Finance Assistant", 24000, 30000), ("Accountant", 38000, 55000),
                ("Financial Controller", 60000, 80000)],
    "HR": [("HR Assistant", 23000, 28000), ("HR Advisor", 30000, 40000),
           ("Recruiter", 30000, 45000), ("HR Manager", 48000, 65000)],
    "Operations": [("Facilities Assistant", 21000, 25000),
                   ("Operations Coordinator", 26000, 33000), ("Office Manager", 32000, 42000)],
    "IT": [("IT Support Analyst", 25000, 34000), ("Systems Administrator", 38000, 52000)],
    "Executive": [("Chief Executive Officer", 150000, 150000),
                  ("Chief Operating Officer", 130000, 130000),
                  ("Finance Director", 120000, 120000)],
}
DEPARTMENT_WEIGHTS = {"R&D": 30, "Sales": 16, "Marketing": 8, "Customer Services": 18,
                      "Finance": 7, "HR": 6, "Operations": 8, "IT": 7}
EMPLOYMENT_TYPE_WEIGHTS = {"Full Time": 72, "Part Time": 14, "Fixed Term": 8, "Contractor": 6}
NATIONALITIES = {"British": 60, "Irish": 8, "Polish": 6, "Spanish": 4, "French": 4,
                 "German": 3, "Indian": 6, "American": 5, "Nigerian": 2, "Brazilian": 2}

FIRST_NAMES = {
    "Female": ["Amelia", "Olivia", "Isla", "Ava", "Emily", "Sophie", "Grace", "Chloe", "Lucy",
               "Hannah", "Katherine", "Elizabeth", "Charlotte", "Priya", "Aisha", "Fatima",
               "Niamh", "Aoife", "Zofia", "Lucía", "Chloé", "Renée", "Ingrid", "Mei",
               "Rebecca", "Laura", "Sarah", "Jessica", "Megan", "Ellie", "Freya", "Anaïs"],
    "Male": ["Oliver", "George", "Harry", "Jack", "Jacob", "Noah", "Charlie", "Thomas",
             "William", "James", "Alexander", "Robert", "Jonathan", "Daniel", "Mohammed",
             "Arjun", "Ciarán", "Seán", "Tomasz", "Mateo", "François", "Søren", "Kwame",
             "Samuel", "Joseph", "Ethan", "Ryan", "Liam", "Callum", "Dmitri", "Matthew"],
}
LAST_NAMES = [
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Robinson",
    "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Wood",
    "Jackson", "Clarke", "Patel", "Khan", "Singh", "Murphy", "Kelly", "O'Connor", "Byrne",
    "Nowak", "Kowalski", "Fernández", "Dubois", "Schäfer", "Nguyen", "Okafor", "Campbell",
    "Stewart", "MacDonald", "Hughes", "Edwards", "Lewis", "Harris", "Martin", "Cooper",
    "Ward", "Morris", "King", "Baker", "Turner", "Parker", "Bennett", "Ó Súilleabháin",
]
NICKNAMES = {"Katherine": "Kate", "Elizabeth": "Liz", "Rebecca": "Becky", "William": "Will",
             "Alexander": "Alex", "Robert": "Rob", "Jonathan": "Jon", "Thomas": "Tom",
             "Matthew": "Matt", "Samuel": "Sam", "Daniel": "Dan", "Margaret": "Maggie"}
MIDDLE_NAMES = ["Anne", "Louise", "Marie", "James", "John", "Edward", "Rose", "Michael"]
# index -> (first, last, gender, department, job role)
FIXED_PEOPLE = {
    0: ("Margaret", "Thornton", "Female", "Executive", "Chief Executive Officer"),
    1: ("José", "García", "Male", "Executive", "Chief Operating Officer"),
    2: ("Zoë", "Müller", "Female", "Executive", "Finance Director"),
    3: ("Björn", "Ødegaard", "Male", "R&D", "Engineering Manager"),
    4: ("Siobhán", "O'Brien", "Female", "HR", "HR Manager"),
    5: ("Łukasz", "Wiśniewski", "Male", "Sales", "Head of Sales"),
}

LEAVING_REASONS = ["Resignation", "Resignation", "Resignation", "Redundancy",
                   "End of Contract", "Dismissal", "Retirement"]
HOLIDAY_REQUESTER_COMMENTS = ["", "", "", "Day off", "Family holiday", "Long weekend",
                              "Wedding", "Moving house", "Dentist", "Trip to Málaga",
                              "Visiting family in Kraków", "Skiing"]
ABSENCE_REASONS = ["Cold/Flu", "Cold/Flu", "Migraine", "Back pain", "Stomach upset",
                   "Medical appointment", "Injury", "Covid-19", "Dental treatment"]
BENEFITS = [  # (name, value choices, recover on termination, custom column)
    ("Private Medical Insurance", (1200, 1450, 2400.5), "No", ("Cover Level", (
        "Employee Only", "Employee + Partner", "Employee + Family"))),
    ("Gym Membership", (360, 480, 600), "No", None),
    ("Cycle to Work", (750, 1000, 1499.99), "Yes", ("Bike Shop", ("Halfords", "Evans Cycles"))),
    ("Life Assurance", (75000, 100000, 150000), "No", None),
    ("Dental Plan", (180, 240), "No", None),
    ("Company Car", (4800, 6000), "Yes", ("Registration", ("AB12 CDE", "XY70 ZZZ",
                                                          "LM21 QRS"))),
    ("Season Ticket Loan", (3200.0, 4500.0, 5400.0), "Yes", None),
]

# Real PeopleHR actions that the sandbox does not implement (writes mostly):
# they answer "no access" (PLAUSIBLE), not "Invalid Action.".
OTHER_ACTIONS = {
    "employee": ["CreateNewEmployee", "UpdateEmployeeDetail", "MarkAsLeaverById",
                 "UpdateEmployeeId", "AddEmployeeImage", "CheckAuthentication"],
    "holiday": ["UpdateHoliday", "DeleteHoliday", "UpdateHolidayReferenceId"],
    "absence": ["AddNewAbsence", "UpdateAbsence", "DeleteAbsence"],
    "salary": ["CreateNewSalary", "DeleteSalary"],
    "benefit": ["GetBenefitByBenefitId", "AddNewBenefit", "UpdateBenefit", "DeleteBenefit"],
}
NO_ACCESS = "API Key does not have access to this action."


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------

DAY = datetime.timedelta(days=1)


def parse_date(text):
    """datetime.date for a strict yyyy-MM-dd string, else None."""
    if not isinstance(text, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return None
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        return None


def weighted(rng, weights):
    """Deterministic weighted choice from a {value: weight} dict."""
    point = rng.randrange(sum(weights.values()))
    for value, weight in weights.items():
        if point < weight:
            return value
        point -= weight
    raise AssertionError("unreachable")


def random_date(rng, first, last):
    return first + datetime.timedelta(days=rng.randrange((last - first).days + 1))


def add_months(day, months):
    month = day.month - 1 + months
    year = day.year + month // 12
    return datetime.date(year, month % 12 + 1, min(day.day, 28))


def next_weekday(day):
    while day.weekday() >= 5:
        day += DAY
    return day


def weekdays(first, last):
    """Working days (Mon-Fri) in first..last inclusive."""
    count, day = 0, first
    while day <= last:
        if day.weekday() < 5:
            count += 1
        day += DAY
    return count


def ascii_slug(text):
    """José -> jose, O'Brien -> obrien (for e-mail addresses)."""
    table = str.maketrans({"Ø": "O", "ø": "o", "Ł": "L", "ł": "l"})
    plain = unicodedata.normalize("NFKD", text.translate(table)).encode("ascii", "ignore")
    return re.sub(r"[^a-z]", "", plain.decode().lower()) or "x"


def money(value):
    """PeopleHR amount string: 4 decimals ("52000.0000")."""
    return "%.4f" % value


class Fixed:
    """A JSON number with a fixed number of decimals (DurationInDays 1.00):
    json.dumps cannot write 1.00, so render() swaps a marker string for it."""

    __slots__ = ("text",)

    def __init__(self, value, places=2):
        self.text = "%.*f" % (places, value)


_FIXED_MARK = "@@fixed:"
_FIXED_RE = re.compile(r'"@@fixed:(-?\d+\.\d+)@@"')


def render(obj):
    """Compact UTF-8 JSON, non-ASCII kept raw, Fixed numbers with their decimals."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"),
                      default=lambda o: _FIXED_MARK + o.text + "@@")
    return _FIXED_RE.sub(r"\1", text).encode("utf-8")


def wrap(value, history=None, key="FieldHistory"):
    """{"DisplayValue": ..., <history key>: [...]} (1.4.1)."""
    return {"DisplayValue": value, key: list(history or [])}


def plain(value):
    """{"DisplayValue": ...} with no history key."""
    return {"DisplayValue": value}


# ---------------------------------------------------------------------------
# Data set generation
# ---------------------------------------------------------------------------

class Dataset:
    """Everything the sandbox serves, employees in their PeopleHR order."""

    def __init__(self, today):
        self.today = today                       # datetime.date
        self.employees = []
        self.by_id = {}                          # upper-cased id -> employee
        self.holidays = {}                       # id -> [record, ...] by StartDate
        self.absences = {}
        self.salaries = {}                       # id -> rows, oldest first
        self.benefits = {}

    def employee(self, eid):
        return self.by_id.get(str(eid).upper())

    def manager(self, emp):
        return self.by_id.get(emp["manager"].upper()) if emp["manager"] else None


def generate_dataset(seed=DEFAULT_SEED, today=DEFAULT_TODAY, employee_count=EMPLOYEE_COUNT):
    """Build the deterministic PeopleHR data set (same arguments, same data)."""
    rng = random.Random(seed)
    today = parse_date(today) if isinstance(today, str) else today
    ds = Dataset(today)
    ids = _employee_ids(rng, employee_count)
    kinds = _employee_kinds(rng, employee_count)
    for index, eid in enumerate(ids):
        emp = _make_employee(rng, index, eid, kinds[index], today)
        ds.employees.append(emp)
    _assign_managers(rng, ds.employees)
    _make_rehire(rng, ds.employees)
    _unique_emails(ds.employees)
    for emp in ds.employees:
        ds.by_id[emp["id"].upper()] = emp
    for emp in ds.employees:
        _make_histories(rng, ds, emp)
    txn = {"holiday": 139400001, "absence": 2964100, "benefit": 12600001}
    for emp in ds.employees:
        busy = []
        ds.holidays[emp["id"]] = _make_holidays(rng, ds, emp, busy, txn)
        ds.absences[emp["id"]] = _make_absences(rng, ds, emp, busy, txn)
        ds.salaries[emp["id"]] = _make_salaries(rng, ds, emp)
        ds.benefits[emp["id"]] = _make_benefits(rng, ds, emp, txn)
    return ds


def _employee_ids(rng, count):
    """PW1, PW2, ... with gaps (deleted records); crosses 10 and 100."""
    ids, current = [], 1
    for index in range(count):
        ids.append("PW%d" % current)
        current += 1 if index < len(FIXED_PEOPLE) else rng.choice((1, 1, 1, 2, 3))
    return ids


def _employee_kinds(rng, count):
    """index -> 'current' | 'leaver' | 'pending' (leaving after today) | 'future'
    (starting after today). The first MANAGER_COUNT are always current."""
    pool = list(range(MANAGER_COUNT, count))
    leavers = set(rng.sample(pool, LEAVER_COUNT))
    rest = [i for i in pool if i not in leavers]
    special = rng.sample(rest, 4)
    kinds = ["current"] * count
    for i in leavers:
        kinds[i] = "leaver"
    kinds[special[0]] = kinds[special[1]] = "pending"
    kinds[special[2]] = kinds[special[3]] = "future"
    return kinds


def _make_employee(rng, index, eid, kind, today):
    """One employee in internal form (employee_record() renders it)."""
    if index in FIXED_PEOPLE:
        first, last, gender, department, role = FIXED_PEOPLE[index]
    else:
        gender = weighted(rng, {"Female": 46, "Male": 46, "Not Specified": 8})
        if gender == "Not Specified":
            pool = FIRST_NAMES["Female" if rng.random() < 0.5 else "Male"]
        else:
            pool = FIRST_NAMES[gender]
        first = pool[rng.randrange(len(pool))]
        last = LAST_NAMES[rng.randrange(len(LAST_NAMES))]
        department = weighted(rng, DEPARTMENT_WEIGHTS)
        roles = JOB_ROLES[department]
        # managers get the senior roles, everybody else mostly junior ones
        role = roles[-1][0] if index < MANAGER_COUNT else roles[
            min(rng.randrange(len(roles)), rng.randrange(len(roles)))][0]
    location = "Head Office" if index < 3 else weighted(rng, LOCATION_WEIGHTS)
    company, currency, address, phone = LOCATIONS[location]
    emp_type = "Full Time" if index < MANAGER_COUNT else weighted(rng, EMPLOYMENT_TYPE_WEIGHTS)

    if kind == "future":
        start = today + datetime.timedelta(days=rng.randrange(10, 90))
    elif index < MANAGER_COUNT:
        start = random_date(rng, datetime.date(2008, 1, 7), datetime.date(2018, 12, 31))
    else:
        start = random_date(rng, datetime.date(2012, 1, 2), today - datetime.timedelta(days=30))
    start = next_weekday(start)
    leaving = ""
    if kind == "leaver":
        leaving = random_date(rng, start + datetime.timedelta(days=90),
                              max(start + datetime.timedelta(days=90), today - DAY)).isoformat()
    elif kind == "pending":
        leaving = (today + datetime.timedelta(days=rng.randrange(5, 60))).isoformat()

    title = {"Female": rng.choice(("Ms", "Mrs", "Miss", "Dr", "Ms")),
             "Male": rng.choice(("Mr", "Mr", "Mr", "Dr")),
             "Not Specified": rng.choice(("Mx", ""))}[gender]
    known_as = NICKNAMES.get(first, "") if rng.random() < 0.7 else ""
    if index == 0:
        known_as = "Maggie"
    dob = "" if index % 19 == 7 else random_date(
        rng, datetime.date(1962, 1, 1), datetime.date(2003, 12, 31)).isoformat()
    nationality = "" if index % 23 == 11 else weighted(rng, NATIONALITIES)
    probation = "" if rng.random() < 0.2 else add_months(start, rng.choice((3, 6))).isoformat()
    allowance = {"Part Time": 15.0, "Contractor": 0.0}.get(emp_type, rng.choice((25.0, 28.0,
                                                                                 30.0)))
    n = index + 1
    emp = {
        "id": eid, "index": index, "kind": kind,
        "title": title, "first": first, "last": last,
        "other": rng.choice(MIDDLE_NAMES) if rng.random() < 0.25 else "",
        "known_as": known_as, "email": None,              # set by _unique_emails
        "start": start.isoformat(), "dob": dob,
        "role": role, "company": company, "location": location, "department": department,
        "currency": currency,
        "manager": "",                                    # set by _assign_managers
        "ni": "" if rng.random() < 0.15 or location == "New York" else "QQ%06d%s" % (
            rng.randrange(1000000), rng.choice("ABCD")),
        "nationality": nationality, "employment_type": emp_type,
        "allowance_days": allowance,
        "notice": rng.choice(("1 Month", "1 Month", "3 Months", "1 Week", "")),
        "probation": probation, "gender": gender,
        "analysis1": rng.choice(("", "", "North", "South", "Central")),
        "analysis2": rng.choice(("", "", "", "Cost Centre 40", "Cost Centre 41")),
        "address": address if index % 13 != 6 else "",
        "work_phone": "" if not phone or index % 5 == 4 else "%s%03d" % (phone, n % 1000),
        "personal_phone": "" if index % 3 else "01632 %06d" % (960000 + n),
        "mobile": "" if index % 7 == 3 else "07700 %06d" % (900000 + n),
        "personal_email": "" if index % 4 == 2 else "%s.%s%d@mail.example" % (
            ascii_slug(first), ascii_slug(last), n),
        "payroll_company": "" if index % 9 == 8 else company,
        "payroll_id": "" if index % 9 == 8 else "P%05d" % (10000 + n),
        "tna_id": "TA%04d" % n if index % 3 == 0 else "",
        "rota_id": "", "crm_id": "",
        "ats_id": "ATS-%d" % (700 + n) if start.year >= 2020 else "",
        "performance_id": "", "benefits_id": "BEN%04d" % n if index % 4 == 0 else "",
        "system_ids": ("", "", ""),
        "recruitment": rng.choice(("", "Referral", "Job Board", "Agency", "LinkedIn", "")),
        "leaving": leaving,
        "leaving_reason": rng.choice(LEAVING_REASONS) if leaving else "",
        "image": "" if index % 6 != 1 else
        "https://sandboxtrading.peoplehr.net/Handlers/ImageHandler.ashx?id=%d" % (5000 + n),
        "api_columns": [
            "" if index % 10 == 9 else "EXT-%05d" % (20000 + n * 7),
            "CC-%d" % (40 + index % 5) if index % 3 != 1 else "",
            "Hybrid" if index % 8 == 0 else "",
            "Ünicode ✓" if index % 50 == 3 else "",
            "",
        ],
        "unique_key": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "right_to_work": _right_to_work(rng, start) if rng.random() < 0.3 else [],
        "history": {},
        # effective dates; _make_histories may move some of them
        "eff": {"company": start.isoformat(), "location": start.isoformat(),
                "department": start.isoformat(), "role": start.isoformat(),
                "reports_to": start.isoformat(), "employment_type": start.isoformat()},
    }
    return emp


def _right_to_work(rng, start):
    doc = rng.choice(("Passport", "Passport", "Biometric Residence Permit", "Share Code"))
    valid_to = "" if doc == "Passport" and rng.random() < 0.5 else add_months(
        start, 12 * rng.choice((2, 3, 5))).isoformat()
    return [{"DocumentType": plain(doc), "DocumentId": plain(""),
             "ValidFrom": plain(start.isoformat()), "ValidTo": plain(valid_to),
             "Duration": plain(""),
             "RightToWorkComments": plain(rng.choice(("Checked in person", "Seen original",
                                                      "")))}]


def _assign_managers(rng, employees):
    """Index 0 (the CEO) reports to nobody; the other managers report to an
    earlier manager, everybody else to one of the first MANAGER_COUNT."""
    for emp in employees[1:]:
        index = emp["index"]
        boss = rng.randrange(0, min(index, 6)) if index < MANAGER_COUNT else \
            rng.randrange(0, MANAGER_COUNT)
        emp["manager"] = employees[boss]["id"]


def _make_rehire(rng, employees):
    """One current employee (index >= 200) is a former leaver who came back:
    same name, id "<old id>-2", started after the old record's LeavingDate."""
    leavers = [e for e in employees if e["kind"] == "leaver" and e["index"] < 200
               and e["leaving"] < "2024-01-01"]
    candidates = [e for e in employees if e["kind"] == "current" and e["index"] >= 200]
    old, new = leavers[0], candidates[rng.randrange(len(candidates))]
    new["id"] = old["id"] + "-2"
    new["first"], new["last"], new["gender"], new["dob"] = (old["first"], old["last"],
                                                            old["gender"], old["dob"])
    new["title"], new["known_as"] = old["title"], old["known_as"]
    back = next_weekday(parse_date(old["leaving"]) + datetime.timedelta(days=200))
    new["start"] = back.isoformat()
    for key in new["eff"]:
        new["eff"][key] = new["start"]
    if new["probation"]:
        new["probation"] = add_months(back, 3).isoformat()
    new["rehire_of"] = old["id"]


def _unique_emails(employees):
    seen = set()
    for emp in employees:
        local = "%s.%s" % (ascii_slug(emp["first"]), ascii_slug(emp["last"]))
        candidate, n = local, 1
        while candidate in seen:
            n += 1
            candidate = "%s%d" % (local, n)
        seen.add(candidate)
        emp["email"] = "%s@sandboxtrading.example" % candidate


def full_name(emp):
    return "%s %s" % (emp["first"], emp["last"]) if emp else ""


def _make_histories(rng, ds, emp):
    """History entries served by GetEmployeeDetailById (the list has [] only,
    as PeopleHR deprecated history there). Newest first (PLAUSIBLE)."""
    start = parse_date(emp["start"])
    today = ds.today
    hist = emp["history"]
    changed = lambda day: min(day + datetime.timedelta(days=rng.randrange(0, 5)),
                              today).isoformat()
    roles = [r[0] for r in JOB_ROLES[emp["department"]]]
    # A promotion: an earlier, more junior role.
    if emp["department"] != "Executive" and roles.index(emp["role"]) > 0 and \
            start < today - datetime.timedelta(days=400) and rng.random() < 0.6:
        last_day = parse_date(emp["leaving"]) if emp["kind"] == "leaver" else today
        when = random_date(rng, start + datetime.timedelta(days=180),
                           max(start + datetime.timedelta(days=180),
                               last_day - datetime.timedelta(days=30)))
        when = next_weekday(when)
        previous = roles[roles.index(emp["role"]) - 1]
        emp["eff"]["role"] = when.isoformat()
        hist["JobRole"] = [
            {"JobRole": emp["role"], "EffectiveDate": when.isoformat(),
             "ChangedOn": changed(when), "ReasonForChange": "Promotion"},
            {"JobRole": previous, "EffectiveDate": emp["start"],
             "ChangedOn": emp["start"], "ReasonForChange": "New Starter"},
        ]
    else:
        hist["JobRole"] = [{"JobRole": emp["role"], "EffectiveDate": emp["start"],
                            "ChangedOn": emp["start"], "ReasonForChange": "New Starter"}]
    for field, key, reason in (("Location", "location", "Relocation"),
                               ("Department", "department", "Restructure")):
        entries = [{"FieldData": emp[key], "EffectiveDate": emp["start"],
                    "ChangedOn": emp["start"], "ReasonForChange": "New Starter"}]
        if key == "location" and emp["location"] != "Head Office" and rng.random() < 0.15 \
                and start < today - datetime.timedelta(days=400):
            when = next_weekday(random_date(rng, start + datetime.timedelta(days=120),
                                            today - datetime.timedelta(days=60)))
            if not emp["leaving"] or when.isoformat() < emp["leaving"]:
                emp["eff"]["location"] = when.isoformat()
                entries = [{"FieldData": emp[key], "EffectiveDate": when.isoformat(),
                            "ChangedOn": changed(when), "ReasonForChange": reason},
                           dict(entries[0], FieldData="Head Office")]
        hist[field] = entries
    boss = ds.manager(emp)
    hist["ReportsTo"] = [{"FieldData": full_name(boss), "EffectiveDate": emp["start"],
                          "ChangedOn": emp["start"], "ReasonForChange": "New Starter"}] \
        if boss else []
    hist["Company"] = [{"FieldData": emp["company"], "EffectiveDate": emp["start"],
                        "ChangedOn": emp["start"], "ReasonForChange": "New Starter"}]
    hist["EmploymentType"] = [{"FieldData": emp["employment_type"],
                               "EffectiveDate": emp["start"], "ChangedOn": emp["start"],
                               "ReasonForChange": "New Starter"}]
    # A name change for a few (marriage).
    if emp["index"] % 17 == 5 and start < today - datetime.timedelta(days=400):
        when = random_date(rng, start + datetime.timedelta(days=100),
                           today - datetime.timedelta(days=30))
        old_last = LAST_NAMES[(emp["index"] * 7) % len(LAST_NAMES)]
        if old_last != emp["last"]:
            hist["LastName"] = [{"OldValue": old_last, "NewValue": emp["last"],
                                 "ChangedOn": when.isoformat(), "ReasonForChange": "Marriage"}]


# -- employee record (1.4.1) --

def employee_record(ds, emp, with_history):
    """The employee object exactly in the shape of GetAllEmployeeDetail.
    with_history: GetEmployeeDetailById fills the history arrays."""
    h = emp["history"] if with_history else {}
    boss = ds.manager(emp)
    eff = emp["eff"]
    leaver = bool(emp["leaving"]) and emp["leaving"] < ds.today.isoformat()
    days = emp["allowance_days"]
    return {
        "EmployeeId": wrap(emp["id"]),
        "Title": wrap(emp["title"]),
        "FirstName": wrap(emp["first"]),
        "LastName": wrap(emp["last"], h.get("LastName")),
        "OtherName": wrap(emp["other"]),
        "KnownAs": wrap(emp["known_as"]),
        "EmailId": wrap(emp["email"]),
        "StartDate": wrap(emp["start"]),
        "DateOfBirth": wrap(emp["dob"]),
        "JobRole": wrap(emp["role"], h.get("JobRole"), "FieldHistoryForJobRole"),
        "Company": wrap(emp["company"], h.get("Company"), "FieldHistoryForEffectiveDate"),
        "CompanyEffectiveDate": plain(eff["company"]),
        "Location": wrap(emp["location"], h.get("Location"), "FieldHistoryForEffectiveDate"),
        "LocationEffectiveDate": plain(eff["location"]),
        "Department": wrap(emp["department"], h.get("Department"),
                           "FieldHistoryForEffectiveDate"),
        "DepartmentEffectiveDate": plain(eff["department"]),
        "JobRoleChangeDate": plain(eff["role"]),
        "ReportsTo": wrap(full_name(boss), h.get("ReportsTo"), "FieldHistoryForEffectiveDate"),
        "ReportsToEffectiveDate": plain(eff["reports_to"] if boss else ""),
        "ReportsToEmployeeId": plain(boss["id"] if boss else ""),
        "ReportsToEmailAddress": plain(boss["email"] if boss else ""),
        "NISNumber": wrap(emp["ni"]),
        "Nationality": wrap(emp["nationality"]),
        "EmploymentType": wrap(emp["employment_type"], h.get("EmploymentType"),
                               "FieldHistoryForEffectiveDate"),
        "EmploymentTypeEffectiveDate": plain(eff["employment_type"]),
        # PLAUSIBLE: "0" once the LeavingDate has passed (1.4.1 only shows "1").
        "EmployeeStatus": plain("0" if leaver else "1"),
        "HolidayAllowanceDays": plain("%.2f" % days),
        "HolidayAllowanceMins": plain("%d" % (days * MINUTES_PER_DAY)),
        "NoticePeriod": wrap(emp["notice"]),
        "ProbationEndDate": wrap(emp["probation"]),
        "Gender": wrap(emp["gender"]),
        "AnalysisCode1LabelText": wrap(emp["analysis1"]),
        "AnalysisCode2LabelText": wrap(emp["analysis2"]),
        "ContactDetail": {
            "Address": wrap(emp["address"]),
            "WorkPhoneNumber": wrap(emp["work_phone"]),
            "PersonalPhoneNumber": wrap(emp["personal_phone"]),
            "PersonalEmail": wrap(emp["personal_email"]),
            "Mobile": wrap(emp["mobile"]),
        },
        "OtherContact": [],
        "RightToWork": [dict(entry) for entry in emp["right_to_work"]],
        "BackgroundDetail": [],
        "BankDetail": {   # PLAUSIBLE: bank details empty (usually not granted to API keys)
            "BankName": wrap(""), "BankAddress": wrap(""), "BankCode": wrap(""),
            "AccountNumber": wrap(""), "AccountName": wrap(""),
        },
        "EmploymentDetail": {
            "PayrollCompany": wrap(emp["payroll_company"]),
            "PayrollID": wrap(emp["payroll_id"]),
            "TimeAndAttendanceID": wrap(emp["tna_id"]),
            "RotaID": wrap(emp["rota_id"]),
            "CRMID": wrap(emp["crm_id"]),
            "ATSID": wrap(emp["ats_id"]),
            "PerformanceID": wrap(emp["performance_id"]),
            "BenefitsID": wrap(emp["benefits_id"]),
            "System1ID": wrap(emp["system_ids"][0]),
            "System2ID": wrap(emp["system_ids"][1]),
            "System3ID": wrap(emp["system_ids"][2]),
            "MethodOfRecruitment": wrap(emp["recruitment"]),
        },
        "LeavingDate": emp["leaving"],
        "ReasonForLeaving": emp["leaving_reason"],
        "EmployeeImage": emp["image"],
        "APIColumn1": emp["api_columns"][0],
        "APIColumn2": emp["api_columns"][1],
        "APIColumn3": emp["api_columns"][2],
        "APIColumn4": emp["api_columns"][3],
        "APIColumn5": emp["api_columns"][4],
        "AdditionalreportsTo": [],
        "UniqueKey": emp["unique_key"],
        "lstFieldHistoryJobrole": None,
    }


# -- calendar: holidays and absences --

def _employment_window(ds, emp):
    """First and last day the employee can have calendar entries in
    CALENDAR_WINDOW, or None."""
    first = max(parse_date(emp["start"]), parse_date(CALENDAR_WINDOW[0]))
    last = parse_date(CALENDAR_WINDOW[1])
    if emp["leaving"]:
        last = min(last, parse_date(emp["leaving"]))
    return (first, last) if first + datetime.timedelta(days=14) <= last else None


def _free(busy, first, last):
    return all(last < b_first or first > b_last for b_first, b_last in busy)


def _pick_span(rng, window, busy, length_days):
    """A free weekday span of length_days working days inside window."""
    first, last = window
    for _ in range(25):
        begin = next_weekday(random_date(rng, first, last))
        end, n = begin, 1
        while n < length_days:
            end += DAY
            if end.weekday() < 5:
                n += 1
        if end <= last and _free(busy, begin - DAY, end + DAY):
            busy.append((begin, end))
            return begin, end
    return None


def _action_time(rng, day, today):
    moment = min(day, today)
    return "%s %02d:%02d:%02d" % (moment.isoformat(), rng.randrange(8, 19), rng.randrange(60),
                                  rng.randrange(60))


def _make_holidays(rng, ds, emp, busy, txn):
    window = _employment_window(ds, emp)
    # about one employee in seven has no holidays at all (Status 10)
    if window is None or emp["index"] % 7 == 4:
        return []
    count = rng.randrange(1, 7)
    boss = ds.manager(emp)
    today = ds.today
    records = []
    for _ in range(count):
        kind = weighted(rng, {"days": 70, "half": 18, "hours": 12})
        length = 1 if kind != "days" else weighted(rng, {1: 30, 2: 15, 3: 10, 5: 25, 10: 12,
                                                         4: 8})
        span = _pick_span(rng, window, busy, length)
        if span is None:
            continue
        begin, end = span
        part = start_part = end_part = ""
        if kind == "days":
            duration_type, days = 1, float(weekdays(begin, end))
            minutes = int(days * MINUTES_PER_DAY)
            if length > 1 and rng.random() < 0.2:
                if rng.random() < 0.5:
                    start_part = "PM"
                else:
                    end_part = "AM"
                days -= 0.5
                minutes = int(days * MINUTES_PER_DAY)
        elif kind == "half":
            duration_type, days, minutes = 3, 0.5, MINUTES_PER_DAY // 2
            part = rng.choice(("AM", "PM"))
        else:
            duration_type = 2
            minutes = rng.choice((60, 90, 120, 180, 240))
            days = round(minutes / float(MINUTES_PER_DAY), 2)
        if begin <= today:
            status = weighted(rng, {"Approved": 86, "Declined": 9, "Pending": 5})
        else:
            status = weighted(rng, {"Approved": 60, "Pending": 30, "Declined": 10})
        requested = min(begin - datetime.timedelta(days=rng.randrange(3, 60)),
                        today - datetime.timedelta(days=rng.randrange(1, 20)))
        acted = min(requested + datetime.timedelta(days=rng.randrange(0, 3)), today)
        approver_comment = {"Approved": rng.choice(("", "", "Approved", "Enjoy!",
                                                    "Auto approved")),
                            "Declined": rng.choice(("Team is short that week, sorry.",
                                                    "Clashes with the release", "")),
                            "Pending": ""}[status]
        txn["holiday"] += rng.randrange(1, 40)
        records.append({
            "AnnualLeaveTxnId": txn["holiday"],
            "StartDate": begin.isoformat(), "EndDate": end.isoformat(),
            "DurationType": duration_type,
            "DurationInDays": days, "DurationInMinutes": minutes,
            "PartOfDay": part, "StartDatePartOfTheDay": start_part,
            "EndDatePartOfTheDay": end_part,
            "RequesterComments": rng.choice(HOLIDAY_REQUESTER_COMMENTS),
            "ApproverComments": approver_comment,
            # PLAUSIBLE: a pending request names the manager who will decide.
            "Approver": full_name(boss) if boss else "HR Administrator",
            "Status": status,
            "LastActionDateTime": _action_time(rng, requested if status == "Pending" else acted,
                                               today),
            "IsToilHoliday": rng.random() < 0.05,
            "ReferenceId": "" if rng.random() < 0.9 else "CAL-%06d" % rng.randrange(10 ** 6),
        })
    records.sort(key=lambda r: r["StartDate"])
    return records


def _make_absences(rng, ds, emp, busy, txn):
    window = _employment_window(ds, emp)
    if window is None or rng.random() < 0.55:
        return []
    boss = ds.manager(emp)
    records = []
    for _ in range(rng.randrange(1, 4)):
        half = rng.random() < 0.15
        length = 1 if half else weighted(rng, {1: 45, 2: 25, 3: 15, 5: 10, 8: 5})
        span = _pick_span(rng, window, busy, length)
        if span is None:
            continue
        begin, end = span
        days = 0.5 if half else float(weekdays(begin, end))
        interview = days >= 3 or rng.random() < 0.2
        interview_date = ""
        if interview:
            after = next_weekday(end + DAY)
            if after <= ds.today:
                interview_date = after.isoformat()
        if days > 7:        # PLAUSIBLE meaning: 1 none, 2 self-certified, 3 fit note
            certificate, received = 3, next_weekday(end + DAY).isoformat()
        elif days >= 3:
            certificate, received = 2, end.isoformat()
        else:
            certificate, received = 1, ""
        comments = []
        if rng.random() < 0.3:
            comments.append({"Comments": rng.choice(("Feeling better, back Monday",
                                                     "GP appointment booked",
                                                     "Called in at 8:15")),
                             "PostedBy": full_name(boss) or full_name(emp)})
        txn["absence"] += rng.randrange(1, 25)
        records.append({
            "AbsenceLeaveTxnId": txn["absence"],
            "StartDate": begin.isoformat(), "EndDate": end.isoformat(),
            "DurationDays": "%.2f" % days, "DurationInDaysThisPeriod": "%.2f" % days,
            "PartOfDay": rng.choice(("AM", "PM")) if half else "",
            "BackToWorkInterviewRequried": interview,
            "BackToWorkInterviewDate": interview_date,
            "MedicalCertificateType": certificate,
            "MedicalCertificateReceivedDate": received,
            "Reason": rng.choice(ABSENCE_REASONS),
            "Comments": comments,
            "AbsencePaidStatus": 1 if rng.random() < 0.85 else 2,
            "EmergencyLeave": rng.random() < 0.05,
            "ReferenceId": "",
        })
    records.sort(key=lambda r: r["StartDate"])
    return records


# -- salary and benefits --

def _salary_band(emp):
    for role, low, high in JOB_ROLES[emp["department"]]:
        if role == emp["role"]:
            return low, high
    return 25000, 40000


def _make_salaries(rng, ds, emp):
    """1-3 rows, oldest first: the starting salary, then reviews/promotions.
    A few employees have a raise dated after today."""
    low, high = _salary_band(emp)
    base = low if low == high else low + 500 * rng.randrange((high - low) // 500 + 1)
    if emp["employment_type"] == "Part Time":
        base = round(base * 0.6 / 100) * 100
    monthly = rng.random() < 0.08
    frequency = weighted(rng, {"Monthly": 85, "Weekly": 8, "Four Weekly": 7})
    start = parse_date(emp["start"])
    last_day = parse_date(emp["leaving"]) if emp["kind"] == "leaver" else ds.today
    dates = [(start, "Starting Salary")]
    years = (last_day - start).days // 365
    extra = min(years, rng.randrange(0, 3))
    for n in range(extra):
        when = datetime.date(start.year + (n + 1) * max(1, years // (extra + 1)), 4, 1)
        if dates[-1][0] < when <= last_day:
            dates.append((when, rng.choice(("Annual Review", "Annual Review", "Promotion",
                                            "Cost of Living"))))
    if emp["kind"] == "current" and emp["index"] % 60 == 17 and len(dates) < 3:
        dates.append((add_months(ds.today.replace(day=1), 2), "Annual Review"))
    amounts = []
    amount = base * (0.97 ** (len(dates) - 1))
    for _ in dates:
        amounts.append(round(amount / 100.0) * 100)
        amount *= 1.03 + rng.randrange(0, 5) / 100.0
    deductions = []
    if rng.random() < 0.35:
        deductions.append({"Deduction": "Pension", "Amount": "",
                           "Percentage": "%.2f" % rng.choice((3, 4, 5)),
                           "Comments": rng.choice(("", "Salary sacrifice")),
                           "IncludeInTotalSalary": "False",
                           "DisplayAsAmountOrPercentage": "Percentage"})
    entitlements = []
    if emp["index"] < MANAGER_COUNT or rng.random() < 0.12:
        entitlements.append({"Entitlement": "Car Allowance", "Amount": money(4800),
                             "Percentage": "", "Comments": "",
                             "IncludeInTotalSalary": "True",
                             "DisplayAsAmountOrPercentage": "Amount"})
    rows = []
    for (when, reason), annual in zip(dates, amounts):
        value = round(annual / 12.0, 2) if monthly else annual
        extra_total = sum(float(e["Amount"]) for e in entitlements
                          if e["IncludeInTotalSalary"] == "True") / (12.0 if monthly else 1.0)
        rows.append({
            "EffectiveFrom": when.isoformat(),
            "SalaryType": "Monthly" if monthly else "Annual",
            "PaymentFrequency": frequency,
            "SalaryAmount": money(value),
            "TotalSalaryAmount": money(value + extra_total),
            "Currency": emp["currency"],
            "ChangeReason": reason,
            "Comments": "" if reason != "Promotion" else "New role",
            "Deductions": [dict(d) for d in deductions],
            "Entitlements": [dict(e) for e in entitlements],
        })
    return rows


def _make_benefits(rng, ds, emp, txn):
    if emp["kind"] == "future":
        return []
    count = weighted(rng, {0: 30, 1: 35, 2: 25, 3: 10})
    chosen = rng.sample(range(len(BENEFITS)), count)
    start = parse_date(emp["start"])
    records = []
    for pick in sorted(chosen):
        name, values, recover, column = BENEFITS[pick]
        awarded = next_weekday(random_date(rng, start, max(start, ds.today - DAY)))
        if emp["leaving"]:
            awarded = min(awarded, parse_date(emp["leaving"]))
        expiry = "" if rng.random() < 0.4 else add_months(awarded,
                                                          12 * rng.choice((1, 3, 5))).isoformat()
        txn["benefit"] += rng.randrange(1, 10)
        records.append({
            "BenefitId": txn["benefit"], "Benefit": name,
            "DateAwarded": awarded.isoformat(), "ExpiryDate": expiry,
            "Value": rng.choice(values),
            "Comments": rng.choice(("", "", "Annual renewal", "Awarded at review")),
            "RecoverOnTermination": recover,
            "Customfields": [{"ColumnName": column[0],
                              "ColumnValue": rng.choice(column[1])}] if column else [],
            "Files": [], "Audio": [], "Video": [],
        })
    return records


# ---------------------------------------------------------------------------
# Per-employee answers
# ---------------------------------------------------------------------------

def _overlap_days(record, first, last):
    """Working days of a holiday/absence inside first..last (None = open)."""
    begin, end = parse_date(record["StartDate"]), parse_date(record["EndDate"])
    lo, hi = max(begin, first or begin), min(end, last or end)
    if lo > hi:
        return 0.0
    if record.get("DurationType") == 2 or record.get("PartOfDay"):
        return None                      # a single partial day: the whole record
    days = float(weekdays(lo, hi))
    if record.get("StartDatePartOfTheDay") == "PM" and lo == begin:
        days -= 0.5
    if record.get("EndDatePartOfTheDay") == "AM" and hi == end:
        days -= 0.5
    return days


def holiday_view(record, first, last):
    """The served holiday record (1.4.2): DurationInDays as 1.00-style numbers."""
    days = _overlap_days(record, first, last)
    if days is None:
        days, minutes = record["DurationInDays"], record["DurationInMinutes"]
    else:
        minutes = int(days * MINUTES_PER_DAY)
    out = {}
    for key, value in record.items():
        if key == "DurationInDays":
            out[key] = Fixed(value)
        elif key == "DurationInMinutes":
            out[key] = value
            out["DurationInDaysThisPeriod"] = Fixed(days)
            out["DurationInMinutesThisPeriod"] = minutes
        else:
            out[key] = value
    return out


def absence_view(record, first, last):
    days = _overlap_days(record, first, last)
    out = dict(record)
    if days is not None:
        out["DurationInDaysThisPeriod"] = "%.2f" % days
    return out


def in_range(record, first, last):
    """Overlap of the record with first..last (either may be None)."""
    return (last is None or record["StartDate"] <= last.isoformat()) and \
        (first is None or record["EndDate"] >= first.isoformat())


def current_salary(rows, today):
    """The latest row effective on or before today, else the first row."""
    effective = [r for r in rows if r["EffectiveFrom"] <= today.isoformat()]
    return effective[-1] if effective else rows[0]


# ---------------------------------------------------------------------------
# Rate limiting
# ---------------------------------------------------------------------------

class RateLimiter:
    """Sliding window per client: at most `limit` admitted calls in any
    `window` seconds. Refused calls are not recorded (PLAUSIBLE)."""

    def __init__(self, limit, window):
        self.limit = limit
        self.window = window
        self._lock = threading.Lock()
        self._calls = collections.defaultdict(collections.deque)

    def admit(self, client):
        """None when the call may pass, else the seconds until a slot frees."""
        if self.limit <= 0:
            return None
        now = time.monotonic()
        with self._lock:
            calls = self._calls[client]
            while calls and calls[0] <= now - self.window:
                calls.popleft()
            if len(calls) < self.limit:
                calls.append(now)
                return None
            return max(0.0, calls[0] + self.window - now)

    def reset(self):
        with self._lock:
            self._calls.clear()


# ---------------------------------------------------------------------------
# The provider
# ---------------------------------------------------------------------------

class Reject(Exception):
    """An application error: answered in the envelope (HTTP 200)."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def envelope(is_error, status, message, result):
    return {"isError": is_error, "Status": status, "Message": message, "Result": result}


def json_answer(obj, status=200, headers=None):
    return common.Response(status, render(obj), common.JSON_TYPE, headers)


NOT_FOUND_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>The resource cannot be found.</title></head>\n"
    "<body><h1>Server Error in '/' Application.</h1><h2><i>The resource cannot be found."
    "</i></h2><p>HTTP 404. The resource you are looking for (or one of its dependencies) "
    "could have been removed, had its name changed, or is temporarily unavailable.</p>"
    "</body></html>\n").encode("utf-8")

JSON_CONTENT_TYPES = ("application/json", "text/json")
RESOURCE_RE = re.compile(r"^/(?P<resource>[A-Za-z]+)/?$")


class PeopleHR(common.Provider):
    """PeopleHR sandbox provider."""

    name = "peoplehr"

    @staticmethod
    def add_arguments(parser):
        parser.add_argument("--api-key", action="append", dest="api_keys", metavar="KEY",
                            help="accepted API key (repeatable; default %s)" % DEFAULT_API_KEY)
        parser.add_argument("--rate-limit", type=int, default=DEFAULT_RATE_LIMIT, metavar="N",
                            help="calls per window per client IP (default 30; 0 = no limit)")
        parser.add_argument("--rate-window", type=float, default=DEFAULT_RATE_WINDOW,
                            metavar="SECONDS", help="sliding window length (default 60)")
        parser.add_argument("--rate-limit-mode", choices=("envelope", "429"),
                            default="envelope",
                            help="over the limit: HTTP 200 envelope Status 6 (default) "
                                 "or HTTP 429")
        parser.add_argument("--no-records-is-error", action="store_true",
                            help="Status 10 (no records) with isError true (default false)")
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="data set seed")
        parser.add_argument("--today", default=DEFAULT_TODAY,
                            help="the sandbox's fixed 'today' (YYYY-MM-DD)")
        webhooks.add_arguments(parser)
        parser.add_argument("--webhook-url", metavar="URL",
                            help="the listener URL of Settings -> API at start (default: "
                                 "none; POST /_sandbox/webhooks/listener sets it)")
        parser.add_argument("--webhook-encoding", choices=("json", "form"), default="json",
                            help="body of the webhook packets (default json)")

    def __init__(self, args):
        super().__init__(args)
        if parse_date(args.today) is None:
            raise SystemExit("--today must be YYYY-MM-DD")
        if args.rate_window <= 0:
            raise SystemExit("--rate-window must be positive")
        self.api_keys = set(args.api_keys or [DEFAULT_API_KEY])
        self.limiter = RateLimiter(args.rate_limit, args.rate_window)
        self.ds = generate_dataset(seed=args.seed, today=args.today)
        self.write_lock = threading.Lock()
        self.dirty = False
        webhooks.check_arguments(args)
        if args.webhook_url is not None and webhooks.url_problem(args.webhook_url, args):
            raise SystemExit("--webhook-url: %s" % webhooks.url_problem(args.webhook_url, args))
        self.webhooks = Webhooks(self)
        self.actions = {
            "employee": {"getallemployeedetail": self.get_all_employee_detail,
                         "getemployeedetailbyid": self.get_employee_detail_by_id,
                         "getcompanyinformation": self.get_company_information},
            "holiday": {"getholidaydetail": self.get_holiday_detail,
                        "addnewholiday": self.add_new_holiday},
            "absence": {"getabsencedetail": self.get_absence_detail},
            "salary": {"getsalarydetail": self.get_salary_detail},
            "benefit": {"getbenefitbyemployeeid": self.get_benefit_by_employee_id},
        }
        self.other_actions = {res: {a.lower() for a in names}
                              for res, names in OTHER_ACTIONS.items()}
        # The full employee list is large and immutable: render it once.
        self._all_employees = {
            flag: render(envelope(False, 0, MSG_REQUEST, [
                employee_record(self.ds, e, False) for e in self.ds.employees
                if flag or not self.is_leaver(e)]))
            for flag in (False, True)}

    def reset(self):
        self.limiter.reset()
        self.webhooks.reset()
        if self.dirty:
            self.ds = generate_dataset(seed=self.args.seed, today=self.args.today)
            self.dirty = False

    def control_request(self, server, req):
        """/_sandbox/webhooks/...; None: common.py answers."""
        if req.path.rstrip("/") == common.CONTROL_PREFIX + "/webhooks/listener":
            return self.webhooks.listener(req)
        return webhooks.control(req, self.webhooks.outbox, self.webhooks.fire)

    def is_leaver(self, emp):
        """A leaver for GetAllEmployeeDetail: LeavingDate set and passed."""
        return bool(emp["leaving"]) and emp["leaving"] < self.ds.today.isoformat()

    # -- dispatch --

    def handle(self, req):
        wait = self.limiter.admit(client_address(req))
        if wait is not None:
            return self.throttled(wait)
        found = RESOURCE_RE.match(req.path)
        resource = found.group("resource").lower() if found else None
        if resource not in self.actions:
            return common.Response(404, NOT_FOUND_PAGE, common.HTML_TYPE)
        try:
            body = self.parse_body(req)
            self.authenticate(body)
            action = self.action(body, resource)
            return action(body)
        except Reject as err:
            return json_answer(envelope(True, err.status, err.message, {}))

    def throttled(self, wait):
        """PLAUSIBLE (1.7): the reference documents no throttled answer."""
        body = envelope(True, 6, "API calls will be limited to a %d per minute"
                        % self.limiter.limit, [])
        if self.args.rate_limit_mode == "429":
            return json_answer(body, 429, [("Retry-After", str(max(1, math.ceil(wait))))])
        return json_answer(body)

    def parse_body(self, req):
        if req.method != "POST":
            raise Reject(7, "No json data found.")
        ctype = (req.header("Content-Type") or "").split(";")[0].strip().lower()
        if ctype and ctype not in JSON_CONTENT_TYPES:
            raise Reject(7, "No json data found.")
        if not req.body.strip():
            raise Reject(7, "No json data found.")
        try:
            body = json.loads(req.body.decode("utf-8-sig"))
        except (ValueError, UnicodeDecodeError):
            raise Reject(9, "Invalid json data.")
        if not isinstance(body, dict):
            raise Reject(9, "Invalid json data.")
        return Body(body)

    def authenticate(self, body):
        key = body.get("APIKey")
        if key is None or (isinstance(key, str) and not key.strip()):
            raise Reject(1, "API key is missing.")
        if not isinstance(key, str) or key.strip() not in self.api_keys:
            raise Reject(2, "Invalid API Key.")

    def action(self, body, resource):
        name = body.get("Action")
        if name is None:
            raise Reject(3, "Action is missing.")
        if isinstance(name, str) and not name.strip():
            raise Reject(4, "Action cannot be empty.")
        wanted = name.strip().lower() if isinstance(name, str) else None
        handler = self.actions[resource].get(wanted)
        if handler:
            return handler
        if wanted in self.other_actions.get(resource, ()):
            raise Reject(5, NO_ACCESS)                   # PLAUSIBLE: read-only keys
        raise Reject(4, "Invalid Action.")

    # -- request fields --

    def employee_id(self, body):
        """The EmployeeId of the body, validated: (employee record)."""
        value = body.get("EmployeeId")
        if value is None:
            raise Reject(5, "EmployeeId is missing.")
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise Reject(5, "EmployeeId contains invalid data.")
        value = str(value).strip()
        if not value:
            raise Reject(5, "EmployeeId cannot be empty.")
        if len(value) > MAX_EMPLOYEE_ID:
            raise Reject(5, "EmployeeId contains more than 15 characters.")
        emp = self.ds.employee(value)
        if emp is None:
            raise Reject(5, "EmployeeId does not exists.")
        return emp

    @staticmethod
    def boolean(body, name, default=None):
        value = body.get(name)
        if value is None:
            if default is None:
                raise Reject(5, "%s is missing." % name)
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise Reject(5, "%s contains invalid data." % name)

    @staticmethod
    def date(body, name, required):
        value = body.get(name)
        if value is None:
            if required:
                raise Reject(5, "%s is missing." % name)
            return None
        if isinstance(value, str) and not value.strip():
            if required:
                raise Reject(5, "%s cannot be empty." % name)
            return None
        day = parse_date(value.strip() if isinstance(value, str) else value)
        if day is None:
            raise Reject(5, "%s contains invalid data." % name)
        return day

    def date_range(self, body, required):
        first = self.date(body, "StartDate", required)
        last = self.date(body, "EndDate", required)
        if first and last and first > last:
            raise Reject(5, "StartDate should be before to EndDate.")
        return first, last

    def records(self, message, result):
        if not result:
            return json_answer(envelope(bool(self.args.no_records_is_error), 10,
                                        MSG_NO_RECORDS, []))
        return json_answer(envelope(False, 0, message, result))

    # -- /Employee --

    def get_all_employee_detail(self, body):
        include = self.boolean(body, "IncludeLeavers", default=False)
        return common.Response(200, self._all_employees[include], common.JSON_TYPE)

    def get_employee_detail_by_id(self, body):
        emp = self.employee_id(body)
        return json_answer(envelope(False, 0, MSG_REQUEST,
                                    employee_record(self.ds, emp, True)))

    def get_company_information(self, body):
        return json_answer(envelope(False, 0, MSG_REQUEST, dict(COMPANY_INFORMATION)))

    # -- /Holiday, /Absence --

    def get_holiday_detail(self, body):
        emp = self.employee_id(body)
        first, last = self.date_range(body, required=False)
        result = [holiday_view(r, first, last) for r in self.ds.holidays[emp["id"]]
                  if in_range(r, first, last)]
        return self.records(MSG_REQUESTED, result)

    def add_new_holiday(self, body):
        """AddNewHoliday (1.8): see the module's docstring."""
        emp = self.employee_id(body)
        kind = body.get("DurationType")
        if kind is None:
            raise Reject(5, "DurationType is missing.")
        if str(kind).strip() not in ("1", "2", "3"):
            raise Reject(5, "DurationType contains invalid data.")
        first, last = self.date_range(body, required=True)
        amounts = {}
        for name in ("DurationInDays", "DurationInMinutes"):
            value = body.get(name)
            if value is None or (isinstance(value, str) and not value.strip()):
                raise Reject(5, "%s is missing." % name)
            try:
                amounts[name] = float(value)
            except (TypeError, ValueError):
                raise Reject(5, "%s contains invalid data." % name)
            if amounts[name] < 0:
                raise Reject(5, "%s contains invalid data." % name)
        days = amounts["DurationInDays"]
        minutes = int(amounts["DurationInMinutes"]) or int(days * MINUTES_PER_DAY)
        part = body.get("PartOfDay") or ""
        if part not in ("", "AM", "PM"):
            raise Reject(5, "PartOfDay contains invalid data.")
        with self.write_lock:
            if any(r["Status"] != "Declined" and in_range(r, first, last)
                   for r in self.ds.holidays[emp["id"]]):
                raise Reject(5, "Holiday already exists for the given dates.")
            txn = max(r["AnnualLeaveTxnId"] for rows in self.ds.holidays.values()
                      for r in rows) + 1
            boss = self.ds.manager(emp)
            record = {
                "AnnualLeaveTxnId": txn,
                "StartDate": first.isoformat(), "EndDate": last.isoformat(),
                "DurationType": int(str(kind).strip()),
                "DurationInDays": days, "DurationInMinutes": minutes,
                "PartOfDay": part, "StartDatePartOfTheDay": "", "EndDatePartOfTheDay": "",
                "RequesterComments": str(body.get("Comments") or ""),
                "ApproverComments": "",
                "Approver": full_name(boss) if boss else "HR Administrator",
                "Status": "Pending",
                "LastActionDateTime": datetime.datetime.now(datetime.timezone.utc).strftime(
                    "%Y-%m-%d %H:%M:%S"),
                "IsToilHoliday": False, "ReferenceId": "",
            }
            rows = sorted(self.ds.holidays[emp["id"]] + [record], key=lambda r: r["StartDate"])
            self.ds.holidays = {**self.ds.holidays, emp["id"]: rows}
            self.dirty = True
        self.webhooks.emit(4, emp["id"], holiday_fields(record))
        return json_answer(envelope(False, 0, "Holiday added successfully.",
                                    {"AnnualLeaveTxnId": txn}))

    def get_absence_detail(self, body):
        emp = self.employee_id(body)
        first, last = self.date_range(body, required=True)
        result = [absence_view(r, first, last) for r in self.ds.absences[emp["id"]]
                  if in_range(r, first, last)]
        return self.records(MSG_REQUESTED, result)   # PLAUSIBLE message

    # -- /Salary, /Benefit --

    def get_salary_detail(self, body):
        emp = self.employee_id(body)
        history = self.boolean(body, "IsIncludeHistory")
        rows = self.ds.salaries[emp["id"]]
        if rows and not history:
            rows = [current_salary(rows, self.ds.today)]
        return self.records(MSG_REQUESTED, list(reversed(rows)))   # newest first

    def get_benefit_by_employee_id(self, body):
        emp = self.employee_id(body)
        return self.records(MSG_REQUEST, self.ds.benefits[emp["id"]])


class Body:
    """The request body with keys looked up case-insensitively (PLAUSIBLE:
    JSON.NET binds property names that way); an exact match wins."""

    def __init__(self, data):
        self.data = data
        self.folded = {}
        for key, value in data.items():
            self.folded.setdefault(key.lower(), value)

    def get(self, name):
        if name in self.data:
            return self.data[name]
        return self.folded.get(name.lower())


# ---------------------------------------------------------------------------
# Client address (common.Request does not carry it)
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# Webhooks (1.9): a listener URL set in the provider's settings, no API
# ---------------------------------------------------------------------------

# ActionId -> Action, as PeopleHR's "Webhooks Detail" lists them.
WEBHOOK_ACTIONS = {1: "New Starter Added", 2: "Employee Detail Updated", 3: "Marked Leaver",
                   4: "Holiday Added", 5: "Holiday Updated", 6: "Holiday Deleted",
                   7: "New Holiday Request", 8: "Holiday Approved", 9: "Holiday Rejected",
                   18: "Employee Deleted"}
HOLIDAY_ACTIONS = (4, 5, 6, 7, 8, 9)
WEBHOOK_TIMEOUT = 10          # PLAUSIBLE
WEBHOOK_RETRIES = ()          # PLAUSIBLE: no retry is documented, none is made


def holiday_fields(record):
    """The holiday part of a packet (1.9): strings, Duration "2.50"-style."""
    days = float(record["DurationInDays"])
    return {"HolidayType": "Less than a day" if days < 1 else "A day or more",
            "StartDate": record["StartDate"], "EndDate": record["EndDate"],
            "HolidayRecordedIn": "Hours" if record.get("DurationType") == 2 else "Days",
            "PartOfDay": record.get("PartOfDay") or "",
            "StartDatePartOfTheDay": record.get("StartDatePartOfTheDay") or "",
            "EndDatePartOfTheDay": record.get("EndDatePartOfTheDay") or "",
            "Duration": "%.2f" % days,
            "Comments": record.get("RequesterComments") or "",
            "IsToilHoliday": "Yes" if record.get("IsToilHoliday") else "No"}


class Webhooks:
    """The listener URL (a control switch stands for Settings -> API) and the
    packets sent to it. PLAUSIBLE, as the reference leaves the encoding open:
    a JSON object of the documented Field:Value pairs, ActionId a number and
    every other value a string (--webhook-encoding form: a form body of the
    same pairs); no authentication header; no retry."""

    def __init__(self, provider):
        self.provider = provider
        self.args = provider.args
        self.lock = threading.Lock()
        self.url = None
        self._set_initial()
        self.outbox = webhooks.Outbox(WEBHOOK_RETRIES, lambda status: False, WEBHOOK_TIMEOUT,
                                      self.args.webhook_time_scale)

    def _set_initial(self):
        self.url = self.args.webhook_url

    def reset(self):
        with self.lock:
            self._set_initial()
        self.outbox.clear()

    def listener(self, req):
        """GET|POST|DELETE /_sandbox/webhooks/listener."""
        if req.method == "GET":
            with self.lock:
                return common.json_response({"url": self.url})
        if req.method == "DELETE":
            with self.lock:
                self.url = None
            return common.json_response({"url": None})
        if req.method != "POST":
            return common.json_response({"error": "GET, POST or DELETE"}, 405)
        try:
            body = req.json_body()
        except (ValueError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict) or "url" not in body:
            return common.json_response({"error": "the body must be {\"url\": ...}"}, 400)
        if body["url"] is not None:
            problem_text = webhooks.url_problem(body["url"], self.args)
            if problem_text:
                return common.json_response({"error": problem_text}, 400)
        with self.lock:
            self.url = body["url"]
        return common.json_response({"url": body["url"]})

    def emit(self, action_id, employee_id, fields=None):
        """Send one packet to the listener, if one is set; the delivery id."""
        packet = {"ActionId": action_id, "Action": WEBHOOK_ACTIONS[action_id],
                  "EmployeeId": str(employee_id)}
        packet.update({k: "" if v is None else str(v) for k, v in (fields or {}).items()})
        if self.args.webhook_encoding == "form":
            raw = urlencode([(k, str(v)) for k, v in packet.items()]).encode("ascii")
            ctype = "application/x-www-form-urlencoded"
        else:
            raw, ctype = common.dump_json(packet), "application/json"
        with self.lock:
            url = self.url
        if url is None:
            return None
        headers = [("Content-Type", ctype), ("User-Agent", "PeopleHR-Webhooks")]
        return self.outbox.post(None, str(action_id), url, lambda: (raw, headers))

    def fire(self, body):
        """POST /_sandbox/webhooks/fire {"event": ActionId, "id", "fields"}:
        `id` is the EmployeeId, or for a holiday action (4-9) the holiday's
        AnnualLeaveTxnId; `fields` adds or replaces pairs of the packet."""
        try:
            action_id = int(str(body.get("event")))
        except ValueError:
            action_id = None
        if action_id not in WEBHOOK_ACTIONS:
            return common.json_response({"error": "event must be an ActionId the sandbox "
                                                  "sends: %s" % sorted(WEBHOOK_ACTIONS)}, 400)
        extra = body.get("fields") or {}
        if not isinstance(extra, dict):
            return common.json_response({"error": "fields must be an object"}, 400)
        ds = self.provider.ds
        raw = str(body.get("id", ""))
        fields = {}
        if action_id in HOLIDAY_ACTIONS:
            found = [(eid, r) for eid, rows in ds.holidays.items() for r in rows
                     if str(r["AnnualLeaveTxnId"]) == raw]
            if not found:
                return common.json_response({"error": "no holiday %s" % raw}, 404)
            employee_id, record = found[0]
            fields = holiday_fields(record)
            if action_id == 5:
                fields = dict({"Original" + k: fields[k] for k in (
                    "StartDate", "EndDate", "PartOfDay", "StartDatePartOfTheDay",
                    "EndDatePartOfTheDay", "Duration")}, **fields)
            if action_id in (8, 9):
                boss = ds.manager(ds.employee(employee_id))
                fields["AuthorisedByFirstName"] = boss["first"] if boss else "HR"
                fields["AuthorisedByLastName"] = boss["last"] if boss else "Administrator"
        else:
            emp = ds.employee(raw)
            if emp is None and action_id != 18:
                return common.json_response({"error": "no employee %s" % raw}, 404)
            employee_id = emp["id"] if emp else raw
            if action_id == 2:
                fields = {"FieldName": "First Name", "NewValue": emp["first"],
                          "OldValue": emp["first"], "Reason": ""}
        fields.update(extra)
        return webhooks.fired([self.emit(action_id, employee_id, fields)])


def client_address(req):
    """The client IP the rate limit is kept for."""
    address = getattr(req, "client_address", None)        # if common ever adds it
    if address:
        return address[0] if isinstance(address, tuple) else address
    return req.context.get("client_ip", "unknown")


class _ClientAddressHandler(common.SandboxHandler):
    """common.SandboxHandler that records the peer address in req.context."""

    def _provider_request(self, req):
        req.context["client_ip"] = self.client_address[0]
        return super()._provider_request(req)


def main(argv=None):
    # Process-local: common.SandboxServer looks the handler class up by name
    # when it is built, so this only changes which handler this process uses.
    common.SandboxHandler = _ClientAddressHandler
    common.serve(PeopleHR, argv, "PeopleHR sandbox provider")


if __name__ == "__main__":
    main()
