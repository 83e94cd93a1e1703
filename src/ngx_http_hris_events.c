/*
 * Events (see events.h) and the zone that keeps webhook subscriptions and
 * undelivered events (see webhooks.h): a shared memory zone of its own,
 * "hris_webhooks" (hris_webhook_zone_size), so that a tenant flooding it
 * cannot take the memory of tokens or Idempotency-Keys, and each tenant
 * may hold at most NGX_HTTP_HRIS_WH_TENANT_QUEUE undelivered events, and
 * at most hris_webhook_tenant_size bytes of them (events differ in size),
 * so that one tenant's dead receiver cannot take the others' room. A
 * reload keeps the zone; webhooks.json in the state directory carries it
 * over a restart (ngx_http_hris_events_spool.c). The zone and the
 * directives are set up in ngx_http_hris_webhooks_conf.c.
 *
 * Every function here that is not static takes the zone's lock itself;
 * the static ones expect it held.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris_events.h"
#include "ngx_http_hris_metrics.h"
#include "ngx_http_hris_webhooks.h"


static ngx_uint_t ngx_http_hris_wh_matches(ngx_http_hris_wh_sub_t *s,
    const char *type);
static size_t ngx_http_hris_wh_dlv_size(size_t tenant, size_t body);
static void ngx_http_hris_wh_usage(ngx_http_hris_wh_conf_t *conf,
    ngx_str_t *tenant, ngx_uint_t *n, size_t *bytes);
static ngx_uint_t ngx_http_hris_wh_capped(ngx_http_hris_wh_conf_t *conf,
    ngx_uint_t n, size_t bytes, size_t size);
static ngx_int_t ngx_http_hris_wh_dlv_add(ngx_http_hris_wh_conf_t *conf,
    u_char *evt, u_char *sub, ngx_str_t *tenant, ngx_str_t *body,
    time_t created, uint64_t due, ngx_uint_t attempts);
static void ngx_http_hris_wh_dlv_free(ngx_http_hris_wh_conf_t *conf,
    ngx_http_hris_wh_dlv_t *d);
static ngx_http_hris_wh_sub_t *ngx_http_hris_wh_sub_find(
    ngx_http_hris_wh_conf_t *conf, u_char *id, size_t len);
static void ngx_http_hris_wh_sub_free(ngx_http_hris_wh_conf_t *conf,
    ngx_http_hris_wh_sub_t *s);
static ngx_int_t ngx_http_hris_wh_str(ngx_http_hris_wh_conf_t *conf,
    ngx_str_t *dst, u_char *src, size_t len);
static void ngx_http_hris_wh_emit_fleet(ngx_http_hris_wh_conf_t *conf,
    u_char *evt, const char *type, ngx_str_t *tenant, ngx_str_t *body,
    ngx_log_t *log);


void
ngx_http_hris_event_emit(ngx_http_hris_main_conf_t *hmcf, ngx_str_t *tenant,
    const char *type, json_t *data, ngx_log_t *log)
{
    char                     *text;
    u_char                    evt[NGX_HTTP_HRIS_EVT_ID_LEN];
    u_char                    ts[sizeof("1970-01-01T00:00:00Z")];
    json_t                   *event;
    ngx_tm_t                  tm;
    size_t                    bytes, size;
    ngx_str_t                 body;
    ngx_uint_t                n, queued, full, nomem, cap;
    const char               *id, *resource, *rid;
    ngx_queue_t              *q;
    ngx_http_hris_wh_sub_t   *s;
    ngx_http_hris_wh_conf_t  *conf;

    id = json_string_value(json_object_get(data, "integrated_account_id"));
    resource = json_string_value(json_object_get(data, "resource"));
    rid = json_string_value(json_object_get(data, "id"));

    ngx_log_error(NGX_LOG_INFO, log, 0, "hris event %s for tenant \"%V\", "
                  "account \"%s\"%s%s%s%s", type, tenant, id ? id : "",
                  resource ? ", " : "", resource ? resource : "",
                  rid ? " " : "", rid ? rid : "");

    ngx_http_hris_metrics_event(type);

    conf = ngx_http_hris_wh_conf();

    if (conf == NULL || conf->sh == NULL) {
        json_decref(data);
        return;
    }

    ngx_http_hris_wh_random_id(evt, "evt_", NGX_HTTP_HRIS_EVT_ID_LEN);
    ngx_gmtime(ngx_time(), &tm);
    ngx_sprintf(ts, "%4d-%02d-%02dT%02d:%02d:%02dZ%Z", tm.ngx_tm_year,
                tm.ngx_tm_mon, tm.ngx_tm_mday, tm.ngx_tm_hour,
                tm.ngx_tm_min, tm.ngx_tm_sec);

    /* takes data's reference */
    event = json_pack("{s:s#,s:s,s:s,s:o}", "id", evt,
                      (int) NGX_HTTP_HRIS_EVT_ID_LEN, "type", type,
                      "timestamp", ts, "data", data);
    text = event ? json_dumps(event, JSON_COMPACT) : NULL;
    json_decref(event);

    if (text == NULL || ngx_strlen(text) > NGX_HTTP_HRIS_WH_BODY_MAX) {
        ngx_log_error(NGX_LOG_ERR, log, 0, "hris: event %s for tenant "
                      "\"%V\" not queued: %s", type, tenant,
                      text ? "its data is too large" : "no memory");
        free(text);
        return;
    }

    body.data = (u_char *) text;
    body.len = ngx_strlen(text);

    if (ngx_http_hris_wh_queue_on(conf)) {
        /* with hris_redis: into the fleet's queue */
        ngx_http_hris_wh_emit_fleet(conf, evt, type, tenant, &body, log);
        free(text);
        return;
    }

    queued = 0;
    full = 0;
    nomem = 0;
    cap = 0;
    size = ngx_http_hris_wh_dlv_size(tenant->len, body.len);

    ngx_shmtx_lock(&conf->shpool->mutex);

    ngx_http_hris_wh_usage(conf, tenant, &n, &bytes);

    for (q = ngx_queue_head(&conf->sh->subs);
         q != ngx_queue_sentinel(&conf->sh->subs);
         q = ngx_queue_next(q))
    {
        s = ngx_queue_data(q, ngx_http_hris_wh_sub_t, queue);

        if (!ngx_http_hris_str_eq(&s->tenant, tenant)
            || !ngx_http_hris_wh_matches(s, type))
        {
            continue;
        }

        cap = ngx_http_hris_wh_capped(conf, n, bytes, size);

        if (cap) {
            full++;
            continue;
        }

        if (ngx_http_hris_wh_dlv_add(conf, evt, s->id, tenant, &body,
                                     ngx_time(), ngx_http_hris_wh_now(), 0)
            != NGX_OK)
        {
            nomem++;
            continue;
        }

        queued++;
        n++;
        bytes += size;
    }

    conf->sh->dropped += full + nomem;

    if (queued) {
        ngx_http_hris_file_mark_dirty(&conf->sh->mark);
    }

    ngx_shmtx_unlock(&conf->shpool->mutex);

    free(text);

    if (full || nomem) {
        ngx_http_hris_wh_full(evt, type, full + nomem, tenant,
                              full ? cap : 0, log);
    }

    if (queued) {
        ngx_http_hris_wh_spool_save(conf, log);
    }
}


