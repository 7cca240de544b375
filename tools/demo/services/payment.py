#!/usr/bin/python3
"""Payment service of the demo: POST /pay accepts every payment.

Usage: payment.py --port P
Prints "ready" once it listens on 127.0.0.1:P; exits with status 0 on SIGTERM.

  POST /pay     body {"order": N, "user": U, "amount_cents": A}
                → 200 {"paid": true, "order": N, "amount_cents": A, "transaction": "tx-<N>"}
                  400 when the body is not a JSON object with an integer "order"
  anything else 404
"""

from json_service import JsonHandler, parse_args, serve


class PaymentHandler(JsonHandler):
    def do_GET(self):
        self.not_found()

    def do_POST(self):
        if self.path_only() != "/pay":
            self.not_found()
            return
        req = self.read_json()
        order = req.get("order") if req else None
        if not isinstance(order, int) or isinstance(order, bool):
            self.send_json(400, {"error": 'expected {"order": N, ...}'})
            return
        self.send_json(200, {"paid": True, "order": order,
                             "amount_cents": req.get("amount_cents", 0),
                             "transaction": "tx-%08d" % order})


def main():
    serve(PaymentHandler, parse_args("Payment service of the zerotrace demo.").port)


if __name__ == "__main__":
    main()
