/*
 * ngx_http_hris_module: shared types. The module turns nginx into a unified
 * HRIS API; see README.md for the picture and mappings/README.md for the
 * table format these structures are compiled from.
 */

#ifndef _NGX_HTTP_HRIS_H_INCLUDED_
#define _NGX_HTTP_HRIS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <jansson.h>
#if (NGX_THREADS)
#include <ngx_thread_pool.h>
#endif

#include "ngx_http_hris_file.h"
#include "ngx_http_hris_map.h"
#include "ngx_http_hris_parse.h"
#include "ngx_http_hris_template.h"
#include "ngx_http_hris_upstream.h"


#define NGX_HTTP_HRIS_MAX_LIMIT      500
#define NGX_HTTP_HRIS_DEFAULT_LIMIT  50
/* calls one field batch may take per upstream page */
#define NGX_HTTP_HRIS_MAX_BATCHES    16
#define NGX_HTTP_HRIS_LINK_HASH      16      /* bytes naming a connect link */

/*
 * hris_max_upstream_calls: a fan-out reads its whole parent list on every
 * unified page, 100 records a call at worst (Personio): 500 calls cover
 * about 48,000 employees.
 */
#define NGX_HTTP_HRIS_MAX_CALLS      500


typedef enum {
    NGX_HTTP_HRIS_AUTH_NONE = 0,
    NGX_HTTP_HRIS_AUTH_BASIC,
    NGX_HTTP_HRIS_AUTH_BEARER,
    NGX_HTTP_HRIS_AUTH_HEADER,
    NGX_HTTP_HRIS_AUTH_BODY,          /* fields merged into JSON bodies */
    NGX_HTTP_HRIS_AUTH_TOKEN          /* credentials exchanged for a token */
} ngx_http_hris_auth_type_e;


typedef enum {
    NGX_HTTP_HRIS_PAGE_NONE = 0,      /* one answer, sliced by the gateway */
    NGX_HTTP_HRIS_PAGE_CURSOR,        /* provider cursor at a JSON pointer */
    NGX_HTTP_HRIS_PAGE_OFFSET,        /* record offset and limit */
    NGX_HTTP_HRIS_PAGE_NUMBER         /* page number and page size */
} ngx_http_hris_page_type_e;


/*
 * A run-time account as the shared zone has it, changed after a given
 * generation (ngx_http_hris_shm_accounts_since()): its JSON text, or
 * text.data NULL for a run-time account deleted.
 */
typedef struct {
    ngx_str_t                     id;
    ngx_str_t                     text;
} ngx_http_hris_shm_change_t;


/* A name (header or query parameter) with a value template. */
typedef struct {
    ngx_str_t                    name;
    ngx_http_hris_tpl_t         *value;
} ngx_http_hris_param_t;


/* A list filter the client may send; its value reaches templates. */
typedef struct {
    ngx_str_t                    name;
    ngx_str_t                    dflt;
    ngx_regex_t                 *pattern;     /* NULL: anything */
    ngx_str_t                    pattern_src;
} ngx_http_hris_filter_t;


/* "where": a record is kept when the value at path is one of values. */
typedef struct {
    ngx_http_hris_path_t         path;
    json_t                      *values;      /* array */
} ngx_http_hris_where_t;


/* A JSON body: the table's JSON with each string a template. */
typedef struct {
    ngx_http_hris_path_t         parent;      /* the object or array */
    const char                  *key;         /* NULL: array element */
    size_t                       index;
    ngx_http_hris_tpl_t         *value;
} ngx_http_hris_body_slot_t;


typedef struct {
    json_t                      *json;
    ngx_array_t                  slots;       /* ngx_http_hris_body_slot_t */
} ngx_http_hris_body_t;


/* "for_each": one upstream call per value (constants or parent records). */
typedef struct {
    ngx_int_t                    resource;    /* schema index, or -1 */
    json_t                      *values;      /* constants, or NULL */
    ngx_http_hris_path_t         value;       /* in a parent record */
    ngx_uint_t                   max_calls;   /* per unified page */
} ngx_http_hris_for_each_t;


/*
 * "field_batches": a query parameter that lists the fields the provider
 * returns, more of them than it takes in one call. The list is split at
 * configuration time into calls of at most "max" fields; their answers
 * are merged record by record, matched by the value at "merge_on".
 */
typedef struct {
    ngx_str_t                    param;       /* the query parameter */
    ngx_uint_t                   max;         /* fields per call */
    ngx_uint_t                   fields;      /* in the whole list */
    ngx_uint_t                   n;           /* calls per upstream page */
    ngx_array_t                 *queries;     /* n param_t arrays */
    ngx_http_hris_path_t         merge_on;    /* in each record */
} ngx_http_hris_batches_t;


/* A provider error reported inside a 2xx body. */
typedef struct {
    json_t                      *statuses;    /* codes, or NULL: any */
    ngx_regex_t                 *message;     /* or NULL: any */
    ngx_uint_t                   http;        /* the status it stands for */
} ngx_http_hris_body_rule_t;


typedef struct {
    ngx_http_hris_path_t         when;
    json_t                      *when_values;
    ngx_http_hris_path_t         status;
    ngx_http_hris_path_t         message;
    ngx_array_t                  rules;       /* ngx_http_hris_body_rule_t */
    unsigned                     enabled:1;
} ngx_http_hris_body_errors_t;


