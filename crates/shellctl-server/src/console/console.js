/*
 * The shellctl web console: the live job list, a job's live output and
 * screen, typing into a job, starting, terminating and deleting jobs.
 *
 * Plain JavaScript, no framework and no build step: this file is served as
 * is (embedded in the binary), and a maintainer reads the code that runs.
 *
 * Streams are read with fetch() and a ReadableStream, and parsed by the
 * small Server-Sent Events parser below, NOT with EventSource: EventSource
 * cannot send an Authorization header, and the other ways to pass a token
 * (a query parameter, a cookie) would put it in URLs and logs, or make the
 * server honour ambient credentials that its cross-site gates exist to
 * avoid. The parser follows the HTML standard's event-stream rules (`id:`,
 * `event:`, multi-line `data:`, `retry:`, `:` comments, LF, CR or CRLF line
 * ends, all of them possibly split across network chunks), and a reconnect
 * sends the last id back as Last-Event-ID, as EventSource would.
 *
 * The token: requests go out without one; the first 401 shows a form (in
 * the page, never a prompt dialog), and the token entered is kept in this
 * tab's sessionStorage and sent as `Authorization: Bearer` on every
 * request. It is never put in a URL.
 */
'use strict';

// ----- settings --------------------------------------------------------------

const TOKEN_KEY = 'shellctl.token';
const VIEW_KEY = 'shellctl.view';
/** Rows asked for when the list is (re)loaded; events add newer jobs. */
const LIST_LIMIT = 200;
/** Lines of output kept in the page; older ones are dropped from the DOM. */
const MAX_LINES = 5000;
/**
 * A line longer than this without a newline (a progress bar, a binary
 * dump) is shown as finished, so the unfinished line that is re-rendered on
 * every batch stays small.
 */
const MAX_PARTIAL_LINE = 64 * 1024;
/** The screen is fetched at most this often while output flows. */
const SCREEN_INTERVAL_MS = 500;
/**
 * The server writes at least every 10 s (a keep-alive comment); a stream
 * silent for this long is taken as a dead connection and reopened.
 */
const STALL_MS = 35000;
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 10000;
/**
 * What `run`, `input` and `keys` wait for and return: as little as the
 * API allows, since the output arrives on the job's stream anyway.
 */
const NO_WINDOW = { timeout: 0.1, output_limit: 1, idle_flush_seconds: 0 };

/** Status order: a job only moves forward, so an older report never wins. */
const RANK = {
  created: 0, starting: 1, running: 2,
  exited: 3, terminated: 3, failed: 3, lost: 3,
  deleted: 4,
};

const $ = (id) => document.getElementById(id);

// ----- the token and requests --------------------------------------------------

let token = readToken();

function readToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || null;
  } catch {
    return null; // storage disabled: ask again after a reload
  }
}

function storeToken(value) {
  token = value || null;
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // Kept in memory only.
  }
}

/** A request that got an HTTP error, with the API's error code. */
class HttpError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function requestHeaders(extra) {
  const headers = Object.assign({}, extra);
  if (token) headers.Authorization = 'Bearer ' + token;
  return headers;
}

/** The error of a failed response, from the API's `{"error": {...}}`. */
async function errorOf(response) {
  let code = 'http_' + response.status;
  let message = 'HTTP ' + response.status;
  try {
    const body = await response.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
    }
  } catch {
    // Not JSON: keep the status line.
  }
  return new HttpError(response.status, code, message);
}

