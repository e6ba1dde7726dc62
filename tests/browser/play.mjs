// Plays a stream in Debian's headless Chromium with hls.js or dash.js and prints one JSON
// line of what happened. The Rust tests assert on it.
//
//   node play.mjs --url http://127.0.0.1:PORT/live/show/index.m3u8 --seconds 10 [--player hls|dash|native] [--low-latency]
//     (native: the URL is a whole media file given to <video src>, no player library)
//     [--hls-config JSON]  hls.js config used as is ('{}' = hls.js defaults: lowLatencyMode on); overrides --low-latency
//     [--series]           keep the 500 ms trace [ms, currentTime, bufferedEnd, readyState, rate, latency] (t0Epoch = its zero)
//     [--seek-back N]      once playing, seek N seconds behind the end of the seekable range (DVR), then measure
//     [--level N]          lock the player to video level N (hls.js level, dash.js Representation index; ABR off)
//
// The player page is injected by request interception on the stream's own origin, so
// nothing is fetched from outside and no CORS or private-network rule gets in the way.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const url = opt('url');
const seconds = Number(opt('seconds', '10'));
const player = opt('player', 'hls');
const lowLatency = args.includes('--low-latency');
const trace = args.includes('--trace');
const series = args.includes('--series');
const hlsConfig = opt('hls-config', null);
if (hlsConfig !== null) JSON.parse(hlsConfig);
// Force hls.js to the lowest, highest and middle level during the window.
const switchLevels = args.includes('--switch-levels');
const seekBack = Number(opt('seek-back', '0'));
const level = opt('level', null) === null ? null : Number(opt('level'));
const chromiumPath = process.env.PACKGATE_CHROMIUM || '/usr/bin/chromium';

function fail(msg) {
  process.stderr.write(`play.mjs: ${msg}\n`);
  process.exit(2);
}
if (!url) fail('--url is required');
if (!existsSync(chromiumPath)) fail(`Chromium not found at ${chromiumPath}: run apt-get install chromium`);
let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch {
  fail('playwright-core missing: run (cd tests/browser && npm ci)');
}
const lib = player === 'dash' ? 'dashjs/dist/modern/umd/dash.all.min.js' : 'hls.js/dist/hls.min.js';
const libPath = join(here, 'node_modules', lib);
if (!existsSync(libPath)) fail(`${lib} missing: run (cd tests/browser && npm ci)`);

