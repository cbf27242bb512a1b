/* wsrelay client page: connection + message log, throughput run against /echo,
 * relay channels. Plain browser JavaScript, no build step, no dependencies.
 * Everything peer-controlled is shown with textContent, never parsed as HTML. */
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);

  // ---- formatting -----------------------------------------------------------

  const CLOSE_NAMES = {
    1000: 'normal closure', 1001: 'going away', 1002: 'protocol error',
    1003: 'unsupported data', 1005: 'no status code', 1006: 'abnormal closure',
    1007: 'invalid payload data', 1008: 'policy violation', 1009: 'message too big',
    1010: 'missing extension', 1011: 'internal server error', 1012: 'service restart',
    1013: 'try again later', 1015: 'TLS handshake failed',
  };

  /* "code 1001 (going away), reason “server shutting down”" */
  function describeClose(ev) {
    let s = 'code ' + ev.code;
    const name = CLOSE_NAMES[ev.code];
    if (name) s += ' (' + name + ')';
    if (ev.reason) s += ', reason “' + ev.reason + '”';
    return s;
  }

  function pad(n, w) { return String(n).padStart(w, '0'); }

  function clock(d) {
    return pad(d.getHours(), 2) + ':' + pad(d.getMinutes(), 2) + ':' +
           pad(d.getSeconds(), 2) + '.' + pad(d.getMilliseconds(), 3);
  }

  const numFmt = new Intl.NumberFormat('en-US');

  function fmtBytes(n) {
    if (n < 1024) return numFmt.format(n) + ' B';
    if (n < 1024 * 1024) return (n / 1024).toFixed(n < 10240 ? 2 : 1) + ' KiB';
    if (n < 1024 * 1024 * 1024) return (n / 1048576).toFixed(n < 10485760 ? 2 : 1) + ' MiB';
    return (n / 1073741824).toFixed(2) + ' GiB';
  }

  function fmtMs(ms) {
    if (!isFinite(ms)) return '—';
    if (ms < 1) return ms.toFixed(3) + ' ms';
    if (ms < 10) return ms.toFixed(2) + ' ms';
    if (ms < 1000) return ms.toFixed(1) + ' ms';
    return (ms / 1000).toFixed(2) + ' s';
  }

  function fmtRate(r) {
    if (!isFinite(r)) return '—';
    return numFmt.format(Math.round(r));
  }

  /* UTF-8 length of a JS string without allocating an encoded copy. */
  function utf8Len(s) {
    let n = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x80) n += 1;
      else if (c < 0x800) n += 2;
      else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length &&
               (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) { n += 4; i++; }
      else n += 3; /* lone surrogates are sent as U+FFFD, 3 bytes */
    }
    return n;
  }

  const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

  /* "65 63 68 6f …" for the first bytes, plus the text when the bytes are
   * printable UTF-8, so a binary echo of typed text stays readable. */
  function binaryPreview(buf) {
    const u8 = new Uint8Array(buf);
    const shown = Math.min(u8.length, 48);
    const hex = [];
    for (let i = 0; i < shown; i++) hex.push(u8[i].toString(16).padStart(2, '0'));
    let s = hex.join(' ') + (u8.length > shown ? ' …' : '');
    if (u8.length > 0 && u8.length <= 4096) {
      try {
        const text = strictUtf8.decode(u8);
        if (!/[\u0000-\u0008\u000e-\u001f\u007f]/.test(text)) s += '\n“' + text + '”';
      } catch (e) { /* not UTF-8: the hex is all we show */ }
    }
    return s;
  }

  const MAX_TEXT_SHOWN = 4000;
  function clip(text) {
    if (text.length <= MAX_TEXT_SHOWN) return text;
    return text.slice(0, MAX_TEXT_SHOWN) + '… (' + numFmt.format(text.length - MAX_TEXT_SHOWN) + ' more characters)';
  }

  /* Endpoint URLs follow the page's own address: ws: for http, wss: for https. */
  function pageBase() {
    const l = window.location;
    if (l.protocol === 'http:' || l.protocol === 'https:')
      return (l.protocol === 'https:' ? 'wss:' : 'ws:') + '//' + l.host;
    return 'ws://localhost:8080';
  }

  /* The server named in the connection field (scheme + host), or the page's. */
  function serverBase() {
    try {
      const u = new URL(els.url.value.trim());
      if (u.protocol === 'ws:' || u.protocol === 'wss:') return u.protocol + '//' + u.host;
    } catch (e) { /* fall back to the page's own server */ }
    return pageBase();
  }

  function setStatus(el, textEl, state, text) {
    el.dataset.state = state;
    textEl.textContent = text;
  }

  // ---- elements ---------------------------------------------------------------

  const els = {
    url: $('conn-url'), connect: $('conn-connect'), disconnect: $('conn-disconnect'),
    auto: $('conn-auto'), status: $('conn-status'), statusText: $('conn-status-text'),
    badge: $('top-badge'), badgeText: $('top-badge-text'),
    msgForm: $('msg-form'), msgText: $('msg-text'), msgSend: $('msg-send'), msgFile: $('msg-file'),
    logWrap: $('log-wrap'), logBody: $('log-body'), logEmpty: $('log-empty'),
    logCount: $('log-count'), logClear: $('log-clear'),
  };

  // ---- message log --------------------------------------------------------------

  const LOG_MAX_ROWS = 1000;
  let logRows = 0;

  function updateLogCount() {
    els.logCount.textContent = numFmt.format(logRows) + (logRows === 1 ? ' entry' : ' entries');
    els.logEmpty.hidden = logRows > 0;
  }

  /* dir: 'in' | 'out' | 'sys' | 'err'; size in bytes or null; kind 'text' | 'bin' | null. */
  function logEntry(dir, size, kind, content) {
    const wrap = els.logWrap;
    const atBottom = wrap.scrollHeight - wrap.scrollTop - wrap.clientHeight < 24;
    const tr = document.createElement('tr');
    tr.className = dir;
    const t = document.createElement('td');
    t.className = 't';
    t.textContent = clock(new Date());
    const d = document.createElement('td');
    d.className = 'd';
    d.textContent = { in: '↓ in', out: '↑ out', sys: '• info', err: '! error' }[dir];
    const sz = document.createElement('td');
    sz.className = 'sz';
    sz.textContent = size == null ? '' : fmtBytes(size);
    const c = document.createElement('td');
    c.className = 'c';
    if (kind) {
      const k = document.createElement('span');
      k.className = 'kind';
      k.textContent = kind;
      c.appendChild(k);
    }
    c.appendChild(document.createTextNode(content));
    tr.append(t, d, sz, c);
    els.logBody.appendChild(tr);
    logRows++;
    while (logRows > LOG_MAX_ROWS) {
      els.logBody.removeChild(els.logBody.firstElementChild);
      logRows--;
    }
    updateLogCount();
    if (atBottom) wrap.scrollTop = wrap.scrollHeight;
  }

  function logData(dir, data, note) {
    if (typeof data === 'string') {
      logEntry(dir, utf8Len(data), 'text', clip(data));
    } else {
      const prefix = note ? note + '\n' : '';
      logEntry(dir, data.byteLength, 'bin', prefix + binaryPreview(data));
    }
  }

  els.logClear.addEventListener('click', () => {
    els.logBody.textContent = '';
    logRows = 0;
    updateLogCount();
  });

  // ---- connection ------------------------------------------------------------------

  const BACKOFF_FIRST_MS = 500;
  const BACKOFF_MAX_MS = 15000;

  const conn = {
    ws: null,
    url: '',
    opened: false,
    attempt: 0,        /* failed attempts since the last successful open */
    retryTimer: 0,
    tickTimer: 0,
    retryAt: 0,        /* performance.now() of the next attempt */
    lastClose: '',     /* text of the last close, kept while waiting to retry */
    userClosed: false, /* the user pressed Disconnect: no automatic reconnect */
  };

  function setConnState(state, text, badge) {
    setStatus(els.status, els.statusText, state, text);
    els.badge.dataset.state = state;
    els.badgeText.textContent = badge;
    const live = conn.ws !== null;
    const open = live && conn.opened;
    els.connect.disabled = live;
    els.disconnect.disabled = !live && !conn.retryTimer;
    els.msgSend.disabled = !open;
  }

  function cancelRetry() {
    clearTimeout(conn.retryTimer);
    clearInterval(conn.tickTimer);
    conn.retryTimer = 0;
    conn.tickTimer = 0;
  }

  function showRetry() {
    const left = Math.max(0, conn.retryAt - performance.now()) / 1000;
    setConnState('waiting', conn.lastClose + '. Reconnecting in ' + left.toFixed(1) +
                 ' s (attempt ' + (conn.attempt + 1) + ')…', 'Reconnecting…');
  }

  /* Exponential back-off with ±20% jitter so many pages do not retry in step. */
  function scheduleRetry() {
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * Math.pow(2, conn.attempt));
    const delay = base * (0.8 + 0.4 * Math.random());
    conn.retryAt = performance.now() + delay;
    conn.retryTimer = setTimeout(() => { cancelRetry(); connect(true); }, delay);
    conn.tickTimer = setInterval(showRetry, 200);
    showRetry();
  }

  function connect(isRetry) {
    cancelRetry();
    const url = els.url.value.trim();
    let parsed = null;
    try { parsed = new URL(url); } catch (e) { /* reported below */ }
    if (!parsed || (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:')) {
      setConnState('error', 'Enter a ws:// or wss:// URL, for example ' + pageBase() + '/websocket.', 'Not connected');
      els.url.setAttribute('aria-invalid', 'true');
      els.url.focus();
      return;
    }
    els.url.removeAttribute('aria-invalid');
    if (!isRetry) conn.attempt = 0;
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      setConnState('error', 'Cannot connect: ' + e.message, 'Not connected');
      return;
    }
    ws.binaryType = 'arraybuffer';
    conn.ws = ws;
    conn.url = url;
    conn.opened = false;
    setConnState('connecting', 'Connecting to ' + url +
                 (conn.attempt ? ' (attempt ' + (conn.attempt + 1) + ')' : '') + '…', 'Connecting…');

    ws.onopen = () => {
      if (conn.ws !== ws) return;
      conn.opened = true;
      conn.attempt = 0;
      setConnState('open', 'Connected to ' + url, 'Connected');
      logEntry('sys', null, null, 'Connected to ' + url);
    };
    ws.onmessage = (ev) => {
      if (conn.ws === ws) logData('in', ev.data);
    };
    ws.onclose = (ev) => {
      if (conn.ws !== ws) return;
      const wasOpen = conn.opened;
      conn.ws = null;
      conn.opened = false;
      conn.lastClose = (wasOpen ? 'Disconnected: ' : 'Could not connect to ' + url + ': ') + describeClose(ev);
      logEntry(wasOpen ? 'sys' : 'err', null, null, conn.lastClose);
      if (!wasOpen) conn.attempt++;
      if (ev.code !== 1000 && els.auto.checked && !conn.userClosed) {
        scheduleRetry();
      } else {
        setConnState('closed', conn.lastClose, 'Disconnected');
      }
    };
    /* An error event carries no detail; the close event that follows does. */
    ws.onerror = () => {};
  }

  function disconnect() {
    conn.userClosed = true;
    if (conn.retryTimer) {
      cancelRetry();
      setConnState('closed', conn.lastClose + '. Reconnect cancelled.', 'Disconnected');
      return;
    }
    if (conn.ws) {
      setConnState('connecting', 'Closing…', 'Closing…');
      conn.ws.close(1000, 'bye');
    }
  }

  document.getElementById('conn-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    conn.userClosed = false;
    connect(false);
  });
  els.disconnect.addEventListener('click', disconnect);
  els.auto.addEventListener('change', () => {
    if (!els.auto.checked && conn.retryTimer) {
      cancelRetry();
      setConnState('closed', conn.lastClose + '. Automatic reconnect is off.', 'Disconnected');
    } else if (els.auto.checked && !conn.ws && !conn.retryTimer && !conn.userClosed && conn.lastClose) {
      scheduleRetry();
    }
  });

  // ---- sending -------------------------------------------------------------------

  function sendKind() {
    return document.querySelector('input[name="msg-kind"]:checked').value;
  }

  function requireOpen() {
    if (conn.ws && conn.opened && conn.ws.readyState === WebSocket.OPEN) return conn.ws;
    logEntry('err', null, null, 'Not connected: connect first, then send.');
    return null;
  }

  els.msgForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = els.msgText.value;
    if (text === '') return;
    const ws = requireOpen();
    if (!ws) return;
    if (sendKind() === 'binary') {
      const bytes = new TextEncoder().encode(text);
      ws.send(bytes);
      logData('out', bytes.buffer);
    } else {
      ws.send(text);
      logData('out', text);
    }
    els.msgText.value = '';
    els.msgText.focus();
  });

  els.msgText.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      els.msgForm.requestSubmit();
    }
  });

  els.msgFile.addEventListener('change', () => {
    const file = els.msgFile.files && els.msgFile.files[0];
    els.msgFile.value = '';
    if (!file) return;
    const ws = requireOpen();
    if (!ws) return;
    file.arrayBuffer().then((buf) => {
      if (ws.readyState !== WebSocket.OPEN) {
        logEntry('err', null, null, 'Connection closed before “' + file.name + '” could be sent.');
        return;
      }
      ws.send(buf);
      logData('out', buf, 'file “' + file.name + '”');
    }, (err) => {
      logEntry('err', null, null, 'Could not read “' + file.name + '”: ' + err.message);
    });
  });

  // ---- throughput --------------------------------------------------------------------

  const tpEls = {
    panel: $('tp'), form: $('tp-form'), count: $('tp-count'), size: $('tp-size'), window: $('tp-window'),
    start: $('tp-start'), stop: $('tp-stop'), status: $('tp-status'), statusText: $('tp-status-text'),
    progress: $('tp-progress'), rate: $('tp-rate'), bw: $('tp-bw'), p50: $('tp-p50'), p99: $('tp-p99'),
    done: $('tp-done'), elapsed: $('tp-elapsed'), canvas: $('tp-chart'),
  };

  const SAMPLE_MS = 200;
  const STALL_MS = 10000;

  /* Round trips are matched by order: one socket, and /echo answers in order.
   * sendTimes is a ring of K slots: at most K messages are ever outstanding. */
  let tp = null;

  function tpSetState(state, text) {
    tpEls.panel.dataset.state = state;
    setStatus(tpEls.status, tpEls.statusText, state, text);
    const running = state === 'running' || state === 'connecting';
    tpEls.start.disabled = running;
    tpEls.stop.disabled = !running;
    for (const el of [tpEls.count, tpEls.size, tpEls.window]) el.disabled = running;
  }

  function readInt(el, name) {
    const v = Number(el.value);
    const min = Number(el.min), max = Number(el.max);
    if (!Number.isInteger(v) || v < min || v > max) {
      el.setAttribute('aria-invalid', 'true');
      el.focus();
      throw new Error(name + ' must be a whole number from ' + numFmt.format(min) + ' to ' + numFmt.format(max) + '.');
    }
    el.removeAttribute('aria-invalid');
    return v;
  }

  function percentile(sorted, q) {
    if (sorted.length === 0) return NaN;
    const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
    return sorted[i];
  }

  function tpStart() {
    let n, s, k;
    try {
      n = readInt(tpEls.count, 'Messages');
      s = readInt(tpEls.size, 'Size');
      k = readInt(tpEls.window, 'In flight');
    } catch (e) {
      tpSetState('error', e.message);
      return;
    }
    k = Math.min(k, n);
    const payload = new Uint8Array(s);
    for (let i = 0; i < s; i++) payload[i] = (i * 31 + 7) & 0xff;
    const url = serverBase() + '/echo';
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      tpSetState('error', 'Cannot open ' + url + ': ' + e.message);
      return;
    }
    ws.binaryType = 'arraybuffer';
    tp = {
      ws, url, n, s, k, payload,
      view: new DataView(payload.buffer),
      sendTimes: new Float64Array(k),
      rtts: new Float64Array(n),
      sent: 0, recv: 0, bad: 0,
      t0: 0, tEnd: 0, lastT: 0, lastRecv: 0, lastMsgT: 0,
      samples: [], timer: 0, opened: false, finished: false,
    };
    const run = tp;
    for (const el of [tpEls.rate, tpEls.bw, tpEls.p50, tpEls.p99, tpEls.elapsed]) el.textContent = '—';
    tpEls.done.textContent = '0';
    tpEls.progress.max = n;
    tpEls.progress.value = 0;
    drawChart(run.samples);
    tpSetState('connecting', 'Connecting to ' + url + '…');

    ws.onopen = () => {
      if (tp !== run) return;
      run.opened = true;
      run.t0 = run.lastT = run.lastMsgT = performance.now();
      tpSetState('running', 'Running: ' + numFmt.format(n) + ' × ' + fmtBytes(s) + ', ' + k + ' in flight…');
      run.timer = setInterval(() => tpSample(run), SAMPLE_MS);
      while (run.sent < k) tpSendOne(run);
    };
    ws.onmessage = (ev) => {
      if (tp !== run || run.finished) return;
      const now = performance.now();
      const data = ev.data;
      const i = run.recv;
      run.rtts[i] = now - run.sendTimes[i % run.k];
      run.lastMsgT = now;
      if (!(data instanceof ArrayBuffer) || data.byteLength !== run.s ||
          (run.s >= 4 && new DataView(data).getUint32(0) !== (i >>> 0))) {
        run.bad++;
      }
      run.recv++;
      if (run.recv === run.n) tpFinish(run, null);
      else if (run.sent < run.n) tpSendOne(run);
    };
    ws.onclose = (ev) => {
      if (tp !== run || run.finished) return;
      tpFinish(run, run.opened
        ? 'Connection closed during the run: ' + describeClose(ev)
        : 'Could not open ' + url + ': ' + describeClose(ev));
    };
    ws.onerror = () => {};
  }

  function tpSendOne(run) {
    if (run.s >= 4) run.view.setUint32(0, run.sent >>> 0);
    run.sendTimes[run.sent % run.k] = performance.now();
    run.ws.send(run.payload); /* send() copies the bytes, so the buffer is reused */
    run.sent++;
  }

  /* One chart point per SAMPLE_MS: the window's rate and p99, and live totals. */
  function tpSample(run) {
    const now = performance.now();
    if (run.recv > run.lastRecv || now - run.lastT >= SAMPLE_MS) {
      const win = run.rtts.slice(run.lastRecv, run.recv).sort();
      run.samples.push({
        t: (now - run.t0) / 1000,
        rate: (run.recv - run.lastRecv) / ((now - run.lastT) / 1000),
        p99: percentile(win, 0.99),
      });
      run.lastRecv = run.recv;
      run.lastT = now;
    }
    if (!run.finished && now - run.lastMsgT > STALL_MS) {
      tpFinish(run, 'No echo for ' + STALL_MS / 1000 + ' s: stopped.');
      return;
    }
    tpShow(run, now, false);
    drawChart(run.samples);
  }

  function tpShow(run, now, final) {
    const secs = (now - run.t0) / 1000;
    /* Live figures sort at most ~100k round trips (an even stride over the run);
     * the final ones sort them all. */
    const stride = final ? 1 : Math.max(1, Math.floor(run.recv / 100000));
    let all;
    if (stride === 1) {
      all = run.rtts.slice(0, run.recv).sort();
    } else {
      all = new Float64Array(Math.floor(run.recv / stride));
      for (let i = 0; i < all.length; i++) all[i] = run.rtts[i * stride];
      all.sort();
    }
    const last = run.samples[run.samples.length - 1];
    const rate = final || !last ? run.recv / secs : last.rate;
    tpEls.rate.textContent = fmtRate(rate);
    tpEls.bw.textContent = fmtBytes(Math.round(run.recv * run.s / secs)) + '/s';
    tpEls.p50.textContent = fmtMs(percentile(all, 0.5));
    tpEls.p99.textContent = fmtMs(percentile(all, 0.99));
    tpEls.done.textContent = numFmt.format(run.recv); /* of run.n: the bar and status say so */
    tpEls.elapsed.textContent = secs.toFixed(2) + ' s';
    tpEls.progress.value = run.recv;
  }

  function tpFinish(run, error) {
    if (run.finished) return;
    run.finished = true;
    clearInterval(run.timer);
    const now = performance.now();
    /* The last, partial window becomes a point only if it is long enough for
     * its rate to mean something (or if the run was too short for any other). */
    if (run.opened && run.recv > run.lastRecv &&
        (now - run.lastT >= SAMPLE_MS / 4 || run.samples.length === 0)) {
      const win = run.rtts.slice(run.lastRecv, run.recv).sort();
      run.samples.push({ t: (now - run.t0) / 1000,
                         rate: (run.recv - run.lastRecv) / Math.max(1e-3, (now - run.lastT) / 1000),
                         p99: percentile(win, 0.99) });
    }
    if (run.ws.readyState === WebSocket.OPEN || run.ws.readyState === WebSocket.CONNECTING)
      run.ws.close(1000, 'done');
    if (run.opened && run.recv > 0) tpShow(run, now, true);
    drawChart(run.samples);
    const secs = ((now - run.t0) / 1000).toFixed(2);
    if (error) {
      tpSetState('error', error + (run.opened ? ' (' + numFmt.format(run.recv) + ' of ' + numFmt.format(run.n) + ' echoed)' : ''));
    } else if (run.bad) {
      tpSetState('error', 'Done, but ' + numFmt.format(run.bad) + ' echoes did not match what was sent.');
    } else {
      tpSetState('done', 'Done: ' + numFmt.format(run.n) + ' messages of ' + fmtBytes(run.s) + ' echoed in ' + secs + ' s.');
    }
  }

  tpEls.form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    tpStart();
  });
  tpEls.stop.addEventListener('click', () => {
    if (tp && !tp.finished) tpFinish(tp, 'Stopped by you');
  });

  // ---- chart ----------------------------------------------------------------------------

  function niceCeil(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function shortNum(v) {
    if (v >= 1e6) return (v / 1e6).toFixed(v >= 1e7 ? 0 : 1) + 'M';
    if (v >= 1e3) return (v / 1e3).toFixed(v >= 1e4 ? 0 : 1) + 'k';
    return String(Math.round(v * 100) / 100);
  }

  let chartSamples = [];

  function drawChart(samples) {
    chartSamples = samples;
    const cv = tpEls.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = cv.clientWidth, h = cv.clientHeight;
    if (w === 0 || h === 0) return;
    if (cv.width !== Math.round(w * dpr) || cv.height !== Math.round(h * dpr)) {
      cv.width = Math.round(w * dpr);
      cv.height = Math.round(h * dpr);
    }
    cv.dataset.samples = String(samples.length);
    const g = cv.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const css = getComputedStyle(document.documentElement);
    const col = (name) => css.getPropertyValue(name).trim();
    const left = 44, right = 44, top = 12, bottom = 22;
    const pw = w - left - right, ph = h - top - bottom;
    g.font = '11px ' + col('--sans');
    g.lineWidth = 1;

    /* Time axis: a 1-2-2.5-5 step, at most 5 ticks, domain a whole number of steps. */
    const tLast = samples.length ? samples[samples.length - 1].t : 0;
    const tStep = niceCeil(Math.max(0.25, tLast) / 4);
    const tMax = Math.max(1, Math.ceil(tLast / tStep - 1e-9)) * tStep;
    let rMax = 0, lMax = 0;
    for (const p of samples) {
      if (p.rate > rMax) rMax = p.rate;
      if (p.p99 > lMax) lMax = p.p99;
    }
    /* Four grid steps of a 1-2-2.5-5 size, so every label is a round number. */
    rMax = 4 * niceCeil(rMax * 1.05 / 4);
    lMax = 4 * niceCeil(lMax * 1.05 / 4);
    const x = (t) => left + (t / tMax) * pw;
    const yR = (v) => top + ph - (v / rMax) * ph;
    const yL = (v) => top + ph - (v / lMax) * ph;

    /* Grid and axes; an empty chart has no scale to label. */
    const empty = samples.length === 0;
    g.strokeStyle = col('--chart-grid');
    g.fillStyle = col('--muted');
    g.textBaseline = 'middle';
    for (let i = 0; i <= 4; i++) {
      const yy = Math.round(top + (ph * i) / 4) + 0.5;
      g.beginPath(); g.moveTo(left, yy); g.lineTo(left + pw, yy); g.stroke();
      if (empty) continue;
      g.textAlign = 'right';
      g.fillText(shortNum(rMax * (1 - i / 4)), left - 6, yy);
      g.textAlign = 'left';
      g.fillText(shortNum(lMax * (1 - i / 4)), left + pw + 6, yy);
    }
    if (empty) {
      g.textAlign = 'center';
      g.fillText('Start a run to chart messages/s and latency', left + pw / 2, top + ph / 2);
      return;
    }
    g.textBaseline = 'top';
    const tDigits = tStep < 1 ? (tStep * 10 % 1 ? 2 : 1) : 0;
    for (let t = 0; t <= tMax + 1e-9; t += tStep) {
      g.textAlign = t === 0 ? 'left' : t + tStep > tMax + 1e-9 ? 'right' : 'center';
      g.fillText(t.toFixed(tDigits) + ' s', x(t), top + ph + 6);
    }

    /* Messages/s: a step per sample window, filled underneath. */
    const rate = col('--chart-rate');
    const steps = () => {
      g.beginPath();
      g.moveTo(x(0), yR(0));
      let prev = 0;
      for (const p of samples) {
        g.lineTo(x(prev), yR(p.rate));
        g.lineTo(x(p.t), yR(p.rate));
        prev = p.t;
      }
      g.lineTo(x(prev), yR(0));
    };
    steps();
    g.closePath();
    g.globalAlpha = 0.15;
    g.fillStyle = rate;
    g.fill();
    g.globalAlpha = 1;
    steps();
    g.strokeStyle = rate;
    g.lineWidth = 2;
    g.lineJoin = 'round';
    g.stroke();

    /* p99 round trip of each window, on the right axis. */
    const mid = (i) => x(((i ? samples[i - 1].t : 0) + samples[i].t) / 2);
    g.beginPath();
    let started = false;
    samples.forEach((p, i) => {
      if (!isFinite(p.p99)) return;
      if (!started) { g.moveTo(mid(i), yL(p.p99)); started = true; } else g.lineTo(mid(i), yL(p.p99));
    });
    g.strokeStyle = col('--chart-rtt');
    g.lineWidth = 1.5;
    g.setLineDash([4, 3]);
    g.stroke();
    g.setLineDash([]);
    g.fillStyle = col('--chart-rtt');
    samples.forEach((p, i) => {
      if (isFinite(p.p99)) { g.beginPath(); g.arc(mid(i), yL(p.p99), 2, 0, 2 * Math.PI); g.fill(); }
    });
  }

  if (typeof ResizeObserver === 'function') {
    new ResizeObserver(() => drawChart(chartSamples)).observe(tpEls.canvas);
  }
  window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => drawChart(chartSamples));

  // ---- relay ---------------------------------------------------------------------------------

  const rEls = {
    panel: $('relay'), joinForm: $('relay-join-form'), name: $('relay-name'), join: $('relay-join'),
    leave: $('relay-leave'), status: $('relay-status'), statusText: $('relay-status-text'),
    feed: $('relay-feed'), sendForm: $('relay-send-form'), text: $('relay-text'), send: $('relay-send'),
    tag: $('relay-tag'),
  };
  const CHANNEL_RE = /^[A-Za-z0-9._-]{1,64}$/;
  const FEED_MAX = 500;
  let relay = null;

  function rSetState(state, text) {
    rEls.panel.dataset.state = state;
    setStatus(rEls.status, rEls.statusText, state, text);
    const live = relay !== null && !relay.closed;
    const open = live && relay.opened;
    rEls.join.disabled = live;
    rEls.leave.disabled = !live;
    rEls.text.disabled = !open;
    rEls.send.disabled = !open;
  }

  function feedItem(cls, who, text) {
    const li = document.createElement('li');
    li.className = cls;
    if (who) {
      const w = document.createElement('span');
      w.className = 'who';
      w.textContent = who + ' · ' + clock(new Date()).slice(0, 8);
      li.appendChild(w);
    }
    li.appendChild(document.createTextNode(text));
    rEls.feed.appendChild(li);
    while (rEls.feed.children.length > FEED_MAX) rEls.feed.removeChild(rEls.feed.firstElementChild);
    rEls.feed.scrollTop = rEls.feed.scrollHeight;
  }

  function relayJoin() {
    const name = rEls.name.value.trim();
    if (!CHANNEL_RE.test(name)) {
      rEls.name.setAttribute('aria-invalid', 'true');
      rEls.name.focus();
      rSetState('error', 'Channel names are 1–64 characters: letters, digits, “.”, “_” or “-”.');
      return;
    }
    rEls.name.removeAttribute('aria-invalid');
    const url = serverBase() + '/relay/' + name;
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      rSetState('error', 'Cannot open ' + url + ': ' + e.message);
      return;
    }
    ws.binaryType = 'arraybuffer';
    const r = { ws, name, url, opened: false, closed: false, leaving: false };
    relay = r;
    rEls.tag.textContent = '/relay/' + name;
    rSetState('connecting', 'Joining #' + name + '…');

    ws.onopen = () => {
      if (relay !== r) return;
      r.opened = true;
      rSetState('open', 'Joined #' + name + '. What you send goes to everyone else in the channel.');
      feedItem('note', null, 'You joined #' + name);
      rEls.text.focus();
    };
    ws.onmessage = (ev) => {
      if (relay !== r) return;
      if (typeof ev.data === 'string') feedItem('peer', 'peer', clip(ev.data));
      else feedItem('peer', 'peer', '[binary, ' + fmtBytes(ev.data.byteLength) + ']\n' + binaryPreview(ev.data));
    };
    ws.onclose = (ev) => {
      if (relay !== r) return;
      r.closed = true;
      if (!r.opened) {
        /* Browsers hide the HTTP status of a refused upgrade; 1006 is all we get. */
        rSetState('error', 'Could not join #' + name + ': the server refused the connection, ' +
                  describeClose(ev) + '. It may not offer relay channels yet, or it is unreachable.');
      } else if (r.leaving) {
        rSetState('idle', 'Left #' + name + '.');
        feedItem('note', null, 'You left #' + name);
      } else {
        rSetState('error', 'Disconnected from #' + name + ': ' + describeClose(ev));
        feedItem('note', null, 'Disconnected: ' + describeClose(ev));
      }
    };
    ws.onerror = () => {};
  }

  rEls.joinForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    relayJoin();
  });
  rEls.leave.addEventListener('click', () => {
    if (!relay || relay.closed) return;
    relay.leaving = true;
    if (relay.opened) {
      rSetState('connecting', 'Leaving #' + relay.name + '…');
      relay.ws.close(1000, 'leave');
    } else {
      /* Still connecting: drop it now. */
      const r = relay;
      r.closed = true;
      r.ws.onclose = null;
      r.ws.close();
      rSetState('idle', 'Cancelled joining #' + r.name + '.');
    }
  });
  rEls.sendForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = rEls.text.value;
    if (text === '' || !relay || !relay.opened || relay.ws.readyState !== WebSocket.OPEN) return;
    relay.ws.send(text);
    feedItem('mine', 'you', clip(text));
    rEls.text.value = '';
    rEls.text.focus();
  });

  // ---- start ------------------------------------------------------------------------------------

  els.url.value = pageBase() + '/websocket';
  updateLogCount();
  drawChart([]);
  connect(false);
})();