/* An access token got by exchanging the account's credentials. */
typedef struct {
    ngx_str_t                    method;
    ngx_http_hris_tpl_t         *url;
    ngx_array_t                  query;       /* ngx_http_hris_param_t */
    ngx_array_t                  form;        /* ngx_http_hris_param_t */
    ngx_http_hris_body_t        *body;
    ngx_http_hris_tpl_t         *basic_user;
    ngx_http_hris_tpl_t         *basic_pass;
    ngx_http_hris_path_t         token;
    ngx_http_hris_path_t         expires_in;
    time_t                       ttl;         /* without expires_in */
    ngx_str_t                    header;      /* where the token goes */
    ngx_http_hris_tpl_t         *value;       /* e.g. "Bearer {{token}}" */
    ngx_str_t                    echo_header; /* a token handed back */
    ngx_array_t                  renew_on;    /* statuses: token refused */
    ngx_http_hris_path_t         refresh;     /* rotated refresh token */
    ngx_http_hris_path_t         reauth;      /* "needs_reauth" pointer */
    json_t                      *reauth_values;
    unsigned                     has_expires_in:1;
    unsigned                     has_refresh:1;  /* OAuth2 refresh_token */
    unsigned                     has_reauth:1;
} ngx_http_hris_token_spec_t;


/* One way a provider authenticates: a table may offer several. */
typedef struct {
    ngx_http_hris_auth_type_e    type;
    ngx_http_hris_tpl_t         *user;        /* basic */
    ngx_http_hris_tpl_t         *pass;        /* basic */
    ngx_http_hris_tpl_t         *bearer;      /* bearer */
    ngx_array_t                  headers;     /* header: param_t */
    ngx_http_hris_body_t        *body;        /* body */
    ngx_http_hris_token_spec_t  *token;       /* token */
    ngx_array_t                  requires;    /* credential keys (ngx_str_t) */
} ngx_http_hris_auth_t;


/* One unified output field and the expression that computes it. */
typedef struct {
    ngx_str_t                    name;        /* null-terminated */
    ngx_str_t                    key;         /* ,"name": escaped (record.h) */
    ngx_http_hris_expr_t        *expr;        /* NULL: not mapped */
    ngx_uint_t                   is_list;     /* unmapped value is [] */
} ngx_http_hris_field_t;


typedef struct {
    ngx_str_t                    method;      /* null-terminated */
    ngx_http_hris_tpl_t         *path;
    ngx_array_t                  query;       /* ngx_http_hris_param_t */
    ngx_http_hris_path_t         records;
    ngx_array_t                  where;       /* ngx_http_hris_where_t */
    ngx_http_hris_path_t         unnest;
    ngx_array_t                  filters;     /* ngx_http_hris_filter_t */
    ngx_array_t                 *fields;      /* NULL: the resource's */

    ngx_http_hris_body_t        *body;        /* JSON body, or NULL */
    ngx_http_hris_for_each_t    *for_each;    /* or NULL */
    ngx_http_hris_batches_t     *batches;     /* or NULL: one call */
    ngx_array_t                  empty;       /* statuses meaning "none" */

    ngx_http_hris_page_type_e    page_type;
    ngx_http_hris_path_t         page_next;   /* cursor */
    ngx_http_hris_path_t         page_total;  /* offset, number */
    ngx_uint_t                   page_first;  /* number: 0 or 1 */
    ngx_uint_t                   max_limit;

    unsigned                     has_unnest:1;
    unsigned                     has_total:1;
    unsigned                     from_list:1;
} ngx_http_hris_op_t;


/* How a unified value is checked (writes) and how it reaches a provider. */
typedef enum {
    NGX_HTTP_HRIS_IN_STRING = 0,
    NGX_HTTP_HRIS_IN_NUMBER,
    NGX_HTTP_HRIS_IN_INTEGER,
    NGX_HTTP_HRIS_IN_BOOLEAN,
    NGX_HTTP_HRIS_IN_DATE,            /* YYYY-MM-DD, or a timestamp's date */
    NGX_HTTP_HRIS_IN_DATETIME,        /* RFC 3339 */
    NGX_HTTP_HRIS_IN_REFERENCE,       /* {"id": "..."} */
    NGX_HTTP_HRIS_IN_OBJECT,
    NGX_HTTP_HRIS_IN_ARRAY,
    NGX_HTTP_HRIS_IN_SAME             /* "as": keep the checked value */
} ngx_http_hris_in_type_e;


/* One unified field a write takes (ngx_http_hris_table_write.c). */
typedef struct {
    ngx_str_t                    name;        /* null-terminated */
    ngx_http_hris_in_type_e      type;        /* what the client sends */
    ngx_http_hris_in_type_e      as;          /* what the provider gets */
    json_t                      *enum_map;    /* unified -> provider, or NULL */
    json_t                      *schema_enum; /* the unified values, or NULL */
    ngx_str_t                    format;      /* of dates: "DD.MM.YYYY" */
    unsigned                     required:1;
} ngx_http_hris_input_t;


typedef enum {
    NGX_HTTP_HRIS_WRITE_CREATE = 0,
    NGX_HTTP_HRIS_WRITE_UPDATE,
    NGX_HTTP_HRIS_WRITE_DELETE
} ngx_http_hris_write_kind_e;


typedef enum {
    NGX_HTTP_HRIS_BODY_JSON = 0,
    NGX_HTTP_HRIS_BODY_FORM,
    NGX_HTTP_HRIS_BODY_QUERY
} ngx_http_hris_body_as_e;


/*
 * A write operation (create, update, delete): the upstream call, built
 * from the unified input, and where the written record is afterwards: in
 * the answer ("records"), or read back ("then").
 */
