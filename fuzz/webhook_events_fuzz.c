/*
 * libFuzzer target of the provider webhook event reader (the static
 * ngx_http_hris_wh_emit() and its helpers of
 * src/ngx_http_hris_webhooks_in.c, included here so that they can be
 * reached): a verified body, parsed as JSON, read through a table's paths
 * made by hand: the events in "/events", each one's name in "/type", two
 * mapped names (one with its own id and changed fields, one with the
 * section's id and none), a "fields" map for the changed fields.
 *
 * What must hold: no crash or out-of-bounds; an event becomes a record
 * event exactly when its name (a string or an integer) is a mapped one
 * and its record id a non-empty string of fewer than 256 bytes without a
 * NUL, or an integer; the emitted data has the account, the table, the
 * mapped resource and that id; the changed fields are an array of at most
 * NGX_HTTP_HRIS_WH_FIELDS_MAX strings, each the unified name where the
 * table maps it, else the provider's as sent.
 */

#include "ngx_http_hris_webhooks_in.c"


ngx_module_t                   ngx_http_hris_module;

static ngx_uint_t              fuzz_emitted;
static const char             *fuzz_type;
static json_t                 *fuzz_data;
static ngx_http_hris_main_conf_t  fuzz_hmcf;


/* the record event is recorded, not queued */

void
ngx_http_hris_event_emit(ngx_http_hris_main_conf_t *hmcf, ngx_str_t *tenant,
    const char *type, json_t *data, ngx_log_t *log)
{
    if (hmcf != &fuzz_hmcf || fuzz_data != NULL) {
        abort();
    }

    fuzz_emitted++;
    fuzz_type = type;
    fuzz_data = data;
}


/* the rest of the handler's world is not reached from the event reader */

#define FUZZ_UNREACHED  { abort(); }

ngx_http_hris_account_t *ngx_http_hris_account_get(ngx_http_request_t *r,
    ngx_http_hris_main_conf_t *hmcf, ngx_str_t *id) FUZZ_UNREACHED
ngx_array_t *ngx_http_hris_credentials(ngx_http_request_t *r,
    ngx_http_hris_account_t *acc) FUZZ_UNREACHED
void ngx_http_hris_metrics_webhook_in(ngx_uint_t status) FUZZ_UNREACHED
ngx_http_hris_redis_cmd_t *ngx_http_hris_redis_command(
    ngx_http_hris_redis_t *rd, ngx_pool_t *pool, ngx_uint_t argc,
    ngx_str_t *argv, ngx_http_hris_redis_handler_pt handler, void *data)
    FUZZ_UNREACHED
ngx_int_t ngx_http_hris_request_body(ngx_http_request_t *r, ngx_str_t *body)
    FUZZ_UNREACHED
ngx_int_t ngx_http_hris_send_json(ngx_http_request_t *r, ngx_uint_t status,
    json_t *body, ngx_http_hris_spans_t *spans) FUZZ_UNREACHED
ngx_int_t ngx_http_hris_send_error(ngx_http_request_t *r, ngx_uint_t status,
    json_t *details, const char *fmt, ...) FUZZ_UNREACHED
ngx_int_t ngx_http_hris_json_cleanup(ngx_pool_t *pool, json_t *json)
    FUZZ_UNREACHED
ngx_uint_t ngx_http_hris_str_eq(ngx_str_t *a, ngx_str_t *b) FUZZ_UNREACHED
ngx_int_t ngx_http_hris_subpath(ngx_http_request_t *r, ngx_str_t *rest)
    FUZZ_UNREACHED
void ngx_http_finalize_request(ngx_http_request_t *r, ngx_int_t rc)
    FUZZ_UNREACHED
ngx_int_t ngx_http_read_client_request_body(ngx_http_request_t *r,
    ngx_http_client_body_handler_pt post_handler) FUZZ_UNREACHED
void ngx_http_run_posted_requests(ngx_connection_t *c) FUZZ_UNREACHED
ngx_shm_zone_t *ngx_shared_memory_add(ngx_conf_t *cf, ngx_str_t *name,
    size_t size, void *tag) FUZZ_UNREACHED
void ngx_shmtx_lock(ngx_shmtx_t *mtx) FUZZ_UNREACHED
void ngx_shmtx_unlock(ngx_shmtx_t *mtx) FUZZ_UNREACHED
void *ngx_slab_calloc(ngx_slab_pool_t *pool, size_t size) FUZZ_UNREACHED