/*
 * full: 0, the zone is full; 1, the tenant has as many undelivered events
 * as it may; 2, they take the tenant's share of the zone
 */

void
ngx_http_hris_wh_full(u_char *evt, const char *type, ngx_uint_t n,
    ngx_str_t *tenant, ngx_uint_t full, ngx_log_t *log)
{
    ngx_log_error(NGX_LOG_ERR, log, 0, "hris: event %*s (%s) not queued "
                  "for %ui subscription(s) of tenant \"%V\": %s",
                  (size_t) NGX_HTTP_HRIS_EVT_ID_LEN, evt, type, n, tenant,
                  full == 2 ? "the tenant's undelivered events take its "
                              "share of the zone "
                              "(\"hris_webhook_tenant_size\")"
                  : full ? "the tenant has too many undelivered events"
                  : "the zone is full: raise \"hris_webhook_zone_size\"");
}


/*
 * With hris_redis: one delivery per matching subscription into the
 * fleet's queue. The ids are copied out first: Redis is not called with
 * the zone's lock held.
 */

static void
ngx_http_hris_wh_emit_fleet(ngx_http_hris_wh_conf_t *conf, u_char *evt,
    const char *type, ngx_str_t *tenant, ngx_str_t *body, ngx_log_t *log)
{
    ngx_uint_t               i, n;
    ngx_queue_t             *q;
    ngx_http_hris_wh_sub_t  *s;
    u_char                   ids[NGX_HTTP_HRIS_WH_TENANT_SUBS]
                                [NGX_HTTP_HRIS_WH_ID_LEN];

    n = 0;

    ngx_shmtx_lock(&conf->shpool->mutex);

    for (q = ngx_queue_head(&conf->sh->subs);
         n < NGX_HTTP_HRIS_WH_TENANT_SUBS
         && q != ngx_queue_sentinel(&conf->sh->subs);
         q = ngx_queue_next(q))
    {
        s = ngx_queue_data(q, ngx_http_hris_wh_sub_t, queue);

        if (ngx_http_hris_str_eq(&s->tenant, tenant)
            && ngx_http_hris_wh_matches(s, type))
        {
            ngx_memcpy(ids[n++], s->id, NGX_HTTP_HRIS_WH_ID_LEN);
        }
    }

    ngx_shmtx_unlock(&conf->shpool->mutex);

    for (i = 0; i < n; i++) {
        ngx_http_hris_wh_queue_push(conf, evt, type, ids[i], tenant, body,
                                    log);
    }
}


