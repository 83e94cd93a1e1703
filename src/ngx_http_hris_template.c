/*
 * String templates: compiled once, rendered per upstream call. Variables
 * are escaped for URLs on request, literals never are (they are the
 * table author's text).
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_hris_template.h"


typedef struct {
    const char                    *prefix;
    ngx_http_hris_tpl_part_type_e  type;
    ngx_uint_t                     keyed;     /* "prefix.key" */
} ngx_http_hris_tpl_ns_t;


static ngx_http_hris_tpl_ns_t  ngx_http_hris_tpl_ns[] = {
    { "context.",     NGX_HTTP_HRIS_TPL_CONTEXT,     1 },
    { "credentials.", NGX_HTTP_HRIS_TPL_CREDENTIALS, 1 },
    { "filter.",      NGX_HTTP_HRIS_TPL_FILTER,      1 },
    { "id",           NGX_HTTP_HRIS_TPL_ID,          0 },
    { "page.limit",   NGX_HTTP_HRIS_TPL_PAGE_LIMIT,  0 },
    { "page.cursor",  NGX_HTTP_HRIS_TPL_PAGE_CURSOR, 0 },
    { "page.offset",  NGX_HTTP_HRIS_TPL_PAGE_OFFSET, 0 },
    { "page.number",  NGX_HTTP_HRIS_TPL_PAGE_NUMBER, 0 },
    { "each.value",   NGX_HTTP_HRIS_TPL_EACH,        0 },
    { "base_url",     NGX_HTTP_HRIS_TPL_BASE_URL,    0 },
    { "token_url",    NGX_HTTP_HRIS_TPL_TOKEN_URL,   0 },
    { "token",        NGX_HTTP_HRIS_TPL_TOKEN,       0 },
    { "refresh_token", NGX_HTTP_HRIS_TPL_REFRESH_TOKEN, 0 },
    { "input.",       NGX_HTTP_HRIS_TPL_INPUT,       1 },
    { NULL, 0, 0 }
};


static ngx_int_t ngx_http_hris_tpl_var(ngx_http_hris_tpl_part_t *part,
    u_char *name, size_t len, const char **err);
static ngx_str_t *ngx_http_hris_tpl_value(ngx_http_hris_tpl_part_t *part,
    ngx_http_hris_tpl_vars_t *vars);


ngx_http_hris_tpl_t *
ngx_http_hris_tpl_compile(ngx_pool_t *pool, ngx_str_t *src, const char **err)
{
    u_char                    *p, *end, *open, *close;
    ngx_uint_t                 n;
    ngx_http_hris_tpl_t       *tpl;
    ngx_http_hris_tpl_part_t  *part;

    tpl = ngx_pcalloc(pool, sizeof(ngx_http_hris_tpl_t));
    if (tpl == NULL) {
        *err = "out of memory";
        return NULL;
    }

    /* at most one literal and one variable per "{{" plus a tail */
    n = 1;
    end = src->data + src->len;
    for (p = src->data; p + 1 < end; p++) {
        if (p[0] == '{' && p[1] == '{') {
            n += 2;
        }
    }

    tpl->parts = ngx_pcalloc(pool, n * sizeof(ngx_http_hris_tpl_part_t));
    if (tpl->parts == NULL) {
        *err = "out of memory";
        return NULL;
    }

    p = src->data;

    while (p < end) {
        open = ngx_strlcasestrn(p, end, (u_char *) "{{", 2 - 1);
        if (open == NULL) {
            open = end;
        }

        if (open > p) {
            part = &tpl->parts[tpl->nparts++];
            part->type = NGX_HTTP_HRIS_TPL_LITERAL;
            part->text.data = p;
            part->text.len = open - p;
        }

        if (open == end) {
            break;
        }

        close = ngx_strlcasestrn(open + 2, end, (u_char *) "}}", 2 - 1);
        if (close == NULL) {
            *err = "\"{{\" without \"}}\"";
            return NULL;
        }

        part = &tpl->parts[tpl->nparts++];
        if (ngx_http_hris_tpl_var(part, open + 2, close - open - 2, err)
            != NGX_OK)
        {
            return NULL;
        }

        p = close + 2;
    }

    /* refused here, not by every render of it (a 500 per request) */
    if (tpl->nparts > NGX_HTTP_HRIS_TPL_MAX_PARTS) {
        *err = "too many parts (at most 16 literals and variables)";
        return NULL;
    }

    return tpl;
}


