
/*
 * Field expressions of the mapping tables: compiled at configuration time
 * into a tree of ngx_http_hris_expr_t, evaluated for every field of every
 * upstream record. See mappings/README.md, "Field expressions".
 *
 * Compile-time data lives in the configuration pool; evaluation allocates
 * only jansson values (and, for long templates, a heap buffer it frees), so
 * a request never grows a pool however many records it maps.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_hris_map.h"


/* sources: exactly one per expression */
#define NGX_HTTP_HRIS_EXPR_PATH        1
#define NGX_HTTP_HRIS_EXPR_CONST       2
#define NGX_HTTP_HRIS_EXPR_TEMPLATE    3
#define NGX_HTTP_HRIS_EXPR_FIRST       4
#define NGX_HTTP_HRIS_EXPR_OBJECT      5
#define NGX_HTTP_HRIS_EXPR_ARRAY       6
#define NGX_HTTP_HRIS_EXPR_EACH        7

/* the other keys of an expression object */
#define NGX_HTTP_HRIS_KEY_REQUIRED     8
#define NGX_HTTP_HRIS_KEY_MAP          9
#define NGX_HTTP_HRIS_KEY_REGEX        10
#define NGX_HTTP_HRIS_KEY_ENUM         11
#define NGX_HTTP_HRIS_KEY_ENUM_DEFAULT 12
#define NGX_HTTP_HRIS_KEY_TYPE         13
#define NGX_HTTP_HRIS_KEY_DEFAULT      14
#define NGX_HTTP_HRIS_KEY_MAX          15

#define NGX_HTTP_HRIS_TYPE_NONE        0
#define NGX_HTTP_HRIS_TYPE_STRING      1
#define NGX_HTTP_HRIS_TYPE_NUMBER      2
#define NGX_HTTP_HRIS_TYPE_INTEGER     3
#define NGX_HTTP_HRIS_TYPE_BOOLEAN     4
#define NGX_HTTP_HRIS_TYPE_DATE        5
#define NGX_HTTP_HRIS_TYPE_DATETIME    6

/* enough for any json_int_t and any "%.17g" double */
#define NGX_HTTP_HRIS_NUM_LEN          32

/* templates longer than this render into a heap buffer */
#define NGX_HTTP_HRIS_TPL_BUF_LEN      512


typedef struct {
    ngx_str_t                  text;       /* literal text before the path */
    ngx_http_hris_path_t       path;
    ngx_uint_t                 has_path;   /* 0 for the trailing literal */
} ngx_http_hris_tpl_part_t;


struct ngx_http_hris_expr_s {
    ngx_uint_t                 source;
    ngx_uint_t                 modified;   /* any modifier present */

    ngx_http_hris_path_t       path;       /* path, each */
    json_t                    *value;      /* const */

    ngx_http_hris_expr_t     **items;      /* first, array, object */
    ngx_uint_t                 nitems;
    ngx_str_t                 *keys;       /* object */
    u_char                    *required;   /* object: a flag per key */

    ngx_http_hris_tpl_part_t  *parts;      /* template */
    ngx_uint_t                 nparts;

    ngx_http_hris_expr_t      *map;        /* each */

    ngx_regex_t               *regex;
    ngx_uint_t                 group;      /* capture to return: 0 or 1 */
    json_t                    *enums;
    json_t                    *enum_default;
    ngx_uint_t                 type;
    json_t                    *dflt;
};


typedef struct {
    const char                *name;
    ngx_uint_t                 kind;
} ngx_http_hris_map_name_t;


/* output of templates: trims and collapses whitespace as it writes */
typedef struct {
    u_char                    *start;
    u_char                    *pos;
    u_char                    *end;
    u_char                    *heap;
    ngx_uint_t                 space;      /* a space is pending */
} ngx_http_hris_map_buf_t;


typedef struct {
    ngx_int_t                  year;
    ngx_int_t                  month;
    ngx_int_t                  day;
    ngx_int_t                  hour;
    ngx_int_t                  min;
    ngx_int_t                  sec;
    ngx_int_t                  offset;     /* seconds east of UTC */
} ngx_http_hris_map_tm_t;


static void ngx_cdecl ngx_http_hris_map_error(ngx_http_hris_map_ctx_t *mc,
    const char *where, const char *fmt, ...);
static const char *ngx_http_hris_map_where(ngx_http_hris_map_ctx_t *mc,
    const char *where, const char *key, ngx_uint_t index);
static json_t *ngx_http_hris_map_keep(ngx_http_hris_map_ctx_t *mc,
    json_t *value);
static void ngx_http_hris_map_json_cleanup(void *data);
static ngx_int_t ngx_http_hris_map_path(ngx_http_hris_map_ctx_t *mc,
    json_t *spec, const char *where, ngx_http_hris_path_t *path);
static ngx_int_t ngx_http_hris_path_index(ngx_str_t *token, size_t *index);

static ngx_http_hris_expr_t *ngx_http_hris_expr_compile_object(
    ngx_http_hris_map_ctx_t *mc, json_t *spec, const char *where);
static ngx_int_t ngx_http_hris_expr_compile_keys(ngx_http_hris_map_ctx_t *mc,
    json_t *spec, const char *where, json_t **keys, ngx_uint_t *source);
static ngx_int_t ngx_http_hris_expr_compile_source(
    ngx_http_hris_map_ctx_t *mc, ngx_http_hris_expr_t *expr, json_t **keys,
    const char *where);
static ngx_int_t ngx_http_hris_expr_compile_list(ngx_http_hris_map_ctx_t *mc,
    ngx_http_hris_expr_t *expr, json_t *spec, const char *where);
static ngx_int_t ngx_http_hris_expr_compile_members(
    ngx_http_hris_map_ctx_t *mc, ngx_http_hris_expr_t *expr, json_t *spec,
    const char *where);
