/*
 * Evaluating field expressions, compiled by ngx_http_hris_map.c, against
 * an upstream record: the source (path, const, template, first, object,
 * array or each), then the modifiers regex, enum, type and default, in that
 * order. See mappings/README.md, "Field expressions".
 *
 * This runs for every field of every record, so it allocates only jansson
 * values (and, for long templates, a heap buffer it frees): a request never
 * grows a pool however many records it maps.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_hris_map_int.h"
#include "ngx_http_hris_arena.h"


/* templates longer than this render into a heap buffer */
#define NGX_HTTP_HRIS_TPL_BUF_LEN      512


/*
 * Set while a record is mapped for the answer's writer: "object"
 * expressions give compact objects (ngx_http_hris_map.h). Per thread: a
 * thread that parses a huge answer may evaluate a filter meanwhile.
 */
__thread ngx_uint_t  ngx_http_hris_map_compact
    __attribute__((tls_model("initial-exec")));


/* output of templates: trims and collapses whitespace as it writes */
typedef struct {
    u_char                    *start;
    u_char                    *pos;
    u_char                    *end;
    u_char                    *heap;
    ngx_uint_t                 space;      /* a space is pending */
} ngx_http_hris_map_buf_t;


static json_t *ngx_http_hris_expr_pointer(ngx_http_hris_path_t *path,
    json_t *record, json_t *parent);
/*
 * those with buffers on their stack are not inlined: the stack protector
 * would check every evaluation (ngx_http_hris_expr_eval()) otherwise
 */
static json_t *ngx_http_hris_expr_template(ngx_http_hris_expr_t *expr,
    json_t *record, json_t *parent) __attribute__((noinline));
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
    json_t *value) __attribute__((noinline));
static json_t *ngx_http_hris_expr_enum(ngx_http_hris_expr_t *expr,
    json_t *value) __attribute__((noinline));

static ngx_int_t ngx_http_hris_map_buf_add(ngx_http_hris_map_buf_t *b,
    u_char *data, size_t len);
static ngx_int_t ngx_http_hris_map_buf_grow(ngx_http_hris_map_buf_t *b,
    size_t len);


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
    json_t                    *v;
    ngx_http_hris_slot_rec_t  *rec;

    rec = ngx_http_hris_slot_record;

    /* most often a key of the slot record being mapped: its slot */

    if (rec != NULL && path->n == 1 && !path->parent && record == rec->obj
        && path->slot_keys == rec->keys)
    {
        v = rec->slot[path->slot];

    } else {
        v = ngx_http_hris_path_get(path, record, parent);
    }

    if (v == NULL
        || (json_is_string(v) && ngx_http_hris_string_length(v) == 0))
    {
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
        r = ngx_http_hris_arena_string(b.start, b.pos - b.start);
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


/*
 * A jansson object; or, while a record is mapped for the answer's writer,
 * a compact object (ngx_http_hris_map.h): its mark, then the values in
 * the order of the keys.
 */

static json_t *
ngx_http_hris_expr_object(ngx_http_hris_expr_t *expr, json_t *record,
    json_t *parent)
{
    int          rc;
    json_t      *obj, *v;
    ngx_str_t   *k;
    ngx_uint_t   i, compact;

    compact = ngx_http_hris_map_compact && expr->compact.keys;

    /* a compact object: its mark and values, in one block of the arena */
    obj = compact ? ngx_http_hris_arena_array(expr->nitems + 1)
                  : json_object();

    if (obj == NULL
        || (compact
            && ngx_http_hris_array_append(obj, &expr->compact.mark) != 0))
    {
        json_decref(obj);
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

        rc = compact ? ngx_http_hris_array_append(obj, v)
                     : json_object_setn_new_nocheck(obj, (const char *) k->data,
                                                    k->len, v);
        if (rc != 0) {
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

    arr = ngx_http_hris_arena_array(expr->nitems);
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
        if (json_is_array(v) && ngx_http_hris_compact_of(v) == NULL) {
            if (json_array_extend(arr, v) != 0) {
                json_decref(v);
                json_decref(arr);
                return NULL;
            }

            json_decref(v);
            continue;
        }

        /* ngx_http_hris_array_append() releases v when it fails */

        if (ngx_http_hris_array_append(arr, v) != 0) {
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

    src = ngx_http_hris_path_get(&expr->path, record, parent);

    arr = ngx_http_hris_arena_array(json_array_size(src));
    if (arr == NULL) {
        return NULL;
    }

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

        if (ngx_http_hris_array_append(arr, v) != 0) {
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


/* template output */

static ngx_int_t
ngx_http_hris_map_buf_add(ngx_http_hris_map_buf_t *b, u_char *data,
    size_t len)
{
    u_char  *p, *last;

    /* an empty part may come with data NULL, and NULL + 0 is undefined */

    if (len == 0) {
        return NGX_OK;
    }

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
