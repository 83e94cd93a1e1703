/*
 * The state that outlives a request: one call per operation, the choice
 * of backend behind it (DESIGN.md, "State that must outlive a request").
 *
 * Two backends: embedded (the default: the shared zone "hris", files in
 * the state directory written by the thread pool) and Redis (hris_redis:
 * shared by every gateway on the same Redis, CONTRACT §9). This header is
 * the map of every such operation, what answers it in each backend, and
 * the call a caller makes. The calls marked "here" are defined in
 * ngx_http_hris_state_if.c and choose the backend themselves; the others
 * still choose at their call site (named), to be moved behind this
 * interface as they are touched.
 *
 * operation                embedded                     Redis (hris_redis)
 * ---------------------    ---------------------------  --------------------------
 * access token, refresh    shm_token.c: token_get/set,  fleet.c: fleet_token,
 *   single flight,         refresh_get/set, token_fail/ fleet_commit, fleet_refused,
 *   rotated refresh token, drop; the state file keeps   fleet_release, fleet_drop,
 *   needs-reauth mark      rotated tokens               fleet_echo (hris:{acct:<id>}
 *                                                       :tok, :lock); a valid token is
 *                                                       kept per worker
 *   chosen in: auth.c (ngx_http_hris_gate_token(), _exchange(), _refused())
 *
 * rate-limit window        shm_rate.c: rate_reserve     fleet.c: fleet_rate
 *                                                       (hris:{acct:<id>}:rate), falls
 *                                                       back to the zone's window
 *   chosen in: auth.c (ngx_http_hris_gate_rate())
 *
 * credential cool-down     shm_link.c: creds_refuse,    the zone's marks, published by
 *   (hris_credentials_     creds_refused, creds_clear   fleet_links.c (hris:{cool}:*)
 *   cooldown)                                           and polled into every zone
 *   here: ngx_http_hris_state_cooldown_set(); read with ngx_http_hris_creds_refused()
 *   (the zone, in both backends: no round trip on the request path)
 *
 * connect link used once   shm_link.c: link_claim,      fleet_links.c: fleet_link_claim
 *                          link_release, link_used;     (SET NX hris:{link:<hash>}),
 *                          the state file keeps them    fleet_link_check (EXISTS),
 *                                                       fleet_link_release; then the
 *                                                       zone too
 *   here: ngx_http_hris_state_link_claim(), ngx_http_hris_state_link_release();
 *   chosen in: connect.c, connect_form.c (the check when a link is opened)
 *
 * run-time accounts        shm_accounts.c: accounts_get the zone, plus fleet_accounts.c:
 *   (admin API, connect)   /set (one JSON text and a    accounts_publish and a poll of
 *                          generation), store.c compiles hris:{accounts}:gen that merges
 *                          per account; the state file  the fleet's changes into the
 *                                                       zone
 *   chosen in: store.c (ngx_http_hris_store_change() publishes; a no-op without Redis)
 *
 * idempotency keys         idem.c: idem_begin, its own  idem.c: idem_begin_fleet
 *                          zone and idempotency.json    (hris:{idem:<sha256>})
 *   chosen in: write.c
 *
 * the key sealing cursors  cursor_key.c: the state      cursor_key.c: hris:{global}:
 *   and connect links      directory's file (or         cursor_key (SET NX, kept per
 *                          hris_cursor_secret)          worker); cursor_key_wait()
 *   chosen in: cursor_key.c itself (callers call ngx_http_hris_cursor_key_wait())
 *
 * webhook subscriptions,   (issue 11: not built yet)
 *   event queue
 *
 * Durable files (embedded): state.c writes the zone's snapshot
 * (ngx_http_hris_shm_snapshot()) through file.c, in the state directory
 * that statedir.c makes under nginx's prefix when no directive names one.
 *
 * Webhook subscriptions and the event queue: embedded, events.c (the zone
 * "hris_webhooks") and events_spool.c (webhooks.json); Redis,
 * webhooks_fleet.c (hris:{webhooks}:subs) and webhooks_queue.c
 * (hris:{webhooks}:q, :d); chosen in events.c (emit) and deliver.c.
 */

#ifndef _NGX_HTTP_HRIS_STATE_IF_H_INCLUDED_
#define _NGX_HTTP_HRIS_STATE_IF_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris.h"
#include "ngx_http_hris_fleet_links.h"


/*
 * Claims a connect link for its completion. Embedded: NGX_OK (claimed),
 * NGX_DECLINED (used), NGX_BUSY or NGX_ERROR (no room in the zone), at
 * once. Redis: NGX_DONE, the request is held, and handler(r, data, rc)
 * follows with NGX_OK, NGX_DECLINED or NGX_ABORT (the store could not
 * answer); NGX_ERROR.
 */
ngx_int_t ngx_http_hris_state_link_claim(ngx_http_request_t *r, u_char *hash,
    time_t expires, ngx_http_hris_fleet_link_pt handler, void *data);

/* The account could not be stored: the link may be used again. */
void ngx_http_hris_state_link_release(ngx_http_hris_main_conf_t *hmcf,
    u_char *hash);

/*
 * Credentials the provider refused (a digest of them in creds) are not
 * sent again until "until": in this gateway's zone, and with Redis, for
 * the fleet. What ngx_http_hris_creds_refuse() returns; NGX_ERROR: the
 * zone is full.
 */
ngx_int_t ngx_http_hris_state_cooldown_set(ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *id, u_char *creds, time_t until, ngx_uint_t status);


#endif /* _NGX_HTTP_HRIS_STATE_IF_H_INCLUDED_ */