void
ngx_log_error_core(ngx_uint_t level, ngx_log_t *log, ngx_err_t err,
    const char *fmt, ...)
{
    u_char   buf[NGX_MAX_ERROR_STR];
    va_list  args;

    va_start(args, fmt);
    (void) ngx_vslprintf(buf, buf + sizeof(buf), fmt, args);
    va_end(args);
}


static ngx_pool_t                *fuzz_pool;
static ngx_http_hris_table_t      fuzz_table;
static ngx_http_hris_webhooks_t   fuzz_wh;


static ngx_http_hris_path_t *
fuzz_path(char *text)
{
    ngx_str_t              s;
    ngx_http_hris_path_t  *path;

    path = ngx_pcalloc(fuzz_pool, sizeof(ngx_http_hris_path_t));
    s.data = (u_char *) text;
    s.len = ngx_strlen(text);

    if (path == NULL || ngx_http_hris_path_compile(fuzz_pool, &s, path)
                        != NGX_OK)
    {
        abort();
    }

    return path;
}


static void
fuzz_setup(void)
{
    ngx_http_hris_wh_event_t  *ev;

    if (fuzz_pool) {
        return;
    }

    fuzz_pool = ngx_create_pool(4096, NULL);
    if (fuzz_pool == NULL) {
        abort();
    }

    ngx_str_set(&fuzz_table.name, "sandboxhr");
    fuzz_table.webhooks = &fuzz_wh;

    fuzz_wh.events = fuzz_path("/events");
    fuzz_wh.event = *fuzz_path("/type");
    fuzz_wh.id = fuzz_path("/data/id");
    fuzz_wh.changed = fuzz_path("/data/changed");
    fuzz_wh.fields = json_pack("{s:s,s:s}", "firstName", "first_name",
                               "lastName", "last_name");

    if (fuzz_wh.fields == NULL
        || ngx_array_init(&fuzz_wh.map, fuzz_pool, 3,
                          sizeof(ngx_http_hris_wh_event_t))
           != NGX_OK)
    {
        abort();
    }

    ev = fuzz_wh.map.elts;
    fuzz_wh.map.nelts = 3;

    /* as the table compile leaves them: the section's paths filled in */
    ngx_str_set(&ev[0].name, "employee.updated");
    ev[0].type = "record.updated";
    ngx_str_set(&ev[0].resource, "employees");
    ev[0].id = fuzz_wh.id;
    ev[0].changed = fuzz_wh.changed;

    ngx_str_set(&ev[1].name, "employee.created");
    ev[1].type = "record.created";
    ngx_str_set(&ev[1].resource, "employees");
    ev[1].id = fuzz_path("/employee/0");
    ev[1].changed = NULL;

    ngx_str_set(&ev[2].name, "42");
    ev[2].type = "record.deleted";
    ngx_str_set(&ev[2].resource, "time_off_requests");
    ev[2].id = fuzz_path("/data/id");
    ev[2].changed = fuzz_path("/data/changed/fields");
}


/* the harness's own reading of a name or an id: NULL when it is none */

static const char *
fuzz_text(json_t *v, char *buf, size_t size)
{
    if (json_is_integer(v)) {
        snprintf(buf, size, "%lld", (long long) json_integer_value(v));
        return buf;
    }

    if (!json_is_string(v) || json_string_length(v) == 0
        || json_string_length(v) >= size
        || memchr(json_string_value(v), '\0', json_string_length(v)))
    {
        return NULL;
    }

    return json_string_value(v);
}