const origin = new URL(url).origin;
const page_html = `<!doctype html><html><body><video id="v" muted autoplay playsinline></video>
<script src="/__packgate_test/player.js"></script>
<script>
const s = window.__s = { fatal: [], errors: [], playingAt: null, stalls: 0, latency: [], levels: 0, switched: [] };
const v = document.getElementById('v');
v.addEventListener('playing', () => { if (s.playingAt === null) s.playingAt = performance.now(); });
// Buffered ranges of the element and (hls.js) of each SourceBuffer, for the stall log.
const ranges = b => { const r = []; for (let i = 0; i < b.length; i++) r.push([+b.start(i).toFixed(3), +b.end(i).toFixed(3)]); return r; };
const sbRanges = () => {
  try {
    const tr = (window.__p && window.__p.bufferController && window.__p.bufferController.tracks) || {};
    const out = {};
    for (const k in tr) if (tr[k] && tr[k].buffer) out[k] = ranges(tr[k].buffer.buffered);
    return out;
  } catch (e) { return {}; }
};
s.stallLog = [];
const note = what => { if (s.stallLog.length < 12) s.stallLog.push([what, Math.round(performance.now() - (s.playingAt || 0)), +v.currentTime.toFixed(3), ranges(v.buffered), sbRanges()]); };
v.addEventListener('waiting', () => { if (s.playingAt !== null) { s.stalls++; note('waiting'); } });
if (${JSON.stringify(player)} === 'native') {
  // A plain <video src>: a whole file (e.g. a recording's MP4) as the browser plays it.
  v.addEventListener('error', () => s.fatal.push('video error ' + (v.error && v.error.code)));
  v.src = ${JSON.stringify(url)};
} else if (${JSON.stringify(player)} === 'dash') {
  const p = window.__p = dashjs.MediaPlayer().create();
  if (${lowLatency}) p.updateSettings({ streaming: { lowLatencyEnabled: true, delay: { liveDelay: 1 } } });
  if (${trace}) p.updateSettings({ debug: { logLevel: 5 } });
  p.on(dashjs.MediaPlayer.events.ERROR, e => s.fatal.push(JSON.stringify(e.error || e).slice(0, 300)));
  p.on(dashjs.MediaPlayer.events.STREAM_INITIALIZED, () => { s.levels = p.getRepresentationsByType ? p.getRepresentationsByType('video').length : p.getBitrateInfoListFor('video').length; });
  if (${level} !== null) {
    p.updateSettings({ streaming: { abr: { autoSwitchBitrate: { video: false } } } });
    p.on(dashjs.MediaPlayer.events.STREAM_INITIALIZED, () => { p.setRepresentationForTypeByIndex('video', ${level}, true); s.switched.push(${level}); });
  }
  p.initialize(v, ${JSON.stringify(url)}, true);
  setInterval(() => { try { const l = p.getCurrentLiveLatency(); if (l > 0) s.latency.push(l); } catch (e) {} }, 500);
} else {
  // In low-latency mode, let hls.js catch up with the live edge by playing up to 1.5x (its
  // default of 1 never recovers latency lost at startup).
  const h = window.__p = new Hls(${hlsConfig !== null ? hlsConfig : `${lowLatency} ? { lowLatencyMode: true, maxLiveSyncPlaybackRate: 1.5 } : { lowLatencyMode: false }`});
  h.on(Hls.Events.ERROR, (_, d) => { (d.fatal ? s.fatal : s.errors).push(d.details + (d.response ? ' ' + d.response.code : '')); note(d.details); });
  h.on(Hls.Events.MANIFEST_PARSED, (_, d) => { s.levels = d.levels.length; });
  h.on(Hls.Events.LEVEL_SWITCHED, (_, d) => s.switched.push(d.level));
  if (${level} !== null) h.on(Hls.Events.MANIFEST_PARSED, () => { h.currentLevel = ${level}; });
  if (${switchLevels}) {
    v.addEventListener('playing', () => {
      const w = ${seconds} * 1000, n = () => h.levels.length;
      setTimeout(() => { h.currentLevel = 0; }, w * 0.2);
      setTimeout(() => { h.currentLevel = n() - 1; }, w * 0.45);
      setTimeout(() => { h.currentLevel = Math.floor(n() / 2); }, w * 0.7);
    }, { once: true });
  }
  h.loadSource(${JSON.stringify(url)});
  h.attachMedia(v);
  setInterval(() => { if (h.latency > 0) s.latency.push(h.latency); }, 500);
}
s.trace = [];
const t0 = performance.now();
s.t0Epoch = Date.now();
setInterval(() => {
  const b = v.buffered;
  s.trace.push([Math.round(performance.now() - t0), +v.currentTime.toFixed(2), b.length ? +b.end(b.length - 1).toFixed(2) : null, v.readyState, v.playbackRate, window.__p && window.__p.latency !== undefined ? +(+window.__p.latency).toFixed(3) : null]);
}, 500);
// dash.js must start playback itself (autoplay in initialize): a direct video.play()
// leaves its manifest updater believing the player is paused.
if (${JSON.stringify(player)} !== 'dash') v.play().catch(() => {});
</script></body></html>`;

