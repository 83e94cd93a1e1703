'use strict';
// gateway.js: the peer's design in miniature, for bench/run: a Node HTTP
// gateway that answers GET /unified/hris/employees like the module does for
// BambooHR (one upstream call, the page mapped with employees.jsonata) and
// nothing else. node's http and cluster modules and jsonata, no framework.
//
//   node gateway.js --port P --upstream http://127.0.0.1:U [--workers 2]
//        [--api-key KEY] [--provider-key KEY] [--mapping FILE]
//
// --api-key: the Bearer key clients must send (none: any client);
// --provider-key: BambooHR's API key, sent as Basic auth upstream;
// --mapping: the table the upstream path and fields= come from
// (../../mappings/bamboohr.json), so the call is the module's, byte for byte.
//
// Answers {"result": [...], "next_cursor": ..., "result_count": N}; the
// cursor is BambooHR's own (the module signs its cursors, this does not).
// Prints "ready PORT" when every worker listens. SIGTERM or SIGINT stops it.

const cluster = require('cluster');
const fs = require('fs');
const http = require('http');
const path = require('path');

const opts = { port: 0, upstream: '', workers: 2, 'api-key': '', 'provider-key': '',
               mapping: path.join(__dirname, '..', '..', 'mappings', 'bamboohr.json') };
for (let i = 2; i < process.argv.length; i += 2) {
    const k = process.argv[i].replace(/^--/, '');
    if (!(k in opts) || i + 1 >= process.argv.length) {
        console.error(`gateway.js: unknown or incomplete option ${process.argv[i]}`);
        process.exit(2);
    }
    opts[k] = process.argv[i + 1];
}
if (!opts.port || !opts.upstream) {
    console.error('usage: node gateway.js --port P --upstream http://HOST:PORT [--workers N] ...');
    process.exit(2);
}

if (cluster.isPrimary) {
    const n = Number(opts.workers);
    let listening = 0;
    cluster.on('listening', () => {
        if (++listening === n) console.log(`ready ${opts.port}`);
    });
    cluster.on('exit', (w, code, signal) => {
        if (!stopping) {
            console.error(`gateway.js: worker ${w.process.pid} exited (${signal || code})`);
            process.exitCode = 1;
        }
    });
    let stopping = false;
    const stop = () => {
        stopping = true;
        for (const id in cluster.workers) cluster.workers[id].process.kill('SIGTERM');
        setTimeout(() => process.exit(0), 200).unref();
        cluster.disconnect(() => process.exit(0));
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    for (let i = 0; i < n; i++) cluster.fork();
} else {
    worker();
}

function worker() {
    const jsonata = require('jsonata');

    const expr = jsonata(fs.readFileSync(path.join(__dirname, 'employees.jsonata'), 'utf8'));
    const list = JSON.parse(fs.readFileSync(opts.mapping, 'utf8')).resources.employees.list;
    const up = new URL(opts.upstream);
    const agent = new http.Agent({ keepAlive: true });
    const upstreamHeaders = { Accept: 'application/json' };
    if (opts['provider-key']) {
        upstreamHeaders.Authorization =
            'Basic ' + Buffer.from(`${opts['provider-key']}:x`).toString('base64');
    }
    const bearer = opts['api-key'] ? `Bearer ${opts['api-key']}` : '';

    function reply(res, status, body) {
        const data = Buffer.from(JSON.stringify(body));
        res.writeHead(status, { 'Content-Type': 'application/json',
                                'Content-Length': data.length });
        res.end(data);
    }

    function fail(res, status, message) { reply(res, status, { error: { message } }); }

    // as the module builds it: the table's path and fields=, then the page
    function upstreamPath(limit, cursor) {
        let p = `${up.pathname.replace(/\/$/, '')}${list.path}?fields=${list.query.fields}` +
                `&page[limit]=${limit}`;
        if (cursor) p += `&page[after]=${encodeURIComponent(cursor)}`;
        return p;
    }

    const server = http.createServer((req, res) => {
        const url = new URL(req.url, 'http://gateway');
        if (url.pathname === '/ping') { res.writeHead(204); res.end(); return; }
        if (req.method !== 'GET' || url.pathname !== '/unified/hris/employees') {
            return fail(res, 404, 'not found');
        }
        if (bearer && req.headers.authorization !== bearer) {
            return fail(res, 401, 'invalid API key');
        }
        if (!url.searchParams.get('integrated_account_id')) {
            return fail(res, 400, 'integrated_account_id is required');
        }
        const limit = Number(url.searchParams.get('limit') || 100);
        if (!Number.isInteger(limit) || limit < 1 || limit > list.pagination.max_limit) {
            return fail(res, 400, 'invalid limit');
        }
        const remoteData = url.searchParams.get('remote_data') !== 'false';

        const call = http.get({ agent, host: up.hostname, port: up.port,
                                path: upstreamPath(limit, url.searchParams.get('cursor')),
                                headers: upstreamHeaders }, (ures) => {
            const chunks = [];
            ures.on('data', (c) => chunks.push(c));
            ures.on('end', () => {
                if (ures.statusCode !== 200) {
                    return fail(res, 502, `upstream answered ${ures.statusCode}`);
                }
                let page;
                try {
                    page = JSON.parse(Buffer.concat(chunks).toString('utf8'));
                } catch (e) {
                    return fail(res, 502, 'upstream answer is not JSON');
                }
                expr.evaluate(page).then((mapped) => {
                    const result = mapped || [];
                    if (!remoteData) for (const r of result) delete r.remote_data;
                    const next = page.meta && page.meta.page && page.meta.page.nextCursor;
                    reply(res, 200, { result, next_cursor: next || null,
                                      result_count: result.length });
                }, (e) => fail(res, 500, `mapping failed: ${e.message}`));
            });
            ures.on('error', (e) => fail(res, 502, `upstream: ${e.message}`));
        });
        call.on('error', (e) => fail(res, 502, `upstream: ${e.message}`));
    });
    server.keepAliveTimeout = 300000;
    server.listen(Number(opts.port), '127.0.0.1');

    process.on('SIGTERM', () => process.exit(0));
    process.on('disconnect', () => process.exit(0));
}
