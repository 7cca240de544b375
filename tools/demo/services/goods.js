// Goods service of the demo: GET /goods/N describes item N.
// Usage: node goods.js --port P
// Prints "ready" once it listens on 127.0.0.1:P; exits with status 0 on SIGTERM.
//   GET /goods/N  200 {"id": N, "name": "item N", "price_cents": ..., "stock": ...}
//   anything else 404
'use strict';
const http = require('http');
const {sendJson, option, listen} = require('./json_service');

const port = Number(option('port', 'node goods.js --port P'));

const server = http.createServer((req, res) => {
  const path = req.url.split('?')[0];
  const m = /^\/goods\/(\d{1,9})$/.exec(path);
  req.resume();  // any request body is read and dropped
  if (req.method !== 'GET' || !m) {
    sendJson(res, 404, {error: 'not found', path});
    return;
  }
  const id = Number(m[1]);
  sendJson(res, 200, {id, name: `item ${id}`, price_cents: 199 + (id % 50) * 100, stock: 7 + id % 13});
});

listen(server, port);
