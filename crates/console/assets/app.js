// The Kindling console: hash routes, one view per section, everything read from Kindling's own
// APIs (aws.js). No framework: views build DOM nodes with h().

import * as aws from './aws.js';
import { chart } from './charts.js';

const main = document.getElementById('main');
const statusBox = document.getElementById('status');
let current = { stop: () => {} }; // the view's cleanup (timers, live tail)

// ---- DOM helpers -----------------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c != null && c !== false) e.append(c instanceof Node ? c : String(c));
  return e;
}

const link = (href, text, attrs = {}) => h('a', { href, ...attrs }, text);
const enc = encodeURIComponent;
const ms = (v) => (v == null ? '—' : `${v < 10 ? v.toFixed(2) : v < 1000 ? v.toFixed(1) : v.toFixed(0)} ms`);
const when = (t) => (t ? new Date(t).toLocaleString() : '—');
const badge = (text, ok) => h('span', { class: `badge ${ok ? 'ok' : 'err'}` }, text);

function table(headers, rows, { label, empty = 'Nothing yet.' } = {}) {
  if (!rows.length) return h('p', { class: 'muted' }, empty);
  return h('table', { 'aria-label': label },
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col', class: x.endsWith('#') ? 'num' : null }, x.replace(/#$/, ''))))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c, i) => h('td', { class: headers[i].endsWith('#') ? 'num' : null }, c))))));
}

function props(obj) {
  return h('dl', { class: 'props' }, Object.entries(obj).flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v == null || v === '' ? '—' : v)]));
}

function say(text, isError) {
  statusBox.textContent = text;
  statusBox.className = `status${isError ? ' err' : ''}`;
  clearTimeout(say.t);
  say.t = setTimeout(() => { statusBox.textContent = ''; }, isError ? 10000 : 4000);
}

function render(title, ...children) {
  main.replaceChildren(h('h1', {}, title), ...children);
  document.title = `${title} · Kindling console`;
}

function failed(e) {
  return h('p', { class: 'error', role: 'alert' }, `${e.code ? e.code + ': ' : ''}${e.message}`);
}

// ---- sign-in (shared mode) -------------------------------------------------------------------

const dialog = document.getElementById('signin');
let pendingSignIn = null;

aws.onAuthNeeded((why) => {
  if (!pendingSignIn) {
    pendingSignIn = new Promise((resolve) => {
      document.getElementById('signin-error').textContent = why || '';
      dialog.addEventListener('close', function done() {
        dialog.removeEventListener('close', done);
        pendingSignIn = null;
        resolve();
      });
      dialog.showModal();
      document.getElementById('signin-key').focus();
    });
  }
  return pendingSignIn;
});

document.getElementById('signin-form').addEventListener('submit', () => {
  aws.setCredentials({
    accessKeyId: document.getElementById('signin-key').value.trim(),
    secretAccessKey: document.getElementById('signin-secret').value,
    sessionToken: document.getElementById('signin-token').value.trim() || undefined,
  });
  showWho();
});
dialog.addEventListener('cancel', (e) => e.preventDefault());

function showWho() {
  const who = document.getElementById('who');
  const info = aws.info();
  if (!info) return;
  const keys = aws.credentials();
  who.replaceChildren(`${info.region} · ${info.accountId}`);
  if (info.signatureRequired) {
    who.append(' · ', keys ? `signed as ${keys.accessKeyId} ` : 'not signed in ');
    if (keys) who.append(h('button', { type: 'button', id: 'signout', onclick: () => { aws.clearCredentials(); showWho(); route(); } }, 'Sign out'));
  }
}

// ---- views -----------------------------------------------------------------------------------

async function listAll(path, key, marker = 'NextMarker') {
  const out = [];
  let next = '';
  for (let i = 0; i < 50; i++) {
    const { json } = await aws.lambda('GET', path + (next ? `${path.includes('?') ? '&' : '?'}Marker=${enc(next)}` : ''));
    out.push(...(json[key] || []));
    next = json[marker];
    if (!next) break;
  }
  return out;
}

