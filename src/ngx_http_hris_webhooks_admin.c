/*
 * Webhook subscriptions in the administration API (CONTRACT section 8):
 *
 *     POST   {location}/webhooks       {"url", "events": ["*" | type...]}
 *                                      201 {"result": {"id", "url",
 *                                      "events", "secret"}}: the secret is
 *                                      shown here and never again
 *     GET    {location}/webhooks       {"result": [...], "result_count"}
 *     DELETE {location}/webhooks/{id}  {"result": {"id"}}
 *
 * A tenant sees and ends only its own subscriptions (another tenant's is
 * a 404, like a missing one). A subscription's URL is a tenant URL
 * (CONTRACT section 3): a public host, or under a prefix of
 * hris_allowed_urls. A host written as an address is checked here; the
 * address a name resolves to is checked at each delivery, when curl opens
 * the connection (ngx_http_hris_webhooks_deliver.c), since a name can
 * point elsewhere later.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/rand.h>

#include "ngx_http_hris_events.h"
#include "ngx_http_hris_webhooks.h"


#define NGX_HTTP_HRIS_WH_EVENTS_MAX  16


typedef struct {
    ngx_str_t                    tenant;
} ngx_http_hris_wh_admin_ctx_t;


static ngx_int_t ngx_http_hris_wh_list(ngx_http_request_t *r,
    ngx_http_hris_wh_conf_t *conf, ngx_str_t *tenant);
static ngx_int_t ngx_http_hris_wh_delete(ngx_http_request_t *r,
    ngx_http_hris_wh_conf_t *conf, ngx_str_t *tenant, ngx_str_t *id);
static void ngx_http_hris_wh_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_hris_wh_create(ngx_http_request_t *r,
    ngx_http_hris_wh_conf_t *conf, ngx_str_t *tenant, json_t *body);
static ngx_int_t ngx_http_hris_wh_events(ngx_http_request_t *r,
    json_t *events, ngx_str_t *out, ngx_int_t *rc);
static ngx_int_t ngx_http_hris_wh_secret(ngx_pool_t *pool, ngx_str_t *out);


ngx_int_t
ngx_http_hris_webhooks_admin(ngx_http_request_t *r, ngx_str_t *tenant,
    ngx_str_t *rest)
{
    ngx_int_t                      rc;
    ngx_str_t                      id;
    ngx_http_hris_wh_conf_t       *conf;
    ngx_http_hris_wh_admin_ctx_t  *ctx;

    conf = ngx_http_hris_wh_conf();
    if (conf == NULL || conf->sh == NULL) {
        return ngx_http_hris_send_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                   NULL, "webhooks are not available: see the error log");
    }

    id.data = rest->data + sizeof("webhooks/") - 1;
    id.len = rest->len > sizeof("webhooks/") - 1
             ? rest->len - (sizeof("webhooks/") - 1) : 0;

    if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_DELETE)) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    if ((r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) && id.len == 0) {
        return ngx_http_hris_wh_list(r, conf, tenant);
    }

    if (r->method == NGX_HTTP_DELETE && id.len) {
        return ngx_http_hris_wh_delete(r, conf, tenant, &id);
    }

    if (r->method != NGX_HTTP_POST || id.len) {
        return ngx_http_hris_send_error(r, NGX_HTTP_NOT_ALLOWED, NULL,
                   "method %V is not allowed on \"%V\": use GET or POST on "
                   "webhooks, DELETE on webhooks/{id}", &r->method_name,
                   &r->uri);
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_hris_wh_admin_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->tenant = *tenant;
    ngx_http_set_ctx(r, ctx, ngx_http_hris_events_module);

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_hris_wh_body);
    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static ngx_int_t
ngx_http_hris_wh_list(ngx_http_request_t *r, ngx_http_hris_wh_conf_t *conf,
    ngx_str_t *tenant)
{
    json_t  *list;

    list = ngx_http_hris_wh_sub_list(conf, tenant);
    if (list == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_hris_send_json(r, NGX_HTTP_OK,
               json_pack("{s:o,s:I}", "result", list, "result_count",
                         (json_int_t) json_array_size(list)), NULL);
}


static ngx_int_t
ngx_http_hris_wh_delete(ngx_http_request_t *r, ngx_http_hris_wh_conf_t *conf,
    ngx_str_t *tenant, ngx_str_t *id)
{
    /* with hris_redis: out of the fleet's store first */
    if (ngx_http_hris_wh_fleet_on(conf)) {
        return ngx_http_hris_wh_fleet_delete(r, conf, tenant, id);
    }

    return ngx_http_hris_wh_removed(r, conf, id,
                                    ngx_http_hris_wh_sub_delete(conf, tenant,
                                                                id));
}


