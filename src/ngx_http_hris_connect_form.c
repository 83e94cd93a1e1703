/*
 * The connect flow's form, for providers whose credentials are typed in
 * (API keys, client credentials). The table's "connect.form" describes
 * its fields (label, help line, secret or not, pattern); context keys the
 * link did not give are asked for too. On submit the values are checked
 * (the patterns), then with the provider (the table's "connect.verify",
 * ngx_http_hris_connect_verify.c), and only then is the account stored
 * and the link used up. Whatever fails shows the form again, with the
 * error next to the field it is about and what was typed kept, secrets
 * excepted.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris_connect.h"
#include "ngx_http_hris_fleet_links.h"
#include "ngx_http_hris_state_if.h"


#define NGX_HTTP_HRIS_FORM_VALUE_MAX  4096


static ngx_http_hris_connect_ctx_t *ngx_http_hris_form_ctx(
    ngx_http_request_t *r, ngx_http_hris_link_t *link);
static ngx_int_t ngx_http_hris_form_items(ngx_http_request_t *r,
    ngx_http_hris_connect_ctx_t *ctx);
static ngx_http_hris_connect_field_t *ngx_http_hris_form_described(
    ngx_http_hris_table_t *table, ngx_str_t *name);
static ngx_int_t ngx_http_hris_form_page(ngx_http_request_t *r,
    ngx_http_hris_connect_ctx_t *ctx, ngx_uint_t status);
static void ngx_http_hris_form_given(ngx_http_hris_html_t *h,
    ngx_http_hris_link_t *link);
static void ngx_http_hris_form_field(ngx_http_hris_html_t *h,
    ngx_http_hris_form_item_t *it, ngx_uint_t focus);
static ngx_uint_t ngx_http_hris_form_read(ngx_http_request_t *r,
    ngx_http_hris_connect_ctx_t *ctx, ngx_str_t *body);
static ngx_int_t ngx_http_hris_form_error(ngx_http_request_t *r,
    ngx_http_hris_form_item_t *it, const char *fmt, ...);
static json_t *ngx_http_hris_form_account(ngx_http_hris_connect_ctx_t *ctx);
static ngx_int_t ngx_http_hris_form_check(ngx_http_request_t *r,
    ngx_http_hris_connect_ctx_t *ctx);
static void ngx_http_hris_form_verified(ngx_http_hris_verify_t *v);
static ngx_int_t ngx_http_hris_form_outcome(ngx_http_request_t *r,
    ngx_http_hris_connect_ctx_t *ctx, ngx_http_hris_verify_t *v);
static ngx_int_t ngx_http_hris_form_refused(ngx_http_request_t *r,
    ngx_http_hris_connect_ctx_t *ctx, ngx_http_hris_verify_t *v);
static ngx_int_t ngx_http_hris_form_alert(ngx_http_request_t *r,
    ngx_http_hris_connect_ctx_t *ctx, const char *fmt, ...);
static ngx_int_t ngx_http_hris_form_value(ngx_pool_t *pool, ngx_str_t *body,
    ngx_str_t *name, ngx_str_t *value);


/* GET: the form, as the table describes it. */

ngx_int_t
ngx_http_hris_connect_form(ngx_http_request_t *r, ngx_http_hris_link_t *link)
{
    ngx_http_hris_connect_ctx_t  *ctx;

    ctx = ngx_http_hris_form_ctx(r, link);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_hris_form_page(r, ctx, NGX_HTTP_OK);
}


static ngx_http_hris_connect_ctx_t *
ngx_http_hris_form_ctx(ngx_http_request_t *r, ngx_http_hris_link_t *link)
{
    ngx_http_hris_connect_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_hris_module);

    if (ctx == NULL) {
        ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_hris_connect_ctx_t));
        if (ctx == NULL) {
            return NULL;
        }

        ctx->link = *link;
        ngx_http_set_ctx(r, ctx, ngx_http_hris_module);
    }

    if (ngx_http_hris_form_items(r, ctx) != NGX_OK) {
        return NULL;
    }

    return ctx;
}


/*
 * What this link's form asks for: context keys it did not give (those the
 * table describes where it says, the others first, by name), and every
 * credential of the form.
 */