static ngx_int_t
ngx_http_hris_tpl_var(ngx_http_hris_tpl_part_t *part, u_char *name,
    size_t len, const char **err)
{
    size_t                   plen;
    ngx_http_hris_tpl_ns_t  *ns;

    while (len && name[0] == ' ') {
        name++;
        len--;
    }

    while (len && name[len - 1] == ' ') {
        len--;
    }

    for (ns = ngx_http_hris_tpl_ns; ns->prefix; ns++) {
        plen = ngx_strlen(ns->prefix);

        if (ns->keyed) {
            if (len > plen && ngx_strncmp(name, ns->prefix, plen) == 0) {
                part->type = ns->type;
                part->text.data = name + plen;
                part->text.len = len - plen;
                return NGX_OK;
            }

        } else if (len == plen && ngx_strncmp(name, ns->prefix, plen) == 0) {
            part->type = ns->type;
            return NGX_OK;
        }
    }

    *err = "unknown template variable (use context.*, credentials.*, "
           "filter.*, id, page.limit, page.cursor, page.offset, "
           "page.number, each.value, base_url, token_url, token, "
           "refresh_token or input.*)";
    return NGX_ERROR;
}


ngx_int_t
ngx_http_hris_tpl_render(ngx_pool_t *pool, ngx_http_hris_tpl_t *tpl,
    ngx_http_hris_tpl_vars_t *vars, ngx_uint_t escape, ngx_str_t *out)
{
    u_char                    *p;
    size_t                     len;
    ngx_uint_t                 i;
    ngx_str_t                 *v, esc;
    ngx_str_t                  values[NGX_HTTP_HRIS_TPL_MAX_PARTS];
    ngx_http_hris_tpl_part_t  *part;

    if (tpl->nparts > NGX_HTTP_HRIS_TPL_MAX_PARTS) {
        return NGX_ERROR;
    }

    len = 0;

    for (i = 0; i < tpl->nparts; i++) {
        part = &tpl->parts[i];

        if (part->type == NGX_HTTP_HRIS_TPL_LITERAL) {
            values[i] = part->text;

        } else {
            v = ngx_http_hris_tpl_value(part, vars);
            values[i] = v ? *v : (ngx_str_t) ngx_null_string;

            /*
             * a value that would end a header line and start another one
             * (credentials, tokens from a provider, context): not sent
             */
            if (!escape
                && !ngx_http_hris_value_safe(values[i].data, values[i].len))
            {
                ngx_log_error(NGX_LOG_ERR, pool->log, 0, "hris: a value for "
                              "a header, URL or body holds a control "
                              "character (CR, LF, ...): not sent");
                return NGX_DECLINED;
            }

            /* URLs from the configuration are used as they are */
            if (escape && values[i].len
                && part->type != NGX_HTTP_HRIS_TPL_BASE_URL
                && part->type != NGX_HTTP_HRIS_TPL_TOKEN_URL)
            {
                if (ngx_http_hris_escape(pool, &values[i], &esc) != NGX_OK) {
                    return NGX_ERROR;
                }
                values[i] = esc;
            }
        }

        len += values[i].len;
    }

    p = ngx_pnalloc(pool, len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;

    for (i = 0; i < tpl->nparts; i++) {
        if (values[i].len) {
            p = ngx_cpymem(p, values[i].data, values[i].len);
        }
    }

    *p = '\0';
    out->len = len;

    return NGX_OK;
}


static ngx_str_t *
ngx_http_hris_tpl_value(ngx_http_hris_tpl_part_t *part,
    ngx_http_hris_tpl_vars_t *vars)
{
    switch (part->type) {

    case NGX_HTTP_HRIS_TPL_CONTEXT:
        return ngx_http_hris_keyval_get(vars->context, &part->text);

    case NGX_HTTP_HRIS_TPL_CREDENTIALS:
        return ngx_http_hris_keyval_get(vars->credentials, &part->text);

    case NGX_HTTP_HRIS_TPL_FILTER:
        return ngx_http_hris_keyval_get(vars->filters, &part->text);

    case NGX_HTTP_HRIS_TPL_ID:
        return &vars->id;

    case NGX_HTTP_HRIS_TPL_PAGE_LIMIT:
        return &vars->page_limit;

    case NGX_HTTP_HRIS_TPL_PAGE_CURSOR:
        return &vars->page_cursor;

    case NGX_HTTP_HRIS_TPL_PAGE_OFFSET:
        return &vars->page_offset;

    case NGX_HTTP_HRIS_TPL_PAGE_NUMBER:
        return &vars->page_number;

    case NGX_HTTP_HRIS_TPL_EACH:
        return &vars->each;

    case NGX_HTTP_HRIS_TPL_BASE_URL:
        return &vars->base_url;

    case NGX_HTTP_HRIS_TPL_TOKEN_URL:
        return &vars->token_url;

    case NGX_HTTP_HRIS_TPL_TOKEN:
        return &vars->token;

    case NGX_HTTP_HRIS_TPL_REFRESH_TOKEN:
        return &vars->refresh_token;

    case NGX_HTTP_HRIS_TPL_INPUT:
        return ngx_http_hris_keyval_get(vars->input, &part->text);

    default:
        return NULL;
    }
}


ngx_int_t
ngx_http_hris_escape(ngx_pool_t *pool, ngx_str_t *in, ngx_str_t *out)
{
    u_char         *p, c;
    size_t          i, n;
    static u_char   hex[] = "0123456789ABCDEF";

    n = 0;
    for (i = 0; i < in->len; i++) {
        c = in->data[i];
        if (!(isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~')) {
            n++;
        }
    }

    if (n == 0) {
        *out = *in;
        return NGX_OK;
    }

    p = ngx_pnalloc(pool, in->len + 2 * n);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;

    for (i = 0; i < in->len; i++) {
        c = in->data[i];

        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            *p++ = c;

        } else {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 0xf];
        }
    }

    out->len = p - out->data;

    return NGX_OK;
}


