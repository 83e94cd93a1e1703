#!/usr/bin/env python3
"""BambooHR sandbox provider.

    python3 sandbox/bamboohr.py --port 9101 [--api-key KEY ...] [--verbose]
        [--oauth-client ID:SECRET:REDIRECT_URI ...] [--code-ttl S]
        [--access-token-ttl S] [--no-rotate] [--token-delay-ms N]
        [--access-token-bytes N] [--company-domain D]

Behaves like the BambooHR API described in
shared/reference/providers-bamboohr-personio.md PART A (A1-A8): the same
handlers answer under /v1/..., /api/gateway.php/{domain}/v1/... and
/api/v1/... (and v1_1 where BambooHR has it); HTTP Basic auth with the API
key as user name; XML unless `Accept: application/json`; string ids and
amounts; "", null and "0000-00-00" for unset dates; cursor pagination on
GET /v1/employees. The data set is generated deterministically by
generate_dataset(), which other code may import.

Shapes not in the shared reference were taken from BambooHR's public OpenAPI
spec (BambooHR/bhr-api-php specs/public.yaml, "[SPEC]" below); anything
neither source settles is marked PLAUSIBLE.

Fields asked for by name (A4.3, A4.5)
-------------------------------------

GET /v1/employees/{id}?fields=, the `fields=` of GET /v1/employees and the
`fields` of POST /v1/reports/custom name at most 400 fields (MAX_FIELDS;
every name counts, known or not). More:
  GET /v1/employees/{id}, reports  400, empty body, X-BambooHR-Error-Message
                                   "Too many fields requested (max 400)."
  GET /v1/employees                400 {"error": {"code": "BadRequest",
                                   "message": "Invalid request parameters. No
                                   more than 400 fields may be requested."}}
Besides the aliases of A7 and customShirtSize/customDietaryRestrictions,
the company has 500 generated custom text fields customField5001 ..
customField5500 (meta field ids 5001 .. 5500), served by all three: the
value is "<number>-<employee id>" (e.g. "5001-4"), null when number + id is
a multiple of 17.
PLAUSIBLE: the limit on GET /v1/employees (the reference documents it for
the other two only), its error there in that endpoint's own style; the
message texts; the generated fields (names, count, values).

OAuth 2.0 authorization code flow (A2.2, A8 item 2)
---------------------------------------------------

    --oauth-client ID:SECRET:REDIRECT_URI
                     registered client, repeatable; ID and SECRET hold no
                     colon, all after the second colon is the URI; `*`
                     accepts any redirect_uri. Default (replaced by any
                     explicit one): sandbox-bamboohr-client:sandbox-bamboohr-secret:*
    --code-ttl S     authorization code lifetime (600)
    --access-token-ttl S  access token lifetime = expires_in (3600)
    --no-rotate      refresh answers carry no refresh_token; the old one stays
    --token-delay-ms N    every /token.php answer waits N ms first (0)
    --access-token-bytes N  access tokens padded to N characters (0: ~50)
    --company-domain D    companyDomain of token answers ("sandbox")

Both endpoints answer at the root, under /api and under
/api/gateway.php/{domain} (like the data routes), need no credentials, and
are subject to the fault queue like any provider request.

  GET /authorize.php?request=authorize&response_type=code&client_id=..
      &redirect_uri=..&scope=..&state=..
    Unknown/missing client_id, missing or non-absolute redirect_uri (or one
    with a fragment), or one not equal to the registered URI -> 400 HTML page
    with X-BambooHR-Error-Message, never a redirect (RFC 6749 4.1.2.1).
    Otherwise 302 Location: <redirect_uri>?code=<code>&state=<state>, or
    <redirect_uri>?error=..&error_description=..&state=.. with
      invalid_request            request != authorize, response_type missing,
                                 a parameter repeated
      unauthorized_client        response_type=token (implicit grant)
      unsupported_response_type  any other response_type but code
      invalid_scope              a scope not in the vendor spec's list
                                 (KNOWN_SCOPES, each also with `.write`)
    The scope is space separated ('+' in the URL); no scope at all is
    accepted (the vendor's SDK example sends none) and grants "". Without
    offline_access the code yields no refresh token; with openid an id_token.
  POST /token.php?request=token  (request=token may be in the body instead)
    Body: application/x-www-form-urlencoded, or a JSON object
    (application/json, or no Content-Type and a body starting with `{`).
    Client: client_id + client_secret in the body, or HTTP Basic.
    grant_type=authorization_code: code, redirect_uri (equal to the
    authorize call's), client_id, client_secret. grant_type=refresh_token:
    refresh_token, client_id, client_secret, optional narrower scope.
    200 {"access_token","expires_in","token_type":"Bearer","scope",
         "refresh_token" (offline_access; on a refresh: a NEW one, the old one
         is then "rotated" and refused; none with --no-rotate),
         "id_token" (openid; unsigned JWT shape, alg none), "companyDomain"}
    Errors, JSON {"error","error_description"}, Cache-Control: no-store:
      400 invalid_request        missing grant_type/code/redirect_uri/
                                 refresh_token/request=token, repeated form
                                 parameter, broken JSON
      400 unsupported_grant_type any grant_type but the two above
      401 invalid_client         missing/unknown client or wrong secret
                                 (+ WWW-Authenticate: Basic when Basic was used)
      400 invalid_grant          code unknown, of another client, used,
                                 expired or redirect_uri differs; refresh token
                                 unknown, of another client, rotated, revoked
      400 invalid_scope          a refresh asking for scope not granted
      405                        not POST
    Replaying a used code also revokes the tokens it gave (RFC 6749 4.1.2).
    Access tokens of a rotated refresh token stay valid until they expire.
  Data endpoints take `Authorization: Bearer <access token>` besides Basic
  keys (any valid token reaches every endpoint: scopes are not enforced);
  unknown, expired or revoked -> 401, empty body, X-BambooHR-Error-Message
  "Invalid access token." / "The access token has expired." / "... revoked."

Control endpoints (no auth; common.control_request asks the provider's
control_request() first):
  GET  /_sandbox/oauth/grants  {"codes": [{code, client_id, redirect_uri,
       scope, state unused|used|expired, expires_in}], "access_tokens":
       [{access_token, client_id, scope, grant_type, state
       active|expired|revoked, expires_in}], "refresh_tokens":
       [{refresh_token, client_id, scope, grant_type, state
       active|rotated|revoked, replaced_by}], "token_calls": {...}}
  POST /_sandbox/oauth/code    {"client_id","redirect_uri","scope"} (all
       optional: first client, its URI or http://127.0.0.1/callback for `*`,
       scope "" ; scope a string or an array) -> {"code","client_id",
       "redirect_uri","scope","expires_in"}; invalid -> 400 {"error"}
  POST /_sandbox/oauth/revoke  {"refresh_token": T} | {"access_token": T} |
       {"all": true} (every active refresh token) -> {"revoked": n}
  POST /_sandbox/oauth/expire  {"access_token": T} | {"all": true} -> {"expired": n}
  GET  /_sandbox/stats         by_path also counts token.php requests per
       grant_type: "/token.php#authorization_code", "/token.php#refresh_token",
       "/token.php#<other>", "/token.php#none" (missing or unreadable), for
       every path shape, failed ones included (not the faulted ones);
       `requests` is not changed by these keys.
  POST /_sandbox/reset         also forgets every code and token and the
       counters (registered clients stay).
Webhooks (A4.10; shared/reference/fleet-writes-webhooks.md §3)
---------------------------------------------------------------
  POST|GET /v1/webhooks, GET|PUT|DELETE /v1/webhooks/{id},
  GET /v1/webhooks/monitor_fields: registrations with a one-time privateKey.
  Employee writes post employee.created / employee.updated (changedFields,
  limited to monitorFields), signed X-BambooHR-Signature = hex
  HMAC-SHA256(privateKey, body + X-BambooHR-Timestamp), from webhooks.py's
  background thread; 5xx retried 5 times (5..80 minutes, scaled by
  --webhook-time-scale), 4xx not. Class Webhooks below; the details and the
  PLAUSIBLE choices are in sandbox/README.md.

Writes (A4.4, A4.9; shared/reference/fleet-writes-webhooks.md §2)
-----------------------------------------------------------------

  POST /v1/employees          JSON {"firstName", "lastName", ...aliases}:
      firstName and lastName required (400). 201, Location: <this
      server>/api/gateway.php/<domain>/v1/employees/<id>, and the body
      {"id", "firstName", "lastName", "status": "Active"} (the live
      recording; the spec shows none). A field that is not a writable
      alias: 406; workEmail of another employee: 409; a department,
      division, location or employmentHistoryStatus that is not an option
      of /v1/meta/lists, or a date that is not YYYY-MM-DD: 400. The message
      is in X-BambooHR-Error-Message, the body empty.
  POST /v1/employees/{id}     the same fields, any of them (a partial
      update); 200 with {"id", "firstName", "lastName", "status", and the
      fields changed} (the recording); 404 unknown employee.
  PUT  /v1/employees/{id}/time_off/request  JSON {"status" (requested,
      approved, denied or declined), "start", "end", "timeOffTypeId",
      "amount", "notes": [{"from", "note"}], "dates": [{"ymd", "amount"}]};
      status, start, end and timeOffTypeId required (400); unknown
      employee 404; a type that is not one of /v1/meta/time_off/types, or
      end before start: 400. 201, Location .../time_off/request/<id>, and
      the request as JSON (the recording's shape: status with lastChanged
      "YYYY-MM-DD HH:MM:SS", notes [] when there are none); later lists
      hold it. Without "amount", the weekdays between start and end, 8
      hours or 1 day each.
  PUT  /v1/time_off/requests/{id}/status  JSON {"status", "note"}: approved,
      denied, declined (stored as denied), canceled or cancelled (stored
      as canceled); 200 with an empty text/html body; 404 unknown request;
      400 another status.
  PLAUSIBLE (the reference does not settle them): the error texts; 406 for
  a field name outside the writable aliases (the reference says "406
  unknown field"); which transitions are allowed (approve or deny a
  requested one; cancel a requested or approved one; else 400 "The
  request cannot change from <status> to <status>."); the XML bodies
  (refused: 400 "Malformed XML", the sandbox takes JSON only); new ids
  (one above the highest); the defaults of a new employee (Active, no
  manager, no photo); the note of a status change, which is kept as the
  manager's note. POST /_sandbox/reset also brings the data set back.

PLAUSIBLE: the immediate 302 (a sandbox has no login or consent page); the
error pages and messages; request=authorize/token being required; the
`bhr-at-`/`bhr-rt-` token prefixes; code one-time use counted only on success;
Basic client auth; refresh scope narrowing; bearer tokens also on the
gateway.php shape (UNVERIFIED in A2.2); no refresh-token family revocation.
"""

import argparse
import base64
import binascii
import datetime
import hashlib
import hmac
import json
import os
import random
import re
import secrets
import sys
import threading
import time
import unicodedata
from urllib.parse import parse_qsl, unquote, unquote_plus, urlencode, urlsplit
from xml.sax.saxutils import escape, quoteattr

# Import the shared server from this directory without leaving a
# __pycache__ behind in the source tree.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (needs the path above)
import webhooks  # noqa: E402

DEFAULT_API_KEY = "0123456789abcdef0123456789abcdef01234567"
DEFAULT_SEED = 20260601
# "Today" is fixed so that answers never depend on the wall clock.
DEFAULT_TODAY = "2026-06-01"
EMPLOYEE_COUNT = 330
TIME_OFF_REQUEST_COUNT = 640
TIME_OFF_WINDOW = ("2025-01-01", "2026-12-31")

ERROR_HEADER = "X-BambooHR-Error-Message"
XML_TYPE = "text/xml; charset=UTF-8"
EMPTY_TYPE = "text/html; charset=UTF-8"

# ---------------------------------------------------------------------------
# Reference lists (what /v1/meta/lists serves; employees draw from these)
# ---------------------------------------------------------------------------

# (option id, name, archived). Archived options are historical only: a few
# terminated employees still carry them.
DEPARTMENTS = [
    (18199, "Legacy Support", True),
    (18201, "Human Resources", False),
    (18202, "Engineering", False),
    (18203, "Sales", False),
    (18204, "Marketing", False),
    (18205, "Finance", False),
    (18206, "Customer Success", False),
    (18207, "Operations", False),
    (18208, "Product", False),
    (18209, "Legal", False),
    (18210, "IT", False),
]
DEPARTMENT_WEIGHTS = {"Engineering": 30, "Sales": 15, "Customer Success": 12, "Marketing": 8,
                      "Product": 8, "Operations": 7, "Finance": 6, "Human Resources": 5,
                      "Legal": 3, "IT": 6}

DIVISIONS = [
    (18300, "Global Services", True),
    (18301, "North America", False),
    (18302, "EMEA", False),
    (18303, "APAC", False),
    (18304, "LATAM", False),
]

# (option id, name, archived, division, address1, city, state, zip, country, currency)
LOCATIONS = [
    (18237, "Lindon, Utah", True, "North America", "335 S 560 W", "Lindon", "Utah", "84042",
     "United States", "USD"),
    (18238, "London, UK", False, "EMEA", "1 Finsbury Avenue", "London", "", "EC2M 2PF",
     "United Kingdom", "GBP"),
    (18239, "Salt Lake City, Utah", False, "North America", "50 W Broadway", "Salt Lake City",
     "Utah", "84101", "United States", "USD"),
    (18240, "Berlin, Germany", False, "EMEA", "Friedrichstraße 68", "Berlin", "Berlin", "10117",
     "Germany", "EUR"),
    (18241, "New York, NY", False, "North America", "200 Park Avenue", "New York", "New York",
     "10166", "United States", "USD"),
    (18242, "Remote", False, "North America", "", "", "", "", "United States", "USD"),
    (18243, "Sydney, Australia", False, "APAC", "1 Macquarie Place", "Sydney", "New South Wales",
     "2000", "Australia", "AUD"),
    (18244, "São Paulo, Brazil", False, "LATAM", "Avenida Paulista 1000", "São Paulo",
     "São Paulo", "01310-100", "Brazil", "BRL"),
]
# In LOCATIONS order (weighted() walks the dict in order; the data set depends on it).
LOCATION_WEIGHTS = {"London, UK": 30, "Salt Lake City, Utah": 18, "Berlin, Germany": 17,
                    "New York, NY": 14, "Remote": 9, "Sydney, Australia": 6,
                    "São Paulo, Brazil": 6}

# Job titles per department: (option id, title). The archived department has
# an archived title.
JOB_TITLES = {
    "Legacy Support": [(18499, "Webmaster")],
    "Human Resources": [(18401, "Sr. HR Administrator"), (18402, "HR Generalist"),
                        (18403, "Recruiter"), (18404, "People Operations Manager")],
    "Engineering": [(18410, "Software Engineer"), (18411, "Senior Software Engineer"),
                    (18412, "Engineering Manager"), (18413, "QA Analyst"),
                    (18414, "Site Reliability Engineer")],
    "Sales": [(18420, "Account Executive"), (18421, "Sales Development Rep"),
              (18422, "Sales Manager")],
    "Marketing": [(18430, "Marketing Specialist"), (18431, "Content Writer"),
                  (18432, "Marketing Manager")],
    "Finance": [(18440, "Accountant"), (18441, "Financial Analyst"), (18442, "Controller")],
    "Customer Success": [(18450, "Support Engineer"), (18451, "Customer Success Manager"),
                         (18452, "Support Team Lead")],
    "Operations": [(18460, "Operations Coordinator"), (18461, "Office Manager"),
                   (18462, "Chief Executive Officer")],
    "Product": [(18470, "Product Manager"), (18471, "Product Designer"), (18472, "UX Researcher")],
    "Legal": [(18480, "Legal Counsel"), (18481, "Paralegal")],
    "IT": [(18490, "IT Support Specialist"), (18491, "Systems Administrator")],
}
ARCHIVED_TITLE_IDS = {18499}

EMPLOYMENT_STATUSES = [
    (18157, "Seasonal", True),
    (18158, "Full-Time", False),
    (18159, "Part-Time", False),
    (18160, "Contractor", False),
    (18161, "Terminated", False),
    (18162, "Intern", False),
    (18163, "Furloughed", False),
]
# Employment types of active employees and their weights.
ACTIVE_TYPE_WEIGHTS = {"Full-Time": 70, "Part-Time": 10, "Contractor": 8, "Intern": 5,
                       "Furloughed": 4}

SHIRT_SIZES = [(18501, "XS"), (18502, "S"), (18503, "M"), (18504, "L"), (18505, "XL"),
               (18506, "XXL")]
DIETARY = ["None", "Vegetarian", "Vegan", "Gluten-free", "Halal", "Kosher", "Nut allergy"]

