# Top-level functions of a C file in nginx's style, with the comment
# above each (used by tools/split/shm.py and redis.py).
"""Split a C file into top-level chunks: each function with the comment
and blank lines before it. Prints name, start, end lines."""
import re, sys

def chunks(path):
    lines = open(path).read().split('\n')
    # a function definition: a line at col 0 starting with an identifier and '(' whose
    # previous line is a type (static ..., ngx_int_t, ...), body until a line '}'
    res = []
    i = 0
    n = len(lines)
    while i < n:
        m = re.match(r'^(ngx_http_hris_\w+)\(', lines[i])
        if m and i > 0 and lines[i-1] and not lines[i-1].startswith((' ', '/', '*', '#')) \
                and not lines[i-1].rstrip().endswith(';'):
            name = m.group(1)
            start = i - 1          # the type line
            # comment above: walk back over a comment block and blanks
            j = start - 1
            while j >= 0 and lines[j] == '':
                j -= 1
            if j >= 0 and lines[j].rstrip().endswith('*/'):
                k = j
                while not lines[k].lstrip().startswith('/*'):
                    k -= 1
                cstart = k
            else:
                cstart = start
            # body end
            e = i
            while lines[e] != '}':
                e += 1
            res.append((name, cstart, e))
            i = e + 1
        else:
            i += 1
    return lines, res

if __name__ == '__main__':
    lines, res = chunks(sys.argv[1])
    for name, s, e in res:
        print(f'{s+1:5d} {e+1:5d} {e-s+1:4d} {name}')
