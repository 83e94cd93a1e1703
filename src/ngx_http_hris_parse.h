/*
 * Reading a provider's JSON answer into a jansson tree (see
 * ngx_http_hris_parse.c): json_loadb() without flags, faster.
 */

#ifndef _NGX_HTTP_HRIS_PARSE_H_INCLUDED_
#define _NGX_HTTP_HRIS_PARSE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <jansson.h>


json_t *ngx_http_hris_parse(const u_char *data, size_t len, int *line,
    int *column, const char **error);


#endif /* _NGX_HTTP_HRIS_PARSE_H_INCLUDED_ */