FIRST_NAMES = [
    "Ava", "Sam", "Liam", "Olivia", "Noah", "Emma", "Mason", "Sophia", "Lucas", "Mia", "Ethan",
    "Amelia", "Logan", "Harper", "James", "Evelyn", "Benjamin", "Abigail", "Elijah", "Emily",
    "Oliver", "Ella", "Jacob", "Scarlett", "Michael", "Grace", "Daniel", "Chloe", "Henry",
    "Victoria", "Jackson", "Riley", "Sebastian", "Aria", "Aiden", "Lily", "Matthew", "Aubrey",
    "Samuel", "Hannah", "David", "Layla", "Joseph", "Nora", "Carter", "Priya", "Owen", "Ananya",
    "Wyatt", "Mei", "John", "Yuki", "Jack", "Fatima", "Luke", "Aisha", "Dylan", "Ingrid",
    "Grayson", "Chiara", "Levi", "Nadia", "Isaac", "Elena", "Gabriel", "Camila", "Julian",
    "Lucía", "Mateo", "Renée", "Anthony", "Chloé", "Kwame", "Zoë", "Lincoln", "José",
    "Joshua", "Björn", "Christopher", "Søren", "Andrew", "François", "Theodore", "Łukasz",
    "Caleb", "Siobhán", "Tomás", "Anaïs", "Dmitri", "Saoirse",
]
LAST_NAMES = [
    "Abbott", "Caldwell", "Nguyen", "Park", "Smith", "Lee", "Johnson", "Williams", "Brown",
    "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez", "Hernandez", "Lopez",
    "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
    "Thompson", "White", "Harris", "Clark", "Lewis", "Robinson", "Walker", "Young", "Allen",
    "King", "Wright", "Scott", "Torres", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker",
    "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Kim", "Patel", "Singh",
    "Chen", "Wang", "Yamamoto", "Okafor", "Haddad", "Novak", "Kowalski", "Schmidt", "Rossi",
    "Dubois", "O'Brien", "Müller", "Núñez", "Ødegaard", "Şahin", "García", "Lefèvre",
]
# Fixed names at fixed positions, so tests can rely on some unicode.
FIXED_NAMES = {0: ("Charlotte", "Abbott"), 1: ("Jennifer", "Caldwell"), 3: ("José", "García"),
               7: ("Zoë", "Müller"), 12: ("Björn", "Ødegaard")}

# ---------------------------------------------------------------------------
# Time off reference data
# ---------------------------------------------------------------------------

# (id, name, units, color, icon)
TIME_OFF_TYPES = [
    ("77", "Bereavement", "days", "6a6a6a", "time-off-luggage"),
    ("78", "Vacation", "hours", None, "palm-trees"),
    ("79", "Sick", "hours", "d1495b", "medical-kit"),
    ("80", "Parental Leave", "days", "4f9d69", "baby-carriage"),
    ("81", "Jury Duty", "days", None, "gavel"),
    ("82", "Comp/In Lieu Time", "hours", "ffb020", "clock"),
]
TYPE_BY_ID = {t[0]: t for t in TIME_OFF_TYPES}
TYPE_WEIGHTS = {"78": 45, "79": 25, "82": 8, "77": 6, "80": 3, "81": 4}
REQUEST_STATUSES = ["approved", "denied", "superceded", "requested", "canceled"]
STATUS_WEIGHTS = {"approved": 55, "requested": 15, "denied": 10, "canceled": 10, "superceded": 10}

# (id, timeOffTypeId, name, type, yearly accrual or manual grant)
TIME_OFF_POLICIES = [
    ("1", "78", "Vacation - Full-Time", "accruing", 120),
    ("2", "78", "Vacation - Part-Time", "accruing", 60),
    ("3", "79", "Sick Leave", "accruing", 40),
    ("4", "77", "Bereavement", "discretionary", 0),
    ("5", "80", "Parental Leave", "manual", 60),
    ("6", "81", "Jury Duty", "discretionary", 0),
    ("7", "82", "Comp Time", "manual", 16),
]
POLICY_BY_ID = {p[0]: p for p in TIME_OFF_POLICIES}
POLICIES_BY_TYPE = {
    "Full-Time": ["1", "3", "4", "5", "6"],
    "Furloughed": ["1", "3", "4", "5", "6"],
    "Part-Time": ["2", "3", "4", "7"],
    "Intern": ["3", "4"],
    "Contractor": [],
    None: ["1", "3", "4"],
}

# ---------------------------------------------------------------------------
# Field catalogue (/v1/meta/fields) — ids from the live /meta/fields (A7)
# ---------------------------------------------------------------------------

# (id, name, type, alias or None, deprecated)
FIELD_CATALOG = [
    (1, "First Name", "text", "firstName", False),
    (2, "Last Name", "text", "lastName", False),
    (3, "Hire Date", "date", "hireDate", False),
    (4, "Department", "list", "department", False),
    (5, "Middle Name", "text", "middleName", False),
    (6, "Birth Date", "date", "dateOfBirth", False),
    (7, "SSN", "ssn", "ssn", False),
    (8, "Address Line 1", "text", "address1", False),
    (9, "Address Line 2", "text", "address2", False),
    (10, "City", "text", "city", False),
    (11, "State", "state", "state", False),
    (12, "Zip Code", "text", "zipcode", False),
    (13, "Mobile Phone", "phone", "mobilePhone", False),
    (14, "Home Phone", "phone", "homePhone", False),
    (15, "Work Email", "email", "workEmail", False),
    (16, "Employment Status", "list", "employmentHistoryStatus", False),
    (17, "Job Title", "list", "jobTitle", False),
    (18, "Location", "list", "location", False),
    (19, "Pay rate", "currency", "payRate", False),
    (91, "Reporting to", "employee", "reportsTo", False),
    (154, "Gender", "gender", "gender", False),
    (155, "Marital Status", "marital_status", "maritalStatus", False),
    (156, "Pay Type", "pay_type", "payType", False),
    (387, "Status", "status", "status", False),
    (387, "Employment Status", "status", "employmentStatus", True),
    (634, "Work Phone", "phone", "workPhone", False),
    (635, "Work Ext.", "text", "workPhoneExtension", False),
    (636, "Employee #", "employee_number", "employeeNumber", False),
    (1355, "Division", "list", "division", False),
    (1357, "Home Email", "email", "homeEmail", False),
    (1358, "Preferred Name", "text", "preferredName", False),
    (1936, "Employee Status Date", "date", "employeeStatusDate", False),
    (4042, "Overtime Status", "exempt", "exempt", False),
    (4333, "Original Hire Date", "date", "originalHireDate", False),
    (4313, "Pay Per", "paid_per", "payPer", False),
    (4383, "Pay Schedule", "pay_schedule", "paySchedule", False),
    (-38, "Termination Date", "date", "terminationDate", False),
    (4521, "Shirt Size", "list", "customShirtSize", False),
    (4522, "Dietary Restrictions", "text", "customDietaryRestrictions", False),
    (4523, "Parking Spot", "text", None, False),
    ("4340.4", "401(k) - Company pays", "text", None, False),
]
CUSTOM_ALIASES = ("customShirtSize", "customDietaryRestrictions")

# A company with many custom fields (the 400-field limit of A4.3/A4.5 is hit
# by such companies): customField5001 .. customField5500, meta field ids
# 5001 .. 5500, text. PLAUSIBLE: BambooHR names custom fields after what
# they hold; these generated ones only exist so that more than 400 fields
# can be asked for. Their values are derived from the field and the
# employee (no RNG draw: the rest of the data set does not move).
GENERATED_CUSTOM_FIRST = 5001
GENERATED_CUSTOM_COUNT = 500
GENERATED_CUSTOM = ["customField%d" % n for n in range(
    GENERATED_CUSTOM_FIRST, GENERATED_CUSTOM_FIRST + GENERATED_CUSTOM_COUNT)]
FIELD_CATALOG += [(GENERATED_CUSTOM_FIRST + i, "Custom Field %d" % (GENERATED_CUSTOM_FIRST + i),
                   "text", alias, False) for i, alias in enumerate(GENERATED_CUSTOM)]
FIELD_ID_TO_ALIAS = {str(f[0]): f[3] for f in FIELD_CATALOG if f[3] and not f[4]}

# The most fields one request may name (A4.3 GET /v1/employees/{id}, A4.5
# custom reports: more -> 400). PLAUSIBLE: the same limit on the `fields=`
# of the cursor list GET /v1/employees (the reference is silent there).
MAX_FIELDS = 400


def generated_custom_value(alias, emp):
    """"<field number>-<employee id>", null for about one in 17."""
    number = int(alias[len("customField"):])
    if (number + int(emp["id"])) % 17 == 0:
        return None
    return "%d-%s" % (number, emp["id"])

# Tables (/v1/meta/tables and /v1/employees/{id}/tables/{table}).
TABLE_FIELDS = {
    "jobInfo": [(4047, "Date", "date", "date"), (18, "Location", "location", "list"),
                (4, "Department", "department", "list"), (1355, "Division", "division", "list"),
                (17, "Job Title", "jobTitle", "list"),
                (91, "Reporting to", "reportsTo", "employee")],
    "employmentStatus": [(1936, "Date", "date", "date"),
                         (16, "Employment Status", "employmentStatus", "list"),
                         (4045, "Comment", "comment", "textarea")],
    "compensation": [(4021, "Pay rate effective date", "startDate", "date"),
                     (19, "Pay rate", "rate", "currency"), (156, "Pay type", "type", "pay_type"),
                     (4042, "Overtime Status", "exempt", "exempt"),
                     (4019, "Change Reason", "reason", "list"),
                     (4022, "Comment", "comment", "text"),
                     (4313, "Pay Per", "paidPer", "paid_per"),
                     (4383, "Pay Schedule", "paySchedule", "pay_schedule")],
}

COMPANY_INFORMATION = {  # [SPEC] GET /api/v1/company_information
    "legalName": "Sandbox Efficient Office, Inc.",
    "displayName": "Sandbox Efficient Office",
    "address": {"line1": "50 W Broadway", "line2": "Suite 1200", "city": "Salt Lake City",
                "state": "UT", "zip": "84101"},
    "phone": "801-555-0100",
}

# [SPEC-NEW] GET /api/v1/meta/company (MetaCompanyPropertiesResponse): the
# company's own numeric id, with its name, domain and gateway URL. The spec's
# security list names OAuth alone (scope company:info), no Basic: an API key
# is refused with 403 (status and message PLAUSIBLE) unless the sandbox runs
# with --meta-company-api-key.
META_COMPANY_ID = 48213  # PLAUSIBLE

# [SPEC] CompanyBenefitSummary; the ended plan is still listed (not deleted).
COMPANY_BENEFITS = [
    {"id": "11", "name": "Aetna PPO Medical", "type": "health", "benefitVendorId": "3",
     "deductionTypeId": "5", "companyDeductionId": "41", "startDate": "2024-01-01",
     "endDate": None, "allowsCatchUp": None, "allowsSuperCatchUp": None},
    {"id": "12", "name": "Delta Dental PPO", "type": "dental", "benefitVendorId": "4",
     "deductionTypeId": "6", "companyDeductionId": "42", "startDate": "2024-01-01",
     "endDate": None, "allowsCatchUp": None, "allowsSuperCatchUp": None},
    {"id": "13", "name": "VSP Vision", "type": "vision", "benefitVendorId": "5",
     "deductionTypeId": "7", "companyDeductionId": "43", "startDate": "2024-01-01",
     "endDate": None, "allowsCatchUp": None, "allowsSuperCatchUp": None},
    {"id": "14", "name": "401(k) Retirement Plan", "type": "retirement", "benefitVendorId": "6",
     "deductionTypeId": "1", "companyDeductionId": "44", "startDate": "2020-01-01",
     "endDate": None, "allowsCatchUp": True, "allowsSuperCatchUp": False},
    {"id": "15", "name": "Health Savings Account", "type": "hsa", "benefitVendorId": None,
     "deductionTypeId": "9", "companyDeductionId": None, "startDate": "2024-01-01",
     "endDate": None, "allowsCatchUp": True, "allowsSuperCatchUp": None},
    {"id": "16", "name": "Basic Life Insurance", "type": "life", "benefitVendorId": "7",
     "deductionTypeId": None, "companyDeductionId": None, "startDate": "2022-01-01",
     "endDate": None, "allowsCatchUp": None, "allowsSuperCatchUp": None},
    {"id": "17", "name": "Legacy HMO Medical", "type": "health", "benefitVendorId": "2",
     "deductionTypeId": "5", "companyDeductionId": "40", "startDate": "2019-01-01",
     "endDate": "2023-12-31", "allowsCatchUp": None, "allowsSuperCatchUp": None},
]
BENEFIT_COVERAGES = ["Employee Only", "Employee + Spouse", "Employee + Child(ren)",
                     "Employee + Family"]


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


def is_real_date(value):
    return parse_date(value) is not None


def num_str(value):
    """BambooHR-style number string: "16", "4.5" (no trailing .0)."""
    text = ("%.2f" % value).rstrip("0").rstrip(".")
    return text or "0"


