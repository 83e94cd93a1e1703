#!/usr/bin/env python3
"""Personio sandbox provider (v1 "Personnel Data" API).

    python3 sandbox/personio.py --port 9102 [--client-id ID --client-secret S]
        [--token-ttl SECONDS] [--auth-rate-limit N] [--verbose]

Behaves like the Personio v1 API described in
shared/reference/providers-bamboohr-personio.md PART B (B1-B8). A gateway
account whose `base_url` is `http://127.0.0.1:PORT` stands for
`https://api.personio.de`: requests go to `{base_url}/v1/auth`,
`{base_url}/v1/company/employees`, ... Every route also answers without the
`/v1` prefix (a `base_url` ending in `/v1`, as personio-py uses it).
Shapes that the reference does not settle were checked against Personio's
own OpenAPI file (personio/api-docs personio-personnel-data-api-oa3.yaml,
"[SPEC]") and the recorded responses in at-gmbh/personio-py tests/res
("[REC]"); whatever neither settles is marked PLAUSIBLE.

Options (besides common's --host, --port, --verbose, --watch-stdin)
-------------------------------------------------------------------
  --client-id ID, --client-secret S   accepted credentials; repeat both to
        accept several pairs (paired by position). Default
        sandbox-personio-client-id / sandbox-personio-client-secret.
  --token-ttl SECONDS      token lifetime (default 86400, fractions allowed)
  --auth-rate-limit N      /v1/auth requests per window (default 60)
  --auth-rate-window S     the window and the cool-down after exceeding it
                           (default 60 seconds: "60 requests per minute, then
                           a 60 second cool-down", B2.1)
  --invalid-token-status   401 or 403 (default 403, [SPEC]) for a wrong or
                           expired token
  --rotate-tokens          legacy one-time tokens: every successful data
                           answer carries a NEW token in `authorization` and
                           the one just used stops working (B2.1 "previously")
  --show-rejected          keep rejected/cancelled time-offs visible (by
                           default they vanish, as Personio deletes them, B7)
  --readable-attributes K,K,...  attribute whitelist of the credential
                           (B3.1): other attributes are absent everywhere
                           (`id` always stays)
  --require-app-id         answer 400 when neither X-Personio-App-ID nor
                           Personio-App-ID is sent (default: never required)
  --employees-burst N      429 when GET /company/employees gets more than N
                           requests within one second (real: 15; default 0 =
                           off, so tests can walk pages quickly)
  --employees-per-minute N same per minute (real: 300; default 0 = off)
  --seed N, --today YYYY-MM-DD   data set seed (20260601) and fixed "today"
                           (2026-06-01)

Routes (all also without the /v1 prefix; trailing slash ignored)
----------------------------------------------------------------
  POST /v1/auth                      client_id/client_secret as query
        parameters, JSON body or form body ->
        {"success":true,"data":{"token":"papi-...","expires_in":N,"scope":...}}.
        The same credentials get the same token until it expires; then a new
        one is issued and the old one is refused. Not rate-limited by the
        data limits; has its own limit (429).
  GET  /v1/company/employees         limit (default 50, max 100: larger values
        are clamped), offset = RECORD index; email (exact, case-insensitive);
        attributes[] projection; updated_since (then email/limit/offset are
        ignored, B3.2). Envelope {success, metadata{total_elements,
        current_page (0-based = offset div limit), total_pages}, offset,
        limit, data[{type:"Employee", attributes{...}}]}.
  GET  /v1/company/employees/{id}    {success, data{type, attributes}};
        attributes[] honoured; unknown id 404.
  GET  /v1/company/employees/attributes (alias .../custom-attributes)
        {success, data[{key, label, type, universal_id, options}]}
  GET  /v1/company/employees/{id}/absences/balance
        {success, data[{id, name, category, balance, available_balance}]}
  GET  /v1/company/employees/{id}/profile-picture[/{width}]  1x1 PNG, or 404
        when the employee has none (profile_picture value null)
  GET  /v1/company/time-off-types    limit (200), offset = page number like
        time-offs; {success, metadata{total_elements, current_page,
        total_pages}, offset, limit, data[{type:"TimeOffType", attributes}]}
  GET  /v1/company/time-offs         limit (default 200, max 200: clamped),
        offset = PAGE NUMBER, 1-based, 0 is page 1; start_date, end_date
        (YYYY-MM-DD, inclusive, overlap), updated_from, updated_to (date or
        date-time, inclusive), employees[] (repeat; `employees` and comma
        lists accepted too). metadata.current_page is the page served (1
        for offset 0), total_pages = ceil(total/limit) (0 when empty).
  GET  /v1/company/time-offs/{id}    {success, data{type:"TimeOffPeriod",...}}

Auth on every data route: `Authorization: Bearer <token>`. Missing (or an
empty bearer) -> 401 {"success":false,"error":{"message":"Authorization is
not provided","code":401}}; any other header, an unknown or an expired token
-> 403 {"success":false,"error":{"message":"Provided authorization is not
valid","code":403}} ([SPEC]; `--invalid-token-status 401` makes it 401).
Every 2xx data answer carries `authorization: Bearer <token>` (lowercase).
X-Personio-Partner-ID / X-Personio-App-ID (and the un-prefixed spellings)
are accepted and never required (unless --require-app-id).

Errors use the v1 envelope {"success":false,"error":{"code":N,"message":..}}:
400 malformed parameters, 401/403 auth, 404 unknown id or route, 405 wrong
method, 422 (error.code 0, [SPEC] style, with error_data) when start_date >
end_date or updated_from > updated_to, 429 rate limits. Status faults (429,
5xx) from /_sandbox/faults answer with the same envelope.

Data set (deterministic: same --seed/--today, same data)
---------------------------------------------------------
Built by generate_dataset(seed, today), which other code may import.
* 272 employees, integer ids 2040601..2041295, ascending with gaps, listed
  in id order. Status: 217 active (4 of them with a future termination
  date: 2040791, 2040849, 2041021, 2041094), 34 inactive (all but 2040718
  have termination_date/type/reason and last_working_day), 12 leave (each
  has an approved parental/unpaid leave covering today, e.g. 2040687
  2026-03-09..2026-08-14), 9 onboarding (future hire date, e.g. 2040790).
  252 internal, 20 external (no salary interval, hourly_salary, no
  entitlements, only sick-leave time-offs).
* 2040601 Alexander Bergmann, CEO, Operations, Remote, hired 2014-11-08, no
  supervisor (2040642 neither); everybody else reports to one of the first
  30 employees (all active). supervisor.value = short employee.
* Unicode names: 2040610 Zoë Müller (no profile picture), 2040626 José
  García, 2040634 Björn Ødegaard, 2040645 Siobhán O'Connor, 2040672 Łukasz
  Wójcik (inactive). E-mails first.last@sandbox-demo.example (ASCII-folded,
  numbered when taken: piotr.schneider2@...).
* Null relations: office (6, e.g. 2040647), department (5, e.g. 2040658),
  team (100); cost_centers [] for 21, split 70/30 for 31. 39 employees have
  no profile picture (profile_picture null).
* Custom attributes (catalogue order): dynamic_1146666 Birthday (date,
  universal_id date_of_birth), dynamic_21827 IBAN (iban), dynamic_24407
  Titel, dynamic_1146702 Country of Birth, dynamic_1146670 Lohnsteuerklasse
  (list), dynamic_1146716 Scheduled Trainings (tags), dynamic_1170389
  Dietary notes (multiline), dynamic_1203344 Shirt size (list),
  dynamic_1205000 LinkedIn (link), dynamic_1205001 Desk number (integer),
  dynamic_1205002 Commute distance (km) (decimal).
* Time-off types: 195824 Paid vacation (paid_vacation), 195825 Sick leave
  (sick_leave, no approval), 195826 Unpaid leave, 195827 Parental leave,
  195828 Special leave (unit day), 195829 Home office (unit hour, no
  time-offs).
* 652 time-offs generated, ids 17205942..17207493 ascending with the start
  date, 2025-01-01..2026-12-31, at most one at a time per employee; 587
  visible (539 approved, 38 pending, 10 requested; 279 start in 2025, 308
  in 2026), 65 hidden (40 rejected, 25 cancelled, e.g. 17205948). Types:
  271 paid vacation, 212 sick leave, 45 special, 35 unpaid, 24 parental. 78
  involve half days (e.g. 17205991: one day, 0.5).
* Balances (today 2026-06-01): entitlement minus approved days taken in
  2026, available_balance also the planned ones; e.g. 2040618: Paid
  vacation 24 / 22.5 (of 28), Sick leave 0 / 0, Special leave 2 / 2;
  2040601: 25 / 25. vacation_day_balance equals the Paid vacation balance.

Writes (B3.4, B3.8; shared/reference/fleet-writes-webhooks.md §2)
-----------------------------------------------------------------
  POST   /v1/company/employees        JSON {"employee": {...}} or a form
        (employee[email]=...): email, first_name and last_name required;
        preferred_name, gender (male, female, diverse), position,
        department, office (names: one that does not exist is ignored),
        hire_date (YYYY-MM-DD), weekly_working_hours, status (onboarding,
        active, leave, inactive; by default from hire_date: future ->
        onboarding), supervisor_id. 200 {"success": true, "data": {"id",
        "message": "success"}}, no record. 422 {"success": false, "error":
        {"code": 422, "message": "Supervisor with ID 1 not found"}} and the
        like.
  PATCH  /v1/company/employees/{id}   the same fields; the e-mail cannot
        change; unknown fields are ignored. 200 {"success": true, "data":
        {"id"}, "meta": []}; 404 unknown employee.
  POST   /v1/company/time-offs        a form (JSON too): employee_id,
        time_off_type_id, start_date, end_date, half_day_start and
        half_day_end (0 or 1) required, comment, skip_approval (default
        true: approved at once; false: "pending" when the type needs
        approval). 200 {"success": true, "data": {"type": "TimeOffPeriod",
        "attributes": {..., "created_by": "API"}}}; 404 {"code": 0,
        "message": "Time-off type not found."}; 422 (code 0, error_data)
        for a missing or malformed field; 400 "Error when trying to insert
        absence period" when it overlaps a visible absence of the employee.
        Later lists and gets hold it.
  DELETE /v1/company/time-offs/{id}   200 {"success": true, "data":
        {"message": "The absence period was deleted."}}; 400 an invalid id;
        404 none.
  PLAUSIBLE: every validation message and which field it names; 422 for a
  taken e-mail ("The email has already been taken.") and for an e-mail
  change; 404 {"code": 0, "message": "Employee not found."} for a time-off
  of an unknown employee; the overlap refusal (the reference gives its 400
  body, not when it comes); booleans in forms ("true"/"false", "1"/"0");
  a new employee's defaults (full-time schedule, no salary, office and
  department only when given, no picture); new ids (one above the
  highest). POST /_sandbox/reset also brings the data set back.

v2 webhooks (shared/reference/fleet-writes-webhooks.md §3)
-----------------------------------------------------------
  POST|GET /v2/webhooks, GET|PATCH|DELETE /v2/webhooks/{id},
  GET /v2/webhooks/{id}/events (Bearer token of /v1/auth). Writes post
  person.created|updated and absence-period.created|deleted with ids only
  and the registration's token verbatim in Authorization (no HMAC), from
  webhooks.py's background thread; anything but a 2xx within 3 s is retried
  6 times over 3 days (scaled by --webhook-time-scale). Class Webhooks
  below; the details and the PLAUSIBLE choices are in sandbox/README.md.

PLAUSIBLE choices (the reference marks these UNVERIFIED or is silent)
---------------------------------------------------------------------
* /v1/auth: wrong credentials -> 401 {"code":401,"message":"Wrong
  credentials"}; missing client_id/client_secret -> 400; other methods 405;
  429 {"code":429,"message":"Too Many Requests"} without Retry-After.
  `expires_in` is the token's remaining lifetime (86400 when fresh; a
  re-issued stable token reports what is left of it).
* Tokens are "papi-" + 86 base64url characters, random per process.
* supervisor.value carries the short employee {id, first_name, last_name,
  email} (the [SPEC] example shows only id; personio-py and typed clients
  model it as the ShortEmployee of time-offs).
* Employees limit > 100 is clamped to 100 (B8.5 "clamp is safer"); limit <
  1 or non-integer limit/offset -> 400. offset past the end -> data [].
* updated_since: naive date-times are UTC; date-only means midnight UTC. The
  answer is one page: offset 0, limit = total_elements, current_page 0,
  total_pages 1 (0 when empty). With attributes[] it keeps only employees
  whose changed attributes (per employee, see _changed) intersect the list.
* attributes[] never removes `id`; unknown names are ignored.
* Time-offs: limit > 200 clamped to 200; date filters use overlap
  semantics; a page past the end -> data [] with current_page = that page;
  top-level `offset` echoes the requested value (0 stays 0) and `limit` the
  effective one. Unknown employees[] ids simply match nothing.
* Time-off statuses: approved, pending, requested (visible), rejected and
  cancelled (hidden unless --show-rejected; GET by id then 404).
  certificate.status: not-required, pending or uploaded. half_day_start/end
  are 0/1 integers ([REC]); days_count is an integer for whole days and a
  decimal for halves; it counts the employee's work-schedule days (public
  holidays are not modelled).
* Time-off-types pages like time-offs (1-based); balance: one entry per
  entitled type plus "Sick leave" (untracked: balance 0); balance deducts
  approved days taken this year up to today, available_balance also the
  approved, pending and requested days still to come; category = the type's
  category. External employees have no entitlements (balance data []).
* Custom attribute values: unset text/link/multiline "", unset date, list,
  tags, integer and decimal null; tags are a comma-separated string.
* Non-numeric ids in paths are treated like unknown ones (404), except
  time-offs (400 "The absence period id is invalid.", from the DELETE spec).
* Unknown routes -> 404 {"code":404,"message":"Not found"}; wrong method ->
  405 envelope.
"""

