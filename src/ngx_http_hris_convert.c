/*
 * The "type" modifier of field expressions: string, number, integer,
 * boolean, date and datetime (see mappings/README.md). Providers write the
 * same value in many ways; a conversion accepts the forms listed there and
 * gives null for anything else rather than guess. Dates are checked and
 * computed here, in days of the proleptic Gregorian calendar, so that the
 * result does not depend on the local time zone.
 *
 * The text form of a scalar, ngx_http_hris_map_string_form(), is here too:
 * templates, "regex" and "enum" read values through it.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_hris_map_int.h"
#include "ngx_http_hris_arena.h"


typedef struct {
    ngx_int_t                  year;
    ngx_int_t                  month;
    ngx_int_t                  day;
    ngx_int_t                  hour;
    ngx_int_t                  min;
    ngx_int_t                  sec;
    ngx_int_t                  offset;     /* seconds east of UTC */
} ngx_http_hris_map_tm_t;


static size_t ngx_http_hris_map_real_form(double d, u_char *buf);

static json_t *ngx_http_hris_map_to_string(json_t *value);
static json_t *ngx_http_hris_map_to_number(json_t *value);
static json_t *ngx_http_hris_map_to_integer(json_t *value);
static json_t *ngx_http_hris_map_to_boolean(json_t *value);
static json_t *ngx_http_hris_map_to_date(json_t *value);
static json_t *ngx_http_hris_map_to_datetime(json_t *value);
static ngx_int_t ngx_http_hris_map_parse_int(u_char *p, u_char *last,
    json_int_t *n);
static ngx_uint_t ngx_http_hris_map_word(ngx_str_t *s, const char *word);
static u_char *ngx_http_hris_map_parse_date(u_char *p, u_char *last,
    ngx_http_hris_map_tm_t *tm);
static u_char *ngx_http_hris_map_parse_time(u_char *p, u_char *last,
    ngx_http_hris_map_tm_t *tm);
static ngx_int_t ngx_http_hris_map_digits(u_char *p, ngx_uint_t n);
static ngx_int_t ngx_http_hris_map_days_in_month(ngx_int_t year,
    ngx_int_t month);
static ngx_int_t ngx_http_hris_map_days_from_civil(ngx_int_t y, ngx_int_t m,
    ngx_int_t d);
static void ngx_http_hris_map_civil_from_days(ngx_int_t days,
    ngx_http_hris_map_tm_t *tm);
static u_char *ngx_http_hris_map_put(u_char *p, ngx_int_t value,
    ngx_uint_t width);


json_t *
ngx_http_hris_expr_convert(ngx_uint_t type, json_t *value)
{
    if (json_is_null(value)) {
        return value;
    }

    switch (type) {

    case NGX_HTTP_HRIS_TYPE_STRING:
        return ngx_http_hris_map_to_string(value);

    case NGX_HTTP_HRIS_TYPE_NUMBER:
        return ngx_http_hris_map_to_number(value);

    case NGX_HTTP_HRIS_TYPE_INTEGER:
        return ngx_http_hris_map_to_integer(value);

    case NGX_HTTP_HRIS_TYPE_BOOLEAN:
        return ngx_http_hris_map_to_boolean(value);

    case NGX_HTTP_HRIS_TYPE_DATE:
        return ngx_http_hris_map_to_date(value);

    default: /* NGX_HTTP_HRIS_TYPE_DATETIME */
        return ngx_http_hris_map_to_datetime(value);
    }
}


/*
 * The string a scalar stands for: strings as they are, numbers in their
 * natural form (into buf), booleans as "true" and "false". Null, objects
 * and arrays have none.
 */

ngx_int_t
ngx_http_hris_map_string_form(json_t *value, u_char *buf, ngx_str_t *s)
{
    switch (json_typeof(value)) {

    case JSON_STRING:
        s->data = (u_char *) json_string_value(value);
        s->len = json_string_length(value);
        return NGX_OK;

    case JSON_INTEGER:
        s->data = buf;
        s->len = ngx_sprintf(buf, "%L", (int64_t) json_integer_value(value))
                 - buf;
        return NGX_OK;

    case JSON_REAL:
        s->data = buf;
        s->len = ngx_http_hris_map_real_form(json_real_value(value), buf);
        return NGX_OK;

    case JSON_TRUE:
        ngx_str_set(s, "true");
        return NGX_OK;

    case JSON_FALSE:
        ngx_str_set(s, "false");
        return NGX_OK;

    default:
        return NGX_DECLINED;
    }
}


