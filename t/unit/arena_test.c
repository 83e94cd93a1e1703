
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


/* the accessors as loads read jansson's own nodes as jansson does */

static void
accessors(void)
{
    json_t  *s, *arr;

    s = json_stringn("k\0v", 3);
    arr = json_pack("[s,i,n]", "x", 7);

    ok(ngx_http_hris_json_ours == 1
       && ngx_http_hris_string_value(s) == json_string_value(s)
       && ngx_http_hris_string_length(s) == 3
       && ngx_http_hris_array_size(arr) == 3
       && ngx_http_hris_array_at(arr, 0) == json_array_get(arr, 0)
       && ngx_http_hris_array_at(arr, 2) == json_null(),
       "jansson's layouts checked: its nodes read through loads alike");

    json_decref(s);
    json_decref(arr);
}


/* arrays made with room (ngx_http_hris_arena_array()), filled past it */

static void
arrays(ngx_http_hris_arena_t *a)
{
    json_t                 *arr, *want;
    ngx_uint_t              i, good;
    ngx_http_hris_arena_t  *prev;

    prev = ngx_http_hris_arena_enter(a);

    arr = ngx_http_hris_arena_array(10);
    want = json_array();
    good = (arr != NULL && json_array_size(arr) == 0
            && ngx_http_hris_arena_of(arr) == a);

    for (i = 0; i < 25; i++) {
        good = good
               && ngx_http_hris_array_append(arr, json_integer(i)) == 0
               && json_array_append_new(want, json_integer(i)) == 0;

        if (i == 9) {
            ok(good && json_array_size(arr) == 10
               && ((ngx_http_hris_json_array_t *) arr)->table
                  == (json_t **) ((ngx_http_hris_json_array_t *) arr + 1),
               "an array made with room for 10 takes 10 in its block");
        }
    }

    ok(good && json_equal(arr, want),
       "and 15 more as jansson grows it, in the same order");

    ngx_http_hris_arena_leave(prev);

    ok(ngx_http_hris_array_append(arr, NULL) == -1,
       "NULL appended: an error, as jansson's");

    json_decref(arr);
    json_decref(want);

    arr = ngx_http_hris_arena_array(0);
    ok(arr != NULL && json_is_array(arr) && json_array_size(arr) == 0
       && ngx_http_hris_arena_of(arr) == NULL,
       "outside a window: jansson's own array");
    json_decref(arr);
}


