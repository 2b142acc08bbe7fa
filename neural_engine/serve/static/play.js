// The player's page of `neural-engine serve`: one WebSocket, frames in, input out.
//
// Keys are sent as the engine's key names (the server's welcome gives the table from
// KeyboardEvent.code and the game's bindings); the server's action mapper holds them
// and sums the mouse motion per tick, as the pygame loop does. Mouse motion counts only
// under pointer lock (click the picture); it is sent at most 60 times a second. P
// pauses, R resets, F11 or the button goes fullscreen, Esc frees the mouse. The HUD
// shows the frames per second the page receives, the server's tick rate, and the
// latency this page measured from a key press to the first frame that answers it.
// When the connection drops the page says so and reconnects, taking its row back
// within the server's grace time.
"use strict";

const $ = (id) => document.getElementById(id);
const canvas = $("frame"), hud = $("hud"), caption = $("caption");
const notice = $("notice"), noticeTitle = $("notice-title"), noticeText = $("notice-text");
const ctx2d = canvas.getContext("2d", { alpha: false });
const HEADER = 16, MOUSE_MS = 16, SAMPLES = 200;

// What the page knows; `neStats` is read by the tests and by curious players.
const stats = window.neStats = {
  state: "connecting", frames: 0, bytes: 0, tick: -1, ack: 0, latencies: [],
  decodeMs: [], connects: 0, fps: 0, serverRate: 0, players: 0, waiting: 0, mode: "",
};
let game = null, ws = null, seq = 0, retry = 0, paused = false;
let mouseDx = 0, mouseDy = 0;
const held = new Set(), pressedAt = new Map(), frameTimes = [];
let decoding = false, nextFrame = null, lastBytes = [];

function send(message) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
}

function show(title, text = "", controls = false) {
  noticeTitle.textContent = title;
  noticeText.textContent = text;
  $("controls").hidden = !controls;
  notice.hidden = false;
}
function hide() { notice.hidden = true; }

function percentile(values, p) {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

// -- connection ---------------------------------------------------------------------
function connect() {
  const token = sessionStorage.getItem("neural-engine-token") || "";
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const url = `${scheme}//${location.host}/ws` + (token ? `?resume=${encodeURIComponent(token)}` : "");
  ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  let refusal = null;
  ws.onopen = () => { stats.connects += 1; retry = 0; };
  ws.onmessage = (event) => {
    if (typeof event.data === "string") {
      const message = JSON.parse(event.data);
      if (message.t === "refused") refusal = message;
      onText(message);
    } else {
      onFrame(event.data);
    }
  };
  ws.onclose = (event) => {
    stats.state = "disconnected";
    held.clear();
    if (document.pointerLockElement) document.exitPointerLock();
    const wait = Math.min(10, 2 ** retry);
    retry += 1;
    const why = refusal ? refusal.message : (event.reason || `code ${event.code}`);
    show(refusal && refusal.reason === "full" ? "The server is full" : "Connection lost",
         `${why}\nReconnecting in ${wait} s…`);
    setTimeout(connect, wait * 1000);
  };
}

function onText(message) {
  switch (message.t) {
    case "welcome": {
      game = message;
      sessionStorage.setItem("neural-engine-token", message.token);
      canvas.width = game.width;
      canvas.height = game.height;
      canvas.style.setProperty("--aspect", `${game.width} / ${game.height}`);
      document.title = `${game.title} — neural engine`;
      stats.state = "playing";
      paused = false;
      legend();
      show(message.resumed ? "Welcome back" : game.title,
           "Click the picture to play (the mouse turns while it is captured).", true);
      break;
    }
    case "wait":
      stats.state = "waiting";
      stats.position = message.position;
      show("Waiting for a free row",
           `All ${message.capacity} rows are taken. You are number ${message.position} in line;\n` +
           "you will play as soon as a row frees up.");
      break;
    case "released":
      stats.state = "released";
      if (document.pointerLockElement) document.exitPointerLock();
      show("Your turn is over", message.message);
      break;
    case "status":
      stats.serverRate = message.tick_rate;
      stats.players = message.players;
      stats.waiting = message.waiting;
      stats.mode = message.mode;
      caption.textContent = message.caption.join("\n");
      break;
    case "refused":
      show("Refused", message.message);
      break;
  }
}

// -- frames -------------------------------------------------------------------------
function onFrame(buffer) {
  const view = new DataView(buffer);
  const frame = { codec: view.getUint8(1), first: (view.getUint16(2, true) & 1) === 1,
                  tick: view.getUint32(4, true), ack: view.getUint32(8, true),
                  width: view.getUint16(12, true), height: view.getUint16(14, true),
                  payload: new Uint8Array(buffer, HEADER), size: buffer.byteLength };
  stats.bytes += buffer.byteLength;
  lastBytes.push([performance.now(), buffer.byteLength]);
  nextFrame = frame;               // a newer frame replaces one not yet decoded
  if (!decoding) drawNext();
}

async function drawNext() {
  decoding = true;
  while (nextFrame) {
    const frame = nextFrame;
    nextFrame = null;
    const t0 = performance.now();
    try {
      await draw(frame);
    } catch (error) {
      console.warn("undecodable frame", error);
      continue;
    }
    const now = performance.now();
    stats.decodeMs.push(now - t0);
    if (stats.decodeMs.length > SAMPLES) stats.decodeMs.shift();
    stats.frames += 1;
    stats.tick = frame.tick;
    stats.ack = Math.max(stats.ack, frame.ack);
    frameTimes.push(now);
    for (const [number, at] of pressedAt) {
      if (number <= frame.ack) {
        stats.latencies.push(now - at);
        pressedAt.delete(number);
      }
    }
    if (stats.latencies.length > SAMPLES) stats.latencies.splice(0, stats.latencies.length - SAMPLES);
  }
  decoding = false;
}

async function draw(frame) {
  if (canvas.width !== frame.width || canvas.height !== frame.height) {
    canvas.width = frame.width;
    canvas.height = frame.height;
  }
  if (frame.codec === 0) {                    // raw RGB
    const image = ctx2d.createImageData(frame.width, frame.height);
    const rgb = frame.payload, rgba = image.data;
    for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
      rgba[j] = rgb[i]; rgba[j + 1] = rgb[i + 1]; rgba[j + 2] = rgb[i + 2]; rgba[j + 3] = 255;
    }
    ctx2d.putImageData(image, 0, 0);
    return;
  }
  const blob = new Blob([frame.payload], { type: frame.codec === 1 ? "image/png" : "image/jpeg" });
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: "none",
                                                 premultiplyAlpha: "none" });
  ctx2d.drawImage(bitmap, 0, 0);
  bitmap.close();
}