import base64
import datetime
import math
import os
import random
import re
import secrets
import sys
import threading
import time
import unicodedata
import uuid
from collections import deque
from urllib.parse import parse_qsl, unquote

# Import the shared server from this directory without leaving a
# __pycache__ behind in the source tree.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (needs the path above)
import webhooks  # noqa: E402

DEFAULT_CLIENT_ID = "sandbox-personio-client-id"
DEFAULT_CLIENT_SECRET = "sandbox-personio-client-secret"
DEFAULT_TOKEN_TTL = 86400
DEFAULT_AUTH_RATE_LIMIT = 60
DEFAULT_AUTH_RATE_WINDOW = 60.0
TOKEN_SCOPE = "employees:read absences:read"       # [SPEC] auth example

DEFAULT_SEED = 20260601
DEFAULT_TODAY = "2026-06-01"
EMPLOYEE_COUNT = 272
FIRST_EMPLOYEE_ID = 2040601
TIME_OFF_COUNT = 640
FIRST_TIME_OFF_ID = 17205942
TIME_OFF_WINDOW = ("2025-01-01", "2026-12-31")

EMPLOYEES_DEFAULT_LIMIT = 50
EMPLOYEES_MAX_LIMIT = 100
TIME_OFFS_DEFAULT_LIMIT = 200
TIME_OFFS_MAX_LIMIT = 200

NOT_FOUND_EMPLOYEE = "Es ist ein Problem aufgetreten "       # [SPEC], trailing space
NOT_FOUND_TIME_OFF = "The absence period was not found."     # [SPEC]

# 1x1 transparent PNG (profile pictures).
PNG_PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA"
    "60e6kgAAAABJRU5ErkJggg==")

# ---------------------------------------------------------------------------
# Reference data
# ---------------------------------------------------------------------------

SUBCOMPANIES = {7033: "Sandbox Demo GmbH", 7034: "Sandbox Demo Ltd.", 7035: "Sandbox Demo S.L."}

# (office id, name, subcompany id, holiday calendar (id, name, country, state), currency)
OFFICES = [
    (131014, "Munich", 7033, (2, "Deutschland (Bayern) Feiertage", "DE", "Bayern"), "EUR"),
    (131015, "Berlin", 7033, (3, "Deutschland (Berlin) Feiertage", "DE", "Berlin"), "EUR"),
    (131016, "London", 7034, (5, "England & Wales Bank Holidays", "GB", None), "GBP"),
    (131017, "Madrid", 7035, (7, "España (Madrid) Festivos", "ES", "Madrid"), "EUR"),
    (131018, "Remote", 7033, (1, "Deutschland Feiertage", "DE", None), "EUR"),
]
OFFICE_WEIGHTS = {"Munich": 40, "Berlin": 25, "London": 15, "Madrid": 10, "Remote": 10}
DEFAULT_HOLIDAY_CALENDAR = (1, "Deutschland Feiertage", "DE", None)

DEPARTMENTS = [
    (281521, "Customer Support"), (281522, "Engineering"), (281523, "Sales"),
    (281524, "Marketing"), (281525, "Finance"), (281526, "People & Culture"),
    (281527, "Product"), (281528, "Operations"),
]
DEPARTMENT_WEIGHTS = {"Customer Support": 14, "Engineering": 30, "Sales": 16, "Marketing": 8,
                      "Finance": 6, "People & Culture": 6, "Product": 10, "Operations": 10}
TEAMS = {
    "Customer Support": [(59030, "Tier 1"), (59031, "Tier 2")],
    "Engineering": [(59026, "T_X"), (59027, "Platform"), (59028, "Payments")],
    "Sales": [(59040, "DACH"), (59041, "UK&I"), (59042, "Iberia")],
    "Marketing": [(59050, "Growth")],
    "Product": [(59060, "Design"), (59061, "Discovery")],
}
POSITIONS = {
    "Customer Support": ["Support Agent", "Senior Support Agent", "Support Team Lead"],
    "Engineering": ["Software Engineer", "Senior Software Engineer", "Staff Engineer",
                    "Engineering Manager", "QA Engineer", "DevOps Engineer"],
    "Sales": ["Account Executive", "Sales Development Representative", "Head of Sales DACH"],
    "Marketing": ["Marketing Manager", "Content Marketing Specialist", "Werkstudent Marketing"],
    "Finance": ["Accountant", "Financial Controller", "Buchhalter:in"],
    "People & Culture": ["HR Generalist", "Recruiter", "People Partner"],
    "Product": ["Product Manager", "Product Designer", "UX Researcher"],
    "Operations": ["Office Manager", "Operations Analyst", "Facility Coordinator"],
}
COST_CENTERS = {82957: "Cost center 1", 82958: "R&D", 82959: "Go-to-market", 82960: "G&A"}
DEPARTMENT_COST_CENTER = {"Engineering": 82958, "Product": 82958, "Sales": 82959,
                          "Marketing": 82959, "Customer Support": 82959, "Finance": 82960,
                          "People & Culture": 82960, "Operations": 82960}

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# (id, name, weekly hours string, hours per weekday Mon..Sun). One name keeps
# the live recording's trailing space.
WORK_SCHEDULES = [
    (97188, "Full-time, 40 hours without time tracking, (mon,tue,wed,thu,fri)", "40",
     ("08:00",) * 5 + ("00:00",) * 2),
    (232617, "Vollzeit, 40 Stunden ohne Zeiterfassung, (Mo,Di,Mi,Do,Fr) ", "40",
     ("08:00",) * 5 + ("00:00",) * 2),
    (232618, "Part-time, 32 hours (mon,tue,wed,thu)", "32",
     ("08:00",) * 4 + ("00:00",) * 3),
    (232619, "Part-time, 20 hours (mon-fri mornings)", "20",
     ("04:00",) * 5 + ("00:00",) * 2),
]

# (id, name, category, legacy_category, unit, half_day_requests_enabled,
#  certification_required, certification_submission_timeframe, substitute_option,
#  approval_required)
TIME_OFF_TYPES = [
    (195824, "Paid vacation", "paid_vacation", None, "day", True, False, None, "optional", True),
    (195825, "Sick leave", "sick_leave", "sick_leave", "day", True, True, 3, "disabled", False),
    (195826, "Unpaid leave", "unpaid_vacation", None, "day", False, False, None, "optional", True),
    (195827, "Parental leave", "maternity_parental_leave", None, "day", False, True, 14,
     "required", True),
    (195828, "Special leave", "other", None, "day", True, False, None, "disabled", True),
    (195829, "Home office", "offsite_work", "offsite_work", "hour", True, True, 2, "optional",
     True),
]
TYPE_BY_ID = {t[0]: t for t in TIME_OFF_TYPES}
PAID_VACATION, SICK_LEAVE, UNPAID_LEAVE, PARENTAL_LEAVE, SPECIAL_LEAVE, HOME_OFFICE = (
    t[0] for t in TIME_OFF_TYPES)
TYPE_WEIGHTS = {PAID_VACATION: 55, SICK_LEAVE: 27, UNPAID_LEAVE: 6, PARENTAL_LEAVE: 3,
                SPECIAL_LEAVE: 9}
# Rejected and cancelled time-offs are generated too but hidden (B7).
VISIBLE_STATUSES = ("approved", "pending", "requested")

TERMINATION_TYPES = ["employee", "employer", "mutual agreement", "end of contract"]
TERMINATION_REASONS = ["New job", "Relocation", "Career change", "Performance", "Retirement",
                       "Restructuring", "Studium"]

FIRST_NAMES = [
    "Lukas", "Anna", "Leon", "Mia", "Finn", "Emma", "Jonas", "Hannah", "Paul", "Lea", "Felix",
    "Sophie", "Maximilian", "Marie", "Elias", "Lena", "Noah", "Laura", "Tim", "Julia", "David",
    "Sarah", "Jan", "Lisa", "Niklas", "Katharina", "Tobias", "Johanna", "Florian", "Clara",
    "Oliver", "Amelia", "Harry", "Isla", "George", "Ava", "Jack", "Grace", "Carlos", "Lucía",
    "Javier", "Carmen", "Pablo", "Elena", "Mehmet", "Ayşe", "Emre", "Zeynep", "Piotr",
    "Agnieszka", "Łukasz", "Małgorzata", "Jürgen", "Jörg", "Bärbel", "Søren", "Åsa", "Björn",
    "Chloé", "François", "Renée", "Siobhán", "Seán", "Zoë", "José", "Ana", "Priya", "Arjun",
    "Mei", "Hiroshi", "Yuki", "Kwame", "Amara", "Dmitri", "Olga", "Nadia", "Omar", "Leïla",
]
LAST_NAMES = [
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz",
    "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann",
    "Schwarz", "Zimmermann", "Braun", "Krüger", "Hofmann", "Hartmann", "Lange", "Schmitt",
    "Werner", "Krause", "Meier", "Lehmann", "Weiß", "Groß", "Smith", "Jones", "Taylor",
    "Brown", "Williams", "O'Connor", "García", "Fernández", "López", "Martínez", "Sánchez",
    "Pérez", "Yılmaz", "Kaya", "Demir", "Şahin", "Kowalski", "Nowak", "Wiśniewski", "Wójcik",
    "Ødegaard", "Lindqvist", "Dubois", "Lefèvre", "Rossi", "Novák", "Patel", "Tanaka", "Chen",
    "Nguyen", "Okafor", "Mensah", "Ivanova", "Haddad", "Bergmann", "Turing", "Lovelace",
]
# Fixed names at fixed positions, so tests can rely on them.
FIXED_NAMES = {0: ("Alexander", "Bergmann"), 3: ("Zoë", "Müller"), 7: ("José", "García"),
               12: ("Björn", "Ødegaard"), 20: ("Siobhán", "O'Connor"), 33: ("Łukasz", "Wójcik")}
NICKNAMES = {"Alexander": "Alex", "Maximilian": "Max", "Katharina": "Kathi", "Johanna": "Jo",
             "Florian": "Flo", "Niklas": "Nik", "Elizabeth": "Liz", "Javier": "Javi"}

COUNTRIES_OF_BIRTH = ["Deutschland", "Österreich", "Schweiz", "United Kingdom", "España",
                      "Türkiye", "Polska", "France", "Italia", "India", "Nigeria", "日本"]
