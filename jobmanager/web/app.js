// The Sluice dashboard: a single page that polls the JobManager's REST API (Flink's paths and
// field names) every 2 s. Plain JavaScript, no framework, no build step; every file comes from
// the JobManager itself (jobmanager/web/, embedded at build time).
//
// Routes (location.hash):
//   #/                              cluster overview and jobs
//   #/jobs/<id>[/checkpoints|/exceptions|/logs]   one job
//   #/taskmanagers, #/taskmanagers/<id>           TaskManagers
//   #/jobmanager                    the JobManager's log and configuration
//
// The views build their skeleton once and then update text in place, so a refresh does not
// move the page. Figures the REST API gives as current values only (rates, checkpoint
// durations) are kept here as they come, for the charts of the last minutes.
'use strict';

(() => {
  const POLL_MS = 2000;
  const HISTORY_MS = 5 * 60 * 1000;
  const FETCH_TIMEOUT_MS = 8000;
  const LOG_MAX_LINES = 5000;
  const TERMINAL = new Set(['FINISHED', 'CANCELED', 'FAILED']);
  const SERIES_COLOURS = ['#2f6fde', '#1f9d55', '#e08a00', '#8a63d2', '#d64545', '#17a2b8', '#6b7385', '#c2185b'];

  // ---------------------------------------------------------------- helpers

  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

  function esc(s) {
    return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
  }

  function setText(el, text) {
    if (el && el.textContent !== text) el.textContent = text;
  }

  function setHtml(el, html) {
    if (el && el.__html !== html) {
      el.innerHTML = html;
      el.__html = html;
    }
  }

  const isNum = (x) => typeof x === 'number' && Number.isFinite(x);

  function num(x) {
    if (isNum(x)) return x;
    if (typeof x === 'string' && x.trim() !== '') {
      const n = Number(x);
      return Number.isFinite(n) ? n : null;
    }
    return null;
  }

  // 1.2 K, 3.4 M, 950, 7.5
  function fmtCompact(x) {
    if (!isNum(x)) return '–';
    const a = Math.abs(x);
    const units = [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'K']];
    for (const [v, u] of units) {
      if (a >= v) {
        const y = x / v;
        return (Math.abs(y) >= 100 ? y.toFixed(0) : y.toFixed(1)) + ' ' + u;
      }
    }
    if (a === 0) return '0';
    return a >= 100 ? x.toFixed(0) : a >= 10 ? x.toFixed(1).replace(/\.0$/, '') : x.toFixed(1);
  }

  const fmtRate = (x) => (isNum(x) ? fmtCompact(x) + '/s' : '–');

  function fmtBytes(x) {
    if (!isNum(x) || x < 0) return '–';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (x >= 1024 && i < units.length - 1) {
      x /= 1024;
      i++;
    }
    return (i === 0 ? x.toFixed(0) : x >= 100 ? x.toFixed(0) : x.toFixed(1)) + ' ' + units[i];
  }

  function fmtDuration(ms) {
    if (!isNum(ms) || ms < 0) return '–';
    if (ms < 1000) return Math.round(ms) + ' ms';
    const s = ms / 1000;
    if (s < 60) return s.toFixed(s < 10 ? 2 : 1) + ' s';
    const m = Math.floor(s / 60);
    const h = Math.floor(m / 60);
    const d = Math.floor(h / 24);
    const pad = (n) => String(n).padStart(2, '0');
    if (d > 0) return d + 'd ' + pad(h % 24) + 'h';
    if (h > 0) return h + 'h ' + pad(m % 60) + 'm';
    return m + 'm ' + pad(Math.floor(s % 60)) + 's';
  }

  function fmtTime(ts) {
    if (!isNum(ts) || ts <= 0) return '–';
    const d = new Date(ts);
    const now = new Date();
    const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
    if (d.toDateString() === now.toDateString()) return time;
    return d.toLocaleDateString([], { year: 'numeric', month: 'short', day: 'numeric' }) + ' ' + time;
  }

  const fmtPercent = (x) => (isNum(x) ? (x >= 10 ? x.toFixed(0) : x.toFixed(1)) + '%' : '–');

  const stateBadge = (s) => `<span class="state state-${esc(s)}">${esc(s)}</span>`;

  function toast(message, error = false) {
    const t = $('#toast');
    t.textContent = message;
    t.className = 'toast' + (error ? ' error' : '');
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { t.hidden = true; }, error ? 7000 : 3500);
  }

  // ---------------------------------------------------------------- the REST API

  class ApiError extends Error {
    constructor(status, message, path) {
      super(message);
      this.status = status;
      this.path = path;
    }
  }

  // The REST token. A JobManager with security.rest.auth.token-file answers 401 to a request
  // without it: the page then asks for it in a dialog, keeps it for this tab only
  // (sessionStorage) and sends it as `Authorization: Bearer` on every request.
  const TOKEN_KEY = 'sluice.restToken';
  // The token in memory; sessionStorage only keeps it across reloads, when the browser lets it.
  let currentToken = (() => {
    try {
      return sessionStorage.getItem(TOKEN_KEY) || '';
    } catch {
      return '';
    }
  })();
  const storedToken = () => currentToken;
  function storeToken(token) {
    currentToken = token;
    try {
      if (token) sessionStorage.setItem(TOKEN_KEY, token);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch {
      // storage refused (site data blocked, say): the token lasts until the page reloads
    }
    $('#sign-out').hidden = !token;
  }

  // Resolves once a token is entered. Every request refused meanwhile waits for the same one.
  let tokenAsked = null;
  function askForToken(refused) {
    if (tokenAsked) return tokenAsked;
    tokenAsked = new Promise((resolve) => {
      const dialog = $('#token-dialog');
      const input = $('#token-input');
      const message = $('#token-message');
      message.textContent = refused
        ? 'The JobManager refused that token. Enter the token of its security.rest.auth.token-file.'
        : 'This JobManager asks for its REST token (the file named by security.rest.auth.token-file).';
      message.classList.toggle('error', refused);
      input.value = '';
      let entered = false;
      $('#token-form').onsubmit = (ev) => {
        ev.preventDefault();
        const token = input.value.trim();
        if (!token) return;
        storeToken(token);
        entered = true;
        dialog.close();
      };
      // Nothing works without the token: Escape (which a browser may let close the dialog
      // whatever the page says) opens it again.
      dialog.oncancel = (ev) => ev.preventDefault();
      dialog.onclose = () => {
        if (!entered) {
          dialog.showModal();
          return;
        }
        tokenAsked = null;
        resolve();
      };
      dialog.showModal();
      input.focus();
    });
    return tokenAsked;
  }

  // The answer to `path`: JSON (or text for text/plain). ApiError with Flink's errors[0] for a
  // status other than 2xx; a network failure or timeout throws too. A 401 asks for the token
  // and tries again with it.
  async function api(path, options = {}) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
    const token = storedToken();
    const headers = new Headers(options.headers || {});
    if (token) headers.set('Authorization', `Bearer ${token}`);
    let res;
    try {
      res = await fetch(path, { cache: 'no-store', ...options, headers, signal: ctl.signal });
    } catch (e) {
      throw new ApiError(0, e.name === 'AbortError' ? `no answer from ${path} in ${FETCH_TIMEOUT_MS / 1000} s` : `cannot reach the JobManager (${e.message})`, path);
    } finally {
      clearTimeout(timer);
    }
    if (res.status === 401) {
      // Unless another request has brought a newer token meanwhile, this one is missing or wrong.
      if (storedToken() === token) await askForToken(token !== '');
      return api(path, options);
    }
    const type = res.headers.get('Content-Type') || '';
    const text = await res.text();
    let body = text;
    if (type.includes('json')) {
      try {
        body = text ? JSON.parse(text) : null;
      } catch {
        body = text;
      }
    }
    if (!res.ok) {
      const msg = body && Array.isArray(body.errors) ? body.errors.join('; ') : `${res.status} ${res.statusText}`;
      throw new ApiError(res.status, msg, path);
    }
    return body;
  }

  // Like api(), but null when the answer is 404 (an endpoint this JobManager does not have).
  async function apiOptional(path) {
    try {
      return await api(path);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return null;
      throw e;
    }
  }

  async function cancelJob(id, name) {
    if (!window.confirm(`Cancel job "${name || id}"?\n\n${id}`)) return;
    try {
      await api(`/jobs/${id}?mode=cancel`, { method: 'PATCH', body: '' });
      toast(`Cancelling ${name || id}…`);
    } catch (e) {
      toast(`Cancel failed: ${e.message}`, true);
    }
    pollSoon();
  }

  // ---------------------------------------------------------------- kept history

  // Per job: the rates of each vertex and the checkpoints seen, kept while the page is open.
  const jobMemory = new Map();

  function memoryOf(jid) {
    let m = jobMemory.get(jid);
    if (!m) {
      m = { rates: new Map(), checkpoints: new Map(), hasHistory: false };
      jobMemory.set(jid, m);
    }
    return m;
  }

  function pushSample(series, t, v) {
    series.push({ t, v });
    while (series.length && series[0].t < t - HISTORY_MS) series.shift();
  }

  // ---------------------------------------------------------------- charts (SVG)

  function niceMax(x) {
    if (!(x > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(x)));
    for (const m of [1, 2, 4, 8, 10]) if (m * p >= x) return m * p;
    return 10 * p;
  }

  // A time chart of the last HISTORY_MS: series [{name, colour, points: [{t, v}], dots}].
  function drawChart(svg, series, yFormat, emptyText) {
    const W = 640;
    const H = 210;
    const L = 62;
    const R = 14;
    const T = 12;
    const B = 26;
    const now = Date.now();
    const t0 = now - HISTORY_MS;
    const pts = series.flatMap((s) => s.points.filter((p) => p.t >= t0 && isNum(p.v)));
    const ymax = niceMax(Math.max(0, ...pts.map((p) => p.v)));
    const x = (t) => L + ((t - t0) / HISTORY_MS) * (W - L - R);
    const y = (v) => T + (1 - v / ymax) * (H - T - B);
    let out = '';
    for (let i = 0; i <= 4; i++) {
      const v = (ymax * i) / 4;
      out += `<line class="grid" x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}"/>`;
      if (pts.length) out += `<text class="axis" x="${L - 8}" y="${y(v) + 3.5}" text-anchor="end">${esc(yFormat(v))}</text>`;
    }
    for (let m = 5; m >= 0; m--) {
      const t = now - m * 60000;
      out += `<text class="axis" x="${x(t)}" y="${H - 8}" text-anchor="${m === 0 ? 'end' : m === 5 ? 'start' : 'middle'}">${m === 0 ? 'now' : '−' + m + ' min'}</text>`;
    }
    if (!pts.length) {
      out += `<text class="nodata" x="${(L + W - R) / 2}" y="${H / 2}" text-anchor="middle">${esc(emptyText)}</text>`;
    }
    for (const s of series) {
      const p = s.points.filter((q) => q.t >= t0 && isNum(q.v));
      if (!p.length) continue;
      if (!s.dotsOnly && p.length > 1) {
        const d = p.map((q, i) => `${i ? 'L' : 'M'}${x(q.t).toFixed(1)},${y(q.v).toFixed(1)}`).join('');
        out += `<path class="line" d="${d}" stroke="${s.colour}"/>`;
      }
      if (s.dots || p.length === 1) {
        for (const q of p) {
          out += `<circle cx="${x(q.t).toFixed(1)}" cy="${y(q.v).toFixed(1)}" r="3.2" fill="${q.colour || s.colour}"><title>${esc(q.label || '')}</title></circle>`;
        }
      }
    }
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
    svg.innerHTML = out;
  }

  function legendHtml(series) {
    return series.map((s) => `<span><span class="sw" style="background:${s.colour}"></span>${esc(s.name)}</span>`).join('');
  }

  // ---------------------------------------------------------------- the job graph (SVG)

  const BOX_W = 250;
  const BOX_H = 108;
  const GAP_X = 90;
  const GAP_Y = 28;
  const PAD = 16;

  // Columns by depth (sources at 0, a consumer one right of its deepest input), ordered within a
  // column by the mean row of the inputs, so that edges cross little.
  function layoutPlan(nodes) {
    const byId = new Map(nodes.map((n) => [String(n.id), n]));
    const inputsOf = (n) => (n.inputs || []).map((i) => String(i.id)).filter((id) => byId.has(id));
    const depth = new Map();
    const visiting = new Set();
    const depthOf = (id) => {
      if (depth.has(id)) return depth.get(id);
      if (visiting.has(id)) return 0; // a cycle: not expected from a job graph
      visiting.add(id);
      const ins = inputsOf(byId.get(id));
      const d = ins.length ? 1 + Math.max(...ins.map(depthOf)) : 0;
      visiting.delete(id);
      depth.set(id, d);
      return d;
    };
    nodes.forEach((n) => depthOf(String(n.id)));
    const columns = [];
    for (const n of nodes) {
      const d = depth.get(String(n.id));
      (columns[d] = columns[d] || []).push(String(n.id));
    }
    const row = new Map();
    columns.forEach((col, c) => {
      if (c > 0) {
        const key = (id) => {
          const ins = inputsOf(byId.get(id));
          return ins.length ? ins.reduce((a, i) => a + (row.get(i) ?? 0), 0) / ins.length : 0;
        };
        col.sort((a, b) => key(a) - key(b));
      }
      col.forEach((id, r) => row.set(id, r));
    });
    const rows = Math.max(1, ...columns.map((c) => (c ? c.length : 0)));
    const pos = new Map();
    columns.forEach((col, c) => {
      const offset = ((rows - col.length) * (BOX_H + GAP_Y)) / 2;
      col.forEach((id, r) => pos.set(id, { x: PAD + c * (BOX_W + GAP_X), y: PAD + offset + r * (BOX_H + GAP_Y) }));
    });
    const width = PAD * 2 + columns.length * BOX_W + Math.max(0, columns.length - 1) * GAP_X;
    const height = PAD * 2 + rows * BOX_H + (rows - 1) * GAP_Y;
    return { pos, width, height, inputsOf, byId };
  }

  function truncate(s, n) {
    s = String(s ?? '');
    return s.length > n ? s.slice(0, n - 1) + '…' : s;
  }

  function graphSvg(plan) {
    const nodes = plan.nodes || [];
    const { pos, width, height, byId } = layoutPlan(nodes);
    let edges = '';
    for (const n of nodes) {
      const to = pos.get(String(n.id));
      for (const i of n.inputs || []) {
        const from = pos.get(String(i.id));
        if (!from || !to) continue;
        const x1 = from.x + BOX_W;
        const y1 = from.y + BOX_H / 2;
        const x2 = to.x - 2;
        const y2 = to.y + BOX_H / 2;
        const dx = Math.max(30, (x2 - x1) / 2);
        edges += `<path class="edge" marker-end="url(#arrow)" d="M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}"/>`;
        if (i.ship_strategy) {
          edges += `<text class="edge-label" x="${(x1 + x2) / 2}" y="${(y1 + y2) / 2 - 6}" text-anchor="middle">${esc(i.ship_strategy)}</text>`;
        }
      }
    }
    let boxes = '';
    for (const n of nodes) {
      const id = String(n.id);
      const p = pos.get(id);
      const name = n.description || n.operator || `vertex ${id}`;
      const source = !(n.inputs || []).some((i) => byId.has(String(i.id)));
      boxes += `<g class="vertex" id="vertex-${esc(id)}" data-vertex-id="${esc(id)}" data-vertex-name="${esc(name)}"
          data-source="${source}" data-in-rate="" data-out-rate="" data-backpressure="unknown" transform="translate(${p.x},${p.y})">
        <title>${esc(name)}</title>
        <rect class="box" width="${BOX_W}" height="${BOX_H}" rx="8"/>
        <rect class="bp-bar" width="6" height="${BOX_H}" rx="3"/>
        <text class="v-name" x="18" y="23">${esc(truncate(name, 27))}</text>
        <text class="v-sub" x="18" y="42"><tspan class="v-par">Parallelism ${esc(n.parallelism)}</tspan></text>
        <text class="v-state" x="${BOX_W - 12}" y="42" text-anchor="end"></text>
        <text class="v-rate" x="18" y="66"><tspan class="lbl">In </tspan><tspan class="rate-in">–</tspan></text>
        <text class="v-rate" x="${BOX_W / 2 + 6}" y="66"><tspan class="lbl">Out </tspan><tspan class="rate-out">–</tspan></text>
        <text class="v-sub" x="18" y="90"><tspan class="busy">Busy –</tspan> · <tspan class="bp">Back-pressure –</tspan></text>
      </g>`;
    }
    return `<svg class="graph" id="job-graph" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">
      <defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
        <path d="M0,0 L10,5 L0,10 z" fill="#9aa3b5"/></marker></defs>
      ${edges}${boxes}</svg>`;
  }

  const STATE_COLOURS = {
    RUNNING: '#1f9d55', FINISHED: '#2f6fde', FAILED: '#d64545', CANCELED: '#7b8394', DEPLOYING: '#8a63d2',
  };

  // ---------------------------------------------------------------- per-vertex figures

  const VERTEX_METRICS = ['numRecordsInPerSecond', 'numRecordsOutPerSecond', 'backPressuredTimeMsPerSecond', 'busyTimeMsPerSecond'];
  // Per job and vertex: the metric names the vertex has, once a request for all of them was refused.
  const knownMetrics = new Map();

  async function vertexFigures(jid, vid) {
    const base = `/jobs/${jid}/vertices/${vid}`;
    const key = `${jid}/${vid}`;
    const ask = async (names) => (names.length ? api(`${base}/subtasks/metrics?get=${names.join(',')}`) : []);
    let list;
    try {
      list = await ask(knownMetrics.get(key) || VERTEX_METRICS);
    } catch (e) {
      if (!(e instanceof ApiError) || e.status !== 400) throw e;
      // Some are not there (yet): ask which are, then for those.
      const ids = (await api(`${base}/subtasks/metrics`)).map((m) => m.id);
      const have = VERTEX_METRICS.filter((n) => ids.includes(n));
      knownMetrics.set(key, have);
      list = await ask(have);
    }
    if (knownMetrics.has(key) && knownMetrics.get(key).length < VERTEX_METRICS.length) {
      knownMetrics.delete(key); // ask for all again next time
    }
    const m = Object.fromEntries(list.map((x) => [x.id, x]));
    const f = {
      in: num(m.numRecordsInPerSecond?.sum),
      out: num(m.numRecordsOutPerSecond?.sum),
      bpMs: num(m.backPressuredTimeMsPerSecond?.avg),
      busyMs: num(m.busyTimeMsPerSecond?.avg),
      level: null,
    };
    try {
      const bp = await api(`${base}/backpressure`);
      f.level = bp['backpressure-level'] || null;
    } catch (e) {
      if (!(e instanceof ApiError) || e.status !== 404) throw e;
    }
    if (!f.level && isNum(f.bpMs)) f.level = f.bpMs <= 100 ? 'ok' : f.bpMs <= 500 ? 'low' : 'high';
    return f;
  }

  // ---------------------------------------------------------------- log viewer

  // A log with a choice of source (JobManager or a TaskManager) and file, optionally filtered to
  // the lines that name a job. Endpoints (Flink's): <base>/logs -> {logs: [{name, size}]},
  // <base>/log and <base>/logs/<name> -> text/plain.
  class LogViewer {
    constructor(root, { filter = null, sources }) {
      this.filter = filter;
      this.sourcesFn = sources;
      this.source = null;
      this.file = '';
      this.lastText = null;
      root.innerHTML = `
        <div class="log-bar">
          <label>Source <select class="log-source"></select></label>
          <label>File <select class="log-file"><option value="">main log</option></select></label>
          ${filter ? `<label><input type="checkbox" class="log-all"> all lines</label>` : ''}
          <label><input type="checkbox" class="log-follow" checked> follow</label>
          <span class="muted small log-info"></span>
        </div>
        <div class="log-body"><pre class="log" id="log-text"></pre></div>`;
      this.root = root;
      this.sel = $('.log-source', root);
      this.fileSel = $('.log-file', root);
      this.pre = $('pre.log', root);
      this.info = $('.log-info', root);
      this.sel.addEventListener('change', () => {
        this.source = this.sel.value;
        this.file = '';
        this.files = null;
        this.lastText = null;
        this.refresh().catch((e) => this.showError(e));
      });
      this.fileSel.addEventListener('change', () => {
        this.file = this.fileSel.value;
        this.lastText = null;
        this.refresh().catch((e) => this.showError(e));
      });
      const all = $('.log-all', root);
      if (all) all.addEventListener('change', () => { this.lastText = null; this.render(this.raw || ''); });
    }

    showError(e) {
      this.info.textContent = e.message;
    }

    async refresh(poll = false) {
      const sources = await this.sourcesFn();
      const html = sources.map((s) => `<option value="${esc(s.base)}">${esc(s.label)}</option>`).join('');
      setHtml(this.sel, html);
      if (!this.source || !sources.some((s) => s.base === this.source)) this.source = sources[0]?.base;
      this.sel.value = this.source;
      if (!this.source) return;
      if (poll && !$('.log-follow', this.root).checked && this.lastText !== null) return;
      if (!this.files) {
        const list = await apiOptional(`${this.source}/logs`);
        this.files = list && Array.isArray(list.logs) ? list.logs : [];
        this.fileSel.innerHTML = '<option value="">main log</option>' +
          this.files.map((f) => `<option value="${esc(f.name)}">${esc(f.name)} (${fmtBytes(num(f.size))})</option>`).join('');
        this.fileSel.value = this.file;
      }
      const path = this.file ? `${this.source}/logs/${encodeURIComponent(this.file)}` : `${this.source}/log`;
      let text;
      try {
        text = await api(path);
      } catch (e) {
        if (e instanceof ApiError && e.status === 404) {
          this.raw = null;
          this.lastText = null;
          this.pre.hidden = true;
          let note = $('.notice', this.root);
          if (!note) {
            note = document.createElement('div');
            note.className = 'notice';
            $('.log-body', this.root).prepend(note);
          }
          note.textContent = `No log here: GET ${path} answered 404 (${e.message}). This JobManager may not serve logs yet.`;
          this.info.textContent = '';
          return;
        }
        throw e;
      }
      $('.notice', this.root)?.remove();
      this.pre.hidden = false;
      this.raw = typeof text === 'string' ? text : JSON.stringify(text, null, 2);
      this.render(this.raw);
    }

    render(raw) {
      const all = !this.filter || $('.log-all', this.root)?.checked;
      let lines = raw.split('\n');
      if (lines.length && lines[lines.length - 1] === '') lines.pop();
      const total = lines.length;
      if (!all) lines = lines.filter((l) => l.includes(this.filter));
      const shown = lines.length > LOG_MAX_LINES ? lines.slice(-LOG_MAX_LINES) : lines;
      const text = shown.join('\n');
      if (text === this.lastText) return;
      this.lastText = text;
      const pre = this.pre;
      const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 30;
      if (!all && this.filter) {
        const f = esc(this.filter);
        pre.innerHTML = shown.length ? shown.map((l) => esc(l).split(f).join(`<mark>${f}</mark>`)).join('\n') : '';
      } else {
        pre.textContent = text;
      }
      if (!shown.length) pre.textContent = all ? '(the log is empty)' : `(no line names ${this.filter} yet; tick "all lines" to see the whole log)`;
      this.info.textContent = all
        ? `${total} lines${shown.length < total ? `, the last ${shown.length} shown` : ''}`
        : `${lines.length} of ${total} lines name this job${shown.length < lines.length ? `, the last ${shown.length} shown` : ''}`;
      if (atBottom || this.firstRender !== false) pre.scrollTop = pre.scrollHeight;
      this.firstRender = false;
    }
  }

  // ---------------------------------------------------------------- views

  class OverviewView {
    mount(main) {
      main.innerHTML = `
        <div class="panel-head"><h1>Cluster</h1><span class="muted small" id="cluster-version"></span></div>
        <div class="cards" id="overview-cards">
          ${[['taskmanagers', 'TaskManagers', ''], ['slots', 'Slots free', ''], ['running', 'Running', 'c-running'],
            ['finished', 'Finished', 'c-finished'], ['cancelled', 'Cancelled', 'c-canceled'], ['failed', 'Failed', 'c-failed']]
            .map(([k, l, c]) => `<div class="card ${c}"><div class="label">${l}</div><div class="value" id="ov-${k}">–</div></div>`).join('')}
        </div>
        <div class="panel">
          <div class="panel-head"><h2>Jobs</h2><span class="muted small" id="jobs-count"></span></div>
          <table id="jobs-table"><thead><tr>
            <th>Name</th><th>State</th><th>Start</th><th class="num">Duration</th><th class="num">Parallelism</th>
            <th class="num">Restarts</th><th></th></tr></thead>
            <tbody id="jobs-body"><tr><td colspan="7" class="empty">Loading…</td></tr></tbody></table>
        </div>`;
    }

    async refresh() {
      const [ov, jobs] = await Promise.all([api('/overview'), api('/jobs/overview')]);
      setText($('#ov-taskmanagers'), String(ov.taskmanagers));
      setHtml($('#ov-slots'), `${esc(ov['slots-available'])}<span class="of"> / ${esc(ov['slots-total'])}</span>`);
      setText($('#ov-running'), String(ov['jobs-running']));
      setText($('#ov-finished'), String(ov['jobs-finished']));
      setText($('#ov-cancelled'), String(ov['jobs-cancelled']));
      setText($('#ov-failed'), String(ov['jobs-failed']));
      const list = (jobs.jobs || []).slice().sort((a, b) => {
        const ta = TERMINAL.has(a.state) ? 1 : 0;
        const tb = TERMINAL.has(b.state) ? 1 : 0;
        return ta - tb || b['start-time'] - a['start-time'];
      });
      setText($('#jobs-count'), `${list.length} job${list.length === 1 ? '' : 's'}`);
      setHtml($('#jobs-body'), list.length ? list.map(jobRow).join('') : '<tr><td colspan="7" class="empty">No jobs yet. Submit one with <code>sluice run</code>.</td></tr>');
    }
  }

  function jobRow(j) {
    const canCancel = !TERMINAL.has(j.state) && j.state !== 'CANCELLING';
    return `<tr data-job-id="${esc(j.jid)}">
      <td><a href="#/jobs/${esc(j.jid)}">${esc(j.name || '(unnamed)')}</a><div class="muted mono">${esc(j.jid)}</div></td>
      <td>${stateBadge(j.state)}</td>
      <td>${esc(fmtTime(j['start-time']))}</td>
      <td class="num">${esc(fmtDuration(j.duration))}</td>
      <td class="num">${esc(j.parallelism ?? '–')}</td>
      <td class="num">${esc(j.restarts ?? 0)}</td>
      <td class="num">${canCancel ? `<button class="danger small" data-cancel-job="${esc(j.jid)}" data-job-name="${esc(j.name)}">Cancel</button>` : ''}</td>
    </tr>`;
  }

  const JOB_TABS = [['', 'Overview'], ['checkpoints', 'Checkpoints'], ['exceptions', 'Exceptions'], ['logs', 'Logs']];

  class JobView {
    constructor(jid, tab) {
      this.jid = jid;
      this.tab = tab || '';
      this.mem = memoryOf(jid);
      this.graphKey = null;
    }

    mount(main) {
      const tabs = JOB_TABS.map(([t, label]) => `<a href="#/jobs/${this.jid}${t ? '/' + t : ''}" data-tab="${t}" class="${t === this.tab ? 'active' : ''}">${label}</a>`).join('');
      main.innerHTML = `
        <div class="job-head">
          <h1 id="job-name">Job</h1><span id="job-state" class="state"></span>
          <span class="spacer"></span>
          <button class="danger" id="cancel-job" hidden>Cancel job</button>
        </div>
        <div class="job-meta">
          <span>ID <b class="mono">${esc(this.jid)}</b></span>
          <span>Started <b id="job-start">–</b></span>
          <span>Duration <b id="job-duration">–</b></span>
          <span>Parallelism <b id="job-parallelism">–</b></span>
          <span>Restarts <b id="job-restarts">–</b></span>
        </div>
        <div class="failure" id="job-failure" hidden></div>
        <nav class="tabs">${tabs}</nav>
        <div id="job-tab"></div>`;
      $('#cancel-job').addEventListener('click', () => cancelJob(this.jid, this.name));
      const body = $('#job-tab');
      if (this.tab === '') {
        body.innerHTML = `
          <div class="panel"><div class="panel-head"><h2>Graph</h2>
            <div class="legend"><span><span class="sw" style="background:var(--ok)"></span>back-pressure ok</span>
            <span><span class="sw" style="background:var(--low)"></span>low</span>
            <span><span class="sw" style="background:var(--high)"></span>high</span></div></div>
            <div class="graph-wrap" id="graph-wrap"><div class="muted">Loading…</div></div></div>
          <div class="grid2">
            <div class="panel"><div class="panel-head"><h2>Throughput</h2><span class="muted small">records/s, last 5 minutes</span></div>
              <svg class="chart" id="throughput-chart" preserveAspectRatio="xMidYMid meet"></svg>
              <div class="legend chart-legend" id="tp-legend"></div></div>
            <div class="panel"><div class="panel-head"><h2>Checkpoint duration</h2><span class="muted small">end to end, last 5 minutes</span></div>
              <svg class="chart" id="checkpoint-chart" preserveAspectRatio="xMidYMid meet"></svg>
              <div class="legend chart-legend" id="cp-legend"></div></div>
          </div>
          <div class="panel" id="autoscaler-panel" hidden><div class="panel-head"><h2>Autoscaler</h2>
            <span class="muted small">decisions, newest first, with the figures behind them</span></div>
            <table id="autoscaler-table"><thead><tr><th>Time</th><th>Change</th><th>Outcome</th><th>Why</th></tr></thead>
              <tbody></tbody></table></div>`;
      } else if (this.tab === 'checkpoints') {
        body.innerHTML = `
          <div class="cards" id="checkpoint-counts">
            ${[['completed', 'Completed', 'c-running'], ['failed', 'Failed', 'c-failed'], ['in_progress', 'In progress', ''],
              ['restored', 'Restored', ''], ['total', 'Total', '']]
              .map(([k, l, c]) => `<div class="card ${c}"><div class="label">${l}</div><div class="value" id="cp-${k}">–</div></div>`).join('')}
          </div>
          <div class="panel" id="checkpoint-latest-panel"><div class="panel-head"><h2>Latest</h2></div><div id="checkpoint-latest" class="small">–</div></div>
          <div class="panel" id="checkpoint-summary-panel" hidden><div class="panel-head"><h2>Summary</h2></div><div id="checkpoint-summary"></div></div>
          <div class="panel"><div class="panel-head"><h2>History</h2><span class="muted small" id="checkpoint-note"></span></div>
            <table id="checkpoint-table"><thead><tr><th class="num">ID</th><th>Status</th><th>Triggered</th><th>Latest ack</th>
              <th class="num">End to end</th><th class="num">Checkpointed size</th><th class="num">Full size</th><th class="num">Acknowledged</th></tr></thead>
              <tbody><tr><td colspan="8" class="empty">Loading…</td></tr></tbody></table></div>`;
      } else if (this.tab === 'exceptions') {
        body.innerHTML = `
          <div class="panel"><div class="panel-head"><h2>Root exception</h2><span class="muted small" id="root-time"></span></div>
            <div id="root-exception" class="muted">Loading…</div></div>
          <div class="panel"><div class="panel-head"><h2>Exception history</h2><span class="muted small" id="exc-count"></span></div>
            <div id="exception-list"></div></div>`;
      } else if (this.tab === 'logs') {
        body.innerHTML = `<div class="panel"><div class="panel-head"><h2>Logs</h2>
          <span class="muted small">The JobManager and the TaskManagers that run this job's tasks</span></div>
          <div id="job-logs"></div></div>`;
        this.logs = new LogViewer($('#job-logs'), { filter: this.jid, sources: () => this.logSources() });
      }
    }

    async logSources() {
      const sources = [{ label: 'JobManager', base: '/jobmanager' }];
      const tms = new Set();
      const vertices = this.detail?.vertices || [];
      const answers = await Promise.all(vertices.map((v) => api(`/jobs/${this.jid}/vertices/${v.id}`).catch(() => null)));
      for (const a of answers) for (const s of a?.subtasks || []) if (s['taskmanager-id']) tms.add(s['taskmanager-id']);
      for (const id of [...tms].sort()) sources.push({ label: `TaskManager ${id}`, base: `/taskmanagers/${encodeURIComponent(id)}` });
      return sources;
    }

    async refresh() {
      const detail = await api(`/jobs/${this.jid}`);
      this.detail = detail;
      this.name = detail.name;
      this.updateHeader(detail);
      const running = !TERMINAL.has(detail.state);
      // Rates and checkpoints are kept on every tab, so the charts have their history.
      const [figures, checkpoints] = await Promise.all([
        running ? this.fetchFigures(detail) : Promise.resolve(null),
        apiOptional(`/jobs/${this.jid}/checkpoints`),
      ]);
      this.remember(detail, figures, checkpoints);
      if (this.tab === '') {
        this.updateGraph(detail, figures);
        this.updateCharts(detail);
        this.updateAutoscaler(detail);
      } else if (this.tab === 'checkpoints') {
        this.updateCheckpoints(checkpoints);
      } else if (this.tab === 'exceptions') {
        this.updateExceptions(await api(`/jobs/${this.jid}/exceptions`));
      } else if (this.tab === 'logs') {
        await this.logs.refresh(true);
      }
    }

    updateAutoscaler(d) {
      const panel = $('#autoscaler-panel');
      if (!panel) return;
      const a = d.autoscaler;
      panel.hidden = !a;
      if (!a) return;
      const names = new Map((d.vertices || []).map((v) => [String(v.id), v.name]));
      const change = (x) => Object.keys(x.to || {}).map((v) => `${names.get(v) || v}: ${x.from?.[v]} → ${x.to[v]}`).join(', ');
      const rows = (a.decisions || []).map((x) => `<tr><td>${esc(fmtTime(x.timestamp))}</td><td>${esc(change(x))}</td>
        <td>${esc(x.outcome)}</td><td class="small">${esc(x.description)}</td></tr>`);
      $('#autoscaler-table tbody').innerHTML = rows.length ? rows.join('')
        : '<tr><td colspan="4" class="empty">No decision yet: every vertex is within its target utilization, or the autoscaler is still measuring.</td></tr>';
    }

    updateHeader(d) {
      setText($('#job-name'), d.name || '(unnamed job)');
      document.title = `${d.name || d.jid} · Sluice`;
      const st = $('#job-state');
      setText(st, d.state);
      st.className = `state state-${d.state}`;
      st.dataset.state = d.state;
      setText($('#job-start'), fmtTime(d['start-time']));
      setText($('#job-duration'), fmtDuration(d.duration));
      setText($('#job-parallelism'), String(d.parallelism ?? Math.max(0, ...(d.vertices || []).map((v) => v.parallelism))));
      setText($('#job-restarts'), String(d.restarts ?? 0));
      $('#cancel-job').hidden = TERMINAL.has(d.state) || d.state === 'CANCELLING';
      const fail = $('#job-failure');
      const cause = typeof d['failure-cause'] === 'string' ? d['failure-cause'] : d['failure-cause']?.['stack-trace'];
      fail.hidden = !cause;
      setText(fail, cause || '');
    }

    async fetchFigures(detail) {
      const vs = detail.vertices || [];
      const out = await Promise.all(vs.map((v) => vertexFigures(this.jid, v.id).catch((e) => ({ error: e.message }))));
      return new Map(vs.map((v, i) => [String(v.id), out[i]]));
    }

    remember(detail, figures, checkpoints) {
      const now = Date.now();
      if (figures) {
        const sources = new Set((detail.plan?.nodes || []).filter((n) => !(n.inputs || []).length).map((n) => String(n.id)));
        for (const [vid, f] of figures) {
          if (f.error) continue;
          let s = this.mem.rates.get(vid);
          if (!s) this.mem.rates.set(vid, (s = []));
          pushSample(s, now, sources.has(vid) ? f.out : f.in);
        }
      }
      if (!checkpoints) return;
      const cps = this.mem.checkpoints;
      const put = (c, status) => {
        if (!c || c.id === undefined || c.id === null) return;
        const old = cps.get(c.id) || { seen: now };
        cps.set(c.id, { ...old, ...c, status: c.status || status || old.status });
      };
      this.mem.hasHistory = Array.isArray(checkpoints.history);
      for (const c of checkpoints.history || []) put(c);
      put(checkpoints.latest?.completed, 'COMPLETED');
      put(checkpoints.latest?.failed, 'FAILED');
      // Keep what a chart or table can show.
      const ids = [...cps.keys()].sort((a, b) => b - a);
      for (const id of ids.slice(200)) cps.delete(id);
    }

    updateGraph(detail, figures) {
      const plan = detail.plan || { nodes: [] };
      const key = (plan.nodes || []).map((n) => `${n.id}<${(n.inputs || []).map((i) => i.id).join(',')}`).join(';');
      const wrap = $('#graph-wrap');
      if (key !== this.graphKey) {
        this.graphKey = key;
        wrap.innerHTML = plan.nodes?.length ? graphSvg(plan) : '<div class="muted">This job has no plan.</div>';
      }
      const byId = new Map((detail.vertices || []).map((v) => [String(v.id), v]));
      for (const g of $$('.vertex', wrap)) {
        const vid = g.dataset.vertexId;
        const v = byId.get(vid);
        const f = figures?.get(vid);
        const status = v?.status || '';
        const st = $('.v-state', g);
        setText(st, status);
        st.setAttribute('fill', STATE_COLOURS[status] || '#7b8394');
        if (v) setText($('.v-par', g), `Parallelism ${v.parallelism}`);
        const ok = f && !f.error;
        g.dataset.inRate = ok && isNum(f.in) ? String(f.in) : '';
        g.dataset.outRate = ok && isNum(f.out) ? String(f.out) : '';
        g.dataset.backpressure = ok && f.level ? f.level : 'unknown';
        setText($('.rate-in', g), ok ? fmtRate(f.in) : '–');
        setText($('.rate-out', g), ok ? fmtRate(f.out) : '–');
        setText($('.busy', g), `Busy ${ok ? fmtPercent(isNum(f.busyMs) ? f.busyMs / 10 : null) : '–'}`);
        setText($('.bp', g), `Back-pressure ${ok ? fmtPercent(isNum(f.bpMs) ? f.bpMs / 10 : null) : '–'}${ok && f.level ? ' (' + f.level + ')' : ''}`);
        const title = $('title', g);
        setText(title, `${g.dataset.vertexName}${f?.error ? '\nmetrics: ' + f.error : ''}`);
      }
    }

    updateCharts(detail) {
      const nodes = detail.plan?.nodes || [];
      const series = nodes.map((n, i) => {
        const source = !(n.inputs || []).length;
        return {
          name: `${truncate(n.description || 'vertex ' + n.id, 40)} (${source ? 'records out' : 'records in'})`,
          colour: SERIES_COLOURS[i % SERIES_COLOURS.length],
          points: this.mem.rates.get(String(n.id)) || [],
        };
      });
      setHtml($('#tp-legend'), legendHtml(series));
      drawChart($('#throughput-chart'), series, fmtCompact, TERMINAL.has(detail.state) ? 'The job has ended' : 'Waiting for the first figures…');

      const cps = [...this.mem.checkpoints.values()].sort((a, b) => a.id - b.id);
      const point = (c) => ({
        t: num(c.trigger_timestamp) ?? num(c.latest_ack_timestamp) ?? c.seen,
        v: num(c.end_to_end_duration),
        colour: c.status === 'FAILED' ? '#d64545' : '#2f6fde',
        label: `#${c.id} ${c.status || ''} ${fmtDuration(num(c.end_to_end_duration))}`,
      });
      const done = cps.filter((c) => c.status !== 'FAILED' && c.status !== 'IN_PROGRESS').map(point);
      const failed = cps.filter((c) => c.status === 'FAILED').map(point);
      const cpSeries = [
        { name: 'completed', colour: '#2f6fde', points: done, dots: true },
        { name: 'failed', colour: '#d64545', points: failed, dots: true, dotsOnly: true },
      ];
      setHtml($('#cp-legend'), legendHtml(cpSeries));
      const anyDuration = cps.some((c) => isNum(num(c.end_to_end_duration)));
      drawChart($('#checkpoint-chart'), cpSeries, (v) => fmtDuration(v),
        cps.length && !anyDuration ? 'This JobManager reports no checkpoint durations' : 'No checkpoint yet');
    }

    updateCheckpoints(cp) {
      const counts = cp?.counts || {};
      for (const k of ['completed', 'failed', 'in_progress', 'restored', 'total']) {
        setText($(`#cp-${k}`), isNum(counts[k]) ? String(counts[k]) : '–');
      }
      const latest = cp?.latest || {};
      const parts = [];
      const c = latest.completed;
      if (c) {
        parts.push(`<div>Completed <b>#${esc(c.id)}</b>${isNum(c.end_to_end_duration) ? ` in ${esc(fmtDuration(c.end_to_end_duration))}` : ''}${isNum(c.checkpointed_size) ? `, ${esc(fmtBytes(c.checkpointed_size))}` : ''}${c.external_path ? ` at <code>${esc(c.external_path)}</code>` : ''}</div>`);
      }
      if (latest.failed) parts.push(`<div>Failed <b>#${esc(latest.failed.id)}</b>${latest.failed.failure_message ? ': ' + esc(latest.failed.failure_message) : ''}</div>`);
      if (latest.restored) parts.push(`<div>Restored from <b>#${esc(latest.restored.id)}</b>${isNum(latest.restored.restore_timestamp) ? ' at ' + esc(fmtTime(latest.restored.restore_timestamp)) : ''}${latest.restored.external_path ? ` (<code>${esc(latest.restored.external_path)}</code>)` : ''}</div>`);
      setHtml($('#checkpoint-latest'), cp === null ? '<span class="muted">This JobManager has no checkpoint view.</span>' : parts.join('') || '<span class="muted">No checkpoint yet.</span>');

      const sum = cp?.summary;
      $('#checkpoint-summary-panel').hidden = !sum;
      if (sum) {
        const row = (label, s, f) => (s ? `<tr><td>${label}</td><td class="num">${esc(f(num(s.min)))}</td><td class="num">${esc(f(num(s.avg)))}</td><td class="num">${esc(f(num(s.max)))}</td></tr>` : '');
        setHtml($('#checkpoint-summary'), `<table><thead><tr><th></th><th class="num">Min</th><th class="num">Average</th><th class="num">Max</th></tr></thead><tbody>
          ${row('End to end duration', sum.end_to_end_duration, fmtDuration)}${row('Checkpointed size', sum.checkpointed_size, fmtBytes)}${row('Full size', sum.state_size, fmtBytes)}</tbody></table>`);
      }

      setText($('#checkpoint-note'), this.mem.hasHistory ? '' : 'This JobManager reports its latest checkpoint only: these are the ones this page has seen.');
      const rows = [...this.mem.checkpoints.values()].sort((a, b) => b.id - a.id).slice(0, 50);
      setHtml($('#checkpoint-table tbody'), rows.length ? rows.map((r) => {
        const acked = isNum(r.num_acknowledged_subtasks) ? `${r.num_acknowledged_subtasks} / ${r.num_subtasks ?? '?'}` : '–';
        return `<tr data-checkpoint-id="${esc(r.id)}" data-status="${esc(r.status || '')}" title="${esc(r.external_path || r.failure_message || '')}">
          <td class="num">${esc(r.id)}</td><td>${stateBadge(r.status || 'UNKNOWN')}</td>
          <td>${esc(fmtTime(num(r.trigger_timestamp)))}</td><td>${esc(fmtTime(num(r.latest_ack_timestamp)))}</td>
          <td class="num">${esc(fmtDuration(num(r.end_to_end_duration)))}</td><td class="num">${esc(fmtBytes(num(r.checkpointed_size)))}</td>
          <td class="num">${esc(fmtBytes(num(r.state_size)))}</td><td class="num">${esc(acked)}</td></tr>`;
      }).join('') : '<tr><td colspan="8" class="empty">No checkpoint yet.</td></tr>');
    }

    updateExceptions(ex) {
      const root = ex['root-exception'];
      setText($('#root-time'), isNum(ex.timestamp) ? fmtTime(ex.timestamp) : '');
      setHtml($('#root-exception'), root ? `<pre class="trace">${esc(root)}</pre>` : '<span class="muted">None: the job has not failed.</span>');
      const entries = ex.exceptionHistory?.entries || [];
      setText($('#exc-count'), `${entries.length}${ex.exceptionHistory?.truncated ? '+' : ''} entr${entries.length === 1 ? 'y' : 'ies'}`);
      const list = $('#exception-list');
      const open = new Set($$('details[open]', list).map((d) => d.dataset.key));
      setHtml(list, entries.length ? entries.map((e, i) => {
        const key = `${e.timestamp}-${i}`;
        const first = String(e.stacktrace || e.exceptionName || '').split('\n')[0];
        return `<details class="exc" data-key="${esc(key)}" ${open.has(key) ? 'open' : ''}><summary>
          <span class="muted">${esc(fmtTime(e.timestamp))}</span><span class="what">${esc(first)}</span>
          <span class="muted small">${esc(e.taskName || '')}${e.taskManagerId ? ' · ' + esc(e.taskManagerId) : ''}</span></summary>
          <pre class="trace">${esc(e.stacktrace || '')}</pre></details>`;
      }).join('') : '<div class="empty">No exceptions.</div>');
    }
  }

  // The time of a TaskManager's last heartbeat as an age: Flink gives the time in ms since the
  // epoch; an older JobManager gave the age itself.
  function heartbeatAge(v) {
    if (!isNum(v)) return null;
    return v > 1e11 ? Math.max(0, Date.now() - v) : v;
  }

  async function taskManagerDetails() {
    const list = (await api('/taskmanagers')).taskmanagers || [];
    const details = await Promise.all(list.map((t) => api(`/taskmanagers/${encodeURIComponent(t.id)}`).catch(() => t)));
    return details;
  }

  function tmMetric(t, k) {
    return num(t.metrics?.[k]);
  }

  class TaskManagersView {
    mount(main) {
      main.innerHTML = `
        <div class="panel-head"><h1>TaskManagers</h1><span class="muted small" id="tm-count"></span></div>
        <div class="panel"><table id="tm-table"><thead><tr><th>ID</th><th>Address</th><th class="num">Slots</th><th class="num">Free</th>
          <th class="num">Last heartbeat</th><th class="num">CPU</th><th class="num">Memory (RSS)</th><th class="num">Threads</th></tr></thead>
          <tbody><tr><td colspan="8" class="empty">Loading…</td></tr></tbody></table></div>`;
    }

    async refresh() {
      const tms = await taskManagerDetails();
      setText($('#tm-count'), `${tms.length} registered`);
      setHtml($('#tm-table tbody'), tms.length ? tms.map((t) => `<tr data-tm-id="${esc(t.id)}">
        <td><a href="#/taskmanagers/${encodeURIComponent(t.id)}" class="mono">${esc(t.id)}</a></td><td class="mono">${esc(t.path)}</td>
        <td class="num">${esc(t.slotsNumber)}</td><td class="num">${esc(t.freeSlots)}</td>
        <td class="num">${esc(fmtDuration(heartbeatAge(t.timeSinceLastHeartbeat)))} ago</td>
        <td class="num">${esc(fmtPercent(isNum(tmMetric(t, 'cpuLoad')) ? tmMetric(t, 'cpuLoad') * 100 : null))}</td>
        <td class="num">${esc(fmtBytes(tmMetric(t, 'residentMemory')))}</td><td class="num">${esc(tmMetric(t, 'threads') ?? '–')}</td></tr>`).join('')
        : '<tr><td colspan="8" class="empty">No TaskManager has registered.</td></tr>');
    }
  }

  class TaskManagerView {
    constructor(id) {
      this.id = id;
    }

    mount(main) {
      main.innerHTML = `
        <div class="panel-head"><h1>TaskManager <span class="mono">${esc(this.id)}</span></h1><a href="#/taskmanagers">All TaskManagers</a></div>
        <div class="cards">${[['path', 'Address'], ['slots', 'Slots free'], ['hb', 'Last heartbeat'], ['cpu', 'CPU'], ['rss', 'Memory (RSS)'], ['threads', 'Threads']]
          .map(([k, l]) => `<div class="card"><div class="label">${l}</div><div class="value" id="tm-${k}">–</div></div>`).join('')}</div>
        <div class="panel"><div class="panel-head"><h2>Log</h2></div><div id="tm-logs"></div></div>`;
      const base = `/taskmanagers/${encodeURIComponent(this.id)}`;
      this.logs = new LogViewer($('#tm-logs'), { sources: async () => [{ label: `TaskManager ${this.id}`, base }] });
    }

    async refresh() {
      const t = await api(`/taskmanagers/${encodeURIComponent(this.id)}`);
      setText($('#tm-path'), t.path || '–');
      $('#tm-path').classList.add('mono', 'small');
      setHtml($('#tm-slots'), `${esc(t.freeSlots)}<span class="of"> / ${esc(t.slotsNumber)}</span>`);
      setText($('#tm-hb'), `${fmtDuration(heartbeatAge(t.timeSinceLastHeartbeat))} ago`);
      setText($('#tm-cpu'), fmtPercent(isNum(tmMetric(t, 'cpuLoad')) ? tmMetric(t, 'cpuLoad') * 100 : null));
      setText($('#tm-rss'), fmtBytes(tmMetric(t, 'residentMemory')));
      setText($('#tm-threads'), String(tmMetric(t, 'threads') ?? '–'));
      await this.logs.refresh(true);
    }
  }

  class JobManagerView {
    mount(main) {
      main.innerHTML = `
        <div class="panel-head"><h1>JobManager</h1></div>
        <div class="panel"><div class="panel-head"><h2>Log</h2></div><div id="jm-logs"></div></div>
        <div class="panel"><div class="panel-head"><h2>Configuration</h2><span class="muted small">the keys set explicitly</span></div>
          <table id="jm-config"><thead><tr><th>Key</th><th>Value</th></tr></thead><tbody></tbody></table></div>`;
      this.logs = new LogViewer($('#jm-logs'), { sources: async () => [{ label: 'JobManager', base: '/jobmanager' }] });
    }

    async refresh() {
      const conf = await apiOptional('/jobmanager/config');
      setHtml($('#jm-config tbody'), (conf || []).length ? conf.map((c) => `<tr><td class="mono">${esc(c.key)}</td><td class="mono">${esc(c.value)}</td></tr>`).join('')
        : '<tr><td colspan="2" class="empty">No key set explicitly.</td></tr>');
      await this.logs.refresh(true);
    }
  }

  class NotFoundView {
    constructor(hash) {
      this.hash = hash;
    }

    mount(main) {
      main.innerHTML = `<div class="panel"><h2>Nothing here</h2><p class="muted">No page <code>${esc(this.hash)}</code>. <a href="#/">Back to the overview</a>.</p></div>`;
    }

    async refresh() {}
  }

  // ---------------------------------------------------------------- routing and polling

  let view = null;
  let generation = 0;
  let pollTimer = null;
  let pollBusy = false;
  let pollAgain = false;

  function viewFor(hash) {
    const path = hash.replace(/^#/, '') || '/';
    let m;
    if (path === '/' || path === '') return [new OverviewView(), 'overview'];
    if ((m = path.match(/^\/jobs\/([0-9a-f]{32})(?:\/(checkpoints|exceptions|logs))?\/?$/))) return [new JobView(m[1], m[2]), 'overview'];
    if (path === '/taskmanagers') return [new TaskManagersView(), 'taskmanagers'];
    if ((m = path.match(/^\/taskmanagers\/(.+)$/))) return [new TaskManagerView(decodeURIComponent(m[1])), 'taskmanagers'];
    if (path === '/jobmanager') return [new JobManagerView(), 'jobmanager'];
    return [new NotFoundView(hash), ''];
  }

  function route() {
    generation++;
    clearTimeout(pollTimer);
    const [v, nav] = viewFor(location.hash);
    view = v;
    for (const a of $$('.nav a')) a.classList.toggle('active', a.dataset.nav === nav);
    const main = $('#main');
    main.innerHTML = '';
    view.mount(main);
    pollSoon();
  }

  function setLive(ok, error) {
    const live = $('#live');
    live.classList.toggle('ok', ok);
    live.classList.toggle('down', !ok);
    const time = new Date().toLocaleTimeString([], { hour12: false });
    setText($('#live-text'), ok ? `Live · updated ${time}` : `${error?.message || 'JobManager unreachable'}`);
    live.title = ok ? 'The page asks the JobManager every 2 s' : String(error?.message || '');
  }

  function pollSoon() {
    if (pollBusy) {
      pollAgain = true;
      return;
    }
    clearTimeout(pollTimer);
    pollOnce();
  }

  async function pollOnce() {
    if (document.hidden) {
      pollTimer = setTimeout(pollOnce, POLL_MS);
      return;
    }
    pollBusy = true;
    const g = generation;
    try {
      await view.refresh();
      if (g === generation) setLive(true);
    } catch (e) {
      if (g === generation) setLive(false, e);
      console.warn('refresh failed:', e);
    }
    pollBusy = false;
    if (pollAgain || g !== generation) {
      pollAgain = false;
      pollOnce();
      return;
    }
    pollTimer = setTimeout(pollOnce, POLL_MS);
  }

  // Cancel buttons of the jobs table.
  document.addEventListener('click', (ev) => {
    const b = ev.target.closest('[data-cancel-job]');
    if (b) cancelJob(b.dataset.cancelJob, b.dataset.jobName);
  });
  $('#sign-out').addEventListener('click', () => {
    storeToken('');
    location.reload();
  });
  $('#sign-out').hidden = !storedToken();
  window.addEventListener('hashchange', route);
  // Polling pauses while the tab is hidden and catches up when it shows again.
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) pollSoon();
  });
  route();
})();
