// Reference server for the ChatSupport benchmarks: Node.js `ws`, broadcasting.
//
// Every text frame a client sends is sent as-is to every client of its room,
// sender included (the README example of `ws`). The room comes from the
// query string: ws://127.0.0.1:PORT/?room=NAME (default "lobby").
//
//   node bench/node/ws_broadcast.js [--port 0] [--json]
//
// --json: instead of relaying the raw frame, wrap it once per message in a
// {"type":"message",...} envelope like ChatSupport's (encoded once, then the
// same Buffer is sent to every client). Per-delivery cost is the same.
//
// Prints "listening on ws://127.0.0.1:PORT" once ready; exits 0 on SIGTERM/SIGINT.
// Binds to 127.0.0.1 only.
'use strict';

const http = require('http');
const { WebSocketServer, WebSocket } = require('ws');

function option(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const port = Number.parseInt(option('--port', '0'), 10);
const json = process.argv.includes('--json');
const rooms = new Map();
let nextId = 0;

const server = http.createServer((req, res) => {
  res.writeHead(426, { 'Content-Type': 'text/plain' });
  res.end('websocket only\n');
});
const wss = new WebSocketServer({ server, perMessageDeflate: false, clientTracking: false });

function envelope(room, data) {
  let text;
  try {
    text = JSON.parse(data.toString('utf8')).text;
  } catch {
    text = data.toString('utf8');
  }
  nextId += 1;
  const msg = { type: 'message', id: nextId, room, uid: 'u', name: 'node', text, ts: Date.now() };
  return Buffer.from(JSON.stringify(msg));
}

wss.on('connection', (ws, req) => {
  const room = new URL(req.url, 'http://127.0.0.1').searchParams.get('room') || 'lobby';
  let members = rooms.get(room);
  if (members === undefined) {
    members = new Set();
    rooms.set(room, members);
  }
  members.add(ws);
  ws.on('message', (data, isBinary) => {
    const out = json ? envelope(room, data) : data;
    for (const client of members) {
      if (client.readyState === WebSocket.OPEN) {
        client.send(out, { binary: isBinary });
      }
    }
  });
  ws.on('error', (err) => console.error(`peer error in ${room}: ${err.message}`));
  ws.on('close', () => {
    members.delete(ws);
    if (members.size === 0) rooms.delete(room);
  });
});

function stop() {
  for (const members of rooms.values()) {
    for (const client of members) client.terminate();
  }
  wss.close();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}

process.on('SIGTERM', stop);
process.on('SIGINT', stop);

server.listen(port, '127.0.0.1', () => {
  console.log(`listening on ws://127.0.0.1:${server.address().port}`);
});
