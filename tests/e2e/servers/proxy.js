// Reverse proxy for the e2e tests, an event loop like envoy's or any node gateway.
// Usage: node proxy.js PORT UPSTREAM_PORT
//   (listens on 127.0.0.1:PORT, prints "ready" once listening, exits with 0 on SIGTERM)
//   GET /api/<rest>  forwarded as GET /<rest> to 127.0.0.1:UPSTREAM_PORT over a keep-alive pool
//                    of at most 8 connections, no header copied; answered with the upstream's
//                    status and body, or 502 if the call fails.
//   anything else    404
'use strict';
const http = require('http');

const port = Number(process.argv[2]);
const upstreamPort = Number(process.argv[3]);
const agent = new http.Agent({keepAlive: true, maxSockets: 8});

const server = http.createServer((req, res) => {
  if (req.method !== 'GET' || !req.url.startsWith('/api/')) {
    res.writeHead(404, {'Content-Length': 0});
    res.end();
    return;
  }
  const call = http.get(
      {host: '127.0.0.1', port: upstreamPort, path: req.url.slice('/api'.length), agent},
      (up) => {
        const chunks = [];
        up.on('data', (c) => chunks.push(c));
        up.on('end', () => {
          const body = Buffer.concat(chunks);
          res.writeHead(up.statusCode, {'Content-Length': body.length});
          res.end(body);
        });
      });
  call.on('error', () => {
    res.writeHead(502, {'Content-Length': 0});
    res.end();
  });
});
server.keepAliveTimeout = 30000;
server.listen(port, '127.0.0.1', () => console.log('ready'));
process.on('SIGTERM', () => process.exit(0));