/** One JSON request; a 401 also brings up the token form. */
async function api(method, path, body) {
  const init = { method, cache: 'no-store', headers: requestHeaders({}) };
  if (body !== undefined) {
    // Every body is JSON, and says so: the server refuses anything else.
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (!response.ok) {
    const error = await errorOf(response);
    if (error.status === 401) auth.required();
    throw error;
  }
  return response.json();
}

function jobPath(id, rest) {
  return '/v1/jobs/' + encodeURIComponent(id) + (rest || '');
}

/** Waits `ms`, or less if `signal` aborts. */
function sleep(ms, signal) {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}

/**
 * Runs `fn` once before the next frame. A timer races the frame because
 * browsers stop animation frames in hidden tabs, and output that keeps
 * arriving there must still be folded into the page, not pile up.
 */
function beforeNextFrame(fn) {
  let done = false;
  const run = () => {
    if (!done) {
      done = true;
      fn();
    }
  };
  requestAnimationFrame(run);
  setTimeout(run, 200);
}

// ----- Server-Sent Events over fetch -------------------------------------------

/**
 * An event-stream parser. `feed` takes decoded text in any pieces; each
 * complete event goes to `onEvent` as `{type, data, lastEventId}`.
 * `cursor.lastEventId` follows every `id:` field, also of events without
 * data, exactly what a reconnect must send back.
 */
class SseParser {
  constructor(cursor, onEvent) {
    this.cursor = cursor;
    this.onEvent = onEvent;
    this.rest = ''; // the unfinished line
    this.skipLf = false; // the last chunk ended in CR: an LF next is its pair
    this.type = '';
    this.data = [];
  }

  feed(chunk) {
    let text = this.rest + chunk;
    let start = 0;
    if (this.skipLf && text.length > 0) {
      if (text.charCodeAt(0) === 10) start = 1;
      this.skipLf = false;
    }
    for (let i = start; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      this.line(text.slice(start, i));
      if (c === 13) {
        if (i + 1 === text.length) this.skipLf = true;
        else if (text.charCodeAt(i + 1) === 10) i++;
      }
      start = i + 1;
    }
    this.rest = text.slice(start);
  }

  line(line) {
    if (line === '') {
      this.dispatch();
      return;
    }
    if (line.charCodeAt(0) === 58) return; // ':' a comment (keep-alive)
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    switch (field) {
      case 'event': this.type = value; break;
      case 'data': this.data.push(value); break;
      case 'id': if (!value.includes('\0')) this.cursor.lastEventId = value; break;
      default: break; // `retry` and unknown fields: our own backoff applies
    }
  }

  dispatch() {
    const type = this.type || 'message';
    const data = this.data;
    this.type = '';
    this.data = [];
    if (data.length === 0) return;
    try {
      this.onEvent({ type, data: data.join('\n'), lastEventId: this.cursor.lastEventId });
    } catch (error) {
      // A bad event must not tear the stream down (it would be sent again
      // on reconnect, and fail again).
      console.error('console: event handler failed', error);
    }
  }
}

/**
 * Reads one event stream until the server closes it; throws HttpError for
 * an HTTP error, and the fetch error when the connection breaks or stalls.
 * Returns 'complete' for a 204 (nothing more will come).
 */
async function readEventStream(path, cursor, signal, onOpen, onEvent) {
  const inner = new AbortController();
  const abort = () => inner.abort();
  signal.addEventListener('abort', abort, { once: true });
  let stallTimer = 0;
  const arm = () => {
    clearTimeout(stallTimer);
    stallTimer = setTimeout(abort, STALL_MS);
  };
  try {
    arm();
    const headers = requestHeaders({ Accept: 'text/event-stream' });
    if (cursor.lastEventId) headers['Last-Event-ID'] = cursor.lastEventId;
    const response = await fetch(path, { headers, cache: 'no-store', signal: inner.signal });
    if (!response.ok) throw await errorOf(response);
    // 204: a resume of a job that has ended, past all its output.
    if (response.status === 204) return 'complete';
    arm();
    onOpen();
    const parser = new SseParser(cursor, onEvent);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      arm();
      parser.feed(value);
    }
  } finally {
    clearTimeout(stallTimer);
    signal.removeEventListener('abort', abort);
  }
}

/**
 * Keeps a stream open: reconnects with backoff (sending Last-Event-ID)
 * after a break or a server restart, until `finished()` says the stream
 * ended for good, a 4xx says it never will work, or the returned
 * controller is aborted.
 */