/*
 * The shortest "%g" form that reads back as the same double: 12.5, not
 * 12.500000000000000. ngx_sprintf() has no "%g", hence the libc calls;
 * nginx never sets a locale, so the decimal point is '.'.
 */

static size_t
ngx_http_hris_map_real_form(double d, u_char *buf)
{
    int  n, precision;

    for (precision = 15; precision < 17; precision++) {
        n = snprintf((char *) buf, NGX_HTTP_HRIS_NUM_LEN, "%.*g", precision,
                     d);

        if (strtod((char *) buf, NULL) == d) {
            return n;
        }
    }

    return snprintf((char *) buf, NGX_HTTP_HRIS_NUM_LEN, "%.17g", d);
}


void
ngx_http_hris_map_trim(ngx_str_t *s)
{
    while (s->len && (s->data[0] == ' ' || s->data[0] == '\t'
                      || s->data[0] == '\r' || s->data[0] == '\n'))
    {
        s->data++;
        s->len--;
    }

    while (s->len && (s->data[s->len - 1] == ' '
                      || s->data[s->len - 1] == '\t'
                      || s->data[s->len - 1] == '\r'
                      || s->data[s->len - 1] == '\n'))
    {
        s->len--;
    }
}


/* conversions: each takes over "value" and returns a new reference */

static json_t *
ngx_http_hris_map_to_string(json_t *value)
{
    u_char     num[NGX_HTTP_HRIS_NUM_LEN];
    json_t    *r;
    ngx_str_t  s;

    if (json_is_string(value)) {
        return value;
    }

    if (json_is_object(value) || json_is_array(value)) {
        json_decref(value);
        return json_null();
    }

    (void) ngx_http_hris_map_string_form(value, num, &s);

    r = ngx_http_hris_arena_string(s.data, s.len);

    json_decref(value);

    return r;
}


static json_t *
ngx_http_hris_map_to_number(json_t *value)
{
    u_char      *p, *q, *last;
    double       d;
    ngx_str_t    s;
    json_int_t   n;
    ngx_uint_t   fraction;

    if (json_is_number(value)) {
        return value;
    }

    if (!json_is_string(value)) {
        json_decref(value);
        return json_null();
    }

    s.data = (u_char *) json_string_value(value);
    s.len = json_string_length(value);

    ngx_http_hris_map_trim(&s);

    /* strictly [+-]digits[.digits]: no exponent, hex, "inf" or "nan" */

    p = s.data;
    last = p + s.len;
    q = p;

    if (q < last && (*q == '+' || *q == '-')) {
        q++;
    }

    for (p = q; q < last && *q >= '0' && *q <= '9'; q++) { /* void */ }

    fraction = 0;

    if (q > p && q < last && *q == '.') {
        for (p = ++q; q < last && *q >= '0' && *q <= '9'; q++) { /* void */ }
        fraction = 1;
    }

    if (q == p || q != last) {
        json_decref(value);
        return json_null();
    }

    if (!fraction && ngx_http_hris_map_parse_int(s.data, last, &n) == NGX_OK)
    {
        json_decref(value);
        return json_integer(n);
    }

    /* the text is followed by whitespace or the end: strtod() stops there */

    errno = 0;
    d = strtod((char *) s.data, NULL);

    json_decref(value);

    if (errno == ERANGE) {
        return json_null();
    }

    return json_real(d);
}