typedef struct {
    ngx_http_hris_write_kind_e   kind;
    ngx_str_t                    method;      /* null-terminated */
    ngx_http_hris_tpl_t         *path;
    ngx_array_t                  query;       /* ngx_http_hris_param_t */
    ngx_http_hris_body_t        *body;        /* or NULL */
    ngx_http_hris_body_as_e      body_as;
    ngx_array_t                  inputs;      /* ngx_http_hris_input_t */

    ngx_http_hris_path_t         records;     /* the record in the answer */
    ngx_str_t                    id_header;   /* the new id: a header */
    ngx_regex_t                 *id_regex;    /* ... and its first group */
    ngx_http_hris_path_t         id_path;     /* ... or a pointer */

    ngx_http_hris_op_t          *then;        /* read back, or NULL */
    ngx_array_t                 *then_fields; /* its record's fields */
    ngx_array_t                 *fields;      /* the answer's record's */

    unsigned                     has_records:1;
    unsigned                     has_id_path:1;
    unsigned                     idempotent:1;  /* sending it twice is
                                                   harmless: the table says */
} ngx_http_hris_write_op_t;


typedef struct {
    ngx_str_t                    name;
    ngx_http_hris_op_t          *list;
    ngx_http_hris_op_t          *get;
    ngx_array_t                  fields;      /* ngx_http_hris_field_t */
    ngx_http_hris_write_op_t    *writes[3];   /* by write_kind, or NULL */
} ngx_http_hris_resource_t;


/* A unified resource as mappings/schema.json declares it. */
typedef struct {
    ngx_str_t                    name;
    ngx_array_t                  fields;      /* ngx_http_hris_field_t */
    json_t                      *types;       /* schema.json's "fields" */
} ngx_http_hris_schema_resource_t;


/* A context key a table declares: every one has a pattern. */
typedef struct {
    ngx_str_t                    name;
    ngx_regex_t                 *pattern;
    ngx_str_t                    pattern_src;
    ngx_uint_t                   required;
} ngx_http_hris_context_key_t;


/* A parsed http(s) URL, or an allowed prefix of URLs (url.c). */
typedef struct {
    ngx_str_t                    scheme;      /* "http" or "https" */
    ngx_str_t                    host;        /* as written; [v6] */
    in_port_t                    port;        /* 0: any (a prefix) */
    ngx_str_t                    path;        /* no trailing "/" */
} ngx_http_hris_url_t;


/*
 * A field of the connect form ("connect.form"): a credential, or a context
 * key the link did not give. Label, help and the rest are the table's
 * text, escaped when they are written into the page.
 */
typedef struct {
    ngx_str_t                    name;        /* letters, digits, "_" */
    ngx_str_t                    label;
    ngx_str_t                    help;        /* or empty */
    ngx_str_t                    placeholder; /* or empty */
    ngx_str_t                    autocomplete;
    ngx_str_t                    inputmode;   /* or empty */
    ngx_str_t                    pattern_error;
    ngx_regex_t                 *pattern;     /* or NULL */
    ngx_str_t                    pattern_src; /* for the browser, no ^ $ */
    unsigned                     secret:1;    /* a password input */
    unsigned                     context:1;   /* a context key */
} ngx_http_hris_connect_field_t;


/*
 * "connect.verify": the one call that checks typed credentials before the
 * account is stored: the token exchange of the table's auth, or a call
 * below the base URL.
 */
typedef struct {
    ngx_str_t                    method;      /* null-terminated */
    ngx_http_hris_tpl_t         *path;
    ngx_array_t                  query;       /* ngx_http_hris_param_t */
    ngx_http_hris_body_t        *body;        /* or NULL */
    ngx_array_t                  refused;     /* statuses (ngx_uint_t) */
    unsigned                     token:1;     /* the token exchange */
} ngx_http_hris_connect_verify_t;


/* A provider's compiled mapping table. */
typedef struct {
    ngx_str_t                    name;        /* of mappings/<name>.json */
    ngx_str_t                    file;
    ngx_http_hris_tpl_t         *base_url;
    ngx_array_t                  context;     /* ngx_http_hris_context_key_t */
    ngx_array_t                  headers;     /* ngx_http_hris_param_t */

    ngx_array_t                  auths;       /* ngx_http_hris_auth_t */
    ngx_http_hris_tpl_t         *token_url;   /* default token URL */
    ngx_array_t                  allowed_urls;   /* ngx_http_hris_tpl_t * */

    ngx_str_t                    display_name;   /* as people spell it */
    ngx_array_t                  connect_form;   /* connect_field_t */
    ngx_http_hris_connect_verify_t  *connect_verify;  /* or NULL */
    ngx_http_hris_tpl_t         *authorize_url;  /* OAuth2 code, or NULL */
    ngx_str_t                    scope;

    ngx_http_hris_body_errors_t  body_errors;
    ngx_uint_t                   rate_calls;  /* 0: no gateway limit */
    ngx_msec_t                   rate_window;

    ngx_array_t                  error_headers;  /* ngx_str_t */
    ngx_array_t                  error_paths;    /* ngx_http_hris_path_t */

    ngx_http_hris_resource_t   **resources;   /* by schema index, or NULL */
    void                        *webhooks;    /* ngx_http_hris_webhooks_t,
                                                 or NULL: none */
    json_t                      *root;        /* the JSON, overridden */
} ngx_http_hris_table_t;


typedef struct {
    ngx_str_t                    id;
    ngx_str_t                    tenant;
    ngx_str_t                    provider;
    ngx_http_hris_table_t       *table;
    ngx_http_hris_auth_t        *auth;        /* the table's, chosen */
    ngx_array_t                  context;     /* ngx_keyval_t */
    ngx_array_t                  credentials; /* ngx_keyval_t */
    ngx_str_t                    base_url;    /* rendered, no trailing / */
    ngx_str_t                    token_url;   /* rendered */
    ngx_uint_t                   rate_calls;  /* the table's, or own */
    ngx_msec_t                   rate_window;
    ngx_uint_t                   has_sealed;  /* sealed credentials */

    /* OAuth2 refresh: what the shared zone starts from */
    u_char                       refresh_base[32];
    ngx_str_t                    refresh_initial;  /* maybe sealed */
    ngx_str_t                    seed_token;       /* maybe sealed */
    time_t                       seed_expires;
    ngx_uint_t                   state_reauth;

    json_t                      *source;      /* the JSON it came from */
    const char                  *refused_url; /* run-time: a URL of it the
                                                 operator does not allow */
    unsigned                     runtime:1;   /* not the accounts file's */
    unsigned                     base_checked:1;  /* in this worker: its
                                                     refresh token against
                                                     the zone's (auth.c) */
} ngx_http_hris_account_t;


