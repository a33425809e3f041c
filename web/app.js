// app.js — vigil's room grid. Polls GET /api/v1/streams every 2 s and keeps one tile per
// stream; every running room's snapshot is fetched every 2.5 s (with the token, so it
// works when reads need one), decoded off-screen and swapped in, so the picture never
// flickers. A 401 opens the token dialog; the token lives in sessionStorage and goes out
// as a Bearer header on every call. Server text is only ever set with textContent.

const POLL_MS = 2000;
const SNAP_MS = 2500;
const READ_TIMEOUT_MS = 6000;
const WRITE_TIMEOUT_MS = 30000; // a model change answers once the model has loaded
const ALARM_STATES = new Set(['reconnecting', 'failed', 'stopped']);
const ALARM_TEXT = {
  reconnecting: 'Camera connection lost — reconnecting',
  failed: 'Camera failed',
  stopped: 'Camera stopped',
};
const TOKEN_KEY = 'vigil.token';

const $ = (sel, root = document) => root.querySelector(sel);
const grid = $('#grid');
const tiles = new Map(); // stream_id -> tile record (see makeTile)
let models = [];
let lastOk = 0;

/* ---- API calls with the bearer token ------------------------------------------------- */

let tokenPrompt = null;
let tokenDeclined = false;

// Opens the token dialog once however many calls are waiting; resolves true when a
// token was entered. Background reads do not re-ask after the user cancelled.
function askToken(interactive) {
  if (tokenDeclined && !interactive) return Promise.resolve(false);
  tokenPrompt ??= new Promise((resolve) => {
    const dlg = $('#token-dialog');
    const input = dlg.querySelector('input');
    input.value = '';
    dlg.returnValue = '';
    dlg.addEventListener('close', () => {
      tokenPrompt = null;
      const ok = dlg.returnValue === 'ok' && input.value.trim() !== '';
      if (ok) sessionStorage.setItem(TOKEN_KEY, input.value.trim());
      tokenDeclined = !ok;
      resolve(ok);
    }, { once: true });
    dlg.showModal();
  });
  return tokenPrompt;
}

async function api(path, { method = 'GET', body, interactive = method !== 'GET' } = {}) {
  for (let attempt = 0; ; attempt++) {
    const headers = {};
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      signal: AbortSignal.timeout(method === 'GET' ? READ_TIMEOUT_MS : WRITE_TIMEOUT_MS),
    });
    if (res.status !== 401 || attempt >= 2 || !(await askToken(interactive))) return res;
  }
}

async function readJson(res) {
  try {
    return await res.json();
  } catch {
    return null;
  }
}

// fetch() rejects with a TypeError when there is no connection at all.
const whyFailed = (e) => ({ TimeoutError: 'no answer', TypeError: 'no connection' })[e.name] ?? e.message;

const streamPath = (id) => `/api/v1/streams/${encodeURIComponent(id)}`;

function setMsg(out, text, kind = '') {
  clearTimeout(out.clearTimer);
  out.textContent = text;
  out.className = `msg ${kind}`;
  if (kind === 'ok') out.clearTimer = setTimeout(() => setMsg(out, ''), 4000);
}

// Sends a command and shows its outcome in `out`: the ack's error.message when it was
// rejected or failed. Returns true when the command completed.
async function command(path, method, body, out) {
  setMsg(out, 'Sending…');
  try {
    const res = await api(path, { method, body });
    const ack = await readJson(res);
    if (res.ok && (!ack?.status || ack.status === 'completed')) {
      setMsg(out, 'Done', 'ok');
      return true;
    }
    setMsg(out, ack?.error?.message ?? `The gateway answered HTTP ${res.status}`, 'error');
  } catch (e) {
    setMsg(out, `Could not reach the gateway (${whyFailed(e)})`, 'error');
  }
  return false;
}

/* ---- polling -------------------------------------------------------------------------- */

let pollTimer = 0;
let polling = false;
let pollAgain = false;

function pollSoon(ms = 0) {
  clearTimeout(pollTimer);
  pollTimer = setTimeout(poll, ms);
}

async function poll() {
  if (polling) {
    pollAgain = true;
    return;
  }
  polling = true;
  try {
    const data = await fetchStreams();
    if (data) render(data);
  } finally {
    polling = false;
    pollSoon(pollAgain ? 0 : POLL_MS);
    pollAgain = false;
  }
}