static ngx_int_t ngx_http_hris_expr_compile_required(
    ngx_http_hris_map_ctx_t *mc, ngx_http_hris_expr_t *expr, json_t *spec,
    const char *where);
static ngx_int_t ngx_http_hris_expr_compile_template(
    ngx_http_hris_map_ctx_t *mc, ngx_http_hris_expr_t *expr, json_t *spec,
    const char *where);
static ngx_int_t ngx_http_hris_expr_compile_placeholder(
    ngx_http_hris_map_ctx_t *mc, ngx_http_hris_tpl_part_t *part, u_char *p,
    u_char *last, const char *where);
static ngx_int_t ngx_http_hris_expr_compile_modifiers(
    ngx_http_hris_map_ctx_t *mc, ngx_http_hris_expr_t *expr, json_t **keys,
    const char *where);
static ngx_int_t ngx_http_hris_expr_compile_regex(ngx_http_hris_map_ctx_t *mc,
    ngx_http_hris_expr_t *expr, json_t *spec, const char *where);
static ngx_int_t ngx_http_hris_expr_compile_type(ngx_http_hris_map_ctx_t *mc,
    ngx_http_hris_expr_t *expr, json_t *spec, const char *where);

static json_t *ngx_http_hris_expr_pointer(ngx_http_hris_path_t *path,
    json_t *record, json_t *parent);
static json_t *ngx_http_hris_expr_template(ngx_http_hris_expr_t *expr,
    json_t *record, json_t *parent);
static json_t *ngx_http_hris_expr_first(ngx_http_hris_expr_t *expr,
    json_t *record, json_t *parent);
static json_t *ngx_http_hris_expr_object(ngx_http_hris_expr_t *expr,
    json_t *record, json_t *parent);
static json_t *ngx_http_hris_expr_array(ngx_http_hris_expr_t *expr,
    json_t *record, json_t *parent);
static json_t *ngx_http_hris_expr_each(ngx_http_hris_expr_t *expr,
    json_t *record, json_t *parent);
static json_t *ngx_http_hris_expr_modify(ngx_http_hris_expr_t *expr,
    json_t *value);
static json_t *ngx_http_hris_expr_regex(ngx_http_hris_expr_t *expr,
    json_t *value);
static json_t *ngx_http_hris_expr_enum(ngx_http_hris_expr_t *expr,
    json_t *value);
static json_t *ngx_http_hris_expr_convert(ngx_uint_t type, json_t *value);

static ngx_int_t ngx_http_hris_map_buf_add(ngx_http_hris_map_buf_t *b,
    u_char *data, size_t len);
static ngx_int_t ngx_http_hris_map_buf_grow(ngx_http_hris_map_buf_t *b,
    size_t len);
static ngx_int_t ngx_http_hris_map_string_form(json_t *value, u_char *buf,
    ngx_str_t *s);
static size_t ngx_http_hris_map_real_form(double d, u_char *buf);
static void ngx_http_hris_map_trim(ngx_str_t *s);

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


/* the sources come first, in the order of their numbers */

static ngx_http_hris_map_name_t  ngx_http_hris_map_keys[] = {
    { "path", NGX_HTTP_HRIS_EXPR_PATH },
    { "const", NGX_HTTP_HRIS_EXPR_CONST },
    { "template", NGX_HTTP_HRIS_EXPR_TEMPLATE },
    { "first", NGX_HTTP_HRIS_EXPR_FIRST },
    { "object", NGX_HTTP_HRIS_EXPR_OBJECT },
    { "array", NGX_HTTP_HRIS_EXPR_ARRAY },
    { "each", NGX_HTTP_HRIS_EXPR_EACH },
    { "required", NGX_HTTP_HRIS_KEY_REQUIRED },
    { "map", NGX_HTTP_HRIS_KEY_MAP },
    { "regex", NGX_HTTP_HRIS_KEY_REGEX },
    { "enum", NGX_HTTP_HRIS_KEY_ENUM },
    { "enum_default", NGX_HTTP_HRIS_KEY_ENUM_DEFAULT },
    { "type", NGX_HTTP_HRIS_KEY_TYPE },
    { "default", NGX_HTTP_HRIS_KEY_DEFAULT },
    { NULL, 0 }
};


static ngx_http_hris_map_name_t  ngx_http_hris_map_types[] = {
    { "string", NGX_HTTP_HRIS_TYPE_STRING },
    { "number", NGX_HTTP_HRIS_TYPE_NUMBER },
    { "integer", NGX_HTTP_HRIS_TYPE_INTEGER },
    { "boolean", NGX_HTTP_HRIS_TYPE_BOOLEAN },
    { "date", NGX_HTTP_HRIS_TYPE_DATE },
    { "datetime", NGX_HTTP_HRIS_TYPE_DATETIME },
    { NULL, 0 }
};


/* paths */

