/* fuzz/admin_stubs.c: the world around the administration API's checks */

#ifndef _FUZZ_ADMIN_STUBS_H_INCLUDED_
#define _FUZZ_ADMIN_STUBS_H_INCLUDED_


extern ngx_uint_t                  fuzz_status;
extern json_t                     *fuzz_answer;
extern ngx_http_hris_main_conf_t   fuzz_hmcf;

void fuzz_setup(void);
void fuzz_request(ngx_http_request_t *r, ngx_pool_t *pool);


#endif /* _FUZZ_ADMIN_STUBS_H_INCLUDED_ */
