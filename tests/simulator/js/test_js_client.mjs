// test_js_client.mjs -- Home Assistant's official JS client (home-assistant-js-websocket)
// against homeiq-ha-simulator: auth, get_states/get_config/get_services, subscribeEvents,
// subscribeEntities, ping, bad token, and the automatic reconnect after /api/sim/drop.
// usage: node test_js_client.mjs PORT [TOKEN]
import WebSocket from "ws";
import {
  createConnection,
  createLongLivedTokenAuth,
  getStates,
  getConfig,
  getServices,
  subscribeEntities,
  ERR_INVALID_AUTH,
} from "home-assistant-js-websocket";

globalThis.WebSocket = WebSocket; // Node 20 has no global WebSocket

const port = process.argv[2];
const token = process.argv[3] || "homeiq-simulator-token";
const hassUrl = `http://127.0.0.1:${port}`;
let fails = 0, passes = 0;

function check(desc, cond, detail) {
  if (cond) { passes++; console.log(`ok - js: ${desc}`); }
  else { fails++; console.log(`not ok - js: ${desc}${detail !== undefined ? ": " + JSON.stringify(detail) : ""}`); }
}

function within(ms, what, promise) {
  let t;
  const timeout = new Promise((_, reject) => { t = setTimeout(() => reject(new Error(`timeout: ${what}`)), ms); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(t));
}

// resolves after `n` calls of the returned callback
function counter(n) {
  let calls = [], resolve;
  const done = new Promise((r) => { resolve = r; });
  const cb = (x) => { calls.push(x); if (calls.length === n) resolve(calls); };
  return { cb, done, calls };
}

async function main() {
  // wrong token: rejected with ERR_INVALID_AUTH, no retry
  try {
    await createConnection({ auth: createLongLivedTokenAuth(hassUrl, "wrong-token") });
    check("bad token is rejected", false);
  } catch (err) {
    check("bad token is rejected with ERR_INVALID_AUTH", err === ERR_INVALID_AUTH, err);
  }

  const conn = await within(5000, "connect", createConnection({ auth: createLongLivedTokenAuth(hassUrl, token) }));
  check("createConnection + createLongLivedTokenAuth", conn.connected === true);
  check("haVersion is 2025.6.1", conn.haVersion === "2025.6.1", conn.haVersion);

  await within(3000, "ping", conn.ping());
  check("ping resolves", true);

  const states = await within(5000, "getStates", getStates(conn));
  check("getStates returns >= 40 states", Array.isArray(states) && states.length >= 40, states.length);
  const s0 = states[0];
  check("State objects have entity_id/state/attributes/last_* /context",
    s0 && typeof s0.entity_id === "string" && typeof s0.state === "string" && typeof s0.attributes === "object" &&
    s0.last_changed && s0.last_updated && s0.last_reported && s0.context && s0.context.id.length === 26, s0);

  const config = await within(5000, "getConfig", getConfig(conn));
  check("getConfig returns the HA config", config.version === "2025.6.1" && config.unit_system.temperature === "°C", config);
  const services = await within(5000, "getServices", getServices(conn));
  check("getServices returns domains", services.light && services.light.turn_on, Object.keys(services));

  // subscribeEvents for state_changed
  const ev = counter(3);
  const unsubEvents = await within(5000, "subscribeEvents", conn.subscribeEvents(ev.cb, "state_changed"));
  const events = await within(10000, "3 state_changed events", ev.done);
  const e = events[0];
  check("subscribeEvents receives state_changed events",
    e.event_type === "state_changed" && e.data.new_state && e.data.old_state && e.time_fired === e.data.new_state.last_updated, e);

  // subscribeEntities (subscribe_entities: snapshot then diffs)
  const snapshots = [];
  let firstResolve, changeResolve;
  const first = new Promise((r) => { firstResolve = r; });
  const changed = new Promise((r) => { changeResolve = r; });
  const unsubEntities = subscribeEntities(conn, (ents) => {
    snapshots.push(ents);
    if (snapshots.length === 1) firstResolve(ents);
    else changeResolve(ents);
  });
  const ents = await within(5000, "subscribeEntities snapshot", first);
  check("subscribeEntities: snapshot with >= 40 entities", Object.keys(ents).length >= 40, Object.keys(ents).length);
  const firstCopy = JSON.parse(JSON.stringify(ents));
  const later = await within(10000, "subscribeEntities update", changed);
  const moved = Object.keys(later).filter((id) => later[id].last_updated !== firstCopy[id]?.last_updated);
  check("subscribeEntities: diffs update entities", moved.length >= 1, moved);
  const m = later[moved[0]];
  check("subscribeEntities: updated entity is a full State",
    m && typeof m.state === "string" && m.context && typeof m.context.id === "string" && m.attributes, m);

  // reconnect after the simulator drops every connection
  let disconnected = 0;
  const ready = new Promise((r) => conn.addEventListener("ready", () => r()));
  conn.addEventListener("disconnected", () => { disconnected++; });
  const dropped = await (await fetch(`${hassUrl}/api/sim/drop`, { method: "POST" })).json();
  check("drop endpoint dropped the JS connection", dropped.dropped >= 1, dropped);
  await within(10000, "reconnect (ready)", ready);
  check("client saw the disconnect and reconnected", disconnected === 1 && conn.connected, { disconnected });
  const before = ev.calls.length;
  const afterDrop = new Promise((r) => {
    const iv = setInterval(() => { if (ev.calls.length >= before + 2) { clearInterval(iv); r(); } }, 50);
  });
  await within(10000, "events after reconnect on the re-sent subscription", afterDrop);
  check("subscription re-sent after reconnect: events flow again", ev.calls.length >= before + 2);
  const stats = await (await fetch(`${hassUrl}/api/sim/stats`)).json();
  check("simulator sees the re-subscribed client", stats.clients === 1 && stats.subscribed === 1, stats);

  await unsubEvents();
  unsubEntities();
  conn.close();
}

try {
  await main();
} catch (err) {
  fails++;
  console.log(`not ok - js: ${err && err.message ? err.message : err}`);
}
console.log(`js: ${passes} passed, ${fails} failed`);
process.exit(fails ? 1 : 0);
