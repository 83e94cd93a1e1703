/*
 * Tests of src/ngx_http_hris_resp.c, the RESP2 encoder and reply parser
 * of the Redis client: every type, nesting, binary bulk strings, replies
 * cut anywhere (NGX_AGAIN, never a wrong answer), several in one buffer,
 * and the refusals (malformed, too long, too many, too deep). Prints TAP.
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_hris_resp.h"


static int  tests, failed;


static void
ok(int cond, const char *name)
{
    tests++;

    if (!cond) {
        failed++;
    }

    printf("%sok %d - %s\n", cond ? "" : "not ", tests, name);
}


/* parse the whole of s (len bytes): rc, and how far it went */

static ngx_int_t
parse(ngx_pool_t *pool, const char *s, size_t len,
    ngx_http_hris_redis_reply_t *r, size_t *used, const char **err)
{
    u_char     *buf, *p;
    ngx_int_t   rc;

    /* a copy of its exact length: valgrind sees any read past the end */
    buf = malloc(len ? len : 1);
    memcpy(buf, s, len);
    p = buf;
    *err = NULL;

    rc = ngx_http_hris_resp_parse(&p, buf + len, pool, r, err);
    *used = p - buf;

    free(buf);
    return rc;
}


/* every strict prefix of a whole reply is NGX_AGAIN */

static int
prefixes_again(const char *s, size_t len)
{
    size_t                        i, used;
    ngx_pool_t                   *pool;
    const char                   *err;
    ngx_http_hris_redis_reply_t   r;

    for (i = 0; i < len; i++) {
        pool = ngx_create_pool(1024, NULL);
        if (parse(pool, s, i, &r, &used, &err) != NGX_AGAIN || used != 0) {
            ngx_destroy_pool(pool);
            return 0;
        }
        ngx_destroy_pool(pool);
    }

    return 1;
}


#define S(lit)  lit, sizeof(lit) - 1


static void
whole(void)
{
    size_t                        used;
    ngx_pool_t                   *pool;
    const char                   *err;
    ngx_http_hris_redis_reply_t   r, *e;

    pool = ngx_create_pool(1024, NULL);

    ok(parse(pool, S("+OK\r\n"), &r, &used, &err) == NGX_OK
       && r.type == NGX_HTTP_HRIS_REDIS_STRING && r.str.len == 2
       && memcmp(r.str.data, "OK", 3) == 0 && used == 5,
       "simple string, null-terminated");

    ok(parse(pool, S("-ERR wrong\r\n"), &r, &used, &err) == NGX_OK
       && r.type == NGX_HTTP_HRIS_REDIS_ERROR
       && ngx_strcmp(r.str.data, "ERR wrong") == 0,
       "error reply: its text");

    ok(parse(pool, S(":-42\r\n"), &r, &used, &err) == NGX_OK
       && r.type == NGX_HTTP_HRIS_REDIS_INTEGER && r.integer == -42,
       "negative integer");

    ok(parse(pool, S(":999999999999999999\r\n"), &r, &used, &err) == NGX_OK
       && r.integer == 999999999999999999LL, "18-digit integer");

    ok(parse(pool, S("$5\r\na\r\nb\0\r\n"), &r, &used, &err) == NGX_OK
       && r.type == NGX_HTTP_HRIS_REDIS_BULK && r.str.len == 5
       && memcmp(r.str.data, "a\r\nb\0", 5) == 0 && used == 11,
       "bulk string with CRLF and NUL inside");

    ok(parse(pool, S("$0\r\n\r\n"), &r, &used, &err) == NGX_OK
       && r.type == NGX_HTTP_HRIS_REDIS_BULK && r.str.len == 0,
       "empty bulk string");

    ok(parse(pool, S("$-1\r\n"), &r, &used, &err) == NGX_OK
       && r.type == NGX_HTTP_HRIS_REDIS_NIL, "null bulk string");

    ok(parse(pool, S("*-1\r\n"), &r, &used, &err) == NGX_OK
       && r.type == NGX_HTTP_HRIS_REDIS_NIL, "null array");

    ok(parse(pool, S("*0\r\n"), &r, &used, &err) == NGX_OK
       && r.type == NGX_HTTP_HRIS_REDIS_ARRAY && r.nelts == 0,
       "empty array");

    ok(parse(pool, S("*3\r\n:1\r\n*2\r\n$1\r\nx\r\n$-1\r\n-E\r\n"), &r,
             &used, &err) == NGX_OK
       && r.type == NGX_HTTP_HRIS_REDIS_ARRAY && r.nelts == 3
       && r.elts[0].integer == 1
       && r.elts[1].type == NGX_HTTP_HRIS_REDIS_ARRAY
       && r.elts[1].nelts == 2
       && (e = &r.elts[1].elts[0])->type == NGX_HTTP_HRIS_REDIS_BULK
       && e->str.data[0] == 'x'
       && r.elts[1].elts[1].type == NGX_HTTP_HRIS_REDIS_NIL
       && r.elts[2].type == NGX_HTTP_HRIS_REDIS_ERROR,
       "nested array of mixed types");

    ok(parse(pool, S("+A\r\n:2\r\n"), &r, &used, &err) == NGX_OK
       && used == 4, "two replies: the first, and where the next starts");

    ok(parse(pool, S("+A\rB\r\n"), &r, &used, &err) == NGX_OK
       && r.str.len == 3, "a lone CR inside a simple string");

    ok(parse(NULL, S("*1\r\n:1\r\n"), NULL, &used, &err) == NGX_OK
       && used == 8, "measuring only (no pool)");

    ngx_destroy_pool(pool);
}


