// web.mjs — drives vigil's web page in headless Chromium (playwright-core) against a
// running vigild; started by test_web.sh, which sets the environment below. Prints one
// "ok - ..." line per check and exits non-zero on the first failure (with a screenshot).
//   VIGIL_URL      base URL of the daemon          VIGIL_TOKEN  the bearer token it wants
//   VIGILD_PID     the daemon (stopped at the end) ARTIFACTS    folder for screenshots
//   PW_DIR         folder whose node_modules has playwright-core
//   PROFILE_DIR    a fresh Chromium user-data-dir
//   PERSON, OTHER, DEAD  stream ids: person clip (yolo), other clip, refused camera
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const env = (k) => process.env[k] ?? fail(`${k} is not set`);
const URL_BASE = env('VIGIL_URL');
const TOKEN = env('VIGIL_TOKEN');
const ARTIFACTS = env('ARTIFACTS');
const [PERSON, OTHER, DEAD] = [env('PERSON'), env('OTHER'), env('DEAD')];
const ADDED = 'room-added';

const { chromium } = createRequire(join(env('PW_DIR'), 'index.js'))('playwright-core');

function fail(msg) {
  throw new Error(msg);
}
const started = Date.now();
const ok = (what) => console.log(`ok - ${what} (${((Date.now() - started) / 1000).toFixed(1)} s)`);

// curl, as the brief's users would: returns parsed JSON and the HTTP status.
function curl(path, ...args) {
  const out = execFileSync('curl', ['-s', '-w', '\n%{http_code}', ...args, URL_BASE + path], {
    encoding: 'utf8',
  });
  const nl = out.lastIndexOf('\n');
  let body = null;
  try {
    body = JSON.parse(out.slice(0, nl));
  } catch { /* not JSON */ }
  return { status: Number(out.slice(nl + 1)), body };
}

