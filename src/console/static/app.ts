/**
 * The operator console (plain DOM, bundled by scripts/build-console.mjs). All data comes from
 * the management API; paging, search and sorting happen on the server. Live updates come from
 * GET /ztp/mng/events, read with fetch() and a stream reader rather than EventSource because
 * EventSource cannot send the Authorization header. Data is only ever put into the page as
 * text (textContent), never as HTML.
 */

// Wire types come from the server's own schema modules (type-only: esbuild erases them), so
// that a change of a response shape fails `npm run typecheck` here instead of the page.
import type { DeviceEventData, ReportEventData, TriggerEventData } from '../../events/wire.js';
import type { AuditEntryView, AuditPage } from '../../audit/views.js';
import type { DeviceDetailView } from '../../devices/views.js';
import type { PendingList, PendingView } from '../../enrollment/views.js';
import type { ReportView } from '../../reports/views.js';
import type { TriggerView } from '../../triggers/views.js';
import type { ConsoleDevicePage, StatsView } from '../views.js';

type DeviceRow = ConsoleDevicePage['items'][number];

type TriggerState = TriggerView['state'];

/**
 * A table row as shown: an event may have replaced its trigger, and events carry the trigger
 * without its time-dependent members.
 */
interface ShownRow extends Omit<DeviceRow, 'trigger'> {
  trigger: TriggerEventData | null;
}

const TOKEN_KEY = 'ztp-admin-token';

// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- typed element lookup
const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id}`);
  return el as T;
};

const state = {
  search: '',
  /** Only devices whose latest trigger is in this state ('' for all). */
  trigger: '' as TriggerState | '',
  sort: 'id',
  order: 'asc' as 'asc' | 'desc',
  limit: 25,
  offset: 0,
  total: 0,
  items: [] as ShownRow[],
  /** Server clock minus ours, so that "2 min ago" is right even when the clocks differ. */
  skew: 0,
  triggersEnabled: true,
  detail: undefined as DeviceDetailView | undefined,
  /** Which view is shown: the device table or the devices waiting for approval. */
  view: 'devices' as 'devices' | 'pending',
  pending: [] as PendingView[],
};

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** The request body member the problem is about (the problem document's `field`). */
    readonly field?: string,
  ) {
    super(message);
  }
}

// ---- API access and the token prompt ---------------------------------------------------------

let tokenPrompt: Promise<void> | undefined;

const HINT_FIRST =
  "The management API asks for a token. It is kept in this tab's session storage only.";
const HINT_REJECTED = 'That token was not accepted. Enter the admin token.';
const HINT_FORBIDDEN = 'That token may not use the management API: enter an admin token.';
const HINT_SIGNED_OUT = 'Signed out. Enter an admin token to continue.';

/** Why the prompt is shown, from a 401/403 answer and whether a token was sent. */
function tokenHint(status: number, hadToken: boolean): string {
  if (status === 403) return HINT_FORBIDDEN;
  return hadToken ? HINT_REJECTED : HINT_FIRST;
}

function askToken(hint: string): Promise<void> {
  tokenPrompt ??= new Promise<void>((resolve) => {
    const dialog = $<HTMLDialogElement>('token-dialog');
    const form = $<HTMLFormElement>('token-form');
    const input = $<HTMLInputElement>('token');
    $('token-hint').textContent = hint;
    input.value = '';
    const onSubmit = (e: SubmitEvent) => {
      e.preventDefault();
      if (!input.value.trim()) return;
      sessionStorage.setItem(TOKEN_KEY, input.value.trim());
      showSignOut();
      form.removeEventListener('submit', onSubmit);
      dialog.close();
      tokenPrompt = undefined;
      resolve();
    };
    form.addEventListener('submit', onSubmit);
    // A token is required to continue: Escape does not dismiss the prompt.
    dialog.addEventListener('cancel', (e) => e.preventDefault(), { once: true });
    dialog.showModal();
    input.focus();
  });
  return tokenPrompt;
}

/** Sign out is offered only while a token is in use. */
function showSignOut(): void {
  $('sign-out').hidden = sessionStorage.getItem(TOKEN_KEY) === null;
}

function authHeaders(): Record<string, string> {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { authorization: `Bearer ${token}` } : {};
}

async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const sent = sessionStorage.getItem(TOKEN_KEY);
    const headers: Record<string, string> = { accept: 'application/json', ...authHeaders() };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? null : JSON.stringify(body),
    });
    const hadToken = sent !== null;
    // 401: no or a wrong token. 403 with a token: a token of a role that may not manage.
    if ((res.status === 401 || (res.status === 403 && hadToken)) && attempt < 5) {
      await res.body?.cancel();
      // Another request may have prompted and got a new token meanwhile: just retry with it.
      if (sessionStorage.getItem(TOKEN_KEY) === sent) {
        sessionStorage.removeItem(TOKEN_KEY);
        await askToken(tokenHint(res.status, hadToken));
      }
      continue;
    }
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    if (!res.ok) {
      let code = 'error';
      let detail = `${res.status} ${res.statusText}`;
      let field: string | undefined;
      try {
        const problem = JSON.parse(text) as { code?: string; detail?: string; field?: string };
        code = problem.code ?? code;
        detail = problem.detail ?? detail;
        field = problem.field;
      } catch {
        // not a problem document
      }
      throw new ApiError(res.status, code, detail, field);
    }
    return JSON.parse(text) as T;
  }
}

// ---- formatting ------------------------------------------------------------------------------

function relative(iso: string | null): string {
  if (!iso) return '—';
  const seconds = Math.round((Date.now() + state.skew - Date.parse(iso)) / 1000);
  if (seconds < 5) return 'just now';
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

function timeEl(iso: string | null): HTMLElement {
  if (!iso) return text('span', '—');
  const el = document.createElement('time');
  el.dateTime = iso;
  el.title = new Date(iso).toLocaleString();
  el.textContent = relative(iso);
  return el;
}

function text<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  content: string,
  className?: string,
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  el.textContent = content;
  if (className) el.className = className;
  return el;
}

const STATE_LABEL: Record<TriggerState | 'none', string> = {
  pending: 'pending',
  delivered: 'delivered',
  failed: 'failed',
  dead: 'dead',
  none: 'none',
};

function badge(trigger: TriggerEventData | null): HTMLElement {
  const s = trigger ? trigger.state : 'none';
  const el = text('span', STATE_LABEL[s], `badge badge-${s}`);
  el.dataset.state = s;
  if (trigger) {
    el.title =
      `trigger #${trigger.id}, ${trigger.attempts} attempt(s)` +
      (trigger.lastError ? `; last error: ${trigger.lastError}` : '');
  }
  return el;
}