TRAININGS = ["CI/CD", "Presentation Training", "Communication Training", "First Aid",
             "Fire Safety", "Datenschutz"]
DIETARY_NOTES = ["Vegetarian", "Vegan", "Vegetarian\nNo nuts, please", "Halal",
                 "Gluten-free\nLactose intolerant"]
SHIRT_SIZES = ["XS", "S", "M", "L", "XL", "XXL"]
COMMENTS = ["Sommerurlaub", "Family trip", "Marathon starts at noon", "Umzug", "Wedding",
            "Visiting my grandparents in Köln", "Doctor's appointment", "Kita closed",
            "Long weekend"]

# Standard attributes in the order of the [SPEC]/[REC] payloads:
# (key, label, type). universal_id is the key.
STANDARD_ATTRIBUTES = [
    ("id", "ID", "integer"),
    ("first_name", "First name", "standard"),
    ("last_name", "Last name", "standard"),
    ("preferred_name", "Name (preferred)", "standard"),
    ("email", "Email", "standard"),
    ("gender", "Gender", "standard"),
    ("status", "Status", "standard"),
    ("position", "Position", "standard"),
    ("supervisor", "Supervisor", "standard"),
    ("employment_type", "Employment type", "standard"),
    ("weekly_working_hours", "Weekly hours", "standard"),
    ("hire_date", "Hire date", "date"),
    ("contract_end_date", "Contract ends", "date"),
    ("termination_date", "Termination date", "date"),
    ("termination_type", "Termination type", "standard"),
    ("termination_reason", "Termination reason", "standard"),
    ("probation_period_end", "Probation period end", "date"),
    ("created_at", "created_at", "date"),
    ("last_modified_at", "Last modified", "date"),
    ("subcompany", "Subcompany", "standard"),
    ("office", "Office", "standard"),
    ("department", "Department", "standard"),
    ("cost_centers", "Cost center", "standard"),
    ("holiday_calendar", "Public holidays", "standard"),
    ("absence_entitlement", "Absence entitlement", "standard"),
    ("work_schedule", "Work schedule", "standard"),
    ("fix_salary", "Fix salary", "decimal"),
    ("fix_salary_interval", "Salary interval", "standard"),
    ("hourly_salary", "Hourly salary", "decimal"),
    ("vacation_day_balance", "Vacation day balance", "decimal"),
    ("last_working_day", "Last day of work", "date"),
    ("profile_picture", "Profile Picture", "standard"),
    ("team", "Team", "standard"),
]
MONEY_ATTRIBUTES = {"fix_salary", "hourly_salary"}

# Custom attributes: (key, label, type, universal_id, options). One of each
# v1 attribute type (B3.1 TypeEnum); labels partly German, as live.
CUSTOM_ATTRIBUTES = [
    ("dynamic_1146666", "Birthday", "date", "date_of_birth", []),
    ("dynamic_21827", "IBAN", "standard", "iban", []),
    ("dynamic_24407", "Titel", "standard", None, []),
    ("dynamic_1146702", "Country of Birth", "standard", None, []),
    ("dynamic_1146670", "Lohnsteuerklasse", "list", None, ["1", "2", "3", "4", "5", "6"]),
    ("dynamic_1146716", "Scheduled Trainings", "tags", None, list(TRAININGS)),
    ("dynamic_1170389", "Dietary notes", "multiline", None, []),
    ("dynamic_1203344", "Shirt size", "list", None, list(SHIRT_SIZES)),
    ("dynamic_1205000", "LinkedIn", "link", None, []),
    ("dynamic_1205001", "Desk number", "integer", None, []),
    ("dynamic_1205002", "Commute distance (km)", "decimal", None, []),
]
ALL_ATTRIBUTE_KEYS = [a[0] for a in STANDARD_ATTRIBUTES] + [a[0] for a in CUSTOM_ATTRIBUTES]
# What an employee's last modification may have touched (updated_since + attributes[]).
CHANGEABLE = ["first_name", "last_name", "preferred_name", "position", "department", "team",
              "office", "supervisor", "weekly_working_hours", "work_schedule", "fix_salary",
              "cost_centers", "dynamic_21827", "dynamic_1146716", "dynamic_1203344"]


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------

def parse_date(text):
    """datetime.date for a strict YYYY-MM-DD string, else None."""
    if not isinstance(text, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return None
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        return None


DATETIME_RE = re.compile(r"(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?"
                         r"(Z|[+-]\d{2}:?\d{2})?)?")


def parse_instant(text, end_of_day=False):
    """Aware UTC datetime for YYYY-MM-DD or an ISO 8601 date-time (naive =
    UTC, PLAUSIBLE); None when malformed. A bare date means its start, or
    with end_of_day its last second."""
    found = DATETIME_RE.fullmatch((text or "").strip())
    if not found:
        return None
    day = parse_date(found.group(1))
    if day is None:
        return None
    if found.group(2) is None:
        clock = datetime.time(23, 59, 59) if end_of_day else datetime.time(0, 0, 0)
        return datetime.datetime.combine(day, clock, datetime.timezone.utc)
    try:
        clock = datetime.time(int(found.group(2)), int(found.group(3)), int(found.group(4) or 0))
    except ValueError:
        return None
    zone = found.group(5)
    if zone in (None, "Z"):
        tz = datetime.timezone.utc
    else:
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        tz = datetime.timezone(sign * datetime.timedelta(hours=int(digits[:2]),
                                                         minutes=int(digits[2:])))
    return datetime.datetime.combine(day, clock, tz).astimezone(datetime.timezone.utc)


def _last_sunday(year, month):
    day = datetime.date(year, month + 1, 1) - datetime.timedelta(days=1)
    return day - datetime.timedelta(days=(day.weekday() + 1) % 7)


def berlin_offset(day):
    """+02:00 during German summer time (dates only: the switch is at 02:00,
    so the switch days themselves still have the old offset at midnight)."""
    summer = _last_sunday(day.year, 3) < day <= _last_sunday(day.year, 10)
    return "+02:00" if summer else "+01:00"


def fmt_date(day):
    """Personio v1 date value: midnight with the account's offset [REC]."""
    return None if day is None else "%sT00:00:00%s" % (day.isoformat(), berlin_offset(day))


def fmt_stamp(moment):
    """(date, h, m, s) -> "YYYY-MM-DDTHH:MM:SS+02:00"."""
    day, hour, minute, second = moment
    return "%sT%02d:%02d:%02d%s" % (day.isoformat(), hour, minute, second, berlin_offset(day))


def stamp_utc(moment):
    day, hour, minute, second = moment
    offset = 2 if berlin_offset(day) == "+02:00" else 1
    local = datetime.datetime(day.year, day.month, day.day, hour, minute, second,
                              tzinfo=datetime.timezone(datetime.timedelta(hours=offset)))
    return local.astimezone(datetime.timezone.utc)


def now_moment():
    """The wall clock as a moment (date, h, m, s) in Berlin time."""
    utc = datetime.datetime.now(datetime.timezone.utc)
    hours = 2 if berlin_offset(utc.date()) == "+02:00" else 1
    local = utc + datetime.timedelta(hours=hours)
    return (local.date(), local.hour, local.minute, local.second)


def number(value):
    """JSON number: an int when whole (3), else a float (2.5)."""
    value = round(float(value), 2)
    return int(value) if value == int(value) else value


def ascii_slug(text):
    plain = unicodedata.normalize("NFKD", text)
    plain = plain.replace("Ø", "O").replace("ø", "o").replace("Ł", "L").replace("ł", "l")
    plain = plain.replace("ı", "i").replace("ß", "ss")
    plain = plain.encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z]", "", plain.lower()) or "x"


def weighted(rng, weights):
    total = sum(weights.values())
    point = rng.randrange(total)
    for value, weight in weights.items():
        if point < weight:
            return value
        point -= weight
    raise AssertionError("unreachable")


def random_date(rng, first, last):
    return first + datetime.timedelta(days=rng.randrange((last - first).days + 1))


def random_moment(rng, day):
    return (day, rng.randrange(7, 20), rng.randrange(60), rng.randrange(60))


def days(n):
    return datetime.timedelta(days=n)


# ---------------------------------------------------------------------------
# Data set
# ---------------------------------------------------------------------------

class Dataset:
    """Employees (sorted by id) and time-offs (sorted by id)."""

    def __init__(self, today):
        self.today = today
        self.employees = []
        self.by_id = {}
        self.time_offs = []
        self.time_off_by_id = {}

    def employee(self, eid):
        return self.by_id.get(eid)


def generate_dataset(seed=DEFAULT_SEED, today=DEFAULT_TODAY):
    """Build the deterministic Personio data set (same arguments, same data)."""
    rng = random.Random(seed)
    today_date = parse_date(today)
    ds = Dataset(today_date)
    ids = _employee_ids(rng, EMPLOYEE_COUNT)
    kinds = _employee_kinds(rng, EMPLOYEE_COUNT)
    for index, eid in enumerate(ids):
        emp = _make_employee(rng, index, eid, kinds[index], today_date)
        ds.employees.append(emp)
        ds.by_id[eid] = emp
    _assign_supervisors(rng, ds.employees)
    _unique_emails(ds.employees)
    _dirty_termination(ds.employees)
    ds.time_offs = _make_time_offs(rng, ds, TIME_OFF_COUNT)
    ds.time_off_by_id = {t["id"]: t for t in ds.time_offs}
    for emp in ds.employees:
        emp["balances"] = _balances(ds, emp)
    return ds


def _employee_ids(rng, count):
    ids, current = [], FIRST_EMPLOYEE_ID
    for _ in range(count):
        ids.append(current)
        current += rng.choice((1, 1, 2, 3, 7))
    return ids


def _employee_kinds(rng, count):
    """index -> active | notice | leave | onboarding | inactive. The first 30
    (the supervisors) are always active."""
    pool = list(range(30, count))
    inactive = set(rng.sample(pool, 34))
    rest = [i for i in pool if i not in inactive]
    leave = set(rng.sample(rest, 12))
    rest = [i for i in rest if i not in leave]
    onboarding = set(rng.sample(rest, 9))
    rest = [i for i in rest if i not in onboarding]
    notice = set(rng.sample(rest, 4))
    kinds = []
    for index in range(count):
        for name, members in (("inactive", inactive), ("leave", leave),
                              ("onboarding", onboarding), ("notice", notice)):
            if index in members:
                kinds.append(name)
                break
        else:
            kinds.append("active")
    return kinds


