// The dashboard in a real browser: Debian's chromium, headless, driven by playwright-core.
//
//   node tests/browser/dashboard.test.mjs <dashboard url> <job id>
//
// The job must be running, with checkpoints. The script opens the dashboard, finds the job in
// the jobs list and opens it, waits until the graph shows every vertex of the job's plan with a
// records/s figure above 0 and the throughput chart has drawn a line, that the autoscaler's panel
// shows (the job runs with job.autoscaler.enabled), waits until the checkpoint
// table has a completed row, cancels the job with its button (accepting the confirmation) and
// waits until the page shows the job CANCELED. Every request of the page must go to the
// dashboard's own server, and the page must raise no script error. Exit code 0 when all held;
// otherwise 1, with what was missing.
//
// Environment:
//   SLUICE_CHROMIUM             the browser (default /usr/bin/chromium)
//   SLUICE_BROWSER_TEST_DIR     the folder whose node_modules holds playwright-core (default: this
//                               script's folder; the build installs it into
//                               <build>/tests/browser with `npm ci`)
//   SLUICE_DASHBOARD_SCREENSHOT a PNG path: a screenshot of the job page once its figures show
//   SLUICE_DASHBOARD_TOKEN      the JobManager's REST token (security.rest.auth.token-file):
//                               the page must ask for it and keep asking after Escape; the
//                               script first enters a wrong one, which must be refused, then
//                               this one. The figures, chart and
//                               checkpoint checks are then left out (the run without a token
//                               makes them); the overview, the job page and the cancel remain.
//   NODE_EXTRA_CA_CERTS         for an https:// dashboard, the CA its certificate is signed by
//                               (the browser itself is told to accept the certificate)
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const STEP_TIMEOUT_MS = 60_000;
const TOTAL_TIMEOUT_MS = 240_000;

// A check that did not hold: ends the test (the browser is closed first).
class Failure extends Error {}
function fail(message) {
  throw new Failure(message);
}
let browser = null;
async function finish(error) {
  if (error) {
    console.error(`FAILED: ${error instanceof Failure ? error.message : error.stack || error}`);
    process.exitCode = 1;
  }
  if (browser) await browser.close().catch(() => {});
  browser = null;
}

