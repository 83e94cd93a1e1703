
/*
 * The per-request arena of jansson's allocations (src/ngx_http_hris_arena.c):
 * trees read inside a window equal jansson's own and belong to their
 * pool's arena; blocks from malloc() (made before any arena, between
 * windows, or when a tree built in a window is changed later) still go
 * to free(), and arena blocks never do (valgrind tells: an invalid free,
 * a leak or a use after free fails the run); a tree released by a pool
 * cleanup, added before or after the arena, is read before the chunks go;
 * many arenas released in any order keep the table of live chunks right.
 * Prints TAP.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <pthread.h>

#include "ngx_http_hris_arena.h"
#include "ngx_http_hris_parse.h"


#define NPOOLS  40


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


static void
decref(void *data)
{
    json_decref(data);
}


/* a page of n records of a dozen fields, as a provider sends them */

static char *
page(ngx_uint_t n, ngx_uint_t seed)
{
    char        *buf, *p;
    ngx_uint_t   i;

    buf = malloc(n * 400 + 64);
    if (buf == NULL) {
        return NULL;
    }

    p = buf + sprintf(buf, "{\"employees\":[");

    for (i = 0; i < n; i++) {
        p += sprintf(p, "%s{\"id\":\"%lu\",\"firstName\":\"Ann%lu\","
                     "\"lastName\":\"O\\u2019Neil\",\"workEmail\":"
                     "\"a%lu@example.com\",\"hireDate\":\"2020-01-%02lu\","
                     "\"salary\":%lu.5,\"active\":%s,\"manager\":null,"
                     "\"tags\":[\"a\",\"b\",%lu],\"address\":{\"city\":"
                     "\"Berlin\",\"zip\":\"10115\"}}",
                     i ? "," : "", (unsigned long) i,
                     (unsigned long) (i + seed), (unsigned long) i,
                     (unsigned long) (i % 28 + 1), (unsigned long) (i * 7),
                     (i & 1) ? "true" : "false", (unsigned long) seed);
    }

    sprintf(p, "]}");

    return buf;
}


static json_t *
read_in(ngx_pool_t *pool, const char *text)
{
    int                     line, column;
    json_t                 *v;
    const char             *err;
    ngx_http_hris_arena_t  *prev;

    prev = ngx_http_hris_arena_enter(ngx_http_hris_arena_get(pool));
    v = ngx_http_hris_parse((const u_char *) text, strlen(text), &line,
                            &column, &err, NULL);
    ngx_http_hris_arena_leave(prev);

    return v;
}


static void
one_pool(void)
{
    char                   *text;
    json_t                 *before, *ours, *theirs, *rec;
    ngx_pool_t             *pool;
    ngx_pool_cleanup_t     *cln;
    ngx_http_hris_arena_t  *a;

    /* made with malloc() before any arena: freed by free() later */
    before = json_pack("{s:s,s:[i,i]}", "k", "v", "l", 1, 2);

    text = page(200, 1);
    pool = ngx_create_pool(1024, NULL);

    /* a cleanup added before the arena exists still runs before it goes */
    cln = ngx_pool_cleanup_add(pool, 0);

    a = ngx_http_hris_arena_get(pool);
    ok(a != NULL && ngx_http_hris_arena_get(pool) == a,
       "a pool has one arena");

    ours = read_in(pool, text);
    theirs = json_loads(text, 0, NULL);

    ok(ours && theirs && json_equal(ours, theirs),
       "a tree read in the arena equals jansson's");
    ok(ngx_http_hris_arena_of(ours) == a, "its nodes belong to the arena");
    ok(ngx_http_hris_arena_of(theirs) == NULL
       && ngx_http_hris_arena_of(before) == NULL,
       "trees made outside a window do not");

    rec = json_array_get(json_object_get(ours, "employees"), 150);
    ok(ngx_http_hris_arena_of(rec) == a,
       "a record past the first chunk belongs to the arena too");

    /* changed outside the window: the new nodes come from malloc() */
    json_object_set_new(rec, "added", json_string("after the window"));
    json_array_append_new(json_object_get(ours, "employees"),
                          json_string("one more"));
    ok(ngx_http_hris_arena_of(json_object_get(rec, "added")) == NULL,
       "a node added after the window comes from malloc()");

    cln->handler = decref;
    cln->data = ours;

    /* and a cleanup added after it */
    cln = ngx_pool_cleanup_add(pool, 0);
    cln->handler = decref;
    cln->data = json_incref(rec);

    json_decref(theirs);
    json_decref(before);
    free(text);

    ngx_destroy_pool(pool);

    ok(ngx_http_hris_arena_of(rec) == NULL,
       "the arena's chunks are gone with its pool");
}