def _make_employee(rng, index, eid, kind, today):
    """One employee as internal values; employee_attributes() renders it.
    The order of the rng draws fixes the data set: do not reorder."""
    first, last = FIXED_NAMES.get(index) or (
        FIRST_NAMES[rng.randrange(len(FIRST_NAMES))], LAST_NAMES[rng.randrange(len(LAST_NAMES))])
    department = "Operations" if index == 0 else weighted(rng, DEPARTMENT_WEIGHTS)
    office_name = weighted(rng, OFFICE_WEIGHTS)
    office = None if index % 43 == 21 else next(o for o in OFFICES if o[1] == office_name)
    external = index >= 30 and rng.random() < 0.1
    schedule = WORK_SCHEDULES[weighted(rng, {0: 45, 1: 35, 2: 12, 3: 8})]
    hire, termination, last_day = _dates(rng, kind, today)
    if index == 0:
        hire = datetime.date(2014, 11, 8)           # the CEO: hire date of the [SPEC] example
    emp = {
        "id": eid, "index": index, "kind": kind,
        "first_name": first, "last_name": last,
        "preferred_name": _preferred_name(rng, first, last),
        "email": None,                                   # _unique_emails
        "gender": weighted(rng, {"male": 47, "female": 47, "diverse": 6}),
        "status": {"notice": "active"}.get(kind, kind),
        "position": "CEO" if index == 0 else (
            "" if index % 59 == 31 else rng.choice(POSITIONS[department])),
        "supervisor_id": None,                           # _assign_supervisors
        "employment_type": "external" if external else "internal",
        "schedule": schedule,
        "hire": hire,
        "contract_end": None,
        "termination": termination,
        "termination_type": rng.choice(TERMINATION_TYPES) if termination else "",
        "termination_reason": rng.choice(TERMINATION_REASONS) if termination else "",
        "probation_end": None,
        "last_working_day": last_day,
        "office": office,
        "subcompany": office[2] if office else 7033,
        "holiday_calendar": office[3] if office else DEFAULT_HOLIDAY_CALENDAR,
        "currency": office[4] if office else "EUR",
        "department": None if index % 53 == 26 else next(
            d for d in DEPARTMENTS if d[1] == department),
        "team": None,
        "has_picture": index % 7 != 3,
    }
    teams = TEAMS.get(department)
    if teams and emp["department"] and rng.random() < 0.8:
        emp["team"] = teams[rng.randrange(len(teams))]
    if hire and (today - hire).days < 730:
        emp["probation_end"] = hire + days(182)
    if external and rng.random() < 0.6:
        emp["contract_end"] = (termination or today) + days(rng.randrange(60, 400))
    if kind == "notice":
        emp["contract_end"] = None
    emp["cost_centers"] = _cost_centers(rng, index, department)
    emp.update(_pay(rng, external, schedule, emp["currency"]))
    emp["entitlement"] = [] if external else [
        (PAID_VACATION, _vacation_days(rng, schedule)), (SPECIAL_LEAVE, 2)]
    emp["custom"] = _custom_values(rng, index, emp, external)
    created_day = max(hire - days(rng.randrange(5, 40)), datetime.date(2017, 5, 23)) \
        if hire else datetime.date(2017, 5, 23)
    created_day = min(created_day, today)
    emp["created"] = random_moment(rng, created_day)
    modified_day = max(created_day, random_date(rng, datetime.date(2024, 6, 1), today))
    emp["modified"] = random_moment(rng, modified_day)
    changed = rng.sample(CHANGEABLE, rng.randrange(1, 4))
    if kind == "inactive":
        changed = ["status", "termination_date"] + changed[:1]
    elif kind in ("leave", "onboarding", "notice"):
        changed = ["status"] + changed[:1]
    emp["changed"] = changed
    return emp


def _dates(rng, kind, today):
    """(hire date, termination date, last working day)."""
    if kind == "onboarding":
        return today + days(rng.randrange(7, 90)), None, None
    hire = random_date(rng, datetime.date(2014, 1, 1), today - days(45))
    if kind == "inactive":
        termination = random_date(rng, hire + days(90), max(hire + days(90), today - days(2)))
        termination = min(termination, today - days(1))
        last_day = termination - days(rng.choice((0, 0, 0, 3, 14)))
        return hire, termination, max(last_day, hire)
    if kind == "notice":
        termination = today + days(rng.randrange(14, 120))
        return hire, termination, termination
    return hire, None, None


def _preferred_name(rng, first, last):
    roll = rng.random()
    if roll < 0.1:
        return ""
    if roll < 0.2 and first in NICKNAMES:
        return "%s %s" % (NICKNAMES[first], last)
    return "%s %s" % (first, last)


def _cost_centers(rng, index, department):
    if index % 13 == 6:
        return []
    primary = DEPARTMENT_COST_CENTER[department]
    if rng.random() < 0.12:
        return [(primary, 70), (82957, 30)]
    return [(primary, 100)]


def _pay(rng, external, schedule, currency):
    if external:
        return {"fix_salary": 0, "fix_salary_interval": "",
                "hourly_salary": number(rng.randrange(90, 241) / 2.0)}
    factor = int(schedule[2]) / 40.0
    monthly = rng.randrange(60, 181) * 50 * factor
    if rng.random() < 0.1:
        return {"fix_salary": number(monthly * 12), "fix_salary_interval": "yearly",
                "hourly_salary": 0}
    return {"fix_salary": number(monthly), "fix_salary_interval": "monthly", "hourly_salary": 0}