/** How a progress type reads (src/reports/progress.ts severityOf, repeated: no runtime import). */
function reportSeverity(type: string): 'error' | 'warning' | 'complete' | 'progress' {
  if (type.endsWith('-error') || type === 'boot-image-mismatch') return 'error';
  if (type.endsWith('-warning')) return 'warning';
  if (type.endsWith('-complete')) return 'complete';
  return 'progress';
}

/** A device's provisioning status: its latest progress report. */
function reportBadge(report: Pick<ReportView, 'type' | 'message' | 'at'> | null): HTMLElement {
  if (!report) return text('span', '—', 'report report-none');
  const el = text('span', report.type, `report report-${reportSeverity(report.type)}`);
  el.title = report.message ? `${report.message} (${report.at})` : report.at;
  return el;
}

function setStatus(id: string, message: string, isError = false): void {
  const el = $(id);
  el.textContent = message;
  el.classList.toggle('error', isError);
}

// ---- summary ---------------------------------------------------------------------------------

async function loadStats(): Promise<void> {
  const stats = await api<StatsView>('GET', '/ztp/mng/stats');
  state.skew = Date.parse(stats.time) - Date.now();
  state.triggersEnabled = stats.triggersEnabled;
  $('stat-devices').textContent = stats.devices.toLocaleString();
  $('stat-recent').textContent = stats.registeredLastHour.toLocaleString();
  $('stat-pending').textContent = stats.triggers.pending.toLocaleString();
  $('stat-failed').textContent = stats.triggers.failed.toLocaleString();
  $('stat-dead').textContent = stats.triggers.dead.toLocaleString();
}

// ---- the address bar -------------------------------------------------------------------------
// The URL reflects what is shown (search, filter, sort, page, open device), so an operator can
// send a colleague a link to it, and reloading shows the same view.

const SORTS = ['id', 'lastSeen', 'ip', 'name', 'registrations'];
const PAGE_SIZES = [10, 25, 50, 100];
const TRIGGER_STATES: readonly string[] = ['pending', 'delivered', 'failed', 'dead'];

/** Reads the view from the address bar, ignoring any value the page could not show. */
function readLocation(): string | undefined {
  const q = new URLSearchParams(window.location.search);
  state.search = (q.get('search') ?? '').trim();
  const trigger = q.get('trigger') ?? '';
  state.trigger = TRIGGER_STATES.includes(trigger) ? (trigger as TriggerState) : '';
  const sort = q.get('sort') ?? 'id';
  state.sort = SORTS.includes(sort) ? sort : 'id';
  state.order = q.get('order') === 'desc' ? 'desc' : 'asc';
  const limit = Number(q.get('limit'));
  state.limit = PAGE_SIZES.includes(limit) ? limit : 25;
  const offset = Number(q.get('offset'));
  state.offset = Number.isSafeInteger(offset) && offset > 0 ? offset - (offset % state.limit) : 0;
  state.view = q.get('view') === 'pending' ? 'pending' : 'devices';
  const device = q.get('device');
  return device === null || device === '' ? undefined : device;
}

/** Writes the view into the address bar; defaults are left out to keep links short. */
function writeLocation(device = state.detail?.id): void {
  const q = new URLSearchParams();
  if (state.view === 'pending') q.set('view', 'pending');
  if (state.search) q.set('search', state.search);
  if (state.trigger) q.set('trigger', state.trigger);
  if (state.sort !== 'id') q.set('sort', state.sort);
  if (state.order !== 'asc') q.set('order', state.order);
  if (state.limit !== 25) q.set('limit', String(state.limit));
  if (state.offset > 0) q.set('offset', String(state.offset));
  if (device !== undefined) q.set('device', device);
  const search = q.toString();
  const url = `${window.location.pathname}${search ? `?${search}` : ''}`;
  if (url !== `${window.location.pathname}${window.location.search}`)
    window.history.replaceState(null, '', url);
}

/** Shows the view's controls as the state says (after reading the address bar). */
function showControls(): void {
  $<HTMLInputElement>('search').value = state.search;
  $<HTMLSelectElement>('page-size').value = String(state.limit);
  filterCards();
  showView();
}

