// HTTP/2 client in node (built-in http2 module): the given paths one after another on ONE
// session (connection), cleartext with prior knowledge or over TLS.
// Usage: node h2_client.js URL_BASE CAFILE PATH... (CAFILE "-" for h2c).
// Prints "STATUS BODY_BYTES PATH" per request, then "done".
'use strict';
const fs = require('fs');
const http2 = require('http2');

const [base, cafile, ...paths] = process.argv.slice(2);
const session = http2.connect(base, cafile === '-' ? {} : {ca: fs.readFileSync(cafile)});
session.on('error', (e) => { console.error(e); process.exit(1); });

function get(path) {
  return new Promise((resolve, reject) => {
    const req = session.request({':path': path});
    let status = 0, n = 0;
    req.on('response', (h) => { status = h[':status']; });
    req.on('data', (chunk) => { n += chunk.length; });
    req.on('end', () => resolve(`${status} ${n} ${path}`));
    req.on('error', reject);
    req.end();
  });
}

(async () => {
  for (const p of paths) console.log(await get(p));
  console.log('done');
  session.close();
})().catch((e) => { console.error(e); process.exit(1); });