/*
 * One delivery into this gateway's zone, as an emit does: with hris_redis,
 * when the fleet's queue cannot take it. NGX_DECLINED: not queued (the
 * tenant's cap, no room, or the subscription ended meanwhile).
 */

ngx_int_t
ngx_http_hris_wh_dlv_queue(ngx_http_hris_wh_conf_t *conf, u_char *evt,
    u_char *sub, ngx_str_t *tenant, ngx_str_t *body, time_t created,
    ngx_log_t *log)
{
    size_t      bytes;
    ngx_int_t   rc;
    ngx_uint_t  n, cap;

    ngx_shmtx_lock(&conf->shpool->mutex);

    ngx_http_hris_wh_usage(conf, tenant, &n, &bytes);
    cap = ngx_http_hris_wh_capped(conf, n, bytes,
                          ngx_http_hris_wh_dlv_size(tenant->len, body->len));

    if (ngx_http_hris_wh_sub_find(conf, sub, NGX_HTTP_HRIS_WH_ID_LEN)
        == NULL)
    {
        rc = NGX_DECLINED;

    } else if (cap) {
        conf->sh->dropped++;
        rc = NGX_BUSY;

    } else {
        rc = ngx_http_hris_wh_dlv_add(conf, evt, sub, tenant, body, created,
                                      ngx_http_hris_wh_now(), 0);
        if (rc == NGX_OK) {
            ngx_http_hris_file_mark_dirty(&conf->sh->mark);

        } else {
            conf->sh->dropped++;
        }
    }

    ngx_shmtx_unlock(&conf->shpool->mutex);

    if (rc == NGX_OK) {
        ngx_http_hris_wh_spool_save(conf, log);
        return NGX_OK;
    }

    if (rc != NGX_DECLINED) {
        ngx_log_error(NGX_LOG_ERR, log, 0, "hris: event %*s for webhook %*s "
                      "of tenant \"%V\" not queued on this gateway: %s",
                      (size_t) NGX_HTTP_HRIS_EVT_ID_LEN, evt,
                      (size_t) NGX_HTTP_HRIS_WH_ID_LEN, sub, tenant,
                      cap == 2 ? "the tenant's undelivered events take its "
                                 "share of the zone "
                                 "(\"hris_webhook_tenant_size\")"
                      : cap ? "the tenant has too many undelivered events"
                      : "the zone is full: raise \"hris_webhook_zone_size\"");
    }

    return NGX_DECLINED;
}


/* s->events: "*" or type names, separated by "," */

static ngx_uint_t
ngx_http_hris_wh_matches(ngx_http_hris_wh_sub_t *s, const char *type)
{
    size_t   len, tlen;
    u_char  *p, *last, *comma;

    p = s->events.data;
    last = p + s->events.len;
    tlen = ngx_strlen(type);

    while (p < last) {
        comma = ngx_strlchr(p, last, ',');
        len = (comma ? comma : last) - p;

        if ((len == 1 && *p == '*')
            || (len == tlen && ngx_strncmp(p, type, len) == 0))
        {
            return 1;
        }

        p += len + 1;
    }

    return 0;
}


/* a delivery's bytes in the zone (see ngx_http_hris_wh_dlv_add) */

static size_t
ngx_http_hris_wh_dlv_size(size_t tenant, size_t body)
{
    return ngx_http_hris_slab_size(sizeof(ngx_http_hris_wh_dlv_t))
           + ngx_http_hris_slab_size(tenant ? tenant : 1)
           + ngx_http_hris_slab_size(body ? body : 1);
}


/*
 * The tenant's undelivered events: how many, and their bytes. Counted
 * from the queue itself (the lock is held), so that no tally can drift
 * from what the zone holds, whichever path freed a delivery.
 */

static void
ngx_http_hris_wh_usage(ngx_http_hris_wh_conf_t *conf, ngx_str_t *tenant,
    ngx_uint_t *n, size_t *bytes)
{
    ngx_queue_t             *q;
    ngx_http_hris_wh_dlv_t  *d;

    *n = 0;
    *bytes = 0;

    for (q = ngx_queue_head(&conf->sh->dlvs);
         q != ngx_queue_sentinel(&conf->sh->dlvs);
         q = ngx_queue_next(q))
    {
        d = ngx_queue_data(q, ngx_http_hris_wh_dlv_t, queue);

        if (ngx_http_hris_str_eq(&d->tenant, tenant)) {
            (*n)++;
            *bytes += ngx_http_hris_wh_dlv_size(d->tenant.len, d->body.len);
        }
    }
}


/*
 * Whether a tenant with n undelivered events of these bytes may not
 * queue one more of size bytes: 1, its count; 2, its share of the zone
 */

static ngx_uint_t
ngx_http_hris_wh_capped(ngx_http_hris_wh_conf_t *conf, ngx_uint_t n,
    size_t bytes, size_t size)
{
    if (n >= NGX_HTTP_HRIS_WH_TENANT_QUEUE) {
        return 1;
    }

    if (bytes + size > conf->tenant_size) {
        return 2;
    }

    return 0;
}