/*
 * No control character: CR and LF would end a header line and start
 * another one (and the connection is reused for other tenants' calls),
 * NUL would cut it short. Bytes from 0x80 up pass (obs-text, RFC 9110
 * 5.5): they cannot end a line.
 */

ngx_uint_t
ngx_http_hris_value_safe(u_char *p, size_t len)
{
    u_char  *last;

    if (len == 0) {
        return 1;
    }

    for (last = p + len; p < last; p++) {
        if (*p < ' ' || *p == 0x7f) {
            return 0;
        }
    }

    return 1;
}


/* A header field value as RFC 9110 5.5 has it: HTAB is allowed there. */

ngx_uint_t
ngx_http_hris_header_safe(u_char *p, size_t len)
{
    u_char  *last;

    if (len == 0) {
        return 1;
    }

    for (last = p + len; p < last; p++) {
        if ((*p < ' ' && *p != '\t') || *p == 0x7f) {
            return 0;
        }
    }

    return 1;
}


ngx_str_t *
ngx_http_hris_keyval_get(ngx_array_t *kv, ngx_str_t *key)
{
    ngx_uint_t     i;
    ngx_keyval_t  *e;

    if (kv == NULL) {
        return NULL;
    }

    e = kv->elts;

    for (i = 0; i < kv->nelts; i++) {
        if (e[i].key.len == key->len
            && ngx_strncmp(e[i].key.data, key->data, key->len) == 0)
        {
            return &e[i].value;
        }
    }

    return NULL;
}