static json_t *
ngx_http_hris_map_to_integer(json_t *value)
{
    double      d;
    ngx_str_t   s;
    json_int_t  n;

    switch (json_typeof(value)) {

    case JSON_INTEGER:
        return value;

    case JSON_REAL:
        d = json_real_value(value);
        json_decref(value);

        /* 2^63 bounds json_int_t; the cast is exact only for integers */

        if (d >= -9223372036854775808.0 && d < 9223372036854775808.0
            && (double) (json_int_t) d == d)
        {
            return json_integer((json_int_t) d);
        }

        return json_null();

    case JSON_STRING:
        s.data = (u_char *) json_string_value(value);
        s.len = json_string_length(value);

        ngx_http_hris_map_trim(&s);

        if (ngx_http_hris_map_parse_int(s.data, s.data + s.len, &n) == NGX_OK)
        {
            json_decref(value);
            return json_integer(n);
        }

        /* fall through */

    default:
        json_decref(value);
        return json_null();
    }
}


static json_t *
ngx_http_hris_map_to_boolean(json_t *value)
{
    double      d;
    ngx_str_t   s;
    json_int_t  n;

    switch (json_typeof(value)) {

    case JSON_TRUE:
    case JSON_FALSE:
        return value;

    case JSON_INTEGER:
        n = json_integer_value(value);
        json_decref(value);
        return (n == 0 || n == 1) ? json_boolean(n) : json_null();

    case JSON_REAL:
        d = json_real_value(value);
        json_decref(value);
        return (d == 0.0 || d == 1.0) ? json_boolean(d == 1.0) : json_null();

    case JSON_STRING:
        s.data = (u_char *) json_string_value(value);
        s.len = json_string_length(value);

        ngx_http_hris_map_trim(&s);

        if (ngx_http_hris_map_word(&s, "true")
            || ngx_http_hris_map_word(&s, "yes")
            || ngx_http_hris_map_word(&s, "1"))
        {
            json_decref(value);
            return json_true();
        }

        if (ngx_http_hris_map_word(&s, "false")
            || ngx_http_hris_map_word(&s, "no")
            || ngx_http_hris_map_word(&s, "0"))
        {
            json_decref(value);
            return json_false();
        }

        /* fall through */

    default:
        json_decref(value);
        return json_null();
    }
}


static json_t *
ngx_http_hris_map_to_date(json_t *value)
{
    u_char                  *p, *last, out[sizeof("YYYY-MM-DD") - 1];
    ngx_str_t                s;
    ngx_uint_t               valid;
    ngx_http_hris_map_tm_t   tm;

    if (!json_is_string(value)) {
        json_decref(value);
        return json_null();
    }

    s.data = (u_char *) json_string_value(value);
    s.len = json_string_length(value);

    ngx_http_hris_map_trim(&s);

    last = s.data + s.len;

    /* a timestamp gives its calendar date as written, in its own zone */

    p = ngx_http_hris_map_parse_date(s.data, last, &tm);

    valid = (p != NULL
             && (p == last || *p == 'T' || *p == 't' || *p == ' '));

    /* the text is read: a string built for this (a template) goes now */
    json_decref(value);

    if (!valid) {
        return json_null();
    }

    p = ngx_http_hris_map_put(out, tm.year, 4);
    *p++ = '-';
    p = ngx_http_hris_map_put(p, tm.month, 2);
    *p++ = '-';
    (void) ngx_http_hris_map_put(p, tm.day, 2);

    return ngx_http_hris_arena_string(out, sizeof(out));
}