def ascii_slug(text):
    """José -> jose, O'Brien -> obrien (for e-mail addresses)."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    plain = plain.replace("Ø", "O").replace("ø", "o")
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
    span = (last - first).days
    return first + datetime.timedelta(days=rng.randrange(span + 1))


def timestamp(day, rng):
    return "%sT%02d:%02d:%02d+00:00" % (day.isoformat(), rng.randrange(7, 20),
                                       rng.randrange(60), rng.randrange(60))


# ---------------------------------------------------------------------------
# Data set generation
# ---------------------------------------------------------------------------

class Dataset:
    """Everything the sandbox serves. Employees are sorted by numeric id."""

    def __init__(self, today):
        self.today = today
        self.employees = []
        self.by_id = {}
        self.tables = {"jobInfo": [], "employmentStatus": [], "compensation": []}
        self.requests = []

    def employee(self, eid):
        return self.by_id.get(eid)

    def manager(self, emp):
        return self.by_id.get(emp["reportsToId"]) if emp["reportsToId"] else None


def generate_dataset(seed=DEFAULT_SEED, today=DEFAULT_TODAY, employee_count=EMPLOYEE_COUNT,
                     request_count=TIME_OFF_REQUEST_COUNT):
    """Build the deterministic BambooHR data set (same arguments, same data)."""
    rng = random.Random(seed)
    ds = Dataset(today)
    ids = _employee_ids(rng, employee_count)
    kinds = _employee_kinds(rng, employee_count)
    for index, eid in enumerate(ids):
        emp = _make_employee(rng, index, eid, kinds[index], parse_date(today))
        ds.employees.append(emp)
        ds.by_id[eid] = emp
    _assign_managers(rng, ds.employees)
    _unique_emails(ds.employees)
    _dirty_terminations(ds.employees)
    for emp in ds.employees:
        _make_table_rows(rng, ds, emp)
    ds.requests = _make_time_off_requests(rng, ds, request_count)
    return ds


def _employee_ids(rng, count):
    """Non-contiguous ids starting at 4; they cross 100 and 1000 so that a
    string sort differs from the numeric one."""
    ids, current = [], 4
    for _ in range(count):
        ids.append(str(current))
        current += rng.choice((1, 2, 3, 5, 8))
    return ids


def _employee_kinds(rng, count):
    """index -> 'active' | 'terminated' | 'future' | 'nostatus'. The first 40
    employees (the managers) are always active."""
    pool = list(range(40, count))
    terminated = set(rng.sample(pool, count // 10))
    rest = [i for i in pool if i not in terminated]
    future = set(rng.sample(rest, 3))
    nostatus = set(rng.sample([i for i in rest if i not in future], 2))
    kinds = []
    for index in range(count):
        if index in terminated:
            kinds.append("terminated")
        elif index in future:
            kinds.append("future")
        elif index in nostatus:
            kinds.append("nostatus")
        else:
            kinds.append("active")
    return kinds


def _pick_job(rng, index, kind):
    """(department, title id, title) for one employee."""
    if index == 0:
        return "Human Resources", 18401, "Sr. HR Administrator"
    if index == 1:
        return "Operations", 18462, "Chief Executive Officer"
    if kind == "terminated" and rng.random() < 0.15:
        return "Legacy Support", 18499, "Webmaster"
    department = weighted(rng, DEPARTMENT_WEIGHTS)
    titles = [t for t in JOB_TITLES[department] if t[1] != "Chief Executive Officer"]
    title_id, title = titles[rng.randrange(len(titles))]
    return department, title_id, title


def _employment_type(rng, index, kind):
    if kind == "nostatus":
        return None
    if index < 40 or kind in ("terminated", "future"):
        return "Full-Time" if index < 40 or rng.random() < 0.8 else "Part-Time"
    return weighted(rng, ACTIVE_TYPE_WEIGHTS)


def _hire_and_termination(rng, kind, today):
    """Real dates; the empty markers are applied later by index."""
    if kind == "future":
        return today + datetime.timedelta(days=rng.randrange(10, 90)), None
    if kind == "terminated":
        hire = random_date(rng, datetime.date(2012, 1, 2), datetime.date(2024, 12, 31))
        last = max(hire + datetime.timedelta(days=60), today - datetime.timedelta(days=1))
        return hire, random_date(rng, hire + datetime.timedelta(days=60), last)
    return random_date(rng, datetime.date(2012, 1, 2), today - datetime.timedelta(days=30)), None


def _empty_date_marker(index):
    """Unset-date variants spread over the data set: "", "0000-00-00", None."""
    return {7: "", 19: "0000-00-00", 31: None}.get(index % 41, "keep")


def _make_employee(rng, index, eid, kind, today):
    """One employee record: public BambooHR aliases plus "_" internals."""
    first, last = FIXED_NAMES.get(index) or (
        FIRST_NAMES[rng.randrange(len(FIRST_NAMES))], LAST_NAMES[rng.randrange(len(LAST_NAMES))])
    # The order of the rng draws below fixes the data set: tests elsewhere
    # pin records (golden values), so do not reorder or add draws in between.
    department, title_id, title = _pick_job(rng, index, kind)
    location = _pick_location(rng, department)
    emp_type = _employment_type(rng, index, kind)
    hire, term = _hire_and_termination(rng, kind, today)
    pay = _pay_fields(rng, emp_type, location)
    emp = {"id": eid, "employeeNumber": str(index + 1)}
    emp.update(_person_fields(rng, index, first, last))
    emp.update(_job_fields(kind, emp_type, department, title, location, hire, term))
    emp.update(pay)
    emp.update(_contact_fields(index, eid, first, last))
    emp.update(_custom_fields(rng, index))
    emp.update({                                     # internal values, never served as-is
        "_index": index, "_kind": kind,
        "_type": emp_type,                           # employment type before any termination
        "_departmentId": _option_id(DEPARTMENTS, department),
        "_divisionId": _option_id(DIVISIONS, emp["division"]),
        "_locationId": location[0], "_jobTitleId": title_id,
        "_restricted": ["photoUrl"] if index % 29 == 10 else [],
    })
    _apply_empty_dates(index, kind, emp)
    emp["lastChanged"] = timestamp(random_date(rng, datetime.date(2025, 1, 1), today), rng)
    return emp


def _pick_location(rng, department):
    name = weighted(rng, LOCATION_WEIGHTS)           # drawn in every case (see above)
    if department == "Legacy Support":
        return LOCATIONS[0]                          # the archived location
    return next(loc for loc in LOCATIONS if loc[1] == name)


def _person_fields(rng, index, first, last):
    preferred = None
    if rng.random() < 0.15:
        preferred = first[:3] if len(first) > 4 else first
    middle = rng.choice(("", "", "", "A.", "J.", "Marie", "Lee"))
    gender = rng.choice(("Female", "Male", "Female", "Male", "Nonbinary", None))
    birth = "0000-00-00" if index % 53 == 13 else random_date(
        rng, datetime.date(1960, 1, 1), datetime.date(2004, 12, 31)).isoformat()
    marital = rng.choice(("Single", "Married", "Married", "Domestic Partnership", None))
    pronouns = rng.choice((None, None, None, "she/her", "he/him", "they/them"))
    return {"firstName": first, "middleName": middle, "lastName": last,
            "preferredName": preferred, "displayName": "%s %s" % (preferred or first, last),
            "gender": gender, "dateOfBirth": birth, "maritalStatus": marital,
            "pronouns": pronouns}


def _job_fields(kind, emp_type, department, title, location, hire, term):
    terminated = kind == "terminated"
    return {
        "hireDate": hire.isoformat(),
        "originalHireDate": hire.isoformat(),
        "terminationDate": term.isoformat() if term else "",
        "employeeStatusDate": term.isoformat() if term else hire.isoformat(),
        "status": "Inactive" if terminated else "Active",
        "employmentHistoryStatus": "Terminated" if terminated else emp_type,
        "department": department,
        "division": "Global Services" if department == "Legacy Support" else location[3],
        "location": location[1],
        "jobTitle": title,
        "reportsToId": None,                         # set by _assign_managers
        "address1": location[4], "address2": "", "city": location[5], "state": location[6],
        "zipcode": location[7], "country": location[8],
    }


def _pay_fields(rng, emp_type, location):
    currency = location[9]
    if emp_type in (None, "Full-Time", "Furloughed"):      # yearly salary
        rate = "%.2f" % (rng.randrange(90, 361) * 500)
        pay_type, per, exempt = "Salary", "Year", "Exempt"
    else:                                                  # hourly wage
        rate = "%.2f" % (rng.randrange(1500, 9500) / 100.0)
        pay_type, per, exempt = "Hourly", "Hour", "Non-exempt"
    return {"payRate": "%s %s" % (rate, currency), "payType": pay_type, "payPer": per,
            "exempt": exempt, "paySchedule": "Twice a month" if currency == "USD" else "Monthly"}


def _contact_fields(index, eid, first, last):
    """Phones, e-mails, photo and social links; some deliberately empty."""
    slug = "%s%s" % (ascii_slug(first), ascii_slug(last))
    has_photo = index % 7 != 3
    return {
        "workEmail": None,                           # set by _unique_emails
        "homeEmail": None if index % 6 == 2 else "%s.%s%d@mail.example" % (
            ascii_slug(first), ascii_slug(last), index),
        "workPhone": "801-555-%04d" % (1000 + index),
        "workPhoneExtension": "" if index % 4 == 3 else str(1200 + index),
        "mobilePhone": None if index % 5 == 4 else "385-555-%04d" % (3000 + index * 7 % 7000),
        "homePhone": None if index % 3 else "801-555-%04d" % (6000 + index),
        "photoUploaded": has_photo,
        "photoUrl": "https://images.sandbox.invalid/photos/%s-2-4.jpg" % eid if has_photo else None,
        "facebook": None, "twitterFeed": None, "pinterest": None,
        "linkedIn": "https://www.linkedin.com/in/%s" % slug if index % 3 == 0 else None,
        "instagram": "@%s" % ascii_slug(first) if index % 11 == 0 else None,
    }


def _custom_fields(rng, index):
    """customShirtSize ("" for some) and customDietaryRestrictions ("" or null for some)."""
    size = "" if index % 9 == 4 else SHIRT_SIZES[rng.randrange(len(SHIRT_SIZES))][1]
    if index % 4 == 1:
        diet = ""
    elif index % 23 == 5:
        diet = None
    else:
        diet = DIETARY[rng.randrange(len(DIETARY))]
    return {"customShirtSize": size, "customDietaryRestrictions": diet}


def _apply_empty_dates(index, kind, emp):
    """Spread the three "unset" spellings over hireDate and terminationDate."""
    marker = _empty_date_marker(index)
    if marker != "keep" and kind != "future" and index > 0:
        emp["hireDate"] = emp["originalHireDate"] = marker
    hired = parse_date(emp["hireDate"])
    if index % 37 == 5 and hired:                    # a rehire: first hired 3 years earlier
        first = hired.replace(year=hired.year - 3, day=min(hired.day, 28))
        emp["originalHireDate"] = first.isoformat()
    if kind != "terminated":
        emp["terminationDate"] = {3: "0000-00-00", 4: None}.get(index % 5, "")


def _dirty_terminations(employees):
    """Dirty data: three terminated employees whose termination date is unset."""
    terminated = [e for e in employees if e["_kind"] == "terminated"]
    for emp, marker in zip(terminated, ("0000-00-00", "", None)):
        emp["terminationDate"] = marker


def _option_id(options, name):
    for option in options:
        if option[1] == name:
            return option[0]
    return None


def _assign_managers(rng, employees):
    """Index 1 (the CEO) and index 2 have no manager; everybody else reports
    to one of the first 40 employees, always someone earlier in the list."""
    for emp in employees:
        index = emp["_index"]
        if index in (1, 2):
            continue
        if index == 0:
            boss = 1
        elif index < 40:
            boss = rng.randrange(0, min(index, 12))
        else:
            boss = rng.randrange(0, 40)
        emp["reportsToId"] = employees[boss]["id"]


def _unique_emails(employees):
    seen = set()
    for emp in employees:
        local = "%s.%s" % (ascii_slug(emp["firstName"]), ascii_slug(emp["lastName"]))
        candidate, n = local, 1
        while candidate in seen:
            n += 1
            candidate = "%s%d" % (local, n)
        seen.add(candidate)
        emp["workEmail"] = "%s@efficientoffice.example" % candidate


def _row_date(emp, fallback_key="hireDate"):
    value = emp[fallback_key]
    return value if value is not None else ""


def _make_table_rows(rng, ds, emp):
    """jobInfo, employmentStatus and compensation history rows. Half of the
    employees hired before 2020 got a promotion: two jobInfo and two
    compensation rows."""
    start = _row_date(emp)
    promoted = is_real_date(start) and start < "2020-01-01" and rng.random() < 0.5
    promotion = "20%02d-%02d-01" % (rng.randrange(20, 25), rng.randrange(1, 13))
    boss = first_last(ds.manager(emp))
    if promoted:
        _add_row(ds, "jobInfo", emp, _job_row(emp, start, boss,
                                              JOB_TITLES[emp["department"]][0][1]))
    _add_row(ds, "jobInfo", emp, _job_row(emp, promotion if promoted else start, boss,
                                          emp["jobTitle"]))

    _add_row(ds, "employmentStatus", emp, _status_row(start, emp["_type"]))
    if emp["_kind"] == "terminated":
        _add_row(ds, "employmentStatus", emp, _status_row(
            _row_date(emp, "terminationDate"), "Terminated", "Offboarding complete",
            (str(rng.randrange(1, 6)), rng.choice(("1", "2")), "1", rng.choice(("1", "2")))))

    value, currency = emp["payRate"].split(" ")
    if promoted:
        _add_row(ds, "compensation", emp, _comp_row(emp, start, "%.2f" % (float(value) * 0.93),
                                                    currency, ""))
    _add_row(ds, "compensation", emp, _comp_row(emp, promotion if promoted else start, value,
                                                currency, "Promotion" if promoted else ""))


def _job_row(emp, date, boss, title):
    return {"date": date, "location": emp["location"], "department": emp["department"],
            "division": emp["division"], "jobTitle": title, "reportsTo": boss}


def _status_row(date, status, comment=None, termination=(None, None, None, None)):
    reason, kind, rehire, regrettable = termination
    return {"date": date, "employmentStatus": status, "comment": comment,
            "terminationReasonId": reason, "terminationTypeId": kind,
            "terminationRehireId": rehire, "terminationRegrettableId": regrettable}


def _comp_row(emp, date, value, currency, reason):
    return {"startDate": date, "rate": {"value": value, "currency": currency},
            "type": emp["payType"], "exempt": emp["exempt"], "reason": reason, "comment": "",
            "paidPer": emp["payPer"], "paySchedule": emp["paySchedule"]}


def _add_row(ds, table, emp, values):
    rows = ds.tables[table]
    row = {"id": str(101 + len(rows)), "employeeId": emp["id"]}
    row.update(values)
    if table == "compensation" and int(row["id"]) % 2:
        # PLAUSIBLE: money as BambooHR's recorded traffic writes it,
        # "65000.00 USD" (payRate in reports, [REC] A4.5), in every other
        # row; the others keep the spec's open object {value, currency}.
        row["rate"] = "%s %s" % (row["rate"]["value"], row["rate"]["currency"])
    rows.append(row)


# -- time-off requests --

def _assigned_policy_ids(emp):
    return POLICIES_BY_TYPE.get(emp["_type"], [])


def _make_time_off_requests(rng, ds, count):
    eligible = [e for e in ds.employees
                if e["_kind"] in ("active", "nostatus") and _assigned_policy_ids(e)]
    window_start = parse_date(TIME_OFF_WINDOW[0])
    window_end = parse_date(TIME_OFF_WINDOW[1])
    today = parse_date(ds.today)
    drafts = []
    for _ in range(count):
        emp = eligible[rng.randrange(len(eligible))]
        type_ids = sorted({POLICY_BY_ID[p][1] for p in _assigned_policy_ids(emp)})
        type_id = weighted(rng, {t: TYPE_WEIGHTS[t] for t in type_ids})
        drafts.append(_draft_request(rng, emp, type_id, window_start, window_end, today))
    drafts.sort(key=lambda r: (r["start"], int(r["employeeId"]), r["type"]["id"]))
    next_id = 1600
    for draft in drafts:
        draft["id"] = str(next_id)
        next_id += rng.choice((1, 1, 2, 3))
    return [_order_request(d) for d in drafts]


def _draft_request(rng, emp, type_id, window_start, window_end, today):
    _, type_name, units, _, icon = TYPE_BY_ID[type_id]
    length = rng.randrange(10, 26) if type_id == "80" else weighted(
        rng, {1: 40, 2: 20, 3: 15, 4: 10, 5: 15})
    start = random_date(rng, window_start, window_end)
    end = min(start + datetime.timedelta(days=length - 1), window_end)
    dates, total = _request_dates(rng, start, end, units)
    created = min(start - datetime.timedelta(days=rng.randrange(1, 46)), today)
    changed = min(created + datetime.timedelta(days=rng.randrange(0, 8)), today)
    manager_index = int(emp["reportsToId"] or emp["id"]) % 97
    return {
        "employeeId": emp["id"],
        "status": {"lastChanged": changed.isoformat(),
                   "lastChangedByUserId": str(2300 + manager_index),
                   "status": weighted(rng, STATUS_WEIGHTS)},
        "name": "%s %s" % (emp["firstName"], emp["lastName"]),
        "start": start.isoformat(), "end": end.isoformat(), "created": created.isoformat(),
        "type": {"id": type_id, "name": type_name, "icon": icon},
        "amount": {"unit": units, "amount": num_str(total)},
        "dates": dates,
        "notes": _request_notes(rng),
    }


def _request_dates(rng, start, end, units):
    """Per-day amounts as strings; weekends count "0"."""
    per_day = 8 if units == "hours" else 1
    if start == end and rng.random() < 0.1:
        per_day = per_day / 2.0                      # half a day
    dates, total, day = {}, 0, start
    while day <= end:
        amount = 0 if day.weekday() >= 5 else per_day
        dates[day.isoformat()] = num_str(amount)
        total += amount
        day += datetime.timedelta(days=1)
    return dates, total


def _request_notes(rng):
    roll = rng.random()
    if roll < 0.6:
        return {}
    if roll < 0.85:
        return {"employee": rng.choice(("Family trip", "Doctor appointment", "Moving house",
                                        "Visiting my grandparents in Köln"))}
    return {"employee": "Long weekend", "manager": rng.choice(("Enjoy!", "Approved, have fun."))}


def _order_request(draft):
    """Key order of the live recording (A4.9)."""
    status = draft["status"]["status"]
    pending = status == "requested"
    return {
        "id": draft["id"], "employeeId": draft["employeeId"], "status": draft["status"],
        "name": draft["name"], "start": draft["start"], "end": draft["end"],
        "created": draft["created"], "type": draft["type"], "amount": draft["amount"],
        "actions": {"view": True, "edit": pending, "cancel": status in ("requested", "approved"),
                    "approve": pending, "deny": pending, "bypass": False},
        "dates": draft["dates"], "notes": draft["notes"],
    }


# ---------------------------------------------------------------------------
# Field resolution
# ---------------------------------------------------------------------------

def first_last(emp):
    return "%s %s" % (emp["firstName"], emp["lastName"]) if emp else None


def last_first(emp):
    return "%s, %s" % (emp["lastName"], emp["firstName"]) if emp else None


# Public aliases stored as-is on the employee record.
STORED_FIELDS = {
    "firstName", "middleName", "lastName", "preferredName", "displayName", "gender",
    "dateOfBirth", "maritalStatus", "hireDate", "originalHireDate", "terminationDate", "status",
    "employmentHistoryStatus", "department", "division", "location", "jobTitle", "workEmail",
    "homeEmail", "workPhone", "workPhoneExtension", "mobilePhone", "homePhone", "address1",
    "address2", "city", "state", "zipcode", "country", "payRate", "payType", "payPer", "exempt",
    "paySchedule", "photoUrl", "employeeNumber", "employeeStatusDate", "lastChanged",
} | set(CUSTOM_ALIASES)

# Computed aliases of GET /v1/employees/{id} and custom reports (A4.3, A4.5, A7).
COMPUTED_FIELDS = {
    "id": lambda ds, e: e["id"],
    "employmentStatus": lambda ds, e: e["status"],      # deprecated alias of status
    "bestEmail": lambda ds, e: e["workEmail"] or e["homeEmail"],
    "paidPer": lambda ds, e: e["payPer"],
    "supervisor": lambda ds, e: last_first(ds.manager(e)),
    "supervisorId": lambda ds, e: (ds.manager(e) or {}).get("employeeNumber"),
    "supervisorEId": lambda ds, e: e["reportsToId"],
    "supervisorEmail": lambda ds, e: (ds.manager(e) or {}).get("workEmail"),
    # PLAUSIBLE: the value format of the underlying `reportsTo` field is not recorded.
    "reportsTo": lambda ds, e: first_last(ds.manager(e)),
    "ssn": lambda ds, e: "xxx-xx-%04d" % (int(e["id"]) * 37 % 10000),
}
for _alias in GENERATED_CUSTOM:
    COMPUTED_FIELDS[_alias] = (lambda alias: lambda ds, e: generated_custom_value(alias, e))(
        _alias)

NOT_FOUND = object()


def employee_field(ds, emp, name):
    """Value of one field (alias or numeric field id), or NOT_FOUND."""
    name = FIELD_ID_TO_ALIAS.get(name, name)
    if name in STORED_FIELDS:
        return emp[name]
    if name in COMPUTED_FIELDS:
        return COMPUTED_FIELDS[name](ds, emp)
    return NOT_FOUND


def _option_str(value):
    return None if value is None else str(value)


# Extra `fields=` of the cursor list GET /v1/employees (A4.2, [SPEC] EmployeeOptionalField).
# Every value is a string or null ([SPEC] GetEmployeesEmployeeResponse).
LIST_FIELDS = {
    "workEmail": lambda ds, e: e["workEmail"],
    "homeEmail": lambda ds, e: e["homeEmail"],
    "bestEmail": lambda ds, e: e["workEmail"] or e["homeEmail"],
    "middleName": lambda ds, e: e["middleName"],
    "workPhone": lambda ds, e: e["workPhone"],
    "workPhoneExtension": lambda ds, e: e["workPhoneExtension"],
    "mobilePhone": lambda ds, e: e["mobilePhone"],
    "homePhone": lambda ds, e: e["homePhone"],
    "skypeUsername": lambda ds, e: None,
    "linkedinUrl": lambda ds, e: e["linkedIn"],
    "facebookUrl": lambda ds, e: e["facebook"],
    "instagramUrl": lambda ds, e: e["instagram"],
    "twitterUrl": lambda ds, e: e["twitterFeed"],
    "pinterestUrl": lambda ds, e: e["pinterest"],
    "birthDate": lambda ds, e: e["dateOfBirth"],
    "hireDate": lambda ds, e: e["hireDate"],
    "originalHireDate": lambda ds, e: e["originalHireDate"],
    "terminationDate": lambda ds, e: e["terminationDate"],
    "divisionName": lambda ds, e: e["division"],
    "divisionId": lambda ds, e: _option_str(e["_divisionId"]),
    "departmentName": lambda ds, e: e["department"],
    "departmentId": lambda ds, e: _option_str(e["_departmentId"]),
    "locationName": lambda ds, e: e["location"],
    "locationId": lambda ds, e: _option_str(e["_locationId"]),
    "jobTitleId": lambda ds, e: _option_str(e["_jobTitleId"]),
    "employmentStatusName": lambda ds, e: e["employmentHistoryStatus"],
    "employmentStatusId": lambda ds, e: _option_str(
        _option_id(EMPLOYMENT_STATUSES, e["employmentHistoryStatus"])),
    "reportsToName": lambda ds, e: first_last(ds.manager(e)),
    "reportsToId": lambda ds, e: e["reportsToId"],
    "employeeNumber": lambda ds, e: e["employeeNumber"],
    "displayName": lambda ds, e: e["displayName"],
    # PLAUSIBLE: the type an employee had, even after termination.
    "employmentType": lambda ds, e: e["_type"],
}
# PLAUSIBLE: the spec's field enum has no custom fields; we accept custom
# aliases too, as the newest spec allows "many more" fields.
for _alias in CUSTOM_ALIASES:
    LIST_FIELDS[_alias] = (lambda alias: lambda ds, e: e[alias])(_alias)
for _alias in GENERATED_CUSTOM:
    LIST_FIELDS[_alias] = COMPUTED_FIELDS[_alias]

DIRECTORY_FIELDS = [
    ("displayName", "text", "Display name"), ("firstName", "text", "First name"),
    ("lastName", "text", "Last name"), ("preferredName", "text", "Preferred name"),
    ("jobTitle", "list", "Job title"), ("workPhone", "text", "Work Phone"),
    ("mobilePhone", "text", "Mobile Phone"), ("workEmail", "email", "Work Email"),
    ("department", "list", "Department"), ("location", "list", "Location"),
    ("division", "list", "Division"), ("facebook", "text", "Facebook URL"),
    ("linkedIn", "text", "LinkedIn URL"), ("twitterFeed", "text", "Twitter Feed"),
    ("pinterest", "text", "Pinterest URL"), ("instagram", "text", "Instagram URL"),
    ("pronouns", "list", "Pronouns"), ("workPhoneExtension", "text", "Work Ext."),
    ("supervisor", "employee", "Manager"), ("photoUploaded", "bool", "Employee photo exists"),
    ("photoUrl", "url", "Employee photo url"), ("canUploadPhoto", "bool", ""),
]


def directory_record(ds, emp):
    record = {"id": emp["id"]}
    for field_id, _, _ in DIRECTORY_FIELDS:
        if field_id == "supervisor":
            record[field_id] = first_last(ds.manager(emp))    # "First Last" here
        elif field_id == "canUploadPhoto":
            record[field_id] = 1
        else:
            record[field_id] = emp[field_id]
    return record


# ---------------------------------------------------------------------------
# XML rendering (the default format when Accept lacks application/json)
# ---------------------------------------------------------------------------

XML_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def _xml_text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return escape(str(value))


def _xml_into(out, tag, value):
    if XML_NAME.match(tag):
        name, attrs = tag, ""
    else:                                   # e.g. a date key of the `dates` map
        name, attrs = "entry", " key=%s" % quoteattr(tag)
    if value is None:
        out.append("<%s%s/>" % (name, attrs))
        return
    out.append("<%s%s>" % (name, attrs))
    if isinstance(value, dict):
        for key, child in value.items():
            _xml_into(out, str(key), child)
    elif isinstance(value, list):
        child_tag = name[:-1] if name.endswith("s") and len(name) > 1 else "item"
        for child in value:
            _xml_into(out, child_tag, child)
    else:
        out.append(_xml_text(value))
    out.append("</%s>" % name)


def to_xml(root, value):
    out = ['<?xml version="1.0"?>\n']
    _xml_into(out, root, value)
    out.append("\n")
    return "".join(out).encode("utf-8")


def _xml_fields(out, values):
    for key, value in values.items():
        if key == "id":
            continue
        text = "" if value is None else _xml_text(value)
        out.append("<field id=%s>%s</field>" % (quoteattr(key), text))


def employee_xml(record):
    """The captured legacy shape: <employee id=".."><field id="..">v</field></employee>."""
    out = ['<?xml version="1.0"?>\n<employee id=%s>' % quoteattr(record["id"])]
    _xml_fields(out, record)
    out.append("</employee>\n")
    return "".join(out).encode("utf-8")


def directory_xml(payload):
    out = ['<?xml version="1.0"?>\n<directory><fieldset>']
    for field in payload["fields"]:
        out.append("<field id=%s>%s</field>" % (quoteattr(field["id"]), escape(field["name"])))
    out.append("</fieldset><employees>")
    for record in payload["employees"]:
        out.append("<employee id=%s>" % quoteattr(record["id"]))
        _xml_fields(out, record)
        out.append("</employee>")
    out.append("</employees></directory>\n")
    return "".join(out).encode("utf-8")


# ---------------------------------------------------------------------------
# Cursor codec of GET /v1/employees
# ---------------------------------------------------------------------------

# [SPEC] example cursor: base64 of {"cursor": "after-124"} — the boundary
# employee of the page the cursor was issued on.

def encode_cursor(direction, employee_id):
    raw = json.dumps({"cursor": "%s-%s" % (direction, employee_id)})
    return base64.b64encode(raw.encode("ascii")).decode("ascii")


def decode_cursor(cursor):
    """(direction, employee id) or None when malformed."""
    try:
        raw = base64.b64decode(cursor.encode("ascii"), validate=True)
        payload = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeError, binascii.Error):
        return None
    if not isinstance(payload, dict) or list(payload) != ["cursor"]:
        return None
    found = re.fullmatch(r"(after|before)-(\d+)", str(payload["cursor"]))
    return (found.group(1), found.group(2)) if found else None


class ApiError(Exception):
    """Raised by handlers; converted to a response by BambooHR.handle()."""

    def __init__(self, response):
        super().__init__(response.status)
        self.response = response


def header_error(status, message):
    """Legacy error style: empty body, message in X-BambooHR-Error-Message."""
    return common.Response(status, b"", EMPTY_TYPE, [(ERROR_HEADER, message)])


def json_error(status, code, message):
    """Error style of the newer endpoints ({"error": {"code", "message"}})."""
    return common.json_response({"error": {"code": code, "message": message}}, status,
                                [(ERROR_HEADER, message)])


def problem(status, title, detail, instance):
    """RFC 7807-ish ProblemDetailsResponse (calculator 404, [SPEC])."""
    body = {"type": "https://httpstatuses.io/%d" % status, "title": title, "status": status,
            "detail": detail, "instance": instance}
    return common.Response(status, common.dump_json(body), "application/problem+json",
                           [(ERROR_HEADER, detail)])


# ---------------------------------------------------------------------------
# OAuth 2.0 authorization code flow (A2.2)
# ---------------------------------------------------------------------------

DEFAULT_OAUTH_CLIENT = "sandbox-bamboohr-client:sandbox-bamboohr-secret:*"
DEFAULT_COMPANY_DOMAIN = "sandbox"
DEFAULT_CODE_TTL = 600
DEFAULT_ACCESS_TOKEN_TTL = 3600

# /authorize.php and /token.php at the root, under /api and under
# /api/gateway.php/{domain} (wherever an account's base_url points).
OAUTH_PATH = re.compile(r"^(?:/api/gateway\.php/[^/]+|/api)?/(?P<endpoint>authorize|token)\.php/?$")

# Scope names of the vendor spec's `securitySchemes.oauth` (BambooHR/bhr-api-php
# specs/public.yaml); each may also carry the `.write` suffix. Anything else
# is `invalid_scope`.
KNOWN_SCOPES = frozenset("""
access_level alerts approval_workflows ask_bamboohr:chat_messages ask_bamboohr:policy_documents
ask_bamboohr:settings background_checks benchmarking:compensation benefit company:administration
company:details company:info company_file compensation_benchmarks customer_onboarding
data_cleaner deductions employee employee:assets employee:compensation employee:contact
employee:custom_fields employee:custom_fields_encrypted employee:demographic employee:dependent
employee:dependent:ssn employee:education employee:emergency_contacts employee:file
employee:identification employee:job employee:management employee:name employee:payroll
employee:photo employee:providers employee:providers:payroll employee:tabs employee:vaccination
employee_directory employee_verifications employee_wellbeing:settings enps:settings equity
error_management esignature esignature:instance field goal gridlets hiring:applications
hiring:checkr hiring:job_openings hiring:offers hiring:settings hiring:talent_pools
job_organization mcp meta offline_access onboarding openid pay_grades_and_bands payroll
payroll:ach_returns payroll:beneficial_owners payroll:legal_entities payroll:pay_periods
payroll:pay_schedules payroll:pay_stubs payroll:payrolls payroll:retirements
performance:assessments performance:feedback performance:one_on_ones performance:settings
planning_cycles public.integration public.user recognitions:manage report scheduling:schedules
scheduling:shifts sensitive_employee:address sensitive_employee:creditcards
sensitive_employee:protected_info tasks time_off time_tracking time_tracking:breaks training
user user:management webhooks workflows:bounties workflows:instances
""".split())


def scope_known(name):
    return name in KNOWN_SCOPES or (name.endswith(".write") and name[:-6] in KNOWN_SCOPES)


def split_scope(value):
    """Scope names of a space-separated string (a `+` in a query string is
    already a space) or of a JSON array; order kept, duplicates dropped."""
    names = value if isinstance(value, list) else str(value or "").split()
    result = []
    for name in names:
        if str(name) not in result:
            result.append(str(name))
    return result


def oauth_client_arg(text):
    """argparse type of --oauth-client ID:SECRET:REDIRECT_URI (the URI keeps
    its own colons; `*` accepts any redirect_uri)."""
    parts = text.split(":", 2)
    if len(parts) != 3 or not all(parts):
        raise argparse.ArgumentTypeError("expected ID:SECRET:REDIRECT_URI (REDIRECT_URI may be *)")
    return tuple(parts)


class OAuthError(Exception):
    """An error answer of /token.php: {"error", "error_description"}."""

    def __init__(self, status, error, description):
        super().__init__(error)
        self.status, self.error, self.description = status, error, description

    def response(self, basic_used=False):
        resp = common.json_response({"error": self.error, "error_description": self.description},
                                    self.status, NO_STORE)
        if self.status == 401 and basic_used:     # RFC 6749 5.2
            resp.header("WWW-Authenticate", 'Basic realm="BambooHR"')
        return resp


NO_STORE = [("Cache-Control", "no-store"), ("Pragma", "no-cache")]


def _b64url(obj):
    raw = json.dumps(obj, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class OAuthGrants:
    """Clients, authorization codes, access and refresh tokens (in memory,
    shared by the handler threads; POST /_sandbox/reset forgets all grants)."""

    def __init__(self, clients, code_ttl, access_ttl, rotate, company_domain, subject,
                 access_bytes=0):
        self.clients = {cid: (secret, uri) for cid, secret, uri in clients}
        self.access_bytes = access_bytes
        self.default_client = clients[0][0]
        self.code_ttl = code_ttl
        self.access_ttl = access_ttl
        self.rotate = rotate
        self.company_domain = company_domain
        self.subject = subject                 # employee id the tokens act as
        self.lock = threading.Lock()
        self.clear()

    def clear(self):
        with self.lock:
            self.codes = {}        # code -> record (insertion order = issue order)
            self.access = {}       # access token -> record
            self.refresh = {}      # refresh token -> record
            self.token_calls = {}  # "/token.php#<grant_type>" -> count

    # -- clients and scopes --

    def redirect_allowed(self, client_id, redirect_uri):
        registered = self.clients[client_id][1]
        return registered == "*" or registered == redirect_uri

    def client_error(self, client_id, redirect_uri):
        """Why (client_id, redirect_uri) may not be redirected to, or None.
        RFC 6749 4.1.2.1: these errors are shown, never redirected."""
        if not client_id:
            return "Missing client_id."
        if client_id not in self.clients:
            return "Unknown client_id %s." % client_id
        if not redirect_uri:
            return "Missing redirect_uri."
        parts = urlsplit(redirect_uri)
        if not parts.scheme or not parts.netloc or parts.fragment or "#" in redirect_uri:
            return "redirect_uri must be an absolute URI without a fragment."
        if not self.redirect_allowed(client_id, redirect_uri):
            return "redirect_uri does not match the one registered for this client."
        return None

    @staticmethod
    def scope_error(scope):
        unknown = [name for name in scope if not scope_known(name)]
        if unknown:
            return "Unknown scope: %s" % " ".join(unknown)
        return None

    # -- codes --

    def issue_code(self, client_id, redirect_uri, scope):
        code = secrets.token_urlsafe(24)
        now = time.monotonic()
        with self.lock:
            self.codes[code] = {"client_id": client_id, "redirect_uri": redirect_uri,
                                "scope": list(scope), "expires": now + self.code_ttl,
                                "used": False, "tokens": []}
        return code

    # -- tokens --

    def count_call(self, grant_type):
        key = "/token.php#%s" % (grant_type or "none")[:64]
        with self.lock:
            self.token_calls[key] = self.token_calls.get(key, 0) + 1

    def token_counts(self):
        with self.lock:
            return dict(self.token_calls)

    def _issue(self, client_id, scope, grant_type, refresh):
        """Create an access token (and a refresh token when `refresh`);
        caller holds the lock. Returns the token answer."""
        now = time.monotonic()
        access = "bhr-at-" + secrets.token_urlsafe(32)
        if len(access) < self.access_bytes:
            access += secrets.token_urlsafe(self.access_bytes)[:self.access_bytes - len(access)]
        self.access[access] = {"client_id": client_id, "scope": list(scope),
                               "expires": now + self.access_ttl, "revoked": False,
                               "grant_type": grant_type}
        answer = {"access_token": access, "expires_in": self.access_ttl, "token_type": "Bearer",
                  "scope": " ".join(scope)}
        if refresh is not None:
            token = "bhr-rt-" + secrets.token_urlsafe(32)
            self.refresh[token] = {"client_id": client_id, "scope": list(refresh),
                                   "state": "active", "replaced_by": None,
                                   "grant_type": grant_type}
            answer["refresh_token"] = token
        if "openid" in scope:
            answer["id_token"] = self._id_token(client_id)
        answer["companyDomain"] = self.company_domain
        return answer

    def _id_token(self, client_id):
        """JWT-shaped but unsigned (alg none): opaque to the gateway."""
        now = int(time.time())
        claims = {"iss": "https://%s.bamboohr.com" % self.company_domain, "sub": self.subject,
                  "aud": client_id, "iat": now, "exp": now + self.access_ttl,
                  "companyDomain": self.company_domain}
        return "%s.%s." % (_b64url({"alg": "none", "typ": "JWT"}), _b64url(claims))

    def exchange_code(self, client_id, code, redirect_uri):
        with self.lock:
            record = self.codes.get(code)
            if record is None or record["client_id"] != client_id:
                raise OAuthError(400, "invalid_grant", "The authorization code is invalid.")
            if record["used"]:
                # RFC 6749 4.1.2: a replayed code revokes what it gave.
                for token in record["tokens"]:
                    if token in self.access:
                        self.access[token]["revoked"] = True
                    elif token in self.refresh:
                        self.refresh[token]["state"] = "revoked"
                raise OAuthError(400, "invalid_grant",
                                 "The authorization code has already been used.")
            if time.monotonic() >= record["expires"]:
                raise OAuthError(400, "invalid_grant", "The authorization code has expired.")
            if redirect_uri != record["redirect_uri"]:
                raise OAuthError(400, "invalid_grant",
                                 "redirect_uri does not match the authorization request.")
            record["used"] = True
            scope = record["scope"]
            answer = self._issue(client_id, scope, "authorization_code",
                                 scope if "offline_access" in scope else None)
            record["tokens"] = [answer["access_token"]] + (
                [answer["refresh_token"]] if "refresh_token" in answer else [])
            return answer

    def refresh_grant(self, client_id, token, wanted_scope):
        with self.lock:
            record = self.refresh.get(token)
            if record is None or record["client_id"] != client_id:
                raise OAuthError(400, "invalid_grant", "The refresh token is invalid.")
            if record["state"] == "revoked":
                raise OAuthError(400, "invalid_grant", "The refresh token has been revoked.")
            if record["state"] == "rotated":
                raise OAuthError(400, "invalid_grant", "The refresh token has already been used.")
            scope = record["scope"]
            if wanted_scope is not None:
                extra = [name for name in wanted_scope if name not in scope]
                if extra:
                    raise OAuthError(400, "invalid_scope",
                                     "Scope not granted to this refresh token: %s"
                                     % " ".join(extra))
                scope = wanted_scope
            answer = self._issue(client_id, scope, "refresh_token",
                                 record["scope"] if self.rotate else None)
            if self.rotate:
                record["state"] = "rotated"
                record["replaced_by"] = answer["refresh_token"]
            return answer

    def bearer_error(self, token):
        """None when the access token may be used, else the 401 message."""
        with self.lock:
            record = self.access.get(token)
            if record is None:
                return "Invalid access token."
            if record["revoked"]:
                return "The access token has been revoked."
            if time.monotonic() >= record["expires"]:
                return "The access token has expired."
            return None

    # -- control endpoints --

    def revoke(self, body):
        with self.lock:
            if body.get("all") is True:
                records = [r for r in self.refresh.values() if r["state"] == "active"]
                for record in records:
                    record["state"] = "revoked"
                return len(records)
            revoked = 0
            record = self.refresh.get(str(body.get("refresh_token")))
            if record is not None and record["state"] != "revoked":
                record["state"] = "revoked"
                revoked += 1
            record = self.access.get(str(body.get("access_token")))
            if record is not None and not record["revoked"]:
                record["revoked"] = True
                revoked += 1
            return revoked

    def expire(self, body):
        now = time.monotonic()
        with self.lock:
            if body.get("all") is True:
                records = list(self.access.values())
            else:
                records = [self.access[t] for t in [str(body.get("access_token"))]
                           if t in self.access]
            expired = 0
            for record in records:
                if record["expires"] > now:
                    record["expires"] = now
                    expired += 1
            return expired

    def listing(self):
        now = time.monotonic()

        def left(expires):
            return max(0, int(round(expires - now)))

        with self.lock:
            codes = [{"code": code, "client_id": r["client_id"],
                      "redirect_uri": r["redirect_uri"], "scope": " ".join(r["scope"]),
                      "state": "used" if r["used"] else
                      ("expired" if now >= r["expires"] else "unused"),
                      "expires_in": left(r["expires"])} for code, r in self.codes.items()]
            access = [{"access_token": token, "client_id": r["client_id"],
                       "scope": " ".join(r["scope"]), "grant_type": r["grant_type"],
                       "state": "revoked" if r["revoked"] else
                       ("expired" if now >= r["expires"] else "active"),
                       "expires_in": left(r["expires"])} for token, r in self.access.items()]
            refresh = [{"refresh_token": token, "client_id": r["client_id"],
                        "scope": " ".join(r["scope"]), "grant_type": r["grant_type"],
                        "state": r["state"], "replaced_by": r["replaced_by"]}
                       for token, r in self.refresh.items()]
            return {"codes": codes, "access_tokens": access, "refresh_tokens": refresh,
                    "token_calls": dict(self.token_calls)}


def oauth_redirect(uri, pairs):
    """302 to `uri` with `pairs` added to its query."""
    location = uri + ("&" if urlsplit(uri).query else ("" if uri.endswith("?") else "?")) \
        + urlencode(pairs)
    body = ('<!DOCTYPE html>\n<html><head><title>Redirecting</title></head><body>'
            '<a href=%s>Continue</a></body></html>\n' % quoteattr(location))
    return common.Response(302, body, EMPTY_TYPE, [("Location", location)] + NO_STORE)


def oauth_error_page(status, message):
    """What the user's browser shows when BambooHR cannot redirect back."""
    body = ('<!DOCTYPE html>\n<html><head><title>Authorization error</title></head>\n'
            '<body><h1>Authorization error</h1><p>%s</p></body></html>\n' % escape(message))
    return common.Response(status, body, EMPTY_TYPE, [(ERROR_HEADER, message)] + NO_STORE)