/* the answer to a DELETE; rc: NGX_OK, or NGX_DECLINED when none was */

ngx_int_t
ngx_http_hris_wh_removed(ngx_http_request_t *r, ngx_http_hris_wh_conf_t *conf,
    ngx_str_t *id, ngx_int_t rc)
{
    if (rc != NGX_OK) {
        /* another tenant's subscription is reported like a missing one */
        return ngx_http_hris_send_error(r, NGX_HTTP_NOT_FOUND, NULL,
                   "no webhook subscription \"%V\": GET webhooks lists "
                   "yours", id);
    }

    ngx_http_hris_wh_spool_save(conf, r->connection->log);

    return ngx_http_hris_send_json(r, NGX_HTTP_OK,
               json_pack("{s:{s:s%}}", "result", "id", id->data, id->len),
               NULL);
}


static void
ngx_http_hris_wh_body(ngx_http_request_t *r)
{
    json_t                        *body;
    ngx_int_t                      rc;
    ngx_http_hris_wh_conf_t       *conf;
    ngx_http_hris_wh_admin_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_hris_events_module);
    conf = ngx_http_hris_wh_conf();

    rc = ngx_http_hris_admin_json(r, &body);
    if (body == NULL) {
        ngx_http_finalize_request(r, rc);
        return;
    }

    ngx_http_finalize_request(r, ngx_http_hris_wh_create(r, conf,
                                                         &ctx->tenant, body));
}


static ngx_int_t
ngx_http_hris_wh_create(ngx_http_request_t *r, ngx_http_hris_wh_conf_t *conf,
    ngx_str_t *tenant, json_t *body)
{
    u_char       id[NGX_HTTP_HRIS_WH_ID_LEN];
    json_t      *v, *events;
    ngx_int_t    rc;
    ngx_str_t    url, types, secret;
    const char  *key;

    json_object_foreach(body, key, v) {
        if (ngx_strcmp(key, "url") != 0 && ngx_strcmp(key, "events") != 0) {
            return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST,
                       json_pack("{s:s}", "field", key),
                       "unknown key \"%s\": a subscription takes \"url\" "
                       "and \"events\"", key);
        }
    }

    v = json_object_get(body, "url");

    if (!json_is_string(v) || json_string_length(v) == 0
        || json_string_length(v) > NGX_HTTP_HRIS_WH_URL_MAX)
    {
        return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST,
                   json_pack("{s:s}", "field", "url"),
                   "\"url\" must be an http or https URL of at most %d "
                   "characters", NGX_HTTP_HRIS_WH_URL_MAX);
    }

    url.data = (u_char *) json_string_value(v);
    url.len = json_string_length(v);

    rc = ngx_http_hris_wh_url_check(conf->hmcf, &url);

    if (rc == NGX_ERROR) {
        return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST,
                   json_pack("{s:s}", "field", "url"),
                   "\"url\" must be an http or https URL without userinfo, "
                   "percent-encoding, dot segments, spaces or fragments");
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_hris_send_error(r, NGX_HTTP_FORBIDDEN,
                   json_pack("{s:s}", "field", "url"),
                   "\"url\" names a loopback, private or link-local host: "
                   "the operator must list it in \"hris_allowed_urls\"");
    }

    events = json_object_get(body, "events");

    if (ngx_http_hris_wh_events(r, events, &types, &rc) != NGX_OK) {
        return rc;      /* the 400 sent, or the 500 to send */
    }

    if (ngx_http_hris_wh_secret(r->pool, &secret) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_hris_wh_random_id(id, "wh_", NGX_HTTP_HRIS_WH_ID_LEN);

    /* with hris_redis: into the fleet's store first, then this zone */
    if (ngx_http_hris_wh_fleet_on(conf)) {
        return ngx_http_hris_wh_fleet_create(r, conf, tenant, id, &url,
                                             &types, &secret);
    }

    return ngx_http_hris_wh_stored(r, conf, tenant, id, &url, &types,
                                   &secret, NGX_OK);
}


/*
 * The answer to a POST. rc: NGX_OK, store it in this zone; NGX_DECLINED,
 * the fleet's store refused it (the tenant's cap).
 */