static ngx_int_t
ngx_http_hris_wh_str(ngx_http_hris_wh_conf_t *conf, ngx_str_t *dst,
    u_char *src, size_t len)
{
    dst->data = ngx_slab_alloc_locked(conf->shpool, len ? len : 1);
    if (dst->data == NULL) {
        dst->len = 0;
        return NGX_ERROR;
    }

    ngx_memcpy(dst->data, src, len);
    dst->len = len;

    return NGX_OK;
}


/* the lock is held */

static ngx_int_t
ngx_http_hris_wh_dlv_add(ngx_http_hris_wh_conf_t *conf, u_char *evt,
    u_char *sub, ngx_str_t *tenant, ngx_str_t *body, time_t created,
    uint64_t due, ngx_uint_t attempts)
{
    ngx_http_hris_wh_dlv_t  *d;

    d = ngx_slab_calloc_locked(conf->shpool, sizeof(ngx_http_hris_wh_dlv_t));
    if (d == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_hris_wh_str(conf, &d->tenant, tenant->data, tenant->len)
        != NGX_OK
        || ngx_http_hris_wh_str(conf, &d->body, body->data, body->len)
           != NGX_OK)
    {
        ngx_http_hris_wh_dlv_free(conf, d);
        return NGX_ERROR;
    }

    ngx_memcpy(d->evt, evt, NGX_HTTP_HRIS_EVT_ID_LEN);
    ngx_memcpy(d->sub, sub, NGX_HTTP_HRIS_WH_ID_LEN);
    d->created = created;
    d->due = due;
    d->attempts = attempts;

    ngx_queue_insert_tail(&conf->sh->dlvs, &d->queue);
    conf->sh->ndlvs++;

    return NGX_OK;
}


/* the lock is held; d may not be in the queue yet */

static void
ngx_http_hris_wh_dlv_free(ngx_http_hris_wh_conf_t *conf,
    ngx_http_hris_wh_dlv_t *d)
{
    if (d->queue.next) {
        ngx_queue_remove(&d->queue);
        conf->sh->ndlvs--;
    }

    if (d->tenant.data) {
        ngx_slab_free_locked(conf->shpool, d->tenant.data);
    }

    if (d->body.data) {
        ngx_slab_free_locked(conf->shpool, d->body.data);
    }

    ngx_slab_free_locked(conf->shpool, d);
}


static ngx_http_hris_wh_sub_t *
ngx_http_hris_wh_sub_find(ngx_http_hris_wh_conf_t *conf, u_char *id,
    size_t len)
{
    ngx_queue_t             *q;
    ngx_http_hris_wh_sub_t  *s;

    if (len != NGX_HTTP_HRIS_WH_ID_LEN) {
        return NULL;
    }

    for (q = ngx_queue_head(&conf->sh->subs);
         q != ngx_queue_sentinel(&conf->sh->subs);
         q = ngx_queue_next(q))
    {
        s = ngx_queue_data(q, ngx_http_hris_wh_sub_t, queue);

        if (ngx_memcmp(s->id, id, len) == 0) {
            return s;
        }
    }

    return NULL;
}


/* the subscription and its undelivered events; the lock is held */

static void
ngx_http_hris_wh_sub_free(ngx_http_hris_wh_conf_t *conf,
    ngx_http_hris_wh_sub_t *s)
{
    ngx_queue_t             *q, *next;
    ngx_http_hris_wh_dlv_t  *d;

    for (q = ngx_queue_head(&conf->sh->dlvs);
         q != ngx_queue_sentinel(&conf->sh->dlvs);
         q = next)
    {
        next = ngx_queue_next(q);
        d = ngx_queue_data(q, ngx_http_hris_wh_dlv_t, queue);

        if (ngx_memcmp(d->sub, s->id, NGX_HTTP_HRIS_WH_ID_LEN) == 0) {
            ngx_http_hris_wh_dlv_free(conf, d);
        }
    }

    if (s->queue.next) {
        ngx_queue_remove(&s->queue);
    }

    if (s->tenant.data) {
        ngx_slab_free_locked(conf->shpool, s->tenant.data);
    }

    if (s->url.data) {
        ngx_slab_free_locked(conf->shpool, s->url.data);
    }

    if (s->events.data) {
        ngx_slab_free_locked(conf->shpool, s->events.data);
    }

    ngx_memzero(s->secret, sizeof(s->secret));
    ngx_slab_free_locked(conf->shpool, s);
}


/*
 * A subscription (events: type names separated by ","). NGX_DECLINED:
 * the tenant has as many as it may; NGX_ERROR: no room.
 */