// The codec bench times the page's own decoder on frames it hands over.
window.neDraw = draw;

// The tests read the picture exactly as drawn: base64 RGB, top row first.
window.neCanvasRGB = () => {
  const rgba = ctx2d.getImageData(0, 0, canvas.width, canvas.height).data;
  let out = "";
  for (let i = 0; i < rgba.length; i += 4) {
    out += String.fromCharCode(rgba[i], rgba[i + 1], rgba[i + 2]);
  }
  return btoa(out);
};

// -- input --------------------------------------------------------------------------
function keyName(event) { return game ? game.keys[event.code] : undefined; }

function controlKey(name) {
  if (name === game.controls.pause) { togglePause(); return true; }
  if (name === game.controls.reset) { send({ t: "reset" }); return true; }
  if (name === game.controls.fullscreen) { toggleFullscreen(); return true; }
  return false;
}

window.addEventListener("keydown", (event) => {
  const name = keyName(event);
  if (!name || stats.state !== "playing") return;
  if (event.ctrlKey || event.metaKey) return;           // leave the browser's shortcuts alone
  event.preventDefault();
  if (event.repeat) return;
  if (controlKey(name) || paused) return;
  if (!document.pointerLockElement) hide();
  held.add(name);
  seq += 1;
  pressedAt.set(seq, performance.now());
  if (pressedAt.size > 64) pressedAt.delete(pressedAt.keys().next().value);
  send({ t: "key", key: name, down: true, seq });
});

window.addEventListener("keyup", (event) => {
  const name = keyName(event);
  if (!name || !held.has(name)) return;
  event.preventDefault();
  held.delete(name);
  seq += 1;
  send({ t: "key", key: name, down: false, seq });
});

function releaseAll() {
  if (!held.size && !mouseDx && !mouseDy) return;
  held.clear();
  mouseDx = mouseDy = 0;
  seq += 1;
  send({ t: "blur", seq });
}
window.addEventListener("blur", releaseAll);
document.addEventListener("visibilitychange", () => { if (document.hidden) releaseAll(); });