def token_params(req):
    """Parameters of a /token.php POST: a form body, or a JSON object when the
    Content-Type says JSON (or is missing and the body looks like JSON)."""
    ctype = (req.header("Content-Type") or "").split(";")[0].strip().lower()
    text = req.body.decode("utf-8", "replace")
    if ctype.endswith("json") or (not ctype and text.lstrip().startswith("{")):
        try:
            body = json.loads(text) if text.strip() else {}
        except ValueError:
            raise OAuthError(400, "invalid_request", "The request body is not valid JSON.")
        if not isinstance(body, dict):
            raise OAuthError(400, "invalid_request", "The JSON body must be an object.")
        params = {}
        for key, value in body.items():
            if isinstance(value, (dict, list)) and key != "scope":
                raise OAuthError(400, "invalid_request", "Parameter %s must be a string." % key)
            params[key] = value if isinstance(value, list) else (
                "" if value is None else str(value))
        return params
    if ctype and ctype != "application/x-www-form-urlencoded":
        raise OAuthError(400, "invalid_request",
                         "Content-Type must be application/x-www-form-urlencoded or "
                         "application/json.")
    params = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        if key in params:                            # RFC 6749 3.2
            raise OAuthError(400, "invalid_request", "Parameter %s was sent twice." % key)
        params[key] = value
    return params


