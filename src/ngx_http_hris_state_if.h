/*
 * The state that outlives a request: one call per operation, the choice
 * of backend behind it (DESIGN.md, "State that must outlive a request").
 *
 * Two backends: embedded (the default: the shared zones, files in the
 * state directory written by the thread pool) and Redis (hris_redis:
 * shared by every gateway on the same Redis, CONTRACT §9). This header is
 * the map of every such operation, what answers it in each backend, and
 * the call a caller makes. "here": defined in ngx_http_hris_state_if.c,
 * which chooses the backend; "in X": one call, X chooses; "chosen in":
 * the callers named still choose themselves.
 *
 * Both backends answer with the same codes. The embedded one answers at
 * once; Redis answers later (NGX_AGAIN, or NGX_DONE with the request
 * held), through a callback named with each call.
 *
 * operation                embedded                     Redis (hris_redis)
 * ---------------------    ---------------------------  ---------------------
 * access token, refresh    shm_token.c: token_get/set,  fleet.c: fleet_token,
 *   single flight,         refresh_get/set, token_fail, fleet_commit,
 *   rotated refresh token, token_drop; state_if.c: the  fleet_refused,
 *   needs-reauth mark      refresh token or the seed;   fleet_release,
 *                          the state file keeps rotated fleet_drop, fleet_echo
 *                          tokens                       (hris:{acct:<id>}:tok,
 *                                                       :lock); a good token
 *                                                       is kept per worker
 *   here: ngx_http_hris_state_token_get(), _token_commit(), _token_refused(),
 *   _token_release(), _token_drop(), _token_echo(), _token_poll(); Redis
 *   answers through ngx_http_hris_gate_token_ready() (auth.c)
 *
 * rate-limit window        shm_rate.c: rate_reserve     fleet.c: fleet_rate
 *                          (state_if.c: _rate_zone())   (hris:{acct:<id>}
 *                                                       :rate); falls back to
 *                                                       the zone's window
 *   here: ngx_http_hris_state_rate_reserve(); Redis answers through
 *   ngx_http_hris_gate_rate_ready() (auth.c)
 *
 * credential cool-down     shm_link.c: creds_refuse,    the zone's marks,
 *   (hris_credentials_     creds_refused, creds_clear   published by
 *   cooldown)                                           fleet_links.c
 *                                                       (hris:{cool}:*) and
 *                                                       polled into every zone
 *   here: ngx_http_hris_state_cooldown_set(); read with
 *   ngx_http_hris_creds_refused() (the zone, in both backends: no round trip
 *   on the request path)
 *
 * connect link used once   shm_link.c: link_claim,      fleet_links.c:
 *                          link_release, link_used;     fleet_link_claim (SET
 *                          the state file keeps them    NX hris:{link:<hash>}),
 *                                                       fleet_link_check
 *                                                       (EXISTS),
 *                                                       fleet_link_release;
 *                                                       then the zone too
 *   here: ngx_http_hris_state_link_claim(), ngx_http_hris_state_link_release(),
 *   ngx_http_hris_state_link_check() (when a link is opened)
 *   chosen in: connect.c, connect_form.c (the check when a link is opened)
 *
 * run-time accounts        shm_accounts.c: one entry   the zone, plus
 *   (admin API, connect)   per account with the         fleet_accounts.c:
 *                          generation of its change     publishes into the
 *                          (account_get/set, accounts_  hash hris:{accounts},
 *                          since: what changed after a  the log :log and the
 *                          generation); store.c         counter :gen; a poll
 *                          compiles the changed ones;   reads the ids changed
 *                          the state file               since (fleet_mirror.c)
 *   in store.c: ngx_http_hris_store_change() (publishes; a no-op without
 *   Redis)
 *
 * idempotency keys         idem.c: idem_begin, its own  idem.c:
 *                          zone and idempotency.json    idem_begin_fleet
 *                                                       (hris:{idem:<sha256>})
 *   here: ngx_http_hris_state_idem_begin(); the rest of a key's life
 *   (keep, answer, finish, abandon) in idem.c, which remembers the store
 *   that claimed it
 *
 * the key sealing cursors  cursor_key.c: the state      cursor_key.c: hris:
 *   and connect links      directory's file (or         {global}:cursor_key
 *                          hris_cursor_secret)          (SET NX, kept per
 *                                                       worker)
 *   in cursor_key.c: ngx_http_hris_cursor_key_wait()
 *
 * webhook                  the zone "hris_webhooks"     webhooks_fleet.c:
 *   subscriptions          (events.c), carried over a   hris:{webhooks}:subs
 *                          restart by webhooks.json     (and :gen), made
 *                          (events_spool.c)             there first, mirrored
 *                                                       into every gateway's
 *                                                       zone
 *   chosen in: webhooks_admin.c (ngx_http_hris_wh_fleet_on(): creates and
 *   deletes); read from the zone in both (events.c)
 *
 * event queue              the zone "hris_webhooks"     webhooks_queue.c:
 *   (undelivered events)   (events.c: queued, claimed   hris:{webhooks}:q
 *                          and leased by the delivering (due times), :d (the
 *                          worker, webhooks_deliver.c), deliveries),
 *                          carried over a restart by    :t:<tenant> (its cap);
 *                          webhooks.json                claimed
 *                                                       under a lease by any
 *                                                       gateway; the zone
 *                                                       takes an emit when
 *                                                       Redis is unreachable
 *   chosen in: events.c (emit) and webhooks_deliver.c (an outcome goes back
 *   to the queue it came from)
 *
 * Durable files (embedded): state.c writes the zone's snapshot
 * (ngx_http_hris_shm_snapshot()) through file.c, in the state directory
 * that statedir.c makes under nginx's prefix when no directive names one;
 * idempotency.json and webhooks.json are written by one worker at a time
 * under file.c's writer's mark (ngx_http_hris_file_mark_t, in their zone).
 */