ngx_int_t
ngx_http_hris_wh_sub_add(ngx_http_hris_wh_conf_t *conf, ngx_str_t *tenant,
    u_char *id, ngx_str_t *url, ngx_str_t *events, ngx_str_t *secret,
    time_t created, ngx_log_t *log)
{
    ngx_uint_t               n;
    ngx_queue_t             *q;
    ngx_http_hris_wh_sub_t  *s;

    if (secret->len > NGX_HTTP_HRIS_WH_SECRET_MAX) {
        return NGX_ERROR;
    }

    ngx_shmtx_lock(&conf->shpool->mutex);

    n = 0;

    for (q = ngx_queue_head(&conf->sh->subs);
         q != ngx_queue_sentinel(&conf->sh->subs);
         q = ngx_queue_next(q))
    {
        s = ngx_queue_data(q, ngx_http_hris_wh_sub_t, queue);
        n += ngx_http_hris_str_eq(&s->tenant, tenant);
    }

    if (n >= NGX_HTTP_HRIS_WH_TENANT_SUBS
        || ngx_http_hris_wh_sub_find(conf, id, NGX_HTTP_HRIS_WH_ID_LEN))
    {
        ngx_shmtx_unlock(&conf->shpool->mutex);
        return NGX_DECLINED;
    }

    s = ngx_slab_calloc_locked(conf->shpool, sizeof(ngx_http_hris_wh_sub_t));

    if (s == NULL
        || ngx_http_hris_wh_str(conf, &s->tenant, tenant->data, tenant->len)
           != NGX_OK
        || ngx_http_hris_wh_str(conf, &s->url, url->data, url->len) != NGX_OK
        || ngx_http_hris_wh_str(conf, &s->events, events->data, events->len)
           != NGX_OK)
    {
        if (s) {
            ngx_http_hris_wh_sub_free(conf, s);
        }

        ngx_shmtx_unlock(&conf->shpool->mutex);

        ngx_log_error(NGX_LOG_ERR, log, 0, "hris: no room for a webhook "
                      "subscription: raise \"hris_webhook_zone_size\"");
        return NGX_ERROR;
    }

    ngx_memcpy(s->id, id, NGX_HTTP_HRIS_WH_ID_LEN);
    ngx_memcpy(s->secret, secret->data, secret->len);
    s->secret_len = secret->len;
    s->created = created;

    ngx_queue_insert_tail(&conf->sh->subs, &s->queue);
    ngx_http_hris_file_mark_dirty(&conf->sh->mark);

    ngx_shmtx_unlock(&conf->shpool->mutex);

    return NGX_OK;
}


/* whether the zone holds any subscription (of any tenant) */

ngx_uint_t
ngx_http_hris_wh_sub_any(ngx_http_hris_wh_conf_t *conf)
{
    ngx_uint_t  any;

    ngx_shmtx_lock(&conf->shpool->mutex);
    any = !ngx_queue_empty(&conf->sh->subs);
    ngx_shmtx_unlock(&conf->shpool->mutex);

    return any;
}


/* NGX_DECLINED: no such subscription of this tenant */

ngx_int_t
ngx_http_hris_wh_sub_delete(ngx_http_hris_wh_conf_t *conf, ngx_str_t *tenant,
    ngx_str_t *id)
{
    ngx_http_hris_wh_sub_t  *s;

    ngx_shmtx_lock(&conf->shpool->mutex);

    s = ngx_http_hris_wh_sub_find(conf, id->data, id->len);

    if (s == NULL || !ngx_http_hris_str_eq(&s->tenant, tenant)) {
        ngx_shmtx_unlock(&conf->shpool->mutex);
        return NGX_DECLINED;
    }

    ngx_http_hris_wh_sub_free(conf, s);
    ngx_http_hris_file_mark_dirty(&conf->sh->mark);

    ngx_shmtx_unlock(&conf->shpool->mutex);

    return NGX_OK;
}


/*
 * Ends every subscription keep() does not want (keep is called with the
 * lock held: a lookup only). Returns how many ended.
 */

ngx_uint_t
ngx_http_hris_wh_sub_keep(ngx_http_hris_wh_conf_t *conf,
    ngx_uint_t (*keep)(u_char *id, time_t created, void *data),
    void *data)
{
    ngx_uint_t               n;
    ngx_queue_t             *q, *next;
    ngx_http_hris_wh_sub_t  *s;

    n = 0;

    ngx_shmtx_lock(&conf->shpool->mutex);

    for (q = ngx_queue_head(&conf->sh->subs);
         q != ngx_queue_sentinel(&conf->sh->subs);
         q = next)
    {
        next = ngx_queue_next(q);
        s = ngx_queue_data(q, ngx_http_hris_wh_sub_t, queue);

        if (!keep(s->id, s->created, data)) {
            ngx_http_hris_wh_sub_free(conf, s);
            n++;
        }
    }

    if (n) {
        ngx_http_hris_file_mark_dirty(&conf->sh->mark);
    }

    ngx_shmtx_unlock(&conf->shpool->mutex);

    return n;
}


/* the tenant's subscriptions, without their secrets */