function keepStreaming(options) {
  const controller = new AbortController();
  const { signal } = controller;
  (async () => {
    let delay = RETRY_MIN_MS;
    while (!signal.aborted) {
      let failure = null;
      let outcome;
      try {
        outcome = await readEventStream(options.path, options.cursor, signal, () => {
          delay = RETRY_MIN_MS;
          options.onOpen();
        }, options.onEvent);
      } catch (error) {
        failure = error;
      }
      if (signal.aborted || options.finished()) return;
      if (outcome === 'complete') {
        if (options.onComplete) options.onComplete();
        return;
      }
      if (failure instanceof HttpError) {
        if (failure.status === 401) {
          auth.required();
          return;
        }
        if (failure.status < 500 && failure.status !== 408 && failure.status !== 429) {
          options.onFail(failure);
          return;
        }
      }
      options.onRetry(failure);
      await sleep(delay, signal);
      delay = Math.min(delay * 2, RETRY_MAX_MS);
    }
  })();
  return controller;
}

// ----- text --------------------------------------------------------------------

/** Escape sequences: CSI, OSC, DCS/SOS/PM/APC strings, and two-byte ones. */
const ESCAPES = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[PX^_][^\x1b]*\x1b\\|\x1b[ -/]*[0-~]/g;
/**
 * An escape sequence cut off at the end of the text received so far: ESC
 * and an unfinished CSI, OSC or string, or ESC with intermediates only.
 */
const UNFINISHED_ESCAPE = /\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*\x1b?|[PX^_][^\x1b]*\x1b?|[ -/]*)$/;
/** Control characters other than tab (newlines never reach here). */
const CONTROLS = /[\x00-\x08\x0a-\x1f\x7f]/g;

/**
 * One line of terminal output as plain text. Colours and cursor moves are
 * dropped (the Screen view shows the terminal as drawn); a carriage return
 * starts the line over, so a progress bar shows its last state. The last
 * line may be unfinished: an escape sequence cut in half there is hidden
 * until its rest arrives.
 */
function plainLine(raw, unfinished) {
  let line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
  const cr = line.lastIndexOf('\r');
  if (cr >= 0) line = line.slice(cr + 1);
  if (unfinished) line = line.replace(UNFINISHED_ESCAPE, '');
  return line.replace(ESCAPES, '').replace(CONTROLS, '');
}

function formatTime(stamp) {
  const date = new Date(stamp);
  if (!stamp || Number.isNaN(date.getTime())) return stamp || '';
  const today = new Date().toDateString() === date.toDateString();
  return today ? date.toLocaleTimeString() : date.toLocaleString();
}

function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

// ----- the connection line -----------------------------------------------------

function setConnection(state, text) {
  const element = $('connection');
  element.dataset.state = state;
  setText(element, text);
}

// ----- the job list --------------------------------------------------------------