ngx_int_t
ngx_http_hris_wh_stored(ngx_http_request_t *r, ngx_http_hris_wh_conf_t *conf,
    ngx_str_t *tenant, u_char *id, ngx_str_t *url, ngx_str_t *types,
    ngx_str_t *secret, ngx_int_t rc)
{
    u_char   *p, *last, *comma;
    json_t   *events;

    if (rc == NGX_OK) {
        rc = ngx_http_hris_wh_sub_add(conf, tenant, id, url, types, secret,
                                      ngx_time(), r->connection->log);

        /*
         * Redis holds it, and other gateways deliver to it: the tenant
         * must get its secret (no room here is logged, and the poll
         * tries again)
         */
        if (rc != NGX_OK && ngx_http_hris_wh_fleet_on(conf)) {
            rc = NGX_OK;
        }
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_hris_send_error(r, NGX_HTTP_CONFLICT, NULL,
                   "a tenant may hold at most %d webhook subscriptions: "
                   "delete one first", NGX_HTTP_HRIS_WH_TENANT_SUBS);
    }

    if (rc != NGX_OK) {
        return ngx_http_hris_send_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                   NULL, "the subscription could not be stored: see the "
                   "error log");
    }

    ngx_http_hris_wh_spool_save(conf, r->connection->log);

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0, "hris: webhook %*s "
                  "of tenant \"%V\" created", (size_t) NGX_HTTP_HRIS_WH_ID_LEN,
                  id, tenant);

    /* "a,b,c" back into the array the tenant sent */
    events = json_array();
    p = types->data;
    last = types->data + types->len;

    while (events && p < last) {
        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        if (json_array_append_new(events,
                                  json_stringn((char *) p, comma - p)) != 0)
        {
            json_decref(events);
            events = NULL;
        }

        p = comma + 1;
    }

    return ngx_http_hris_send_json(r, NGX_HTTP_CREATED,
               json_pack("{s:{s:s#,s:s%,s:o,s:s%}}", "result",
                         "id", id, (int) NGX_HTTP_HRIS_WH_ID_LEN,
                         "url", url->data, url->len, "events", events,
                         "secret", secret->data, secret->len), NULL);
}


/*
 * "events": an array of "*" or known type names, into "a,b,c". NGX_ERROR:
 * refused (*rc: what sending the 400 returned) or no memory (*rc: 500).
 */

static ngx_int_t
ngx_http_hris_wh_events(ngx_http_request_t *r, json_t *events,
    ngx_str_t *out, ngx_int_t *rc)
{
    u_char      *p;
    size_t       i, len;
    json_t      *v;
    const char  *type;

    if (!json_is_array(events) || json_array_size(events) == 0
        || json_array_size(events) > NGX_HTTP_HRIS_WH_EVENTS_MAX)
    {
        *rc = ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST,
                  json_pack("{s:s}", "field", "events"),
                  "\"events\" must be an array of 1 to %d event types, or "
                  "[\"*\"] for all", NGX_HTTP_HRIS_WH_EVENTS_MAX);
        return NGX_ERROR;
    }

    len = 0;

    json_array_foreach(events, i, v) {
        type = json_string_value(v);

        if (type == NULL
            || !(ngx_strcmp(type, "*") == 0
                 || ngx_http_hris_wh_type_known(type, json_string_length(v))))
        {
            *rc = ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST,
                      json_pack("{s:s,s:O}", "field", "events", "value", v),
                      "unknown event type %s%s%s: use \"*\" or "
                      "integrated_account.created, .deleted, "
                      ".needs_reauth, .reactivated, record.created, "
                      ".updated, .deleted", type ? "\"" : "",
                      type ? type : "(not a string)", type ? "\"" : "");
            return NGX_ERROR;
        }

        len += json_string_length(v) + 1;
    }

    out->data = ngx_pnalloc(r->pool, len);
    if (out->data == NULL) {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_ERROR;
    }

    p = out->data;

    json_array_foreach(events, i, v) {
        if (i) {
            *p++ = ',';
        }

        p = ngx_cpymem(p, json_string_value(v), json_string_length(v));
    }

    out->len = p - out->data;

    return NGX_OK;
}


/* "whsec_" and the base64 of 32 random bytes (Standard Webhooks) */

static ngx_int_t
ngx_http_hris_wh_secret(ngx_pool_t *pool, ngx_str_t *out)
{
    u_char     raw[32];
    ngx_str_t  src, dst;

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        return NGX_ERROR;
    }

    out->data = ngx_pnalloc(pool, sizeof("whsec_") - 1
                                  + ngx_base64_encoded_length(sizeof(raw)));
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    src.data = raw;
    src.len = sizeof(raw);
    dst.data = ngx_cpymem(out->data, "whsec_", sizeof("whsec_") - 1);
    ngx_encode_base64(&dst, &src);

    out->len = sizeof("whsec_") - 1 + dst.len;

    ngx_memzero(raw, sizeof(raw));

    return NGX_OK;
}


