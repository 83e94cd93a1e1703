/*
 * The Redis client (see ngx_http_hris_redis.h): the hris_redis directive,
 * its URL, and the scripts' digests.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>
#include <openssl/evp.h>

#include "ngx_http_hris_redis.h"
#include "ngx_http_hris_redis_client.h"


static char *ngx_http_hris_redis_tcp_url(ngx_conf_t *cf,
    ngx_http_hris_redis_conf_t *rcf, ngx_str_t *url, ngx_str_t *hostport);
static char *ngx_http_hris_redis_unix_url(ngx_conf_t *cf,
    ngx_http_hris_redis_conf_t *rcf, ngx_str_t *url, ngx_str_t *path);
static ngx_int_t ngx_http_hris_redis_unescape(ngx_pool_t *pool, u_char *p,
    u_char *last, ngx_str_t *out);


/*
 * hris_redis redis://[user:password@]host[:port][/db]
 * hris_redis unix:/path/to/socket[?db=N&user=U&password=P]
 *
 * No message below quotes the whole URL: it may hold a password.
 */

char *
ngx_http_hris_redis_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char                        *rv;
    ngx_str_t                   *value, url, rest;
    ngx_http_hris_redis_conf_t  *rcf, **slot;

    slot = (ngx_http_hris_redis_conf_t **) ((char *) conf + cmd->offset);
    if (*slot != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;
    url = value[1];

    rcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_hris_redis_conf_t));
    if (rcf == NULL) {
        return NGX_CONF_ERROR;
    }

    if (url.len > 8 && ngx_strncasecmp(url.data, (u_char *) "redis://", 8)
                       == 0)
    {
        rest.data = url.data + 8;
        rest.len = url.len - 8;
        rv = ngx_http_hris_redis_tcp_url(cf, rcf, &url, &rest);

    } else if (url.len > 5
               && ngx_strncasecmp(url.data, (u_char *) "unix:", 5) == 0)
    {
        rest.data = url.data + 5;
        rest.len = url.len - 5;
        rv = ngx_http_hris_redis_unix_url(cf, rcf, &url, &rest);

    } else if (url.len >= 9
               && ngx_strncasecmp(url.data, (u_char *) "rediss://", 9) == 0)
    {
        rv = "does not support TLS (rediss://) yet: use redis:// on a "
             "trusted network, or unix:/path/to/socket";

    } else {
        rv = "must be redis://[user:password@]host[:port][/db] or "
             "unix:/path/to/socket[?db=N&user=U&password=P]";
    }

    if (rv != NGX_CONF_OK) {
        return rv;
    }

    *slot = rcf;

    return NGX_CONF_OK;
}


static char *
ngx_http_hris_redis_tcp_url(ngx_conf_t *cf, ngx_http_hris_redis_conf_t *rcf,
    ngx_str_t *url, ngx_str_t *rest)
{
    u_char     *p, *last, *at, *colon, *slash;
    ngx_int_t   db;
    ngx_url_t   u;

    p = rest->data;
    last = p + rest->len;

    if (ngx_strlchr(p, last, '?') || ngx_strlchr(p, last, '#')) {
        return "takes no query in a redis:// URL: the database goes in "
               "the path (redis://host:6379/2)";
    }

    slash = ngx_strlchr(p, last, '/');
    if (slash == NULL) {
        slash = last;
    }

    /* the password may contain "@" when escaped as %40: the last one ends it */
    at = NULL;
    for (colon = p; colon < slash; colon++) {
        if (*colon == '@') {
            at = colon;
        }
    }

    if (at) {
        colon = ngx_strlchr(p, at, ':');

        if (colon == NULL) {
            return "takes a password as redis://:PASSWORD@host or "
                   "redis://USER:PASSWORD@host";
        }

        if (colon + 1 == at) {
            return "has an empty password: leave out \"user:password@\" "
                   "when Redis needs none";
        }

        if (ngx_http_hris_redis_unescape(cf->pool, p, colon, &rcf->user)
            != NGX_OK
            || ngx_http_hris_redis_unescape(cf->pool, colon + 1, at,
                                            &rcf->password)
               != NGX_OK)
        {
            return "has a bad %-escape in its user or password";
        }

        p = at + 1;
    }

    if (p == slash) {
        return "has no host: redis://host[:port][/db]";
    }

    if (slash + 1 < last) {
        db = ngx_atoi(slash + 1, last - slash - 1);
        if (db == NGX_ERROR || db > 0x7fffffff) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: \"hris_redis\" "
                               "database \"%*s\" is not a number: the path "
                               "of a redis:// URL is the database (0, 1, ...)",
                               (size_t) ngx_min(last - slash - 1, 32),
                               slash + 1);
            return NGX_CONF_ERROR;
        }
        rcf->db = db;
    }

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url.data = p;
    u.url.len = slash - p;
    u.default_port = NGX_HTTP_HRIS_REDIS_PORT;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.naddrs == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: \"hris_redis\": %s "
                           "in \"%V\"", u.err ? u.err : "host not found",
                           &u.url);
        return NGX_CONF_ERROR;
    }

    rcf->name = u.url;
    rcf->addrs = u.addrs;
    rcf->naddrs = u.naddrs;

    return NGX_CONF_OK;
}


