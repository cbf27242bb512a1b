#!/usr/bin/python3
"""py_websockets_echo.py PORT: a WebSocket echo server on the `websockets`
package (Debian python3-websockets 10.4, asyncio API), a peer for
bench/compare.sh. Serves /echo only: each message comes back as it came (a
text message is a str, a binary one bytes, so the type is kept); other paths
get 404. websockets checks UTF-8 of text messages. Port 0 picks a free port;
"listening on 127.0.0.1:PORT" on stdout says it is ready. SIGINT or SIGTERM
exits 0. Run it with Debian's /usr/bin/python3."""
import asyncio
import http
import signal
import sys

import websockets


async def echo(ws, path):
    async for msg in ws:
        await ws.send(msg)


async def only_echo(path, request_headers):
    if path != "/echo":
        return http.HTTPStatus.NOT_FOUND, [], b"not found\n"
    return None


async def main(port):
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set_result, None)
    async with websockets.serve(echo, "127.0.0.1", port, process_request=only_echo,
                                max_size=16 << 20,  # as wsrelay's --max-message default
                                compression=None) as server:
        bound = server.sockets[0].getsockname()[1]
        print("listening on 127.0.0.1:%d" % bound, flush=True)
        await stop


if __name__ == "__main__":
    if len(sys.argv) != 2 or not sys.argv[1].isdigit() or int(sys.argv[1]) > 65535:
        sys.stderr.write("usage: py_websockets_echo.py PORT\n")
        sys.exit(2)
    asyncio.run(main(int(sys.argv[1])))
