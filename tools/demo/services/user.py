#!/usr/bin/python3
"""User-centre service of the demo: GET /users/U describes any user.

Usage: user.py --port P
Prints "ready" once it listens on 127.0.0.1:P; exits with status 0 on SIGTERM.

  GET /users/U  → 200 {"id": U, "name": "User U", "tier": "gold"|"silver"}
  anything else 404
"""

from json_service import JsonHandler, parse_args, serve

PREFIX = "/users/"


class UserHandler(JsonHandler):
    def do_GET(self):
        path = self.path_only()
        user = path[len(PREFIX):]
        if not path.startswith(PREFIX) or not user or "/" in user:
            self.not_found()
            return
        tier = "gold" if sum(user.encode()) % 2 == 0 else "silver"  # stable per user
        self.send_json(200, {"id": user, "name": "User %s" % user, "tier": tier})

    def do_POST(self):
        self.not_found()


def main():
    serve(UserHandler, parse_args("User-centre service of the zerotrace demo.").port)


if __name__ == "__main__":
    main()