#ifndef _NGX_HTTP_HRIS_STATE_IF_H_INCLUDED_
#define _NGX_HTTP_HRIS_STATE_IF_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris.h"
#include "ngx_http_hris_fleet_links.h"
#include "ngx_http_hris_idem.h"


#define NGX_HTTP_HRIS_TOKEN_SKEW  30  /* s: an access token is renewed this
                                         long before its end, at most half
                                         its lifetime */


/*
 * The access token of the gate's account (auth "token"): from the state,
 * or this request renews it. The answers:
 *   NGX_OK        g->token is good: call with it;
 *   NGX_DECLINED  this request renews it (the single flight is its own):
 *                 it exchanges credentials, with g->refresh when the table
 *                 refreshes, then calls ngx_http_hris_state_token_commit()
 *                 or, when the exchange fails, _token_release();
 *   NGX_BUSY      another worker or gateway renews it: ask again in
 *                 ngx_http_hris_state_token_poll() ms;
 *   NGX_ABORT     the account needs re-authorization;
 *   NGX_DONE      an error was answered, g->final finalizes;
 *   NGX_AGAIN     the store answers later, by
 *                 ngx_http_hris_gate_token_ready(g, rc), rc one of above.
 * The embedded backend answers at once; Redis answers later unless the
 * worker keeps a good token.
 */
ngx_int_t ngx_http_hris_state_token_get(ngx_http_hris_gate_t *g);
ngx_msec_t ngx_http_hris_state_token_poll(ngx_http_hris_main_conf_t *hmcf);

/*
 * The exchange's answer, kept for every worker (and gateway): the access
 * token, good until "until", and the refresh token the provider rotated
 * (refresh->len 0: none). NGX_OK: kept, g->token is the new token.
 * NGX_AGAIN: ngx_http_hris_gate_token_ready() follows. NGX_DONE: an
 * error was answered (g->final).
 */
ngx_int_t ngx_http_hris_state_token_commit(ngx_http_hris_gate_t *g,
    ngx_str_t *token, time_t until, ngx_str_t *refresh);