static json_t *
ngx_http_hris_map_to_datetime(json_t *value)
{
    u_char                  *p, *last;
    u_char                   out[sizeof("YYYY-MM-DDTHH:MM:SSZ") - 1];
    int64_t                  t;
    ngx_str_t                s;
    ngx_int_t                days;
    ngx_http_hris_map_tm_t   tm;

    if (!json_is_string(value)) {
        json_decref(value);
        return json_null();
    }

    s.data = (u_char *) json_string_value(value);
    s.len = json_string_length(value);

    ngx_http_hris_map_trim(&s);

    last = s.data + s.len;

    p = ngx_http_hris_map_parse_date(s.data, last, &tm);
    if (p != NULL) {
        p = ngx_http_hris_map_parse_time(p, last, &tm);
    }

    json_decref(value);

    if (p == NULL) {
        return json_null();
    }

    t = (int64_t) ngx_http_hris_map_days_from_civil(tm.year, tm.month, tm.day)
        * 86400 + tm.hour * 3600 + tm.min * 60 + tm.sec - tm.offset;

    /* floor division: times before 1970 have a negative t */

    days = (ngx_int_t) (t >= 0 ? t / 86400 : (t - 86399) / 86400);
    t -= (int64_t) days * 86400;

    ngx_http_hris_map_civil_from_days(days, &tm);

    if (tm.year < 0 || tm.year > 9999) {
        return json_null();
    }

    p = ngx_http_hris_map_put(out, tm.year, 4);
    *p++ = '-';
    p = ngx_http_hris_map_put(p, tm.month, 2);
    *p++ = '-';
    p = ngx_http_hris_map_put(p, tm.day, 2);
    *p++ = 'T';
    p = ngx_http_hris_map_put(p, t / 3600, 2);
    *p++ = ':';
    p = ngx_http_hris_map_put(p, t / 60 % 60, 2);
    *p++ = ':';
    p = ngx_http_hris_map_put(p, t % 60, 2);
    *p = 'Z';

    return ngx_http_hris_arena_string(out, sizeof(out));
}


/* [+-]digits, fitting json_int_t */

static ngx_int_t
ngx_http_hris_map_parse_int(u_char *p, u_char *last, json_int_t *n)
{
    ngx_uint_t  negative;
    uint64_t    v, limit;

    negative = 0;

    if (p < last && (*p == '+' || *p == '-')) {
        negative = (*p++ == '-');
    }

    if (p == last) {
        return NGX_DECLINED;
    }

    limit = negative ? (uint64_t) LLONG_MAX + 1 : (uint64_t) LLONG_MAX;

    for (v = 0; p < last; p++) {

        if (*p < '0' || *p > '9') {
            return NGX_DECLINED;
        }

        if (v > (limit - (*p - '0')) / 10) {
            return NGX_DECLINED;
        }

        v = v * 10 + (*p - '0');
    }

    /* -2^63 has no positive counterpart: negate in unsigned arithmetic */

    *n = negative ? (json_int_t) (0 - v) : (json_int_t) v;

    return NGX_OK;
}


/* case-insensitive comparison with a lowercase word */

static ngx_uint_t
ngx_http_hris_map_word(ngx_str_t *s, const char *word)
{
    size_t  i;

    for (i = 0; i < s->len; i++) {
        if (word[i] == '\0' || ngx_tolower(s->data[i]) != (u_char) word[i]) {
            return 0;
        }
    }

    return word[i] == '\0';
}


/*
 * YYYY-MM-DD, YYYY/MM/DD or DD.MM.YYYY, a valid calendar date; returns
 * the end of the date or NULL.
 */

static u_char *
ngx_http_hris_map_parse_date(u_char *p, u_char *last,
    ngx_http_hris_map_tm_t *tm)
{
    if (last - p < 10) {
        return NULL;
    }

    if ((p[4] == '-' || p[4] == '/') && p[7] == p[4]) {
        tm->year = ngx_http_hris_map_digits(p, 4);
        tm->month = ngx_http_hris_map_digits(p + 5, 2);
        tm->day = ngx_http_hris_map_digits(p + 8, 2);

    } else if (p[2] == '.' && p[5] == '.') {
        tm->day = ngx_http_hris_map_digits(p, 2);
        tm->month = ngx_http_hris_map_digits(p + 3, 2);
        tm->year = ngx_http_hris_map_digits(p + 6, 4);

    } else {
        return NULL;
    }

    if (tm->year < 0 || tm->month < 1 || tm->month > 12 || tm->day < 1
        || tm->day > ngx_http_hris_map_days_in_month(tm->year, tm->month))
    {
        return NULL;
    }

    tm->hour = 0;
    tm->min = 0;
    tm->sec = 0;
    tm->offset = 0;

    return p + 10;
}


/*
 * What may follow a date in a datetime: nothing (midnight UTC), or
 * T or space, HH:MM:SS, optional fraction (dropped) and an optional zone,
 * Z, +HH:MM or +HHMM (none is UTC). Returns the end or NULL.
 */