def _vacation_days(rng, schedule):
    full = rng.choice((25, 28, 30, 30))
    return {"40": full, "32": full * 4 // 5, "20": full}.get(schedule[2], full)


def _custom_values(rng, index, emp, external):
    office = emp["office"]
    country = office[3][2] if office else "DE"
    birthday = random_date(rng, datetime.date(1962, 1, 1), datetime.date(2004, 12, 31))
    iban_digits = "".join(str(rng.randrange(10)) for _ in range(18))
    if country == "DE":
        iban = "DE%s %s %s %s %s %s" % (iban_digits[:2], iban_digits[2:6], iban_digits[6:10],
                                        iban_digits[10:14], iban_digits[14:18], "00")
    elif country == "GB":
        iban = "GB%s SBDX %s %s %s" % (iban_digits[:2], iban_digits[2:6], iban_digits[6:10],
                                       iban_digits[10:16])
    else:
        iban = "ES%s %s %s %s %s" % (iban_digits[:2], iban_digits[2:6], iban_digits[6:10],
                                     iban_digits[10:14], iban_digits[14:18])
    trainings = rng.sample(TRAININGS, rng.randrange(0, 4))
    title = weighted(rng, {"": 92, "Dr": 6, "Prof. Dr.": 2})
    values = {
        "dynamic_1146666": None if index % 12 == 5 else fmt_date(birthday),
        "dynamic_21827": "" if external or index % 10 == 4 else iban,
        "dynamic_24407": title,
        "dynamic_1146702": "" if index % 9 == 2 else rng.choice(COUNTRIES_OF_BIRTH),
        "dynamic_1146670": str(rng.randrange(1, 7)) if country == "DE" and not external else None,
        "dynamic_1146716": ",".join(trainings) if trainings else None,
        "dynamic_1170389": rng.choice(DIETARY_NOTES) if index % 5 == 1 else "",
        "dynamic_1203344": None if index % 8 == 3 else rng.choice(SHIRT_SIZES),
        "dynamic_1205000": "" if index % 3 else "https://www.linkedin.com/in/%s-%s-%d" % (
            ascii_slug(emp["first_name"]), ascii_slug(emp["last_name"]), index),
        "dynamic_1205001": None if external or index % 6 == 5 else 100 + index,
        "dynamic_1205002": None if index % 4 == 2 else number(rng.randrange(5, 900) / 10.0),
    }
    return values


def _assign_supervisors(rng, employees):
    """Index 0 (the CEO) and index 17 report to nobody; indices 1..29 report
    to someone earlier among them; everybody else to one of the first 30."""
    for emp in employees:
        index = emp["index"]
        if index in (0, 17):
            continue
        boss = rng.randrange(0, min(index, 8)) if index < 30 else rng.randrange(0, 30)
        if boss == 17 and index < 30:
            boss = 0
        emp["supervisor_id"] = employees[boss]["id"]


def _dirty_termination(employees):
    """Dirty data: one inactive employee (the third) without termination data."""
    inactive = [e for e in employees if e["kind"] == "inactive"]
    emp = inactive[2]
    emp.update({"termination": None, "termination_type": "", "termination_reason": "",
                "last_working_day": None})


def _unique_emails(employees):
    seen = set()
    for emp in employees:
        local = "%s.%s" % (ascii_slug(emp["first_name"]), ascii_slug(emp["last_name"]))
        candidate, n = local, 1
        while candidate in seen:
            n += 1
            candidate = "%s%d" % (local, n)
        seen.add(candidate)
        emp["email"] = "%s@sandbox-demo.example" % candidate


# -- time-offs --

def _works_on(emp, day):
    return emp["schedule"][3][day.weekday()] != "00:00"


def _period_days(emp, start, end, half_start, half_end, first=None, last=None):
    """Working days of [start, end] within [first, last], half days counted 0.5."""
    total, day = 0.0, start
    while day <= end:
        inside = (first is None or day >= first) and (last is None or day <= last)
        if inside and _works_on(emp, day):
            amount = 1.0
            if (day == start and half_start) or (day == end and half_end):
                amount = 0.5
            total += amount
        day += days(1)
    return total


def _make_time_offs(rng, ds, count):
    window_start, window_end = (parse_date(d) for d in TIME_OFF_WINDOW)
    today = ds.today
    eligible = [e for e in ds.employees if e["kind"] != "onboarding" and e["hire"]]
    admin = ds.employees[5]
    # Employees on leave first: their current long absence.
    drafts = [_current_leave(rng, emp, today, window_end)
              for emp in ds.employees if emp["kind"] == "leave"]
    taken = {}                                        # employee id -> [(start, end)]
    for draft in drafts:
        taken.setdefault(draft["employee_id"], []).append((draft["start"], draft["end"]))
    random_count = 0
    while random_count < count:
        emp = eligible[rng.randrange(len(eligible))]
        type_id = SICK_LEAVE if emp["employment_type"] == "external" else weighted(
            rng, TYPE_WEIGHTS)
        first = max(window_start, emp["hire"])
        last = min(window_end, emp["termination"] or window_end)
        if first > last:
            continue
        draft = _draft_time_off(rng, emp, type_id, first, last, today, admin)
        if not draft or any(draft["start"] <= end and draft["end"] >= start
                            for start, end in taken.get(emp["id"], [])):
            continue                                  # one absence at a time
        taken.setdefault(emp["id"], []).append((draft["start"], draft["end"]))
        drafts.append(draft)
        random_count += 1
    drafts.sort(key=lambda d: (d["start"], d["employee_id"], d["type_id"]))
    next_id = FIRST_TIME_OFF_ID
    for draft in drafts:
        draft["id"] = next_id
        next_id += rng.choice((1, 1, 2, 3, 5))
    return drafts


def _draft_time_off(rng, emp, type_id, first, last, today, admin):
    type_row = TYPE_BY_ID[type_id]
    length = {PAID_VACATION: lambda: weighted(rng, {1: 25, 2: 10, 3: 15, 5: 20, 10: 15, 14: 15}),
              SICK_LEAVE: lambda: weighted(rng, {1: 40, 2: 25, 3: 20, 5: 15}),
              UNPAID_LEAVE: lambda: rng.randrange(1, 11),
              PARENTAL_LEAVE: lambda: rng.randrange(20, 61),
              SPECIAL_LEAVE: lambda: rng.choice((1, 1, 2))}[type_id]()
    start = random_date(rng, first, last)
    tries = 0
    while not _works_on(emp, start) and tries < 7:
        start += days(1)
        tries += 1
    if start > last or not _works_on(emp, start):
        return None
    end = min(start + days(length - 1), last)
    half_start = half_end = 0
    if type_row[5]:                                   # half days allowed
        roll = rng.random()
        if start == end:
            if roll < 0.1:
                half_end = 1                          # [REC]: 0 / 1 -> 0.5 days
            elif roll < 0.15:
                half_start = 1
        else:
            half_start = 1 if roll < 0.08 else 0
            half_end = 1 if 0.92 <= roll and _works_on(emp, end) else 0
    days_count = _period_days(emp, start, end, half_start, half_end)
    if days_count <= 0:
        return None
    created_day = min(start - days(rng.randrange(0 if type_id == SICK_LEAVE else 3, 60)), today)
    created = random_moment(rng, created_day)
    updated_day = min(created_day + days(weighted(rng, {0: 60, 1: 15, 3: 10, 10: 15})), today)
    updated = random_moment(rng, updated_day)
    if updated <= created:
        updated = created
    status = _status(rng, type_row, start, today)
    certificate = "not-required"
    if type_row[6]:
        certificate = "uploaded" if start <= today and rng.random() < 0.7 else "pending"
    roll = rng.random()
    created_by = "API" if roll < 0.25 else (
        "%s %s" % (admin["first_name"], admin["last_name"]) if roll < 0.4
        else "%s %s" % (emp["first_name"], emp["last_name"]))
    return {
        "employee_id": emp["id"], "type_id": type_id, "status": status,
        "comment": rng.choice(COMMENTS) if rng.random() < 0.35 else "",
        "start": start, "end": end, "days_count": days_count,
        "half_day_start": half_start, "half_day_end": half_end,
        "certificate": certificate, "created_by": created_by,
        "created": created, "updated": updated,
    }


def _current_leave(rng, emp, today, window_end):
    """The approved long absence of an employee whose status is `leave`."""
    type_id = PARENTAL_LEAVE if emp["employment_type"] == "internal" else UNPAID_LEAVE
    start = max(today - days(rng.randrange(10, 120)), emp["hire"])
    while not _works_on(emp, start):
        start += days(1)
    end = min(today + days(rng.randrange(30, 200)), window_end)
    created = random_moment(rng, start - days(rng.randrange(14, 60)))
    return {
        "employee_id": emp["id"], "type_id": type_id, "status": "approved",
        "comment": "", "start": start, "end": end,
        "days_count": _period_days(emp, start, end, 0, 0),
        "half_day_start": 0, "half_day_end": 0,
        "certificate": "uploaded" if TYPE_BY_ID[type_id][6] else "not-required",
        "created_by": "%s %s" % (emp["first_name"], emp["last_name"]),
        "created": created, "updated": created,
    }


def _status(rng, type_row, start, today):
    if not type_row[9]:                               # no approval needed
        return "approved"
    if start > today:
        return weighted(rng, {"approved": 55, "pending": 22, "requested": 8, "rejected": 8,
                              "cancelled": 7})
    return weighted(rng, {"approved": 86, "pending": 2, "requested": 1, "rejected": 6,
                          "cancelled": 5})


def _balances(ds, emp):
    """[(type id, balance, available_balance)] for the balance endpoint and
    vacation_day_balance. Untracked sick leave is listed with 0."""
    if not emp["entitlement"]:
        return []
    year_first = datetime.date(ds.today.year, 1, 1)
    year_last = datetime.date(ds.today.year, 12, 31)
    taken, planned = {}, {}
    for period in ds.time_offs:
        if period["employee_id"] != emp["id"]:
            continue
        tid = period["type_id"]
        args = (emp, period["start"], period["end"], period["half_day_start"],
                period["half_day_end"])
        if period["status"] == "approved":
            taken[tid] = taken.get(tid, 0.0) + _period_days(*args, first=year_first,
                                                            last=ds.today)
        if period["status"] in VISIBLE_STATUSES:
            planned[tid] = planned.get(tid, 0.0) + _period_days(*args, first=year_first,
                                                                last=year_last)
    result = []
    entitled = dict(emp["entitlement"])
    for tid in sorted(set(entitled) | {SICK_LEAVE}):
        if tid in entitled:
            result.append((tid, number(entitled[tid] - taken.get(tid, 0.0)),
                           number(entitled[tid] - planned.get(tid, 0.0))))
        else:
            result.append((tid, 0, 0))
    return result


# ---------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------

def attr(key, label, atype, value, universal_id="same"):
    """One attribute envelope {label, value, type, universal_id} (B3.1)."""
    return {"label": label, "value": value, "type": atype,
            "universal_id": key if universal_id == "same" else universal_id}


def nested(kind, attributes):
    return {"type": kind, "attributes": attributes}


def short_employee(emp):
    """ShortEmployee: id, first_name, last_name, email as attribute envelopes."""
    return nested("Employee", {
        "id": attr("id", "ID", "integer", emp["id"]),
        "first_name": attr("first_name", "First name", "standard", emp["first_name"]),
        "last_name": attr("last_name", "Last name", "standard", emp["last_name"]),
        "email": attr("email", "Email", "standard", emp["email"]),
    })


def employee_values(ds, emp, host):
    """key -> raw attribute value, for every attribute of the employee."""
    supervisor = ds.employee(emp["supervisor_id"]) if emp["supervisor_id"] else None
    schedule = emp["schedule"]
    office, department, team = emp["office"], emp["department"], emp["team"]
    calendar = emp["holiday_calendar"]
    balances = {tid: bal for tid, bal, _ in emp["balances"]}
    values = {
        "id": emp["id"],
        "first_name": emp["first_name"], "last_name": emp["last_name"],
        "preferred_name": emp["preferred_name"], "email": emp["email"],
        "gender": emp["gender"], "status": emp["status"], "position": emp["position"],
        "supervisor": short_employee(supervisor) if supervisor else None,
        "employment_type": emp["employment_type"],
        "weekly_working_hours": schedule[2],
        "hire_date": fmt_date(emp["hire"]),
        "contract_end_date": fmt_date(emp["contract_end"]),
        "termination_date": fmt_date(emp["termination"]),
        "termination_type": emp["termination_type"],
        "termination_reason": emp["termination_reason"],
        "probation_period_end": fmt_date(emp["probation_end"]),
        "created_at": fmt_stamp(emp["created"]),
        "last_modified_at": fmt_stamp(emp["modified"]),
        "subcompany": nested("Subcompany", {"id": emp["subcompany"],
                                            "name": SUBCOMPANIES[emp["subcompany"]]}),
        "office": nested("Office", {"id": office[0], "name": office[1]}) if office else None,
        "department": nested("Department", {"id": department[0], "name": department[1]})
        if department else None,
        "cost_centers": [nested("CostCenter", {"id": cid, "name": COST_CENTERS[cid],
                                               "percentage": pct})
                         for cid, pct in emp["cost_centers"]],
        "holiday_calendar": nested("HolidayCalendar", {
            "id": calendar[0], "name": calendar[1], "country": calendar[2], "state": calendar[3]}),
        "absence_entitlement": [nested("TimeOffType", {
            "id": tid, "name": TYPE_BY_ID[tid][1], "category": TYPE_BY_ID[tid][2],
            "entitlement": n}) for tid, n in emp["entitlement"]],
        "work_schedule": nested("WorkSchedule", dict(
            [("id", schedule[0]), ("name", schedule[1]), ("valid_from", None)]
            + list(zip(DAYS, schedule[3])))),
        "fix_salary": emp["fix_salary"],
        "fix_salary_interval": emp["fix_salary_interval"],
        "hourly_salary": emp["hourly_salary"],
        "vacation_day_balance": balances.get(PAID_VACATION, 0),
        "last_working_day": fmt_date(emp["last_working_day"]),
        "profile_picture": "http://%s/v1/company/employees/%d/profile-picture" % (host, emp["id"])
        if emp["has_picture"] else None,
        "team": nested("Team", {"id": team[0], "name": team[1]}) if team else None,
    }
    values.update(emp["custom"])
    return values


def employee_attributes(ds, emp, host, keys):
    """The `attributes` object: envelopes for `keys` (in catalogue order)."""
    values = employee_values(ds, emp, host)
    out = {}
    for key, label, atype in STANDARD_ATTRIBUTES:
        if key in keys:
            out[key] = attr(key, label, atype, values[key])
            if key in MONEY_ATTRIBUTES:
                out[key]["currency"] = emp["currency"]
    for key, label, atype, universal_id, _ in CUSTOM_ATTRIBUTES:
        if key in keys:
            out[key] = attr(key, label, atype, values[key], universal_id)
    return out


def time_off_record(ds, period):
    emp = ds.employee(period["employee_id"])
    type_row = TYPE_BY_ID[period["type_id"]]
    return {"type": "TimeOffPeriod", "attributes": {
        "id": period["id"],
        "status": period["status"],
        "comment": period["comment"],
        "start_date": fmt_date(period["start"]),
        "end_date": fmt_date(period["end"]),
        "days_count": number(period["days_count"]),
        "half_day_start": period["half_day_start"],
        "half_day_end": period["half_day_end"],
        "time_off_type": nested("TimeOffType", {"id": type_row[0], "name": type_row[1],
                                                "category": type_row[2]}),
        "employee": short_employee(emp),
        "created_by": period["created_by"],
        "certificate": {"status": period["certificate"]},
        "created_at": fmt_stamp(period["created"]),
        "updated_at": fmt_stamp(period["updated"]),
    }}


def time_off_type_record(row):
    (tid, name, category, legacy, unit, half_days, certification, timeframe, substitute,
     approval) = row
    attributes = {"id": tid, "name": name, "category": category, "legacy_category": legacy,
                  "unit": unit, "half_day_requests_enabled": half_days,
                  "certification_required": certification}
    if certification:
        attributes["certification_submission_timeframe"] = timeframe
    attributes["substitute_option"] = substitute
    attributes["approval_required"] = approval
    return nested("TimeOffType", attributes)


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------

class ApiError(Exception):
    """Raised by handlers; converted to a response by Personio.handle()."""

    def __init__(self, response):
        super().__init__(response.status)
        self.response = response


def v1_error(status, message, code=None, **extra):
    """v1 error envelope {"success": false, "error": {"code", "message"}} (B6)."""
    error = {"code": status if code is None else code, "message": message}
    error.update(extra)
    return common.json_response({"success": False, "error": error}, status)


def bad_request(message):
    return ApiError(v1_error(400, message))


def parse_int(req, name, default, minimum, message):
    raw = req.arg(name)
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"-?\d{1,9}", raw.strip()):
        raise bad_request(message)
    value = int(raw)
    if value < minimum:
        raise bad_request(message)
    return value


def list_param(req, name):
    """Values of name[] (repeated), name[N], and name (comma lists too)."""
    values = []
    for key, value in req.query_pairs:
        if key == name or key == name + "[]" or re.fullmatch(re.escape(name) + r"\[\d+\]", key):
            values.extend(part.strip() for part in value.split(",") if part.strip())
    return values


# ---------------------------------------------------------------------------
# Rate limiting
# ---------------------------------------------------------------------------

class SlidingWindow:
    """At most `limit` hits per `window` seconds; exceeding it starts a
    cool-down of `cooldown` seconds during which every hit is refused."""

    def __init__(self, limit, window, cooldown=0.0):
        self.limit, self.window, self.cooldown = limit, window, cooldown
        self._hits = deque()
        self._blocked_until = 0.0
        self._lock = threading.Lock()

    def allow(self):
        if self.limit <= 0:
            return True
        now = time.monotonic()
        with self._lock:
            if now < self._blocked_until:
                return False
            while self._hits and self._hits[0] <= now - self.window:
                self._hits.popleft()
            if len(self._hits) >= self.limit:
                self._blocked_until = now + self.cooldown
                return False
            self._hits.append(now)
            return True

    def reset(self):
        with self._lock:
            self._hits.clear()
            self._blocked_until = 0.0


# ---------------------------------------------------------------------------
# Tokens
# ---------------------------------------------------------------------------

class TokenStore:
    """Stable v1 tokens (B2.1): one live token per client id, the same one
    returned until it expires; expired tokens are refused."""

    def __init__(self, ttl):
        self.ttl = ttl
        self._lock = threading.Lock()
        self._tokens = {}        # token -> (client id, expires at, monotonic)
        self._current = {}       # client id -> token

    @staticmethod
    def _new_token():
        raw = base64.urlsafe_b64encode(secrets.token_bytes(64)).decode("ascii").rstrip("=")
        return "papi-" + raw

    def issue(self, client_id):
        """(token, seconds left) — the live token of client_id, or a new one."""
        now = time.monotonic()
        with self._lock:
            token = self._current.get(client_id)
            if token and self._tokens[token][1] > now:
                return token, self._tokens[token][1] - now
            return self._replace(client_id, token, now), self.ttl

    def _replace(self, client_id, old, now):
        if old:
            self._tokens.pop(old, None)
        token = self._new_token()
        self._tokens[token] = (client_id, now + self.ttl)
        self._current[client_id] = token
        return token

    def validate(self, token):
        """Client id of a live token, else None (expired ones are forgotten)."""
        now = time.monotonic()
        with self._lock:
            entry = self._tokens.get(token)
            if entry is None:
                return None
            if entry[1] <= now:
                del self._tokens[token]
                if self._current.get(entry[0]) == token:
                    del self._current[entry[0]]
                return None
            return entry[0]

    def rotate(self, token):
        """Legacy one-time tokens: retire `token`, return its successor."""
        now = time.monotonic()
        with self._lock:
            entry = self._tokens.get(token)
            if entry is None:
                return token
            return self._replace(entry[0], token, now)


# ---------------------------------------------------------------------------
# The provider
# ---------------------------------------------------------------------------

PREFIX = re.compile(r"^(?:/v1)?(?P<rest>/(?:auth|company)(?:/.*)?)$")


