#!/usr/bin/python3
"""Order service of the demo: POST /orders calls goods, payment and user in turn, then answers.

Usage: order.py --port P --goods-url URL --payment-url URL --user-url URL
Prints "ready" once it listens on 127.0.0.1:P; exits with status 0 on SIGTERM.

  POST /orders  body {"order": N, "user": U}  (N a non-negative integer, U a name)
                → GET /goods/N, POST /pay, GET /users/U, one after another in this handler's
                  thread, each on a new connection; then 201 with all three answers.
                  400 on a bad body, 502 when a downstream call fails.
  anything else 404
One thread per connection (ThreadingHTTPServer); no trace headers are read or sent.
"""

import re

from json_service import Downstream, DownstreamError, JsonHandler, parse_args, serve

USER_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class OrderHandler(JsonHandler):
    goods = payment = users = None  # Downstreams, set in main()

    def do_GET(self):
        self.not_found()

    def do_POST(self):
        if self.path_only() != "/orders":
            self.not_found()
            return
        req = self.read_json()
        order = req.get("order") if req else None
        user = str(req.get("user", "")) if req else ""
        if not isinstance(order, int) or isinstance(order, bool) or order < 0 or \
                not USER_NAME.match(user):
            self.send_json(400, {"error": 'expected {"order": N, "user": NAME}'})
            return
        try:
            item = self.goods.call("GET", "/goods/%d" % order)
            paid = self.payment.call("POST", "/pay", {"order": order, "user": user,
                                                      "amount_cents": item.get("price_cents", 0)})
            customer = self.users.call("GET", "/users/%s" % user)
        except DownstreamError as e:
            self.send_json(502, {"error": str(e), "order": order})
            return
        self.send_json(201, {"order": order, "user": user, "status": "placed",
                             "goods": item, "payment": paid, "customer": customer})


def main():
    args = parse_args("Order service of the zerotrace demo.", ("goods", "payment", "user"))
    OrderHandler.goods = Downstream(args.goods_url)
    OrderHandler.payment = Downstream(args.payment_url)
    OrderHandler.users = Downstream(args.user_url)
    serve(OrderHandler, args.port)


if __name__ == "__main__":
    main()