json_t *
ngx_http_hris_wh_sub_list(ngx_http_hris_wh_conf_t *conf, ngx_str_t *tenant)
{
    json_t                  *list, *one, *events;
    u_char                  *p, *last, *comma;
    ngx_queue_t             *q;
    ngx_http_hris_wh_sub_t  *s;

    list = json_array();

    ngx_shmtx_lock(&conf->shpool->mutex);

    for (q = ngx_queue_head(&conf->sh->subs);
         list && q != ngx_queue_sentinel(&conf->sh->subs);
         q = ngx_queue_next(q))
    {
        s = ngx_queue_data(q, ngx_http_hris_wh_sub_t, queue);

        if (!ngx_http_hris_str_eq(&s->tenant, tenant)) {
            continue;
        }

        events = json_array();
        p = s->events.data;
        last = p + s->events.len;

        while (events && p < last) {
            comma = ngx_strlchr(p, last, ',');
            json_array_append_new(events,
                                  json_stringn((char *) p,
                                               (comma ? comma : last) - p));
            p = (comma ? comma : last) + 1;
        }

        one = json_pack("{s:s#,s:s#,s:o?}", "id", s->id,
                        (int) NGX_HTTP_HRIS_WH_ID_LEN, "url", s->url.data,
                        (int) s->url.len, "events", events);

        if (one == NULL || json_array_append_new(list, one) != 0) {
            json_decref(list);
            list = NULL;
        }
    }

    ngx_shmtx_unlock(&conf->shpool->mutex);

    return list;
}


/*
 * Up to max deliveries that are due and not leased by a live worker, for
 * this worker: leased until they can no longer be under way.
 */

ngx_uint_t
ngx_http_hris_wh_claim(ngx_http_hris_wh_conf_t *conf, ngx_pool_t *pool,
    ngx_uint_t max, ngx_http_hris_wh_claim_t **out)
{
    uint64_t                   now;
    ngx_uint_t                 n;
    ngx_queue_t               *q, *next;
    ngx_http_hris_wh_sub_t    *s;
    ngx_http_hris_wh_dlv_t    *d;
    ngx_http_hris_wh_claim_t  *c;

    now = ngx_http_hris_wh_now();
    n = 0;

    c = ngx_pcalloc(pool, max * sizeof(ngx_http_hris_wh_claim_t));
    if (c == NULL) {
        return 0;
    }

    ngx_shmtx_lock(&conf->shpool->mutex);

    for (q = ngx_queue_head(&conf->sh->dlvs);
         n < max && q != ngx_queue_sentinel(&conf->sh->dlvs);
         q = next)
    {
        next = ngx_queue_next(q);
        d = ngx_queue_data(q, ngx_http_hris_wh_dlv_t, queue);

        if (d->due > now || (d->lease_pid && d->lease_until > now)) {
            continue;
        }

        s = ngx_http_hris_wh_sub_find(conf, d->sub, NGX_HTTP_HRIS_WH_ID_LEN);
        if (s == NULL) {
            ngx_http_hris_wh_dlv_free(conf, d);
            continue;
        }

        c[n].tenant.data = ngx_pstrdup(pool, &d->tenant);
        c[n].url.data = ngx_pnalloc(pool, s->url.len + 1);
        c[n].secret.data = ngx_pnalloc(pool, s->secret_len);
        c[n].body.data = ngx_pstrdup(pool, &d->body);

        if (c[n].tenant.data == NULL || c[n].url.data == NULL
            || c[n].secret.data == NULL || c[n].body.data == NULL)
        {
            break;
        }

        c[n].tenant.len = d->tenant.len;
        c[n].body.len = d->body.len;
        ngx_memcpy(c[n].url.data, s->url.data, s->url.len);
        c[n].url.data[s->url.len] = '\0';
        c[n].url.len = s->url.len;
        ngx_memcpy(c[n].secret.data, s->secret, s->secret_len);
        c[n].secret.len = s->secret_len;
        ngx_memcpy(c[n].evt, d->evt, NGX_HTTP_HRIS_EVT_ID_LEN);
        ngx_memcpy(c[n].sub, d->sub, NGX_HTTP_HRIS_WH_ID_LEN);
        c[n].attempts = d->attempts;
        c[n].created = d->created;

        d->lease_pid = ngx_pid;
        d->lease_until = now + conf->timeout + 30000;
        n++;
    }

    ngx_shmtx_unlock(&conf->shpool->mutex);

    *out = c;

    return n;
}


/*
 * What comes of an attempt: status 0 when no answer came, retry_after in
 * seconds or -1. 2xx: delivered; 410: the subscription ends; else the
 * next attempt after the schedule's next delay (with jitter, and no
 * sooner than Retry-After, *delay), or the event is given up after the
 * last.
 */