async function functionsView() {
  render('Functions', h('p', { class: 'muted' }, 'Loading functions…'));
  const fns = await listAll('/2015-03-31/functions', 'Functions');
  fns.sort((a, b) => a.FunctionName.localeCompare(b.FunctionName));
  render('Functions', table(['Name', 'Runtime', 'Memory#', 'Timeout#', 'Last modified', 'State'], fns.map((f) => [
    link(`#/functions/${enc(f.FunctionName)}`, f.FunctionName, { 'data-function': f.FunctionName }),
    f.PackageType === 'Image' ? 'container image' : f.Runtime || '—',
    `${f.MemorySize} MB`, `${f.Timeout} s`, f.LastModified || '—', f.State || 'Active',
  ]), { label: 'Functions', empty: 'No functions yet. Create one with aws lambda create-function or kindling deploy.' }));
}

function weights(alias) {
  const extra = (alias.RoutingConfig && alias.RoutingConfig.AdditionalVersionWeights) || {};
  const rest = 1 - Object.values(extra).reduce((a, b) => a + b, 0);
  const parts = [[alias.FunctionVersion, rest], ...Object.entries(extra)];
  return h('span', { class: 'weights' }, parts.map(([v, w]) => {
    const bar = h('span', { class: 'weight' });
    bar.style.width = `${Math.max(2, w * 80)}px`;
    return h('span', { 'data-weight': `${v}=${w}` }, bar, `v${v} ${(w * 100).toFixed(w * 100 % 1 ? 1 : 0)}%  `);
  }));
}

async function functionView(name) {
  render(name, h('p', { class: 'muted' }, 'Loading…'));
  const base = `/2015-03-31/functions/${enc(name)}`;
  const [{ json: cfg }, versions, aliases, recent] = await Promise.all([
    aws.lambda('GET', `${base}/configuration`),
    listAll(`${base}/versions`, 'Versions'),
    listAll(`${base}/aliases`, 'Aliases'),
    aws.kindling('GET', '/_kindling/api/invocations', { query: { function: name, limit: 20 } }),
  ]);
  const env = (cfg.Environment && cfg.Environment.Variables) || {};
  const logging = cfg.LoggingConfig || {};
  const invokeBox = h('textarea', { id: 'invoke-payload', 'aria-label': 'Event (JSON)' }, '{}');
  const invokeOut = h('pre', { id: 'invoke-result', 'aria-live': 'polite' });
  const invoke = async () => {
    invokeOut.textContent = 'Invoking…';
    try {
      const r = await aws.lambda('POST', `${base}/invocations`, JSON.parse(invokeBox.value || '{}'));
      const err = r.headers.get('x-amz-function-error');
      invokeOut.textContent = `${err ? 'Function error (' + err + '): ' : ''}${r.text}`;
    } catch (e) {
      invokeOut.textContent = `${e.code || 'Error'}: ${e.message}`;
    }
  };
  render(name,
    h('div', { class: 'toolbar' },
      link(`#/logs/${enc(name)}`, 'Live logs', { id: 'open-logs' }),
      link(`#/charts/${enc(name)}`, 'Charts'),
      link(`#/invocations/${enc(name)}`, 'All recent invocations')),
    h('div', { class: 'grid2' },
      h('section', { class: 'card', 'aria-labelledby': 'cfg-h' }, h('h2', { id: 'cfg-h' }, 'Configuration'), props({
        ARN: cfg.FunctionArn, Runtime: cfg.Runtime || cfg.PackageType, Handler: cfg.Handler, 'Memory (MB)': cfg.MemorySize,
        'Timeout (s)': cfg.Timeout, Architectures: (cfg.Architectures || []).join(', '), Role: cfg.Role,
        'Code size': cfg.CodeSize, 'Code SHA-256': cfg.CodeSha256, Layers: (cfg.Layers || []).map((l) => l.Arn).join(', '),
        'Log group': logging.LogGroup || `/aws/lambda/${name}`, 'Log format': logging.LogFormat,
        'Ephemeral storage (MB)': cfg.EphemeralStorage && cfg.EphemeralStorage.Size, State: cfg.State,
        Environment: Object.keys(env).length ? Object.entries(env).map(([k, v]) => `${k}=${v}`).join('\n') : null,
      })),
      h('section', { class: 'card', 'aria-labelledby': 'inv-h' }, h('h2', { id: 'inv-h' }, 'Test invoke'),
        invokeBox, h('div', { class: 'actions' }, h('button', { type: 'button', class: 'primary', id: 'invoke', onclick: invoke }, 'Invoke')), invokeOut)),
    h('h2', {}, 'Versions'),
    table(['Version', 'Description', 'Last modified', 'Code SHA-256'], versions.map((v) => [v.Version, v.Description || '', v.LastModified, h('code', {}, (v.CodeSha256 || '').slice(0, 16))]), { label: 'Versions' }),
    h('h2', {}, 'Aliases'),
    table(['Alias', 'Version', 'Routing (weights)', 'Description'], aliases.map((a) => [a.Name, a.FunctionVersion, weights(a), a.Description || '']), { label: 'Aliases', empty: 'No aliases.' }),
    h('h2', {}, 'Recent invocations'),
    invocationsTable(recent.invocations, false));
}

