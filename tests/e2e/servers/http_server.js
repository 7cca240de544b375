// Node HTTP/1.1 test server for the e2e tests.
// Usage: node http_server.js PORT   (listens on 127.0.0.1:PORT, prints "ready" once listening)
//   /hello       200, HELLO_BODY with Content-Length
//   /items/<n>   200, 10 + n bytes with Content-Length (the same bodies as http_server.py)
//   /chunked     200, chunked: two res.write() calls, then res.end()
//   anything else 404
'use strict';
const http = require('http');

const HELLO_BODY = 'hello, world\n';

function itemBody(n) {
  return `item ${n}:`.padEnd(10 + n, 'x');
}

const server = http.createServer((req, res) => {
  const path = req.url.split('?')[0];
  const item = /^\/items\/(\d+)$/.exec(path);
  if (path === '/hello') {
    res.writeHead(200, {'Content-Type': 'text/plain', 'Content-Length': HELLO_BODY.length});
    res.end(HELLO_BODY);
  } else if (item) {
    const body = itemBody(Number(item[1]));
    res.writeHead(200, {'Content-Length': body.length});
    res.end(body);
  } else if (path === '/chunked') {
    res.writeHead(200, {'Content-Type': 'text/plain'});  // no length: node chunks the body
    res.write('node first\n');
    res.write('node second\n');
    res.end();
  } else {
    res.writeHead(404, {'Content-Length': 10});
    res.end('not found\n');
  }
});

server.listen(Number(process.argv[2]), '127.0.0.1', () => {
  process.stdout.write('ready\n');
});
