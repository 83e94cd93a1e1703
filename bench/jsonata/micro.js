'use strict';
// node micro.js PAGE [SECONDS] [ITERATIONS]
//
// The JSONata side of the pure-mapping comparison, in one process, no HTTP:
// maps the page (a BambooHR /v1/employees page) with employees.jsonata in a
// loop and prints the mean time per page of each step a gateway takes:
// JSON.parse of the upstream bytes, the mapping, JSON.stringify of the
// answer. After a warm-up (a third of SECONDS, so that V8 has optimized
// what it will), each step is timed alone for SECONDS (default 3).
// Last line, for bench/run: "MICRO records parse_us map_us stringify_us".
// With ITERATIONS, no warm-up and no timing: it maps the page that many
// times and exits (for instruction counts: run it under callgrind with 0
// and with N, the difference over N is the mapping).

const fs = require('fs');
const path = require('path');
const jsonata = require('jsonata');

async function main() {
    const [file, secondsArg, iterArg] = process.argv.slice(2);
    if (!file) {
        console.error('usage: node micro.js PAGE [SECONDS] [ITERATIONS]');
        process.exit(2);
    }
    const bytes = fs.readFileSync(file);
    const page = JSON.parse(bytes.toString('utf8'));
    const expr = jsonata(fs.readFileSync(path.join(__dirname, 'employees.jsonata'), 'utf8'));

    if (iterArg !== undefined) {
        for (let i = 0; i < Number(iterArg); i++) await expr.evaluate(page);
        return;
    }

    const seconds = Number(secondsArg || 3);
    const records = (await expr.evaluate(page)).length;
    const answer = { result: await expr.evaluate(page), next_cursor: null, result_count: records };
    let sink = 0;

    // mean µs per call of fn over about ms milliseconds
    async function time(fn, ms) {
        let n = 0;
        const t0 = process.hrtime.bigint(), end = t0 + BigInt(Math.round(ms * 1e6));
        let t;
        do {
            for (let i = 0; i < 10; i++) sink += (await fn()) ? 1 : 0;
            n += 10;
            t = process.hrtime.bigint();
        } while (t < end);
        return Number(t - t0) / 1e3 / n;
    }
    const steps = {
        parse: () => JSON.parse(bytes.toString('utf8')),
        map: () => expr.evaluate(page),
        stringify: () => JSON.stringify(answer),
    };
    for (const s in steps) await time(steps[s], seconds * 1000 / 3);
    const us = {};
    for (const s in steps) us[s] = await time(steps[s], seconds * 1000);

    console.log(`${records} records, ${bytes.length} bytes upstream, ${JSON.stringify(answer).length} bytes out (${sink > 0 ? 'ok' : '?'}):`);
    console.log(`  JSON.parse of the page   ${us.parse.toFixed(0).padStart(7)} µs`);
    console.log(`  map (employees.jsonata)  ${us.map.toFixed(0).padStart(7)} µs  (${(us.map / records).toFixed(1)} µs per record)`);
    console.log(`  JSON.stringify answer    ${us.stringify.toFixed(0).padStart(7)} µs`);
    console.log(`MICRO ${records} ${us.parse.toFixed(1)} ${us.map.toFixed(1)} ${us.stringify.toFixed(1)}`);
}

main().catch((e) => { console.error(e.stack || e); process.exit(1); });