static void
cut(void)
{
    ok(prefixes_again(S("+OK\r\n")), "simple string cut anywhere: AGAIN");
    ok(prefixes_again(S(":123\r\n")), "integer cut anywhere: AGAIN");
    ok(prefixes_again(S("$5\r\nhello\r\n")), "bulk cut anywhere: AGAIN");
    ok(prefixes_again(S("*2\r\n*1\r\n$3\r\nabc\r\n:7\r\n")),
       "nested array cut anywhere: AGAIN");
}


static void
refused(void)
{
    size_t                        used, n;
    char                         *big;
    ngx_pool_t                   *pool;
    const char                   *err;
    ngx_http_hris_redis_reply_t   r;

    pool = ngx_create_pool(1024, NULL);

#define REFUSED(lit, name)                                                    \
    ok(parse(pool, S(lit), &r, &used, &err) == NGX_ERROR && err != NULL       \
       && used == 0, name)

    REFUSED("!x\r\n", "an unknown type");
    REFUSED("_\r\n", "RESP3 null");
    REFUSED(":12a\r\n", "an integer with a letter");
    REFUSED(":\r\n", "an empty integer");
    REFUSED(":-\r\n", "a lone minus");
    REFUSED(":1234567890123456789\r\n", "a 19-digit integer");
    REFUSED("$-2\r\n", "a bulk length below -1");
    REFUSED("$2\r\nabc\r\n", "a bulk string longer than its length");
    REFUSED("$4194305\r\n", "a bulk string over 4 MB");
    REFUSED("*-2\r\n", "an array size below -1");
    REFUSED("*131073\r\n", "an array over the element limit, at once");
    REFUSED("*2\r\n:1\r\n!\r\n", "a bad element in an array");

    ok(parse(pool, S("*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n"),
             &r, &used, &err) == NGX_OK, "arrays nested 8 deep: fine");
    REFUSED("*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n",
            "arrays nested 9 deep");

    /* 65536 + 65536 + 1 elements in all: over the limit of the whole */
    n = 0;
    big = malloc(2 * (8 + 65536 * 4) + 16);
    n += sprintf(big + n, "*2\r\n");
    for (int a = 0; a < 2; a++) {
        n += sprintf(big + n, "*65536\r\n");
        for (int i = 0; i < 65536; i++) {
            memcpy(big + n, ":0\r\n", 4);
            n += 4;
        }
    }
    ok(parse(pool, big, n, &r, &used, &err) == NGX_ERROR,
       "elements counted over all nested arrays");
    free(big);

#undef REFUSED

    ngx_destroy_pool(pool);
}


static void
encode(void)
{
    u_char     *p, buf[128];
    ngx_str_t   argv[3];

    argv[0].data = (u_char *) "SET";
    argv[0].len = 3;
    argv[1].data = (u_char *) "k\r\n";
    argv[1].len = 3;
    argv[2].data = (u_char *) "";
    argv[2].len = 0;

    p = ngx_http_hris_resp_write(buf, 3, argv);

    ok((size_t) (p - buf) == ngx_http_hris_resp_size(3, argv)
       && memcmp(buf, "$3\r\nSET\r\n$3\r\nk\r\n\r\n$0\r\n\r\n", p - buf) == 0,
       "arguments as bulk strings, binary-safe, size exact");
}


int
main(void)
{
    whole();
    cut();
    refused();
    encode();

    printf("1..%d\n", tests);

    return failed ? 1 : 0;
}
