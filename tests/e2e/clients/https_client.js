// HTTPS client in node: GET /items/0 .. /items/N-1 one after another on ONE keep-alive
// connection (https.Agent, maxSockets 1), with the status query ItemTarget (http_expect.h) asks.
// Usage: node https_client.js PORT CAFILE N
// Prints "local_port P", then "STATUS BODY_BYTES" per request, then "done". Exits 1 if the
// connection was not reused or a response is not the expected one.
'use strict';
const fs = require('fs');
const https = require('https');

const [port, cafile, count] = process.argv.slice(2);
const agent = new https.Agent({keepAlive: true, maxSockets: 1});
const ca = fs.readFileSync(cafile);

function itemStatus(i) {
  return {3: 404, 7: 503}[i % 10] || 200;
}

function get(i) {
  const s = itemStatus(i);
  const path = `/items/${i}` + (s === 200 ? '' : `?status=${s}`);
  return new Promise((resolve, reject) => {
    const req = https.request({host: '127.0.0.1', port: +port, path, agent, ca,
                               headers: {'User-Agent': 'zt-node-https/1.0'}}, (res) => {
      let n = 0;
      res.on('data', (chunk) => { n += chunk.length; });
      res.on('end', () => resolve({status: res.statusCode, bytes: n, socket: req.socket}));
    });
    req.on('error', reject);
    req.end();
  });
}

(async () => {
  let first = null;
  for (let i = 0; i < +count; i++) {
    const r = await get(i);
    if (first === null) {
      first = r.socket;
      console.log(`local_port ${first.localPort}`);
    } else if (r.socket !== first) {
      console.log('connection not reused');
      process.exit(1);
    }
    if (r.status !== itemStatus(i) || r.bytes !== 10 + i) {
      console.log(`unexpected response to item ${i}: ${r.status} ${r.bytes}`);
      process.exit(1);
    }
    console.log(`${r.status} ${r.bytes}`);
  }
  console.log('done');
  agent.destroy();
})().catch((e) => {
  console.log(`error ${e.message}`);
  process.exit(1);
});