function invocationsTable(rows, withFunction = true) {
  return table([...(withFunction ? ['Function'] : []), 'Ended', 'Request ID', 'Version', 'Status', 'Duration#', 'Init duration#'], rows.map((r) => [
    ...(withFunction ? [link(`#/functions/${enc(r.function)}`, r.resource)] : []),
    new Date(r.timestamp).toLocaleTimeString(), h('code', {}, r.requestId), r.version,
    badge(r.status, r.status === 'Success'), ms(r.durationMs), r.initDurationMs == null ? '—' : ms(r.initDurationMs),
  ]), { label: 'Recent invocations', empty: 'No invocations since Kindling started.' });
}

async function invocationsView(fn) {
  const load = async () => {
    const r = await aws.kindling('GET', '/_kindling/api/invocations', { query: fn ? { function: fn, limit: 200 } : { limit: 200 } });
    const holder = document.getElementById('inv-table');
    if (holder) holder.replaceChildren(invocationsTable(r.invocations));
  };
  render(fn ? `Invocations of ${fn}` : 'Recent invocations',
    h('p', { class: 'muted' }, 'The last 500 invocations Kindling ran (kept in memory), newest first; refreshed every 2 s.'),
    h('div', { id: 'inv-table' }));
  await load();
  const t = setInterval(() => load().catch(() => {}), 2000);
  current.stop = () => clearInterval(t);
}

async function functionPicker(selected, hrefOf) {
  const fns = await listAll('/2015-03-31/functions', 'Functions');
  const select = h('select', { id: 'function-picker', 'aria-label': 'Function' },
    h('option', { value: '' }, '— choose a function —'),
    fns.map((f) => h('option', { value: f.FunctionName, selected: f.FunctionName === selected }, f.FunctionName)));
  select.addEventListener('change', () => { location.hash = hrefOf(select.value); });
  return { select, fns };
}

