// HTTPS test server in node (node's TLS links the system libssl but feeds it through memory
// BIOs: SSL_read/SSL_write make no socket syscalls). Usage: node https_server.js PORT CERT KEY
// Prints "ready" once listening. /hello answers "hello, world\n"; anything else 404.
'use strict';
const fs = require('fs');
const https = require('https');

const [port, cert, key] = process.argv.slice(2);
const server = https.createServer({cert: fs.readFileSync(cert), key: fs.readFileSync(key)},
                                  (req, res) => {
  const ok = req.url === '/hello';
  const body = ok ? 'hello, world\n' : 'not found\n';
  res.writeHead(ok ? 200 : 404, {'Content-Type': 'text/plain', 'Content-Length': body.length});
  res.end(body);
});
server.listen(+port, '127.0.0.1', () => console.log('ready'));