const jobs = {
  /** job_id -> {job_id, status, label, exit_code, created_at} */
  rows: new Map(),
  /** Deleted ids: a list fetched before a delete must not bring one back. */
  deleted: new Set(),
  trs: new Map(),
  cursor: { lastEventId: '' },
  stream: null,
  loads: 0,
  renderQueued: false,
  /**
   * Ids whose label and exit code are still to be fetched: v1's list has
   * neither (its answer is frozen), events carry both, so only jobs known
   * from the list alone are looked up, a few at a time.
   */
  undescribed: new Set(),
  describing: 0,

  start() {
    this.stop();
    setConnection('connecting', 'Connecting…');
    // No `since` on the first open: the list fetched right after the
    // stream is open is the state, and the stream carries what follows.
    // A reconnect sends Last-Event-ID (the missed events), and loads the
    // list again in case the server no longer kept them all.
    this.stream = keepStreaming({
      path: '/v1/events',
      cursor: this.cursor,
      onOpen: () => {
        setConnection('live', 'Live');
        this.load();
      },
      onEvent: (event) => this.onEvent(event),
      finished: () => false,
      onRetry: () => setConnection('retrying', 'Connection lost; reconnecting…'),
      onFail: (error) => {
        // No live updates (a server without the stream?): the list as it
        // is now is still worth showing.
        setConnection('failed', 'Live updates failed: ' + error.message);
        this.load();
      },
    });
  },

  stop() {
    if (this.stream) this.stream.abort();
    this.stream = null;
    this.undescribed.clear();
  },

  async load() {
    const load = ++this.loads;
    try {
      const body = await api('GET', '/v1/jobs?limit=' + LIST_LIMIT);
      if (load !== this.loads) return;
      for (const job of body.jobs || []) this.merge(job, false);
      this.render();
      this.describeNext();
    } catch (error) {
      if (error.status !== 401) setConnection('failed', 'Could not load the jobs: ' + error.message);
    }
  },

  onEvent(event) {
    if (event.type !== 'job') return;
    const change = JSON.parse(event.data);
    if (change.status === 'deleted') {
      this.deleted.add(change.job_id);
      this.rows.delete(change.job_id);
      jobView.deleted(change.job_id);
    } else {
      this.merge({
        job_id: change.job_id,
        status: change.status,
        exit_code: change.exit_code,
        label: change.label,
        created_at: change.status === 'created' ? change.at : undefined,
      }, true);
    }
    this.render();
  },

  /**
   * Folds one report about a job in. Events and list rows can arrive in
   * either order around the list fetch, so a status is taken only if it is
   * further along than the one shown (an event's equal rank wins: it is
   * the newer report). Fields a report lacks are kept.
   */
  merge(report, fromEvent) {
    if (this.deleted.has(report.job_id) || !(report.status in RANK)) return;
    let row = this.rows.get(report.job_id);
    if (!row) {
      row = {
        job_id: report.job_id, status: report.status, label: null, exit_code: null, created_at: null,
        described: false,
      };
      this.rows.set(report.job_id, row);
    }
    if (fromEvent && 'label' in report) row.described = true;
    else if (!fromEvent && !row.described) this.undescribed.add(row.job_id);
    const rank = RANK[report.status];
    const current = RANK[row.status];
    if (rank > current || (fromEvent && rank === current)) {
      row.status = report.status;
      if (report.exit_code !== undefined) row.exit_code = report.exit_code;
    }
    if (row.exit_code == null && report.exit_code != null) row.exit_code = report.exit_code;
    if (row.label == null && report.label != null) row.label = report.label;
    if (row.created_at == null && report.created_at) row.created_at = report.created_at;
  },

  /** Fetches the detail of up to three undescribed jobs at once. */
  describeNext() {
    while (this.describing < 3 && this.undescribed.size > 0 && !auth.asking) {
      const id = this.undescribed.values().next().value;
      this.undescribed.delete(id);
      const row = this.rows.get(id);
      if (!row || row.described) continue;
      this.describing++;
      api('GET', jobPath(id, '/detail'))
        .then((detail) => {
          const current = this.rows.get(id);
          if (!current) return;
          current.described = true;
          this.merge({ job_id: id, status: detail.status, exit_code: detail.exit_code, label: detail.label }, false);
          this.render();
        })
        .catch(() => {
          // Deleted meanwhile, or the server is away: the row stays as is.
        })
        .finally(() => {
          this.describing--;
          this.describeNext();
        });
    }
  },

  render() {
    if (this.renderQueued) return;
    this.renderQueued = true;
    beforeNextFrame(() => {
      this.renderQueued = false;
      this.renderNow();
    });
  },

  /** Updates rows in place, so focus and selection survive live updates. */
  renderNow() {
    const body = $('jobs-body');
    for (const [id, tr] of this.trs) {
      if (!this.rows.has(id)) {
        tr.remove();
        this.trs.delete(id);
      }
    }
    const ordered = [...this.rows.values()].sort(newestFirst);
    let previous = null;
    for (const row of ordered) {
      let tr = this.trs.get(row.job_id);
      if (!tr) {
        tr = makeRow(row.job_id);
        this.trs.set(row.job_id, tr);
      }
      fillRow(tr, row, row.job_id === jobView.id);
      const expected = previous ? previous.nextSibling : body.firstChild;
      if (expected !== tr) body.insertBefore(tr, expected);
      previous = tr;
    }
    $('jobs-empty').hidden = ordered.length > 0;
    jobView.showLabel(this.rows.get(jobView.id));
  },
};

/** Newest first; a job whose creation time is not known yet is new. */
function newestFirst(a, b) {
  const at = a.created_at || '\uffff';
  const bt = b.created_at || '\uffff';
  if (at !== bt) return at < bt ? 1 : -1;
  return a.job_id < b.job_id ? 1 : a.job_id > b.job_id ? -1 : 0;
}