// Returns the stream list, or null after showing why it could not be read.
async function fetchStreams() {
  try {
    const res = await api('/api/v1/streams');
    if (res.status === 401) {
      showApiBanner('An access token is needed to see the rooms.', true);
      return null;
    }
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const data = await res.json();
    lastOk = Date.now();
    hideApiBanner();
    if (models.length === 0) await loadModels();
    return data;
  } catch (e) {
    const since = lastOk ? ` since ${clock(lastOk)}` : '';
    showApiBanner(`Gateway unreachable${since} (${whyFailed(e)}). The rooms below are NOT up to date.`);
    for (const t of tiles.values()) t.el.classList.add('is-stale');
    return null;
  }
}

async function loadModels() {
  try {
    const res = await api('/api/v1/models');
    if (res.ok) models = (await res.json()).models ?? [];
  } catch {
    /* the next poll tries again */
  }
}

function showApiBanner(text, askForToken = false) {
  const banner = $('#api-banner');
  if (!banner.hidden && banner.dataset.text === text) return; // announce a change only once
  banner.dataset.text = text;
  banner.textContent = text;
  if (askForToken) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = 'Enter token';
    b.addEventListener('click', () => askToken(true).then((ok) => ok && pollSoon()));
    banner.append(b);
  }
  banner.hidden = false;
  $('#summary').textContent = askForToken ? 'Access token needed' : 'Gateway unreachable';
  $('#summary').classList.add('bad');
}

function hideApiBanner() {
  $('#api-banner').hidden = true;
}

const clock = (ms) => new Date(ms).toLocaleTimeString();

/* ---- tiles ----------------------------------------------------------------------------- */

function makeTile(id) {
  const el = $('#tile-template').content.firstElementChild.cloneNode(true);
  el.dataset.streamId = id;
  const [fpsMsg, modelMsg, actionMsg] = el.querySelectorAll('.msg');
  const t = {
    id, el, fpsMsg, modelMsg, actionMsg,
    img: $('.snapshot', el),
    imgUrl: null,
    live: false,
    snapBusy: false,
    fpsDirty: false,
    alarmKey: '',
    model: '',
    modelBusy: false,
    modelsShown: null,
  };
  $('.room', el).textContent = id;
  t.img.alt = `Live view of ${id}`;

  const fpsInput = $('.fps-input', el);
  fpsInput.addEventListener('input', () => { t.fpsDirty = true; });
  $('.fps-form', el).addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (await command(streamPath(id), 'PATCH', { fps: Number(fpsInput.value) }, fpsMsg)) {
      t.fpsDirty = false;
      pollSoon();
    }
  });

  const select = $('.model', el);
  select.addEventListener('change', async () => {
    select.disabled = true;
    t.modelBusy = true;
    if (!(await command(streamPath(id), 'PATCH', { model_id: select.value }, modelMsg)))
      select.value = t.model; // show the model that is still running
    t.modelBusy = false;
    select.disabled = false;
    pollSoon();
  });

  $('.restart', el).addEventListener('click', async () => {
    if (await command(`${streamPath(id)}/restart`, 'POST', undefined, actionMsg)) pollSoon();
  });
  $('.remove', el).addEventListener('click', async () => {
    if (!confirm(`Remove room ${id}? Its camera will no longer be watched.`)) return;
    if (await command(streamPath(id), 'DELETE', undefined, actionMsg)) {
      dropTile(t);
      pollSoon();
    }
  });
  tiles.set(id, t);
  return t;
}

function dropTile(t) {
  t.el.remove();
  if (t.imgUrl) URL.revokeObjectURL(t.imgUrl);
  tiles.delete(t.id);
}

const fmt = (n, digits = 1) => (typeof n === 'number' ? String(Number(n.toFixed(digits))) : '—');

function updateTile(t, s) {
  const el = t.el;
  el.classList.remove('is-stale');
  const state = $('.state', el);
  state.textContent = s.state;
  state.dataset.state = s.state;

  const alarm = ALARM_STATES.has(s.state);
  el.classList.toggle('is-alarm', alarm);
  const key = alarm ? `${s.state}|${s.error ?? ''}` : '';
  if (key !== t.alarmKey) { // rewrite only on change, so screen readers announce it once
    t.alarmKey = key;
    const box = $('.alarm', el);
    box.hidden = !alarm;
    box.replaceChildren();
    if (alarm) {
      const detail = document.createElement('small');
      detail.textContent = s.error || '';
      box.append(`⚠ ${t.id}: ${ALARM_TEXT[s.state]}. `, detail);
    }
  }

  $('.persons', el).textContent = s.person_count ?? '—';
  $('.fps', el).textContent = `${fmt(s.fps_measured)} / ${fmt(s.fps_target, 2)}`;
  $('.latency', el).textContent = typeof s.latency_ms === 'number' ? `${Math.round(s.latency_ms)} ms` : '—';

  const fpsInput = $('.fps-input', el);
  if (!t.fpsDirty && document.activeElement !== fpsInput) fpsInput.value = s.fps_target;

  updateModelSelect(t, s);

  const wasLive = t.live;
  t.live = s.state === 'running';
  if (!t.live) {
    showPlaceholder(t, s.state === 'connecting' ? 'Connecting to the camera…' : 'No live picture');
  } else if (!wasLive) {
    refreshSnapshot(t);
  }
}