/* An app registered with a provider for the connect flow (OAuth2). */
typedef struct {
    ngx_str_t                    tenant;
    ngx_str_t                    provider;
    ngx_str_t                    client_id;
    ngx_str_t                    client_secret;  /* maybe sealed */
    ngx_str_t                    authorize_url;  /* or empty: the table's */
    ngx_str_t                    token_url;
    ngx_str_t                    base_url;
    ngx_str_t                    scope;
    ngx_uint_t                   has_scope;
} ngx_http_hris_oauth_app_t;


typedef enum {
    NGX_HTTP_HRIS_STORE_CREATE = 0,   /* the id must be free */
    NGX_HTTP_HRIS_STORE_REPLACE,      /* the tenant's account must exist */
    NGX_HTTP_HRIS_STORE_UPSERT,       /* either (the connect flow) */
    NGX_HTTP_HRIS_STORE_DELETE
} ngx_http_hris_store_op_e;


/*
 * A change refused because its tenant's run-time accounts would pass
 * their cap: in number (hris_tenant_accounts), or in bytes of the shared
 * zone (a quarter of hris_zone_size).
 */
#define NGX_HTTP_HRIS_OVER_COUNT  (-100)
#define NGX_HTTP_HRIS_OVER_BYTES  (-101)


typedef struct {
    u_char                       sha256[32];
    ngx_str_t                    tenant;
} ngx_http_hris_api_key_t;


typedef struct {
    ngx_str_t                    mappings;    /* directory */
    ngx_str_t                    accounts_file;
    ngx_str_t                    cursor_secret;
    ngx_str_t                    overrides_file;
    ngx_str_t                    secrets_key_file;
    ngx_str_t                    state_file;
    ngx_path_t                  *state_path;  /* hris_state_path */
    ngx_str_t                    key_file;    /* the cursor key's */
    ngx_uint_t                   key_new;     /* made, not yet written */
    json_t                      *state;       /* the file, as read */
    ngx_uint_t                   state_serial;  /* its last write's */
    ngx_http_hris_file_t         state_out;     /* its writer */
    void                        *thread_pool;
    u_char                       secrets_key[32];
    ngx_uint_t                   has_secrets_key;
    json_t                      *overrides;   /* by provider */

    ngx_array_t                  schema;      /* schema_resource_t */
    ngx_array_t                  tables;      /* ngx_http_hris_table_t */
    ngx_array_t                  accounts;    /* account_t, sorted by id */
    ngx_array_t                  api_keys;    /* api_key_t, sorted */
    ngx_array_t                  oauth_apps;  /* oauth_app_t */
    ngx_array_t                 *allowed_urls;  /* hris_allowed_urls */
    ngx_array_t                  file_urls;   /* the accounts file's URLs */
    void                        *store;       /* run-time accounts */
    ngx_str_t                    connect_url; /* hris_connect_url */
    ngx_str_t                    connect_location;  /* its location */

    ngx_str_t                    openapi;     /* the document */
    u_char                       cursor_key[32];
    ngx_uint_t                   cursor_key_ready;  /* in this worker */
    void                        *cursor_fetch;  /* cursor_key.c's */
    void                        *redis;       /* hris_redis: redis.h's conf */
    ngx_msec_t                   redis_timeout;
    ngx_msec_t                   redis_connect_timeout;
    ngx_shm_zone_t              *shm;
    size_t                       shm_size;
    ngx_uint_t                   tenant_accounts;   /* per tenant, at most */
    void                        *idem;        /* idem.c's: Idempotency-Keys */
    size_t                       idem_size;   /* hris_idempotency_zone_size */
    time_t                       credentials_cooldown;
    ngx_uint_t                   used;        /* a location serves it */
} ngx_http_hris_main_conf_t;


typedef struct {
    ngx_http_hris_upstream_conf_t  upstream;
    ngx_uint_t                     max_calls;  /* per unified request */
} ngx_http_hris_loc_conf_t;


typedef enum {
    NGX_HTTP_HRIS_GATE_TOKEN = 0,
    NGX_HTTP_HRIS_GATE_RATE,
    NGX_HTTP_HRIS_GATE_RATE_AGAIN       /* ask the store again */
} ngx_http_hris_gate_stage_e;


typedef struct ngx_http_hris_gate_s  ngx_http_hris_gate_t;

/* Credentials and rate limit before each upstream call (auth.c). */
struct ngx_http_hris_gate_s {
    ngx_http_request_t          *request;
    ngx_http_hris_main_conf_t   *hmcf;
    ngx_http_hris_loc_conf_t    *hlcf;
    ngx_http_hris_account_t     *account;
    ngx_str_t                    token;       /* for token auth */
    ngx_str_t                    refresh;     /* OAuth2 refresh token */
    void                       (*handler)(ngx_http_hris_gate_t *g);
    void                        *data;
    ngx_int_t                    rc;          /* NGX_OK or NGX_DONE */
    ngx_int_t                    final;       /* with NGX_DONE */
    ngx_event_t                  timer;
    ngx_msec_t                   waited;
    ngx_http_hris_gate_stage_e   stage;
    unsigned                     exchanging:1;
    unsigned                     renewed:1;   /* after a refused token */