/*
 * NGX_OK: a tenant may use the URL (a public host, or under a prefix of
 * hris_allowed_urls); NGX_DECLINED: it names a host that is not public;
 * NGX_ERROR: it is not a URL the gateway can check.
 */

ngx_int_t
ngx_http_hris_wh_url_check(ngx_http_hris_main_conf_t *hmcf, ngx_str_t *url)
{
    size_t                len;
    u_char               *h;
    ngx_http_hris_url_t   u;
    u_char                host[NGX_SOCKADDR_STRLEN];
    ngx_sockaddr_t        sa;

    if (ngx_http_hris_url_parse(url, 0, &u) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_hris_url_listed(hmcf, url)) {
        return NGX_OK;
    }

    h = u.host.data;
    len = u.host.len;

    if (len > 2 && h[0] == '[') {
        h++;
        len -= 2;
    }

    if (len >= sizeof(host)) {
        return NGX_OK;      /* a long name: checked when it is resolved */
    }

    ngx_memcpy(host, h, len);
    host[len] = '\0';

    /* names that are loopback by definition (RFC 6761) */
    if ((len == 9 && ngx_strncasecmp(host, (u_char *) "localhost", 9) == 0)
        || (len > 10
            && ngx_strncasecmp(host + len - 10, (u_char *) ".localhost", 10)
               == 0))
    {
        return NGX_DECLINED;
    }

    ngx_memzero(&sa, sizeof(sa));

    sa.sockaddr_in.sin_addr.s_addr = ngx_inet_addr(host, len);

    if (sa.sockaddr_in.sin_addr.s_addr != INADDR_NONE) {
        sa.sockaddr.sa_family = AF_INET;

#if (NGX_HAVE_INET6)
    } else if (ngx_inet6_addr(host, len,
                              sa.sockaddr_in6.sin6_addr.s6_addr) == NGX_OK)
    {
        sa.sockaddr.sa_family = AF_INET6;
#endif

    } else {
        return NGX_OK;      /* a name: its addresses are checked later */
    }

    return ngx_http_hris_wh_addr_public(&sa.sockaddr) ? NGX_OK
                                                      : NGX_DECLINED;
}


static ngx_uint_t
ngx_http_hris_wh_v4_public(uint32_t a)
{
    return !((a >> 24) == 0                       /* 0.0.0.0/8 */
             || (a >> 24) == 10                   /* 10/8 */
             || (a >> 24) == 127                  /* loopback */
             || (a >> 22) == (100 << 2 | 1)       /* 100.64/10, CGNAT */
             || (a >> 16) == (169 << 8 | 254)     /* link-local */
             || (a >> 20) == (172 << 4 | 1)       /* 172.16/12 */
             || (a >> 16) == (192 << 8 | 168)     /* 192.168/16 */
             || (a >> 8) == (192u << 16)          /* 192.0.0/24 */
             || (a >> 17) == (198 << 7 | 9)       /* 198.18/15 */
             || (a >> 28) >= 14);                 /* multicast, reserved */
}


/* whether an address is one a tenant may reach without the operator */

ngx_uint_t
ngx_http_hris_wh_addr_public(struct sockaddr *sa)
{
    u_char               *b;
    struct sockaddr_in   *sin;
#if (NGX_HAVE_INET6)
    struct sockaddr_in6  *sin6;
#endif

    switch (sa->sa_family) {

    case AF_INET:
        sin = (struct sockaddr_in *) sa;
        return ngx_http_hris_wh_v4_public(ntohl(sin->sin_addr.s_addr));

#if (NGX_HAVE_INET6)
    case AF_INET6:
        sin6 = (struct sockaddr_in6 *) sa;
        b = sin6->sin6_addr.s6_addr;

        if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)
            || IN6_IS_ADDR_V4COMPAT(&sin6->sin6_addr))
        {
            return ngx_http_hris_wh_v4_public((uint32_t) b[12] << 24
                                              | (uint32_t) b[13] << 16
                                              | (uint32_t) b[14] << 8
                                              | b[15]);
        }

        return !(IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr)
                 || IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr)
                 || (b[0] & 0xfe) == 0xfc                /* fc00::/7 */
                 || (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)  /* fe80::/10 */
                 || (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0)  /* site-local */
                 || b[0] == 0xff);                       /* multicast */
#endif

    default:
        return 0;
    }
}