function updateModelSelect(t, s) {
  const select = $('.model', t.el);
  const current = (s.workers ?? []).find((w) => w.model_id)?.model_id ?? '';
  t.model = current;
  if (t.modelsShown !== models) { // (re)fill when the model list changed
    select.replaceChildren(new Option('— none —', ''),
      ...models.map((m) => new Option(`${m.model_id} (${m.task})`, m.model_id)));
    t.modelsShown = models;
  }
  if (t.modelBusy || document.activeElement === select) return;
  select.options[0].hidden = current !== '';
  select.value = current;
  select.disabled = current === '';
  select.title = current === '' ? 'This room has no detector that uses a model' : '';
}

function showPlaceholder(t, text) {
  t.img.hidden = true;
  $('.shot-time', t.el).textContent = '';
  const ph = $('.placeholder', t.el);
  ph.textContent = text;
  ph.hidden = false;
}

function snapshotWidth(t) {
  const px = $('.view', t.el).clientWidth * (window.devicePixelRatio || 1);
  return Math.min(640, Math.max(160, Math.ceil(px / 32) * 32));
}

// Fetches a fresh snapshot with boxes and swaps it in once decoded; a 404 (no frame
// yet) shows the placeholder, any other failure keeps the last picture.
async function refreshSnapshot(t) {
  if (t.snapBusy || !t.live || document.hidden) return;
  t.snapBusy = true;
  try {
    const res = await api(`${streamPath(t.id)}/snapshot.jpg?boxes=1&width=${snapshotWidth(t)}`);
    if (res.status === 404) {
      showPlaceholder(t, 'No picture yet');
      return;
    }
    if (!res.ok || !tiles.has(t.id)) return;
    const url = URL.createObjectURL(await res.blob());
    const img = new Image();
    img.className = 'snapshot';
    img.alt = t.img.alt;
    img.src = url;
    try {
      await img.decode();
    } catch {
      URL.revokeObjectURL(url);
      return;
    }
    if (!t.live || !tiles.has(t.id)) {
      URL.revokeObjectURL(url);
      return;
    }
    t.img.replaceWith(img);
    if (t.imgUrl) URL.revokeObjectURL(t.imgUrl);
    t.img = img;
    t.imgUrl = url;
    $('.placeholder', t.el).hidden = true;
    $('.shot-time', t.el).textContent = clock(Date.now());
  } catch {
    /* unreachable: the poll shows the banner */
  } finally {
    t.snapBusy = false;
  }
}

function render(data) {
  $('#instance').textContent = data.instance_id ?? '';
  const streams = data.streams ?? [];
  const seen = new Set();
  streams.forEach((s, i) => {
    const t = tiles.get(s.stream_id) ?? makeTile(s.stream_id);
    seen.add(s.stream_id);
    if (grid.children[i] !== t.el) grid.insertBefore(t.el, grid.children[i] ?? null);
    updateTile(t, s);
  });
  for (const t of [...tiles.values()]) if (!seen.has(t.id)) dropTile(t);

  const alarms = streams.filter((s) => ALARM_STATES.has(s.state)).map((s) => s.stream_id);
  const summary = $('#summary');
  summary.classList.toggle('bad', alarms.length > 0);
  summary.textContent = alarms.length
    ? `${alarms.length} of ${streams.length} rooms need attention: ${alarms.join(', ')}`
    : `All ${streams.length} rooms OK`;
  document.title = `${alarms.length ? `(${alarms.length}) ` : ''}vigil — rooms`;
  $('#empty').hidden = streams.length > 0;
  $('#updated').textContent = `Updated ${clock(lastOk)}`;
}

/* ---- adding a room ----------------------------------------------------------------------- */

$('#add-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const f = ev.target.elements;
  const body = {
    stream_id: f.stream_id.value.trim(),
    url: f.url.value.trim(),
    fps: Number(f.fps.value),
  };
  const button = ev.target.querySelector('button');
  button.disabled = true;
  if (await command('/api/v1/streams', 'POST', body, f.msg)) {
    f.stream_id.value = '';
    f.url.value = '';
    setMsg(f.msg, `Added ${body.stream_id}`, 'ok');
    pollSoon();
  }
  button.disabled = false;
});

setInterval(() => tiles.forEach(refreshSnapshot), SNAP_MS);
document.addEventListener('visibilitychange', () => !document.hidden && pollSoon());
poll();
