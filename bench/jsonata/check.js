'use strict';
// node check.js PAGE MODULE_ANSWER [GATEWAY_ANSWER]
//
// PAGE: a BambooHR /v1/employees page; MODULE_ANSWER: the module's unified
// answer for it (remote_data included). Maps PAGE with employees.jsonata
// and compares every record with the module's, keys in order, values
// deeply; with GATEWAY_ANSWER (gateway.js's answer for the same page), that
// one must hold the same records too. Exits 1 at the first difference,
// naming the record and the key.

const fs = require('fs');
const path = require('path');
const jsonata = require('jsonata');

function diff(a, b, where) {    // first difference as a string, or null
    if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') {
        return a === b ? null : `${where}: ${JSON.stringify(a)} != ${JSON.stringify(b)}`;
    }
    if (Array.isArray(a) !== Array.isArray(b)) {
        return `${where}: ${JSON.stringify(a)} != ${JSON.stringify(b)}`;
    }
    if (Array.isArray(a)) {
        if (a.length !== b.length) return `${where}: ${a.length} elements != ${b.length}`;
        for (let i = 0; i < a.length; i++) {
            const d = diff(a[i], b[i], `${where}[${i}]`);
            if (d) return d;
        }
        return null;
    }
    const ka = Object.keys(a), kb = Object.keys(b);
    if (ka.join(',') !== kb.join(',')) {
        return `${where}: keys [${ka}] != [${kb}]`;
    }
    for (const k of ka) {
        const d = diff(a[k], b[k], `${where}.${k}`);
        if (d) return d;
    }
    return null;
}

function compare(name, got, want) {
    if (!Array.isArray(got) || got.length !== want.length) {
        return `${name}: ${Array.isArray(got) ? got.length : typeof got} records, the module has ${want.length}`;
    }
    for (let i = 0; i < want.length; i++) {
        const d = diff(got[i], want[i], `record ${i} (employeeId ${want[i].remote_id})`);
        if (d) return `${name} (left) vs module (right): ${d}`;
    }
    return null;
}

async function main() {
    const [pageFile, moduleFile, gatewayFile] = process.argv.slice(2);
    if (!pageFile || !moduleFile) {
        console.error('usage: node check.js PAGE MODULE_ANSWER [GATEWAY_ANSWER]');
        process.exit(2);
    }
    const read = (f) => JSON.parse(fs.readFileSync(f, 'utf8'));
    const page = read(pageFile);
    const want = read(moduleFile).result;
    const expr = jsonata(fs.readFileSync(path.join(__dirname, 'employees.jsonata'), 'utf8'));

    // through JSON, as the gateway sends it
    const got = JSON.parse(JSON.stringify(await expr.evaluate(page)));
    let d = compare('employees.jsonata', got, want);
    if (!d && gatewayFile) {
        const answer = read(gatewayFile);
        d = compare('gateway.js', answer.result, want)
            || (answer.result_count === want.length ? null
                : `gateway.js: result_count ${answer.result_count}, expected ${want.length}`)
            || (answer.next_cursor === page.meta.page.nextCursor ? null
                : `gateway.js: next_cursor ${answer.next_cursor}, expected the upstream's`);
    }
    if (d) {
        console.error(`check: DIFFERENT: ${d}`);
        process.exit(1);
    }
    console.log(`check: employees.jsonata maps all ${want.length} records exactly as the module` +
                (gatewayFile ? ', and gateway.js answers them' : ''));
}

main().catch((e) => { console.error(`check: ${e.stack || e}`); process.exit(1); });