static char *
ngx_http_hris_redis_unix_url(ngx_conf_t *cf, ngx_http_hris_redis_conf_t *rcf,
    ngx_str_t *url, ngx_str_t *rest)
{
    u_char     *p, *last, *q, *amp, *eq;
    ngx_int_t   db;
    ngx_str_t   name, value;
    ngx_url_t   u;

    p = rest->data;
    last = p + rest->len;

    q = ngx_strlchr(p, last, '?');
    if (q == NULL) {
        q = last;
    }

    if (p == q || *p != '/' || (q - p > 1 && p[1] == '/')) {
        return "takes a socket's absolute path: unix:/path/to/socket";
    }

    /* db=N, user=U, password=P */
    for (amp = q; amp < last; /* void */) {
        name.data = amp + 1;
        amp = ngx_strlchr(name.data, last, '&');
        if (amp == NULL) {
            amp = last;
        }

        eq = ngx_strlchr(name.data, amp, '=');
        if (eq == NULL) {
            eq = amp;
        }
        name.len = eq - name.data;

        if (ngx_http_hris_redis_unescape(cf->pool, eq < amp ? eq + 1 : amp,
                                         amp, &value)
            != NGX_OK)
        {
            return "has a bad %-escape in its query";
        }

        if (name.len == 2 && ngx_strncmp(name.data, "db", 2) == 0) {
            db = ngx_atoi(value.data, value.len);
            if (db == NGX_ERROR || db > 0x7fffffff) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: "
                                   "\"hris_redis\" database \"%*s\" is not "
                                   "a number (0, 1, ...)",
                                   ngx_min(value.len, 32), value.data);
                return NGX_CONF_ERROR;
            }
            rcf->db = db;

        } else if (name.len == 4 && ngx_strncmp(name.data, "user", 4) == 0) {
            rcf->user = value;

        } else if (name.len == 8
                   && ngx_strncmp(name.data, "password", 8) == 0)
        {
            rcf->password = value;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: \"hris_redis\" "
                               "unix: URL has an unknown parameter \"%*s\": "
                               "it takes db, user and password",
                               ngx_min(name.len, 32), name.data);
            return NGX_CONF_ERROR;
        }
    }

    if (rcf->user.len && rcf->password.len == 0) {
        return "names a user without a password";
    }

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url.data = url->data;
    u.url.len = q - url->data;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.naddrs == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: \"hris_redis\": %s "
                           "in \"%V\"", u.err ? u.err : "no address",
                           &u.url);
        return NGX_CONF_ERROR;
    }

    rcf->name = u.url;
    rcf->addrs = u.addrs;
    rcf->naddrs = u.naddrs;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_hris_redis_unescape(ngx_pool_t *pool, u_char *p, u_char *last,
    ngx_str_t *out)
{
    u_char  *dst, *src;

    for (src = p; src < last; src++) {
        if (*src == '%'
            && (last - src < 3 || !isxdigit(src[1]) || !isxdigit(src[2])))
        {
            return NGX_ERROR;
        }
    }

    out->data = ngx_pnalloc(pool, last - p + 1);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    src = p;
    dst = out->data;
    ngx_unescape_uri(&dst, &src, last - p, 0);
    out->len = dst - out->data;
    *dst = '\0';

    return NGX_OK;
}


/*
 * After the http block: nothing is contacted here. "nginx -t" and a
 * reload must not wait on a store that may be down (CONTRACT.md §9:
 * the gateway starts without it), so -t says when it will be checked.
 */

ngx_int_t
ngx_http_hris_redis_check(ngx_conf_t *cf, ngx_http_hris_redis_conf_t *rcf)
{
    if (rcf->timeout == 0 || rcf->connect_timeout == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: \"hris_redis_timeout\""
                           " and \"hris_redis_connect_timeout\" must be more "
                           "than 0");
        return NGX_ERROR;
    }

    if (ngx_test_config) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0, "hris: \"hris_redis\" %V is "
                           "not contacted by \"nginx -t\": workers connect at "
                           "run time and keep retrying; until it answers, "
                           "what needs the store answers 503", &rcf->name);
    }

    return NGX_OK;
}


void
ngx_http_hris_redis_script_init(ngx_http_hris_redis_script_t *script,
    char *text)
{
    unsigned int  len;
    u_char        md[EVP_MAX_MD_SIZE];

    script->text.data = (u_char *) text;
    script->text.len = ngx_strlen(text);

    EVP_Digest(script->text.data, script->text.len, md, &len, EVP_sha1(),
               NULL);
    ngx_hex_dump(script->sha1, md, 20);
}