static void
fuzz_check(json_t *event, ngx_str_t *acc_id)
{
    char                      nbuf[128], ibuf[256];
    size_t                    i;
    json_t                   *v, *ch, *in, *one, *want;
    ngx_uint_t                k;
    const char               *name, *id;
    ngx_http_hris_wh_event_t *ev;

    name = fuzz_text(json_is_object(event) ? json_object_get(event, "type")
                                           : NULL, nbuf, sizeof(nbuf));
    ev = fuzz_wh.map.elts;

    for (k = 0; name && k < fuzz_wh.map.nelts; k++) {
        if (strcmp(name, (char *) ev[k].name.data) == 0) {
            break;
        }
    }

    id = NULL;

    if (name && k < fuzz_wh.map.nelts) {
        ev = &ev[k];
        id = fuzz_text(ngx_http_hris_path_get(ev->id, event, NULL), ibuf,
                       sizeof(ibuf));
    }

    if ((id != NULL) != (fuzz_data != NULL)) {
        fprintf(stderr, "an event %s\n", id ? "lost" : "made up");
        abort();
    }

    if (id == NULL) {
        return;
    }

    v = json_object_get(fuzz_data, "id");

    if (strcmp(fuzz_type, ev->type) != 0
        || !json_is_string(v) || strcmp(json_string_value(v), id) != 0
        || !json_is_string(json_object_get(fuzz_data, "resource"))
        || strcmp(json_string_value(json_object_get(fuzz_data, "resource")),
                  (char *) ev->resource.data) != 0
        || !json_is_string(json_object_get(fuzz_data,
                                           "integrated_account_id"))
        || json_string_length(json_object_get(fuzz_data,
                                              "integrated_account_id"))
           != acc_id->len)
    {
        fprintf(stderr, "an event with the wrong data\n");
        abort();
    }

    ch = json_object_get(fuzz_data, "changed_fields");
    in = ev->changed ? ngx_http_hris_path_get(ev->changed, event, NULL)
                     : NULL;

    if (ch == NULL) {
        if (json_is_array(in) || json_is_string(in)) {
            fprintf(stderr, "changed fields lost\n");
            abort();
        }
        return;
    }

    if (!json_is_array(ch) || json_array_size(ch) > NGX_HTTP_HRIS_WH_FIELDS_MAX
        || !(json_is_array(in) || json_is_string(in)))
    {
        fprintf(stderr, "changed fields not an array of what was sent\n");
        abort();
    }

    json_array_foreach(ch, i, one) {
        if (!json_is_string(one)) {
            fprintf(stderr, "a changed field not a string\n");
            abort();
        }
    }

    /* in order: the strings among the first FIELDS_MAX sent, mapped */
    k = 0;

    for (i = 0; i < NGX_HTTP_HRIS_WH_FIELDS_MAX; i++) {
        one = json_is_array(in) ? json_array_get(in, i) : (i ? NULL : in);
        if (one == NULL) {
            break;
        }

        if (!json_is_string(one)) {
            continue;
        }

        want = json_object_get(fuzz_wh.fields, json_string_value(one));

        if (!json_equal(json_array_get(ch, k), want ? want : one)) {
            fprintf(stderr, "a changed field not as sent or mapped\n");
            abort();
        }

        k++;
    }

    if (k != json_array_size(ch)) {
        fprintf(stderr, "changed fields made up\n");
        abort();
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t                    i;
    json_t                   *js, *list, *one;
    ngx_log_t                 log;
    ngx_connection_t          c;
    ngx_http_request_t        r;
    ngx_http_hris_account_t   acc;
    void                     *main_conf[1];

    fuzz_setup();

    js = json_loadb((const char *) data, size, 0, NULL);
    if (js == NULL) {
        return 0;
    }

    ngx_memzero(&log, sizeof(ngx_log_t));
    ngx_memzero(&c, sizeof(ngx_connection_t));
    ngx_memzero(&r, sizeof(ngx_http_request_t));
    ngx_memzero(&acc, sizeof(ngx_http_hris_account_t));
    c.log = &log;
    r.connection = &c;
    main_conf[0] = &fuzz_hmcf;
    r.main_conf = main_conf;
    ngx_str_set(&acc.id, "acc_1");
    ngx_str_set(&acc.tenant, "acme");
    acc.table = &fuzz_table;

    /* as the handler does: an array of events where the table says */
    list = ngx_http_hris_path_get(fuzz_wh.events, js, NULL);
    if (!json_is_array(list)) {
        list = NULL;
    }

    for (i = 0; i < (list ? json_array_size(list) : 1); i++) {
        one = list ? json_array_get(list, i) : js;
        fuzz_emitted = 0;
        fuzz_data = NULL;

        if (ngx_http_hris_wh_emit(&r, &acc, one) != fuzz_emitted) {
            fprintf(stderr, "emit's answer is not what it did\n");
            abort();
        }

        fuzz_check(one, &acc.id);
        json_decref(fuzz_data);
    }

    json_decref(js);

    return 0;
}