// ---- pending approval (--enrollment approve) -------------------------------------------------

/** The most pending devices the view lists at once (the count shows them all). */
const PENDING_PAGE = 1000;

function showView(): void {
  const pending = state.view === 'pending';
  $('pending-view').hidden = !pending;
  $('devices-view').hidden = pending;
  $('view-pending').setAttribute('aria-pressed', String(pending));
  $('view-devices').setAttribute('aria-pressed', String(!pending));
}

function switchView(view: 'devices' | 'pending'): void {
  state.view = view;
  showView();
  writeLocation();
  if (view === 'pending') void loadPending().catch(showError('pending-status'));
  $(view === 'pending' ? 'pending-heading' : 'devices-heading').focus();
}

async function loadPending(): Promise<void> {
  const list = await api<PendingList>('GET', `/ztp/mng/pending?limit=${PENDING_PAGE}`);
  const count = $('pending-count');
  count.textContent = list.count.toLocaleString();
  count.dataset.count = String(list.count);
  state.pending = list.pending;
  renderPending();
}

function selectedPending(): string[] {
  return [...document.querySelectorAll<HTMLInputElement>('#pending tbody input:checked')].map(
    (c) => c.value,
  );
}

function updateBulkButtons(): void {
  const none = selectedPending().length === 0;
  $<HTMLButtonElement>('approve-selected').disabled = none;
  $<HTMLButtonElement>('reject-selected').disabled = none;
}

function renderPending(): void {
  const tbody = $('pending').querySelector('tbody')!;
  const labels = [
    'Select',
    'Device id',
    'Aliases',
    'Name',
    'IP',
    'Source address',
    'Last seen',
    'Registrations',
    'Matching rule',
    'Actions',
  ];
  const rows = state.pending.map((p) => {
    const select = document.createElement('input');
    select.type = 'checkbox';
    select.value = p.id;
    select.setAttribute('aria-label', `Select ${p.id}`);
    select.addEventListener('change', updateBulkButtons);
    const approve = text('button', 'Approve');
    approve.type = 'button';
    approve.setAttribute('aria-label', `Approve ${p.id}`);
    approve.addEventListener('click', () => void decide([p.id], 'approve'));
    const reject = text('button', 'Reject', 'danger');
    reject.type = 'button';
    reject.setAttribute('aria-label', `Reject ${p.id}`);
    reject.addEventListener('click', () => void decide([p.id], 'reject'));
    const actions = document.createElement('span');
    actions.className = 'actions';
    actions.append(approve, reject);
    const rule = p.rule ? `${p.rule.kind} ${p.rule.value} (${p.rule.where})` : 'none';
    const registrations = text('span', String(p.registrations));
    const tr = row(
      [
        select,
        text('span', p.id, 'mono'),
        // What its registrations carried: what rules match, and what approval gives it.
        text('span', p.aliases.map((a) => `${a.type} ${a.value}`).join(', '), 'mono'),
        text('span', p.name),
        text('span', p.ip),
        text('span', p.source),
        timeEl(p.lastSeen),
        registrations,
        text('span', rule),
        actions,
      ],
      labels,
    );
    tr.dataset.id = p.id;
    return tr;
  });
  tbody.replaceChildren(
    ...(rows.length > 0 ? rows : [emptyRow(labels.length, 'No device is waiting for approval.')]),
  );
  $<HTMLInputElement>('pending-all').checked = false;
  updateBulkButtons();
}