static u_char *
ngx_http_hris_map_parse_time(u_char *p, u_char *last,
    ngx_http_hris_map_tm_t *tm)
{
    ngx_int_t  sign, h, m;

    if (p == last) {
        return p;
    }

    if ((*p != 'T' && *p != 't' && *p != ' ') || last - p < 9
        || p[3] != ':' || p[6] != ':')
    {
        return NULL;
    }

    tm->hour = ngx_http_hris_map_digits(p + 1, 2);
    tm->min = ngx_http_hris_map_digits(p + 4, 2);
    tm->sec = ngx_http_hris_map_digits(p + 7, 2);

    if (tm->hour < 0 || tm->hour > 23 || tm->min < 0 || tm->min > 59
        || tm->sec < 0 || tm->sec > 59)
    {
        return NULL;
    }

    p += 9;

    if (p < last && *p == '.') {
        if (++p == last || *p < '0' || *p > '9') {
            return NULL;
        }

        while (p < last && *p >= '0' && *p <= '9') {
            p++;
        }
    }

    if (p == last) {
        return p;
    }

    if (*p == 'Z' || *p == 'z') {
        return (p + 1 == last) ? last : NULL;
    }

    if (*p != '+' && *p != '-') {
        return NULL;
    }

    sign = (*p++ == '-') ? -1 : 1;

    if (last - p == 5 && p[2] == ':') {
        h = ngx_http_hris_map_digits(p, 2);
        m = ngx_http_hris_map_digits(p + 3, 2);

    } else if (last - p == 4) {
        h = ngx_http_hris_map_digits(p, 2);
        m = ngx_http_hris_map_digits(p + 2, 2);

    } else {
        return NULL;
    }

    if (h < 0 || h > 23 || m < 0 || m > 59) {
        return NULL;
    }

    tm->offset = sign * (h * 3600 + m * 60);

    return last;
}


/* n decimal digits, or -1 */

static ngx_int_t
ngx_http_hris_map_digits(u_char *p, ngx_uint_t n)
{
    ngx_int_t  v;

    for (v = 0; n; n--, p++) {
        if (*p < '0' || *p > '9') {
            return -1;
        }

        v = v * 10 + (*p - '0');
    }

    return v;
}


static ngx_int_t
ngx_http_hris_map_days_in_month(ngx_int_t year, ngx_int_t month)
{
    static const u_char  days[] = { 31, 28, 31, 30, 31, 30,
                                    31, 31, 30, 31, 30, 31 };

    if (month == 2
        && year % 4 == 0 && (year % 100 != 0 || year % 400 == 0))
    {
        return 29;
    }

    return days[month - 1];
}


/*
 * Days since 1970-01-01 of a proleptic Gregorian date, and back; after
 * Howard Hinnant's "chrono-compatible low-level date algorithms". Years
 * start in March so that the leap day ends them.
 */

static ngx_int_t
ngx_http_hris_map_days_from_civil(ngx_int_t y, ngx_int_t m, ngx_int_t d)
{
    ngx_int_t  era, yoe, doy, doe;

    y -= (m <= 2);
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + doe - 719468;
}


static void
ngx_http_hris_map_civil_from_days(ngx_int_t days, ngx_http_hris_map_tm_t *tm)
{
    ngx_int_t  era, doe, yoe, doy, mp;

    days += 719468;
    era = (days >= 0 ? days : days - 146096) / 146097;
    doe = days - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;

    tm->day = doy - (153 * mp + 2) / 5 + 1;
    tm->month = (mp < 10) ? mp + 3 : mp - 9;
    tm->year = yoe + era * 400 + (tm->month <= 2);
}


/* a non-negative value as exactly "width" digits, zero-padded */

static u_char *
ngx_http_hris_map_put(u_char *p, ngx_int_t value, ngx_uint_t width)
{
    u_char  *q;

    for (q = p + width; q > p; value /= 10) {
        *--q = (u_char) ('0' + value % 10);
    }

    return p + width;
}