class Personio(common.Provider):
    """Personio sandbox provider."""

    name = "personio"

    @staticmethod
    def add_arguments(parser):
        parser.add_argument("--client-id", action="append", dest="client_ids", metavar="ID",
                            help="accepted client id (repeatable; default %s)" % DEFAULT_CLIENT_ID)
        parser.add_argument("--client-secret", action="append", dest="client_secrets",
                            metavar="SECRET", help="secret of the client id at the same position "
                                                   "(default %s)" % DEFAULT_CLIENT_SECRET)
        parser.add_argument("--token-ttl", type=float, default=DEFAULT_TOKEN_TTL,
                            help="token lifetime in seconds (default 86400)")
        parser.add_argument("--auth-rate-limit", type=int, default=DEFAULT_AUTH_RATE_LIMIT,
                            help="POST /v1/auth requests per window (default 60; 0 = off)")
        parser.add_argument("--auth-rate-window", type=float, default=DEFAULT_AUTH_RATE_WINDOW,
                            help="auth rate-limit window and cool-down in seconds (default 60)")
        parser.add_argument("--invalid-token-status", type=int, choices=(401, 403), default=403,
                            help="status for a wrong or expired token (default 403)")
        parser.add_argument("--rotate-tokens", action="store_true",
                            help="legacy one-time tokens rotated on every answer")
        parser.add_argument("--show-rejected", action="store_true",
                            help="keep rejected/cancelled time-offs visible")
        parser.add_argument("--readable-attributes", metavar="KEY,KEY,...",
                            help="attribute whitelist of the credential (default: all)")
        parser.add_argument("--require-app-id", action="store_true",
                            help="400 without X-Personio-App-ID")
        parser.add_argument("--employees-burst", type=int, default=0,
                            help="GET /company/employees requests per second (0 = off)")
        parser.add_argument("--employees-per-minute", type=int, default=0,
                            help="GET /company/employees requests per minute (0 = off)")
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="data set seed")
        parser.add_argument("--today", default=DEFAULT_TODAY,
                            help="the sandbox's fixed 'today' (YYYY-MM-DD)")
        webhooks.add_arguments(parser)

    def __init__(self, args):
        super().__init__(args)
        ids = args.client_ids or [DEFAULT_CLIENT_ID]
        secrets_ = args.client_secrets or [DEFAULT_CLIENT_SECRET]
        if len(ids) != len(secrets_):
            raise SystemExit("give as many --client-secret as --client-id options")
        self.clients = dict(zip(ids, secrets_))
        if args.token_ttl <= 0:
            raise SystemExit("--token-ttl must be positive")
        if parse_date(args.today) is None:
            raise SystemExit("--today must be YYYY-MM-DD")
        self.tokens = TokenStore(args.token_ttl)
        self.auth_limit = SlidingWindow(args.auth_rate_limit, args.auth_rate_window,
                                        args.auth_rate_window)
        self.burst_limit = SlidingWindow(args.employees_burst, 1.0)
        self.minute_limit = SlidingWindow(args.employees_per_minute, 60.0)
        self.readable = set(ALL_ATTRIBUTE_KEYS)
        if args.readable_attributes:
            wanted = {k.strip() for k in args.readable_attributes.split(",") if k.strip()}
            unknown = wanted - self.readable
            if unknown:
                raise SystemExit("unknown attributes: %s" % ", ".join(sorted(unknown)))
            self.readable = wanted | {"id"}
        self.ds = generate_dataset(seed=args.seed, today=args.today)
        self.router = self._build_router()
        self.write_lock = threading.Lock()
        self.dirty = False
        webhooks.check_arguments(args)
        self.webhooks = Webhooks(self)

    def _build_router(self):
        r = common.Router()
        r.add("GET", "/v1/company/employees", self.list_employees)
        r.add("GET", "/v1/company/employees/attributes", self.get_attributes)
        r.add("GET", "/v1/company/employees/custom-attributes", self.get_attributes)
        r.add("GET", "/v1/company/employees/{id}", self.get_employee)
        r.add("GET", "/v1/company/employees/{id}/absences/balance", self.get_balance)
        r.add("GET", "/v1/company/employees/{id}/profile-picture", self.get_picture)
        r.add("GET", "/v1/company/employees/{id}/profile-picture/{width}", self.get_picture)
        r.add("GET", "/v1/company/time-off-types", self.list_time_off_types)
        r.add("GET", "/v1/company/time-offs", self.list_time_offs)
        r.add("GET", "/v1/company/time-offs/{id}", self.get_time_off)
        r.add("POST", "/v1/company/employees", self.create_employee)
        r.add("PATCH", "/v1/company/employees/{id}", self.update_employee)
        r.add("POST", "/v1/company/time-offs", self.create_time_off)
        r.add("DELETE", "/v1/company/time-offs/{id}", self.delete_time_off)
        return r

    def reset(self):
        """POST /_sandbox/reset: forget the rate-limit windows. Issued tokens
        stay valid (a gateway's cached token must survive a test's reset)."""
        self.auth_limit.reset()
        self.burst_limit.reset()
        self.minute_limit.reset()
        self.webhooks.reset()
        if self.dirty:
            self.ds = generate_dataset(seed=self.args.seed, today=self.args.today)
            self.dirty = False

    # -- dispatch --

    def control_request(self, server, req):
        """/_sandbox/webhooks/...; None: common.py answers."""
        return webhooks.control(req, self.webhooks.outbox, self.webhooks.fire)

    def handle(self, req):
        v2 = unquote(req.path).rstrip("/")
        if v2 == "/v2/webhooks" or v2.startswith("/v2/webhooks/"):
            try:
                return self.webhooks.handle(req, v2)
            except ApiError as err:
                return err.response
        found = PREFIX.match(unquote(req.path).rstrip("/"))
        if not found:
            return v1_error(404, "Not found")
        path = "/v1" + found.group("rest")
        if path == "/v1/auth":
            # The auth endpoint has its own limit, counted on every request.
            if not self.auth_limit.allow():
                return v1_error(429, "Too Many Requests")
            if req.method != "POST":
                return v1_error(405, "Method not allowed")
            try:
                return self.post_auth(req)
            except ApiError as err:
                return err.response
        handler, params = self.router.match(req.method, path)
        if handler is None:
            return v1_error(params, "Not found" if params == 404 else "Method not allowed")
        if path == "/v1/company/employees" and not (self.burst_limit.allow()
                                                    and self.minute_limit.allow()):
            return v1_error(429, "Too Many Requests")
        token, denied = self.authenticate(req)
        if denied:
            return denied
        if self.args.require_app_id and not (req.header("X-Personio-App-ID")
                                             or req.header("Personio-App-ID")):
            return v1_error(400, "The X-Personio-App-ID header is required.")
        req.params = params
        try:
            resp = handler(req)
        except ApiError as err:
            return err.response
        if 200 <= resp.status < 300:
            if self.args.rotate_tokens:
                token = self.tokens.rotate(token)
            resp.header("authorization", "Bearer " + token)
        return resp

    def authenticate(self, req):
        """(token, None) when the bearer token is live, else (None, error)."""
        header = (req.header("Authorization") or "").strip()
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if not header or (scheme.lower() == "bearer" and not token):
            return None, v1_error(401, "Authorization is not provided")
        if scheme.lower() == "bearer" and self.tokens.validate(token):
            return token, None
        return None, v1_error(self.args.invalid_token_status, "Provided authorization is not valid")

    def fault_response(self, req, status, retry_after):
        """Status faults in the v1 envelope (429 body shape is UNVERIFIED,
        B6 suggests this one; 500 text from the forum)."""
        message = {429: "Too Many Requests", 500: "Something went wrong", 502: "Bad Gateway",
                   503: "Service Unavailable", 504: "Gateway Timeout"}.get(status, "Error")
        resp = v1_error(status, message)
        if retry_after is not None:
            resp.header("Retry-After", retry_after)
        return resp

    # -- auth --

    def post_auth(self, req):
        """POST /v1/auth (B2.1): credentials as query, JSON or form body."""
        creds = {k: v for k, v in req.query_pairs if k in ("client_id", "client_secret")}
        creds.update(self._body_credentials(req))
        client_id, secret = creds.get("client_id"), creds.get("client_secret")
        if not client_id or not secret:
            # PLAUSIBLE: the spec marks both required; status/text unrecorded.
            return v1_error(400, "The client_id and client_secret parameters are required.")
        if self.clients.get(client_id) != secret:
            # PLAUSIBLE: forum reports "Wrong credentials"; the status is UNVERIFIED.
            return v1_error(401, "Wrong credentials")
        token, left = self.tokens.issue(client_id)
        return common.json_response({"success": True, "data": {
            "token": token, "expires_in": int(math.ceil(left)), "scope": TOKEN_SCOPE}})

    @staticmethod
    def _body_credentials(req):
        if not req.body:
            return {}
        text = req.body.decode("utf-8", "replace")
        content_type = (req.header("Content-Type") or "").lower()
        if "json" in content_type or text.lstrip().startswith("{"):
            try:
                body = req.json_body()
            except ValueError:
                raise ApiError(v1_error(400, "The request body is not valid JSON."))
            if not isinstance(body, dict):
                return {}
            return {k: str(body[k]) for k in ("client_id", "client_secret")
                    if body.get(k) is not None}
        return {k: v for k, v in parse_qsl(text, keep_blank_values=True)
                if k in ("client_id", "client_secret")}

    # -- employees --

    def _projection(self, req):
        """Attribute keys to render: attributes[] (if any) within the whitelist."""
        wanted = list_param(req, "attributes")
        if not wanted:
            return self.readable
        return ({k for k in wanted if k in self.readable} | {"id"})

    def _employee_or_404(self, raw_id):
        emp = self.ds.employee(int(raw_id)) if re.fullmatch(r"\d{1,12}", raw_id) else None
        if emp is None:
            # PLAUSIBLE for non-numeric ids: the same 404 as an unknown one.
            raise ApiError(v1_error(404, NOT_FOUND_EMPLOYEE))
        return emp

    def _employee_record(self, emp, req, keys):
        return {"type": "Employee",
                "attributes": employee_attributes(self.ds, emp, req.host(), keys)}

    def list_employees(self, req):
        """GET /v1/company/employees (B3.2, B5)."""
        keys = self._projection(req)
        since_raw = req.arg("updated_since")
        if since_raw:
            return self._employees_updated_since(req, since_raw, keys)
        limit = parse_int(req, "limit", EMPLOYEES_DEFAULT_LIMIT, 1,
                          "The limit parameter must be a positive integer.")
        limit = min(limit, EMPLOYEES_MAX_LIMIT)           # clamped (B8.5)
        offset = parse_int(req, "offset", 0, 0,
                           "The offset parameter must be a non-negative integer.")
        matched = self.ds.employees
        email = req.arg("email")
        if email is not None:
            matched = [e for e in matched if e["email"].lower() == email.strip().lower()]
        page = matched[offset:offset + limit]
        return common.json_response({
            "success": True,
            "metadata": {"total_elements": len(matched), "current_page": offset // limit,
                         "total_pages": int(math.ceil(len(matched) / float(limit)))},
            "offset": offset,
            "limit": limit,
            "data": [self._employee_record(e, req, keys) for e in page],
        })

    def _employees_updated_since(self, req, since_raw, keys):
        since = parse_instant(since_raw)
        if since is None:
            raise bad_request("The updated_since parameter must be an ISO 8601 date-time "
                              "(2022-12-24T08:15:30) or a date (YYYY-MM-DD).")
        selectors = set(list_param(req, "attributes"))
        matched = []
        for emp in self.ds.employees:
            if stamp_utc(emp["modified"]) < since:
                continue
            if selectors and not selectors & set(emp["changed"]):
                continue
            matched.append(emp)
        return common.json_response({
            "success": True,
            "metadata": {"total_elements": len(matched), "current_page": 0,
                         "total_pages": 1 if matched else 0},
            "offset": 0,
            "limit": len(matched),
            "data": [self._employee_record(e, req, keys) for e in matched],
        })

    def get_employee(self, req):
        emp = self._employee_or_404(req.params["id"])
        return common.json_response({"success": True,
                                     "data": self._employee_record(emp, req,
                                                                   self._projection(req))})

    def get_attributes(self, req):
        """GET /v1/company/employees/attributes (B3.5): the readable attributes."""
        data = []
        for key, label, atype in STANDARD_ATTRIBUTES:
            if key != "id" and key in self.readable:
                data.append({"key": key, "label": label, "type": atype, "universal_id": key,
                             "options": []})
        for key, label, atype, universal_id, options in CUSTOM_ATTRIBUTES:
            if key in self.readable:
                data.append({"key": key, "label": label, "type": atype,
                             "universal_id": universal_id, "options": list(options)})
        return common.json_response({"success": True, "data": data})

    def get_balance(self, req):
        """GET /v1/company/employees/{id}/absences/balance (B3.6)."""
        emp = self._employee_or_404(req.params["id"])
        data = [{"id": tid, "name": TYPE_BY_ID[tid][1], "category": TYPE_BY_ID[tid][2],
                 "balance": balance, "available_balance": available}
                for tid, balance, available in emp["balances"]]
        return common.json_response({"success": True, "data": data})

    def get_picture(self, req):
        emp = self._employee_or_404(req.params["id"])
        if not emp["has_picture"] or "profile_picture" not in self.readable:
            raise ApiError(v1_error(404, NOT_FOUND_EMPLOYEE))
        return common.Response(200, PNG_PIXEL, "image/png")

    # -- time-offs --

    @staticmethod
    def _page_params(req, default_limit, max_limit):
        """(limit, requested offset, page) for page-number paging: offset is
        a 1-based page number, 0 counts as 1 (B3.8)."""
        limit = parse_int(req, "limit", default_limit, 1,
                          "The limit parameter must be a positive integer.")
        limit = min(limit, max_limit)
        offset = parse_int(req, "offset", 0, 0,
                           "The offset parameter must be a non-negative integer.")
        return limit, offset, max(offset, 1)

    @staticmethod
    def _paged(items, limit, offset, page):
        chunk = items[(page - 1) * limit:page * limit]
        return {"success": True,
                "metadata": {"total_elements": len(items), "current_page": page,
                             "total_pages": int(math.ceil(len(items) / float(limit)))},
                "offset": offset, "limit": limit}, chunk

    def list_time_off_types(self, req):
        """GET /v1/company/time-off-types (B3.7)."""
        limit, offset, page = self._page_params(req, 200, 200)
        body, chunk = self._paged(TIME_OFF_TYPES, limit, offset, page)
        body["data"] = [time_off_type_record(row) for row in chunk]
        return common.json_response(body)

    def _visible(self, period):
        return self.args.show_rejected or period["status"] in VISIBLE_STATUSES

    def list_time_offs(self, req):
        """GET /v1/company/time-offs (B3.8): page-number offset, filters."""
        limit, offset, page = self._page_params(req, TIME_OFFS_DEFAULT_LIMIT,
                                                TIME_OFFS_MAX_LIMIT)
        start, end = self._date_arg(req, "start_date"), self._date_arg(req, "end_date")
        updated_from = self._instant_arg(req, "updated_from", False)
        updated_to = self._instant_arg(req, "updated_to", True)
        if start and end and start > end:
            raise ApiError(self._validation_error("end_date", "The end date must be a date after "
                                                              "or equal to start date."))
        if updated_from and updated_to and updated_from > updated_to:
            raise ApiError(self._validation_error("updated_to", "The updated to must be a date "
                                                                "after or equal to updated from."))
        raw_ids = list_param(req, "employees")
        if not all(re.fullmatch(r"\d{1,12}", i) for i in raw_ids):
            raise bad_request("The employees[] parameter must contain employee ids.")
        wanted = {int(i) for i in raw_ids}
        matched = []
        for period in self.ds.time_offs:
            if not self._visible(period):
                continue
            if wanted and period["employee_id"] not in wanted:
                continue
            if start and period["end"] < start:
                continue
            if end and period["start"] > end:
                continue
            updated = stamp_utc(period["updated"])
            if (updated_from and updated < updated_from) or (updated_to and updated > updated_to):
                continue
            matched.append(period)
        body, chunk = self._paged(matched, limit, offset, page)
        body["data"] = [time_off_record(self.ds, p) for p in chunk]
        return common.json_response(body)

    @staticmethod
    def _validation_error(field, message):
        # [SPEC] 422 shape of POST /company/time-offs: error.code 0 + error_data.
        return v1_error(422, "The given data failed to pass validation.", code=0,
                        error_data={field: [message]})

    @staticmethod
    def _date_arg(req, name):
        raw = req.arg(name)
        if raw is None or raw == "":
            return None
        value = parse_date(raw.strip())
        if value is None:
            raise bad_request("The %s parameter must be a date (YYYY-MM-DD)." % name)
        return value

    @staticmethod
    def _instant_arg(req, name, end_of_day):
        raw = req.arg(name)
        if raw is None or raw == "":
            return None
        value = parse_instant(raw, end_of_day)
        if value is None:
            raise bad_request("The %s parameter must be a date (YYYY-MM-DD)." % name)
        return value

    def get_time_off(self, req):
        raw = req.params["id"]
        if not re.fullmatch(r"\d{1,12}", raw):
            raise ApiError(v1_error(400, "The absence period id is invalid."))
        period = self.ds.time_off_by_id.get(int(raw))
        if period is None or not self._visible(period):
            raise ApiError(v1_error(404, NOT_FOUND_TIME_OFF))
        return common.json_response({"success": True, "data": time_off_record(self.ds, period)})

    # -- writes (B3.4, B3.8): lists are replaced, never changed in place --

    @staticmethod
    def _write_body(req):
        """A JSON object, or a form (employee[email]=... nests one level)."""
        kind = (req.header("Content-Type") or "").lower()
        if "json" in kind:
            try:
                body = req.json_body()
            except (ValueError, UnicodeDecodeError):
                raise bad_request("The request body is not valid JSON.")
            if not isinstance(body, dict):
                raise bad_request("The request body must be an object.")
            return body
        body = {}
        for key, value in parse_qsl(req.body.decode("utf-8", "replace"),
                                    keep_blank_values=True):
            found = re.fullmatch(r"(\w+)\[(\w+)\]", key)
            if found:
                body.setdefault(found.group(1), {})[found.group(2)] = value
            else:
                body[key] = value
        return body

    @staticmethod
    def _flag(value, default):
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        return str(value).lower() in ("1", "true")

    def _employee_fields(self, fields, emp=None):
        """Checked values of an employee write, as internal values."""
        out = {}
        for key in ("first_name", "last_name", "preferred_name", "position"):
            if fields.get(key) is not None:
                out[key] = str(fields[key])
        if fields.get("gender") is not None:
            if fields["gender"] not in ("male", "female", "diverse"):
                raise ApiError(self._validation_error("gender", "The selected gender is "
                                                                "invalid."))
            out["gender"] = fields["gender"]
        if fields.get("status") is not None:
            if fields["status"] not in ("onboarding", "active", "leave", "inactive"):
                raise ApiError(self._validation_error("status", "The selected status is "
                                                                "invalid."))
            out["status"] = fields["status"]
        if fields.get("hire_date") is not None:
            hire = parse_date(str(fields["hire_date"]))
            if hire is None:
                raise ApiError(self._validation_error("hire_date", "The hire date is not a "
                                                                   "valid date."))
            out["hire"] = hire
        if fields.get("department") is not None:
            found = [d for d in DEPARTMENTS if d[1] == fields["department"]]
            if found:                       # B3.4: a name that does not exist is ignored
                out["department"] = found[0]
        if fields.get("office") is not None:
            found = [o for o in OFFICES if o[1] == fields["office"]]
            if found:
                out["office"] = found[0]
        if fields.get("supervisor_id") not in (None, ""):
            sid = str(fields["supervisor_id"])
            boss = self.ds.employee(int(sid)) if re.fullmatch(r"\d{1,12}", sid) else None
            if boss is None or (emp and boss["id"] == emp["id"]):
                raise ApiError(v1_error(422, "Supervisor with ID %s not found" % sid))
            out["supervisor_id"] = boss["id"]
        return out

    def create_employee(self, req):
        fields = self._write_body(req).get("employee")
        if not isinstance(fields, dict):
            raise ApiError(self._validation_error("employee", "The employee field is "
                                                              "required."))
        for key in ("email", "first_name", "last_name"):
            if not fields.get(key):
                raise ApiError(self._validation_error(key, "The %s field is required."
                                                      % key.replace("_", " ")))
        email = str(fields["email"])
        with self.write_lock:
            if any((e["email"] or "").lower() == email.lower() for e in self.ds.employees):
                raise ApiError(v1_error(422, "The email has already been taken."))
            values = self._employee_fields(fields)
            template = self.ds.employees[-1]
            eid = max(e["id"] for e in self.ds.employees) + 1
            now = now_moment()
            emp = dict(template)
            emp.update({
                "id": eid, "index": len(self.ds.employees), "kind": "active",
                "email": email, "preferred_name": "", "gender": None, "position": "",
                "supervisor_id": None, "employment_type": "internal",
                "schedule": WORK_SCHEDULES[0], "hire": None, "contract_end": None,
                "termination": None, "termination_type": "", "termination_reason": "",
                "probation_end": None, "last_working_day": None, "office": None,
                "subcompany": 7033, "holiday_calendar": DEFAULT_HOLIDAY_CALENDAR,
                "currency": "EUR", "department": None, "team": None, "has_picture": False,
                "cost_centers": [], "fix_salary": None, "fix_salary_interval": None,
                "hourly_salary": None, "entitlement": [], "balances": [],
                "custom": {key: None for key in template["custom"]},
                "created": now, "modified": now, "changed": [],
            })
            emp.update(values)
            if "status" not in values:
                emp["status"] = "onboarding" if emp["hire"] and emp["hire"] > self.ds.today \
                    else "active"
            emp["kind"] = emp["status"]
            self.ds.employees = self.ds.employees + [emp]
            self.ds.by_id = {**self.ds.by_id, eid: emp}
            self.dirty = True
        self.webhooks.person_event("person.created", eid)
        return common.json_response({"success": True, "data": {"id": eid,
                                                               "message": "success"}})

    def update_employee(self, req):
        emp = self._employee_or_404(req.params["id"])
        fields = self._write_body(req).get("employee")
        if not isinstance(fields, dict):
            raise ApiError(self._validation_error("employee", "The employee field is "
                                                              "required."))
        if fields.get("email") not in (None, "", emp["email"]):
            raise ApiError(v1_error(422, "The email cannot be changed."))
        with self.write_lock:
            values = self._employee_fields(fields, emp)
            emp.update(values)
            emp["modified"] = now_moment()
            emp["changed"] = sorted(values)
            self.dirty = True
        if values:
            self.webhooks.person_event("person.updated", emp["id"])
        return common.json_response({"success": True, "data": {"id": emp["id"]}, "meta": []})

    def create_time_off(self, req):
        body = self._write_body(req)
        for key in ("employee_id", "time_off_type_id", "start_date", "end_date",
                    "half_day_start", "half_day_end"):
            if body.get(key) in (None, ""):
                raise ApiError(self._validation_error(key, "The %s field is required."
                                                      % key.replace("_", " ")))
        type_row = TYPE_BY_ID.get(int(body["time_off_type_id"])) \
            if re.fullmatch(r"\d{1,12}", str(body["time_off_type_id"])) else None
        if type_row is None:
            raise ApiError(v1_error(404, "Time-off type not found.", code=0))
        eid = str(body["employee_id"])
        emp = self.ds.employee(int(eid)) if re.fullmatch(r"\d{1,12}", eid) else None
        if emp is None:
            raise ApiError(v1_error(404, "Employee not found.", code=0))
        start, end = parse_date(str(body["start_date"])), parse_date(str(body["end_date"]))
        if start is None or end is None:
            raise ApiError(self._validation_error("start_date" if start is None else
                                                  "end_date", "The date is not valid."))
        if end < start:
            raise ApiError(self._validation_error("end_date", "The end date must be a date "
                                                              "after or equal to start date."))
        half_start = 1 if self._flag(body.get("half_day_start"), False) else 0
        half_end = 1 if self._flag(body.get("half_day_end"), False) else 0
        skip = self._flag(body.get("skip_approval"), True)
        now = now_moment()
        with self.write_lock:
            if any(p["employee_id"] == emp["id"] and p["status"] in VISIBLE_STATUSES
                   and p["start"] <= end and p["end"] >= start for p in self.ds.time_offs):
                raise ApiError(v1_error(400, "Error when trying to insert absence period"))
            period = {
                "id": max(p["id"] for p in self.ds.time_offs) + 1,
                "employee_id": emp["id"], "type_id": type_row[0],
                "status": "approved" if skip or not type_row[9] else "pending",
                "comment": str(body.get("comment") or ""),
                "start": start, "end": end,
                "days_count": _period_days(emp, start, end, half_start, half_end),
                "half_day_start": half_start, "half_day_end": half_end,
                "certificate": "pending" if type_row[6] else "not-required",
                "created_by": "API", "created": now, "updated": now,
            }
            self.ds.time_offs = self.ds.time_offs + [period]
            self.ds.time_off_by_id = {**self.ds.time_off_by_id, period["id"]: period}
            emp["balances"] = _balances(self.ds, emp)
            self.dirty = True
        self.webhooks.absence_event("absence-period.created", period["id"], emp["id"])
        return common.json_response({"success": True,
                                     "data": time_off_record(self.ds, period)})

    def delete_time_off(self, req):
        raw = req.params["id"]
        if not re.fullmatch(r"\d{1,12}", raw):
            raise ApiError(v1_error(400, "The absence period id is invalid."))
        with self.write_lock:
            period = self.ds.time_off_by_id.get(int(raw))
            if period is None or not self._visible(period):
                raise ApiError(v1_error(404, NOT_FOUND_TIME_OFF))
            self.ds.time_offs = [p for p in self.ds.time_offs if p is not period]
            self.ds.time_off_by_id = {k: v for k, v in self.ds.time_off_by_id.items()
                                      if v is not period}
            emp = self.ds.employee(period["employee_id"])
            if emp:
                emp["balances"] = _balances(self.ds, emp)
            self.dirty = True
        self.webhooks.absence_event("absence-period.deleted", period["id"],
                                    period["employee_id"])
        return common.json_response({"success": True,
                                     "data": {"message": "The absence period was deleted."}})