async function logsView(fn) {
  const { select, fns } = await functionPicker(fn, (v) => `#/logs/${enc(v)}`);
  const out = h('div', { class: 'logs', id: 'log-lines', role: 'log', 'aria-live': 'polite', tabindex: '0', 'aria-label': 'Log events' });
  const state = h('span', { id: 'tail-state', class: 'muted' }, fn ? 'Connecting…' : '');
  const follow = h('input', { type: 'checkbox', id: 'follow', checked: true });
  const clear = h('button', { type: 'button', id: 'clear-logs', onclick: () => out.replaceChildren() }, 'Clear');
  render(fn ? `Logs of ${fn}` : 'Logs',
    h('div', { class: 'toolbar' }, select, h('label', {}, follow, 'Follow'), clear, state),
    fn ? out : h('p', { class: 'muted' }, 'Choose a function to follow its log group live (CloudWatch Logs StartLiveTail).'));
  if (!fn) return;
  const cfg = fns.find((f) => f.FunctionName === fn) || {};
  const group = (cfg.LoggingConfig && cfg.LoggingConfig.LogGroup) || `/aws/lambda/${fn}`;
  const { region, accountId } = aws.info();
  const arn = `arn:aws:logs:${region}:${accountId}:log-group:${group}`;
  const add = (e) => {
    const line = h('div', { class: `line${/^(REPORT|START|END|INIT_)/.test(e.message) ? ' report' : ''}` },
      h('span', { class: 'ts' }, new Date(e.timestamp).toLocaleTimeString()), e.message.replace(/\n$/, ''));
    out.append(line);
    while (out.childElementCount > 2000) out.firstElementChild.remove();
    if (follow.checked) out.scrollTop = out.scrollHeight;
  };
  // The last 15 minutes first, then the live session.
  try {
    const past = await aws.logs('FilterLogEvents', { logGroupName: group, startTime: Date.now() - 15 * 60000, limit: 200 });
    (past.events || []).forEach(add);
  } catch (e) {
    if (e.code !== 'ResourceNotFoundException') throw e;
  }
  const abort = new AbortController();
  current.stop = () => abort.abort();
  const run = async () => {
    try {
      await aws.liveTail({ logGroupIdentifiers: [arn] }, (type, body) => {
        if (type === 'sessionStart') { state.textContent = 'Live'; state.dataset.live = 'true'; }
        else if (type === 'sessionUpdate') (body.sessionResults || []).forEach(add);
        else state.textContent = `${type}: ${body.message || ''}`;
      }, abort.signal);
      if (!abort.signal.aborted) { state.textContent = 'Session ended; reconnecting…'; setTimeout(run, 1000); }
    } catch (e) {
      if (abort.signal.aborted) return;
      state.textContent = e.code === 'ResourceNotFoundException'
        ? 'No log group yet: waiting for the first invocation…'
        : `Live tail failed (${e.code || e.message}); retrying…`;
      setTimeout(run, 2000);
    }
  };
  run();
}

async function chartsView(fn) {
  const { select } = await functionPicker(fn, (v) => (v ? `#/charts/${enc(v)}` : '#/charts'));
  select.options[0].textContent = 'All functions';
  const minutes = h('select', { id: 'chart-minutes', 'aria-label': 'Time range' },
    [15, 60].map((m) => h('option', { value: m }, `last ${m} minutes`)));
  const holder = h('div', { class: 'charts', id: 'charts' });
  render(fn ? `Charts of ${fn}` : 'Charts (all functions)', h('div', { class: 'toolbar' }, select, minutes), holder,
    h('p', { class: 'muted' }, '10-second intervals, from the invocations Kindling ran since it started. Percentiles are estimated from a log-scale histogram (within 12 %). Prometheus series: /metrics.'));
  const load = async () => {
    const m = Number(minutes.value);
    const r = await aws.kindling('GET', '/_kindling/api/charts', { query: fn ? { function: fn, minutes: m } : { minutes: m } });
    const step = r.bucketSeconds * 1000;
    const slots = [];
    for (let t = r.since; t <= r.now; t += step) slots.push(t);
    const at = new Map(r.buckets.map((b) => [b.start, b]));
    const pick = (k) => slots.map((t) => (at.has(t) ? at.get(t)[k] : (k.endsWith('Ms') ? null : 0)));
    holder.replaceChildren(
      chart({ title: 'Invocations', slots, series: [{ name: 'invocations', color: '#1c7ed6', kind: 'bar', values: pick('invocations') }] }),
      chart({ title: 'Errors', slots, series: [{ name: 'errors', color: '#e03131', kind: 'bar', values: pick('errors') }] }),
      chart({ title: 'Duration', unit: 'ms', slots, series: [
        { name: 'p50', color: '#2f9e44', kind: 'line', values: pick('p50Ms') },
        { name: 'p99', color: '#f08c00', kind: 'line', values: pick('p99Ms') }] }),
      chart({ title: 'Cold starts', slots, series: [{ name: 'cold starts', color: '#7048e8', kind: 'bar', values: pick('coldStarts') }] }));
  };
  minutes.addEventListener('change', () => load().catch((e) => say(e.message, true)));
  await load();
  const t = setInterval(() => load().catch(() => {}), 5000);
  current.stop = () => clearInterval(t);
}