async function until(what, fn, timeoutMs = 15000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) fail(`timed out after ${timeoutMs / 1000} s: ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/* ---- what may fail: 404 snapshots always; 401 and 409 only in the steps that cause them */
let phase = 'load';
const allowedStatus = { auth: [401], duplicate: [409] };
const problems = [];
const excused = new Set(); // URLs whose failure was expected (their console line is too)

function watch(page) {
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('response', (r) => {
    const s = r.status();
    if (s < 400) return;
    const snapshot404 = s === 404 && /\/snapshot\.jpg(\?|$)/.test(r.url());
    if (snapshot404 || (allowedStatus[phase] ?? []).includes(s)) excused.add(r.url());
    else problems.push(`HTTP ${s} for ${r.request().method()} ${r.url()} (step ${phase})`);
  });
  page.on('requestfailed', (r) => {
    if (phase === 'offline') excused.add(r.url());
    else problems.push(`request failed: ${r.url()} ${r.failure()?.errorText} (step ${phase})`);
  });
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push({ phase, text: m.text(), url: m.location().url });
  });
}

function reportProblems() {
  const left = problems.filter((p) => {
    if (typeof p === 'string') return true;
    const loadFailure = /^Failed to load resource/.test(p.text) && excused.has(p.url);
    return !(loadFailure || (p.phase === 'offline' && /^Failed to load resource/.test(p.text)));
  });
  if (left.length) fail(`console errors or failed requests:\n  ${left.map((p) => (typeof p === 'string' ? p : `console error: ${p.text} [${p.url}]`)).join('\n  ')}`);
}

/* ---- the checks ---------------------------------------------------------------------- */

const tile = (id) => `.tile[data-stream-id="${id}"]`;

async function checkLoad(page) {
  await page.goto(URL_BASE + '/');
  await page.waitForFunction((ids) => ids.every((id) => document.querySelector(`.tile[data-stream-id="${id}"]`)),
    [PERSON, OTHER, DEAD]);
  const n = await page.locator('.tile').count();
  if (n !== 3) fail(`expected 3 tiles, got ${n}`);
  ok('page loads and shows one tile per stream');
}

async function checkSnapshots(page) {
  for (const id of [PERSON, OTHER])
    await page.waitForFunction((sel) => {
      const img = document.querySelector(`${sel} img.snapshot`);
      return img && !img.hidden && img.complete && img.naturalWidth > 0;
    }, tile(id), { timeout: 15000 });
  ok('running rooms show a loaded snapshot');

  // the picture is replaced every few seconds, and never blanks while it is
  const first = await page.$eval(`${tile(PERSON)} img.snapshot`, (img) => {
    window.blanked = 0;
    const fig = img.closest('figure');
    new MutationObserver(() => {
      const now = fig.querySelector('img.snapshot');
      if (!now || now.hidden || !(now.naturalWidth > 0)) window.blanked++;
    }).observe(fig, { childList: true, subtree: true, attributes: true });
    return img.src;
  });
  await page.waitForFunction(([sel, src]) => document.querySelector(`${sel} img.snapshot`).src !== src,
    [tile(PERSON), first], { timeout: 8000 });
  const blanked = await page.evaluate(() => window.blanked);
  if (blanked) fail(`the snapshot blanked ${blanked} time(s) while being replaced`);
  ok('snapshots refresh in place without blanking');
}

async function checkPersonCount(page) {
  await page.waitForFunction((sel) => Number(document.querySelector(`${sel} .persons`).textContent) >= 1,
    tile(PERSON), { timeout: 15000 });
  ok(`person count shown for ${PERSON}: ${await page.textContent(`${tile(PERSON)} .persons`)}`);
}

async function checkAlarm(page, id) {
  await page.waitForFunction((sel) => document.querySelector(sel).classList.contains('is-alarm'), tile(id),
    { timeout: 15000 });
  const look = await page.$eval(tile(id), (el) => {
    const cs = getComputedStyle(el);
    const banner = el.querySelector('.alarm');
    return {
      border: cs.borderTopColor, width: parseFloat(cs.borderTopWidth),
      banner: banner.hidden ? '' : banner.textContent, role: banner.getAttribute('role'),
      state: el.querySelector('.state').textContent,
    };
  });
  const [r, g, b] = look.border.match(/\d+/g).map(Number);
  if (!(r >= 200 && g < 110 && b < 110 && look.width >= 4)) fail(`${id}: border ${look.border} ${look.width}px is not an alarm`);
  if (!/reconnecting|failed|stopped/i.test(look.banner) || look.role !== 'alert') fail(`${id}: no alarm banner (${JSON.stringify(look)})`);
  if (!(await page.textContent('#summary')).includes(id)) fail(`${id}: header summary does not name it`);
  ok(`${id} is in alarm style (${look.state}: "${look.banner.slice(0, 60)}")`);
}

async function checkNoFalseAlarm(page) {
  for (const id of [PERSON, OTHER])
    if (await page.$eval(tile(id), (el) => el.classList.contains('is-alarm'))) fail(`${id} is running but shows an alarm`);
  ok('running rooms show no alarm');
}

async function checkSetFps(page) {
  phase = 'auth';
  await page.fill(`${tile(OTHER)} .fps-input`, '3.5');
  await page.click(`${tile(OTHER)} .fps-form button`);
  await page.waitForSelector('#token-dialog[open]', { timeout: 5000 });
  await page.fill('#token-dialog input', TOKEN);
  await page.click('#token-dialog button[value="ok"]');
  await page.waitForFunction((sel) => document.querySelector(`${sel} .fps-form .msg`).textContent === 'Done',
    tile(OTHER), { timeout: 10000 });
  phase = 'controls';
  const { status, body } = curl(`/api/v1/streams/${OTHER}`);
  if (status !== 200 || body.fps_target !== 3.5) fail(`fps_target after the page set 3.5: ${status} ${JSON.stringify(body?.fps_target)}`);
  const stored = await page.evaluate(() => sessionStorage.getItem('vigil.token'));
  if (stored !== TOKEN) fail('the token was not kept in sessionStorage');
  ok(`set fps from the page (after the 401 token dialog): fps_target of ${OTHER} is 3.5`);
}

async function addRoom(page, id, url, fps) {
  await page.fill('#add-form [name=stream_id]', id);
  await page.fill('#add-form [name=url]', url);
  await page.fill('#add-form [name=fps]', String(fps));
  await page.click('#add-form button[type=submit]');
}

async function checkAckError(page) {
  phase = 'duplicate';
  await addRoom(page, PERSON, 'rtsp://127.0.0.1:1/dup', 1);
  await page.waitForFunction(() => document.querySelector('#add-form .msg.error')?.textContent.includes('already exists'),
    null, { timeout: 5000 });
  phase = 'controls';
  ok(`a rejected command shows its error: "${await page.textContent('#add-form .msg')}"`);
}

async function checkAddRoom(page) {
  await addRoom(page, ADDED, 'rtsp://127.0.0.1:1/added', 1);
  await page.waitForSelector(tile(ADDED), { timeout: 10000 });
  const { status } = curl(`/api/v1/streams/${ADDED}`);
  if (status !== 200) fail(`${ADDED} added from the page is not in the API (${status})`);
  ok(`added ${ADDED} from the page's form`);
  await checkAlarm(page, ADDED);
}