# ---------------------------------------------------------------------------
# v2 webhooks (shared/reference/fleet-writes-webhooks.md §3)
# ---------------------------------------------------------------------------

# Event names of Personio's webhook catalogue (developer.personio.de, "Event-
# driven data from Personio", "Attendance & Absence Events").
WEBHOOK_EVENTS = (
    "person.created", "person.updated", "person.deleted",
    "employment.created", "employment.updated", "employment.deleted",
    "employment.started", "employment.terminated",
    "absence-period.created", "absence-period.updated.timerange",
    "absence-period.updated.status", "absence-period.deleted",
    "attendance-period.created", "attendance-period.updated", "attendance-period.deleted")
WEBHOOK_AUTH_TYPES = ("NONE", "TOKEN", "CUSTOM")
WEBHOOK_STATUSES = ("ENABLED", "DISABLED")
# "Retried up to 6 times over 3 days" [H]; PLAUSIBLE: these waits (3 days in
# all), and that every answer but a 2xx, or none within 3 s, is retried.
WEBHOOK_RETRIES = (300, 1800, 7200, 21600, 86400, 141900)
WEBHOOK_TIMEOUT = 3           # "answer 2xx within 3 s" [H]
WEBHOOK_LIMIT = 100           # registrations kept at once (PLAUSIBLE)
WEBHOOK_EVENT_LOG = 500       # events kept per registration for /events
COMPANY_ID = "7033"           # PLAUSIBLE: the sandbox's main subcompany id
TOKEN_LIMIT = 1024            # PLAUSIBLE