ngx_http_hris_wh_outcome_e
ngx_http_hris_wh_outcome(ngx_http_hris_wh_conf_t *conf, ngx_uint_t attempts,
    ngx_uint_t status, time_t retry_after, uint64_t *delay)
{
    ngx_msec_t  *delays;

    *delay = 0;

    if (status >= 200 && status < 300) {
        return NGX_HTTP_HRIS_WH_DELIVERED;
    }

    if (status == 410) {
        return NGX_HTTP_HRIS_WH_GONE;
    }

    if (attempts + 1 > conf->delays->nelts) {
        return NGX_HTTP_HRIS_WH_GIVEN_UP;
    }

    delays = conf->delays->elts;

    *delay = delays[attempts];
    *delay += ngx_random() % (*delay / 5 + 1);      /* jitter: +0-20% */

    if (retry_after > 0) {
        retry_after = ngx_min(retry_after, NGX_HTTP_HRIS_WH_RA_MAX);
        *delay = ngx_max(*delay, (uint64_t) retry_after * 1000);
    }

    return NGX_HTTP_HRIS_WH_RETRY;
}


/* the outcome said, once the queue has it */

void
ngx_http_hris_wh_settled(ngx_http_hris_wh_claim_t *c,
    ngx_http_hris_wh_outcome_e outcome, ngx_uint_t status, uint64_t delay,
    ngx_log_t *log)
{
    switch (outcome) {

    case NGX_HTTP_HRIS_WH_GONE:
        ngx_log_error(NGX_LOG_WARN, log, 0, "hris: webhook %*s of tenant "
                      "\"%V\" answered 410 Gone: the subscription ends",
                      (size_t) NGX_HTTP_HRIS_WH_ID_LEN, c->sub, &c->tenant);
        break;

    case NGX_HTTP_HRIS_WH_GIVEN_UP:
        ngx_log_error(NGX_LOG_ERR, log, 0, "hris: event %*s for webhook %*s "
                      "of tenant \"%V\" given up after %ui attempts",
                      (size_t) NGX_HTTP_HRIS_EVT_ID_LEN, c->evt,
                      (size_t) NGX_HTTP_HRIS_WH_ID_LEN, c->sub, &c->tenant,
                      c->attempts + 1);
        break;

    case NGX_HTTP_HRIS_WH_RETRY:
        ngx_log_error(NGX_LOG_WARN, log, 0, "hris: event %*s for webhook "
                      "%*s of tenant \"%V\": attempt %ui got %ui, next in "
                      "%uL ms", (size_t) NGX_HTTP_HRIS_EVT_ID_LEN, c->evt,
                      (size_t) NGX_HTTP_HRIS_WH_ID_LEN, c->sub, &c->tenant,
                      c->attempts + 1, status, delay);
        break;

    default:
        break;
    }
}


/* An attempt's outcome into the zone. */

void
ngx_http_hris_wh_settle(ngx_http_hris_wh_conf_t *conf,
    ngx_http_hris_wh_claim_t *c, ngx_uint_t status, time_t retry_after,
    ngx_log_t *log)
{
    uint64_t                     delay;
    ngx_queue_t                 *q;
    ngx_http_hris_wh_sub_t      *s;
    ngx_http_hris_wh_dlv_t      *d;
    ngx_http_hris_wh_outcome_e   outcome;

    d = NULL;

    ngx_shmtx_lock(&conf->shpool->mutex);

    for (q = ngx_queue_head(&conf->sh->dlvs);
         q != ngx_queue_sentinel(&conf->sh->dlvs);
         q = ngx_queue_next(q))
    {
        d = ngx_queue_data(q, ngx_http_hris_wh_dlv_t, queue);

        if (ngx_memcmp(d->evt, c->evt, NGX_HTTP_HRIS_EVT_ID_LEN) == 0
            && ngx_memcmp(d->sub, c->sub, NGX_HTTP_HRIS_WH_ID_LEN) == 0)
        {
            break;
        }

        d = NULL;
    }

    if (d == NULL) {
        /* the subscription was deleted meanwhile */
        ngx_shmtx_unlock(&conf->shpool->mutex);
        return;
    }

    outcome = ngx_http_hris_wh_outcome(conf, d->attempts, status,
                                       retry_after, &delay);

    switch (outcome) {

    case NGX_HTTP_HRIS_WH_GONE:
        s = ngx_http_hris_wh_sub_find(conf, c->sub, NGX_HTTP_HRIS_WH_ID_LEN);
        if (s) {
            ngx_http_hris_wh_sub_free(conf, s);
        }
        break;

    case NGX_HTTP_HRIS_WH_RETRY:
        d->attempts++;
        d->due = ngx_http_hris_wh_now() + delay;
        d->lease_pid = 0;
        break;

    default:
        ngx_http_hris_wh_dlv_free(conf, d);
        break;
    }

    ngx_http_hris_file_mark_dirty(&conf->sh->mark);

    ngx_shmtx_unlock(&conf->shpool->mutex);

    ngx_http_hris_wh_settled(c, outcome, status, delay, log);

    if (outcome == NGX_HTTP_HRIS_WH_GONE) {
        /* with hris_redis: for every gateway of the fleet */
        ngx_http_hris_wh_fleet_gone(conf, c->sub, &c->tenant);
    }

    ngx_http_hris_wh_spool_save(conf, log);
}