ngx_int_t
ngx_http_hris_path_compile(ngx_pool_t *pool, ngx_str_t *text,
    ngx_http_hris_path_t *path)
{
    u_char     *p, *last, *q, *d;
    ngx_str_t  *token;
    ngx_uint_t  n;

    p = text->data;
    last = p + text->len;

    path->parent = 0;
    path->n = 0;
    path->tokens = NULL;

    if (text->len >= sizeof("$parent") - 1
        && ngx_strncmp(p, "$parent", sizeof("$parent") - 1) == 0)
    {
        path->parent = 1;
        p += sizeof("$parent") - 1;
    }

    if (p == last) {
        return NGX_OK;
    }

    if (*p != '/') {
        return NGX_ERROR;
    }

    n = 0;

    for (q = p; q < last; q++) {
        if (*q == '/') {
            n++;
        }
    }

    path->tokens = ngx_palloc(pool, n * sizeof(ngx_str_t));
    if (path->tokens == NULL) {
        return NGX_ERROR;
    }

    path->n = n;
    token = path->tokens;

    while (p < last) {

        /* p points at the '/' that opens a token */

        for (q = ++p; q < last && *q != '/'; q++) { /* void */ }

        token->data = ngx_pnalloc(pool, q - p + 1);
        if (token->data == NULL) {
            return NGX_ERROR;
        }

        for (d = token->data; p < q; p++) {

            if (*p != '~') {
                *d++ = *p;
                continue;
            }

            /* RFC 6901: "~0" is "~", "~1" is "/", any other "~" is invalid */

            if (p + 1 == q || (p[1] != '0' && p[1] != '1')) {
                return NGX_ERROR;
            }

            *d++ = (*++p == '0') ? '~' : '/';
        }

        *d = '\0';
        token->len = d - token->data;
        token++;
    }

    return NGX_OK;
}


json_t *
ngx_http_hris_path_get(ngx_http_hris_path_t *path, json_t *record,
    json_t *parent)
{
    size_t       index;
    json_t      *v;
    ngx_str_t   *token;
    ngx_uint_t   i;

    v = path->parent ? parent : record;
    token = path->tokens;

    for (i = 0; i < path->n && v != NULL; i++) {

        switch (json_typeof(v)) {

        case JSON_OBJECT:
            v = json_object_getn(v, (const char *) token[i].data,
                                 token[i].len);
            break;

        case JSON_ARRAY:
            if (ngx_http_hris_path_index(&token[i], &index) != NGX_OK) {
                return NULL;
            }

            v = json_array_get(v, index);
            break;

        default:
            return NULL;
        }
    }

    return v;
}


/* RFC 6901 array index: "0" or digits without a leading zero */

static ngx_int_t
ngx_http_hris_path_index(ngx_str_t *token, size_t *index)
{
    size_t   n;
    u_char  *p, *last;

    p = token->data;
    last = p + token->len;

    /* 18 digits cannot overflow, and no array is that long */

    if (p == last || token->len > 18 || (*p == '0' && token->len > 1)) {
        return NGX_DECLINED;
    }

    for (n = 0; p < last; p++) {
        if (*p < '0' || *p > '9') {
            return NGX_DECLINED;
        }

        n = n * 10 + (*p - '0');
    }

    *index = n;

    return NGX_OK;
}


/* compilation */

ngx_http_hris_expr_t *
ngx_http_hris_expr_compile(ngx_http_hris_map_ctx_t *mc, json_t *spec,
    const char *where)
{
    ngx_http_hris_expr_t  *expr;

    switch (json_typeof(spec)) {

    case JSON_OBJECT:
        return ngx_http_hris_expr_compile_object(mc, spec, where);

    case JSON_STRING:
    case JSON_NULL:
        break;

    default:
        ngx_http_hris_map_error(mc, where,
                        "an expression is a field path, null or an object; "
                        "use {\"const\": ...} for a constant");
        return NULL;
    }

    expr = ngx_pcalloc(mc->pool, sizeof(ngx_http_hris_expr_t));
    if (expr == NULL) {
        return NULL;
    }

    if (json_is_null(spec)) {
        expr->source = NGX_HTTP_HRIS_EXPR_CONST;
        expr->value = json_null();
        return expr;
    }

    expr->source = NGX_HTTP_HRIS_EXPR_PATH;

    if (ngx_http_hris_map_path(mc, spec, where, &expr->path) != NGX_OK) {
        return NULL;
    }

    return expr;
}


static ngx_http_hris_expr_t *
ngx_http_hris_expr_compile_object(ngx_http_hris_map_ctx_t *mc, json_t *spec,
    const char *where)
{
    json_t                *keys[NGX_HTTP_HRIS_KEY_MAX];
    ngx_uint_t             source;
    ngx_http_hris_expr_t  *expr;

    if (ngx_http_hris_expr_compile_keys(mc, spec, where, keys, &source)
        != NGX_OK)
    {
        return NULL;
    }

    expr = ngx_pcalloc(mc->pool, sizeof(ngx_http_hris_expr_t));
    if (expr == NULL) {
        return NULL;
    }

    expr->source = source;

    if (ngx_http_hris_expr_compile_source(mc, expr, keys, where) != NGX_OK) {
        return NULL;
    }

    if (ngx_http_hris_expr_compile_modifiers(mc, expr, keys, where)
        != NGX_OK)
    {
        return NULL;
    }

    return expr;
}


/*
 * Sorts the keys of an expression object into keys[], indexed by kind,
 * and checks that exactly one source is given and that the keys that only
 * make sense with a given source come with it.
 */

