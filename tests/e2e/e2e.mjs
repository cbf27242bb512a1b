// End-to-end tests of the client page (static/) in Debian's Chromium, driven by
// playwright-core. Starts the server itself on a free loopback port, and stops
// only the server processes it started, by PID.
//
//   WSRELAY=build/plain/wsrelay B=build/plain node tests/e2e/e2e.mjs
//
// Prints one line per check and closes with "e2e: N passed, N failed, N skipped";
// exits non-zero when a check failed. Screenshots go to $B/e2e/.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const WSRELAY = path.resolve(REPO, process.env.WSRELAY || 'build/plain/wsrelay');
const SHOTS = path.resolve(REPO, process.env.B || 'build/plain', 'e2e');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const DEADLINE_MS = 55000;          /* the whole run; the brief allows 60 s */
const started = Date.now();

// ---- results -------------------------------------------------------------------

let passed = 0, failed = 0, skipped = 0;
const log = (s) => process.stdout.write(s + '\n');

class Skip extends Error {}

function check(cond, what) {
  if (!cond) throw new Error(what);
}

async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    passed++;
    log(`  ok    ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    if (e instanceof Skip) {
      skipped++;
      log(`  SKIP ${e.message}`);
      return;
    }
    failed++;
    log(`  FAIL  ${name}: ${e && e.message ? e.message.split('\n')[0] : e}`);
  }
}

// ---- server --------------------------------------------------------------------

const servers = new Set();     /* child processes we started and have not reaped */

/* Start wsrelay; resolve with { child, port } once it prints its start-up line. */
function startServer(port) {
  return new Promise((resolve, reject) => {
    const child = spawn(WSRELAY, ['--host', '127.0.0.1', '--port', String(port), '--threads', '2',
                                  '--static', 'static', '--close-timeout', '2'],
                        { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    servers.add(child);
    let out = '', err = '';
    const timer = setTimeout(() => fail(new Error('no start-up line within 5 s')), 5000);
    function fail(e) {
      clearTimeout(timer);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      reject(new Error(`${e.message}; stdout: ${out.trim()} stderr: ${err.trim()}`));
    }
    child.on('error', fail);
    child.on('exit', (code, sig) => {
      servers.delete(child);
      fail(new Error(`server exited early (status ${code}, signal ${sig})`));
    });
    child.stderr.on('data', (d) => { err += d; });
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (?:\[[^\]]+\]|[^\s:]+):(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        child.on('exit', () => servers.delete(child));
        resolve({ child, port: Number(m[1]) });
      }
    });
  });
}

/* SIGTERM our server and wait for it to exit (SIGKILL after ms). */
function stopServer(child, ms = 6000) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.once('exit', (code) => { clearTimeout(timer); resolve(code); });
    child.kill('SIGTERM');
  });
}

/* HTTP status of a WebSocket upgrade to path (101 when the endpoint exists). */
function upgradeStatus(port, urlPath) {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port, path: urlPath, timeout: 3000,
      headers: {
        Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
      },
    });
    req.on('upgrade', (res, socket) => { socket.destroy(); resolve(res.statusCode); });
    req.on('response', (res) => { res.resume(); resolve(res.statusCode); req.destroy(); });
    req.on('timeout', () => { req.destroy(); reject(new Error('upgrade probe timed out')); });
    req.on('error', reject);
    req.end();
  });
}

// ---- browser -------------------------------------------------------------------

/* Chromium logs a console error for every refused WebSocket; those are expected
 * only while the server is down or for an endpoint that answers 404. */
const EXPECTED_NET_ERROR = /WebSocket connection to '.*' failed/;

function watch(page, label) {
  const w = { console: [], pageErrors: [], allowNetErrors: false };
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    if (w.allowNetErrors && EXPECTED_NET_ERROR.test(m.text())) return;
    w.console.push(`${label}: ${m.text()}`);
  });
  page.on('pageerror', (e) => w.pageErrors.push(`${label}: ${e.message}`));
  return w;
}

function noErrors(w) {
  check(w.pageErrors.length === 0, `uncaught page error: ${w.pageErrors[0]}`);
  check(w.console.length === 0, `console error: ${w.console[0]}`);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, name + '.png'), fullPage: true });
}

const text = (page, sel) => page.locator(sel).innerText();

/* "12,345" / "0.123 ms" / "1.50 s" → number (ms for times). */
function figure(s) {
  const m = /([\d,]+(?:\.\d+)?)\s*(ms|s)?/.exec(s);
  if (!m) return NaN;
  const v = Number(m[1].replace(/,/g, ''));
  return m[2] === 's' ? v * 1000 : v;
}

// ---- the run ---------------------------------------------------------------------

async function main() {
  check(fs.existsSync(WSRELAY), `server binary not found: ${WSRELAY} (set WSRELAY)`);
  check(fs.existsSync(CHROMIUM), `browser not found: ${CHROMIUM}`);
  fs.mkdirSync(SHOTS, { recursive: true });

  let srv = await startServer(0);
  const port = srv.port;
  const base = `http://127.0.0.1:${port}`;
  log(`e2e: server pid ${srv.child.pid} on port ${port}; screenshots in ${path.relative(REPO, SHOTS) || '.'}/`);

  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'wsrelay-e2e-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1366, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  ctx.setDefaultTimeout(8000);
  try {
    const page = ctx.pages()[0] || await ctx.newPage();
    const w = watch(page, 'page');

    await step('page loads without console errors', async () => {
      const res = await page.goto(base + '/', { waitUntil: 'load' });
      check(res && res.status() === 200, `GET / answered ${res && res.status()}`);
      check((await page.title()).includes('wsrelay'), 'title does not name wsrelay');
      for (const sel of ['#conn-url', '#msg-text', '#tp-start', '#relay-name', '#tp-chart'])
        check(await page.locator(sel).count() === 1, `missing ${sel}`);
      const url = await page.inputValue('#conn-url');
      check(url === `ws://127.0.0.1:${port}/websocket`, `URL field holds ${url}`);
      await page.waitForTimeout(300); /* let late errors (missing assets) surface */
      noErrors(w);
      await shot(page, '01-loaded');
    });

    await step('every form control has a label', async () => {
      const unlabeled = await page.evaluate(() =>
        [...document.querySelectorAll('input, textarea, select, button')]
          .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') &&
                          !(el.tagName === 'BUTTON' && el.textContent.trim()))
          .map((el) => el.id || el.outerHTML.slice(0, 60)));
      check(unlabeled.length === 0, `no label: ${unlabeled.join(', ')}`);
    });

    await step('connects to /websocket', async () => {
      await page.waitForSelector('#conn-status[data-state="open"]');
      const s = await text(page, '#conn-status');
      check(s.includes('Connected'), `status reads "${s}"`);
      check(await page.isEnabled('#msg-send'), 'Send stays disabled while connected');
      await shot(page, '02-connected');
    });

    await step('Enter sends; the reply is "echo:" + the message', async () => {
      const msg = `hello from e2e ${process.pid} ✓`;
      await page.focus('#msg-text');
      await page.keyboard.type(msg);
      await page.keyboard.press('Enter');
      const row = page.locator('#log-body tr.in', { hasText: 'echo:' + msg });
      await row.waitFor();
      const size = await row.locator('td.sz').innerText();
      check(size === `${Buffer.byteLength('echo:' + msg)} B`, `logged size ${size}`);
      check(await page.inputValue('#msg-text') === '', 'message box not cleared after send');
      const out = await page.locator('#log-body tr.out', { hasText: msg }).count();
      check(out === 1, `sent message logged ${out} times`);
      noErrors(w);
      await shot(page, '03-echo');
    });

    await step('a file is sent as binary and echoed as binary', async () => {
      const bytes = Buffer.from([0x00, 0xff, 0x10, 0x80, 0x41, 0x42]);
      const before = await page.locator('#log-body tr.in').count();
      await page.setInputFiles('#msg-file', { name: 'blob.bin', mimeType: 'application/octet-stream', buffer: bytes });
      await page.locator('#log-body tr.in').nth(before).waitFor();
      const row = page.locator('#log-body tr.in').nth(before);
      const kind = await row.locator('.kind').innerText();
      check(kind.toLowerCase() === 'bin', `reply logged as ${kind}`);
      check(await row.locator('td.sz').innerText() === `${bytes.length + 5} B`, 'reply size is not 5 + file size');
      const c = await row.locator('td.c').innerText();
      check(c.includes('65 63 68 6f 3a 00 ff 10 80 41 42'), `reply bytes shown as ${c}`);
      noErrors(w);
    });

    await step('throughput run completes with non-zero figures', async () => {
      await page.fill('#tp-count', '3000');
      await page.fill('#tp-size', '512');
      await page.fill('#tp-window', '16');
      await page.click('#tp-start');
      await page.waitForSelector('#tp[data-state="done"], #tp[data-state="error"]', { timeout: 20000 });
      const status = await text(page, '#tp-status');
      check(await page.getAttribute('#tp', 'data-state') === 'done', `run ended with "${status}"`);
      const f = {};
      for (const k of ['rate', 'bw', 'p50', 'p99', 'done', 'elapsed']) f[k] = await text(page, '#tp-' + k);
      log(`        page figures: ${f.rate} msg/s, ${f.bw}, p50 ${f.p50}, p99 ${f.p99}, ${f.done} echoed in ${f.elapsed}`);
      check(figure(f.rate) > 0, `messages/s shows ${f.rate}`);
      check(figure(f.p50) > 0 && figure(f.p99) >= figure(f.p50), `p50 ${f.p50}, p99 ${f.p99}`);
      check(f.done.trim() === '3,000', `echoed shows ${f.done}`);
      check(/3,000 messages of 512 B/.test(status), `status reads "${status}"`);
      const samples = Number(await page.getAttribute('#tp-chart', 'data-samples'));
      check(samples >= 1, `chart has ${samples} points`);
      /* The chart really drew the rate line: some pixels carry the rate colour. */
      const inked = await page.evaluate(() => {
        const cv = document.getElementById('tp-chart');
        const rgb = getComputedStyle(document.documentElement).getPropertyValue('--chart-rate').trim();
        const want = [1, 3, 5].map((i) => parseInt(rgb.slice(i, i + 2), 16));
        const px = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data;
        let n = 0;
        for (let i = 0; i < px.length; i += 4)
          if (px[i + 3] > 200 && Math.abs(px[i] - want[0]) < 8 && Math.abs(px[i + 1] - want[1]) < 8 &&
              Math.abs(px[i + 2] - want[2]) < 8) n++;
        return n;
      });
      check(inked > 20, `only ${inked} pixels of the rate line on the chart`);
      noErrors(w);
      await shot(page, '04-throughput');
    });

    await step('server stop shows in the status; the page reconnects to a restarted server', async () => {
      w.allowNetErrors = true; /* reconnect attempts while the server is down */
      const code = await stopServer(srv.child);
      check(code === 0, `server exited with status ${code} on SIGTERM`);
      await page.waitForFunction(() => {
        const s = document.getElementById('conn-status');
        return s.dataset.state !== 'open' && /1001|Disconnected/.test(s.textContent);
      });
      const s = await text(page, '#conn-status');
      log(`        status after SIGTERM: "${s}"`);
      check(/reconnecting/i.test(s), 'status does not say it will reconnect');
      await shot(page, '05-server-stopped');
      srv = await startServer(port);
      await page.waitForSelector('#conn-status[data-state="open"]', { timeout: 20000 });
      w.allowNetErrors = false;
      await page.fill('#msg-text', 'after restart');
      await page.press('#msg-text', 'Enter');
      await page.locator('#log-body tr.in', { hasText: 'echo:after restart' }).waitFor();
      noErrors(w);
      await shot(page, '06-reconnected');
    });

    await step('Disconnect stops automatic reconnects', async () => {
      await page.click('#conn-disconnect');
      await page.waitForSelector('#conn-status[data-state="closed"]');
      const s = await text(page, '#conn-status');
      check(/Disconnected/.test(s), `status after Disconnect: "${s}"`);
      await page.waitForTimeout(1200); /* longer than the first back-off step */
      check(await page.getAttribute('#conn-status', 'data-state') === 'closed', 'it reconnected anyway');
      await page.click('#conn-connect');
      await page.waitForSelector('#conn-status[data-state="open"]');
    });

    const relayStatus = await upgradeStatus(port, '/relay/x');
    if (relayStatus === 404) {
      await step('relay join failure is shown clearly', async () => {
        w.allowNetErrors = true;
        await page.fill('#relay-name', 'x');
        await page.click('#relay-join');
        await page.waitForSelector('#relay-status[data-state="error"]');
        const s = await text(page, '#relay-status');
        check(/could not join #x/i.test(s), `relay status reads "${s}"`);
        check(await page.isEnabled('#relay-join'), 'Join not offered again after a failure');
        w.allowNetErrors = false;
        noErrors(w);
        await shot(page, '07-relay-join-failed');
      });
      await step('relay', async () => { throw new Skip('relay: server has no relay endpoint'); });
    } else {
      await step('two pages exchange messages through a relay channel', async () => {
        check(relayStatus === 101, `/relay/x upgrade answered ${relayStatus}`);
        const other = await ctx.newPage();
        const w2 = watch(other, 'page 2');
        await other.goto(base + '/');
        const channel = `e2e-${process.pid}`;
        for (const p of [page, other]) {
          await p.fill('#relay-name', channel);
          await p.click('#relay-join');
          await p.waitForSelector('#relay-status[data-state="open"]');
        }
        await page.fill('#relay-text', 'ping from page 1');
        await page.press('#relay-text', 'Enter');
        await other.locator('#relay-feed li.peer', { hasText: 'ping from page 1' }).waitFor();
        await other.fill('#relay-text', 'pong from page 2');
        await other.press('#relay-text', 'Enter');
        await page.locator('#relay-feed li.peer', { hasText: 'pong from page 2' }).waitFor();
        check(await page.locator('#relay-feed li.peer', { hasText: 'ping from page 1' }).count() === 0,
              'the sender received its own message');
        noErrors(w);
        noErrors(w2);
        await shot(page, '07-relay-page1');
        await shot(other, '07-relay-page2');
        await other.close();
      });
    }

    await step('narrow screen: no horizontal scrolling', async () => {
      await page.setViewportSize({ width: 375, height: 800 });
      await page.waitForTimeout(100);
      const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      check(over <= 0, `page is ${over}px wider than a 375px screen`);
      await shot(page, '08-narrow');
    });

    await step('keyboard: Tab reaches the controls with a visible focus ring', async () => {
      await page.setViewportSize({ width: 1366, height: 900 });
      await page.evaluate(() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); });
      const seen = [];
      let ringless = null;
      for (let i = 0; i < 40 && seen.length < 40; i++) {
        await page.keyboard.press('Tab');
        const info = await page.evaluate(() => {
          const el = document.activeElement;
          if (!el || el === document.body) return null;
          /* A hidden native control draws its ring on its styled neighbour. */
          const shown = el.matches('.switch input, .segmented input, .file-pick input') ? el.nextElementSibling : el;
          const cs = getComputedStyle(shown);
          return { id: el.id || el.className || el.tagName, ring: cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) >= 2 };
        });
        if (!info) continue;
        seen.push(info.id);
        if (!info.ring && !ringless) ringless = info.id;
      }
      for (const id of ['conn-url', 'conn-auto', 'msg-text', 'msg-file', 'tp-count', 'tp-start', 'relay-name'])
        check(seen.includes(id), `Tab never reached #${id} (reached: ${seen.join(' ')})`);
      check(!ringless, `#${ringless} has no visible focus ring`);
    });
  } finally {
    await ctx.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
    for (const child of [...servers]) await stopServer(child, 3000);
  }
}

const watchdog = setTimeout(() => {
  log(`  FAIL  e2e run exceeded ${DEADLINE_MS / 1000} s`);
  for (const child of servers) child.kill('SIGKILL');
  log(`e2e: ${passed} passed, ${failed + 1} failed, ${skipped} skipped`);
  process.exit(1);
}, DEADLINE_MS);

try {
  await main();
} catch (e) {
  failed++;
  log(`  FAIL  setup: ${e && e.message ? e.message : e}`);
}
clearTimeout(watchdog);
log(`e2e: finished in ${((Date.now() - started) / 1000).toFixed(1)} s`);
log(`e2e: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed ? 1 : 0);