async function main() {
  const [url, jobId] = process.argv.slice(2);
  if (!url || !/^[0-9a-f]{32}$/.test(jobId || '')) {
    fail('usage: node dashboard.test.mjs <dashboard url> <job id (32 hexadecimal digits)>');
  }
  const origin = new URL(url).origin;
  const token = process.env.SLUICE_DASHBOARD_TOKEN || '';
  const auth = token ? { Authorization: `Bearer ${token}` } : {};

  const chromiumPath = process.env.SLUICE_CHROMIUM || '/usr/bin/chromium';
  if (!existsSync(chromiumPath)) {
    fail(`no browser at ${chromiumPath}: install Debian's chromium (deploy/install-deps.sh) or set SLUICE_CHROMIUM`);
  }
  const modulesDir = process.env.SLUICE_BROWSER_TEST_DIR || path.dirname(fileURLToPath(import.meta.url));
  let chromium;
  try {
    ({ chromium } = createRequire(path.resolve(modulesDir, 'package.json'))('playwright-core'));
  } catch (e) {
    fail(`playwright-core is not installed under ${modulesDir}/node_modules (run \`npm ci\` there with ` +
      `PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1; the build does it when npm is found): ${e.message}`);
  }


  // What the REST API says of the job: its vertices, for comparing with what the page draws.
  async function restJob() {
    const res = await fetch(`${origin}/jobs/${jobId}`, { headers: auth });
    if (!res.ok) fail(`GET /jobs/${jobId} answered ${res.status}: ${await res.text()}`);
    return res.json();
  }

  // Polls `probe` (in node) until it returns {ok: true}; fails with its last `detail` otherwise.
  async function waitFor(what, probe, timeout = STEP_TIMEOUT_MS) {
    const deadline = Date.now() + timeout;
    let last = null;
    for (;;) {
      try {
        last = await probe();
        if (last.ok) {
          console.log(`ok: ${what}`);
          return last;
        }
      } catch (e) {
        last = { detail: `error: ${e.message}` };
      }
      if (Date.now() > deadline) fail(`${what}: not within ${timeout / 1000} s; last seen: ${last?.detail}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  const pageErrors = [];
  const foreignRequests = [];
  try {
    browser = await chromium.launch({
      executablePath: chromiumPath,
      headless: true,
      // Tests run as root, where chromium's sandbox cannot start.
      args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
    });
  } catch (e) {
    fail(`cannot start ${chromiumPath}: ${e.message}`);
  }

  {
    const page = await browser.newPage({
      viewport: { width: 1360, height: 900 },
      ignoreHTTPSErrors: origin.startsWith('https:'), // the cluster's own CA, not the browser's
    });
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    page.on('console', (m) => {
      // An answer other than 2xx is logged by the browser itself; the page handles those.
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) {
        pageErrors.push(`console: ${m.text()}`);
      }
    });
    page.on('request', (r) => {
      const u = r.url();
      if (!u.startsWith(origin + '/') && !u.startsWith('data:')) foreignRequests.push(u);
    });
    page.on('dialog', (d) => d.accept());

    const response = await page.goto(url, { waitUntil: 'load' });
    if (!response || response.status() !== 200) fail(`GET ${url} answered ${response?.status()}`);

    if (token) {
      // The page asks for the token; a wrong one is refused and asked again; the right one
      // lets the page go on (and shows the sign-out button).
      const dialogState = () => page.evaluate(() => ({
        open: !!document.querySelector('#token-dialog')?.open,
        message: document.querySelector('#token-message')?.textContent || '',
      }));
      await waitFor('the page asks for the REST token', async () => {
        const d = await dialogState();
        return { ok: d.open && /token/.test(d.message), detail: JSON.stringify(d) };
      });
      // Escape does not get past it: the page cannot work without the token.
      await page.keyboard.press('Escape');
      await new Promise((r) => setTimeout(r, 300));
      const afterEscape = await dialogState();
      if (!afterEscape.open) fail(`Escape closed the token dialog: ${JSON.stringify(afterEscape)}`);
      await page.fill('#token-input', `${token}-wrong`);
      await page.click('#token-submit');
      await waitFor('a wrong token is refused and asked again', async () => {
        const d = await dialogState();
        return { ok: d.open && /refused/.test(d.message), detail: JSON.stringify(d) };
      });
      await page.fill('#token-input', token);
      await page.click('#token-submit');
      await waitFor('the right token closes the dialog', async () => {
        const d = await dialogState();
        const signOut = await page.$eval('#sign-out', (b) => !b.hidden);
        return { ok: !d.open && signOut, detail: JSON.stringify({ ...d, signOut }) };
      });
    }

    // The overview: cluster figures and the job in the jobs list.
    await waitFor('the overview shows the cluster and the job', async () => {
      const s = await page.evaluate((id) => ({
        tms: document.querySelector('#ov-taskmanagers')?.textContent,
        row: !!document.querySelector(`#jobs-body tr[data-job-id="${id}"]`),
        state: document.querySelector(`#jobs-body tr[data-job-id="${id}"] .state`)?.textContent,
      }), jobId);
      return { ok: s.row && /^[1-9][0-9]*$/.test(s.tms || '') && s.state === 'RUNNING', detail: JSON.stringify(s) };
    });

    await page.click(`#jobs-body tr[data-job-id="${jobId}"] a`);
    await waitFor('the job page opens', async () => {
      const hash = await page.evaluate(() => location.hash);
      return { ok: hash === `#/jobs/${jobId}`, detail: hash };
    });

    if (!token) await figureChecks();

    // Cancel from the page, then the page shows the job CANCELED.
    // The job page draws its header (and the button) once its first answers are in.
    await waitFor('the job page shows its cancel button', async () => {
      const b = await page.$('#cancel-job');
      return { ok: !!b && (await b.isVisible()), detail: b ? 'hidden' : 'no #cancel-job yet' };
    });
    await page.click('#cancel-job');
    await waitFor('the page shows the job CANCELED', async () => {
      const state = await page.$eval('#job-state', (e) => e.textContent);
      return { ok: state === 'CANCELED', detail: `job state shown: ${state}` };
    });
    const cancelVisible = await page.$eval('#cancel-job', (b) => !b.hidden);
    if (cancelVisible) fail('the cancel button still shows for a CANCELED job');

    if (foreignRequests.length) fail(`the page asked for something not of its server: ${foreignRequests.join(', ')}`);
    if (pageErrors.length) fail(`the page raised errors: ${pageErrors.join(' | ')}`);
    console.log('dashboard test: all checks passed');

    // The job page's live figures: the graph, the chart, the autoscaler's panel, a checkpoint.
    async function figureChecks() {
      // The graph: one box per vertex of the plan, each with a live records/s figure.
      const job = await restJob();
      const vertexIds = (job.plan?.nodes || []).map((n) => String(n.id));
      if (!vertexIds.length) fail(`the REST API shows no vertex for job ${jobId}: ${JSON.stringify(job)}`);
      await waitFor(`the graph shows all ${vertexIds.length} vertices with records/s above 0`, async () => {
        const boxes = await page.$$eval('#job-graph .vertex', (gs) => gs.map((g) => ({
          id: g.dataset.vertexId,
          name: g.dataset.vertexName,
          in: Number(g.dataset.inRate || 0),
          out: Number(g.dataset.outRate || 0),
          inText: g.querySelector('.rate-in')?.textContent,
          outText: g.querySelector('.rate-out')?.textContent,
          backpressure: g.dataset.backpressure,
        })));
        const byId = new Map(boxes.map((b) => [b.id, b]));
        const missing = vertexIds.filter((id) => !byId.has(id));
        const idle = boxes.filter((b) => !(Math.max(b.in, b.out) > 0) || !/[0-9]/.test(`${b.inText}${b.outText}`) ||
          !['ok', 'low', 'high'].includes(b.backpressure));
        const detail = missing.length ? `no box for vertices ${missing.join(', ')}; boxes: ${JSON.stringify(boxes)}`
          : `boxes without a live figure or back-pressure level: ${JSON.stringify(idle)}`;
        return { ok: boxes.length === vertexIds.length && !missing.length && !idle.length, detail };
      });

      await waitFor('the throughput chart draws a line', async () => {
        const lines = await page.$$eval('#throughput-chart path.line', (ps) => ps.length);
        return { ok: lines > 0, detail: `${lines} lines` };
      });
      if (process.env.SLUICE_DASHBOARD_SCREENSHOT) {
        await page.screenshot({ path: process.env.SLUICE_DASHBOARD_SCREENSHOT, fullPage: true });
      }

      // The job has the autoscaler on: its panel shows, with its decisions or the row saying there
      // is none yet.
      await waitFor('the autoscaler panel shows', async () => {
        const panel = await page.$eval('#autoscaler-panel', (p) => ({
          hidden: p.hidden, rows: p.querySelectorAll('tbody tr').length, text: p.textContent.replace(/\s+/g, ' ').trim(),
        }));
        return { ok: !panel.hidden && panel.rows > 0, detail: JSON.stringify(panel) };
      });

      // The checkpoints tab: a completed checkpoint in the table.
      await page.click('.tabs a[data-tab="checkpoints"]');
      await waitFor('the checkpoint table has a completed checkpoint', async () => {
        const rows = await page.$$eval('#checkpoint-table tbody tr', (trs) => trs.map((tr) => ({
          id: tr.dataset.checkpointId, status: tr.dataset.status, text: tr.textContent.replace(/\s+/g, ' ').trim(),
        })));
        const completed = rows.filter((r) => r.status === 'COMPLETED' && /^[0-9]+$/.test(r.id || ''));
        return { ok: completed.length > 0, detail: JSON.stringify(rows) };
      });
      if (process.env.SLUICE_DASHBOARD_SCREENSHOT) {
        await page.screenshot({ path: process.env.SLUICE_DASHBOARD_SCREENSHOT.replace(/\.png$/, '') + '-checkpoints.png', fullPage: true });
      }
    }
  }
}

// The whole test is bounded: past TOTAL_TIMEOUT_MS it fails, closing the browser it started.
const overall = setTimeout(async () => {
  await finish(new Failure(`the whole test took more than ${TOTAL_TIMEOUT_MS / 1000} s`));
  process.exit(1);
}, TOTAL_TIMEOUT_MS);
main().then(() => finish(null), (e) => finish(e)).finally(() => clearTimeout(overall));