function makeRow(id) {
  const tr = document.createElement('tr');
  tr.dataset.jobId = id;
  const link = document.createElement('a');
  link.href = '#/jobs/' + encodeURIComponent(id);
  const code = document.createElement('code');
  code.textContent = id;
  link.append(code);
  const cells = ['job', 'status', 'label', 'exit', 'created'].map((name) => {
    const td = document.createElement('td');
    td.className = 'col-' + name;
    tr.append(td);
    return td;
  });
  cells[0].append(link);
  const badge = document.createElement('span');
  badge.className = 'status';
  cells[1].append(badge);
  const time = document.createElement('time');
  cells[4].append(time);
  return tr;
}

function fillRow(tr, row, selected) {
  const link = tr.querySelector('a');
  if (selected) link.setAttribute('aria-current', 'page');
  else link.removeAttribute('aria-current');
  tr.classList.toggle('selected', selected);
  const badge = tr.querySelector('.status');
  badge.dataset.status = row.status;
  setText(badge, row.status);
  setText(tr.querySelector('.col-label'), row.label || '');
  setText(tr.querySelector('.col-exit'), row.exit_code == null ? '' : String(row.exit_code));
  const time = tr.querySelector('time');
  if (row.created_at && time.dateTime !== row.created_at) {
    time.dateTime = row.created_at;
    time.title = row.created_at;
    time.textContent = formatTime(row.created_at);
  }
}

// ----- one job -------------------------------------------------------------------