    /* with hris_redis (ngx_http_hris_fleet.c) */
    void                        *fleet_cmd;   /* a script under way */
    ngx_str_t                    fleet_base;
    ngx_str_t                    fleet_sent;  /* refresh token, as stored */
    ngx_str_t                    fleet_at;    /* access token, as stored */
    ngx_str_t                    fleet_drop;  /* refused: forget it */
    time_t                       fleet_until;
    ngx_uint_t                   fleet_retried;
    u_char                       fleet_owner[32];  /* of the lock */
    unsigned                     fleet_locked:1;
};


extern ngx_module_t  ngx_http_hris_module;


/* ngx_http_hris_table.c */
ngx_int_t ngx_http_hris_schema_load(ngx_conf_t *cf,
    ngx_http_hris_main_conf_t *hmcf);
ngx_int_t ngx_http_hris_tables_load(ngx_conf_t *cf,
    ngx_http_hris_main_conf_t *hmcf);
ngx_http_hris_table_t *ngx_http_hris_table_find(
    ngx_http_hris_main_conf_t *hmcf, ngx_str_t *name);
ngx_int_t ngx_http_hris_schema_index(ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *name);
json_t *ngx_http_hris_record_map(ngx_array_t *fields, json_t *record,
    json_t *parent, ngx_uint_t remote_data, uint64_t *cover);

ngx_http_hris_table_t *ngx_http_hris_table_variant(ngx_conf_t *cf,
    ngx_http_hris_main_conf_t *hmcf, ngx_http_hris_table_t *base,
    json_t *overrides, ngx_str_t *what);

/* ngx_http_hris_secret.c */
ngx_int_t ngx_http_hris_secrets_key_load(ngx_conf_t *cf,
    ngx_http_hris_main_conf_t *hmcf);
ngx_uint_t ngx_http_hris_is_sealed(ngx_str_t *value);
ngx_int_t ngx_http_hris_secrets_check(ngx_conf_t *cf,
    ngx_http_hris_main_conf_t *hmcf, ngx_http_hris_account_t *acc);
ngx_int_t ngx_http_hris_secret_opens(ngx_conf_t *cf,
    ngx_http_hris_main_conf_t *hmcf, ngx_str_t *value);
ngx_array_t *ngx_http_hris_credentials(ngx_http_request_t *r,
    ngx_http_hris_account_t *acc);

ngx_int_t ngx_http_hris_secret_seal(ngx_pool_t *pool, u_char *key,
    ngx_str_t *in, ngx_str_t *out);
ngx_int_t ngx_http_hris_secret_unseal(ngx_pool_t *pool,
    ngx_http_hris_main_conf_t *hmcf, ngx_str_t *in, ngx_str_t *out);
ngx_int_t ngx_http_hris_secret_value(ngx_http_request_t *r,
    ngx_str_t *value, ngx_str_t *out);

/* ngx_http_hris_offload.c: the thread pool huge answers are parsed in */
ngx_int_t ngx_http_hris_offload_init_conf(ngx_conf_t *cf,
    ngx_http_hris_main_conf_t *hmcf);

/* ngx_http_hris_state.c */
ngx_int_t ngx_http_hris_state_load(ngx_conf_t *cf,
    ngx_http_hris_main_conf_t *hmcf);
ngx_int_t ngx_http_hris_state_account(ngx_conf_t *cf,
    ngx_http_hris_main_conf_t *hmcf, ngx_http_hris_account_t *acc);
void ngx_http_hris_state_save(ngx_http_hris_main_conf_t *hmcf,
    ngx_pool_t *pool, ngx_log_t *log);
void ngx_http_hris_state_exit(ngx_http_hris_main_conf_t *hmcf,
    ngx_log_t *log);
json_t *ngx_http_hris_state_tokens(ngx_http_hris_main_conf_t *hmcf);

/* ngx_http_hris_connect_verify.c: errors inside 2xx bodies (walk too) */
ngx_uint_t ngx_http_hris_body_status(ngx_pool_t *pool,
    ngx_http_hris_body_errors_t *be, json_t *body);

/* ngx_http_hris_statedir.c */
ngx_int_t ngx_http_hris_state_dir(ngx_conf_t *cf,
    ngx_http_hris_main_conf_t *hmcf);
ngx_int_t ngx_http_hris_cursor_key_load(ngx_conf_t *cf,
    ngx_http_hris_main_conf_t *hmcf);
ngx_int_t ngx_http_hris_state_dir_init(ngx_cycle_t *cycle,
    ngx_http_hris_main_conf_t *hmcf);

/* ngx_http_hris_override.c */
ngx_int_t ngx_http_hris_overrides_load(ngx_conf_t *cf,
    ngx_http_hris_main_conf_t *hmcf);
ngx_int_t ngx_http_hris_overrides_apply(ngx_conf_t *cf, json_t *root,
    json_t *ov, ngx_str_t *what);

/* ngx_http_hris_accounts.c */
ngx_int_t ngx_http_hris_accounts_load(ngx_conf_t *cf,
    ngx_http_hris_main_conf_t *hmcf);
ngx_http_hris_api_key_t *ngx_http_hris_api_key_find(
    ngx_http_hris_main_conf_t *hmcf, ngx_str_t *key);
ngx_http_hris_account_t *ngx_http_hris_account_find(
    ngx_http_hris_main_conf_t *hmcf, ngx_str_t *id);
ngx_int_t ngx_http_hris_authenticate(ngx_http_request_t *r,
    ngx_http_hris_main_conf_t *hmcf, ngx_str_t *tenant);
ngx_int_t ngx_http_hris_account_resolve(ngx_http_request_t *r,
    ngx_http_hris_main_conf_t *hmcf, ngx_http_hris_account_t **account);
