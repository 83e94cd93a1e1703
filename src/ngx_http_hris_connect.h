/*
 * The connect flow's pieces (ngx_http_hris_connect.c: the link opened,
 * the OAuth2 redirect and callback; ngx_http_hris_connect_link.c: links
 * made for the administration API; ngx_http_hris_connect_form.c: the
 * API-key form; ngx_http_hris_connect_verify.c: the call that checks what
 * was typed into it; ngx_http_hris_connect_page.c: the HTML pages).
 */

#ifndef _NGX_HTTP_HRIS_CONNECT_H_INCLUDED_
#define _NGX_HTTP_HRIS_CONNECT_H_INCLUDED_


#include "ngx_http_hris.h"


/*
 * A link's JSON, sealed like a cursor: "t" tenant, "a" account id, "p"
 * provider, "r" redirect_uri, "m" method, "e" expiry (epoch seconds),
 * "n" a random nonce (two links never look alike), and when given "c"
 * context, "b" base_url, "u" token_url. A link completes once: the
 * shared zone remembers the hash of the used ones until they expire.
 */
typedef struct {
    json_t                      *json;
    u_char                       hash[NGX_HTTP_HRIS_LINK_HASH];
    time_t                       expires;
    ngx_str_t                    tenant;
    ngx_str_t                    id;
    ngx_str_t                    redirect;
    ngx_str_t                    method;
    ngx_http_hris_table_t       *table;
    ngx_http_hris_oauth_app_t   *app;
} ngx_http_hris_link_t;


/* A page being written (ngx_http_hris_connect_page.c). */
typedef struct {
    ngx_pool_t                  *pool;
    u_char                      *start;
    u_char                      *pos;
    u_char                      *end;
    ngx_uint_t                   failed;     /* out of memory: not sent */
} ngx_http_hris_html_t;


typedef enum {
    NGX_HTTP_HRIS_VERIFY_OK = 0,      /* the provider took the credentials */
    NGX_HTTP_HRIS_VERIFY_REFUSED,     /* it refused them */
    NGX_HTTP_HRIS_VERIFY_UNREACHABLE, /* no answer (network, timeout) */
    NGX_HTTP_HRIS_VERIFY_FAILED,      /* an answer that settles nothing */
    NGX_HTTP_HRIS_VERIFY_BUSY,        /* rate limited: retry_after */
    NGX_HTTP_HRIS_VERIFY_ERROR        /* the gateway's own failure */
} ngx_http_hris_verify_result_e;


typedef struct ngx_http_hris_verify_s  ngx_http_hris_verify_t;

/*
 * One check of typed credentials with the provider (the table's
 * "connect.verify"), for an account compiled but not stored.
 */
struct ngx_http_hris_verify_s {
    ngx_http_request_t              *request;
    ngx_http_hris_account_t          account;
    void                           (*handler)(ngx_http_hris_verify_t *v);
    void                            *data;

    ngx_http_hris_verify_result_e    result;
    ngx_uint_t                       status;       /* the provider's */
    time_t                           retry_after;  /* BUSY: seconds */
    ngx_str_t                        reason;       /* UNREACHABLE: why */

    ngx_event_t                      timer;        /* a rate-limit wait */
};


/* A field of the form as one request sees it. */
typedef struct {
    ngx_http_hris_connect_field_t   *field;
    ngx_regex_t                     *context_pattern;  /* the table's */
    ngx_str_t                        value;  /* typed (never shown: secret) */
    ngx_str_t                        error;  /* under the field, or empty */
    unsigned                         required:1;
} ngx_http_hris_form_item_t;


typedef struct {
    ngx_http_hris_link_t         link;
    ngx_str_t                    redirect_uri;  /* ours, for the provider */

    /* the form */
    ngx_array_t                  items;         /* form_item_t */
    ngx_str_t                    alert;         /* above the form */
    json_t                      *account;       /* being verified */
    ngx_http_hris_verify_t      *verify;
} ngx_http_hris_connect_ctx_t;


extern ngx_str_t  ngx_http_hris_link_binding;


ngx_int_t ngx_http_hris_connect_base(ngx_http_request_t *r,
    ngx_http_hris_main_conf_t *hmcf, ngx_str_t *base);
ngx_int_t ngx_http_hris_link_context(ngx_http_request_t *r,
    ngx_http_hris_link_t *link, ngx_array_t *context);
ngx_int_t ngx_http_hris_connect_store(ngx_http_request_t *r,
    ngx_http_hris_link_t *link, json_t *account);
ngx_int_t ngx_http_hris_connect_check(ngx_http_request_t *r,
    ngx_http_hris_link_t *link, json_t *account,
    ngx_http_hris_account_t *acc, ngx_str_t *err);
ngx_int_t ngx_http_hris_connect_save(ngx_http_request_t *r,
    ngx_http_hris_link_t *link, json_t *account);
ngx_int_t ngx_http_hris_connect_cancel_url(ngx_http_request_t *r,
    ngx_http_hris_link_t *link, ngx_str_t *url);
ngx_int_t ngx_http_hris_query_add(ngx_pool_t *pool, ngx_str_t *url,
    const char *name, ngx_str_t *value);
ngx_int_t ngx_http_hris_connect_form(ngx_http_request_t *r,
    ngx_http_hris_link_t *link);
void ngx_http_hris_connect_posted(ngx_http_request_t *r);

/* ngx_http_hris_connect_verify.c */
ngx_int_t ngx_http_hris_verify_start(ngx_http_hris_verify_t *v);

/* ngx_http_hris_connect_page.c */
ngx_int_t ngx_http_hris_html_init(ngx_http_hris_html_t *h, ngx_pool_t *pool);
void ngx_http_hris_html_raw(ngx_http_hris_html_t *h, const char *s);
void ngx_http_hris_html_text(ngx_http_hris_html_t *h, ngx_str_t *s);
void ngx_http_hris_html_ctext(ngx_http_hris_html_t *h, const char *s);
void ngx_http_hris_html_start(ngx_http_hris_html_t *h, ngx_str_t *title);
void ngx_http_hris_html_end(ngx_http_hris_html_t *h);
ngx_int_t ngx_http_hris_html_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_http_hris_html_t *h, ngx_str_t *back);
void ngx_http_hris_url_host(ngx_str_t *url, ngx_str_t *host);
ngx_uint_t ngx_http_hris_wants_json(ngx_http_request_t *r);
ngx_int_t ngx_http_hris_connect_refuse(ngx_http_request_t *r,
    ngx_uint_t status, ngx_http_hris_link_t *link, const char *title,
    const char *fmt, ...);


#endif /* _NGX_HTTP_HRIS_CONNECT_H_INCLUDED_ */