static ngx_int_t
ngx_http_hris_form_items(ngx_http_request_t *r,
    ngx_http_hris_connect_ctx_t *ctx)
{
    json_t                         *given;
    ngx_uint_t                      i, j;
    ngx_http_hris_table_t          *t = ctx->link.table;
    ngx_http_hris_form_item_t      *it;
    ngx_http_hris_context_key_t    *ck;
    ngx_http_hris_connect_field_t  *f, *fields;

    if (ngx_array_init(&ctx->items, r->pool, 4,
                       sizeof(ngx_http_hris_form_item_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    given = json_object_get(ctx->link.json, "c");
    ck = t->context.elts;

    for (i = 0; i < t->context.nelts; i++) {
        if (!ck[i].required
            || json_object_get(given, (char *) ck[i].name.data)
            || ngx_http_hris_form_described(t, &ck[i].name))
        {
            continue;
        }

        f = ngx_pcalloc(r->pool, sizeof(ngx_http_hris_connect_field_t));
        it = ngx_array_push(&ctx->items);
        if (f == NULL || it == NULL) {
            return NGX_ERROR;
        }

        f->name = ck[i].name;
        f->label = ck[i].name;
        f->context = 1;
        ngx_str_set(&f->autocomplete, "off");

        ngx_memzero(it, sizeof(ngx_http_hris_form_item_t));
        it->field = f;
        it->context_pattern = ck[i].pattern;
        it->required = 1;
    }

    fields = t->connect_form.elts;

    for (i = 0; i < t->connect_form.nelts; i++) {
        if (fields[i].context
            && json_object_get(given, (char *) fields[i].name.data))
        {
            continue;
        }

        it = ngx_array_push(&ctx->items);
        if (it == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(it, sizeof(ngx_http_hris_form_item_t));
        it->field = &fields[i];
        it->required = 1;

        for (j = 0; fields[i].context && j < t->context.nelts; j++) {
            if (ngx_http_hris_str_eq(&ck[j].name, &fields[i].name)) {
                it->context_pattern = ck[j].pattern;
                it->required = ck[j].required;
            }
        }
    }

    return NGX_OK;
}


static ngx_http_hris_connect_field_t *
ngx_http_hris_form_described(ngx_http_hris_table_t *table, ngx_str_t *name)
{
    ngx_uint_t                      i;
    ngx_http_hris_connect_field_t  *f;

    f = table->connect_form.elts;

    for (i = 0; i < table->connect_form.nelts; i++) {
        if (ngx_http_hris_str_eq(&f[i].name, name)) {
            return &f[i];
        }
    }

    return NULL;
}


/*
 * The page: the provider's name in the title and heading, what the link
 * gave, an alert for what is wrong as a whole, a field per item (label
 * tied to its input, help and error tied by aria-describedby), and the
 * way back to the app.
 */

static ngx_int_t
ngx_http_hris_form_page(ngx_http_request_t *r,
    ngx_http_hris_connect_ctx_t *ctx, ngx_uint_t status)
{
    ngx_str_t                   title, cancel, host, *name;
    ngx_uint_t                  i, focus;
    ngx_http_hris_html_t        h;
    ngx_http_hris_form_item_t  *it;

    name = &ctx->link.table->display_name;

    title.len = sizeof("Connect ") - 1 + name->len;
    title.data = ngx_pnalloc(r->pool, title.len);
    if (title.data == NULL
        || ngx_http_hris_connect_cancel_url(r, &ctx->link, &cancel)
           != NGX_OK
        || ngx_http_hris_html_init(&h, r->pool) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_sprintf(title.data, "Connect %V", name);
    ngx_http_hris_url_host(&ctx->link.redirect, &host);

    ngx_http_hris_html_start(&h, &title);

    ngx_http_hris_html_raw(&h, "<h1>Connect your ");
    ngx_http_hris_html_text(&h, name);
    ngx_http_hris_html_raw(&h, " account</h1>\n<p><strong>");
    ngx_http_hris_html_text(&h, &host);
    ngx_http_hris_html_raw(&h, "</strong> asks to read data from your ");
    ngx_http_hris_html_text(&h, name);
    ngx_http_hris_html_raw(&h, " account. The details below are checked "
                           "with ");
    ngx_http_hris_html_text(&h, name);
    ngx_http_hris_html_raw(&h, " before they are saved.</p>\n");

    ngx_http_hris_form_given(&h, &ctx->link);

    if (ctx->alert.len) {
        ngx_http_hris_html_raw(&h, "<div class=\"alert\" role=\"alert\" "
                               "id=\"form-error\"><p>");
        ngx_http_hris_html_text(&h, &ctx->alert);
        ngx_http_hris_html_raw(&h, "</p></div>\n");
    }

    /* no action: it posts back to the link itself */
    ngx_http_hris_html_raw(&h, "<form method=\"post\">\n");

    it = ctx->items.elts;
    focus = 1;

    for (i = 0; i < ctx->items.nelts; i++) {
        ngx_http_hris_form_field(&h, &it[i], focus && it[i].error.len);
        focus = focus && it[i].error.len == 0;
    }

    ngx_http_hris_html_raw(&h, "<button type=\"submit\">Connect ");
    ngx_http_hris_html_text(&h, name);
    ngx_http_hris_html_raw(&h, "</button>\n</form>\n</div>\n"
                           "<p class=\"back\"><a href=\"");
    ngx_http_hris_html_text(&h, &cancel);
    ngx_http_hris_html_raw(&h, "\">Cancel and go back to ");
    ngx_http_hris_html_text(&h, &host);
    ngx_http_hris_html_raw(&h, "</a></p>\n");
    ngx_http_hris_html_end(&h);

    return ngx_http_hris_html_send(r, status, &h, &ctx->link.redirect);
}


/* The context the link gave that people know (the form describes it). */

static void
ngx_http_hris_form_given(ngx_http_hris_html_t *h, ngx_http_hris_link_t *link)
{
    json_t                         *given, *v;
    ngx_str_t                       value;
    ngx_uint_t                      i, any;
    ngx_http_hris_connect_field_t  *f;

    given = json_object_get(link->json, "c");
    f = link->table->connect_form.elts;
    any = 0;

    for (i = 0; i < link->table->connect_form.nelts; i++) {
        v = f[i].context ? json_object_get(given, (char *) f[i].name.data)
                         : NULL;
        if (!json_is_string(v)) {
            continue;
        }

        if (!any) {
            ngx_http_hris_html_raw(h, "<dl class=\"given\">\n");
            any = 1;
        }

        value.data = (u_char *) json_string_value(v);
        value.len = json_string_length(v);

        ngx_http_hris_html_raw(h, "<div><dt>");
        ngx_http_hris_html_text(h, &f[i].label);
        ngx_http_hris_html_raw(h, "</dt><dd>");
        ngx_http_hris_html_text(h, &value);
        ngx_http_hris_html_raw(h, "</dd></div>\n");
    }

    if (any) {
        ngx_http_hris_html_raw(h, "</dl>\n");
    }
}


/* One field; names are letters, digits and "_" (the table compiler's). */

static void
ngx_http_hris_form_field(ngx_http_hris_html_t *h,
    ngx_http_hris_form_item_t *it, ngx_uint_t focus)
{
    ngx_http_hris_connect_field_t  *f = it->field;

    ngx_http_hris_html_raw(h, "<div class=\"field\">\n<label for=\"f-");
    ngx_http_hris_html_text(h, &f->name);
    ngx_http_hris_html_raw(h, "\">");
    ngx_http_hris_html_text(h, &f->label);

    if (!it->required) {
        ngx_http_hris_html_raw(h, " (optional)");
    }

    ngx_http_hris_html_raw(h, "</label>\n");

    if (f->help.len) {
        ngx_http_hris_html_raw(h, "<p class=\"help\" id=\"f-");
        ngx_http_hris_html_text(h, &f->name);
        ngx_http_hris_html_raw(h, "-help\">");
        ngx_http_hris_html_text(h, &f->help);
        ngx_http_hris_html_raw(h, "</p>\n");
    }

    ngx_http_hris_html_raw(h, "<input id=\"f-");
    ngx_http_hris_html_text(h, &f->name);
    ngx_http_hris_html_raw(h, "\" name=\"");
    ngx_http_hris_html_text(h, &f->name);
    ngx_http_hris_html_raw(h, f->secret ? "\" type=\"password\""
                                        : "\" type=\"text\"");
    ngx_http_hris_html_raw(h, it->required ? " required" : "");

    /* keys and ids: no capital first letter, no "corrections" on phones */
    ngx_http_hris_html_raw(h, " autocapitalize=\"none\" "
                           "spellcheck=\"false\" autocomplete=\"");
    ngx_http_hris_html_text(h, &f->autocomplete);
    ngx_http_hris_html_raw(h, "\"");

    if (f->inputmode.len) {
        ngx_http_hris_html_raw(h, " inputmode=\"");
        ngx_http_hris_html_text(h, &f->inputmode);
        ngx_http_hris_html_raw(h, "\"");
    }

    if (f->placeholder.len) {
        ngx_http_hris_html_raw(h, " placeholder=\"");
        ngx_http_hris_html_text(h, &f->placeholder);
        ngx_http_hris_html_raw(h, "\"");
    }

    if (f->pattern) {
        ngx_http_hris_html_raw(h, " pattern=\"");
        ngx_http_hris_html_text(h, &f->pattern_src);
        ngx_http_hris_html_raw(h, "\"");
    }

    if (f->help.len || it->error.len) {
        ngx_http_hris_html_raw(h, " aria-describedby=\"");

        if (f->help.len) {
            ngx_http_hris_html_raw(h, "f-");
            ngx_http_hris_html_text(h, &f->name);
            ngx_http_hris_html_raw(h, it->error.len ? "-help " : "-help");
        }

        if (it->error.len) {
            ngx_http_hris_html_raw(h, "f-");
            ngx_http_hris_html_text(h, &f->name);
            ngx_http_hris_html_raw(h, "-error");
        }

        ngx_http_hris_html_raw(h, "\"");
    }

    if (it->error.len) {
        ngx_http_hris_html_raw(h, " aria-invalid=\"true\"");
    }

    if (focus) {
        ngx_http_hris_html_raw(h, " autofocus");
    }

    /* what was typed comes back, a secret never */
    if (!f->secret && it->value.len) {
        ngx_http_hris_html_raw(h, " value=\"");
        ngx_http_hris_html_text(h, &it->value);
        ngx_http_hris_html_raw(h, "\"");
    }

    ngx_http_hris_html_raw(h, ">\n");

    if (it->error.len) {
        ngx_http_hris_html_raw(h, "<p class=\"error\" id=\"f-");
        ngx_http_hris_html_text(h, &f->name);
        ngx_http_hris_html_raw(h, "-error\">");
        ngx_http_hris_html_text(h, &it->error);
        ngx_http_hris_html_raw(h, "</p>\n");
    }

    ngx_http_hris_html_raw(h, "</div>\n");
}


/* POST: the form sent. */

void
ngx_http_hris_connect_posted(ngx_http_request_t *r)
{
    ngx_int_t                     rc;
    ngx_str_t                     body;
    ngx_http_hris_connect_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_hris_module);

    rc = ngx_http_hris_request_body(r, &body);
    if (rc != NGX_OK || r->header_sent) {
        ngx_http_finalize_request(r, rc);
        return;
    }

    /*
     * with hris_redis: completed through another gateway? Asked once, now
     * that the body is read; the handler then runs again (and says 410)
     */
    rc = ngx_http_hris_state_link_check(r, ctx->link.hash, ctx->link.expires,
                                        ngx_http_hris_connect_handler);
    if (rc != NGX_OK) {
        /* NGX_DONE: the check holds the request; this reference goes */
        ngx_http_finalize_request(r, rc == NGX_DONE
                                     ? NGX_DONE
                                     : NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ngx_http_hris_form_ctx(r, &ctx->link) == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ngx_http_hris_form_read(r, ctx, &body)) {
        ngx_http_finalize_request(r, ngx_http_hris_form_alert(r, ctx,
                                      "Some details need another look: see "
                                      "below. Nothing was saved."));
        return;
    }

    rc = ngx_http_hris_form_check(r, ctx);

    if (rc == NGX_AGAIN) {
        /* the provider is asked: the request waits for its answer */
        r->read_event_handler = ngx_http_test_reading;
        r->write_event_handler = ngx_http_request_empty_handler;
        return;
    }

    ngx_http_finalize_request(r, rc);
}


/*
 * Each value decoded, trimmed (a key copied with blanks around it) and
 * checked: present when required, no control character
 * (it would end a header line upstream), the field's pattern and the
 * table's context pattern. The number of fields in error.
 */

static ngx_uint_t
ngx_http_hris_form_read(ngx_http_request_t *r,
    ngx_http_hris_connect_ctx_t *ctx, ngx_str_t *body)
{
    u_char                         *p, *last;
    ngx_int_t                       rc;
    ngx_uint_t                      i, errors;
    ngx_http_hris_form_item_t      *it;
    ngx_http_hris_connect_field_t  *f;

    it = ctx->items.elts;
    errors = 0;

    for (i = 0; i < ctx->items.nelts; i++) {
        f = it[i].field;

        rc = ngx_http_hris_form_value(r->pool, body, &f->name, &it[i].value);
        if (rc == NGX_ERROR) {
            return ++errors;
        }

        if (rc == NGX_DECLINED) {
            ngx_str_set(&it[i].value, "");
        }

        /*
         * blanks around a pasted key go; a line break cannot come from an
         * input (browsers take them out) and is refused below
         */
        p = it[i].value.data;
        last = p + it[i].value.len;

        while (p < last && (*p == ' ' || *p == '\t')) {
            p++;
        }

        while (last > p && (last[-1] == ' ' || last[-1] == '\t')) {
            last--;
        }

        it[i].value.data = p;
        it[i].value.len = last - p;

        if (it[i].value.len == 0) {
            if (it[i].required) {
                errors += ngx_http_hris_form_error(r, &it[i],
                                                   "Enter the %V.", &f->label);
            }
            continue;
        }

        if (it[i].value.len > NGX_HTTP_HRIS_FORM_VALUE_MAX) {
            it[i].value.len = 0;
            errors += ngx_http_hris_form_error(r, &it[i],
                          "This is too long (at most %d characters).",
                          NGX_HTTP_HRIS_FORM_VALUE_MAX);
            continue;
        }

        if (!ngx_http_hris_value_safe(it[i].value.data, it[i].value.len)) {
            errors += ngx_http_hris_form_error(r, &it[i],
                          "This holds a control character (a line break?): "
                          "type it again without.");
            continue;
        }

        if ((f->pattern
             && ngx_regex_exec(f->pattern, &it[i].value, NULL, 0) < 0)
            || (it[i].context_pattern
                && ngx_regex_exec(it[i].context_pattern, &it[i].value,
                                  NULL, 0) < 0))
        {
            if (f->pattern_error.len) {
                errors += ngx_http_hris_form_error(r, &it[i], "%V",
                                                   &f->pattern_error);

            } else {
                errors += ngx_http_hris_form_error(r, &it[i],
                              "This does not look like a %V: check it.",
                              &f->label);
            }
        }
    }

    return errors;
}


static ngx_int_t
ngx_http_hris_form_error(ngx_http_request_t *r, ngx_http_hris_form_item_t *it,
    const char *fmt, ...)
{
    u_char   *p;
    va_list   args;
    u_char    buf[1200];

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + sizeof(buf), fmt, args);
    va_end(args);

    it->error.len = p - buf;
    it->error.data = ngx_pnalloc(r->pool, it->error.len);

    if (it->error.data == NULL) {
        it->error.len = 0;
        return 1;
    }

    ngx_memcpy(it->error.data, buf, it->error.len);

    return 1;
}


/* The account: the link's context with the typed one, and credentials. */

static json_t *
ngx_http_hris_form_account(ngx_http_hris_connect_ctx_t *ctx)
{
    json_t                     *account, *creds, *context;
    ngx_uint_t                  i;
    ngx_http_hris_form_item_t  *it;

    context = json_deep_copy(json_object_get(ctx->link.json, "c"));
    if (context == NULL) {
        context = json_object();
    }

    creds = json_object();
    account = json_pack("{s:o, s:o}", "context", context, "credentials",
                        creds);
    if (account == NULL) {
        return NULL;
    }

    it = ctx->items.elts;

    for (i = 0; i < ctx->items.nelts; i++) {
        if (it[i].value.len == 0) {
            continue;
        }

        if (json_object_set_new(it[i].field->context ? context : creds,
                                (char *) it[i].field->name.data,
                                json_stringn((char *) it[i].value.data,
                                             it[i].value.len))
            != 0)
        {
            json_decref(account);
            return NULL;
        }
    }

    return account;
}


/*
 * The account checked as any (the tenant URL rules among it), then with
 * the provider when the table says how. NGX_AGAIN: the provider is asked.
 */

static ngx_int_t
ngx_http_hris_form_check(ngx_http_request_t *r,
    ngx_http_hris_connect_ctx_t *ctx)
{
    ngx_int_t                 rc;
    ngx_str_t                 err;
    ngx_http_hris_verify_t   *v;

    ctx->account = ngx_http_hris_form_account(ctx);
    v = ngx_pcalloc(r->pool, sizeof(ngx_http_hris_verify_t));

    if (ctx->account == NULL || v == NULL) {
        json_decref(ctx->account);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_hris_connect_check(r, &ctx->link, ctx->account,
                                     &v->account, &err);

    if (rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "hris: connect \"%V\": the account was refused: %V",
                      &ctx->link.id, &err);
        return ngx_http_hris_form_alert(r, ctx, "These details cannot be "
                                        "used: %V.", &err);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* a table that says no way to check: stored as typed */
    if (ctx->link.table->connect_verify == NULL) {
        return ngx_http_hris_connect_save(r, &ctx->link, ctx->account);
    }

    v->request = r;
    v->handler = ngx_http_hris_form_verified;
    v->data = ctx;
    ctx->verify = v;

    rc = ngx_http_hris_verify_start(v);

    if (rc == NGX_AGAIN) {
        return NGX_AGAIN;
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_hris_form_outcome(r, ctx, v);
}


static void
ngx_http_hris_form_verified(ngx_http_hris_verify_t *v)
{
    ngx_http_request_t  *r = v->request;

    ngx_http_finalize_request(r, ngx_http_hris_form_outcome(r, v->data, v));
}


/* What the provider said: the account stored, or the form again. */

static ngx_int_t
ngx_http_hris_form_outcome(ngx_http_request_t *r,
    ngx_http_hris_connect_ctx_t *ctx, ngx_http_hris_verify_t *v)
{
    u_char            *p;
    ngx_str_t         *name;
    ngx_table_elt_t   *h;

    name = &ctx->link.table->display_name;

    switch (v->result) {

    case NGX_HTTP_HRIS_VERIFY_OK:
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "hris: connect \"%V\": the provider accepted the "
                      "credentials typed into the form (upstream %ui)",
                      &ctx->link.id, v->status);

        /* the link is used up only now: of two posts at once, one wins */
        return ngx_http_hris_connect_save(r, &ctx->link, ctx->account);

    case NGX_HTTP_HRIS_VERIFY_REFUSED:
        return ngx_http_hris_form_refused(r, ctx, v);

    case NGX_HTTP_HRIS_VERIFY_UNREACHABLE:
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "hris: connect \"%V\": the credentials typed into the "
                      "form could not be checked: %V", &ctx->link.id,
                      &v->reason);

        r->headers_out.status = NGX_HTTP_BAD_GATEWAY;
        return ngx_http_hris_form_alert(r, ctx, "Could not check these "
                   "details with %V: %V. Nothing was saved: try again in a "
                   "moment.", name, &v->reason);

    case NGX_HTTP_HRIS_VERIFY_FAILED:
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "hris: connect \"%V\": checking the credentials typed "
                      "into the form failed (upstream %ui)", &ctx->link.id,
                      v->status);

        r->headers_out.status = NGX_HTTP_BAD_GATEWAY;
        return ngx_http_hris_form_alert(r, ctx, "%V could not check these "
                   "details (it answered with HTTP status %ui). Nothing was "
                   "saved: check them and try again.", name, v->status);

    case NGX_HTTP_HRIS_VERIFY_BUSY:
        h = ngx_list_push(&r->headers_out.headers);
        p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
        if (h == NULL || p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Retry-After");
        h->value.data = p;
        h->value.len = ngx_sprintf(p, "%T", v->retry_after) - p;

        r->headers_out.status = NGX_HTTP_TOO_MANY_REQUESTS;
        return ngx_http_hris_form_alert(r, ctx, "%V takes only so many calls "
                   "a minute and they are used up for now. Nothing was "
                   "saved: try again in %T seconds.", name, v->retry_after);

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
}


/* The provider refused the credentials: said next to each of them. */

static ngx_int_t
ngx_http_hris_form_refused(ngx_http_request_t *r,
    ngx_http_hris_connect_ctx_t *ctx, ngx_http_hris_verify_t *v)
{
    ngx_str_t                  *name;
    ngx_uint_t                  i, n;
    ngx_http_hris_form_item_t  *it;

    name = &ctx->link.table->display_name;
    it = ctx->items.elts;
    n = 0;

    for (i = 0; i < ctx->items.nelts; i++) {
        n += !it[i].field->context;
    }

    for (i = 0; i < ctx->items.nelts; i++) {
        if (it[i].field->context) {
            continue;
        }

        if (n == 1) {
            (void) ngx_http_hris_form_error(r, &it[i], "%V refused this %V: "
                       "check it and type it again.", name,
                       &it[i].field->label);

        } else {
            (void) ngx_http_hris_form_error(r, &it[i], "%V refused these "
                       "credentials: check this %V and type it again.", name,
                       &it[i].field->label);
        }
    }

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "hris: connect \"%V\": the provider refused the "
                  "credentials typed into the form (upstream %ui): not "
                  "stored", &ctx->link.id, v->status);

    r->headers_out.status = NGX_HTTP_BAD_REQUEST;

    return ngx_http_hris_form_alert(r, ctx, "%V did not accept these "
                                    "details. Nothing was saved.", name);
}


/*
 * The form again with a message above it, with the status set before
 * (400 when none was).
 */

static ngx_int_t
ngx_http_hris_form_alert(ngx_http_request_t *r,
    ngx_http_hris_connect_ctx_t *ctx, const char *fmt, ...)
{
    u_char      *p;
    va_list      args;
    ngx_uint_t   status;
    u_char       buf[1200];

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + sizeof(buf), fmt, args);
    va_end(args);

    ctx->alert.len = p - buf;
    ctx->alert.data = ngx_pnalloc(r->pool, ctx->alert.len);
    if (ctx->alert.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(ctx->alert.data, buf, ctx->alert.len);

    status = r->headers_out.status ? r->headers_out.status
                                   : NGX_HTTP_BAD_REQUEST;

    return ngx_http_hris_form_page(r, ctx, status);
}


/* One field of an application/x-www-form-urlencoded body, decoded. */

static ngx_int_t
ngx_http_hris_form_value(ngx_pool_t *pool, ngx_str_t *body, ngx_str_t *name,
    ngx_str_t *value)
{
    u_char  *p, *last, *end, *dst, *src;
    size_t   i;

    p = body->data;
    last = body->data + body->len;

    while (p < last) {
        end = ngx_strlchr(p, last, '&');
        if (end == NULL) {
            end = last;
        }

        if ((size_t) (end - p) > name->len && p[name->len] == '='
            && ngx_strncmp(p, name->data, name->len) == 0)
        {
            p += name->len + 1;

            dst = ngx_pnalloc(pool, end - p + 1);
            if (dst == NULL) {
                return NGX_ERROR;
            }

            for (i = 0; i < (size_t) (end - p); i++) {
                dst[i] = (p[i] == '+') ? ' ' : p[i];
            }

            value->data = dst;
            src = dst;
            ngx_unescape_uri(&dst, &src, end - p, 0);
            value->len = dst - value->data;

            return NGX_OK;
        }

        p = end + 1;
    }

    return NGX_DECLINED;
}