const profile = mkdtempSync(join(tmpdir(), 'packgate-chromium-'));
let browser;
const deadline = setTimeout(() => {
  process.stderr.write('play.mjs: overall timeout\n');
  process.exit(3);
}, (seconds + 60) * 1000);
try {
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required'],
  });
  const page = browser.pages()[0] || (await browser.newPage());
  const httpErrors = [];
  const requests = [];
  const tStart = Date.now();
  const logs = [];
  if (trace) page.on('console', m => { const t = m.text(); if (/Manifest|update|refresh|Timeline|error|rror/i.test(t)) logs.push(t.slice(0, 200)); });
  if (trace) page.on('request', req => requests.push(`${Date.now() - tStart} ${new URL(req.url()).pathname}`));
  page.on('response', resp => {
    if (resp.status() >= 400) httpErrors.push(`${resp.status()} ${new URL(resp.url()).pathname}`);
  });
  await page.route(`${origin}/__packgate_test/**`, route => {
    const path = new URL(route.request().url()).pathname;
    if (path.endsWith('player.js')) return route.fulfill({ body: readFileSync(libPath), contentType: 'text/javascript' });
    return route.fulfill({ body: page_html, contentType: 'text/html' });
  });
  await page.goto(`${origin}/__packgate_test/index.html`);
  // Wait (bounded) for playback to start.
  const startLimit = Date.now() + 30000;
  let s = await page.evaluate(() => window.__s);
  while (s.playingAt === null && s.fatal.length === 0 && Date.now() < startLimit) {
    await page.waitForTimeout(200);
    s = await page.evaluate(() => window.__s);
  }
  let advanced = 0;
  let seek = null;
  if (s.playingAt !== null && seekBack > 0) {
    seek = await page.evaluate(n => {
      const v = document.getElementById('v');
      const r = v.seekable;
      const start = r.length ? r.start(0) : 0, end = r.length ? r.end(r.length - 1) : 0;
      const to = Math.max(start, end - n);
      v.currentTime = to;
      return { start, end, to };
    }, seekBack);
    // Bounded wait until playback runs again at the target.
    const limit = Date.now() + 20000;
    while (Date.now() < limit) {
      const ready = await page.evaluate(to => {
        const v = document.getElementById('v');
        return !v.seeking && v.readyState >= 3 && Math.abs(v.currentTime - to) < 8;
      }, seek.to);
      if (ready) break;
      await page.waitForTimeout(200);
    }
  }
  if (s.playingAt !== null) {
    const t0 = await page.evaluate(() => document.getElementById('v').currentTime);
    await page.waitForTimeout(seconds * 1000);
    const t1 = await page.evaluate(() => document.getElementById('v').currentTime);
    advanced = t1 - t0;
    if (seek) {
      seek.after = await page.evaluate(() => {
        const v = document.getElementById('v');
        const r = v.seekable;
        return { currentTime: v.currentTime, seekableEnd: r.length ? r.end(r.length - 1) : 0 };
      });
    }
  }
  const r = await page.evaluate(() => {
    const v = document.getElementById('v');
    const s = window.__s;
    const lat = [...s.latency].sort((a, b) => a - b);
    const q = p => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : null);
    return {
      played: s.playingAt !== null, videoWidth: v.videoWidth, videoHeight: v.videoHeight, duration: Number.isFinite(v.duration) ? v.duration : null,
      audioDecodedBytes: v.webkitAudioDecodedByteCount || 0, fatal: s.fatal, errors: s.errors.slice(0, 20),
      levels: s.levels, stalls: s.stalls, stallLog: s.stallLog, trace: s.trace, t0Epoch: s.t0Epoch, switched: s.switched, latencyMedian: q(0.5), latencyP95: q(0.95), latencySamples: lat.length,
    };
  });
  r.advanced = Math.round(advanced * 1000) / 1000;
  r.httpErrors = httpErrors.slice(0, 20);
  if (!trace && !series) delete r.trace;
  if (trace) { r.requests = requests; r.logs = logs.slice(0, 60); }
  r.window = seconds;
  if (seek) r.seek = seek;
  r.ok = r.played && r.fatal.length === 0 && advanced >= seconds * 0.8;
  process.stdout.write(JSON.stringify(r) + '\n');
} catch (e) {
  process.stderr.write(`play.mjs: ${e.stack || e}\n`);
  process.exitCode = 1;
} finally {
  clearTimeout(deadline);
  if (browser) await browser.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