const jobView = {
  id: null,
  stream: null,
  cursor: { lastEventId: '' },
  /** The last JobStatusView from the job's stream. */
  status: null,
  /** The stream sent `end`: no reconnect. */
  finished: false,
  out: null,
  screen: null,

  open(id) {
    if (id === this.id) return;
    this.stop();
    this.id = id;
    this.cursor = { lastEventId: '' };
    this.status = null;
    this.finished = false;
    this.out = {
      pending: '',
      partialRaw: '',
      partialNode: document.createTextNode(''),
      chunks: [], // {node, lines}: committed text nodes, oldest first
      lines: 0,
      hidden: 0,
      queued: false,
    };
    this.screen = { timer: 0, inFlight: false, again: false, last: 0 };
    const output = $('output');
    output.textContent = '';
    output.append(this.out.partialNode);
    $('output-note').hidden = true;
    $('screen').textContent = '';
    setText($('screen-info'), '');
    setText($('job-id'), id);
    setText($('job-error'), '');
    this.showStatus(null);
    this.showLabel(jobs.rows.get(id));
    this.hideDeleteConfirm();
    $('job-none').hidden = true;
    $('job-detail').hidden = false;
    jobs.render();
    // From offset 0: the whole log, of which the page keeps the end. A
    // reconnect resumes at the last id received (Last-Event-ID), so no
    // byte is shown twice or lost, across a server restart too.
    this.stream = keepStreaming({
      path: jobPath(id, '/events'),
      cursor: this.cursor,
      onOpen: () => setText($('job-error'), ''),
      onEvent: (event) => this.onEvent(id, event),
      finished: () => this.finished,
      // The job ended and everything was shown before the `end` event
      // got through: take the final status from the status route.
      onComplete: () => {
        this.finished = true;
        setText($('job-error'), '');
        api('GET', jobPath(id)).then((view) => {
          if (id === this.id) this.showStatus(view);
        }, (error) => setText($('job-error'), error.message));
      },
      onRetry: () => setText($('job-error'), 'Output stream interrupted; reconnecting…'),
      onFail: (error) => {
        const gone = error.status === 404;
        setText($('job-error'), gone ? 'No such job (it may have been deleted).' : error.message);
        if (gone) this.showStatus(null, 'not found');
      },
    });
  },

  close() {
    this.stop();
    $('job-detail').hidden = true;
    $('job-none').hidden = false;
    document.title = 'shellctl console';
    jobs.render();
  },

  /** Stops the stream and the screen refresh; forgets the job. */
  stop() {
    if (this.stream) this.stream.abort();
    this.stream = null;
    if (this.screen) clearTimeout(this.screen.timer);
    this.id = null;
  },

  onEvent(id, event) {
    if (id !== this.id) return;
    if (event.type === 'output') {
      const chunk = JSON.parse(event.data);
      this.append(chunk.text);
      this.refreshScreenSoon();
    } else if (event.type === 'status' || event.type === 'end') {
      if (event.type === 'end') this.finished = true;
      this.showStatus(JSON.parse(event.data));
    }
  },

  /** The output offset the page has shown up to: where input reads from. */
  offset() {
    const offset = Number(this.cursor.lastEventId);
    return Number.isSafeInteger(offset) && offset >= 0 ? offset : 0;
  },

  running() {
    return this.status !== null && !this.status.done && !this.finished;
  },

  showStatus(view, text) {
    this.status = view;
    const badge = $('job-status');
    const status = view ? view.status : (text || 'loading');
    badge.dataset.status = status;
    setText(badge, status);
    setText($('job-exit'), view && view.exit_code != null ? 'exit code ' + view.exit_code : '');
    const live = this.running();
    for (const control of document.querySelectorAll('#input-form input, #input-form button, .keys button')) {
      control.disabled = !live;
    }
    $('terminate').disabled = !live;
    $('delete').disabled = view === null;
    if (this.id) document.title = this.id + ' (' + status + ') – shellctl';
    if (view) {
      jobs.merge({ job_id: view.job_id, status: view.status, exit_code: view.exit_code }, true);
      jobs.render();
      if (live) this.refreshScreenSoon();
      else if (view.done) setText($('screen-info'), $('screen').textContent ? '(last screen; the job has ended)' : '');
    }
  },

  showLabel(row) {
    setText($('job-label'), row && row.label ? 'label: ' + row.label : '');
  },

  deleted(id) {
    if (id !== this.id) return;
    this.finished = true;
    if (this.stream) this.stream.abort();
    this.showStatus(null, 'deleted');
    setText($('job-error'), 'This job was deleted.');
  },

  // -- output: appended in batches, one text node per batch, capped --------

  append(text) {
    const out = this.out;
    out.pending += text;
    if (out.queued) return;
    out.queued = true;
    beforeNextFrame(() => {
      if (out !== this.out) return; // another job was opened meanwhile
      out.queued = false;
      this.flush();
    });
  },

  flush() {
    const out = this.out;
    const pre = $('output');
    const follow = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 24;
    const text = out.partialRaw + out.pending;
    out.pending = '';
    const cut = text.lastIndexOf('\n');
    let complete = cut >= 0 ? text.slice(0, cut) : null;
    let partial = text.slice(cut + 1);
    if (partial.length > MAX_PARTIAL_LINE) {
      complete = complete === null ? partial : complete + '\n' + partial;
      partial = '';
    }
    out.partialRaw = partial;
    if (complete !== null) {
      const lines = complete.split('\n');
      const node = document.createTextNode(lines.map((line) => plainLine(line, false)).join('\n') + '\n');
      pre.insertBefore(node, out.partialNode);
      out.chunks.push({ node, lines: lines.length });
      out.lines += lines.length;
      this.trim();
    }
    out.partialNode.data = plainLine(partial, true);
    if (follow) pre.scrollTop = pre.scrollHeight;
  },

  /** Drops the oldest lines past MAX_LINES, whole text nodes where it can. */
  trim() {
    const out = this.out;
    let excess = out.lines - MAX_LINES;
    if (excess <= 0) return;
    out.hidden += excess;
    out.lines -= excess;
    while (excess > 0) {
      const first = out.chunks[0];
      if (first.lines <= excess) {
        first.node.remove();
        out.chunks.shift();
        excess -= first.lines;
      } else {
        let at = 0;
        for (let i = 0; i < excess; i++) at = first.node.data.indexOf('\n', at) + 1;
        first.node.data = first.node.data.slice(at);
        first.lines -= excess;
        excess = 0;
      }
    }
    const note = $('output-note');
    note.hidden = false;
    setText(note, out.hidden.toLocaleString() + ' earlier lines not shown (the page keeps the last '
      + MAX_LINES.toLocaleString() + ').');
  },

  // -- the screen: fetched while the job runs and the view is shown --------

  screenShown() {
    return $('views').dataset.view !== 'output';
  },

  /** Fetches the screen at most every SCREEN_INTERVAL_MS, one at a time. */
  refreshScreenSoon() {
    const screen = this.screen;
    if (!screen || !this.screenShown() || !this.running()) return;
    if (screen.inFlight) {
      screen.again = true;
      return;
    }
    if (screen.timer) return;
    const wait = Math.max(0, screen.last + SCREEN_INTERVAL_MS - Date.now());
    screen.timer = setTimeout(() => {
      screen.timer = 0;
      this.fetchScreen(screen);
    }, wait);
  },

  async fetchScreen(screen) {
    const id = this.id;
    screen.inFlight = true;
    screen.last = Date.now();
    try {
      const view = await api('GET', jobPath(id, '/screen'));
      if (screen === this.screen) this.drawScreen(view);
    } catch (error) {
      if (screen === this.screen && error.status !== 401) {
        setText($('screen-info'), error.status === 409
          ? ($('screen').textContent ? '(last screen; the job has ended)' : '')
          : '(unavailable: ' + error.message + ')');
      }
    } finally {
      screen.inFlight = false;
      if (screen.again && screen === this.screen) {
        screen.again = false;
        this.refreshScreenSoon();
      }
    }
  },

  drawScreen(view) {
    const pre = $('screen');
    const lines = view.lines || [];
    const row = view.cursor ? view.cursor.row : -1;
    const nodes = [];
    const before = lines.slice(0, Math.max(0, row)).join('\n');
    if (row >= 0 && row < lines.length) {
      // The cursor as a block over its cell (columns counted in code
      // points; a wide character before it shifts it, a rare miss).
      const cells = Array.from(lines[row]);
      const col = view.cursor.col;
      while (cells.length <= col) cells.push(' ');
      if (before || row > 0) nodes.push(before + '\n');
      nodes.push(cells.slice(0, col).join(''));
      const cursor = document.createElement('span');
      cursor.className = 'cursor';
      cursor.textContent = cells[col];
      nodes.push(cursor);
      nodes.push(cells.slice(col + 1).join('') + (row + 1 < lines.length ? '\n' : ''));
      nodes.push(lines.slice(row + 1).join('\n'));
    } else {
      nodes.push(lines.join('\n'));
    }
    pre.replaceChildren(...nodes);
    const input = view.input || {};
    const parts = [view.cols + '×' + view.rows];
    if (view.alternate_screen) parts.push('full screen');
    if (input.waiting) parts.push('waiting for ' + (input.kind === 'line' ? 'a line' : input.kind));
    setText($('screen-info'), '(' + parts.join(', ') + ')');
    // A password prompt: do not echo what is typed into the input line.
    $('input-text').type = input.waiting && input.kind === 'password' ? 'password' : 'text';
  },

  // -- typing and actions ------------------------------------------------------

  /** POSTs to one of the job's routes; reports a failure on the page. */
  async post(route, body) {
    const id = this.id;
    setText($('job-error'), '');
    try {
      await api('POST', jobPath(id, route), body);
      return true;
    } catch (error) {
      if (id === this.id && error.status !== 401) setText($('job-error'), error.message);
      return false;
    }
  },

  async sendLine() {
    const field = $('input-text');
    const body = Object.assign({ text: field.value + '\n', offset: this.offset() }, NO_WINDOW);
    if (await this.post('/input', body)) field.value = '';
    this.refreshScreenSoon();
  },

  async sendKey(key) {
    await this.post('/keys', Object.assign({ keys: [key], offset: this.offset() }, NO_WINDOW));
    this.refreshScreenSoon();
  },

  async terminate() {
    const button = $('terminate');
    button.disabled = true;
    // The answer can take the grace period (5 s); the status arrives on
    // the stream as soon as the job ends.
    if (!(await this.post('/terminate', {}))) button.disabled = !this.running();
  },

  showDeleteConfirm() {
    $('delete').hidden = true;
    $('delete-confirm').hidden = false;
    $('delete-no').focus();
  },

  hideDeleteConfirm() {
    $('delete').hidden = false;
    $('delete-confirm').hidden = true;
  },

  async remove() {
    const id = this.id;
    this.hideDeleteConfirm();
    try {
      // force: a running job is terminated first, which the question said.
      await api('DELETE', jobPath(id, '?force=true'));
      if (id === this.id) location.hash = '#/';
    } catch (error) {
      if (id === this.id && error.status !== 401) setText($('job-error'), error.message);
    }
  },
};