/*
 * A delivery of the fleet's queue: its subscription's URL and secret from
 * this zone. NGX_DECLINED: the zone does not hold the subscription.
 */

ngx_int_t
ngx_http_hris_wh_claim_sub(ngx_http_hris_wh_conf_t *conf, ngx_pool_t *pool,
    ngx_http_hris_wh_claim_t *c)
{
    ngx_http_hris_wh_sub_t  *s;

    ngx_shmtx_lock(&conf->shpool->mutex);

    s = ngx_http_hris_wh_sub_find(conf, c->sub, NGX_HTTP_HRIS_WH_ID_LEN);

    if (s == NULL || !ngx_http_hris_str_eq(&s->tenant, &c->tenant)) {
        ngx_shmtx_unlock(&conf->shpool->mutex);
        return NGX_DECLINED;
    }

    c->url.data = ngx_pnalloc(pool, s->url.len + 1);
    c->secret.data = ngx_pnalloc(pool, s->secret_len);

    if (c->url.data == NULL || c->secret.data == NULL) {
        ngx_shmtx_unlock(&conf->shpool->mutex);
        return NGX_ERROR;
    }

    ngx_memcpy(c->url.data, s->url.data, s->url.len);
    c->url.data[s->url.len] = '\0';
    c->url.len = s->url.len;
    ngx_memcpy(c->secret.data, s->secret, s->secret_len);
    c->secret.len = s->secret_len;

    ngx_shmtx_unlock(&conf->shpool->mutex);

    return NGX_OK;
}


/* a string member of a spool entry; 0 when missing */

static ngx_uint_t
ngx_http_hris_wh_jstr(json_t *e, const char *key, ngx_str_t *out)
{
    json_t  *v;

    v = json_object_get(e, key);
    out->data = (u_char *) json_string_value(v);
    out->len = out->data ? json_string_length(v) : 0;

    return out->data != NULL;
}


/* The spool file's subscriptions and events into a new zone. */

ngx_int_t
ngx_http_hris_wh_seed(ngx_http_hris_wh_conf_t *conf, ngx_log_t *log)
{
    json_t     *e;
    size_t      i;
    ngx_str_t   tenant, url, events, secret, body, evt, sub;
    ngx_uint_t  n;

    n = 0;

    json_array_foreach(json_object_get(conf->initial, "subscriptions"), i, e)
    {
        if (!ngx_http_hris_wh_jstr(e, "tenant", &tenant)
            || !ngx_http_hris_wh_jstr(e, "url", &url)
            || !ngx_http_hris_wh_jstr(e, "events", &events)
            || !ngx_http_hris_wh_jstr(e, "secret", &secret)
            || !ngx_http_hris_wh_jstr(e, "id", &sub)
            || sub.len != NGX_HTTP_HRIS_WH_ID_LEN)
        {
            ngx_log_error(NGX_LOG_WARN, log, 0, "hris: %V: subscription %uz "
                          "is not one: left out", &conf->file, i);
            continue;
        }

        if (ngx_http_hris_wh_sub_add(conf, &tenant, sub.data, &url, &events,
                &secret,
                (time_t) json_integer_value(json_object_get(e, "created")),
                log) == NGX_ERROR)
        {
            return NGX_ERROR;
        }
    }

    ngx_shmtx_lock(&conf->shpool->mutex);

    json_array_foreach(json_object_get(conf->initial, "events"), i, e) {
        if (!ngx_http_hris_wh_jstr(e, "id", &evt)
            || !ngx_http_hris_wh_jstr(e, "sub", &sub)
            || !ngx_http_hris_wh_jstr(e, "tenant", &tenant)
            || !ngx_http_hris_wh_jstr(e, "body", &body)
            || evt.len != NGX_HTTP_HRIS_EVT_ID_LEN
            || !ngx_http_hris_wh_sub_find(conf, sub.data, sub.len))
        {
            continue;
        }

        if (ngx_http_hris_wh_dlv_add(conf, evt.data, sub.data, &tenant, &body,
                (time_t) json_integer_value(json_object_get(e, "created")),
                (uint64_t) json_integer_value(json_object_get(e, "due")),
                (ngx_uint_t) json_integer_value(json_object_get(e,
                                                               "attempts")))
            != NGX_OK)
        {
            ngx_shmtx_unlock(&conf->shpool->mutex);
            ngx_log_error(NGX_LOG_EMERG, log, 0, "hris: %V holds more "
                          "undelivered events than fit in the zone: raise "
                          "\"hris_webhook_zone_size\"", &conf->file);
            return NGX_ERROR;
        }

        n++;
    }

    ngx_http_hris_file_mark_clean(&conf->sh->mark);

    ngx_shmtx_unlock(&conf->shpool->mutex);

    if (n) {
        ngx_log_error(NGX_LOG_INFO, log, 0, "hris: %ui undelivered events "
                      "kept from %V", n, &conf->file);
    }

    return NGX_OK;
}