/*
 * The provider refused the refresh token (invalid_grant): the account
 * needs re-authorization (NGX_ABORT, the mark set and told once), unless
 * another gateway renewed it meanwhile (Redis: NGX_AGAIN, and
 * ngx_http_hris_gate_token_ready() follows with the answer of a new
 * ngx_http_hris_state_token_get()).
 */
ngx_int_t ngx_http_hris_state_token_refused(ngx_http_hris_gate_t *g);

/* An exchange that will not finish: another may start one at once. */
void ngx_http_hris_state_token_release(ngx_http_hris_gate_t *g);

/* The provider refused g->token: it is renewed on the next pass. */
void ngx_http_hris_state_token_drop(ngx_http_hris_gate_t *g);

/* The provider handed a newer access token back with its answer. */
void ngx_http_hris_state_token_echo(ngx_http_hris_gate_t *g,
    ngx_str_t *token, time_t until);

/*
 * One call of the gate's account within its rate limit. The answers:
 *   NGX_OK        the slot is this call's in *wait ms (0: now);
 *   NGX_DECLINED  no slot yet: ask again in *wait ms;
 *   NGX_BUSY      the next slot is *wait ms away, further than
 *                 hris_retry_after_max;
 *   NGX_DONE      an error was answered (g->final);
 *   NGX_AGAIN     the store answers later, by
 *                 ngx_http_hris_gate_rate_ready(g, rc, wait).
 */
ngx_int_t ngx_http_hris_state_rate_reserve(ngx_http_hris_gate_t *g,
    ngx_msec_t *wait);

/* The zone's window: the embedded backend, and Redis's fallback. */
ngx_int_t ngx_http_hris_state_rate_zone(ngx_http_hris_gate_t *g,
    ngx_msec_t *wait);

/* The gate goes on from an answer that came later (ngx_http_hris_auth.c) */
void ngx_http_hris_gate_token_ready(ngx_http_hris_gate_t *g, ngx_int_t rc);
void ngx_http_hris_gate_rate_ready(ngx_http_hris_gate_t *g, ngx_int_t rc,
    ngx_msec_t wait);

/*
 * Claims a connect link for its completion. Embedded: NGX_OK (claimed),
 * NGX_DECLINED (used), NGX_BUSY or NGX_ERROR (no room in the zone), at
 * once. Redis: NGX_DONE, the request is held, and handler(r, data, rc)
 * follows with NGX_OK, NGX_DECLINED or NGX_ABORT (the store could not
 * answer); NGX_ERROR.
 */
ngx_int_t ngx_http_hris_state_link_claim(ngx_http_request_t *r, u_char *hash,
    time_t expires, ngx_http_hris_fleet_link_pt handler, void *data);

/*
 * Whether a link was used through another gateway, asked when it is opened
 * (ngx_http_hris_link_used() then reads the zone). Embedded: NGX_OK at
 * once. Redis: NGX_DONE, the request is held, and resume(r) runs again
 * once the zone knows; NGX_ERROR.
 */
ngx_int_t ngx_http_hris_state_link_check(ngx_http_request_t *r, u_char *hash,
    time_t expires, ngx_http_handler_pt resume);

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

/*
 * Claims an Idempotency-Key (ngx_http_hris_idem_begin() says what each
 * answer means). Embedded: the answer at once. Redis: NGX_AGAIN, and
 * handler(data, rc) follows with the answer, or NGX_ABORT when the store
 * could not answer; NGX_ABORT at once when it cannot be asked now.
 */
ngx_int_t ngx_http_hris_state_idem_begin(ngx_http_request_t *r,
    ngx_str_t *tenant, ngx_str_t *account, ngx_str_t *key, ngx_str_t *body,
    ngx_http_hris_idem_kept_t *kept, ngx_http_hris_idem_begun_pt handler,
    void *data);


#endif /* _NGX_HTTP_HRIS_STATE_IF_H_INCLUDED_ */