/** Approves or rejects devices one by one; says how many succeeded and what failed. */
async function decide(ids: string[], action: 'approve' | 'reject'): Promise<void> {
  const failed: string[] = [];
  for (const id of ids) {
    try {
      await api('POST', `/ztp/mng/${encodeURIComponent(id)}/${action}`);
    } catch (err) {
      failed.push(`${id}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  const done = ids.length - failed.length;
  const verb = action === 'approve' ? 'Approved' : 'Rejected';
  setStatus(
    'pending-status',
    `${verb} ${done} of ${ids.length}.${failed.length > 0 ? ` ${failed.join('; ')}` : ''}`,
    failed.length > 0,
  );
  await Promise.all([loadPending(), loadStats(), loadDevices()]).catch(showError('pending-status'));
}

// ---- device table ----------------------------------------------------------------------------

let loadSeq = 0;

async function loadDevices(): Promise<void> {
  const seq = ++loadSeq;
  const q = new URLSearchParams({
    sort: state.sort,
    order: state.order,
    limit: String(state.limit),
    offset: String(state.offset),
  });
  if (state.search) q.set('search', state.search);
  if (state.trigger) q.set('trigger', state.trigger);
  const page = await api<ConsoleDevicePage>('GET', `/ztp/mng/devices?${q.toString()}`);
  if (seq !== loadSeq) return; // a newer query answered first
  if (page.items.length === 0 && page.total > 0 && state.offset > 0) {
    // The page emptied (deletions): go to the last one that has rows.
    state.offset = Math.max(0, Math.floor((page.total - 1) / state.limit) * state.limit);
    return loadDevices();
  }
  state.total = page.total;
  state.items = page.items;
  renderDevices();
  writeLocation();
}

function renderDevices(): void {
  const tbody = $('devices').querySelector('tbody')!;
  const rows = state.items.map((d) => {
    const tr = document.createElement('tr');
    tr.dataset.id = d.id;
    const idCell = document.createElement('td');
    idCell.dataset.label = 'Device id';
    const open = text('button', d.id, 'link');
    open.type = 'button';
    open.setAttribute('aria-label', `Details of ${d.id}`);
    open.addEventListener('click', () => void openDetail(d.id));
    idCell.append(open);
    const cells: [string, Node, string?][] = [
      ['Name', document.createTextNode(d.name || '—')],
      ['IP', text('span', d.ip, 'mono')],
      ['Last seen', timeEl(d.lastSeen)],
      ['Registrations', document.createTextNode(String(d.registrations)), 'num'],
      ['Trigger', badge(d.trigger)],
      ['Status', reportBadge(d.report)],
    ];
    tr.append(idCell);
    for (const [label, node, cls] of cells) {
      const td = document.createElement('td');
      td.dataset.label = label;
      if (cls) td.className = cls;
      td.append(node);
      tr.append(td);
    }
    return tr;
  });
  const filters = [
    ...(state.search ? [`search “${state.search}”`] : []),
    ...(state.trigger ? [`latest trigger ${state.trigger}`] : []),
  ];
  if (rows.length === 0) {
    rows.push(
      emptyRow(
        7,
        filters.length > 0 ? `No devices match: ${filters.join(', ')}.` : 'No devices yet.',
      ),
    );
  }
  tbody.replaceChildren(...rows);

  const last = Math.min(state.offset + state.limit, state.total);
  $('page-info').textContent =
    state.total === 0
      ? filters.length > 0
        ? 'No devices match'
        : 'No devices'
      : `${(state.offset + 1).toLocaleString()}–${last.toLocaleString()} of ${state.total.toLocaleString()}`;
  $<HTMLButtonElement>('prev').disabled = state.offset === 0;
  $<HTMLButtonElement>('next').disabled = state.offset + state.limit >= state.total;

  for (const th of document.querySelectorAll<HTMLElement>('#devices th')) {
    const key = th.querySelector('button')?.dataset.sort;
    if (key === state.sort)
      th.setAttribute('aria-sort', state.order === 'asc' ? 'ascending' : 'descending');
    else th.removeAttribute('aria-sort');
  }
}

/** Filters the table by the latest trigger's state; the select and the cards show the filter. */
function filterByTrigger(trigger: TriggerState | ''): void {
  state.trigger = trigger;
  state.offset = 0;
  filterCards();
  void loadDevices().catch(showError('status'));
}

function filterCards(): void {
  $<HTMLSelectElement>('trigger-filter').value = state.trigger;
  for (const card of document.querySelectorAll<HTMLButtonElement>(
    '.summary button[data-trigger]',
  )) {
    card.setAttribute('aria-pressed', String(card.dataset.trigger === state.trigger));
  }
}

function refreshTimes(): void {
  for (const el of document.querySelectorAll<HTMLTimeElement>('time[datetime]')) {
    el.textContent = relative(el.dateTime);
  }
}

// Live changes reload the visible page and the summary, at most once a second.
let refreshTimer: number | undefined;
let lastRefresh = 0;
function scheduleRefresh(): void {
  if (refreshTimer !== undefined) return;
  const wait = Math.max(0, 1000 - (Date.now() - lastRefresh));
  refreshTimer = window.setTimeout(() => {
    refreshTimer = undefined;
    lastRefresh = Date.now();
    void Promise.all([loadDevices(), loadStats()]).catch(showError('status'));
  }, wait);
}

function showError(where: string) {
  return (e: unknown) => setStatus(where, e instanceof Error ? e.message : String(e), true);
}

// ---- detail view -----------------------------------------------------------------------------

let returnFocus: HTMLElement | null = null;

async function openDetail(id: string): Promise<void> {
  returnFocus = document.activeElement instanceof HTMLElement ? document.activeElement : null;
  setStatus('detail-status', '');
  clearFieldErrors();
  await loadDetail(id);
  writeLocation();
  const dialog = $<HTMLDialogElement>('detail');
  if (!dialog.open) dialog.showModal();
  $('detail-title').focus();
}

async function loadDetail(id: string): Promise<void> {
  const path = `/ztp/mng/${encodeURIComponent(id)}`;
  const [detail, triggers, reports, audit] = await Promise.all([
    api<DeviceDetailView>('GET', path),
    api<{ triggers: TriggerView[] }>('GET', `/ztp/mng/devices/${encodeURIComponent(id)}/triggers`),
    api<{ reports: ReportView[] }>('GET', `/ztp/mng/devices/${encodeURIComponent(id)}/reports`),
    loadAudit(id),
  ]);
  state.detail = detail;
  renderDetail(detail, triggers.triggers);
  renderReports(reports.reports);
  renderAudit(audit);
}

/** Entries the detail shows, and pages read at most to find the newest of them. */
const AUDIT_SHOWN = 50;
const AUDIT_PAGES = 10;

/** The device's newest audit entries, newest first (the API pages oldest first). */
async function loadAudit(id: string): Promise<AuditEntryView[]> {
  const entries: AuditEntryView[] = [];
  let after: number | undefined;
  for (let page = 0; page < AUDIT_PAGES; page++) {
    const query = `device=${encodeURIComponent(id)}&limit=1000${after === undefined ? '' : `&after=${after}`}`;
    const res = await api<AuditPage>('GET', `/ztp/mng/audit?${query}`);
    entries.push(...res.entries);
    if (res.next === undefined) break;
    after = res.next;
  }
  return entries.slice(-AUDIT_SHOWN).reverse();
}

/** The members an entry changed, as `field: before → after` (nested objects one level down). */
function auditChanges(e: AuditEntryView): string {
  const flat = (o: Record<string, unknown> | null): Map<string, string> => {
    const out = new Map<string, string>();
    for (const [k, v] of Object.entries(o ?? {})) {
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
        for (const [k2, v2] of Object.entries(v)) out.set(`${k}.${k2}`, JSON.stringify(v2));
      } else out.set(k, JSON.stringify(v));
    }
    return out;
  };
  const short = (v: string | undefined) =>
    v === undefined ? '∅' : v.length > 40 ? `${v.slice(0, 39)}…` : v;
  const before = flat(e.before);
  const after = flat(e.after);
  const changed: string[] = [];
  for (const key of new Set([...before.keys(), ...after.keys()])) {
    if (before.get(key) === after.get(key)) continue;
    // A whole device appears or goes: its id says enough.
    if (e.before === null || e.after === null) continue;
    changed.push(`${key}: ${short(before.get(key))} → ${short(after.get(key))}`);
  }
  if (e.detail) changed.push(...[...flat(e.detail)].map(([k, v]) => `${k}: ${short(v)}`));
  return changed.join('; ') || '—';
}

function renderAudit(entries: AuditEntryView[]): void {
  $('audit')
    .querySelector('tbody')!
    .replaceChildren(
      ...(entries.length === 0
        ? [emptyRow(4, 'No admin changes recorded.')]
        : entries.map((e) =>
            row(
              [
                timeEl(e.at),
                text('span', `${e.actor} (${e.source})`),
                text('span', `${e.action} · ${e.via}`),
                text('span', auditChanges(e), 'mono'),
              ],
              ['Time', 'Who', 'What', 'Changes'],
            ),
          )),
    );
}

function renderDetail(d: DeviceDetailView, triggers: TriggerView[]): void {
  $('detail-title').textContent = d.id;
  const facts: [string, Node][] = [
    ['IP', text('span', d.ip, 'mono')],
    ['Name', document.createTextNode(d.name || '—')],
    ['First seen', timeEl(d.firstSeen)],
    ['Last seen', timeEl(d.lastSeen)],
    ['Registrations', document.createTextNode(String(d.registrations))],
    ['Last source address', text('span', d.lastSource || '—', 'mono')],
    ['Trigger', badge(d.trigger)],
  ];
  $('detail-facts').replaceChildren(
    ...facts.map(([k, v]) => {
      const div = document.createElement('div');
      const dd = document.createElement('dd');
      dd.append(v);
      div.append(text('dt', k), dd);
      return div;
    }),
  );
  // Keep what the operator is typing when a live update re-renders the same device.
  const form = $<HTMLFormElement>('edit-form');
  if (form.dataset.id !== d.id || !form.contains(document.activeElement)) {
    $<HTMLInputElement>('edit-ip').value = d.ip;
    $<HTMLInputElement>('edit-name').value = d.name;
    $<HTMLTextAreaElement>('edit-userdata').value = d.userdata;
    $<HTMLInputElement>('pin-name').checked = d.pinned.name;
    $<HTMLInputElement>('pin-userdata').checked = d.pinned.userdata;
    form.dataset.id = d.id;
  }
  // What the device itself last sent, beside a field an operator pinned.
  for (const field of ['name', 'userdata'] as const) {
    const p = $(`reported-${field}`);
    const reported = d.reported[field];
    p.hidden = !d.pinned[field] || reported === null;
    p.textContent = reported === null ? '' : `Device reported: ${reported || '(empty)'}`;
  }
  renderAliases(d);
  const retrigger = $<HTMLButtonElement>('retrigger');
  retrigger.disabled = !state.triggersEnabled;
  retrigger.title = state.triggersEnabled ? '' : 'No manager URL is configured on the server';

  const history = $('history').querySelector('tbody')!;
  history.replaceChildren(
    ...(d.history.length === 0
      ? [emptyRow(3, 'No registrations recorded.')]
      : d.history.map((h) =>
          row(
            [timeEl(h.at), text('span', h.ip, 'mono'), text('span', h.source || '—', 'mono')],
            ['Time', 'IP', 'Source address'],
          ),
        )),
  );
  const tbody = $('triggers').querySelector('tbody')!;
  tbody.replaceChildren(
    ...(triggers.length === 0
      ? [emptyRow(6, 'No triggers.')]
      : triggers.map((t) =>
          row(
            [
              document.createTextNode(String(t.id)),
              badge(t),
              document.createTextNode(String(t.attempts)),
              timeEl(t.createdAt),
              timeEl(t.deliveredAt),
              document.createTextNode(t.lastError ?? '—'),
            ],
            ['#', 'State', 'Attempts', 'Queued', 'Delivered', 'Last error'],
          ),
        )),
  );
}

function renderAliases(d: DeviceDetailView): void {
  const list = $('aliases');
  if (d.aliases.length === 0) {
    list.replaceChildren(text('li', 'No aliases.', 'empty'));
    return;
  }
  list.replaceChildren(
    ...d.aliases.map((a) => {
      const li = document.createElement('li');
      const remove = text('button', 'Remove', 'ghost');
      remove.setAttribute('type', 'button');
      remove.setAttribute('aria-label', `Remove ${a.type} alias ${a.value}`);
      remove.addEventListener('click', () => void removeAlias(a.type, a.value));
      li.append(
        text('span', a.type, 'alias-type'),
        ' ',
        text('span', a.value, 'mono'),
        ' ',
        remove,
      );
      return li;
    }),
  );
}

function setAliasError(message: string): void {
  const p = $('alias-error');
  p.textContent = message;
  p.hidden = message === '';
}

async function addAlias(e: SubmitEvent): Promise<void> {
  e.preventDefault();
  const d = state.detail;
  if (!d) return;
  setAliasError('');
  const input = $<HTMLInputElement>('alias-value');
  try {
    await api('POST', `/ztp/mng/${encodeURIComponent(d.id)}/aliases`, {
      type: $<HTMLSelectElement>('alias-type').value,
      value: input.value.trim(),
    });
    input.value = '';
    await loadDetail(d.id);
    setStatus('detail-status', 'Alias added.');
  } catch (err) {
    setAliasError(err instanceof Error ? err.message : String(err));
    input.focus();
  }
}

async function removeAlias(type: string, value: string): Promise<void> {
  const d = state.detail;
  if (!d) return;
  setAliasError('');
  try {
    await api(
      'DELETE',
      `/ztp/mng/${encodeURIComponent(d.id)}/aliases/${encodeURIComponent(type)}/${encodeURIComponent(value)}`,
    );
    await loadDetail(d.id);
    setStatus('detail-status', 'Alias removed.');
  } catch (err) {
    showError('detail-status')(err);
  }
}

/** The device's progress timeline, newest first. */
function renderReports(reports: ReportView[]): void {
  $('reports')
    .querySelector('tbody')!
    .replaceChildren(
      ...(reports.length === 0
        ? [emptyRow(3, 'No progress reports.')]
        : reports.map((r) =>
            row(
              [timeEl(r.at), reportBadge(r), document.createTextNode(r.message || '—')],
              ['Time', 'Progress', 'Message'],
            ),
          )),
    );
}

function row(cells: Node[], labels: string[]): HTMLTableRowElement {
  const tr = document.createElement('tr');
  cells.forEach((c, i) => {
    const td = document.createElement('td');
    td.dataset.label = labels[i] ?? '';
    td.append(c);
    tr.append(td);
  });
  return tr;
}

function emptyRow(span: number, message: string): HTMLTableRowElement {
  const tr = document.createElement('tr');
  const td = text('td', message, 'empty');
  td.colSpan = span;
  tr.append(td);
  return tr;
}

function closeDetail(): void {
  const dialog = $<HTMLDialogElement>('detail');
  if (dialog.open) dialog.close();
}

/** The edit form's input for each body member a problem document can name in `field`. */
const EDIT_INPUTS: Record<string, string> = {
  ip: 'edit-ip',
  name: 'edit-name',
  userdata: 'edit-userdata',
};

/** Shows `message` under the input (or clears it), tied to it for screen readers. */
function setFieldError(inputId: string, message: string): void {
  const input = $(inputId);
  const error = $(`${inputId}-error`);
  error.textContent = message;
  error.hidden = message === '';
  if (message) {
    input.setAttribute('aria-invalid', 'true');
    input.setAttribute('aria-describedby', error.id);
  } else {
    input.removeAttribute('aria-invalid');
    input.removeAttribute('aria-describedby');
  }
}

function clearFieldErrors(): void {
  for (const inputId of Object.values(EDIT_INPUTS)) setFieldError(inputId, '');
}

async function saveDetail(e: SubmitEvent): Promise<void> {
  e.preventDefault();
  const d = state.detail;
  if (!d) return;
  setStatus('detail-status', 'Saving…');
  clearFieldErrors();
  try {
    await api('PUT', `/ztp/mng/${encodeURIComponent(d.id)}`, {
      ip: $<HTMLInputElement>('edit-ip').value.trim(),
      name: $<HTMLInputElement>('edit-name').value,
      userdata: $<HTMLTextAreaElement>('edit-userdata').value,
      pinned: {
        name: $<HTMLInputElement>('pin-name').checked,
        userdata: $<HTMLInputElement>('pin-userdata').checked,
      },
    });
    $<HTMLButtonElement>('save').focus();
    await loadDetail(d.id);
    setStatus('detail-status', 'Saved.');
    scheduleRefresh();
  } catch (err) {
    const inputId = err instanceof ApiError && err.field ? EDIT_INPUTS[err.field] : undefined;
    if (err instanceof ApiError && inputId) {
      // A problem with one member is shown next to its input, which gets the focus.
      setStatus('detail-status', '');
      setFieldError(inputId, err.message);
      $(inputId).focus();
    } else {
      showError('detail-status')(err);
    }
  }
}

/**
 * Asks in the page (not window.confirm) whether to delete the device. Cancel has the focus, so
 * Enter alone does not delete; Escape or a click outside the box cancels.
 */
function confirmDelete(id: string): Promise<boolean> {
  const dialog = $<HTMLDialogElement>('confirm-delete');
  $('confirm-delete-id').textContent = id;
  dialog.returnValue = '';
  return new Promise<boolean>((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'delete'), {
      once: true,
    });
    dialog.showModal();
    $('confirm-delete-cancel').focus();
  });
}

async function deleteDetail(): Promise<void> {
  const d = state.detail;
  if (!d) return;
  if (!(await confirmDelete(d.id))) {
    $('delete').focus();
    return;
  }
  try {
    await api('DELETE', `/ztp/mng/${encodeURIComponent(d.id)}`);
    closeDetail();
    setStatus('status', `Deleted ${d.id}.`);
    scheduleRefresh();
  } catch (err) {
    showError('detail-status')(err);
  }
}

async function retrigger(): Promise<void> {
  const d = state.detail;
  if (!d) return;
  try {
    const t = await api<TriggerView>('POST', `/ztp/mng/${encodeURIComponent(d.id)}/trigger`);
    setStatus('detail-status', `Trigger #${t.id} queued.`);
    updateRowTrigger(t);
    await loadDetail(d.id);
  } catch (err) {
    showError('detail-status')(err);
  }
}

// ---- live events -----------------------------------------------------------------------------

function updateRowTrigger(t: TriggerEventData): void {
  const item = state.items.find((d) => d.id === t.deviceId);
  if (!item || (item.trigger && item.trigger.id > t.id)) return;
  item.trigger = t;
  const cell = document.querySelector(
    `#devices tr[data-id="${CSS.escape(t.deviceId)}"] td[data-label="Trigger"]`,
  );
  cell?.replaceChildren(badge(t));
}

function updateRowReport(r: ReportEventData): void {
  const item = state.items.find((d) => d.id === r.deviceId);
  if (!item || (item.report && item.report.seq > r.seq)) return;
  item.report = { seq: r.seq, at: r.at, type: r.type, message: r.message };
  const cell = document.querySelector(
    `#devices tr[data-id="${CSS.escape(r.deviceId)}"] td[data-label="Status"]`,
  );
  cell?.replaceChildren(reportBadge(item.report));
}

function setLive(s: 'live' | 'connecting' | 'offline', message: string): void {
  const el = $('live');
  el.dataset.state = s;
  el.textContent = message;
}

let lastEventId: string | undefined;
/** Aborts the open event stream (sign-out). */
let streamAbort: AbortController | undefined;

function onEvent(type: string, data: string): void {
  if (type === 'trigger') {
    const { trigger } = JSON.parse(data) as { trigger: TriggerEventData };
    // A forwarded report (--report-forward) is not the device's trigger: nothing shown changes.
    if (trigger.type === 'report') return;
    updateRowTrigger(trigger);
    if (state.detail?.id === trigger.deviceId)
      void loadDetail(trigger.deviceId).catch(() => undefined);
    scheduleRefresh();
    return;
  }
  if (type === 'report') {
    const { report } = JSON.parse(data) as { report: ReportEventData };
    updateRowReport(report);
    if (state.detail?.id === report.deviceId)
      void loadDetail(report.deviceId).catch(() => undefined);
    return;
  }
  if (type === 'registered' || type === 'edited' || type === 'deleted') {
    const { device } = JSON.parse(data) as { device: DeviceEventData };
    if (state.detail?.id === device.id) {
      if (type === 'deleted') {
        setStatus('detail-status', 'This device was deleted.', true);
      } else {
        void loadDetail(device.id).catch(() => undefined);
      }
    }
    scheduleRefresh();
    return;
  }
  if (type === 'resync') scheduleRefresh();
}

/** Reads the SSE stream with fetch (EventSource cannot send Authorization) and reconnects. */
async function streamEvents(): Promise<void> {
  for (let failures = 0; ;) {
    try {
      setLive('connecting', 'Connecting…');
      const sent = sessionStorage.getItem(TOKEN_KEY);
      const headers: Record<string, string> = { accept: 'text/event-stream', ...authHeaders() };
      if (lastEventId !== undefined) headers['last-event-id'] = lastEventId;
      streamAbort = new AbortController();
      const res = await fetch('/ztp/mng/events', {
        headers,
        cache: 'no-store',
        signal: streamAbort.signal,
      });
      const hadToken = sent !== null;
      if (res.status === 401 || (res.status === 403 && hadToken)) {
        await res.body?.cancel();
        if (sessionStorage.getItem(TOKEN_KEY) === sent) {
          sessionStorage.removeItem(TOKEN_KEY);
          await askToken(tokenHint(res.status, hadToken));
        }
        continue;
      }
      if (!res.ok || !res.body) throw new Error(`events: ${res.status}`);
      setLive('live', 'Live');
      failures = 0;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let type = 'message';
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue;
            const colon = line.indexOf(':');
            const field = colon < 0 ? line : line.slice(0, colon);
            const val = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
            if (field === 'id') lastEventId = val;
            else if (field === 'event') type = val;
            else if (field === 'data') data.push(val);
          }
          if (data.length > 0) onEvent(type, data.join('\n'));
        }
      }
    } catch {
      // Signed out: reconnect at once; the request waits for the next token.
      if (streamAbort?.signal.aborted) continue;
      failures++;
    }
    setLive('offline', 'Reconnecting…');
    // Something may have changed while we were away.
    scheduleRefresh();
    await new Promise((r) => setTimeout(r, Math.min(30_000, 1000 * 2 ** Math.min(failures, 5))));
  }
}