// ----- starting a job ------------------------------------------------------------

async function startJob() {
  const script = $('run-script').value;
  const label = $('run-label').value.trim();
  const button = $('run-submit');
  setText($('run-error'), '');
  if (!script.trim()) {
    setText($('run-error'), 'Enter a script to run.');
    $('run-script').focus();
    return;
  }
  const body = Object.assign({ script }, NO_WINDOW);
  if (label) body.label = label;
  button.disabled = true;
  try {
    const result = await api('POST', '/v1/jobs/run', body);
    jobs.merge({ job_id: result.job_id, status: result.status, exit_code: result.exit_code, label: label || null }, false);
    jobs.render();
    $('run-script').value = '';
    $('run-label').value = '';
    location.hash = '#/jobs/' + encodeURIComponent(result.job_id);
    $('input-text').focus();
  } catch (error) {
    if (error.status !== 401) setText($('run-error'), error.message);
  } finally {
    button.disabled = false;
  }
}

// ----- the token form --------------------------------------------------------------

const auth = {
  asking: false,

  /** A 401: drop the token the server refused, stop, ask (once). */
  required() {
    if (this.asking) return;
    this.asking = true;
    const refused = token !== null;
    storeToken(null);
    jobs.stop();
    jobView.stop();
    setConnection('auth', 'Token required');
    setText($('auth-error'), refused ? 'The server refused that token; enter the right one.' : '');
    $('app').hidden = true;
    $('forget-token').hidden = true;
    $('auth').hidden = false;
    $('auth-token').focus();
  },

  submit() {
    const value = $('auth-token').value.trim();
    if (!value) return;
    $('auth-token').value = '';
    storeToken(value);
    this.asking = false;
    start();
  },
};