async function checkModelRestartRemove(page) {
  await page.selectOption(`${tile(PERSON)} select.model`, 'builtin-hog');
  await page.waitForFunction((sel) => document.querySelector(`${sel} .model-ctl .msg`).textContent === 'Done',
    tile(PERSON), { timeout: 15000 });
  const model = curl(`/api/v1/streams/${PERSON}`).body?.workers?.[0]?.model_id;
  if (model !== 'builtin-hog') fail(`model after the page chose builtin-hog: ${model}`);
  ok(`changed ${PERSON}'s model from the page`);

  await page.click(`${tile(OTHER)} .restart`);
  await page.waitForFunction((sel) => document.querySelector(`${sel} .actions .msg`).textContent === 'Done',
    tile(OTHER), { timeout: 10000 });
  ok(`restarted ${OTHER} from the page`);

  page.once('dialog', (d) => d.accept());
  await page.click(`${tile(ADDED)} .remove`);
  await page.waitForSelector(tile(ADDED), { state: 'detached', timeout: 10000 });
  const { status } = curl(`/api/v1/streams/${ADDED}`);
  if (status !== 404) fail(`${ADDED} still exists after removal (${status})`);
  ok(`removed ${ADDED} from the page (after confirming)`);
}

async function checkTablet(page) {
  await page.setViewportSize({ width: 800, height: 1280 });
  await page.waitForTimeout(300);
  const layout = await page.evaluate(() => ({
    overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
    columns: getComputedStyle(document.querySelector('#grid')).gridTemplateColumns.split(' ').length,
    smallest: Math.min(...[...document.querySelectorAll('.tile button, .tile select, .tile input')]
      .map((e) => e.getBoundingClientRect().height)),
  }));
  await page.screenshot({ path: join(ARTIFACTS, 'web-tablet.png') });
  if (layout.overflow > 0) fail(`tablet layout scrolls sideways by ${layout.overflow}px`);
  if (layout.smallest < 44) fail(`a control is ${layout.smallest}px tall (touch targets need 44)`);
  ok(`tablet layout: ${layout.columns} columns, no sideways scroll, controls >= 44 px`);
  await page.setViewportSize({ width: 1920, height: 1080 });
}

async function checkOffline(page) {
  phase = 'offline';
  process.kill(Number(env('VIGILD_PID')), 'SIGTERM');
  await page.waitForSelector('#api-banner:not([hidden])', { timeout: 10000 });
  const text = await page.textContent('#api-banner');
  if (!/unreachable/i.test(text) || (await page.getAttribute('#api-banner', 'role')) !== 'alert') fail(`API banner: ${text}`);
  await page.screenshot({ path: join(ARTIFACTS, 'web-offline.png') });
  ok(`daemon stopped: the header banner says "${text.slice(0, 50)}…"`);
}

/* ---- main ------------------------------------------------------------------------------- */

const context = await chromium.launchPersistentContext(env('PROFILE_DIR'), {
  executablePath: '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1920, height: 1080 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-quic'],
});
const page = context.pages()[0] ?? (await context.newPage());
page.setDefaultTimeout(15000);
watch(page);
let rc = 0;
try {
  await checkLoad(page);
  await checkSnapshots(page);
  await checkNoFalseAlarm(page);
  await checkAlarm(page, DEAD);
  await checkPersonCount(page);
  await checkSetFps(page);
  await checkAckError(page);
  await checkAddRoom(page);
  await page.screenshot({ path: join(ARTIFACTS, 'web.png') });
  console.log(`screenshot: ${join(ARTIFACTS, 'web.png')}`);
  await checkTablet(page);
  await checkModelRestartRemove(page);
  reportProblems();
  ok('no console errors and no failed requests besides 404 snapshots');
  await checkOffline(page);
  reportProblems(); // page errors while offline still count
} catch (e) {
  rc = 1;
  console.error(`FAIL: ${e.message}`);
  await page.screenshot({ path: join(ARTIFACTS, 'web-failed.png') }).catch(() => {});
  console.error(`screenshot of the failure: ${join(ARTIFACTS, 'web-failed.png')}`);
} finally {
  await context.close();
}
process.exit(rc);