def basic_client(req):
    """(client_id, client_secret) from `Authorization: Basic` (RFC 6749
    2.3.1, form-encoded parts), or None when there is no such header."""
    scheme, _, credentials = (req.header("Authorization") or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeError, binascii.Error):
        raise OAuthError(401, "invalid_client", "Malformed Basic client credentials.")
    client_id, _, secret = decoded.partition(":")
    return unquote_plus(client_id), unquote_plus(secret)


class OAuthEndpoints:
    """GET /authorize.php and POST /token.php, plus the /_sandbox/oauth/...
    control endpoints."""

    AUTHORIZE_PARAMS = ("request", "response_type", "client_id", "redirect_uri", "scope",
                        "state")

    def __init__(self, grants, token_delay_ms):
        self.grants = grants
        self.token_delay = token_delay_ms / 1000.0

    # -- GET /authorize.php --

    def authorize(self, req):
        if req.method not in ("GET", "HEAD"):
            return oauth_error_page(405, "The authorization endpoint only accepts GET.").header(
                "Allow", "GET")
        client_id, redirect_uri = req.arg("client_id"), req.arg("redirect_uri")
        twice = [name for name in ("client_id", "redirect_uri")
                 if len(req.query.get(name, [])) > 1]
        problem_text = ("Parameter %s was sent twice." % twice[0] if twice
                        else self.grants.client_error(client_id, redirect_uri))
        if problem_text:
            return oauth_error_page(400, problem_text)
        state = req.arg("state")

        def fail(error, description):
            pairs = [("error", error), ("error_description", description)]
            return oauth_redirect(redirect_uri, pairs + ([("state", state)]
                                                         if state is not None else []))

        twice = [name for name in self.AUTHORIZE_PARAMS if len(req.query.get(name, [])) > 1]
        if twice:
            return fail("invalid_request", "Parameter %s was sent twice." % twice[0])
        if req.arg("request") != "authorize":
            return fail("invalid_request", "Missing request=authorize.")
        response_type = req.arg("response_type")
        if not response_type:
            return fail("invalid_request", "Missing response_type.")
        if response_type == "token":
            return fail("unauthorized_client",
                        "This client may not use the implicit grant (response_type=token).")
        if response_type != "code":
            return fail("unsupported_response_type",
                        "Unsupported response_type %s." % response_type)
        scope = split_scope(req.arg("scope"))
        scope_problem = self.grants.scope_error(scope)
        if scope_problem:
            return fail("invalid_scope", scope_problem)
        # The sandbox has no login or consent page: the user "approves" at once.
        code = self.grants.issue_code(client_id, redirect_uri, scope)
        return oauth_redirect(redirect_uri, [("code", code)] + (
            [("state", state)] if state is not None else []))

    # -- POST /token.php --

    def token(self, req):
        if self.token_delay:
            time.sleep(self.token_delay)
        basic_used = False
        try:
            if req.method != "POST":
                raise OAuthError(405, "invalid_request", "The token endpoint only accepts POST.")
            try:
                params = token_params(req)
            except OAuthError:
                self.grants.count_call(None)
                raise
            self.grants.count_call(params.get("grant_type"))
            if "token" not in (req.arg("request"), params.get("request")):
                raise OAuthError(400, "invalid_request", "Missing request=token.")
            grant_type = params.get("grant_type")
            if not grant_type:
                raise OAuthError(400, "invalid_request", "Missing grant_type.")
            if grant_type not in ("authorization_code", "refresh_token"):
                raise OAuthError(400, "unsupported_grant_type",
                                 "Unsupported grant_type %s." % grant_type)
            basic = basic_client(req)
            basic_used = basic is not None
            client_id = self._authenticate_client(params, basic)
            if grant_type == "authorization_code":
                for name in ("code", "redirect_uri"):
                    if not params.get(name):
                        raise OAuthError(400, "invalid_request", "Missing %s." % name)
                answer = self.grants.exchange_code(client_id, params["code"],
                                                   params["redirect_uri"])
            else:
                if not params.get("refresh_token"):
                    raise OAuthError(400, "invalid_request", "Missing refresh_token.")
                wanted = split_scope(params["scope"]) if params.get("scope") else None
                answer = self.grants.refresh_grant(client_id, params["refresh_token"], wanted)
        except OAuthError as err:
            resp = err.response(basic_used)
            if err.status == 405:
                resp.header("Allow", "POST")
            return resp
        return common.json_response(answer, 200, NO_STORE)

    def _authenticate_client(self, params, basic):
        if basic is not None:
            if params.get("client_secret"):
                raise OAuthError(400, "invalid_request",
                                 "Use one client authentication method, not two.")
            if params.get("client_id") and params["client_id"] != basic[0]:
                raise OAuthError(400, "invalid_request",
                                 "client_id differs from the Basic credentials.")
            client_id, secret = basic
        else:
            client_id, secret = params.get("client_id"), params.get("client_secret")
        if not client_id or not secret:
            raise OAuthError(401, "invalid_client", "Missing client credentials.")
        known = self.grants.clients.get(client_id)
        if known is None or not secrets.compare_digest(known[0].encode(), secret.encode()):
            raise OAuthError(401, "invalid_client", "Client authentication failed.")
        return client_id

    # -- /_sandbox/oauth/... --

    def control(self, req, action):
        route = (req.method, action)
        if route == ("GET", "grants"):
            return common.json_response(self.grants.listing())
        if route not in (("POST", "revoke"), ("POST", "expire"), ("POST", "code")):
            return common.json_response(
                {"error": "unknown control endpoint %s /_sandbox/oauth/%s" % route}, 404)
        try:
            body = req.json_body() if req.body.strip() else {}
        except (ValueError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            return common.json_response({"error": "the body must be a JSON object"}, 400)
        if action == "revoke":
            if not any(key in body for key in ("all", "refresh_token", "access_token")):
                return common.json_response(
                    {"error": "give refresh_token, access_token or all: true"}, 400)
            return common.json_response({"revoked": self.grants.revoke(body)})
        if action == "expire":
            if not any(key in body for key in ("all", "access_token")):
                return common.json_response({"error": "give access_token or all: true"}, 400)
            return common.json_response({"expired": self.grants.expire(body)})
        return self._mint_code(body)

    def _mint_code(self, body):
        """POST /_sandbox/oauth/code: what /authorize.php would redirect with."""
        grants = self.grants
        client_id = str(body.get("client_id") or grants.default_client)
        registered = grants.clients.get(client_id, (None, None))[1]
        default_uri = "http://127.0.0.1/callback" if registered in (None, "*") else registered
        redirect_uri = str(body.get("redirect_uri") or default_uri)
        scope = split_scope(body.get("scope"))
        error = grants.client_error(client_id, redirect_uri) or grants.scope_error(scope)
        if error:
            return common.json_response({"error": error}, 400)
        code = grants.issue_code(client_id, redirect_uri, scope)
        return common.json_response({"code": code, "client_id": client_id,
                                     "redirect_uri": redirect_uri, "scope": " ".join(scope),
                                     "expires_in": grants.code_ttl})


# ---------------------------------------------------------------------------
# The provider
# ---------------------------------------------------------------------------

# /v1/<rest>, /api/gateway.php/{domain}/v1/<rest>, /api/v1/<rest> (+ v1_1, v1_2, v2).
GATEWAY_DOMAIN = re.compile(r"^/api/gateway\.php/([^/]+)/")
PREFIX = re.compile(r"^(?:/api/gateway\.php/[^/]+|/api)?/(?P<version>v1|v1_1|v1_2|v2)"
                    r"(?P<rest>/.*)?$")


class BambooHR(common.Provider):
    """BambooHR sandbox provider."""

    name = "bamboohr"

    @staticmethod
    def add_arguments(parser):
        parser.add_argument("--api-key", action="append", dest="api_keys", metavar="KEY",
                            help="accepted API key (repeatable; default %s)" % DEFAULT_API_KEY)
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="data set seed")
        parser.add_argument("--today", default=DEFAULT_TODAY,
                            help="the sandbox's fixed 'today' (YYYY-MM-DD)")
        oauth = parser.add_argument_group("OAuth 2.0 (authorize.php / token.php)")
        oauth.add_argument("--oauth-client", action="append", dest="oauth_clients",
                           type=oauth_client_arg, metavar="ID:SECRET:REDIRECT_URI",
                           help="registered client, repeatable; REDIRECT_URI * accepts any "
                                "(default %s)" % DEFAULT_OAUTH_CLIENT)
        oauth.add_argument("--code-ttl", type=int, default=DEFAULT_CODE_TTL, metavar="SECONDS",
                           help="authorization code lifetime (default %d)" % DEFAULT_CODE_TTL)
        oauth.add_argument("--access-token-ttl", type=int, default=DEFAULT_ACCESS_TOKEN_TTL,
                           metavar="SECONDS", help="access token lifetime, the expires_in "
                           "(default %d)" % DEFAULT_ACCESS_TOKEN_TTL)
        oauth.add_argument("--no-rotate", action="store_true",
                           help="a refresh keeps the refresh token valid and answers without "
                                "refresh_token (default: rotate)")
        oauth.add_argument("--token-delay-ms", type=int, default=0, metavar="N",
                           help="delay every token.php answer by N ms (default 0)")
        parser.add_argument("--meta-company-api-key", action="store_true",
                            help="GET /v1/meta/company also takes API keys (the spec "
                                 "lists OAuth only; default: 403 for a key)")
        oauth.add_argument("--access-token-bytes", type=int, default=0, metavar="N",
                           help="access tokens at least N characters long, to try "
                                "a client's limits (default: the usual ~50)")
        oauth.add_argument("--company-domain", default=DEFAULT_COMPANY_DOMAIN,
                           help="companyDomain of token answers (default %s)"
                                % DEFAULT_COMPANY_DOMAIN)
        webhooks.add_arguments(parser)

    def __init__(self, args):
        super().__init__(args)
        self.api_keys = set(args.api_keys or [DEFAULT_API_KEY])
        if parse_date(args.today) is None:
            raise SystemExit("--today must be YYYY-MM-DD")
        for name in ("code_ttl", "access_token_ttl"):
            if getattr(args, name) < 1:
                raise SystemExit("--%s must be at least 1" % name.replace("_", "-"))
        if args.token_delay_ms < 0:
            raise SystemExit("--token-delay-ms must not be negative")
        webhooks.check_arguments(args)
        self.ds = generate_dataset(seed=args.seed, today=args.today)
        self.meta_company_api_key = args.meta_company_api_key
        self.company_domain = args.company_domain
        # Employee 0 is "the employee tied to the API key": the first one.
        self.key_owner = self.ds.employees[0]
        self.router = self._build_router()
        self.writes = Writes(self)
        self.webhooks = Webhooks(self)
        clients = args.oauth_clients or [oauth_client_arg(DEFAULT_OAUTH_CLIENT)]
        self.oauth = OAuthEndpoints(
            OAuthGrants(clients, args.code_ttl, args.access_token_ttl, not args.no_rotate,
                        args.company_domain, self.key_owner["id"],
                        args.access_token_bytes),
            args.token_delay_ms)

    def _build_router(self):
        r = common.Router()
        r.add("GET", "/v1/employees/directory", self.get_directory)
        r.add("GET", "/v1/employees/changed", self.get_changed)
        r.add("GET", "/v1/employees", self.list_employees)
        r.add("GET", "/v1/employees/{id}", self.get_employee)
        for version in ("v1", "v1_1"):
            r.add("GET", "/%s/employees/{id}/tables/{table}" % version, self.get_table)
            r.add("GET", "/%s/employees/{id}/time_off/policies" % version,
                  self.get_employee_policies)
        r.add("GET", "/v1/employees/{id}/time_off/calculator", self.get_calculator)
        r.add("POST", "/v1/reports/custom", self.post_custom_report)
        r.add("GET", "/v1/meta/lists", self.get_meta_lists)
        r.add("GET", "/v1/meta/fields", self.get_meta_fields)
        r.add("GET", "/v1/meta/tables", self.get_meta_tables)
        r.add("GET", "/v1/meta/time_off/types", self.get_time_off_types)
        r.add("GET", "/v1/meta/time_off/policies", self.get_time_off_policies)
        r.add("GET", "/v1/time_off/requests", self.get_time_off_requests)
        r.add("GET", "/v1/company_information", self.get_company_information)
        r.add("GET", "/v1/meta/company", self.get_meta_company)
        r.add("GET", "/v1/benefit/company_benefit", self.get_company_benefits)
        r.add("GET", "/v1/benefit/employee_benefit", self.get_employee_benefits)
        r.add("GET", "/v1/benefitcoverages", self.get_benefit_coverages)
        r.add("POST", "/v1/employees", self.create_employee)
        r.add("POST", "/v1/employees/{id}", self.update_employee)
        r.add("PUT", "/v1/employees/{id}/time_off/request", self.create_time_off_request)
        r.add("PUT", "/v1/time_off/requests/{id}/status", self.set_time_off_status)
        r.add("GET", "/v1/webhooks", lambda req: self.webhooks.listing(req))
        r.add("POST", "/v1/webhooks", lambda req: self.webhooks.create(req))
        r.add("GET", "/v1/webhooks/monitor_fields", lambda req: self.webhooks.monitor_fields(req))
        r.add("GET", "/v1/webhooks/{id}", lambda req: self.webhooks.get(req))
        r.add("PUT", "/v1/webhooks/{id}", lambda req: self.webhooks.update(req))
        r.add("DELETE", "/v1/webhooks/{id}", lambda req: self.webhooks.delete(req))
        return r

    # -- dispatch, auth, rendering --

    def handle(self, req):
        oauth = OAUTH_PATH.match(req.path)
        if oauth:
            if oauth.group("endpoint") == "authorize":
                return self.oauth.authorize(req)
            return self.oauth.token(req)
        found = PREFIX.match(req.path)
        if not found:
            return header_error(404, "Not found")
        path = "/" + found.group("version") + unquote(found.group("rest") or "").rstrip("/")
        denied = self.authenticate(req)
        if denied:
            return denied
        handler, params = self.router.match(req.method, path)
        if handler is None:
            return header_error(params, "Not found" if params == 404 else "Method not allowed")
        req.params = params
        try:
            return handler(req)
        except ApiError as err:
            return err.response

    def authenticate(self, req):
        """None when the request may pass, else the 401 response."""
        scheme, _, credentials = (req.header("Authorization") or "").strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            try:
                user = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
            except (ValueError, UnicodeError, binascii.Error):
                user = ""
            if user.partition(":")[0] in self.api_keys:
                return None
            return header_error(401, "Invalid API key.")
        if scheme == "bearer":
            problem_text = self.oauth.grants.bearer_error(credentials.strip())
            return header_error(401, problem_text) if problem_text else None
        if not scheme:
            return header_error(401, "Your API key is missing.")
        return header_error(401, "Unsupported authorization scheme.")

    def bearer_token_valid(self, token):
        """True when `token` is a live access token from /token.php."""
        return self.oauth.grants.bearer_error(token) is None

    def reset(self):
        """POST /_sandbox/reset: forget every OAuth grant (codes, access and
        refresh tokens, token.php counters); clients stay registered. Data
        changed by writes comes back as generated."""
        self.oauth.grants.clear()
        self.webhooks.reset()
        if self.writes.dirty:
            self.ds = generate_dataset(seed=self.args.seed, today=self.args.today)
            self.key_owner = self.ds.employees[0]
            self.writes.dirty = False

    def control_request(self, server, req):
        """/_sandbox/oauth/... and the token.php counters in /_sandbox/stats
        (common.control_request calls it first); None: common.py answers."""
        path = req.path.rstrip("/")
        if path.startswith(common.CONTROL_PREFIX + "/oauth/"):
            return self.oauth.control(req, path[len(common.CONTROL_PREFIX + "/oauth/"):])
        answer = webhooks.control(req, self.webhooks.outbox, self.webhooks.fire)
        if answer is not None:
            return answer
        if (req.method, path) == ("GET", common.CONTROL_PREFIX + "/stats"):
            stats = server.state.stats()
            stats["by_path"].update(self.oauth.grants.token_counts())
            return common.json_response(stats)
        return None

    def fault_response(self, req, status, retry_after):
        """Throttling and outages look like BambooHR's: empty body plus the
        error header (A6)."""
        message = {429: "Too many requests.", 503: "Service Unavailable",
                   500: "Internal Server Error", 502: "Bad Gateway",
                   504: "Gateway Timeout"}.get(status, "Error")
        resp = header_error(status, message)
        if retry_after is not None:
            resp.header("Retry-After", retry_after)
        return resp

    def apply_fault(self, req, fault):
        """Pagination faults of the employee list (GET /v1/employees, JSON):
        `repeat_cursor`: nextCursor is the cursor the page was asked with;
        `endless_pages`: nextCursor is never null: after the page's last
        employee, or after the first one when the page is empty (the list
        starts over); `long_cursor`: cursors carry `size` more bytes ("~"
        then "x"s), taken off again when one comes back. Other answers
        pass unchanged."""
        kind = fault["fault"]
        if kind == "long_cursor":
            for name in ("page[after]", "page[before]"):
                if name in req.query:
                    req.query[name] = [v.split("~", 1)[0] for v in req.query[name]]
        resp = self.handle(req)
        if resp.status != 200 or "json" not in (resp.get_header("Content-Type") or ""):
            return resp
        body = json.loads(resp.body.decode("utf-8"))
        page = body.get("meta", {}).get("page") if isinstance(body, dict) else None
        if not isinstance(page, dict):
            return resp
        asked = req.arg("page[after]")
        if kind == "repeat_cursor" and asked:
            page["nextCursor"] = asked
        elif kind == "endless_pages":
            data = body.get("data") or []
            last = data[-1]["employeeId"] if data else self.ds.employees[0]["id"]
            page["nextCursor"] = encode_cursor("after", last)
        elif kind == "long_cursor":
            for name in ("nextCursor", "prevCursor"):
                if page.get(name):
                    page[name] += "~" + "x" * fault["size"]
        resp.body = common.dump_json(body)
        return resp

    @staticmethod
    def wants_json(req):
        return "application/json" in (req.header("Accept") or "").lower()

    def render(self, req, data, root, xml=None, status=200):
        """JSON when the client asked for it, else XML (never JSON)."""
        if self.wants_json(req):
            return common.json_response(data, status)
        body = xml(data) if xml else to_xml(root, data)
        return common.Response(status, body, XML_TYPE)

    def future_hire(self, emp):
        """Hired after the sandbox's today (hidden unless onlyCurrent=false)."""
        return is_real_date(emp["hireDate"]) and emp["hireDate"] > self.ds.today

    def employee_or_404(self, eid):
        emp = self.key_owner if eid == "0" else self.ds.employee(eid)
        if emp is None:
            raise ApiError(header_error(404, "Employee not found"))
        return emp

    # -- employees --

    def get_directory(self, req):
        only_current = (req.arg("onlyCurrent") or "true").lower() not in ("false", "0")
        employees = [directory_record(self.ds, e) for e in self.ds.employees
                     if e["status"] == "Active" and not (only_current and self.future_hire(e))]
        fields = [{"id": f, "type": t, "name": n} for f, t, n in DIRECTORY_FIELDS]
        return self.render(req, {"fields": fields, "employees": employees}, "directory",
                           xml=directory_xml)

    def get_employee(self, req):
        emp = self.employee_or_404(req.params["id"])
        names = [n.strip() for n in (req.arg("fields") or "firstName,lastName").split(",")]
        names = [n for n in names if n]
        if len(names) > MAX_FIELDS:       # A4.3; PLAUSIBLE: the message
            raise ApiError(header_error(400, "Too many fields requested (max %d)." % MAX_FIELDS))
        record = {"id": emp["id"]}
        for name in names:
            value = employee_field(self.ds, emp, name)
            # PLAUSIBLE: unknown field names are left out, like forbidden ones.
            if value is not NOT_FOUND and name != "id":
                record[name] = value
        return self.render(req, record, "employee", xml=employee_xml)

    def list_employees(self, req):
        return EmployeeListing(self, req).response()

    def get_changed(self, req):
        """GET /v1/employees/changed?since=ISO8601 (A4.7)."""
        since = req.arg("since") or ""
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:?\d{2})?", since):
            raise ApiError(header_error(400, "Missing or invalid 'since' parameter."))
        kind = (req.arg("type") or "all").lower()
        since_key = since[:19]
        changed = {}
        latest = None
        for emp in self.ds.employees:
            if emp["lastChanged"][:19] < since_key or kind not in ("all", "updated"):
                continue
            changed[emp["id"]] = {"id": emp["id"], "action": "Updated",
                                  "lastChanged": emp["lastChanged"]}
            latest = max(latest or "", emp["lastChanged"])
        return self.render(req, {"latest": latest, "employees": changed}, "changed")

    def get_table(self, req):
        table = req.params["table"]
        if table not in self.ds.tables:
            raise ApiError(header_error(404, "Table not found"))
        rows = self.ds.tables[table]
        if req.params["id"] != "all":
            eid = self.employee_or_404(req.params["id"])["id"]
            rows = [row for row in rows if row["employeeId"] == eid]
        return self.render(req, rows, "table")

    def post_custom_report(self, req):
        return custom_report(self, req)

    # -- metadata --

    def get_meta_lists(self, req):
        lists = meta_lists()
        if (req.arg("format") or "").lower() == "json":
            return common.json_response(lists)
        return self.render(req, lists, "lists")

    def get_meta_fields(self, req):
        fields = []
        for field_id, name, ftype, alias, deprecated in FIELD_CATALOG:
            entry = {"id": field_id, "name": name, "type": ftype}
            if deprecated:
                entry["deprecated"] = True
            if alias:
                entry["alias"] = alias
            fields.append(entry)
        return self.render(req, fields, "fields")

    def get_meta_tables(self, req):
        tables = [{"alias": alias, "fields": [{"id": fid, "name": name, "alias": falias,
                                               "type": ftype}
                                              for fid, name, falias, ftype in fields]}
                  for alias, fields in TABLE_FIELDS.items()]
        return self.render(req, tables, "tables")

    # -- time off --

    def get_time_off_types(self, req):
        types = [{"id": tid, "name": name, "units": units, "color": color, "icon": icon,
                  "source": "internal"} for tid, name, units, color, icon in TIME_OFF_TYPES]
        default_hours = [{"name": "Saturday", "amount": "0"}, {"name": "Sunday", "amount": "0"},
                         {"name": "default", "amount": "8"}]
        return self.render(req, {"timeOffTypes": types, "defaultHours": default_hours},
                           "timeOffTypes")

    def get_time_off_policies(self, req):
        # PLAUSIBLE: ids as strings (the spec says integer; no live recording,
        # and live time-off ids elsewhere are strings).
        policies = sorted(({"id": pid, "timeOffTypeId": tid, "name": name, "effectiveDate": None,
                            "type": ptype} for pid, tid, name, ptype, _ in TIME_OFF_POLICIES),
                          key=lambda p: p["name"])
        return self.render(req, policies, "policies")

    def get_employee_policies(self, req):
        """v1 lists accruing policies only; v1_1 also manual/discretionary [SPEC]."""
        emp = self.employee_or_404(req.params["id"])
        v1_1 = "/v1_1/" in req.path
        start = emp["hireDate"] if is_real_date(emp["hireDate"]) else "2020-01-01"
        result = []
        for pid in _assigned_policy_ids(emp):
            _, tid, _, ptype, _ = POLICY_BY_ID[pid]
            if ptype != "accruing" and not v1_1:
                continue
            result.append({"timeOffPolicyId": pid, "timeOffTypeId": tid,
                           "accrualStartDate": start if ptype == "accruing" else None})
        return self.render(req, result, "policies")

    def get_calculator(self, req):
        eid = req.params["id"]
        emp = self.ds.employee(eid) if eid != "0" else self.key_owner
        if emp is None:
            raise ApiError(problem(404, "Not Found", "Employee not found", req.path))
        end = parse_date(req.arg("end") or self.ds.today)
        precision = req.arg("precision") or "2"
        if end is None or not re.fullmatch(r"[0-4]", precision):
            raise ApiError(header_error(400, "Invalid 'end' or 'precision' parameter."))
        balances = time_off_balances(self.ds, emp, end, int(precision))
        return self.render(req, balances, "balances")

    def get_time_off_requests(self, req):
        return self.render(req, time_off_request_list(self, req), "requests")

    # -- writes (see Writes) --

    def create_employee(self, req):
        return self.writes.create_employee(req)

    def update_employee(self, req):
        return self.writes.update_employee(req)

    def create_time_off_request(self, req):
        return self.writes.create_time_off_request(req)

    def set_time_off_status(self, req):
        return self.writes.set_time_off_status(req)

    # -- company and benefits --

    def get_company_information(self, req):
        return self.render(req, COMPANY_INFORMATION, "company")

    def get_meta_company(self, req):
        scheme = (req.header("Authorization") or "").strip().partition(" ")[0].lower()
        if scheme == "basic" and not self.meta_company_api_key:
            raise ApiError(header_error(403, "This endpoint needs an OAuth access token "
                                             "(scope company:info); API keys are not "
                                             "accepted."))
        found = GATEWAY_DOMAIN.match(req.path)
        domain = unquote(found.group(1)) if found else self.company_domain
        host = req.header("Host") or "api.bamboohr.com"
        return self.render(req, {"id": META_COMPANY_ID,
                                 "name": COMPANY_INFORMATION["displayName"],
                                 "domain": domain,
                                 "baseApiUrl": "http://%s/api/gateway.php/%s" % (host, domain)},
                           "company")

    def get_company_benefits(self, req):
        return self.render(req, {"companyBenefits": COMPANY_BENEFITS}, "benefits")

    def get_employee_benefits(self, req):
        return self.render(req, {"employeeBenefits": employee_benefits(self, req)}, "benefits")

    def get_benefit_coverages(self, req):
        coverages = [{"id": str(n + 1), "shortName": name, "description": None,
                      "sortOrder": str(n + 1), "benefitPlanId": None}
                     for n, name in enumerate(BENEFIT_COVERAGES)]
        return self.render(req, {"Benefit Coverages": coverages}, "benefitCoverages")