// ----- routing and start -----------------------------------------------------------

function route() {
  const match = /^#\/jobs\/([A-Za-z0-9_-]+)$/.exec(location.hash);
  if (match) jobView.open(match[1]);
  else jobView.close();
}

function setView(view) {
  $('views').dataset.view = view;
  const radio = $('view-' + view);
  if (radio) radio.checked = true;
  try {
    sessionStorage.setItem(VIEW_KEY, view);
  } catch {
    // Not remembered.
  }
  jobView.refreshScreenSoon();
}

function start() {
  $('auth').hidden = true;
  $('app').hidden = false;
  $('forget-token').hidden = token === null;
  jobs.start();
  jobView.stop(); // reopened by route(), with the token now in use
  route();
}

function wire() {
  $('auth-form').addEventListener('submit', (event) => {
    event.preventDefault();
    auth.submit();
  });
  $('forget-token').addEventListener('click', () => {
    storeToken(null);
    start();
  });
  $('run-form').addEventListener('submit', (event) => {
    event.preventDefault();
    startJob();
  });
  $('run-script').addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      $('run-form').requestSubmit();
    }
  });
  $('input-form').addEventListener('submit', (event) => {
    event.preventDefault();
    jobView.sendLine();
  });
  for (const button of document.querySelectorAll('.keys button')) {
    button.addEventListener('click', () => jobView.sendKey(button.dataset.key));
  }
  $('terminate').addEventListener('click', () => jobView.terminate());
  $('delete').addEventListener('click', () => jobView.showDeleteConfirm());
  $('delete-no').addEventListener('click', () => {
    jobView.hideDeleteConfirm();
    $('delete').focus();
  });
  $('delete-yes').addEventListener('click', () => jobView.remove());
  for (const radio of document.querySelectorAll('input[name="view"]')) {
    radio.addEventListener('change', () => setView(radio.value));
  }
  window.addEventListener('hashchange', route);
}

wire();
let savedView = null;
try {
  savedView = sessionStorage.getItem(VIEW_KEY);
} catch {
  // Default view.
}
setView(['output', 'screen', 'both'].includes(savedView) ? savedView : 'output');
start();