ngx_int_t ngx_http_hris_account_compile(ngx_conf_t *cf,
    ngx_http_hris_main_conf_t *hmcf, json_t *js,
    ngx_http_hris_account_t *acc);
ngx_http_hris_oauth_app_t *ngx_http_hris_oauth_app_find(
    ngx_http_hris_main_conf_t *hmcf, ngx_str_t *tenant, ngx_str_t *provider);
ngx_uint_t ngx_http_hris_str_eq(ngx_str_t *a, ngx_str_t *b);
ngx_int_t ngx_http_hris_account_values(json_t *js, char *bad, size_t size);
size_t ngx_http_hris_printable(u_char *s);

/* ngx_http_hris_store.c */
ngx_int_t ngx_http_hris_store_compile(ngx_http_hris_main_conf_t *hmcf,
    ngx_pool_t *pool, json_t *js, ngx_http_hris_account_t *acc,
    ngx_str_t *err);
ngx_uint_t ngx_http_hris_account_id_valid(json_t *id);
ngx_int_t ngx_http_hris_store_check(ngx_http_request_t *r,
    ngx_http_hris_main_conf_t *hmcf, ngx_str_t *tenant, json_t *js,
    ngx_http_hris_account_t *acc, ngx_str_t *err);
ngx_http_hris_account_t *ngx_http_hris_account_get(ngx_http_request_t *r,
    ngx_http_hris_main_conf_t *hmcf, ngx_str_t *id);
ngx_int_t ngx_http_hris_account_list(ngx_http_request_t *r,
    ngx_http_hris_main_conf_t *hmcf, ngx_array_t *out);
ngx_int_t ngx_http_hris_store_change(ngx_http_request_t *r,
    ngx_http_hris_main_conf_t *hmcf, ngx_str_t *tenant, ngx_str_t *id,
    json_t *account, ngx_http_hris_store_op_e op);
void ngx_http_hris_account_event(ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *tenant, ngx_str_t *id, ngx_str_t *provider, const char *type,
    const char *reason, ngx_log_t *log);

/* ngx_http_hris_url.c */
ngx_int_t ngx_http_hris_url_parse(ngx_str_t *in, ngx_uint_t prefix,
    ngx_http_hris_url_t *u);
ngx_int_t ngx_http_hris_url_allowed(ngx_pool_t *pool,
    ngx_http_hris_main_conf_t *hmcf, ngx_http_hris_table_t *table,
    ngx_array_t *context, ngx_str_t *url);
ngx_uint_t ngx_http_hris_url_listed(ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *url);
ngx_int_t ngx_http_hris_link_url_allowed(ngx_http_request_t *r,
    ngx_http_hris_table_t *table, json_t *context, json_t *url);
const char *ngx_http_hris_account_urls(ngx_pool_t *pool,
    ngx_http_hris_main_conf_t *hmcf, ngx_http_hris_account_t *acc);