# ---------------------------------------------------------------------------
# GET /v1/employees (A4.2)
# ---------------------------------------------------------------------------

SORTABLE = {
    "employeeId": lambda e: int(e["id"]),
    "firstName": lambda e: e["firstName"],
    "lastName": lambda e: e["lastName"],
    "preferredName": lambda e: e["preferredName"],
    "jobTitleName": lambda e: e["jobTitle"],
    "status": lambda e: e["status"],
}
FILTER_KEY = re.compile(r"^filter\[(\w+)\](\[\])?$")
SUBSTRING_FILTERS = {"firstName": "firstName", "lastName": "lastName", "jobTitleName": "jobTitle"}


class EmployeeListing:
    """One request to the cursor-paginated employee list."""

    def __init__(self, provider, req):
        self.provider, self.req, self.ds = provider, req, provider.ds

    def response(self):
        limit = self._limit()
        matched = self._sorted(self._filtered())
        start, stop = self._window(matched, limit)
        page = matched[start:stop]
        has_next, has_prev = page and stop < len(matched), page and start > 0
        next_cursor = encode_cursor("after", page[-1]["id"]) if has_next else None
        prev_cursor = encode_cursor("before", page[0]["id"]) if has_prev else None
        extras = self._extra_fields()
        body = {
            "data": [self._record(e, extras) for e in page],
            "meta": {"total": len(matched), "page": {
                "limit": limit, "nextCursor": next_cursor, "prevCursor": prev_cursor}},
            "_links": self._links(next_cursor, prev_cursor),
        }
        return self.provider.render(self.req, body, "employees")

    # -- parameters --
    def bad_request(self, message):
        raise ApiError(json_error(400, "BadRequest", message))

    def bad_page(self, message):
        raise ApiError(json_error(400, "BadPage", message))

    def _limit(self):
        raw = self.req.arg("page[limit]", "250")
        if not re.fullmatch(r"\d{1,6}", raw or "") or not 1 <= int(raw) <= 2500:
            self.bad_request("Invalid request parameters. page[limit] must be between 1 and 2500.")
        return int(raw)

    def _filters(self):
        filters = {}
        for key, values in self.req.query.items():
            if not key.startswith("filter"):
                continue
            found = FILTER_KEY.match(key)
            name = found.group(1) if found else key
            if name not in SUBSTRING_FILTERS and name not in ("status", "ids"):
                # PLAUSIBLE body: the spec only says 422 for unsupported keys.
                raise ApiError(json_error(422, "UnsupportedFilter",
                                          "Unsupported filter: %s" % key))
            if name == "ids":
                filters.setdefault("ids", set()).update(self._ids(values))
            else:
                filters[name] = values[-1]
        if "status" in filters and filters["status"] not in ("active", "inactive"):
            self.bad_request("Invalid request parameters. "
                             "filter[status] must be active or inactive.")
        return filters

    def _ids(self, values):
        ids = [part.strip() for value in values for part in value.split(",")]
        if not ids or not all(re.fullmatch(r"\d+", i) for i in ids):
            self.bad_request("Invalid request parameters. filter[ids] must be employee ids.")
        return {str(int(i)) for i in ids}

    def _filtered(self):
        filters = self._filters()
        result = []
        for emp in self.ds.employees:
            if "ids" in filters and emp["id"] not in filters["ids"]:
                continue
            if "status" in filters and emp["status"].lower() != filters["status"]:
                continue
            if any(needle.lower() not in (emp[SUBSTRING_FILTERS[name]] or "").lower()
                   for name, needle in filters.items() if name in SUBSTRING_FILTERS):
                continue
            result.append(emp)
        return result

    def _sorted(self, employees):
        spec = self.req.arg("sort") or "employeeId"
        keys = [part.strip() for part in spec.split(",") if part.strip()]
        result = sorted(employees, key=SORTABLE["employeeId"])   # tie-break
        for key in reversed(keys):                               # stable multi-key sort
            descending = key.startswith("-")
            getter = SORTABLE.get(key.lstrip("-"))
            if getter is None:
                self.bad_request("Invalid request parameters. Cannot sort by %s." % key)
            # Nulls first ascending, last descending (A4.2).
            result.sort(key=lambda e: (getter(e) is not None, _sort_value(getter(e))),
                        reverse=descending)
        return result

    def _window(self, matched, limit):
        """[start, stop) of the page, from page[after] / page[before]."""
        after, before = self.req.arg("page[after]"), self.req.arg("page[before]")
        if after is not None and before is not None:
            self.bad_request("Invalid request parameters. "
                             "Send page[after] or page[before], not both.")
        if after is None and before is None:
            return 0, min(limit, len(matched))
        direction = "after" if after is not None else "before"
        decoded = decode_cursor(after if after is not None else before)
        if decoded is None:
            self.bad_page("Invalid page cursor.")
        if decoded[0] != direction:
            self.bad_page("Page cursor used in the wrong direction.")
        position = next((n for n, e in enumerate(matched) if e["id"] == decoded[1]), None)
        if position is None:
            self.bad_page("The page boundary employee no longer matches the request.")
        if direction == "after":
            return position + 1, min(position + 1 + limit, len(matched))
        return max(0, position - limit), position

    def _extra_fields(self):
        names = [n.strip() for n in (self.req.arg("fields") or "").split(",")]
        if len([n for n in names if n]) > MAX_FIELDS:
            # PLAUSIBLE: the 400 of A4.3/A4.5, in this endpoint's error style
            self.bad_request("Invalid request parameters. No more than %d fields may be "
                             "requested." % MAX_FIELDS)
        extras = []
        for name in names:
            if name in LIST_FIELDS and name not in extras:   # unknown names: ignored
                extras.append(name)
        return extras

    # -- output --
    def _record(self, emp, extras):
        record = {"employeeId": emp["id"], "firstName": emp["firstName"],
                  "lastName": emp["lastName"], "preferredName": emp["preferredName"],
                  "photoUrl": emp["photoUrl"], "jobTitleName": emp["jobTitle"],
                  "status": emp["status"]}
        for name in extras:
            record[name] = LIST_FIELDS[name](self.ds, emp)
        restricted = [f for f in emp["_restricted"] if f in record]
        for name in restricted:
            record[name] = None
        record["_restrictedFields"] = restricted
        return record

    def _links(self, next_cursor, prev_cursor):
        base = "http://%s%s" % (self.req.host(), self.req.path)
        kept = [(k, v) for k, v in self.req.query_pairs if k not in ("page[after]", "page[before]")]

        def href(pairs):
            return base + ("?" + urlencode(pairs) if pairs else "")

        links = {"self": {"href": href(self.req.query_pairs)}}
        if next_cursor:
            links["next"] = {"href": href(kept + [("page[after]", next_cursor)])}
        if prev_cursor:
            links["prev"] = {"href": href(kept + [("page[before]", prev_cursor)])}
        return links


