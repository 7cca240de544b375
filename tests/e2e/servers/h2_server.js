// HTTP/2 server in node (built-in http2 module) for the HTTP/2 e2e tests: one h2c listener
// (prior knowledge) and one TLS listener (ALPN h2) with the same routes.
// Usage: node h2_server.js H2C_PORT TLS_PORT CERT KEY. Prints "ready" once both listen.
// Routes: /items/N answers "item N"; /missing answers 404; /big/N answers N bytes and a
// trailer (x-checksum) after them, so trailers follow large DATA.
'use strict';
const fs = require('fs');
const http2 = require('http2');

const [h2cPort, tlsPort, cert, key] = process.argv.slice(2);

function onStream(stream, headers) {
  const path = headers[':path'];
  let m;
  if ((m = /^\/items\/(\d+)/.exec(path))) {
    stream.respond({':status': 200, 'content-type': 'text/plain'});
    stream.end(`item ${m[1]}`);
  } else if ((m = /^\/big\/(\d+)$/.exec(path))) {
    stream.respond({':status': 200}, {waitForTrailers: true});
    stream.on('wantTrailers', () => stream.sendTrailers({'x-checksum': 'ok'}));
    stream.end(Buffer.alloc(+m[1], 'b'));
  } else {
    stream.respond({':status': 404});
    stream.end();
  }
}

const h2c = http2.createServer();
h2c.on('stream', onStream);
const tls = http2.createSecureServer({cert: fs.readFileSync(cert), key: fs.readFileSync(key)});
tls.on('stream', onStream);
let listening = 0;
const ready = () => { if (++listening === 2) console.log('ready'); };
h2c.listen(+h2cPort, '127.0.0.1', ready);
tls.listen(+tlsPort, '127.0.0.1', ready);
