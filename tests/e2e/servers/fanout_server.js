// Event-loop fan-out server for the e2e tests: many requests in flight, each making one call.
// Usage: node fanout_server.js PORT DOWNSTREAM_PORT
//   (listens on 127.0.0.1:PORT, prints "ready" once listening, exits with 0 on SIGTERM)
//   GET /work?id=N  (or /work/N) waits a random 5-40 ms, then GET /lookup/<8 random hex digits> on
//                   127.0.0.1:DOWNSTREAM_PORT over a keep-alive pool of at most 4 connections,
//                   with no header taken from the incoming request; then answers
//                   200 {"id":"N","lookup":"/lookup/<hex>","status":S} (S: the downstream's
//                   status, whatever it is), or 502 {"id","lookup","error"} if the call fails.
//   anything else   404
// Nothing on the wire ties an outgoing lookup to the /work request that caused it; the body of
// the answer says which lookup it was, so a test knows the truth the agent cannot see.
'use strict';
const crypto = require('crypto');
const http = require('http');

const port = Number(process.argv[2]);
const downstreamPort = Number(process.argv[3]);
// At most 4 connections to the downstream, each carrying lookups of many /work requests in turn.
// More simultaneous connects overflow http_server.py's listen backlog (5) and cost 1 s SYN retries.
const agent = new http.Agent({keepAlive: true, maxSockets: 4});

function reply(res, status, value) {
  const body = Buffer.from(JSON.stringify(value));
  res.writeHead(status, {'Content-Type': 'application/json', 'Content-Length': body.length});
  res.end(body);
}

function lookup(path, done) {
  let finished = false;
  const finish = (err, status) => {
    if (!finished) {
      finished = true;
      done(err, status);
    }
  };
  const req = http.get({agent, host: '127.0.0.1', port: downstreamPort, path}, (res) => {
    res.resume();
    res.on('end', () => finish(null, res.statusCode));
    res.on('error', finish);
  });
  req.setTimeout(10000, () => req.destroy(new Error('downstream timed out')));
  req.on('error', finish);
}

const server = http.createServer((req, res) => {
  req.resume();
  let url;
  try {
    url = new URL(req.url, 'http://fanout');
  } catch (e) {
    reply(res, 400, {error: 'bad request target'});
    return;
  }
  // /work/N also works: spans redact query values, so tests name the request in its path.
  const inPath = /^\/work\/([^/]+)$/.exec(url.pathname);
  if (req.method !== 'GET' || (url.pathname !== '/work' && !inPath)) {
    reply(res, 404, {error: 'not found'});
    return;
  }
  const id = inPath ? inPath[1] : (url.searchParams.get('id') || '');
  const path = `/lookup/${crypto.randomBytes(4).toString('hex')}`;
  setTimeout(() => {
    lookup(path, (err, status) => {
      if (err) reply(res, 502, {id, lookup: path, error: err.message});
      else reply(res, 200, {id, lookup: path, status});
    });
  }, 5 + Math.floor(Math.random() * 36));
});

server.keepAliveTimeout = 60000;
server.listen(port, '127.0.0.1', () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  agent.destroy();
  process.exit(0);
});