def _sort_value(value):
    if value is None:
        return ""
    return value.casefold() if isinstance(value, str) else value


# ---------------------------------------------------------------------------
# Metadata, time off, reports, benefits
# ---------------------------------------------------------------------------

def _created(option_id, archived):
    """Deterministic creation timestamp of a list option (archived ones are
    older than their archivedDate)."""
    year = (15 if archived else 18) + option_id % 7
    return "20%02d-%02d-%02dT%02d:%02d:%02d+00:00" % (
        year, 1 + option_id % 12, 1 + option_id % 28, option_id % 24, option_id % 60,
        option_id * 7 % 60)


def _list_options(options):
    return [{"id": oid, "archived": "yes" if archived else "no",
             "manageable": "no" if name == "Terminated" else "yes",
             "createdDate": _created(oid, archived),
             "archivedDate": "2024-02-01T09:30:00+00:00" if archived else None, "name": name}
            for oid, name, archived in options]


def meta_lists():
    """Live shape of /v1/meta/lists (A4.8): extra top-level id, int fieldId,
    "yes"/"no" flags; one entry lacks `id`, one lacks `alias`."""
    titles = sorted(((tid, title, tid in ARCHIVED_TITLE_IDS)
                     for group in JOB_TITLES.values() for tid, title in group))
    locations = [(loc[0], loc[1], loc[2]) for loc in LOCATIONS]
    return [
        {"id": 3436, "fieldId": 4, "manageable": "yes", "multiple": "no", "name": "Department",
         "alias": "department", "options": _list_options(DEPARTMENTS)},
        {"id": 3437, "fieldId": 1355, "manageable": "yes", "multiple": "no", "name": "Division",
         "alias": "division", "options": _list_options(DIVISIONS)},
        {"id": 3442, "fieldId": 18, "manageable": "no", "multiple": "no", "name": "Location",
         "alias": "location", "options": _list_options(locations)},
        {"id": 3438, "fieldId": 17, "manageable": "yes", "multiple": "no", "name": "Job Title",
         "alias": "jobTitle", "options": _list_options(titles)},
        {"id": 3440, "fieldId": 16, "manageable": "yes", "multiple": "no",
         "name": "Employment Status", "alias": "employmentHistoryStatus",
         "options": _list_options(EMPLOYMENT_STATUSES)},
        {"id": 3450, "fieldId": 4521, "manageable": "yes", "multiple": "no", "name": "Shirt Size",
         "alias": "customShirtSize",
         "options": _list_options([(oid, name, False) for oid, name in SHIRT_SIZES])},
        {"fieldId": 4390, "manageable": "yes", "multiple": "no", "name": "Termination Reason",
         "options": _list_options([(18601, "Resignation", False), (18602, "Layoff", False),
                                   (18603, "Performance", False), (18604, "Relocation", False),
                                   (18605, "Other", False)])},
    ]


def time_off_balances(ds, emp, end, precision):
    """Calculator entries (A4.9) for every type the employee has a policy for."""
    year_start = datetime.date(end.year, 1, 1).isoformat()
    end_text = end.isoformat()
    used = _used_amounts(ds, emp["id"], year_start, end_text)
    entries = []
    for pid in _assigned_policy_ids(emp):
        _, tid, _, ptype, yearly = POLICY_BY_ID[pid]
        _, name, units, _, _ = TYPE_BY_ID[tid]
        used_ytd = used.get(tid, 0.0)
        if ptype == "accruing":
            balance = yearly * end.month / 12.0 + int(emp["id"]) % 5 * 8 - used_ytd
        elif ptype == "manual":
            balance = yearly - used_ytd
        else:
            balance = 0.0
        entries.append({"timeOffType": tid, "name": name, "units": units,
                        "balance": "%.*f" % (precision, balance), "end": end_text,
                        "policyType": ptype, "usedYearToDate": "%.*f" % (precision, used_ytd)})
    return entries


def _used_amounts(ds, eid, first, last):
    """Approved time off per type id within [first, last]."""
    used = {}
    for request in ds.requests:
        if request["employeeId"] != eid or request["status"]["status"] != "approved":
            continue
        for day, amount in request["dates"].items():
            if first <= day <= last:
                tid = request["type"]["id"]
                used[tid] = used.get(tid, 0.0) + float(amount)
    return used


# ---------------------------------------------------------------------------
# Writes
# ---------------------------------------------------------------------------

# Aliases a write may set (stored as they are on the employee record).
WRITABLE_FIELDS = {
    "firstName", "middleName", "lastName", "preferredName", "gender", "dateOfBirth",
    "maritalStatus", "hireDate", "originalHireDate", "terminationDate", "employmentHistoryStatus",
    "department", "division", "location", "jobTitle", "workEmail", "homeEmail", "workPhone",
    "workPhoneExtension", "mobilePhone", "homePhone", "address1", "address2", "city", "state",
    "zipcode", "country", "employeeNumber", "status",
} | set(CUSTOM_ALIASES)
DATE_FIELDS = {"dateOfBirth", "hireDate", "originalHireDate", "terminationDate"}
OPTION_FIELDS = {"department": DEPARTMENTS, "division": DIVISIONS, "location": LOCATIONS,
                 "employmentHistoryStatus": EMPLOYMENT_STATUSES}
STATUS_CHANGES = {"approved": "approved", "denied": "denied", "declined": "denied",
                  "canceled": "canceled", "cancelled": "canceled"}


class Writes:
    """The write endpoints. Changes replace the data set's lists (never
    change them in place): a read walking the old list meanwhile is not
    disturbed."""

    def __init__(self, provider):
        self.provider = provider
        self.lock = threading.Lock()
        self.dirty = False

    @property
    def ds(self):
        return self.provider.ds

    @staticmethod
    def body(req):
        """The JSON object of a write (the sandbox takes JSON, not XML)."""
        if "json" not in (req.header("Content-Type") or "").lower():
            raise ApiError(header_error(400, "Malformed XML"))
        try:
            body = req.json_body()
        except (ValueError, UnicodeDecodeError):
            raise ApiError(header_error(400, "Malformed JSON"))
        if not isinstance(body, dict):
            raise ApiError(header_error(400, "The request body must be an object."))
        return body

    def check_fields(self, body, emp_id=None):
        for name, value in body.items():
            if name not in WRITABLE_FIELDS:
                raise ApiError(header_error(406, "Unknown field: %s" % name))
            if value is not None and not isinstance(value, str):
                raise ApiError(header_error(400, "Invalid value for field %s." % name))
            if name in DATE_FIELDS and value and parse_date(value) is None:
                raise ApiError(header_error(400, "Invalid date for field %s: %s" % (name, value)))
            options = OPTION_FIELDS.get(name)
            if options and value and _option_id(options, value) is None:
                raise ApiError(header_error(400, "Invalid option for field %s: %s"
                                                 % (name, value)))
        email = body.get("workEmail")
        if email and any(e["workEmail"] and e["workEmail"].lower() == email.lower()
                         and e["id"] != emp_id for e in self.ds.employees):
            raise ApiError(header_error(409, "Duplicate email: %s is used by another "
                                             "employee." % email))

    def apply(self, emp, body):
        for name, value in body.items():
            emp[name] = value
        if "department" in body:
            emp["_departmentId"] = _option_id(DEPARTMENTS, emp["department"])
        if "division" in body:
            emp["_divisionId"] = _option_id(DIVISIONS, emp["division"])
        if "location" in body:
            emp["_locationId"] = _option_id(LOCATIONS, emp["location"])
        if "employmentHistoryStatus" in body and body["employmentHistoryStatus"] != "Terminated":
            emp["_type"] = body["employmentHistoryStatus"]
        if {"firstName", "lastName", "preferredName"} & set(body):
            emp["displayName"] = "%s %s" % (emp["preferredName"] or emp["firstName"],
                                            emp["lastName"])
        emp["lastChanged"] = datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%S+00:00")

    def new_employee(self, eid):
        """A record with every key the readers use, as a new hire has it."""
        template = self.ds.employees[0]
        emp = {key: None for key in template}
        emp.update({"id": eid, "employeeNumber": None, "middleName": "", "status": "Active",
                    "hireDate": "", "originalHireDate": "", "terminationDate": "",
                    "employeeStatusDate": self.ds.today, "employmentHistoryStatus": None,
                    "_index": len(self.ds.employees), "_kind": "active", "_type": None,
                    "_restricted": [], "photoUploaded": False, "customShirtSize": "",
                    "customDietaryRestrictions": None})
        return emp

    def create_employee(self, req):
        body = self.body(req)
        missing = [n for n in ("firstName", "lastName") if not body.get(n)]
        if missing:
            raise ApiError(header_error(400, "Missing required fields: %s" % ", ".join(missing)))
        with self.lock:
            self.check_fields(body)
            eid = str(max(int(e["id"]) for e in self.ds.employees) + 1)
            emp = self.new_employee(eid)
            self.apply(emp, body)
            if not emp["originalHireDate"]:
                emp["originalHireDate"] = emp["hireDate"]
            self.ds.employees = self.ds.employees + [emp]
            self.ds.by_id = {**self.ds.by_id, eid: emp}
            self.dirty = True
        # A new employee fires created, then updated with the fields set [M-H].
        self.provider.webhooks.emit("employee.created", eid)
        self.provider.webhooks.emit("employee.updated", eid, list(body))
        resp = self.provider.render(req, {"id": eid, "firstName": emp["firstName"],
                                          "lastName": emp["lastName"], "status": "Active"},
                                    "employee", status=201)
        resp.header("Location", "http://%s%s/%s" % (req.host(), req.path.rstrip("/"), eid))
        return resp

    def update_employee(self, req):
        emp = self.provider.employee_or_404(req.params["id"])
        body = self.body(req)
        with self.lock:
            self.check_fields(body, emp["id"])
            changed = [name for name in body if emp.get(name) != body[name]]
            self.apply(emp, body)
            self.dirty = True
        if changed:
            self.provider.webhooks.emit("employee.updated", emp["id"], changed)
        answer = {"id": emp["id"], "firstName": emp["firstName"], "lastName": emp["lastName"],
                  "status": emp["status"]}
        answer.update({k: emp[k] for k in body})
        return self.provider.render(req, answer, "employee")

    def create_time_off_request(self, req):
        emp = self.provider.employee_or_404(req.params["id"])
        body = self.body(req)
        missing = [n for n in ("status", "start", "end", "timeOffTypeId") if body.get(n) in
                   (None, "")]
        if missing:
            raise ApiError(header_error(400, "Missing required fields: %s" % ", ".join(missing)))
        status = body["status"]
        if status not in ("requested", "approved", "denied", "declined"):
            raise ApiError(header_error(400, "Invalid status: %s" % status))
        start, end = parse_date(str(body["start"])), parse_date(str(body["end"]))
        if start is None or end is None or end < start:
            raise ApiError(header_error(400, "Invalid start or end date."))
        type_id = str(body["timeOffTypeId"])
        if type_id not in TYPE_BY_ID:
            raise ApiError(header_error(400, "Invalid time off type: %s" % type_id))
        _, type_name, units, _, icon = TYPE_BY_ID[type_id]
        dates, total = self.dates(start, end, units, body.get("dates"))
        amount = body.get("amount")
        if amount is not None and not isinstance(amount, (int, float, str)):
            raise ApiError(header_error(400, "Invalid amount."))
        note = None
        for entry in body.get("notes") or []:
            if isinstance(entry, dict) and entry.get("from", "employee") == "employee":
                note = entry.get("note")
        now = datetime.datetime.now(datetime.timezone.utc)
        with self.lock:
            rid = str(max(int(r["id"]) for r in self.ds.requests) + 1)
            record = {
                "id": rid, "employeeId": emp["id"],
                "status": {"lastChanged": now.strftime("%Y-%m-%d"),
                           "lastChangedByUserId": "2385",
                           "status": "denied" if status == "declined" else status},
                "name": "%s %s" % (emp["firstName"], emp["lastName"]),
                "start": start.isoformat(), "end": end.isoformat(),
                "created": now.strftime("%Y-%m-%d"),
                "type": {"id": type_id, "name": type_name, "icon": icon},
                "amount": {"unit": units,
                           "amount": num_str(float(amount)) if amount is not None else
                           num_str(total)},
                "actions": {"view": True, "edit": status == "requested",
                            "cancel": True, "approve": status == "requested",
                            "deny": status == "requested", "bypass": False},
                "dates": dates,
                "notes": {"employee": note} if note else {},
            }
            self.ds.requests = self.ds.requests + [record]
            self.dirty = True
        answer = dict(record)
        answer["status"] = dict(record["status"], lastChanged=now.strftime("%Y-%m-%d %H:%M:%S"))
        answer["notes"] = record["notes"] or []
        answer["comments"] = []
        resp = self.provider.render(req, answer, "request", status=201)
        resp.header("Location", "http://%s%s/%s" % (req.host(), req.path.rstrip("/"), rid))
        return resp

    @staticmethod
    def dates(start, end, units, given):
        per_day = 8 if units == "hours" else 1
        dates, total, day = {}, 0, start
        while day <= end:
            amount = 0 if day.weekday() >= 5 else per_day
            dates[day.isoformat()] = num_str(amount)
            total += amount
            day += datetime.timedelta(days=1)
        for entry in given or []:
            if isinstance(entry, dict) and entry.get("ymd") in dates:
                dates[entry["ymd"]] = num_str(float(entry.get("amount") or 0))
        return dates, total

    def set_time_off_status(self, req):
        body = self.body(req)
        wanted = STATUS_CHANGES.get(str(body.get("status") or ""))
        if wanted is None:
            raise ApiError(header_error(400, "Invalid status: %s" % body.get("status")))
        with self.lock:
            found = [r for r in self.ds.requests if r["id"] == req.params["id"]]
            if not found:
                raise ApiError(header_error(404, "Time off request not found"))
            request = found[0]
            current = request["status"]["status"]
            allowed = {"approved": ("requested",), "denied": ("requested",),
                       "canceled": ("requested", "approved")}[wanted]
            if current not in allowed:
                raise ApiError(header_error(400, "The request cannot change from %s to %s."
                                                 % (current, wanted)))
            changed = dict(request)
            changed["status"] = {"lastChanged": self.ds.today,
                                 "lastChangedByUserId": "2385", "status": wanted}
            pending = wanted == "requested"
            changed["actions"] = dict(request["actions"], edit=pending, approve=pending,
                                      deny=pending, cancel=wanted == "approved")
            if body.get("note"):
                changed["notes"] = dict(request["notes"] or {}, manager=body["note"])
            self.ds.requests = [changed if r is request else r for r in self.ds.requests]
            self.dirty = True
        return common.Response(200, b"", EMPTY_TYPE)


