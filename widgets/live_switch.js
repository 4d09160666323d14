// LiveSwitch front end (anywidget ESM, no imports: works offline).
// Audio chunks from the kernel are scheduled gaplessly on one AudioContext timeline:
// session time t plays at ctx time `origin + t`. A "cut" from the kernel drops what was scheduled
// from the switch point on; the chunks of the new style follow. The monitor counts starvation
// (the scheduled end falling behind the context's current time) and exposes it as data attributes.

const PAST = 7.0, FUTURE = 3.0;  // seconds of the roll left and right of the playhead

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function render({ model, el: host }) {
  const root = el("div", "mst-live");
  root.tabIndex = 0;
  root.setAttribute("data-lm-suppress-shortcuts", "true");  // keys 1-9 are ours, not JupyterLab's
  root.setAttribute("data-p-suppress-shortcuts", "true");
  host.appendChild(root);

  const header = el("div", "mst-live-header");
  const title = el("div", "mst-live-title", "Live style switch");
  const play = el("button", "mst-live-btn mst-live-play", "▶ Play");
  const stop = el("button", "mst-live-btn mst-live-stop", "■ Stop");
  const quantize = el("select", "mst-live-quantize");
  for (const q of ["beat", "bar"]) {
    const o = el("option", "", "switch at next " + q); o.value = q; quantize.appendChild(o);
  }
  quantize.value = model.get("quantize");
  const upload = el("label", "mst-live-btn mst-live-upload", "⤒ Reference…");
  const file = el("input"); file.type = "file"; file.accept = ".mid,.midi,.wav,.flac,.ogg,.mp3,.aif,.aiff";
  upload.appendChild(file);
  header.append(title, play, stop, quantize, upload);

  const buttons = el("div", "mst-live-styles");
  const canvas = el("canvas", "mst-live-roll");
  const readout = el("div", "mst-live-readout", "Press ▶ Play, then a style (or keys 1-9).");
  const history = el("div", "mst-live-history");
  const status = el("div", "mst-live-status", "");
  root.append(header, buttons, canvas, readout, history, status);

  let ctx = null, master = null, origin = null, playing = false, paused = false;
  let sources = [], notes = [], spans = [], cuts = [];
  let covered = null, lastCut = { at: Infinity, take: -1 };
  let starving = false, clicks = [];
  const stats = { gaps: 0, minAhead: null, chunks: 0, switches: 0, late: 0 };

  const color = (s) => (model.get("colors") || {})[s] || "#888";
  const now = () => (ctx && origin !== null ? ctx.currentTime - origin : null);

  function drawButtons() {
    buttons.innerHTML = "";
    (model.get("styles") || []).forEach((s, i) => {
      const b = el("button", "mst-live-style", "");
      b.dataset.style = s;
      b.style.setProperty("--c", color(s));
      b.append(el("span", "mst-live-key", i < 9 ? String(i + 1) : ""), el("span", "", s));
      if (s === model.get("current_style")) b.classList.add("mst-live-current");
      b.addEventListener("click", () => doSwitch(s));
      buttons.appendChild(b);
    });
  }

  function expose() {
    const pos = now();
    root.dataset.playing = String(playing && !paused);
    root.dataset.gaps = String(stats.gaps);
    root.dataset.minAhead = stats.minAhead === null ? "" : stats.minAhead.toFixed(3);
    root.dataset.chunks = String(stats.chunks);
    root.dataset.audio = ctx ? ctx.state : "";  // "running" once the browser lets sound play
    root.dataset.switches = String(stats.switches);
    root.dataset.position = pos === null ? "" : pos.toFixed(3);
    const span = pos === null ? null : spans.find((s) => s.start <= pos && pos < s.end);
    root.dataset.styleNow = span ? span.style : "";
  }

  async function ensureContext() {
    if (!ctx) {
      ctx = new (window.AudioContext || window.webkitAudioContext)({ latencyHint: "interactive" });
      const limiter = ctx.createDynamicsCompressor();
      limiter.threshold.value = -6; limiter.ratio.value = 12;
      master = ctx.createGain(); master.gain.value = 0.9;
      master.connect(limiter); limiter.connect(ctx.destination);
    }
    if (ctx.state !== "running") await ctx.resume();
  }

  function reset() {
    for (const s of sources) { try { s.src.stop(); } catch (e) { /* not started */ } }
    sources = []; notes = []; spans = []; cuts = []; covered = null; origin = null;
    lastCut = { at: Infinity, take: -1 }; starving = false; clicks = [];
  }

  async function doPlay() {
    if (!playing) {
      // Create and resume the audio context inside the click (browsers let audio start there), but
      // do not make the kernel wait for it: a slow or absent audio device must not stop the music
      // from being generated and drawn.
      const audioReady = ensureContext();
      reset(); playing = true; paused = false;
      model.send({ type: "play", quantize: quantize.value });
      play.textContent = "❚❚ Pause";
      await audioReady;
    } else if (!paused) {
      paused = true; await ctx.suspend(); model.send({ type: "pause" }); play.textContent = "▶ Resume";
    } else {
      paused = false; await ctx.resume(); model.send({ type: "resume", playhead: now() });
      play.textContent = "❚❚ Pause";
    }
    root.focus();
  }

  function doStop() {
    if (!playing) return;
    playing = false; paused = false;
    reset();
    model.send({ type: "stop" });
    play.textContent = "▶ Play";
  }

  function doSwitch(style) {
    if (!playing || paused || origin === null) {  // not playing: it becomes the style to start with
      model.set("current_style", style); model.save_changes(); drawButtons(); return;
    }
    clicks.push({ style, ctxTime: ctx.currentTime, perf: performance.now() });
    model.send({ type: "switch", style, playhead: now() });
    root.focus();
  }

  function onChunk(msg, buffer) {
    if (!playing || !ctx) return;
    if (msg.take < lastCut.take && msg.start >= lastCut.at - 1e-4) return;  // superseded on the way
    if (origin === null) origin = ctx.currentTime - msg.playhead;
    stats.chunks += 1;
    const when = origin + msg.start;
    if (buffer && buffer.byteLength > 1) {
      const pcm = new Int16Array(buffer.buffer ? buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength) : buffer);
      const audio = ctx.createBuffer(1, pcm.length, msg.sample_rate);
      const data = audio.getChannelData(0);
      for (let i = 0; i < pcm.length; i++) data[i] = pcm[i] / 32768;
      const src = ctx.createBufferSource();
      src.buffer = audio; src.connect(master);
      const late = ctx.currentTime - when;
      if (late > 0) { stats.late += 1; if (late < audio.duration) src.start(ctx.currentTime, late); }
      else src.start(when);
      const entry = { src, start: msg.start, take: msg.take, end: msg.start + audio.duration };
      src.onended = () => { sources = sources.filter((s) => s !== entry); };
      sources.push(entry);
    }
    covered = covered === null ? msg.start + msg.duration : Math.max(covered, msg.start + msg.duration);
    for (const [t, d, p] of msg.notes) notes.push({ t, d, p, style: msg.style, take: msg.take });
    spans.push({ start: msg.start, end: msg.start + msg.duration, style: msg.style, take: msg.take });
  }

  function onCut(msg) {
    lastCut = { at: msg.at, take: msg.take };
    for (const s of sources) {
      if (s.take < msg.take && s.start >= msg.at - 1e-4) { try { s.src.stop(); } catch (e) { /* */ } }
    }
    sources = sources.filter((s) => !(s.take < msg.take && s.start >= msg.at - 1e-4));
    notes = notes.filter((n) => !(n.take < msg.take && n.t >= msg.at - 1e-4));
    spans = spans.filter((s) => !(s.take < msg.take && s.start >= msg.at - 1e-4));
    if (covered !== null) covered = Math.min(covered, msg.at);
    cuts.push({ at: msg.at, style: msg.style });
  }

  function onSwitch(msg) {
    stats.switches += 1;
    const click = clicks.find((c) => c.style === msg.style);
    clicks = clicks.filter((c) => c !== click);
    const ready = click ? performance.now() - click.perf : msg.audio_ready_ms;
    const audible = click && origin !== null ? (origin + msg.at - click.ctxTime) * 1000 : msg.audible_ms;
    root.dataset.readyMs = ready.toFixed(1);
    root.dataset.kernelReadyMs = String(msg.audio_ready_ms);
    root.dataset.audibleMs = audible.toFixed(0);
    readout.innerHTML = "";
    const big = el("span", "mst-live-big", `${msg.style}: new style ready ${ready.toFixed(0)} ms after the click`);
    big.style.color = color(msg.style);
    readout.append(big, el("span", "mst-live-sub",
      ` · heard ${audible.toFixed(0)} ms after the click (next ${quantize.value})` +
      ` · model: first token ${msg.first_token_ms} ms, audio ${msg.audio_ready_ms} ms` +
      (msg.late ? " · LATE" : "")));
    readout.classList.toggle("mst-live-bad", ready > 200 || !!msg.late);
  }

  function draw() {
    const w = canvas.clientWidth || 800, h = canvas.clientHeight || 240, dpr = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(w * dpr)) { canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr); }
    const g = canvas.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.fillStyle = "#fbfbfb"; g.fillRect(0, 0, w, h);
    const pos = now();
    const t = pos === null ? 0 : pos;
    const x0 = t - PAST, px = w / (PAST + FUTURE);
    const X = (s) => (s - x0) * px;
    const visible = notes.filter((n) => n.t + n.d > x0 && n.t < t + FUTURE);
    let lo = 48, hi = 84;
    if (visible.length) { lo = Math.min(...visible.map((n) => n.p)) - 2; hi = Math.max(...visible.map((n) => n.p)) + 2; }
    const rowH = (h - 22) / Math.max(12, hi - lo + 1);
    for (const s of spans) {
      if (s.end < x0 || s.start > t + FUTURE) continue;
      g.fillStyle = color(s.style) + "2e"; g.fillRect(X(s.start), 0, X(s.end) - X(s.start) + 0.5, h);
    }
    for (const n of visible) {
      g.fillStyle = color(n.style);
      g.fillRect(X(n.t), 20 + (hi - n.p) * rowH, Math.max(2, n.d * px - 1), Math.max(2, rowH - 1));
    }
    g.font = "bold 15px sans-serif";
    let prev = null;
    for (const s of spans) {
      if (s.style !== prev && s.end > x0 && s.start < t + FUTURE) {
        g.fillStyle = color(s.style); g.fillRect(X(s.start), 0, 2, h); g.fillText(s.style, X(s.start) + 5, 15);
      }
      prev = s.style;
    }
    g.fillStyle = "rgba(255,255,255,0.45)"; g.fillRect(X(t), 0, w - X(t), h);  // not yet heard
    g.fillStyle = "#d62728"; g.fillRect(X(t) - 1, 0, 3, h);
    canvas.dataset.playheadX = X(t).toFixed(1);  // where "now" is drawn (CSS px), for tests
  }

  function monitor() {
    const pos = now();
    if (playing && !paused && pos !== null && pos >= 0 && covered !== null) {
      const ahead = covered - pos;  // scheduled end - current time, in seconds
      stats.minAhead = stats.minAhead === null ? ahead : Math.min(stats.minAhead, ahead);
      if (ahead < 0 && !starving) { stats.gaps += 1; starving = true; }
      if (ahead > 0) starving = false;
    }
    expose();
  }

  // Draw at most ~20 frames a second, and only while playing (a software-rendered canvas at 60 fps
  // would take CPU from the generation on a 2-core machine running kernel and browser together).
  let frame = 0, lastDraw = 0, drawnIdle = false;
  const loop = (ts) => {
    const active = playing && !paused;
    if ((active && ts - lastDraw > 50) || (!active && !drawnIdle)) { draw(); lastDraw = ts; drawnIdle = !active; }
    if (active) drawnIdle = false;
    frame = requestAnimationFrame(loop);
  };
  frame = requestAnimationFrame(loop);
  // Drawn while hidden (a studio tab not open yet), the roll has no size: draw again once it has one.
  const resized = typeof ResizeObserver === "function" ? new ResizeObserver(() => { drawnIdle = false; }) : null;
  if (resized) resized.observe(canvas);
  const monitorTimer = setInterval(monitor, 20);
  const syncTimer = setInterval(() => {
    const pos = now();
    if (playing && !paused && pos !== null) model.send({ type: "sync", playhead: pos });
  }, 1000);

  model.on("msg:custom", (msg, buffers) => {
    if (msg.type === "chunk") onChunk(msg, buffers && buffers[0]);
    else if (msg.type === "cut") onCut(msg);
    else if (msg.type === "switch") onSwitch(msg);
    else if (msg.type === "stopped" && playing) { playing = false; reset(); play.textContent = "▶ Play"; }
  });
  model.on("change:styles", drawButtons);
  model.on("change:colors", drawButtons);
  model.on("change:current_style", drawButtons);
  model.on("change:status", () => { status.textContent = model.get("status"); });
  status.textContent = model.get("status");
  play.addEventListener("click", doPlay);
  stop.addEventListener("click", doStop);
  quantize.addEventListener("change", () => { model.set("quantize", quantize.value); model.save_changes(); });
  file.addEventListener("change", async () => {
    const f = file.files && file.files[0];
    if (!f) return;
    const data = await f.arrayBuffer();
    model.send({ type: "upload", name: f.name }, undefined, [data]);
    file.value = "";
  });
  root.addEventListener("keydown", (e) => {
    const styles = model.get("styles") || [];
    if (e.key >= "1" && e.key <= "9" && styles[+e.key - 1]) { doSwitch(styles[+e.key - 1]); }
    else if (e.key === " ") doPlay();
    else return;
    e.preventDefault(); e.stopPropagation();
  });
  drawButtons();
  expose();
  return () => {
    cancelAnimationFrame(frame); clearInterval(monitorTimer); clearInterval(syncTimer);
    if (resized) resized.disconnect();
    if (playing) model.send({ type: "stop" });
    reset(); if (ctx) ctx.close();
  };
}

export default { render };