$("stage").addEventListener("click", (event) => {
  if (event.target.closest("button")) return;
  if (stats.state === "playing" && !paused && !document.pointerLockElement) {
    const request = canvas.requestPointerLock();
    if (request && request.catch) request.catch(() => {});
  }
});
document.addEventListener("pointerlockchange", () => {
  if (document.pointerLockElement === canvas) hide();
  else if (stats.state === "playing") {
    releaseAll();
    show(paused ? "Paused" : game.title,
         paused ? "Press P or the Pause button to resume." : "Click the picture to play.", true);
  }
});
document.addEventListener("mousemove", (event) => {
  if (document.pointerLockElement !== canvas || paused) return;
  mouseDx += event.movementX;
  mouseDy += event.movementY;
});
const BUTTONS = ["mouse left", "mouse middle", "mouse right"];
for (const [kind, down] of [["mousedown", true], ["mouseup", false]]) {
  document.addEventListener(kind, (event) => {
    if (document.pointerLockElement !== canvas || paused) return;
    const name = BUTTONS[event.button];
    if (!name) return;
    if (down) held.add(name); else held.delete(name);
    seq += 1;
    if (down) pressedAt.set(seq, performance.now());
    send({ t: "key", key: name, down, seq });
  });
}
setInterval(() => {
  if (!mouseDx && !mouseDy) return;
  const clamp = (v) => Math.max(-10000, Math.min(10000, Math.round(v)));
  seq += 1;
  send({ t: "mouse", dx: clamp(mouseDx), dy: clamp(mouseDy), seq });
  mouseDx = mouseDy = 0;
}, MOUSE_MS);

// -- pause, reset, fullscreen ---------------------------------------------------------
function togglePause() {
  if (stats.state !== "playing") return;
  paused = !paused;
  held.clear();
  send({ t: "pause", on: paused });
  if (paused) {
    if (document.pointerLockElement) document.exitPointerLock();
    show("Paused", "Press P or the Pause button to resume.", true);
  } else {
    show(game.title, "Click the picture to play.", true);
  }
  $("pause").textContent = paused ? "Resume" : "Pause";
}
function toggleFullscreen() {
  if (document.fullscreenElement) document.exitFullscreen();
  else $("stage").requestFullscreen().catch(() => {});
}
$("pause").addEventListener("click", togglePause);
$("reset").addEventListener("click", () => send({ t: "reset" }));
$("fullscreen").addEventListener("click", toggleFullscreen);

function legend() {
  const table = $("controls");
  table.textContent = "";
  const rows = Object.entries(game.bindings).map(([button, keys]) => [keys.join(", "), button]);
  rows.push(["mouse", "turn (click the picture first)"],
            [game.controls.pause, "pause"], [game.controls.reset, "reset"],
            [game.controls.fullscreen, "fullscreen"], ["escape", "free the mouse"]);
  for (const [keys, what] of rows) {
    const tr = table.insertRow();
    tr.insertCell().textContent = keys;
    tr.insertCell().textContent = what.replaceAll("_", " ");
  }
}

// -- HUD ------------------------------------------------------------------------------
setInterval(() => {
  const now = performance.now();
  while (frameTimes.length && frameTimes[0] < now - 2000) frameTimes.shift();
  while (lastBytes.length && lastBytes[0][0] < now - 2000) lastBytes.shift();
  stats.fps = frameTimes.length / 2;
  const kbps = lastBytes.reduce((sum, [, n]) => sum + n, 0) / 2 / 1024;
  if (!game) { hud.textContent = ""; return; }
  const p50 = percentile(stats.latencies, 0.5), p95 = percentile(stats.latencies, 0.95);
  const latency = Number.isNaN(p50) ? "press a key" :
    `${p50.toFixed(0)} ms p50, ${p95.toFixed(0)} ms p95`;
  hud.textContent = [
    `${game.title} [${game.engine}]  ${stats.fps.toFixed(1)} frames/s  ` +
      `server ${stats.serverRate.toFixed(1)} ticks/s (target ${game.tick_rate})`,
    `input → frame ${latency}  ·  ${kbps.toFixed(1)} KiB/s ${game.codec}`,
    `players ${stats.players}/${game.capacity}` + (stats.waiting ? `, ${stats.waiting} waiting` : "") +
      (stats.mode === "attract" ? "  ·  attract mode" : "") + (paused ? "  ·  PAUSED" : ""),
    "keys: " + ([...held].join(" ") || "-"),
  ].join("\n");
}, 250);

connect();
