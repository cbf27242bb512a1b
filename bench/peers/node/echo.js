// node echo.js PORT: a WebSocket echo server on the `ws` package, a peer for
// bench/compare.sh. Serves /echo only: each message comes back as it came
// (same type, same bytes). ws checks UTF-8 of text messages by default, as
// wsrelay does; permessage-deflate is off by default on a ws server. Port 0
// picks a free port; "listening on 127.0.0.1:PORT" on stdout says it is
// ready. SIGINT or SIGTERM exits 0.
'use strict';
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2]);
if (process.argv.length !== 3 || !Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write('usage: node echo.js PORT\n');
  process.exit(2);
}

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port,
  path: '/echo',              // any other path is refused with 400
  maxPayload: 16 * 1024 * 1024, // as wsrelay's --max-message default
  clientTracking: false,
});

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => ws.terminate());
});

wss.on('listening', () => {
  process.stdout.write(`listening on 127.0.0.1:${wss.address().port}\n`);
});

for (const sig of ['SIGINT', 'SIGTERM'])
  process.on(sig, () => process.exit(0));