const queueName = (url) => decodeURIComponent(url.split('/').pop());

async function queuesView() {
  render('Queues', h('p', { class: 'muted' }, 'Loading queues…'));
  const { QueueUrls = [] } = await aws.sqs('ListQueues', { MaxResults: 1000 });
  const rows = await Promise.all(QueueUrls.map(async (url) => {
    const { Attributes: a = {} } = await aws.sqs('GetQueueAttributes', { QueueUrl: url, AttributeNames: ['All'] });
    let dlq = '';
    if (a.RedrivePolicy) {
      try { dlq = JSON.parse(a.RedrivePolicy).deadLetterTargetArn.split(':').pop(); } catch (_) { /* ignore */ }
    }
    const name = queueName(url);
    return [link(`#/queues/${enc(name)}`, name, { 'data-queue': name }), a.ApproximateNumberOfMessages, a.ApproximateNumberOfMessagesNotVisible,
      a.ApproximateNumberOfMessagesDelayed, dlq ? link(`#/queues/${enc(dlq)}`, dlq) : '—', when(Number(a.CreatedTimestamp) * 1000)];
  }));
  render('Queues', table(['Queue', 'Visible#', 'In flight#', 'Delayed#', 'Dead-letter queue', 'Created'], rows,
    { label: 'Queues', empty: 'No SQS queues.' }));
}

async function queueView(name) {
  render(`Queue ${name}`, h('p', { class: 'muted' }, 'Loading…'));
  const { QueueUrl } = await aws.sqs('GetQueueUrl', { QueueName: name });
  const [{ Attributes: a = {} }, peek, sources] = await Promise.all([
    aws.sqs('GetQueueAttributes', { QueueUrl, AttributeNames: ['All'] }),
    aws.kindling('GET', `/_kindling/api/queues/${enc(name)}/messages`, { query: { limit: 100 } }),
    aws.sqs('ListDeadLetterSourceQueues', { QueueUrl }).catch(() => ({ queueUrls: [] })),
  ]);
  const sourceUrls = sources.queueUrls || [];
  const result = h('p', { id: 'redrive-result', role: 'status' });
  const fnInput = h('input', { id: 'redrive-function', placeholder: 'function (for dead letters of async invokes)', 'aria-label': 'Function to redrive to', spellcheck: 'false' });
  const redrive = async () => {
    result.textContent = 'Redriving…';
    try {
      const r = await aws.kindling('POST', `/_kindling/api/queues/${enc(name)}/redrive`, { body: { function: fnInput.value.trim() || null } });
      result.textContent = `Redrove ${r.redriven} message(s) to their functions.`;
      say(result.textContent);
      setTimeout(() => route(), 600);
    } catch (e) {
      result.textContent = `${e.code}: ${e.message}`;
    }
  };
  const moveBack = async () => {
    result.textContent = 'Starting a message move task…';
    try {
      const r = await aws.sqs('StartMessageMoveTask', { SourceArn: a.QueueArn });
      result.textContent = `Moving messages back to ${sourceUrls.map(queueName).join(', ')} (task ${r.TaskHandle ? 'started' : 'queued'}).`;
      setTimeout(() => route(), 1000);
    } catch (e) {
      result.textContent = `${e.code}: ${e.message}`;
    }
  };
  render(`Queue ${name}`,
    h('div', { class: 'grid2' },
      h('section', { class: 'card' }, h('h2', {}, 'Attributes'), props({
        ARN: a.QueueArn, URL: QueueUrl, 'Visible messages': a.ApproximateNumberOfMessages,
        'In flight': a.ApproximateNumberOfMessagesNotVisible, Delayed: a.ApproximateNumberOfMessagesDelayed,
        'Visibility timeout (s)': a.VisibilityTimeout, 'Retention (s)': a.MessageRetentionPeriod,
        'Redrive policy': a.RedrivePolicy, FIFO: a.FifoQueue || 'false',
        'Dead-letter queue of': sourceUrls.map(queueName).join(', '),
      })),
      h('section', { class: 'card', 'aria-labelledby': 'redrive-h' }, h('h2', { id: 'redrive-h' }, 'Redrive'),
        h('p', { class: 'muted' }, 'Send this queue\'s messages back to their functions as asynchronous invocations (kindling dlq redrive): destination records name their function; dead letters of asynchronous invocations need one.'),
        fnInput,
        h('div', { class: 'actions' },
          sourceUrls.length ? h('button', { type: 'button', id: 'move-back', onclick: moveBack }, 'Move back to source queue') : null,
          h('button', { type: 'button', class: 'primary', id: 'redrive', onclick: redrive, disabled: peek.messages.length === 0 }, 'Redrive to functions')),
        result)),
    h('h2', {}, `Messages (${peek.messages.length}${peek.messages.length === 100 ? '+' : ''}, not received)`),
    table(['Message ID', 'Sent', 'Receives#', 'Function', 'Body'], peek.messages.map((m) => [
      h('code', {}, m.id), when(m.sent_ms), m.receiveCount, m.target ? m.target.function : '—',
      h('pre', {}, typeof m.body === 'string' ? m.body : JSON.stringify(m.body, null, 1).slice(0, 2000)),
    ]), { label: 'Messages', empty: 'The queue is empty.' }));
}

