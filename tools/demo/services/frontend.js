// Frontend of the demo: GET /checkout places the order with the order service.
// Usage: node frontend.js --port P --order-url http://127.0.0.1:Q
// Prints "ready" once it listens on 127.0.0.1:P; exits with status 0 on SIGTERM.
//   GET /checkout?order=N&user=U  (or /api/checkout?...)
//       → exactly one POST /orders {"order": N, "user": "U"} to the order service over a
//         keep-alive pool, carrying the incoming x-request-id (when there is one) and no trace
//         headers; then 200 {"checkout": "ok", "request_id": ..., "order": <order's answer>}.
//         400 on a bad query, 502 when the order service fails or answers non-2xx.
//   anything else 404
// One event loop: requests interleave, so nothing but the x-request-id ties an outgoing call
// to the incoming request that caused it.
'use strict';
const http = require('http');
const {sendJson, option, listen} = require('./json_service');

const USAGE = 'node frontend.js --port P --order-url http://127.0.0.1:Q';
const port = Number(option('port', USAGE));
const orderUrl = new URL(option('order-url', USAGE));
const orderPath = orderUrl.pathname.replace(/\/$/, '') + '/orders';
const agent = new http.Agent({keepAlive: true});
const DOWNSTREAM_TIMEOUT_MS = 10000;
const USER_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

// POSTs the order; calls done(err, status, parsedBody) exactly once.
function placeOrder(order, user, requestId, done) {
  const body = Buffer.from(JSON.stringify({order, user}));
  const headers = {'Content-Type': 'application/json', 'Content-Length': body.length,
                   'Accept': 'application/json'};
  if (requestId !== undefined) headers['x-request-id'] = requestId;
  let finished = false;
  const finish = (...args) => {
    if (!finished) {
      finished = true;
      done(...args);
    }
  };
  const req = http.request({agent, host: orderUrl.hostname, port: orderUrl.port, method: 'POST',
                            path: orderPath, headers}, (res) => {
    const parts = [];
    res.on('data', (c) => parts.push(c));
    res.on('error', finish);
    res.on('end', () => {
      let value;
      try {
        value = JSON.parse(Buffer.concat(parts).toString());
      } catch (e) {
        finish(new Error(`order service answered ${res.statusCode} with a body that is not JSON`));
        return;
      }
      finish(null, res.statusCode, value);
    });
  });
  req.setTimeout(DOWNSTREAM_TIMEOUT_MS, () => req.destroy(new Error('order service timed out')));
  req.on('error', finish);
  req.end(body);
}

const server = http.createServer((req, res) => {
  req.resume();  // any request body is read and dropped
  let url;
  try {
    url = new URL(req.url, 'http://frontend');
  } catch (e) {
    sendJson(res, 400, {error: 'bad request target'});
    return;
  }
  if (url.pathname !== '/checkout' && url.pathname !== '/api/checkout') {
    sendJson(res, 404, {error: 'not found', path: url.pathname});
    return;
  }
  if (req.method !== 'GET') {
    res.setHeader('Allow', 'GET');
    sendJson(res, 405, {error: 'method not allowed'});
    return;
  }
  const orderText = url.searchParams.get('order') || '';
  const user = url.searchParams.get('user') || '';
  if (!/^\d{1,9}$/.test(orderText) || !USER_NAME.test(user)) {
    sendJson(res, 400, {error: 'expected ?order=N&user=NAME'});
    return;
  }
  const requestId = req.headers['x-request-id'];
  placeOrder(Number(orderText), user, requestId, (err, status, answer) => {
    if (err) {
      sendJson(res, 502, {error: err.message});
    } else if (status < 200 || status >= 300) {
      sendJson(res, 502, {error: `order service answered ${status}`, order: answer});
    } else {
      sendJson(res, 200, {checkout: 'ok', request_id: requestId || null, order: answer});
    }
  });
});

listen(server, port, () => agent.destroy());
