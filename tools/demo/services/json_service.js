// What the demo's node services share: JSON answers with Content-Length, listening, stopping.
'use strict';

// Writes status and body in one go, always with Content-Length (no chunked framing).
function sendJson(res, status, value) {
  const body = Buffer.from(JSON.stringify(value));
  res.writeHead(status, {'Content-Type': 'application/json', 'Content-Length': body.length});
  res.end(body);
}

// The value of --name in argv; exits with a usage line when a required option is missing.
function option(name, usage) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0 || i + 1 >= process.argv.length) {
    process.stderr.write(`usage: ${usage}\n`);
    process.exit(2);
  }
  return process.argv[i + 1];
}

// Listens on 127.0.0.1:port, prints "ready", and exits with status 0 on SIGTERM or SIGINT.
// `onStop` releases what else the service holds (e.g. an outgoing keep-alive pool).
function listen(server, port, onStop = () => {}) {
  server.keepAliveTimeout = 60000;  // longer than nginx's upstream keepalive_timeout
  server.listen(port, '127.0.0.1', () => process.stdout.write('ready\n'));
  const stop = () => {
    server.close();
    server.closeAllConnections();  // idle keep-alive peers would hold close() open
    onStop();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

module.exports = {sendJson, option, listen};