// ---- sign out --------------------------------------------------------------------------------

/** Forgets the token, clears what it showed, and asks for a token again. */
function signOut(): void {
  sessionStorage.removeItem(TOKEN_KEY);
  showSignOut();
  streamAbort?.abort();
  closeDetail();
  loadSeq++; // a page still on its way was asked for with the old token: drop it
  state.items = [];
  state.total = 0;
  $('devices').querySelector('tbody')!.replaceChildren();
  $('page-info').textContent = '';
  $<HTMLButtonElement>('prev').disabled = true;
  $<HTMLButtonElement>('next').disabled = true;
  for (const id of ['stat-devices', 'stat-recent', 'stat-pending', 'stat-failed', 'stat-dead'])
    $(id).textContent = '–';
  setStatus('status', '');
  void askToken(HINT_SIGNED_OUT)
    .then(() => Promise.all([loadStats(), loadDevices()]))
    .catch(showError('status'));
}

// ---- wiring ----------------------------------------------------------------------------------

function init(): void {
  let searchTimer: number | undefined;
  $<HTMLInputElement>('search').addEventListener('input', (e) => {
    window.clearTimeout(searchTimer);
    searchTimer = window.setTimeout(() => {
      state.search = (e.target as HTMLInputElement).value.trim();
      state.offset = 0;
      void loadDevices().catch(showError('status'));
    }, 200);
  });
  $<HTMLFormElement>('search-form').addEventListener('submit', (e) => e.preventDefault());
  $<HTMLSelectElement>('trigger-filter').addEventListener('change', (e) => {
    filterByTrigger((e.target as HTMLSelectElement).value as TriggerState | '');
  });
  for (const card of document.querySelectorAll<HTMLButtonElement>(
    '.summary button[data-trigger]',
  )) {
    // A second click on the active card shows all devices again.
    card.addEventListener('click', () => {
      const trigger = card.dataset.trigger as TriggerState;
      filterByTrigger(state.trigger === trigger ? '' : trigger);
    });
  }
  $<HTMLSelectElement>('page-size').addEventListener('change', (e) => {
    state.limit = Number((e.target as HTMLSelectElement).value);
    state.offset = 0;
    void loadDevices().catch(showError('status'));
  });
  for (const button of document.querySelectorAll<HTMLButtonElement>('#devices th button')) {
    button.addEventListener('click', () => {
      const key = button.dataset.sort!;
      if (state.sort === key) state.order = state.order === 'asc' ? 'desc' : 'asc';
      else {
        state.sort = key;
        state.order = key === 'lastSeen' || key === 'registrations' ? 'desc' : 'asc';
      }
      state.offset = 0;
      void loadDevices().catch(showError('status'));
    });
  }
  $('prev').addEventListener('click', () => {
    state.offset = Math.max(0, state.offset - state.limit);
    void loadDevices().catch(showError('status'));
  });
  $('next').addEventListener('click', () => {
    state.offset += state.limit;
    void loadDevices().catch(showError('status'));
  });

  const dialog = $<HTMLDialogElement>('detail');
  $('detail-close').addEventListener('click', closeDetail);
  dialog.addEventListener('close', () => {
    const id = state.detail?.id;
    state.detail = undefined;
    writeLocation();
    // The row may have been re-rendered by a live update meanwhile: find it again by id.
    if (returnFocus?.isConnected) returnFocus.focus();
    else if (id) {
      document
        .querySelector<HTMLElement>(`#devices tr[data-id="${CSS.escape(id)}"] button.link`)
        ?.focus();
    }
  });
  // A click on the backdrop (outside the dialog box) closes it.
  dialog.addEventListener('click', (e) => {
    if (e.target === dialog) closeDetail();
  });
  $<HTMLFormElement>('edit-form').addEventListener('submit', (e) => void saveDetail(e));
  $<HTMLFormElement>('alias-form').addEventListener('submit', (e) => void addAlias(e));
  $('delete').addEventListener('click', () => void deleteDetail());
  const confirm = $<HTMLDialogElement>('confirm-delete');
  $('confirm-delete-cancel').addEventListener('click', () => confirm.close('cancel'));
  $('confirm-delete-ok').addEventListener('click', () => confirm.close('delete'));
  confirm.addEventListener('click', (e) => {
    if (e.target === confirm) confirm.close('cancel');
  });
  for (const inputId of Object.values(EDIT_INPUTS)) {
    $(inputId).addEventListener('input', () => setFieldError(inputId, ''));
  }
  $('sign-out').addEventListener('click', signOut);
  showSignOut();
  $('view-devices').addEventListener('click', () => switchView('devices'));
  $('view-pending').addEventListener('click', () => switchView('pending'));
  $('pending-all').addEventListener('change', (e) => {
    const on = (e.target as HTMLInputElement).checked;
    for (const c of document.querySelectorAll<HTMLInputElement>('#pending tbody input'))
      c.checked = on;
    updateBulkButtons();
  });
  $('approve-selected').addEventListener('click', () => void decide(selectedPending(), 'approve'));
  $('reject-selected').addEventListener('click', () => void decide(selectedPending(), 'reject'));
  // Pending registrations publish no event: the count is polled.
  window.setInterval(() => void loadPending().catch(() => undefined), 15_000);
  $('retrigger').addEventListener('click', () => void retrigger());
  $('detail-title').tabIndex = -1;

  window.setInterval(refreshTimes, 15_000);
  const linkedDevice = readLocation();
  showControls();
  void (async () => {
    try {
      await Promise.all([loadStats(), loadDevices(), loadPending()]);
    } catch (err) {
      showError('status')(err);
    }
    if (linkedDevice !== undefined) {
      await openDetail(linkedDevice).catch((err: unknown) => {
        writeLocation(undefined);
        showError('status')(err);
      });
    }
    void streamEvents();
  })();
}

init();
