# Regenerates the split of the shared zone's code from one
# src/ngx_http_hris_shm.c holding every function (as main had it before
# the split): run from the repository's root, after putting that whole
# file back in place (e.g. the other side of a merge: git show
# main:src/ngx_http_hris_shm.c > src/ngx_http_hris_shm.c). It rewrites
# src/ngx_http_hris_shm.c, _shm_token.c, _shm_rate.c, _shm_link.c,
# _shm_accounts.c and ngx_http_hris_shm.h, moving functions unchanged
# (a function new to that file goes by its name's prefix). Then put back
# the comment of ngx_http_hris_shm.c that names the other files (one
# paragraph; git diff shows it). A one-off for merging concurrent edits:
# delete tools/split/ once every branch has the split files.
import sys, re
sys.path.insert(0, __import__('os').path.dirname(__file__))
from split import chunks

src = 'src/ngx_http_hris_shm.c'
lines, res = chunks(src)
# contiguous ranges: each function takes the text after the previous one
ranges = {}
prev_end = None
first_start = res[0][1]
for name, s, e in res:
    start = s if prev_end is None else prev_end + 1
    ranges[name] = (start, e)
    prev_end = e

def text(names):
    out = []
    for n in names:
        s, e = ranges[n]
        out.append('\n'.join(lines[s:e + 1]))
    # each chunk begins with the blank lines before it
    return '\n'.join(out) + '\n'

c_end = next(i for i, l in enumerate(lines) if l.startswith(' */'))
head_comment = '\n'.join(lines[0:c_end + 1])          # the file's comment
t_start = next(i for i, l in enumerate(lines) if l.startswith('/*') and i > c_end)
p_start = next(i for i, l in enumerate(lines) if l.startswith('static ') and '(' in l)
p_end = next(i for i, l in enumerate(lines) if i > p_start and l == '' and lines[i + 1] == '')
types = '\n'.join(lines[t_start:p_start]).rstrip('\n')

core = ['ngx_http_hris_shm_add', 'ngx_http_hris_shm_init', 'ngx_http_hris_shm_insert',
        'ngx_http_hris_shm_node', 'ngx_http_hris_shm_alloc', 'ngx_http_hris_shm_store',
        'ngx_http_hris_shm_evict', 'ngx_http_hris_shm_evictable', 'ngx_http_hris_shm_free',
        'ngx_http_hris_shm_forget']
accounts = ['ngx_http_hris_shm_accounts_seed', 'ngx_http_hris_shm_accounts_gen',
            'ngx_http_hris_shm_accounts_get', 'ngx_http_hris_shm_accounts_copy',
            'ngx_http_hris_shm_accounts_set', 'ngx_http_hris_shm_snapshot']
tokens = ['ngx_http_hris_shm_tokens_seed', 'ngx_http_hris_token_get', 'ngx_http_hris_token_set',
          'ngx_http_hris_token_max', 'ngx_http_hris_needs_reauth', 'ngx_http_hris_token_rebase',
          'ngx_http_hris_token_fail', 'ngx_http_hris_token_drop', 'ngx_http_hris_refresh_get',
          'ngx_http_hris_refresh_set']
rate = ['ngx_http_hris_rate_reserve', 'ngx_http_hris_rate_last', 'ngx_http_hris_rate_take']
links = ['ngx_http_hris_hex_decode', 'ngx_http_hris_shm_links_seed', 'ngx_http_hris_link_insert',
         'ngx_http_hris_link_key', 'ngx_http_hris_link_find', 'ngx_http_hris_link_add',
         'ngx_http_hris_link_free', 'ngx_http_hris_links_expire', 'ngx_http_hris_link_used',
         'ngx_http_hris_link_claim', 'ngx_http_hris_link_release', 'ngx_http_hris_creds_refuse',
         'ngx_http_hris_creds_refused', 'ngx_http_hris_creds_clear']
