// A WebSocket client on Node's built-in WebSocket (undici; `node --experimental-websocket`
// on Node 20/21, global from Node 22). Used by tests/test_websocket_interop.py.
//
//   node --experimental-websocket node_ws_client.mjs URL MODE [ARG [SUBPROTOCOL]]
//
// MODE "echo": sends a text, a binary and a 1 MiB binary message, waits for each echo, waits
// ARG ms (server pings may arrive meanwhile), then closes with 4000 "done".
// MODE "server-close": sends the text given as ARG and waits for the server's close.
// MODE "open": closes with 1000 ARG ms after the connection opened. (Node 20's client loses
// the close handshake, 1006, when a compressed message is still arriving as it closes; so
// does it against the websockets library's server: wait for what the server sends first.)
// Prints one JSON line describing what happened, which the Python test checks.

const [url, mode, extra, subprotocol] = process.argv.slice(2);
const out = { opened: false, extensions: null, protocol: null, echoes: [], close: null };
// A browser-like client fails the handshake when it offered subprotocols and the server
// chose none, so one is offered only when the test says the app will choose it.
const ws = new WebSocket(url, subprotocol ? [subprotocol] : []);
ws.binaryType = "arraybuffer";
const pending = [];

function describe(data) {
  if (typeof data === "string") return { kind: "text", length: data.length, head: data.slice(0, 20) };
  const bytes = new Uint8Array(data);
  let sum = 0;
  for (const b of bytes) sum = (sum + b) % 65521;
  return { kind: "binary", length: bytes.length, sum };
}

function next() {
  return new Promise((resolve) => pending.push(resolve));
}

ws.addEventListener("message", (event) => {
  const resolve = pending.shift();
  out.echoes.push(describe(event.data));
  if (resolve) resolve();
});

ws.addEventListener("close", (event) => {
  out.close = { code: event.code, reason: event.reason, wasClean: event.wasClean };
  console.log(JSON.stringify(out));
  process.exit(0);
});

ws.addEventListener("error", () => {
  out.error = true;
  if (!out.opened) {
    // a failed handshake: undici fires no close event after this one
    console.log(JSON.stringify(out));
    process.exit(2);
  }
});

ws.addEventListener("open", async () => {
  out.opened = true;
  out.extensions = ws.extensions;
  out.protocol = ws.protocol;
  if (mode === "open") {
    setTimeout(() => ws.close(1000), Number(extra || 0));
    return;
  }
  if (mode === "server-close") {
    ws.send(extra);
    return;
  }
  const big = new Uint8Array(1 << 20);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7) % 251;
  for (const message of ["héllo wörld", new Uint8Array([0, 255, 1, 254]), big]) {
    const got = next();
    ws.send(message);
    await got;
  }
  await new Promise((resolve) => setTimeout(resolve, Number(extra || 0)));
  ws.close(4000, "done");
});

setTimeout(() => {
  out.timeout = true;
  console.log(JSON.stringify(out));
  process.exit(1);
}, 20000);