def v2_error(status, title, detail):
    """v2 error envelope (B4.3's recorded 404)."""
    code = {400: "bad_request", 401: "unauthorized", 404: "not_found"}.get(status, "error")
    return common.json_response({
        "personio_trace_id": str(uuid.uuid4()),
        "timestamp": datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ"),
        "errors": [{"title": title, "detail": detail,
                    "type": "https://developer.personio.de/v2.0/page/public-api-error-codes"
                            "#common.%s" % code}]}, status)


class Webhooks:
    """/v2/webhooks and the events the sandbox's writes send. Payloads carry
    ids only; the registration's token goes verbatim in Authorization (no
    HMAC)."""

    def __init__(self, provider):
        self.provider = provider
        self.args = provider.args
        self.lock = threading.Lock()
        self.hooks = {}
        self.outbox = webhooks.Outbox(WEBHOOK_RETRIES, lambda status: True, WEBHOOK_TIMEOUT,
                                      self.args.webhook_time_scale)

    def reset(self):
        with self.lock:
            self.hooks = {}
        self.outbox.clear()

    # -- the API --

    def handle(self, req, path):
        """`path` is /v2/webhooks[/...]; auth as the data routes (the
        sandbox has no /v2/auth/token: its v1 tokens are taken here too)."""
        _, denied = self.provider.authenticate(req)
        if denied:
            return v2_error(401, "Unauthorized", "The access token is missing or invalid.")
        parts = path.split("/")[3:]
        with self.lock:
            if not parts:
                if req.method == "GET":
                    return self._page(req, [self._public(h) for h in self.hooks.values()])
                if req.method == "POST":
                    return self._create(req)
            elif len(parts) == 1 and parts[0] in self.hooks:
                hook = self.hooks[parts[0]]
                if req.method == "GET":
                    return common.json_response(self._public(hook))
                if req.method == "PATCH":
                    return self._update(req, hook)
                if req.method == "DELETE":
                    del self.hooks[hook["id"]]
                    self.outbox.drop_webhook(hook["id"])
                    return common.Response(204, b"")
            elif len(parts) == 2 and parts[0] in self.hooks and parts[1] == "events" \
                    and req.method == "GET":
                return self._page(req, list(self.hooks[parts[0]]["_events"]))
            elif len(parts) <= 2:
                return v2_error(404, "Resource not found",
                                "There is no resource for the specified id.")
        return v2_error(405 if len(parts) <= 2 else 404, "Not Found",
                        "The endpoint with %s was not found." % path)

    @staticmethod
    def _public(hook):
        """The registration as answered: never the token (PLAUSIBLE)."""
        public = {"id": hook["id"]}
        public.update((k, v) for k, v in hook.items() if not k.startswith("_") and k != "token")
        return public

    @staticmethod
    def _page(req, rows):
        return common.json_response({"_data": rows, "_meta": {"links": {"self": {
            "href": "http://%s%s" % (req.host(), req.path)}}}})

    @staticmethod
    def _body(req):
        try:
            body = req.json_body()
        except (ValueError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            raise ApiError(v2_error(400, "Bad Request", "The body must be a JSON object."))
        return body

    def _validated(self, body, hook=None):
        """The fields of a create (hook None) or the merge of an update.
        PLAUSIBLE: the messages; auth_type defaulting to NONE; the token
        (required for TOKEN and CUSTOM) sent as given in both cases."""
        merged = dict(hook or {"auth_type": "NONE", "token": None, "status": "ENABLED",
                               "description": ""})
        merged.update({k: body[k] for k in ("url", "auth_type", "token", "enabled_events",
                                            "status", "description") if k in body})

        def bad(detail):
            return ApiError(v2_error(400, "Bad Request", detail))
        problem_text = webhooks.url_problem(merged.get("url"), self.args)
        if problem_text:
            raise bad(problem_text)
        if merged["auth_type"] not in WEBHOOK_AUTH_TYPES:
            raise bad("auth_type must be one of %s." % ", ".join(WEBHOOK_AUTH_TYPES))
        token = merged.get("token")
        if merged["auth_type"] == "NONE":
            merged["token"] = None
        elif not isinstance(token, str) or not token or len(token) > TOKEN_LIMIT \
                or any(ord(c) < 32 or ord(c) == 127 for c in token):
            raise bad("token is required for auth_type %s (at most %d printable "
                      "characters)." % (merged["auth_type"], TOKEN_LIMIT))
        events = merged.get("enabled_events")
        if not isinstance(events, list) or not events:
            raise bad("enabled_events must be a non-empty list.")
        for event in events:
            if event not in WEBHOOK_EVENTS:
                raise bad("Unknown event %s." % event)
        merged["enabled_events"] = list(dict.fromkeys(events))
        if merged["status"] not in WEBHOOK_STATUSES:
            raise bad("status must be ENABLED or DISABLED.")
        if not isinstance(merged["description"], str):
            raise bad("description must be a string.")
        return merged

    def _create(self, req):
        if len(self.hooks) >= WEBHOOK_LIMIT:
            raise ApiError(v2_error(400, "Bad Request", "Too many webhooks."))
        hook = self._validated(self._body(req))
        now = webhooks.utc_now().strftime("%Y-%m-%dT%H:%M:%SZ")
        hook.update({"id": str(uuid.uuid4()), "created_at": now, "updated_at": now,
                     "_events": deque(maxlen=WEBHOOK_EVENT_LOG)})
        self.hooks[hook["id"]] = hook
        return common.json_response(self._public(hook), 201)

    def _update(self, req, hook):
        merged = self._validated(self._body(req), hook)
        merged["updated_at"] = webhooks.utc_now().strftime("%Y-%m-%dT%H:%M:%SZ")
        hook.update(merged)
        return common.json_response(self._public(hook))

    # -- events --

    def emit(self, event, payload):
        """Queue `event` (payload: ids only) for every enabled registration
        that asked for it; returns the delivery ids."""
        queued = []
        with self.lock:
            targets = [h for h in self.hooks.values()
                       if h["status"] == "ENABLED" and event in h["enabled_events"]]
            for hook in targets:
                body = {"company_id": COMPANY_ID, "event_name": event,
                        "occurred_at": webhooks.utc_now().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
                        + "Z",
                        "payload": payload,
                        # PLAUSIBLE: what meta holds.
                        "meta": {"event_id": str(uuid.uuid4()), "webhook_id": hook["id"]}}
                hook["_events"].append(body)
                raw = common.dump_json(body)
                headers = [("Content-Type", "application/json"),
                           ("User-Agent", "Personio-Webhooks")]
                if hook["token"] is not None:
                    headers.append(("Authorization", hook["token"]))
                queued.append(self.outbox.post(hook["id"], event, hook["url"],
                                               lambda raw=raw, headers=headers: (raw, headers)))
        return queued

    def person_event(self, event, person_id):
        return self.emit(event, {"id": str(person_id)})

    def absence_event(self, event, period_id, person_id):
        # PLAUSIBLE: the v1 time-off id stands for the v2 absence-period id.
        return self.emit(event, {"id": str(period_id), "person": {"id": str(person_id)}})

    def fire(self, body):
        """POST /_sandbox/webhooks/fire {"event", "id", "person_id"}."""
        event, raw = body.get("event"), str(body.get("id", ""))
        if event not in WEBHOOK_EVENTS:
            return common.json_response({"error": "event must be one of %s"
                                                  % ", ".join(WEBHOOK_EVENTS)}, 400)
        if not re.fullmatch(r"\d{1,12}", raw):
            return common.json_response({"error": "id must be a numeric id"}, 400)
        ds = self.provider.ds
        if event.startswith("absence-period."):
            period = ds.time_off_by_id.get(int(raw))
            person = body.get("person_id", period["employee_id"] if period else None)
            if person is None:
                return common.json_response({"error": "no time-off %s: give person_id"
                                                      % raw}, 404)
            return webhooks.fired(self.absence_event(event, raw, person))
        if not event.endswith(".deleted") and ds.employee(int(raw)) is None:
            return common.json_response({"error": "no employee %s" % raw}, 404)
        return webhooks.fired(self.person_event(event, raw))


def main(argv=None):
    common.serve(Personio, argv, "Personio sandbox provider")


if __name__ == "__main__":
    main()