# ---------------------------------------------------------------------------
# Webhooks (A4.10; shared/reference/fleet-writes-webhooks.md §3)
# ---------------------------------------------------------------------------

WEBHOOK_EVENTS = ("employee.created", "employee.updated", "employee.deleted")
# 5xx retried 5 times, 5, 10, 20, 40 and 80 minutes apart; 4xx never [SPEC].
WEBHOOK_RETRIES = (300, 600, 1200, 2400, 4800)
WEBHOOK_TIMEOUT = 10          # PLAUSIBLE: seconds the receiver has to answer
WEBHOOK_LIMIT = 100           # registrations kept at once (PLAUSIBLE)


def webhook_signature(private_key, body, stamp):
    """X-BambooHR-Signature: hex HMAC-SHA256 keyed with the privateKey over the
    raw body followed by the X-BambooHR-Timestamp value, no separator
    (BambooHR's PHP sample as quoted by Nango's docs; not in the spec)."""
    return hmac.new(private_key.encode("ascii"), body + stamp.encode("ascii"),
                    hashlib.sha256).hexdigest()


def _webhook_retryable(status):
    """5xx, or no answer at all (PLAUSIBLE: treated as a 5xx), is retried."""
    return status is None or status >= 500


class Webhooks:
    """POST/GET/PUT/DELETE /v1/webhooks and the events writes send."""

    def __init__(self, provider):
        self.provider = provider
        self.args = provider.args
        self.lock = threading.Lock()
        self.hooks = {}
        self.next_id = 1
        self.outbox = webhooks.Outbox(WEBHOOK_RETRIES, _webhook_retryable, WEBHOOK_TIMEOUT,
                                      self.args.webhook_time_scale, self._sent)

    def reset(self):
        with self.lock:
            self.hooks = {}
            self.next_id = 1
        self.outbox.clear()

    def _sent(self, hook_id, when):
        with self.lock:
            hook = self.hooks.get(hook_id)
            if hook is not None:
                hook["lastSent"] = when.strftime("%Y-%m-%d %H:%M:%S")

    @staticmethod
    def _public(hook):
        return {k: v for k, v in hook.items() if k != "privateKey"}

    def _or_404(self, raw_id):
        hook = self.hooks.get(raw_id)
        if hook is None:
            raise ApiError(header_error(404, "Webhook not found"))
        return hook

    def _validated(self, body):
        """The stored fields of a create or update body; 400 otherwise.
        PLAUSIBLE: the messages; events being required (without them the
        real API makes a legacy employee_with_fields webhook, which the
        sandbox does not send); format json only (form-encoded bodies of
        the new events are undocumented)."""
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ApiError(header_error(400, "The name field is required."))
        problem_text = webhooks.url_problem(body.get("url"), self.args)
        if problem_text:
            raise ApiError(header_error(400, "Invalid webhook URL: %s." % problem_text))
        fmt = body.get("format")
        if fmt not in ("json", "form-encoded"):
            raise ApiError(header_error(400, "The format field is required (json or "
                                             "form-encoded)."))
        if fmt != "json":
            raise ApiError(header_error(400, "The sandbox sends the format json only."))
        events = body.get("events")
        if not isinstance(events, list) or not events:
            raise ApiError(header_error(400, "The events field is required (the sandbox "
                                             "has no legacy employee_with_fields events)."))
        for event in events:
            if event not in WEBHOOK_EVENTS:
                raise ApiError(header_error(400, "Invalid event: %s" % event))
        monitor = body.get("monitorFields") or []
        if not isinstance(monitor, list):
            raise ApiError(header_error(400, "monitorFields must be a list."))
        known = {entry[3] for entry in FIELD_CATALOG} | WRITABLE_FIELDS
        for field in monitor:
            if field not in known:
                raise ApiError(header_error(400, "Invalid monitor field: %s" % field))
        post_fields = body.get("postFields") or {}
        if not isinstance(post_fields, dict):
            raise ApiError(header_error(400, "postFields must be an object."))
        return {"name": name, "url": body["url"], "format": fmt,
                "events": list(dict.fromkeys(events)),
                "monitorFields": list(dict.fromkeys(monitor)), "postFields": post_fields,
                "includeCompanyDomain": bool(body.get("includeCompanyDomain", False))}

    # -- the API --

    def create(self, req):
        fields = self._validated(Writes.body(req))
        now = webhooks.utc_now()
        with self.lock:
            if len(self.hooks) >= WEBHOOK_LIMIT:
                raise ApiError(header_error(400, "Too many webhooks."))
            hook_id = str(self.next_id)
            self.next_id += 1
            hook = {"id": hook_id, "name": fields["name"],
                    "created": now.strftime("%Y-%m-%d %H:%M:%S"), "lastSent": None}
            hook.update(fields)
            # 32 hex characters, as the recording's key; shown by this answer only.
            hook["privateKey"] = secrets.token_hex(16)
            self.hooks[hook_id] = hook
            answer = dict(hook)
        return self.provider.render(req, answer, "webhook", status=201)

    def listing(self, req):
        with self.lock:
            rows = [{k: hook[k] for k in ("id", "name", "created", "lastSent", "url")}
                    for hook in self.hooks.values()]
        return self.provider.render(req, {"webhooks": rows}, "webhooks")

    def get(self, req):
        with self.lock:
            answer = self._public(self._or_404(req.params["id"]))
        return self.provider.render(req, answer, "webhook")

    def update(self, req):
        """PUT: the same fields as a create; the key stays (PLAUSIBLE)."""
        with self.lock:
            self._or_404(req.params["id"])
        fields = self._validated(Writes.body(req))
        with self.lock:
            hook = self._or_404(req.params["id"])
            hook.update(fields)
            answer = self._public(hook)
        return self.provider.render(req, answer, "webhook")

    def delete(self, req):
        """200 with an empty body (PLAUSIBLE); pending retries are dropped."""
        with self.lock:
            self._or_404(req.params["id"])
            del self.hooks[req.params["id"]]
        self.outbox.drop_webhook(req.params["id"])
        return common.Response(200, b"", EMPTY_TYPE)

    def monitor_fields(self, req):
        """GET /v1/webhooks/monitor_fields (PLAUSIBLE shape)."""
        fields = [{"id": entry[0], "name": entry[1], "alias": entry[3]}
                  for entry in FIELD_CATALOG]
        return self.provider.render(req, {"fields": fields}, "fields")

    # -- events --

    def emit(self, event, employee_id, changed=None):
        """Queue `event` for every registration that asked for it; returns
        the delivery ids. An update reaches a webhook with monitorFields only
        when one of them changed, and names only those."""
        with self.lock:
            targets = [dict(h) for h in self.hooks.values() if event in h["events"]]
        queued = []
        for hook in targets:
            data = {"companyId": str(META_COMPANY_ID), "employeeId": str(employee_id)}
            if event == "employee.updated":
                fields = list(changed or [])
                if hook["monitorFields"]:
                    fields = [f for f in fields if f in hook["monitorFields"]]
                if not fields:
                    continue
                data["changedFields"] = fields
            body = common.dump_json({
                "type": event,
                "timestamp": webhooks.utc_now().strftime("%Y-%m-%dT%H:%M:%S+0000"),
                "data": data})
            queued.append(self.outbox.post(hook["id"], event, hook["url"],
                                           self._builder(hook["privateKey"], body)))
        return queued

    @staticmethod
    def _builder(private_key, body):
        def build():
            # A fresh timestamp and signature for every attempt (PLAUSIBLE:
            # a retry 80 minutes later would otherwise be stale).
            stamp = str(int(time.time()))
            return body, [("Content-Type", "application/json"),
                          ("User-Agent", "BambooHR-Webhooks"),
                          ("X-BambooHR-Timestamp", stamp),
                          ("X-BambooHR-Signature", webhook_signature(private_key, body, stamp))]
        return build

    def fire(self, body):
        """POST /_sandbox/webhooks/fire {"event", "id", "changedFields"}."""
        event, eid = body.get("event"), str(body.get("id", ""))
        if event not in WEBHOOK_EVENTS:
            return common.json_response({"error": "event must be one of %s"
                                                  % ", ".join(WEBHOOK_EVENTS)}, 400)
        if not re.fullmatch(r"\d{1,12}", eid):
            return common.json_response({"error": "id must be an employee id"}, 400)
        if event != "employee.deleted" and self.provider.ds.employee(eid) is None:
            return common.json_response({"error": "no employee %s" % eid}, 404)
        changed = body.get("changedFields", ["firstName"])
        if not isinstance(changed, list) or not all(isinstance(f, str) for f in changed):
            return common.json_response({"error": "changedFields must be a list of "
                                                  "field names"}, 400)
        return webhooks.fired(self.emit(event, eid, changed))


def time_off_request_list(provider, req):
    """GET /v1/time_off/requests (A4.9): start/end required, overlap semantics."""
    start, end = parse_date(req.arg("start")), parse_date(req.arg("end"))
    if start is None or end is None:
        raise ApiError(header_error(400, "The 'start' and 'end' parameters are required "
                                         "and must be dates (YYYY-MM-DD)."))
    statuses = _comma_set(req.arg("status"))
    if statuses and not statuses <= set(REQUEST_STATUSES):
        raise ApiError(header_error(400, "Invalid status: %s" % ",".join(sorted(statuses))))
    types = _comma_set(req.arg("type"))
    wanted_id, employee_id = req.arg("id"), req.arg("employeeId")
    action = (req.arg("action") or "view").lower()
    if action == "myrequests":        # PLAUSIBLE: only the API key owner's requests
        employee_id = provider.key_owner["id"]
    start_text, end_text = start.isoformat(), end.isoformat()
    result = []
    for request in provider.ds.requests:
        if request["end"] < start_text or request["start"] > end_text:
            continue
        if (wanted_id and request["id"] != wanted_id) or (
                employee_id and request["employeeId"] != employee_id):
            continue
        if (types and request["type"]["id"] not in types) or (
                statuses and request["status"]["status"] not in statuses):
            continue
        if action == "approve" and request["status"]["status"] != "requested":
            continue                  # PLAUSIBLE: what the key owner may approve
        result.append(request)
    if req.arg("excludeNote") not in (None, "", "false", "0"):
        result = [{k: v for k, v in r.items() if k != "notes"} for r in result]
    return result


def _comma_set(value):
    return {part.strip() for part in (value or "").split(",") if part.strip()}


REPORT_FIELD_TYPES = {"id": ("int", "EEID"), "employeeNumber": ("employee_number", "Employee #"),
                      "supervisor": ("text", "Supervisor name"),
                      "supervisorId": ("text", "Supervisor ID"),
                      "supervisorEId": ("text", "Supervisor EID")}


def custom_report(provider, req):
    """POST /v1/reports/custom (A4.5): JSON body only with Content-Type exactly
    application/json; output from ?format= or the exact Accept value."""
    if (req.header("Content-Type") or "").strip() != "application/json":
        raise ApiError(header_error(400, "Malformed XML"))
    try:
        body = req.json_body()
    except ValueError:
        raise ApiError(header_error(400, "Malformed JSON"))
    fmt = (req.arg("format") or "").lower()
    if not fmt:
        fmt = {"application/json": "json", "text/xml": "xml"}.get(
            (req.header("Accept") or "").strip(), "")
        if not fmt:
            raise ApiError(header_error(404, "Unsupported output format"))
    if fmt not in ("json", "xml"):
        raise ApiError(header_error(400, "Unsupported output format (sandbox: json, xml)"))
    names = [str(n) for n in body.get("fields") or []] if isinstance(body, dict) else []
    if len(names) > MAX_FIELDS:           # A4.5; PLAUSIBLE: the message
        raise ApiError(header_error(400, "Too many fields requested (max %d)." % MAX_FIELDS))
    ds = provider.ds
    known = [n for n in names if employee_field(ds, ds.employees[0], n) is not NOT_FOUND]
    fields = [_report_field(name) for name in known]
    employees = [_report_row(ds, emp, known) for emp in _report_employees(ds, body)]
    report = {"title": body.get("title", "Report"), "fields": fields, "employees": employees}
    if fmt == "json":
        return common.json_response(report)
    return common.Response(200, to_xml("report", report), XML_TYPE)


def _report_field(name):
    """Entry of the report's `fields` list: (id, type, display name)."""
    if name in REPORT_FIELD_TYPES:
        ftype, label = REPORT_FIELD_TYPES[name]
    else:
        entry = next((f for f in FIELD_CATALOG if name in (f[3], str(f[0]))), None)
        ftype, label = (entry[2], entry[1]) if entry else ("text", name)
    return {"id": name, "type": ftype, "name": label}


def _report_employees(ds, body):
    filters = body.get("filters") or {}
    wanted = {str(i) for i in filters.get("employeeIds") or []}
    changed = (filters.get("lastChanged") or {}).get("value")
    result = []
    for emp in ds.employees:                  # all employees, Inactive included
        if wanted and emp["id"] not in wanted:
            continue
        if changed and emp["lastChanged"][:19] < str(changed)[:19]:
            continue
        result.append(emp)
    return result


def _report_row(ds, emp, names):
    row = {"id": emp["id"]}
    for name in names:
        row[name] = employee_field(ds, emp, name)
    return row


def employee_benefits(provider, req):
    """GET /v1/benefit/employee_benefit [SPEC]: filters in a JSON body on a GET.
    PLAUSIBLE: the same filters are also accepted as query parameters."""
    filters = {}
    if req.body:
        try:
            filters = req.json_body().get("filters") or {}
        except (ValueError, AttributeError):
            raise ApiError(header_error(400, "The body must be JSON with a filters object."))
    for key in ("employeeId", "companyBenefitId", "enrollmentStatusEffectiveDate"):
        if req.arg(key):
            filters[key] = req.arg(key)
    if not isinstance(filters, dict) or not any(filters.get(k) for k in (
            "employeeId", "companyBenefitId", "enrollmentStatusEffectiveDate")):
        raise ApiError(header_error(400, "At least one filter (employeeId, companyBenefitId, "
                                         "enrollmentStatusEffectiveDate) is required."))
    result = []
    for emp in provider.ds.employees:
        if filters.get("employeeId") and str(filters["employeeId"]) != emp["id"]:
            continue
        plans = [p for p in _enrollments(emp)
                 if (not filters.get("companyBenefitId")
                     or str(filters["companyBenefitId"]) == p["companyBenefitId"])
                 and (not filters.get("enrollmentStatusEffectiveDate")
                      or filters["enrollmentStatusEffectiveDate"]
                      == p["enrollmentStatusEffectiveDate"])]
        if plans:
            result.append({"employeeId": int(emp["id"]),
                           "payFrequency": "semi-monthly" if emp["paySchedule"] == "Twice a month"
                           else "monthly", "employeeBenefit": plans})
    return result


def _enrollments(emp):
    """Deterministic plan enrolments derived from the employee (no RNG)."""
    n = int(emp["id"])
    start = emp["hireDate"] if is_real_date(emp["hireDate"]) else "2024-01-01"
    start = max(start, "2024-01-01")
    terminated = emp["_kind"] == "terminated"
    end = emp["terminationDate"] if terminated and is_real_date(emp["terminationDate"]) else None
    eligible = emp["_type"] in ("Full-Time", "Furloughed", "Part-Time", None)
    plans = []
    for benefit in COMPANY_BENEFITS:
        if benefit["endDate"]:
            continue
        if not eligible:
            status = "Ineligible"
        elif terminated:
            status = "Terminated"
        elif benefit["type"] in ("dental", "vision", "hsa") and n % 5 == 2:
            status = "Waived"
        else:
            status = "Enrolled"
        plans.append(_enrollment(benefit, n, status, start, end))
    return plans


def _enrollment(benefit, n, status, start, end):
    enrolled = status in ("Enrolled", "Terminated")
    percent = benefit["type"] == "retirement"
    employee_amount = (3 + n % 6) if percent else round(40 + n % 9 * 12.5, 2)
    return {
        "companyBenefitId": benefit["id"], "companyBenefitName": benefit["name"],
        "coverageLevel": BENEFIT_COVERAGES[n % 4] if enrolled and benefit["type"] in (
            "health", "dental", "vision") else None,
        "deductionEndDate": end, "deductionStartDate": start if enrolled else None,
        "enrollmentStatus": status,
        "enrollmentStatusEffectiveDate": end if status == "Terminated" and end else start,
        "currencyCode": "USD" if enrolled else None,
        "employeeAmount": employee_amount if enrolled and benefit["type"] != "life" else None,
        "employeeAmountType": ("%" if percent else "$") if enrolled else None,
        "employeePercentBasedOn": "Gross" if percent and enrolled else None,
        "employeeCapAmount": None, "employeeCapAmountType": None,
        "employeeAnnualMax": 23500 if percent and enrolled else None,
        "companyAmount": (4 if percent else 250.0) if enrolled else None,
        "companyAmountType": ("%" if percent else "$") if enrolled else None,
        "companyPercentBasedOn": "Gross" if percent and enrolled else None,
        "companyCapAmount": None, "companyCapAmountType": None, "companyAnnualMax": None,
        "occurrencesPerYear": 24,
    }


def main(argv=None):
    common.serve(BambooHR, argv, "BambooHR sandbox provider")


if __name__ == "__main__":
    main()
