# As tools/split/shm.py, for src/ngx_http_hris_redis.c: rewrites
# src/ngx_http_hris_redis.c (the connection), _redis_conf.c (the
# directive), _redis_cmd.c (commands and replies) and
# ngx_http_hris_redis_client.h from one whole redis.c.
import sys, re
sys.path.insert(0, __import__('os').path.dirname(__file__))
from split import chunks

src = 'src/ngx_http_hris_redis.c'
lines, res = chunks(src)
order = [n for n, s, e in res]
ranges = {}
prev_end = None
for name, s, e in res:
    start = s if prev_end is None else prev_end + 1
    ranges[name] = (start, e)
    prev_end = e

# the "-- configuration --" banner sits before the directive's comment: keep it out
def text(names):
    out = []
    for n in names:
        s, e = ranges[n]
        out.append('\n'.join(lines[s:e + 1]))
    return '\n'.join(out) + '\n'

conf = order[order.index('ngx_http_hris_redis_directive'):order.index('ngx_http_hris_redis_init_process')]
conn = order[order.index('ngx_http_hris_redis_init_process'):order.index('ngx_http_hris_redis_write_handler')]
cmds = order[order.index('ngx_http_hris_redis_write_handler'):]
groups = {'conf': conf, 'conn': conn, 'cmds': cmds}

# static prototypes (the block after not_error up to the first banner)
i0 = next(i for i, l in enumerate(lines) if l.startswith('static ngx_str_t  ngx_http_hris_redis_not_error'))
i1 = next(i for i, l in enumerate(lines) if l.startswith('/* -- configuration'))
protos = [p.strip() + ';' for p in '\n'.join(lines[i0 + 1:i1]).split(';') if p.strip()]
def pname(p):
    return re.search(r'(ngx_http_hris_\w+)\(', p).group(1)
proto_of = {pname(p): p for p in protos}

bodies = {g: text(ns) for g, ns in groups.items()}
# statics called from another group's file
shared = []
for g, ns in groups.items():
    for n in ns:
        if n not in proto_of:
            continue
        for g2 in groups:
            if g2 != g and re.search(r'\b' + n + r'\b', bodies[g2]):
                shared.append(n)
                break
print('shared:', shared)

def unstatic(body):
    for n in shared:
        body = re.sub(r'^static ([^\n]*)\n' + n + r'\(', r'\1\n' + n + '(', body, flags=re.M)
    return body

def statics(ns):
    ps = [proto_of[n] for n in ns if n in proto_of and n not in shared]
    return ('\n'.join(ps) + '\n\n\n') if ps else ''

head = '\n'.join(lines[0:13])   # the file's comment
types = '\n'.join(lines[21:81])  # defines .. struct redis_s
not_error = lines[i0]

inc_common = '''#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>
#include <openssl/evp.h>

#include "ngx_http_hris_redis.h"
#include "ngx_http_hris_redis_client.h"
'''

def write(path, comment, g, extra=''):
    body = unstatic(bodies[g]).lstrip('\n')
    with open(path, 'w') as f:
        f.write(comment + '\n\n' + inc_common + '\n\n' + extra + statics(groups[g]) + body)

write('src/ngx_http_hris_redis_conf.c', '''/*
 * The Redis client (see ngx_http_hris_redis.h): the hris_redis directive,
 * its URL, and the scripts' digests.
 */''', 'conf')
write('src/ngx_http_hris_redis.c', head, 'conn')
write('src/ngx_http_hris_redis_cmd.c', '''/*
 * The Redis client (see ngx_http_hris_redis.h): commands queued, written,
 * their replies read and handed to their handlers, their deadlines.
 */''', 'cmds', not_error + '\n\n\n')

shared_protos = []
for n in shared:
    p = proto_of[n]
    shared_protos.append(p[len('static '):])
with open('src/ngx_http_hris_redis_client.h', 'w') as f:
    f.write('''/*
 * The Redis client's insides, shared by ngx_http_hris_redis*.c (the rest
 * of the module uses ngx_http_hris_redis.h).
 */

#ifndef _NGX_HTTP_HRIS_REDIS_CLIENT_H_INCLUDED_
#define _NGX_HTTP_HRIS_REDIS_CLIENT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>

#include "ngx_http_hris_redis.h"


''' + types.strip('\n') + '\n\n\n' + '\n'.join(shared_protos) + '''


#endif /* _NGX_HTTP_HRIS_REDIS_CLIENT_H_INCLUDED_ */
''')