static void
many_pools(void)
{
    int                     good;
    char                   *text;
    json_t                 *tree[NPOOLS], *v;
    ngx_uint_t              i, j, k, order[NPOOLS];
    ngx_pool_t             *pool[NPOOLS];
    ngx_http_hris_arena_t  *arena[NPOOLS];

    good = 1;

    for (i = 0; i < NPOOLS; i++) {
        pool[i] = ngx_create_pool(1024, NULL);
        arena[i] = ngx_http_hris_arena_get(pool[i]);
        text = page(20 + i * 7, i);
        tree[i] = read_in(pool[i], text);
        v = json_loads(text, 0, NULL);
        good = good && tree[i] && json_equal(tree[i], v)
               && ngx_http_hris_arena_of(tree[i]) == arena[i];
        json_decref(v);
        free(text);

        /* a tree between the windows, from malloc() */
        v = json_pack("{s:i}", "between", (int) i);
        good = good && ngx_http_hris_arena_of(v) == NULL;
        json_decref(v);

        ngx_pool_cleanup_add(pool[i], 0)->handler = decref;
        pool[i]->cleanup->data = tree[i];
        order[i] = i;
    }

    ok(good, "40 arenas side by side, each tree in its own");

    /* release them in a shuffled order; the others stay whole */
    srand(13);

    for (i = NPOOLS - 1; i > 0; i--) {
        j = rand() % (i + 1);
        k = order[i];
        order[i] = order[j];
        order[j] = k;
    }

    good = 1;

    for (i = 0; i < NPOOLS; i++) {
        ngx_destroy_pool(pool[order[i]]);

        for (j = i + 1; j < NPOOLS; j++) {
            good = good && ngx_http_hris_arena_of(tree[order[j]])
                           == arena[order[j]]
                   && json_array_size(json_object_get(tree[order[j]],
                                                      "employees"))
                      == 20 + order[j] * 7;
        }
    }

    ok(good, "released in any order, the other arenas stay whole");

    /*
     * the chunks go back to malloc(), which hands their memory out again:
     * nothing may still take it for an arena's (a leak, valgrind says)
     */
    ngx_http_hris_arena_done();

    v = json_array();

    for (i = 0; i < 5000; i++) {
        json_array_append_new(v, json_sprintf("node %lu", (unsigned long) i));
    }

    good = 1;

    for (i = 0; i < 5000; i++) {
        good = good && ngx_http_hris_arena_of(json_array_get(v, i)) == NULL;
    }

    json_decref(v);

    ok(good, "memory of released chunks serves malloc() again, freed by free()");
}


static void *
parse_elsewhere(void *data)
{
    return json_loads(data, 0, NULL);
}


static void *
free_elsewhere(void *data)
{
    json_decref(data);
    return NULL;
}


/*
 * Another thread (nginx's thread pool parsing a huge answer) while the
 * event loop has a window open: its nodes come from malloc(), and it
 * frees them with free()
 */

static void
other_thread(void)
{
    char                   *text;
    void                   *ret;
    json_t                 *mine, *theirs;
    pthread_t               t;
    ngx_pool_t             *pool;
    ngx_http_hris_arena_t  *prev;

    text = page(300, 7);
    pool = ngx_create_pool(1024, NULL);

    prev = ngx_http_hris_arena_enter(ngx_http_hris_arena_get(pool));
    mine = json_pack("{s:s}", "in", "the window");

    pthread_create(&t, NULL, parse_elsewhere, text);
    pthread_join(t, &ret);
    theirs = ret;

    ngx_http_hris_arena_leave(prev);

    ok(ngx_http_hris_arena_of(mine) != NULL
       && theirs && ngx_http_hris_arena_of(theirs) == NULL
       && ngx_http_hris_arena_of(json_object_get(theirs, "employees"))
          == NULL,
       "a thread's tree, read while a window is open, is malloc()'s");

    pthread_create(&t, NULL, free_elsewhere, theirs);
    pthread_join(t, NULL);

    json_decref(mine);
    free(text);
    ngx_destroy_pool(pool);
}


int
main(void)
{
    one_pool();
    many_pools();
    other_thread();

    /* the spare chunks and the table: valgrind finds no leak */
    ngx_http_hris_arena_done();

    printf("1..%d\n", tests);

    return failed ? 1 : 0;
}