static void
one_pool(void)
{
    char                   *text;
    json_t                 *before, *ours, *theirs, *rec, *s;
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

    /* strings are one block each (ngx_http_hris_arena_string()) */
    s = json_object_get(rec, "workEmail");
    ok(json_is_string(s) && strcmp(json_string_value(s), "a150@example.com")
       == 0 && json_string_length(s) == 16
       && json_string_value(s) > (const char *) s
       && json_string_value(s) - (const char *) s <= 64,
       "a string read in the arena has its bytes right after its node");

    s = json_object_get(rec, "lastName");
    ok(json_string_length(s) == 8
       && memcmp(json_string_value(s), "O\xe2\x80\x99Neil", 9) == 0,
       "an unescaped string too, NUL-terminated");

    arrays(a);
    accessors();

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


/*
 * Thread arenas (a huge answer parsed by a thread of nginx's pool): the
 * tree lies in the range, blocks the builder frees are used again, any
 * thread's free() of a block leaves it to its arena, big blocks are
 * malloc()'s, and the chunks go only when the heap and the request's pool
 * are both gone, in either order, on either thread.
 */

typedef struct {
    char                   *text;
    json_t                 *tree;
    json_t                 *big;
    ngx_http_hris_arena_t  *arena;
    ngx_uint_t              reused;
} built_t;


static void *
build_elsewhere(void *data)
{
    int                     line, column;
    char                   *one, big[20000];
    json_t                 *v;
    built_t                *b = data;
    ngx_uint_t              i;
    const char             *err;
    ngx_http_hris_arena_t  *prev;

    b->arena = ngx_http_hris_arena_thread();
    prev = ngx_http_hris_arena_enter(b->arena);

    b->tree = ngx_http_hris_parse((const u_char *) b->text, strlen(b->text),
                                  &line, &column, &err, NULL);

    /* as a "where" does: 3,000 records of 400 bytes built and dropped */
    one = page(1, 3);
    b->reused = 1;

    for (i = 0; i < 3000; i++) {
        v = ngx_http_hris_parse((const u_char *) one, strlen(one), &line,
                                &column, &err, NULL);
        b->reused = b->reused && v
                    && (uintptr_t) v - (uintptr_t) b->arena
                       < ((size_t) 1 << 20);
        json_decref(v);
    }

    free(one);

    ngx_memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    b->big = json_string(big);

    ngx_http_hris_arena_leave(prev);

    return NULL;
}


static void *
destroy_elsewhere(void *data)
{
    ngx_destroy_pool(data);
    return NULL;
}


static void
thread_arena(ngx_uint_t heap_first)
{
    char                   *text;
    json_t                 *theirs, *rec;
    built_t                 b;
    pthread_t               t;
    ngx_pool_t             *heap, *req;
    ngx_pool_cleanup_t     *cln;
    ngx_http_hris_arena_t  *again;

    text = page(300, 11);
    b.text = text;

    pthread_create(&t, NULL, build_elsewhere, &b);
    pthread_join(t, NULL);

    theirs = json_loads(text, 0, NULL);

    if (heap_first) {
        ok(b.arena && b.tree && json_equal(b.tree, theirs)
           && ngx_http_hris_arena_in_range(b.tree)
           && ngx_http_hris_arena_in_range(
                  json_array_get(json_object_get(b.tree, "employees"), 299)),
           "a thread's tree in its thread arena equals jansson's");

        ok(b.reused, "what the thread frees in its window is used again");

        ok(b.big && ngx_http_hris_arena_in_range(b.big)
           && !ngx_http_hris_arena_in_range(json_string_value(b.big))
           && ngx_http_hris_arena_of(b.tree) == NULL,
           "big blocks are malloc()'s; the event loop's table knows none");
    }

    /* the walk's heap holds the tree; the request's pool borrows a record */
    heap = ngx_create_pool(1024, NULL);
    req = ngx_create_pool(1024, NULL);

    ok(ngx_http_hris_arena_bind(b.arena, heap) == NGX_OK
       && ngx_http_hris_arena_bind(b.arena, req) == NGX_OK,
       "the arena bound to the heap and to the request's pool");

    ngx_http_hris_arena_drop(b.arena);

    /* cleanups added after the binding still run before the drop */
    cln = ngx_pool_cleanup_add(heap, 0);
    cln->handler = decref;
    cln->data = b.tree;

    rec = json_array_get(json_object_get(b.tree, "employees"), 7);
    cln = ngx_pool_cleanup_add(req, 0);
    cln->handler = decref;
    cln->data = json_incref(rec);

    json_decref(b.big);

    if (heap_first) {
        pthread_create(&t, NULL, destroy_elsewhere, heap);
        pthread_join(t, NULL);

        /* the heap is gone: the record borrowed is whole */
        ok(json_equal(rec, json_array_get(json_object_get(theirs,
                                                          "employees"), 7)),
           "the heap gone in a thread, a borrowed record is still whole");

        again = ngx_http_hris_arena_thread();
        ok(again != b.arena, "its arena's chunks are not given out yet");
        ngx_http_hris_arena_drop(again);

        ngx_destroy_pool(req);

    } else {
        ngx_destroy_pool(req);

        again = ngx_http_hris_arena_thread();
        ok(again != b.arena, "the request's pool gone first: still held");
        ngx_http_hris_arena_drop(again);

        pthread_create(&t, NULL, destroy_elsewhere, heap);
        pthread_join(t, NULL);
    }

    /* the last chunk released is the first given out again */
    again = ngx_http_hris_arena_thread();
    ok(again == b.arena, heap_first
       ? "both gone: the chunks are given out again"
       : "both gone, the heap last in a thread: given out again");
    ngx_http_hris_arena_drop(again);

    json_decref(theirs);
    free(text);
}


/*
 * Pinned values (ngx_http_hris_arena_pin()): a list's slot records read
 * in a window with no block from malloc() may have their strings and
 * numbers pinned; references then leave them as they are, and the pool
 * takes their blocks (valgrind: no leak, no invalid free). A string too
 * long for the arena is counted as malloc()'s, so that a caller leaves
 * that parse unpinned and its values freed one by one.
 */

static ngx_uint_t
pin_page(ngx_pool_t *pool, const char *text, ngx_http_hris_slots_t *slots,
    ngx_uint_t *mallocs)
{
    int                         line, column;
    json_t                     *list, *v;
    ngx_str_t                   keys[1] = { ngx_string("employees") };
    ngx_uint_t                  i, j, pinned, before;
    const char                 *err;
    ngx_pool_cleanup_t         *cln;
    ngx_http_hris_arena_t      *a, *prev;
    ngx_http_hris_slot_rec_t  **rec;

    static ngx_str_t                  names[] = { ngx_string("id") };
    static ngx_int_t                  index[4];
    static ngx_http_hris_slot_keys_t  skeys;

    skeys.keys = names;
    skeys.n = 1;
    skeys.index = index;
    skeys.mask = 3;
    index[0] = index[1] = index[2] = index[3] = -1;
    index[ngx_http_hris_slot_hash(names[0].data, names[0].len) & 3] = 0;

    ngx_memzero(slots, sizeof(ngx_http_hris_slots_t));
    slots->keys = keys;
    slots->nkeys = 1;
    slots->slot_keys = &skeys;
    slots->pool = pool;

    a = ngx_http_hris_arena_get(pool);
    before = ngx_http_hris_arena_mallocs(a);

    prev = ngx_http_hris_arena_enter(a);
    list = ngx_http_hris_parse_slots((const u_char *) text, strlen(text),
                                     &line, &column, &err, NULL, slots);
    ngx_http_hris_arena_leave(prev);

    *mallocs = ngx_http_hris_arena_mallocs(a) - before;
    pinned = 0;

    /* the tree goes with the pool, the records' values by its cleanup */
    cln = ngx_pool_cleanup_add(pool, 0);
    if (list == NULL || cln == NULL) {
        abort();
    }

    cln->handler = decref;
    cln->data = list;

    if (*mallocs) {
        return 0;
    }

    rec = slots->all.elts;

    for (i = 0; i < slots->all.nelts; i++) {
        for (j = 0; j < rec[i]->n; j++) {
            v = rec[i]->members[j].value;
            ngx_http_hris_arena_pin(v);
            pinned += (json_is_string(v) || json_is_number(v))
                      && v->refcount == (size_t) -1;
        }
    }

    return pinned;
}


static void
pinned(void)
{
    char                      *text, *big, *p;
    json_t                    *v, *obj, *salary;
    ngx_uint_t                 n, mallocs;
    ngx_pool_t                *pool;
    ngx_http_hris_slots_t      slots;
    ngx_http_hris_slot_rec_t **rec;

    text = page(50, 3);
    pool = ngx_create_pool(1024, NULL);

    n = pin_page(pool, text, &slots, &mallocs);
    ok(mallocs == 0 && n == 50 * 6,
       "a page read in the arena: its 6 strings and numbers a record pinned");

    rec = slots.all.elts;
    v = rec[3]->slot[0];
    json_incref(v);
    json_decref(v);
    json_decref(v);
    ok(v->refcount == (size_t) -1 && strcmp(json_string_value(v), "3") == 0,
       "references leave a pinned value as it is");

    /* a record filled from its members: the object takes them */
    obj = rec[5]->obj;
    salary = json_real(35.5);
    ok(ngx_http_hris_slot_fill(rec[5]) == NGX_OK
       && json_equal(json_object_get(obj, "salary"), salary),
       "a pinned record fills its object");
    json_decref(salary);

    ngx_destroy_pool(pool);
    free(text);

    /* a string longer than the arena's blocks: malloc()'s, nothing pinned */
    big = malloc(20000);
    p = big + sprintf(big, "{\"employees\":[{\"id\":\"1\",\"note\":\"");
    memset(p, 'y', 12000);
    sprintf(p + 12000, "\"},{\"id\":\"2\"}]}");

    pool = ngx_create_pool(1024, NULL);
    n = pin_page(pool, big, &slots, &mallocs);
    ok(mallocs > 0 && n == 0,
       "a parse with a block from malloc(): counted, nothing pinned");
    ngx_destroy_pool(pool);
    free(big);
}


int
main(void)
{
    one_pool();
    many_pools();
    pinned();
    other_thread();

    ok(ngx_http_hris_arena_init_range() == NGX_OK
       && ngx_http_hris_arena_init_range() == NGX_OK,
       "the range of thread arenas is reserved once");

    thread_arena(1);
    thread_arena(0);

    /* the spare chunks and the table: valgrind finds no leak */
    ngx_http_hris_arena_done();

    printf("1..%d\n", tests);

    return failed ? 1 : 0;
}