for n in ranges:
    if n in core + accounts + tokens + rate + links:
        continue
    if n.startswith(('ngx_http_hris_creds_', 'ngx_http_hris_link')):
        links.append(n)
    elif n.startswith(('ngx_http_hris_token_', 'ngx_http_hris_refresh_')):
        tokens.append(n)
    elif n.startswith('ngx_http_hris_rate_'):
        rate.append(n)
    elif n.startswith('ngx_http_hris_shm_accounts'):
        accounts.append(n)
    else:
        core.append(n)
    print('new function', n)
allnames = core + accounts + tokens + rate + links
assert sorted(allnames) == sorted(ranges), set(ranges) ^ set(allnames)
# keep the original order within each file
order = [n for n, s, e in res]
for group in (core, accounts, tokens, rate, links):
    group.sort(key=order.index)

shared = ['ngx_http_hris_shm_node', 'ngx_http_hris_shm_alloc', 'ngx_http_hris_shm_store',
          'ngx_http_hris_shm_accounts_seed', 'ngx_http_hris_shm_tokens_seed',
          'ngx_http_hris_shm_links_seed', 'ngx_http_hris_link_insert',
          'ngx_http_hris_links_expire']

# the static prototypes block: lines 136..165, one declaration per statement
proto_text = '\n'.join(lines[p_start:p_end])
protos = [p.strip() + ';' for p in proto_text.split(';') if p.strip()]
def proto_name(p):
    return re.search(r'(ngx_http_hris_\w+)\(', p).group(1)
proto_of = {proto_name(p): p for p in protos}

def unstatic(body, names):
    for n in names:
        body = re.sub(r'^static ([^\n]*)\n' + n + r'\(', r'\1\n' + n + '(', body, flags=re.M)
    return body

def statics(group):
    ps = [proto_of[n] for n in group if n in proto_of and n not in shared]
    return ('\n'.join(ps) + '\n\n\n') if ps else ''

inc = '''#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris.h"
#include "ngx_http_hris_shm.h"
'''

def write(path, comment, group):
    body = unstatic(text(group), shared)
    with open(path, 'w') as f:
        f.write(comment + '\n\n' + inc + '\n\n' + statics(group) + body.lstrip('\n'))

write('src/ngx_http_hris_shm.c', head_comment, core)
write('src/ngx_http_hris_shm_accounts.c', '''/*
 * The shared zone (ngx_http_hris_shm.c): the accounts changed at run time,
 * as one JSON text with a generation number, and the snapshot of the zone
 * that the state file keeps.
 */''', accounts)
write('src/ngx_http_hris_shm_token.c', '''/*
 * The shared zone (ngx_http_hris_shm.c): per account, the access token and
 * its refresh single flight, the rotated refresh token and the
 * needs-reauth mark.
 */''', tokens)
write('src/ngx_http_hris_shm_rate.c', '''/*
 * The shared zone (ngx_http_hris_shm.c): per account, the rate-limit
 * window.
 */''', rate)
write('src/ngx_http_hris_shm_link.c', '''/*
 * The shared zone (ngx_http_hris_shm.c): the connect links completed,
 * until they expire, and the marks of credentials a provider refused
 * (hris_credentials_cooldown).
 */''', links)

shared_protos = []
for n in shared:
    p = proto_of[n]
    assert p.startswith('static ')
    shared_protos.append(p[len('static '):])

with open('src/ngx_http_hris_shm.h', 'w') as f:
    f.write('''/*
 * The shared zone's layout and the calls its files share (private to
 * ngx_http_hris_shm*.c; the rest of the module uses ngx_http_hris.h).
 */

#ifndef _NGX_HTTP_HRIS_SHM_H_INCLUDED_
#define _NGX_HTTP_HRIS_SHM_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_hris.h"

''' + types.strip('\n') + '\n\n\n' + '\n'.join(shared_protos) + '''


#endif /* _NGX_HTTP_HRIS_SHM_H_INCLUDED_ */
''')
