// Records a CPU profile of a worker under `wrangler dev` through the
// DevTools protocol (the inspector port wrangler opens): starts the
// sampling profiler, signals readiness on stdout, stops when stdin closes
// and writes the profile (Chrome's .cpuprofile JSON) to the given path.
// Usage: node cdp_profile.mjs <inspector port> <out.cpuprofile>
import { writeFileSync } from "node:fs";
import WebSocket from "ws";

const [port, out] = process.argv.slice(2);
const targets = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
const target = targets.find((t) => t.webSocketDebuggerUrl);
if (!target) throw new Error(`no debuggable target on port ${port}`);
const ws = new WebSocket(target.webSocketDebuggerUrl);
await new Promise((ok, fail) => ws.once("open", ok).once("error", fail));
let next = 0;
const waiting = new Map();
ws.on("message", (data) => {
  const msg = JSON.parse(data);
  if (msg.id !== undefined && waiting.has(msg.id)) {
    const { ok, fail } = waiting.get(msg.id);
    waiting.delete(msg.id);
    msg.error ? fail(new Error(JSON.stringify(msg.error))) : ok(msg.result);
  }
});
const send = (method, params = {}) =>
  new Promise((ok, fail) => {
    const id = ++next;
    waiting.set(id, { ok, fail });
    ws.send(JSON.stringify({ id, method, params }));
  });

await send("Profiler.enable");
await send("Profiler.setSamplingInterval", { interval: 100 });
await send("Profiler.start");
process.stdout.write("profiling\n");
process.stdin.resume();
await new Promise((ok) => process.stdin.once("end", ok));
const { profile } = await send("Profiler.stop");
writeFileSync(out, JSON.stringify(profile));
ws.close();
