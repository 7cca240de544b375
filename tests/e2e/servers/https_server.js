// HTTPS test server in node (OpenSSL linked into the node executable, fed through memory
// BIOs: SSL_read/SSL_write make no socket syscalls of their own).
// Usage: node https_server.js PORT CERT KEY   (127.0.0.1:PORT, prints "ready" once listening)
//   /hello       200, "hello, world\n" with Content-Length
//   /items/<n>   200, 10 + n bytes with Content-Length (the bodies of http_server.py);
//                ?status=S answers status S with the same body
//   /fetch?port=P  GETs https://127.0.0.1:P/hello on a new connection (User-Agent
//                zt-node-fetch/1.0, CERT as the CA) and answers its status and body
//   anything else 404, "not found\n"
'use strict';
const fs = require('fs');
const https = require('https');

const HELLO_BODY = 'hello, world\n';

function itemBody(n) {
  return `item ${n}:`.padEnd(10 + n, 'x');
}

const [port, cert, key] = process.argv.slice(2);
const ca = fs.readFileSync(cert);
const server = https.createServer({cert: ca, key: fs.readFileSync(key)},
                                  (req, res) => {
  const url = new URL(req.url, 'https://127.0.0.1');
  const item = /^\/items\/(\d+)$/.exec(url.pathname);
  if (url.pathname === '/fetch') {
    const out = https.get({host: '127.0.0.1', port: +url.searchParams.get('port'), path: '/hello',
                           ca, agent: false, headers: {'User-Agent': 'zt-node-fetch/1.0'}},
                          (up) => {
      const chunks = [];
      up.on('data', (c) => chunks.push(c));
      up.on('end', () => {
        const body = Buffer.concat(chunks);
        res.writeHead(up.statusCode, {'Content-Length': body.length});
        res.end(body);
      });
    });
    out.on('error', () => {
      res.writeHead(502, {'Content-Length': 0});
      res.end();
    });
    return;
  }
  let status = 404, body = 'not found\n';
  if (url.pathname === '/hello') {
    status = 200;
    body = HELLO_BODY;
  } else if (item) {
    status = Number(url.searchParams.get('status') || 200);
    body = itemBody(Number(item[1]));
  }
  res.writeHead(status, {'Content-Type': 'text/plain', 'Content-Length': body.length});
  res.end(body);
});
server.keepAliveTimeout = 30000;
server.listen(+port, '127.0.0.1', () => console.log('ready'));