char *ngx_http_hris_allowed_urls(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_hris_file_urls(ngx_conf_t *cf,
    ngx_http_hris_main_conf_t *hmcf);

/* ngx_http_hris_auth.c */
ngx_int_t ngx_http_hris_gate_init(ngx_http_hris_gate_t *g,
    ngx_http_request_t *r, ngx_http_hris_account_t *account);
ngx_int_t ngx_http_hris_gate_pass(ngx_http_hris_gate_t *g);
void ngx_http_hris_gate_answered(ngx_http_hris_gate_t *g,
    ngx_http_hris_call_t *call);
void ngx_http_hris_gate_refused(ngx_http_hris_gate_t *g);
void ngx_http_hris_gate_credentials_refused(ngx_http_hris_gate_t *g,
    ngx_uint_t status);
ngx_uint_t ngx_http_hris_token_refused(ngx_http_hris_auth_t *auth,
    ngx_uint_t status);
void ngx_http_hris_gate_vars(ngx_http_hris_gate_t *g,
    ngx_http_hris_tpl_vars_t *vars);
ngx_http_hris_call_t *ngx_http_hris_token_call(ngx_http_request_t *r,
    ngx_http_hris_upstream_conf_t *conf, ngx_http_hris_token_spec_t *ts,
    ngx_http_hris_tpl_vars_t *vars);
ngx_int_t ngx_http_hris_apply_auth(ngx_http_hris_call_t *call,
    ngx_http_hris_account_t *account, ngx_http_hris_tpl_vars_t *vars);
ngx_int_t ngx_http_hris_basic(ngx_http_hris_call_t *call,
    ngx_http_hris_tpl_t *user, ngx_http_hris_tpl_t *pass,
    ngx_http_hris_tpl_vars_t *vars);

/* ngx_http_hris_fleet_accounts.c */
ngx_int_t ngx_http_hris_accounts_sync_init_process(ngx_cycle_t *cycle,
    ngx_http_hris_main_conf_t *hmcf);
void ngx_http_hris_accounts_publish(ngx_http_hris_main_conf_t *hmcf,
    ngx_pool_t *pool, ngx_str_t *id, json_t *value, ngx_str_t *tenant);

typedef void (*ngx_http_hris_accounts_claimed_pt)(ngx_http_request_t *r,
    void *data, ngx_int_t rc);

ngx_int_t ngx_http_hris_accounts_claim(ngx_http_request_t *r,
    ngx_str_t *tenant, ngx_str_t *id, size_t text_len,
    ngx_http_hris_accounts_claimed_pt handler, void *data);
void ngx_http_hris_accounts_unclaim(ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *id);

/* ngx_http_hris_fleet.c: the Redis backend of ngx_http_hris_state_if.c */
ngx_int_t ngx_http_hris_fleet_token(ngx_http_hris_gate_t *g);
ngx_int_t ngx_http_hris_fleet_commit(ngx_http_hris_gate_t *g,
    ngx_str_t *token, time_t until, ngx_str_t *refresh);
ngx_int_t ngx_http_hris_fleet_refused(ngx_http_hris_gate_t *g);
void ngx_http_hris_fleet_release(ngx_http_hris_gate_t *g);
void ngx_http_hris_fleet_drop(ngx_http_hris_gate_t *g);
void ngx_http_hris_fleet_echo(ngx_http_hris_gate_t *g, ngx_str_t *token,
    time_t until);
ngx_int_t ngx_http_hris_fleet_rate(ngx_http_hris_gate_t *g);

/* ngx_http_hris_cursor.c */
ngx_int_t ngx_http_hris_cursor_seal(ngx_pool_t *pool, u_char *key,
    ngx_str_t *binding, json_t *state, ngx_str_t *out);
ngx_int_t ngx_http_hris_cursor_open(ngx_pool_t *pool, u_char *key,
    ngx_str_t *binding, ngx_str_t *in, json_t **state);

/* ngx_http_hris_digest.c */
const EVP_MD *ngx_http_hris_sha256_md(void);
ngx_int_t ngx_http_hris_hmac_sha256(const u_char *key, size_t key_len,
    const u_char *msg, size_t len, u_char *mac);
void ngx_http_hris_digest_free(void);

/* ngx_http_hris_cursor_key.c */
ngx_int_t ngx_http_hris_cursor_key_init_process(ngx_cycle_t *cycle,
    ngx_http_hris_main_conf_t *hmcf);
ngx_int_t ngx_http_hris_cursor_key_wait(ngx_http_request_t *r,
    ngx_http_handler_pt resume);

/* ngx_http_hris_json.c */
ngx_int_t ngx_http_hris_json_write(ngx_pool_t *pool, json_t *v,
    ngx_http_hris_spans_t *spans, ngx_chain_t **out, size_t *len);

/* ngx_http_hris_response.c */
ngx_int_t ngx_http_hris_send_json(ngx_http_request_t *r, ngx_uint_t status,
    json_t *body, ngx_http_hris_spans_t *spans);
ngx_int_t ngx_http_hris_send_error(ngx_http_request_t *r, ngx_uint_t status,
    json_t *details, const char *fmt, ...);
ngx_int_t ngx_http_hris_json_cleanup(ngx_pool_t *pool, json_t *json);
ngx_int_t ngx_http_hris_header_out(ngx_http_request_t *r, const char *name,
    ngx_str_t *value);

/* ngx_http_hris_shm.c */
ngx_int_t ngx_http_hris_shm_add(ngx_conf_t *cf,
    ngx_http_hris_main_conf_t *hmcf);
ngx_int_t ngx_http_hris_token_get(ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *id, ngx_pool_t *pool, time_t skew, ngx_str_t *token);
ngx_int_t ngx_http_hris_token_set(ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *id, ngx_str_t *token, time_t expires);
size_t ngx_http_hris_token_max(void);
void ngx_http_hris_shm_forget(ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *id);
void ngx_http_hris_token_fail(ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *id);
ngx_uint_t ngx_http_hris_token_reconfigured(
    ngx_http_hris_main_conf_t *hmcf, ngx_str_t *id, u_char *base);
ngx_uint_t ngx_http_hris_token_rebase(ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *id, u_char *base);
void ngx_http_hris_token_drop(ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *id, ngx_str_t *token);
ngx_int_t ngx_http_hris_refresh_get(ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *id, u_char *base, ngx_str_t *initial, ngx_pool_t *pool,
    ngx_str_t *out, ngx_uint_t *fresh);
ngx_int_t ngx_http_hris_refresh_set(ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *id, ngx_str_t *refresh, ngx_uint_t needs_reauth);

/*
 * What the state file keeps, copied out of the zone (malloc'ed): the
 * tokens as records, each an ngx_http_hris_state_token_t followed by its
 * id, refresh token, access token and the state file's entry (saved),
 * the next one aligned; the links and the accounts as JSON text.
 */
typedef struct {
    u_char                      *tokens;
    size_t                       tokens_len;
    ngx_str_t                    links;
    ngx_str_t                    accounts;
} ngx_http_hris_state_snap_t;

typedef struct {
    time_t                       expires;
    size_t                       id_len;
    size_t                       refresh_len;
    size_t                       token_len;
    size_t                       saved_len;   /* or the rest is used */
    u_char                       base[32];
    unsigned                     needs_reauth:1;
} ngx_http_hris_state_token_t;

#define ngx_http_hris_state_token_size(t)                                   \
    ngx_align(sizeof(ngx_http_hris_state_token_t) + (t)->id_len             \
              + (t)->refresh_len + (t)->token_len + (t)->saved_len,         \
              sizeof(void *))

ngx_int_t ngx_http_hris_shm_snapshot(ngx_http_hris_main_conf_t *hmcf,
    ngx_http_hris_state_snap_t *snap, ngx_uint_t *serial);
size_t ngx_http_hris_slab_size(size_t size);
ngx_uint_t ngx_http_hris_shm_accounts_gen(ngx_http_hris_main_conf_t *hmcf);
ngx_int_t ngx_http_hris_shm_accounts_since(ngx_http_hris_main_conf_t *hmcf,
    ngx_pool_t *pool, ngx_uint_t gen, ngx_array_t *changes, ngx_uint_t *now,
    ngx_uint_t *full);
ngx_int_t ngx_http_hris_shm_account_get(ngx_http_hris_main_conf_t *hmcf,
    ngx_pool_t *pool, ngx_str_t *id, ngx_str_t *text, ngx_uint_t *version);
ngx_int_t ngx_http_hris_shm_account_set(ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *id, ngx_uint_t version, ngx_str_t *text, ngx_str_t *tenant,
    ngx_uint_t capped);
ngx_int_t ngx_http_hris_shm_tenant_room(ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *tenant, ngx_str_t *id);
size_t ngx_http_hris_shm_tenant_share(ngx_http_hris_main_conf_t *hmcf);
size_t ngx_http_hris_shm_account_bytes(size_t id_len, size_t text_len);
void ngx_http_hris_shm_tenant_digest(ngx_str_t *tenant, u_char *out);

/* a tenant's digest in the zone's entries: SHA-256's first bytes */
#define NGX_HTTP_HRIS_TENANT_DIGEST  8
ngx_uint_t ngx_http_hris_needs_reauth(ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *id);
ngx_int_t ngx_http_hris_rate_reserve(ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *id, ngx_uint_t calls, ngx_msec_t window, ngx_msec_t max_wait,
    ngx_msec_t *wait);
ngx_int_t ngx_http_hris_creds_refuse(ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *id, u_char *creds, time_t until, ngx_uint_t status);
ngx_int_t ngx_http_hris_creds_refused(ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *id, u_char *creds, time_t *until, ngx_uint_t *status);
ngx_uint_t ngx_http_hris_creds_clear(ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *id, u_char *creds);
ngx_uint_t ngx_http_hris_creds_reset(ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *id);
ngx_uint_t ngx_http_hris_link_used(ngx_http_hris_main_conf_t *hmcf,
    u_char *hash);
ngx_int_t ngx_http_hris_link_claim(ngx_http_hris_main_conf_t *hmcf,
    u_char *hash, time_t expires);
void ngx_http_hris_link_release(ngx_http_hris_main_conf_t *hmcf,
    u_char *hash);

/* ngx_http_hris_body.c */
ngx_http_hris_body_t *ngx_http_hris_body_compile(ngx_pool_t *pool,
    json_t *spec, const char **err);
json_t *ngx_http_hris_body_render(ngx_pool_t *pool,
    ngx_http_hris_body_t *body, ngx_http_hris_tpl_vars_t *vars);
ngx_int_t ngx_http_hris_body_merge(ngx_pool_t *pool, json_t *target,
    ngx_http_hris_body_t *fields, ngx_http_hris_tpl_vars_t *vars);

/* ngx_http_hris_table_write.c */
extern const char *ngx_http_hris_write_names[];
const char *ngx_http_hris_in_type_name(ngx_http_hris_in_type_e type);

/* ngx_http_hris_openapi.c */
ngx_int_t ngx_http_hris_openapi_build(ngx_conf_t *cf,
    ngx_http_hris_main_conf_t *hmcf, json_t *schema_res);
ngx_int_t ngx_http_hris_openapi_send(ngx_http_request_t *r);

/* ngx_http_hris_unified.c, ngx_http_hris_proxy.c */
ngx_int_t ngx_http_hris_unified_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_hris_proxy_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_hris_admin_handler(ngx_http_request_t *r);
json_t *ngx_http_hris_admin_account(ngx_http_request_t *r,
    ngx_http_hris_account_t *acc);
ngx_int_t ngx_http_hris_connect_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_hris_connect_link(ngx_http_request_t *r,
    ngx_str_t *tenant, json_t *body);

/*
 * ngx_http_hris_metrics.c, ngx_http_hris_variables.c,
 * ngx_http_hris_trace.c: what a request did, for /metrics, the log
 * variables and trace context. The hooks never fail a request: without
 * memory for its record, a request is only not observed.
 */
#define NGX_HTTP_HRIS_API_UNIFIED  0
#define NGX_HTTP_HRIS_API_PROXY    1
#define NGX_HTTP_HRIS_API_ADMIN    2
#define NGX_HTTP_HRIS_API_CONNECT  3

void ngx_http_hris_observe(ngx_http_request_t *r, ngx_uint_t api);
void ngx_http_hris_observe_provider(ngx_http_request_t *r,
    ngx_http_hris_table_t *table, ngx_str_t *account);
void ngx_http_hris_observe_resource(ngx_http_request_t *r, ngx_int_t index);
void ngx_http_hris_observe_error(ngx_http_request_t *r, u_char *msg,
    size_t len);
void ngx_http_hris_observe_try(ngx_http_hris_call_t *call, uint64_t us,
    ngx_uint_t retrying);
uint64_t *ngx_http_hris_metrics_cover(ngx_http_request_t *r,
    ngx_uint_t fields);
void ngx_http_hris_metrics_token(ngx_http_request_t *r,
    ngx_http_hris_call_t *call, ngx_int_t rc);
ngx_int_t ngx_http_hris_trace_headers(ngx_http_hris_call_t *call);

/* helpers shared by the handlers */
ngx_int_t ngx_http_hris_arg(ngx_http_request_t *r, const char *name,
    ngx_str_t *value);
ngx_int_t ngx_http_hris_subpath(ngx_http_request_t *r, ngx_str_t *rest);
ngx_int_t ngx_http_hris_request_body(ngx_http_request_t *r, ngx_str_t *body);
ngx_int_t ngx_http_hris_admin_json(ngx_http_request_t *r, json_t **body);
ngx_int_t ngx_http_hris_admin_over(ngx_http_request_t *r, ngx_int_t rc);
ngx_int_t ngx_http_hris_call_status_error(ngx_http_request_t *r,
    ngx_http_hris_call_t *call, ngx_http_hris_table_t *table);
ngx_int_t ngx_http_hris_upstream_json(ngx_http_request_t *r,
    ngx_http_hris_call_t *call, json_t **body, ngx_http_hris_spans_t *spans);
ngx_int_t ngx_http_hris_json_text(ngx_pool_t *pool, json_t *v,
    ngx_str_t *out);


#endif /* _NGX_HTTP_HRIS_H_INCLUDED_ */