static ngx_int_t
ngx_http_hris_expr_compile_keys(ngx_http_hris_map_ctx_t *mc, json_t *spec,
    const char *where, json_t **keys, ngx_uint_t *source)
{
    json_t                    *value;
    const char                *key, *first;
    ngx_uint_t                 kind;
    ngx_http_hris_map_name_t  *name;

    ngx_memzero(keys, NGX_HTTP_HRIS_KEY_MAX * sizeof(json_t *));

    first = NULL;
    *source = 0;

    json_object_foreach(spec, key, value) {

        for (name = ngx_http_hris_map_keys; name->name; name++) {
            if (ngx_strcmp(key, name->name) == 0) {
                break;
            }
        }

        if (name->name == NULL) {
            ngx_http_hris_map_error(mc, where, "unknown key \"%s\"", key);
            return NGX_ERROR;
        }

        kind = name->kind;

        if (kind <= NGX_HTTP_HRIS_EXPR_EACH) {

            if (first) {
                ngx_http_hris_map_error(mc, where,
                                "\"%s\" and \"%s\" are both given; "
                                "an expression has exactly one source",
                                first, key);
                return NGX_ERROR;
            }

            first = name->name;
            *source = kind;
        }

        keys[kind] = value;
    }

    if (first == NULL) {
        ngx_http_hris_map_error(mc, where,
                        "no source: an expression needs one of \"path\", "
                        "\"const\", \"template\", \"first\", \"object\", "
                        "\"array\" or \"each\"");
        return NGX_ERROR;
    }

    if (keys[NGX_HTTP_HRIS_KEY_REQUIRED]
        && *source != NGX_HTTP_HRIS_EXPR_OBJECT)
    {
        ngx_http_hris_map_error(mc, where,
                                "\"required\" is only valid with \"object\"");
        return NGX_ERROR;
    }

    if (keys[NGX_HTTP_HRIS_KEY_MAP] && *source != NGX_HTTP_HRIS_EXPR_EACH) {
        ngx_http_hris_map_error(mc, where,
                                "\"map\" is only valid with \"each\"");
        return NGX_ERROR;
    }

    if (keys[NGX_HTTP_HRIS_KEY_MAP] == NULL
        && *source == NGX_HTTP_HRIS_EXPR_EACH)
    {
        ngx_http_hris_map_error(mc, where, "\"each\" needs \"map\"");
        return NGX_ERROR;
    }

    if (keys[NGX_HTTP_HRIS_KEY_ENUM_DEFAULT]
        && keys[NGX_HTTP_HRIS_KEY_ENUM] == NULL)
    {
        ngx_http_hris_map_error(mc, where,
                            "\"enum_default\" is only valid with \"enum\"");
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_expr_compile_source(ngx_http_hris_map_ctx_t *mc,
    ngx_http_hris_expr_t *expr, json_t **keys, const char *where)
{
    json_t      *spec;
    const char  *name, *at;

    spec = keys[expr->source];
    name = ngx_http_hris_map_keys[expr->source - 1].name;

    at = ngx_http_hris_map_where(mc, where, name, NGX_CONF_UNSET_UINT);
    if (at == NULL) {
        return NGX_ERROR;
    }

    switch (expr->source) {

    case NGX_HTTP_HRIS_EXPR_PATH:
        return ngx_http_hris_map_path(mc, spec, at, &expr->path);

    case NGX_HTTP_HRIS_EXPR_CONST:
        expr->value = ngx_http_hris_map_keep(mc, spec);
        return expr->value ? NGX_OK : NGX_ERROR;

    case NGX_HTTP_HRIS_EXPR_TEMPLATE:
        return ngx_http_hris_expr_compile_template(mc, expr, spec, at);

    case NGX_HTTP_HRIS_EXPR_FIRST:
    case NGX_HTTP_HRIS_EXPR_ARRAY:
        return ngx_http_hris_expr_compile_list(mc, expr, spec, at);

    case NGX_HTTP_HRIS_EXPR_OBJECT:
        if (ngx_http_hris_expr_compile_members(mc, expr, spec, at) != NGX_OK) {
            return NGX_ERROR;
        }

        spec = keys[NGX_HTTP_HRIS_KEY_REQUIRED];

        if (spec == NULL) {
            return NGX_OK;
        }

        at = ngx_http_hris_map_where(mc, where, "required",
                                     NGX_CONF_UNSET_UINT);
        if (at == NULL) {
            return NGX_ERROR;
        }

        return ngx_http_hris_expr_compile_required(mc, expr, spec, at);

    default: /* NGX_HTTP_HRIS_EXPR_EACH */

        if (ngx_http_hris_map_path(mc, spec, at, &expr->path) != NGX_OK) {
            return NGX_ERROR;
        }

        at = ngx_http_hris_map_where(mc, where, "map", NGX_CONF_UNSET_UINT);
        if (at == NULL) {
            return NGX_ERROR;
        }

        expr->map = ngx_http_hris_expr_compile(mc, keys[NGX_HTTP_HRIS_KEY_MAP],
                                               at);
        return expr->map ? NGX_OK : NGX_ERROR;
    }
}


static ngx_int_t
ngx_http_hris_expr_compile_list(ngx_http_hris_map_ctx_t *mc,
    ngx_http_hris_expr_t *expr, json_t *spec, const char *where)
{
    size_t       i;
    json_t      *item;
    const char  *at;

    if (!json_is_array(spec)) {
        ngx_http_hris_map_error(mc, where, "must be an array of expressions");
        return NGX_ERROR;
    }

    expr->nitems = json_array_size(spec);
    expr->items = ngx_palloc(mc->pool,
                             expr->nitems * sizeof(ngx_http_hris_expr_t *));
    if (expr->items == NULL) {
        return NGX_ERROR;
    }

    json_array_foreach(spec, i, item) {

        at = ngx_http_hris_map_where(mc, where, NULL, i);
        if (at == NULL) {
            return NGX_ERROR;
        }

        expr->items[i] = ngx_http_hris_expr_compile(mc, item, at);
        if (expr->items[i] == NULL) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_expr_compile_members(ngx_http_hris_map_ctx_t *mc,
    ngx_http_hris_expr_t *expr, json_t *spec, const char *where)
{
    size_t       len;
    json_t      *item;
    ngx_str_t   *k;
    const char  *key, *at;
    ngx_uint_t   i;

    if (!json_is_object(spec)) {
        ngx_http_hris_map_error(mc, where,
                                "must be an object of key: expression");
        return NGX_ERROR;
    }

    expr->nitems = json_object_size(spec);
    expr->items = ngx_palloc(mc->pool,
                             expr->nitems * sizeof(ngx_http_hris_expr_t *));
    expr->keys = ngx_palloc(mc->pool, expr->nitems * sizeof(ngx_str_t));
    expr->required = ngx_pcalloc(mc->pool, expr->nitems);

    if (expr->items == NULL || expr->keys == NULL || expr->required == NULL)
    {
        return NGX_ERROR;
    }

    i = 0;

    json_object_foreach(spec, key, item) {

        len = ngx_strlen(key);

        k = &expr->keys[i];
        k->len = len;
        k->data = ngx_pnalloc(mc->pool, len + 1);
        if (k->data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(k->data, key, len + 1);

        at = ngx_http_hris_map_where(mc, where, key, NGX_CONF_UNSET_UINT);
        if (at == NULL) {
            return NGX_ERROR;
        }

        expr->items[i] = ngx_http_hris_expr_compile(mc, item, at);
        if (expr->items[i] == NULL) {
            return NGX_ERROR;
        }

        i++;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_expr_compile_required(ngx_http_hris_map_ctx_t *mc,
    ngx_http_hris_expr_t *expr, json_t *spec, const char *where)
{
    size_t       n;
    json_t      *item;
    ngx_str_t    key;
    ngx_uint_t   i;

    if (!json_is_array(spec)) {
        ngx_http_hris_map_error(mc, where, "must be an array of keys");
        return NGX_ERROR;
    }

    json_array_foreach(spec, n, item) {

        if (!json_is_string(item)) {
            ngx_http_hris_map_error(mc, where, "must be an array of keys");
            return NGX_ERROR;
        }

        key.data = (u_char *) json_string_value(item);
        key.len = json_string_length(item);

        for (i = 0; i < expr->nitems; i++) {
            if (key.len == expr->keys[i].len
                && ngx_strncmp(key.data, expr->keys[i].data, key.len) == 0)
            {
                break;
            }
        }

        if (i == expr->nitems) {
            ngx_http_hris_map_error(mc, where,
                                    "\"%V\" is not a key of \"object\"", &key);
            return NGX_ERROR;
        }

        expr->required[i] = 1;
    }

    return NGX_OK;
}


/* "a {{/x}} b" becomes the parts {"a ", /x}, {" b", none} */

static ngx_int_t
ngx_http_hris_expr_compile_template(ngx_http_hris_map_ctx_t *mc,
    ngx_http_hris_expr_t *expr, json_t *spec, const char *where)
{
    u_char                    *p, *last, *open, *close;
    ngx_uint_t                 n;
    ngx_http_hris_tpl_part_t  *part;

    if (!json_is_string(spec)) {
        ngx_http_hris_map_error(mc, where, "must be a string");
        return NGX_ERROR;
    }

    p = (u_char *) json_string_value(spec);
    last = p + json_string_length(spec);

    n = 1;

    for (open = p; open + 1 < last; open++) {
        if (open[0] == '{' && open[1] == '{') {
            n++;
            open++;
        }
    }

    expr->parts = ngx_pcalloc(mc->pool, n * sizeof(ngx_http_hris_tpl_part_t));
    if (expr->parts == NULL) {
        return NGX_ERROR;
    }

    for (part = expr->parts; /* void */ ; part++) {

        for (open = p; open + 1 < last; open++) {
            if (open[0] == '{' && open[1] == '{') {
                break;
            }
        }

        if (open + 1 >= last) {
            open = last;
        }

        part->text.len = open - p;

        if (part->text.len) {
            part->text.data = ngx_pnalloc(mc->pool, part->text.len);
            if (part->text.data == NULL) {
                return NGX_ERROR;
            }

            ngx_memcpy(part->text.data, p, part->text.len);
        }

        if (open == last) {
            break;
        }

        for (close = open + 2; close + 1 < last; close++) {
            if (close[0] == '}' && close[1] == '}') {
                break;
            }
        }

        if (close + 1 >= last) {
            ngx_http_hris_map_error(mc, where, "unterminated \"{{\"");
            return NGX_ERROR;
        }

        if (ngx_http_hris_expr_compile_placeholder(mc, part, open + 2, close,
                                                   where)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        p = close + 2;
    }

    expr->nparts = part - expr->parts + 1;

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_expr_compile_placeholder(ngx_http_hris_map_ctx_t *mc,
    ngx_http_hris_tpl_part_t *part, u_char *p, u_char *last,
    const char *where)
{
    ngx_str_t  text;

    text.data = p;
    text.len = last - p;

    /* "{{ /first }}" reads as well as "{{/first}}" */

    ngx_http_hris_map_trim(&text);

    if ((text.len && text.data[0] != '/' && text.data[0] != '$')
        || ngx_http_hris_path_compile(mc->pool, &text, &part->path)
           != NGX_OK)
    {
        ngx_http_hris_map_error(mc, where,
                                "invalid field path \"%V\" in \"{{...}}\"; "
                                "a field path starts with \"/\"", &text);
        return NGX_ERROR;
    }

    part->has_path = 1;

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_expr_compile_modifiers(ngx_http_hris_map_ctx_t *mc,
    ngx_http_hris_expr_t *expr, json_t **keys, const char *where)
{
    json_t      *spec;
    const char  *at;

    spec = keys[NGX_HTTP_HRIS_KEY_REGEX];

    if (spec) {
        at = ngx_http_hris_map_where(mc, where, "regex", NGX_CONF_UNSET_UINT);
        if (at == NULL
            || ngx_http_hris_expr_compile_regex(mc, expr, spec, at) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    spec = keys[NGX_HTTP_HRIS_KEY_ENUM];

    if (spec) {
        if (!json_is_object(spec)) {
            at = ngx_http_hris_map_where(mc, where, "enum",
                                         NGX_CONF_UNSET_UINT);
            if (at) {
                ngx_http_hris_map_error(mc, at, "must be an object");
            }

            return NGX_ERROR;
        }

        expr->enums = ngx_http_hris_map_keep(mc, spec);
        if (expr->enums == NULL) {
            return NGX_ERROR;
        }
    }

    spec = keys[NGX_HTTP_HRIS_KEY_ENUM_DEFAULT];

    if (spec) {
        expr->enum_default = ngx_http_hris_map_keep(mc, spec);
        if (expr->enum_default == NULL) {
            return NGX_ERROR;
        }
    }

    spec = keys[NGX_HTTP_HRIS_KEY_TYPE];

    if (spec) {
        at = ngx_http_hris_map_where(mc, where, "type", NGX_CONF_UNSET_UINT);
        if (at == NULL
            || ngx_http_hris_expr_compile_type(mc, expr, spec, at) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    spec = keys[NGX_HTTP_HRIS_KEY_DEFAULT];

    /* "default": null changes nothing */

    if (spec && !json_is_null(spec)) {
        expr->dflt = ngx_http_hris_map_keep(mc, spec);
        if (expr->dflt == NULL) {
            return NGX_ERROR;
        }
    }

    expr->modified = (expr->regex || expr->enums || expr->type || expr->dflt);

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_expr_compile_regex(ngx_http_hris_map_ctx_t *mc,
    ngx_http_hris_expr_t *expr, json_t *spec, const char *where)
{
    u_char               errstr[NGX_MAX_CONF_ERRSTR];
    ngx_regex_compile_t  rc;

    if (!json_is_string(spec)) {
        ngx_http_hris_map_error(mc, where, "must be a string");
        return NGX_ERROR;
    }

    ngx_memzero(&rc, sizeof(ngx_regex_compile_t));

    /* nginx keeps the pattern as the regex's name, so it must outlive spec */

    rc.pattern.len = json_string_length(spec);
    rc.pattern.data = ngx_pnalloc(mc->pool, rc.pattern.len + 1);
    if (rc.pattern.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(rc.pattern.data, json_string_value(spec), rc.pattern.len + 1);

    rc.pool = mc->pool;
    rc.err.len = NGX_MAX_CONF_ERRSTR;
    rc.err.data = errstr;

    if (ngx_regex_compile(&rc) != NGX_OK) {
        ngx_http_hris_map_error(mc, where, "%V", &rc.err);
        return NGX_ERROR;
    }

    expr->regex = rc.regex;
    expr->group = (rc.captures > 0) ? 1 : 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_expr_compile_type(ngx_http_hris_map_ctx_t *mc,
    ngx_http_hris_expr_t *expr, json_t *spec, const char *where)
{
    ngx_http_hris_map_name_t  *name;

    if (json_is_string(spec)) {
        for (name = ngx_http_hris_map_types; name->name; name++) {
            if (ngx_strcmp(json_string_value(spec), name->name) == 0) {
                expr->type = name->kind;
                return NGX_OK;
            }
        }
    }

    ngx_http_hris_map_error(mc, where,
                            "unknown type; one of \"string\", \"number\", "
                            "\"integer\", \"boolean\", \"date\" or "
                            "\"datetime\" is expected");

    return NGX_ERROR;
}


/*
 * Compiles a field path given as a JSON string, telling a constant written
 * where a path is expected (the likeliest mistake) from a malformed path.
 */

static ngx_int_t
ngx_http_hris_map_path(ngx_http_hris_map_ctx_t *mc, json_t *spec,
    const char *where, ngx_http_hris_path_t *path)
{
    ngx_str_t  text;

    if (!json_is_string(spec)) {
        ngx_http_hris_map_error(mc, where, "a field path must be a string");
        return NGX_ERROR;
    }

    text.data = (u_char *) json_string_value(spec);
    text.len = json_string_length(spec);

    if (text.len
        && text.data[0] != '/'
        && ngx_strncmp(text.data, "$parent", sizeof("$parent") - 1) != 0)
    {
        ngx_http_hris_map_error(mc, where,
                                "a field path must start with \"/\"; "
                                "use {\"const\": ...} for a constant");
        return NGX_ERROR;
    }

    if (ngx_http_hris_path_compile(mc->pool, &text, path) != NGX_OK) {
        ngx_http_hris_map_error(mc, where, "invalid field path \"%V\"",
                                &text);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void ngx_cdecl
ngx_http_hris_map_error(ngx_http_hris_map_ctx_t *mc, const char *where,
    const char *fmt, ...)
{
    u_char   *p, errstr[NGX_MAX_CONF_ERRSTR];
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(errstr, errstr + NGX_MAX_CONF_ERRSTR, fmt, args);
    va_end(args);

    /* the table compiler's messages carry the same "hris: " prefix */

    ngx_conf_log_error(NGX_LOG_EMERG, mc->cf, 0, "hris: %s: %s: %*s",
                       mc->file, where, (size_t) (p - errstr), errstr);
}


/* "where.key", or "where.index" when key is NULL */

static const char *
ngx_http_hris_map_where(ngx_http_hris_map_ctx_t *mc, const char *where,
    const char *key, ngx_uint_t index)
{
    u_char  *p;
    size_t   len;

    len = ngx_strlen(where) + sizeof(".") + (key ? ngx_strlen(key)
                                                 : NGX_INT_T_LEN);

    p = ngx_pnalloc(mc->pool, len);
    if (p == NULL) {
        return NULL;
    }

    if (key) {
        ngx_sprintf(p, "%s.%s%Z", where, key);

    } else {
        ngx_sprintf(p, "%s.%ui%Z", where, index);
    }

    return (const char *) p;
}


/* a private copy of a table value, released with the configuration */

static json_t *
ngx_http_hris_map_keep(ngx_http_hris_map_ctx_t *mc, json_t *value)
{
    json_t              *copy;
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(mc->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    copy = json_deep_copy(value);
    if (copy == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_hris_map_json_cleanup;
    cln->data = copy;

    return copy;
}


static void
ngx_http_hris_map_json_cleanup(void *data)
{
    json_decref(data);
}


/* evaluation */

json_t *
ngx_http_hris_expr_eval(ngx_http_hris_expr_t *expr, json_t *record,
    json_t *parent)
{
    json_t  *v;

    switch (expr->source) {

    case NGX_HTTP_HRIS_EXPR_PATH:
        v = ngx_http_hris_expr_pointer(&expr->path, record, parent);
        break;

    case NGX_HTTP_HRIS_EXPR_CONST:
        v = json_incref(expr->value);
        break;

    case NGX_HTTP_HRIS_EXPR_TEMPLATE:
        v = ngx_http_hris_expr_template(expr, record, parent);
        break;

    case NGX_HTTP_HRIS_EXPR_FIRST:
        v = ngx_http_hris_expr_first(expr, record, parent);
        break;

    case NGX_HTTP_HRIS_EXPR_OBJECT:
        v = ngx_http_hris_expr_object(expr, record, parent);
        break;

    case NGX_HTTP_HRIS_EXPR_ARRAY:
        v = ngx_http_hris_expr_array(expr, record, parent);
        break;

    default: /* NGX_HTTP_HRIS_EXPR_EACH */
        v = ngx_http_hris_expr_each(expr, record, parent);
        break;
    }

    if (v == NULL || !expr->modified) {
        return v;
    }

    return ngx_http_hris_expr_modify(expr, v);
}


/* a provider's "" means "unknown" */

static json_t *
ngx_http_hris_expr_pointer(ngx_http_hris_path_t *path, json_t *record,
    json_t *parent)
{
    json_t  *v;

    v = ngx_http_hris_path_get(path, record, parent);

    if (v == NULL || (json_is_string(v) && json_string_length(v) == 0)) {
        return json_null();
    }

    return json_incref(v);
}


static json_t *
ngx_http_hris_expr_template(ngx_http_hris_expr_t *expr, json_t *record,
    json_t *parent)
{
    u_char                     buf[NGX_HTTP_HRIS_TPL_BUF_LEN];
    u_char                     num[NGX_HTTP_HRIS_NUM_LEN];
    json_t                    *v, *r;
    ngx_str_t                  s;
    ngx_uint_t                 i;
    ngx_http_hris_map_buf_t    b;
    ngx_http_hris_tpl_part_t  *part;

    b.start = buf;
    b.pos = buf;
    b.end = buf + sizeof(buf);
    b.heap = NULL;
    b.space = 0;

    part = expr->parts;
    r = NULL;

    for (i = 0; i < expr->nparts; i++) {

        if (ngx_http_hris_map_buf_add(&b, part[i].text.data, part[i].text.len)
            != NGX_OK)
        {
            goto done;
        }

        if (!part[i].has_path) {
            continue;
        }

        v = ngx_http_hris_path_get(&part[i].path, record, parent);

        if (v == NULL || ngx_http_hris_map_string_form(v, num, &s) != NGX_OK) {
            continue;
        }

        if (ngx_http_hris_map_buf_add(&b, s.data, s.len) != NGX_OK) {
            goto done;
        }
    }

    /* the pieces are UTF-8 and only ASCII whitespace was touched */

    if (b.pos == b.start) {
        r = json_null();

    } else {
        r = json_stringn_nocheck((const char *) b.start, b.pos - b.start);
    }

done:

    if (b.heap) {
        ngx_free(b.heap);
    }

    return r;
}


static json_t *
ngx_http_hris_expr_first(ngx_http_hris_expr_t *expr, json_t *record,
    json_t *parent)
{
    json_t      *v;
    ngx_uint_t   i;

    for (i = 0; i < expr->nitems; i++) {

        v = ngx_http_hris_expr_eval(expr->items[i], record, parent);

        if (v == NULL || !json_is_null(v)) {
            return v;
        }

        json_decref(v);
    }

    return json_null();
}


static json_t *
ngx_http_hris_expr_object(ngx_http_hris_expr_t *expr, json_t *record,
    json_t *parent)
{
    json_t      *obj, *v;
    ngx_str_t   *k;
    ngx_uint_t   i;

    obj = json_object();
    if (obj == NULL) {
        return NULL;
    }

    for (i = 0; i < expr->nitems; i++) {

        v = ngx_http_hris_expr_eval(expr->items[i], record, parent);
        if (v == NULL) {
            json_decref(obj);
            return NULL;
        }

        if (expr->required[i] && json_is_null(v)) {
            json_decref(v);
            json_decref(obj);
            return json_null();
        }

        /* keys came from the table, valid UTF-8 */

        k = &expr->keys[i];

        if (json_object_setn_new_nocheck(obj, (const char *) k->data, k->len,
                                         v)
            != 0)
        {
            json_decref(obj);
            return NULL;
        }
    }

    return obj;
}


static json_t *
ngx_http_hris_expr_array(ngx_http_hris_expr_t *expr, json_t *record,
    json_t *parent)
{
    json_t      *arr, *v;
    ngx_uint_t   i;

    arr = json_array();
    if (arr == NULL) {
        return NULL;
    }

    for (i = 0; i < expr->nitems; i++) {

        v = ngx_http_hris_expr_eval(expr->items[i], record, parent);
        if (v == NULL) {
            json_decref(arr);
            return NULL;
        }

        if (json_is_null(v)) {
            json_decref(v);
            continue;
        }

        /* an array (from "each") is spliced in: lists concatenate */
        if (json_is_array(v)) {
            if (json_array_extend(arr, v) != 0) {
                json_decref(v);
                json_decref(arr);
                return NULL;
            }

            json_decref(v);
            continue;
        }

        /* json_array_append_new() releases v when it fails */

        if (json_array_append_new(arr, v) != 0) {
            json_decref(arr);
            return NULL;
        }
    }

    return arr;
}


static json_t *
ngx_http_hris_expr_each(ngx_http_hris_expr_t *expr, json_t *record,
    json_t *parent)
{
    size_t   i;
    json_t  *src, *arr, *elt, *v;

    arr = json_array();
    if (arr == NULL) {
        return NULL;
    }

    src = ngx_http_hris_path_get(&expr->path, record, parent);

    if (src == NULL || !json_is_array(src)) {
        return arr;
    }

    json_array_foreach(src, i, elt) {

        v = ngx_http_hris_expr_eval(expr->map, elt, record);
        if (v == NULL) {
            json_decref(arr);
            return NULL;
        }

        if (json_is_null(v)) {
            json_decref(v);
            continue;
        }

        if (json_array_append_new(arr, v) != 0) {
            json_decref(arr);
            return NULL;
        }
    }

    return arr;
}


/* the modifiers take over "value" and return a new reference */

static json_t *
ngx_http_hris_expr_modify(ngx_http_hris_expr_t *expr, json_t *value)
{
    if (expr->regex) {
        value = ngx_http_hris_expr_regex(expr, value);
        if (value == NULL) {
            return NULL;
        }
    }

    if (expr->enums) {
        value = ngx_http_hris_expr_enum(expr, value);
    }

    if (expr->type) {
        value = ngx_http_hris_expr_convert(expr->type, value);
        if (value == NULL) {
            return NULL;
        }
    }

    if (expr->dflt && json_is_null(value)) {
        json_decref(value);
        value = json_incref(expr->dflt);
    }

    return value;
}


static json_t *
ngx_http_hris_expr_regex(ngx_http_hris_expr_t *expr, json_t *value)
{
    int         captures[6];
    u_char      num[NGX_HTTP_HRIS_NUM_LEN];
    json_t     *r;
    ngx_int_t   rc;
    ngx_str_t   s;
    ngx_uint_t  g;

    if (ngx_http_hris_map_string_form(value, num, &s) != NGX_OK) {
        json_decref(value);
        return json_null();
    }

    rc = ngx_regex_exec(expr->regex, &s, captures, 6);

    /* rc == 0 means more groups matched than fit: the first two are set */

    g = expr->group * 2;

    if (rc < 0 || captures[g] < 0 || captures[g + 1] <= captures[g]) {
        json_decref(value);
        return json_null();
    }

    /*
     * A byte-oriented match may cut a UTF-8 sequence; json_stringn()
     * rejects that, and such a capture reads as null.
     */

    r = json_stringn((const char *) s.data + captures[g],
                     captures[g + 1] - captures[g]);

    json_decref(value);

    return r ? r : json_null();
}


static json_t *
ngx_http_hris_expr_enum(ngx_http_hris_expr_t *expr, json_t *value)
{
    u_char     num[NGX_HTTP_HRIS_NUM_LEN];
    json_t    *mapped;
    ngx_str_t  s;

    /* null stays null, so that "default" still applies */

    if (json_is_null(value)) {
        return value;
    }

    mapped = NULL;

    if (ngx_http_hris_map_string_form(value, num, &s) == NGX_OK) {
        mapped = json_object_getn(expr->enums, (const char *) s.data, s.len);
    }

    if (mapped == NULL) {
        mapped = expr->enum_default;
    }

    if (mapped == NULL) {
        return value;
    }

    json_decref(value);

    return json_incref(mapped);
}


static json_t *
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


/* template output */

static ngx_int_t
ngx_http_hris_map_buf_add(ngx_http_hris_map_buf_t *b, u_char *data,
    size_t len)
{
    u_char  *p, *last;

    /* at most one pending space is written before the data */

    if ((size_t) (b->end - b->pos) < len + 1
        && ngx_http_hris_map_buf_grow(b, len + 1) != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (p = data, last = data + len; p < last; p++) {

        switch (*p) {

        case ' ': case '\t': case '\r': case '\n': case '\f': case '\v':
            b->space = (b->pos != b->start);
            break;

        default:
            if (b->space) {
                *b->pos++ = ' ';
                b->space = 0;
            }

            *b->pos++ = *p;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_map_buf_grow(ngx_http_hris_map_buf_t *b, size_t len)
{
    size_t   used, size;
    u_char  *p;

    used = b->pos - b->start;
    size = 2 * (b->end - b->start);

    if (size < used + len) {
        size = used + len;
    }

    /* evaluation memory is the heap's: the pools serve the configuration */

    p = malloc(size);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, b->start, used);

    if (b->heap) {
        ngx_free(b->heap);
    }

    b->heap = p;
    b->start = p;
    b->pos = p + used;
    b->end = p + size;

    return NGX_OK;
}


/*
 * The string a scalar stands for: strings as they are, numbers in their
 * natural form (into buf), booleans as "true" and "false". Null, objects
 * and arrays have none.
 */

static ngx_int_t
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


static void
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

    r = json_stringn_nocheck((const char *) s.data, s.len);

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

    json_decref(value);

    if (p == NULL
        || (p != last && *p != 'T' && *p != 't' && *p != ' '))
    {
        return json_null();
    }

    p = ngx_http_hris_map_put(out, tm.year, 4);
    *p++ = '-';
    p = ngx_http_hris_map_put(p, tm.month, 2);
    *p++ = '-';
    (void) ngx_http_hris_map_put(p, tm.day, 2);

    return json_stringn_nocheck((const char *) out, sizeof(out));
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

    return json_stringn_nocheck((const char *) out, sizeof(out));
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