async function mappingsView() {
  render('Event source mappings', h('p', { class: 'muted' }, 'Loading…'));
  const maps = await listAll('/2015-03-31/event-source-mappings', 'EventSourceMappings');
  render('Event source mappings', table(['UUID', 'Source', 'Function', 'State', 'Batch size#', 'Last result', 'Modified'], maps.map((m) => [
    h('code', {}, m.UUID), m.EventSourceArn || (m.SelfManagedEventSource ? JSON.stringify(m.SelfManagedEventSource.Endpoints) : '—'),
    link(`#/functions/${enc(m.FunctionArn.split(':')[6])}`, m.FunctionArn.split(':').slice(6).join(':')),
    badge(m.State, m.State === 'Enabled'), m.BatchSize, m.LastProcessingResult || '—', when(m.LastModified * 1000),
  ]), { label: 'Event source mappings', empty: 'No event source mappings.' }));
}

const txt = (node, sel) => { const e = node.querySelector(sel); return e ? e.textContent : ''; };
const members = (doc, sel) => Array.from(doc.querySelectorAll(sel));

async function stacksView() {
  render('Stacks', h('p', { class: 'muted' }, 'Loading…'));
  const doc = await aws.cloudformation('DescribeStacks');
  const stacks = members(doc, 'Stacks > member');
  render('CloudFormation stacks', table(['Stack', 'Status', 'Created', 'Updated', 'Description'], stacks.map((s) => {
    const status = txt(s, 'StackStatus');
    return [link(`#/stacks/${enc(txt(s, 'StackName'))}`, txt(s, 'StackName')), badge(status, !/FAILED|ROLLBACK/.test(status)),
      when(txt(s, 'CreationTime')), when(txt(s, 'LastUpdatedTime')), txt(s, 'Description')];
  }), { label: 'Stacks', empty: 'No stacks. Deploy one with sam deploy or kindling deploy.' }));
}

