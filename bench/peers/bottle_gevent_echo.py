#!/usr/bin/python3
"""bottle_gevent_echo.py PORT: the classic Bottle + gevent-websocket sample,
the setup wsrelay replaces, as a peer for bench/compare.sh. A Bottle app
takes the socket from request.environ['wsgi.websocket'] and loops on
receive()/send(); gevent's WSGIServer with gevent-websocket's
WebSocketHandler serves it, one greenlet per connection.
  /websocket  answers each message with "echo:" + message (wsrelay's reply);
  /echo       answers each message exactly (what compare.sh drives).
A text message arrives as str and a binary one as bytes; the reply keeps the
type. Port 0 picks a free port; "listening on 127.0.0.1:PORT" on stdout says
it is ready. SIGINT or SIGTERM exits 0. Debian packages: python3-bottle,
python3-gevent, python3-gevent-websocket; run it with /usr/bin/python3."""
from gevent import monkey

monkey.patch_all()

import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402
from bottle import Bottle, abort, request  # noqa: E402
from gevent.pywsgi import WSGIServer  # noqa: E402
from geventwebsocket import WebSocketError  # noqa: E402
from geventwebsocket.handler import WebSocketHandler  # noqa: E402

app = Bottle()


def serve(prefix):
    wsock = request.environ.get("wsgi.websocket")
    if not wsock:
        abort(400, "Expected WebSocket request.")
    while True:
        try:
            message = wsock.receive()
            if message is None:  # closed
                break
            binary = not isinstance(message, str)
            if prefix:
                message = (b"echo:" + bytes(message)) if binary else "echo:" + message
            wsock.send(message, binary=binary)
        except WebSocketError:
            break
    return ""


@app.route("/websocket")
def handle_websocket():
    return serve(True)


@app.route("/echo")
def handle_echo():
    return serve(False)


def main(port):
    # log=None: no access-log line per connection on stderr.
    server = WSGIServer(("127.0.0.1", port), app, handler_class=WebSocketHandler, log=None)
    server.start()
    for sig in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(sig, os._exit, 0)
    print("listening on 127.0.0.1:%d" % server.server_port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) != 2 or not sys.argv[1].isdigit() or int(sys.argv[1]) > 65535:
        sys.stderr.write("usage: bottle_gevent_echo.py PORT\n")
        sys.exit(2)
    main(int(sys.argv[1]))
