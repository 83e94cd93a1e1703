
/*
 * Field expressions of the mapping tables, compiled at configuration time
 * into a tree of ngx_http_hris_expr_t. See mappings/README.md, "Field
 * expressions". This file checks a table's JSON and compiles it, so that
 * a mistake stops nginx from starting with "<file>: <where>: <what>"
 * rather than showing up in answers; ngx_http_hris_eval.c evaluates the
 * tree, ngx_http_hris_convert.c does the "type" conversions and
 * ngx_http_hris_path.c the field paths.
 *
 * The tree, its paths and its private copies of table values live in the
 * configuration pool and go with it.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_hris_map_int.h"


typedef struct {
    const char                *name;
    ngx_uint_t                 kind;
} ngx_http_hris_map_name_t;


static void ngx_cdecl ngx_http_hris_map_error(ngx_http_hris_map_ctx_t *mc,
    const char *where, const char *fmt, ...);
static const char *ngx_http_hris_map_where(ngx_http_hris_map_ctx_t *mc,
    const char *where, const char *key, ngx_uint_t index);
static json_t *ngx_http_hris_map_keep(ngx_http_hris_map_ctx_t *mc,
    json_t *value);
static void ngx_http_hris_map_json_cleanup(void *data);
static void ngx_http_hris_map_mortal(json_t *v, size_t refcount);
static ngx_int_t ngx_http_hris_map_path(ngx_http_hris_map_ctx_t *mc,
    json_t *spec, const char *where, ngx_http_hris_path_t *path);

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

    if (mc->write_key) {
        expr->compact.keys = ngx_palloc(mc->pool,
                                        expr->nitems * sizeof(ngx_str_t));
        if (expr->compact.keys == NULL) {
            return NGX_ERROR;
        }

        /* an immortal null, as jansson's own (ngx_http_hris_map.h) */
        expr->compact.mark.type = JSON_NULL;
        expr->compact.mark.refcount = (size_t) -1;
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

        if (mc->write_key
            && mc->write_key(mc->pool, k, &expr->compact.keys[i]) != NGX_OK)
        {
            return NGX_ERROR;
        }

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

    return ngx_http_hris_path_slot(mc, &part->path);
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

    /* its first token read from a slot record's slot */
    return ngx_http_hris_path_slot(mc, path);
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


/*
 * A private copy of a table value (a constant, a default, an enum's
 * values), released with the table's pool: the configuration's, or an
 * account's own table's (ngx_http_hris_table_variant()).
 *
 * Every node of the copy is immortal while the table lives (refcount
 * (size_t) -1, as jansson's true, false and null): a record that borrows
 * it costs no atomic instruction, and leaves nothing to give back, so
 * that a mapped page's release walk can be skipped (ngx_http_hris_walk.c).
 * This is safe because what borrows these values is a mapped record, and
 * a mapped record dies with its request, which holds its table until it
 * ends (the cycle; the account's reference). The pool's cleanup makes the
 * copy mortal again and frees it.
 */

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

    ngx_http_hris_map_mortal(copy, (size_t) -1);

    cln->handler = ngx_http_hris_map_json_cleanup;
    cln->data = copy;

    return copy;
}


static void
ngx_http_hris_map_json_cleanup(void *data)
{
    ngx_http_hris_map_mortal(data, 1);
    json_decref(data);
}


/*
 * Sets the refcount of every node of a private copy: (size_t) -1 makes it
 * immortal, 1 gives it back to json_decref(). jansson's own true, false
 * and null are shared and always immortal: left alone. The depth is the
 * table file's, which jansson read (at most its 2048 levels).
 */

static void
ngx_http_hris_map_mortal(json_t *v, size_t refcount)
{
    size_t       i;
    json_t      *m;
    const char  *key;

    switch (json_typeof(v)) {

    case JSON_OBJECT:
        json_object_foreach(v, key, m) {
            ngx_http_hris_map_mortal(m, refcount);
        }
        break;

    case JSON_ARRAY:
        json_array_foreach(v, i, m) {
            ngx_http_hris_map_mortal(m, refcount);
        }
        break;

    case JSON_STRING:
    case JSON_INTEGER:
    case JSON_REAL:
        break;

    default:
        return;
    }

    v->refcount = refcount;
}


ngx_http_hris_slot_keys_t *
ngx_http_hris_expr_slot_keys(ngx_http_hris_expr_t *expr)
{
    ngx_uint_t                  i;
    ngx_http_hris_slot_keys_t  *keys;

    if (expr->path.slot_keys) {
        return expr->path.slot_keys;
    }

    for (i = 0; i < expr->nparts; i++) {
        if (expr->parts[i].has_path && expr->parts[i].path.slot_keys) {
            return expr->parts[i].path.slot_keys;
        }
    }

    for (i = 0; i < expr->nitems; i++) {
        keys = ngx_http_hris_expr_slot_keys(expr->items[i]);
        if (keys) {
            return keys;
        }
    }

    return expr->map ? ngx_http_hris_expr_slot_keys(expr->map) : NULL;
}