async function stackView(name) {
  render(`Stack ${name}`, h('p', { class: 'muted' }, 'Loading…'));
  const [doc, res, ev] = await Promise.all([
    aws.cloudformation('DescribeStacks', { StackName: name }),
    aws.cloudformation('DescribeStackResources', { StackName: name }),
    aws.cloudformation('DescribeStackEvents', { StackName: name }),
  ]);
  const s = doc.querySelector('Stacks > member');
  const outputs = members(s, 'Outputs > member').map((o) => [txt(o, 'OutputKey'), h('code', {}, txt(o, 'OutputValue')), txt(o, 'Description')]);
  render(`Stack ${name}`,
    h('section', { class: 'card' }, props({ 'Stack ID': txt(s, 'StackId'), Status: txt(s, 'StackStatus'), Reason: txt(s, 'StackStatusReason'), Created: when(txt(s, 'CreationTime')) })),
    h('h2', {}, 'Outputs'), table(['Key', 'Value', 'Description'], outputs, { label: 'Outputs', empty: 'No outputs.' }),
    h('h2', {}, 'Resources'),
    table(['Logical ID', 'Type', 'Physical ID', 'Status'], members(res, 'StackResources > member').map((r) => [
      txt(r, 'LogicalResourceId'), txt(r, 'ResourceType'),
      txt(r, 'ResourceType') === 'AWS::Lambda::Function' ? link(`#/functions/${enc(txt(r, 'PhysicalResourceId'))}`, txt(r, 'PhysicalResourceId')) : h('code', {}, txt(r, 'PhysicalResourceId')),
      txt(r, 'ResourceStatus')]), { label: 'Resources' }),
    h('h2', {}, 'Events'),
    table(['Time', 'Logical ID', 'Type', 'Status', 'Reason'], members(ev, 'StackEvents > member').map((e) => {
      const st = txt(e, 'ResourceStatus');
      return [when(txt(e, 'Timestamp')), txt(e, 'LogicalResourceId'), txt(e, 'ResourceType'), badge(st, !/FAILED/.test(st)), txt(e, 'ResourceStatusReason')];
    }), { label: 'Stack events' }));
}

// ---- routing ---------------------------------------------------------------------------------

const routes = [
  [/^#\/functions$/, () => functionsView(), 'functions'],
  [/^#\/functions\/(.+)$/, (m) => functionView(decodeURIComponent(m[1])), 'functions'],
  [/^#\/invocations\/(.+)$/, (m) => invocationsView(decodeURIComponent(m[1])), 'invocations'],
  [/^#\/invocations$/, () => invocationsView(null), 'invocations'],
  [/^#\/logs\/(.+)$/, (m) => logsView(decodeURIComponent(m[1])), 'logs'],
  [/^#\/logs$/, () => logsView(null), 'logs'],
  [/^#\/charts\/(.+)$/, (m) => chartsView(decodeURIComponent(m[1])), 'charts'],
  [/^#\/charts$/, () => chartsView(null), 'charts'],
  [/^#\/queues\/(.+)$/, (m) => queueView(decodeURIComponent(m[1])), 'queues'],
  [/^#\/queues$/, () => queuesView(), 'queues'],
  [/^#\/mappings$/, () => mappingsView(), 'mappings'],
  [/^#\/stacks\/(.+)$/, (m) => stackView(decodeURIComponent(m[1])), 'stacks'],
  [/^#\/stacks$/, () => stacksView(), 'stacks'],
];

async function route() {
  current.stop();
  current = { stop: () => {} };
  const hash = location.hash || '#/functions';
  const found = routes.find(([re]) => re.test(hash));
  const [re, view, section] = found || [null, () => functionsView(), 'functions'];
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === section) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const token = (route.token = (route.token || 0) + 1);
  try {
    await view(re ? hash.match(re) : null);
    if (token === route.token) main.dataset.loaded = hash;
  } catch (e) {
    if (token !== route.token) return;
    main.append(failed(e));
    main.dataset.loaded = hash;
  }
}

window.addEventListener('hashchange', () => {
  route().then(() => main.focus({ preventScroll: true }));
});

(async () => {
  try {
    await aws.init();
  } catch (e) {
    main.replaceChildren(h('h1', {}, 'Kindling console'), failed(e));
    return;
  }
  showWho();
  await route();
})();
