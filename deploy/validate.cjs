// Offline checks of deploy/: the DaemonSet manifest and the Helm chart (rendered by a small
// renderer of the template subset the chart uses, since helm itself is not installable here)
// are validated against the Kubernetes schemas (npm kubernetes-models), checked for what the
// node agent needs, and their config.yaml is given to the real agent (--print-config).
//   NODE_PATH=<dir with kubernetes-models and yaml> node deploy/validate.cjs [ZEROTRACE_BINARY]
// Ends with "N passed, N failed"; exit status 1 when anything failed.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const crypto = require('crypto');
const { execFileSync } = require('child_process');
const YAML = require('yaml');

const here = __dirname;
const agent = process.argv[2];
let passed = 0, failed = 0;
function check(what, fn) {
  try {
    const r = fn();
    if (r === false) throw new Error('false');
    passed++;
    console.log('PASS: ' + what);
  } catch (e) {
    failed++;
    console.log('FAIL: ' + what + ': ' + (e.message || e).toString().split('\n').slice(0, 5).join(' | '));
  }
}

// --- a renderer for the Go-template subset the chart uses ------------------------------
function lookup(ctx, ref) {
  let v = ctx;
  for (const part of ref.split('.').filter(Boolean)) {
    if (v === undefined || v === null) return undefined;
    v = v[part];
  }
  return v;
}
function tokenizeArgs(s) {
  const out = [];
  const re = /\s*("(?:[^"\\]|\\.)*"|[^\s|]+|\|)/g;
  let m;
  while ((m = re.exec(s)) !== null) out.push(m[1]);
  return out;
}
function goPrintf(fmt, args) {
  let i = 0;
  return fmt.replace(/%[vsd]/g, () => String(args[i++]));
}
function toYaml(v) {
  if (v === undefined || v === null) return '';
  if (typeof v === 'object' && Object.keys(v).length === 0) return Array.isArray(v) ? '[]' : '{}';
  return YAML.stringify(v).replace(/\n$/, '');
}
function evalPipeline(expr, ctx) {
  const stages = [];
  let cur = [];
  for (const t of tokenizeArgs(expr)) {
    if (t === '|') { stages.push(cur); cur = []; } else cur.push(t);
  }
  stages.push(cur);
  let value;
  stages.forEach((words, idx) => {
    const arg = (w) => w.startsWith('"') ? JSON.parse(w) : w.startsWith('.') ? lookup(ctx, w)
      : /^\d+$/.test(w) ? Number(w) : (() => { throw new Error('unsupported word ' + w); })();
    const [fn, ...rest] = words;
    const args = rest.map(arg);
    if (idx > 0) args.push(value);
    if (fn.startsWith('.') && idx === 0 && words.length === 1) value = lookup(ctx, fn);
    else if (fn === 'quote') value = JSON.stringify(String(args[0] ?? ''));
    else if (fn === 'printf') value = goPrintf(args[0], args.slice(1));
    else if (fn === 'toYaml') value = toYaml(args[0]);
    else if (fn === 'toJson') value = JSON.stringify(args[0]);
    else if (fn === 'sha256sum') value = crypto.createHash('sha256').update(String(args[0])).digest('hex');
    else if (fn === 'nindent') value = '\n' + String(args[1]).split('\n').map((l) => ' '.repeat(args[0]) + l).join('\n');
    else throw new Error('unsupported template function ' + fn);
  });
  return value;
}
function render(template, ctx) {
  const re = /\{\{(-?)\s*(.*?)\s*(-?)\}\}/gs;
  let out = '', last = 0, m;
  const stack = [];  // if-states: true = emitting
  const emitting = () => stack.every(Boolean);
  let trimNext = false;
  while ((m = re.exec(template)) !== null) {
    let text = template.slice(last, m.index);
    if (trimNext) text = text.replace(/^\s+/, '');
    if (m[1] === '-') text = text.replace(/\s+$/, '');
    if (emitting()) out += text;
    trimNext = m[3] === '-';
    last = re.lastIndex;
    const action = m[2];
    if (action.startsWith('if ')) {
      const v = evalPipeline(action.slice(3), ctx);
      stack.push(!!v && !(typeof v === 'object' && Object.keys(v).length === 0));
    } else if (action === 'end') {
      if (!stack.length) throw new Error('end without if');
      stack.pop();
    } else if (action.startsWith('/*')) {
      // comment
    } else if (emitting()) {
      const v = evalPipeline(action, ctx);
      out += v === undefined || v === null ? '' : String(v);
    }
  }
  let tail = template.slice(last);
  if (trimNext) tail = tail.replace(/^\s+/, '');
  if (stack.length) throw new Error('if without end');
  return out + tail;
}
function setPath(obj, dotted, value) {
  const parts = dotted.split('.');
  let o = obj;
  for (const p of parts.slice(0, -1)) o = o[p] = o[p] ?? {};
  o[parts[parts.length - 1]] = value;
}
function renderChart(dir, sets) {
  const values = YAML.parse(fs.readFileSync(path.join(dir, 'values.yaml'), 'utf8'));
  for (const [k, v] of Object.entries(sets)) setPath(values, k, v);
  const chart = YAML.parse(fs.readFileSync(path.join(dir, 'Chart.yaml'), 'utf8'));
  const ctx = { Values: values, Release: { Name: 'zerotrace', Namespace: 'observability' },
    Chart: { Name: chart.name, Version: chart.version, AppVersion: chart.appVersion } };
  const tdir = path.join(dir, 'templates');
  return fs.readdirSync(tdir).filter((f) => f.endsWith('.yaml')).sort()
    .map((f) => render(fs.readFileSync(path.join(tdir, f), 'utf8'), ctx)).join('\n---\n');
}

// --- schema validation and the agent's needs ------------------------------------------
const models = {};  // "apiVersion/kind" -> model class, loaded in main (an ES module)
async function loadModels() {
  const { pathToFileURL } = require('url');
  const root = path.dirname(require.resolve('kubernetes-models/package.json'));
  const load = async (sub) => import(pathToFileURL(path.join(root, sub, 'index.js')).href);
  const core = await load('v1');
  const apps = await load('apps/v1');
  models['v1/Namespace'] = () => core.Namespace;
  models['v1/ServiceAccount'] = () => core.ServiceAccount;
  models['v1/ConfigMap'] = () => core.ConfigMap;
  models['apps/v1/DaemonSet'] = () => apps.DaemonSet;
}
function docsOf(text) {
  return YAML.parseAllDocuments(text).map((d) => {
    if (d.errors.length) throw new Error(d.errors[0].message);
    return d.toJS();
  }).filter(Boolean);
}
function checkSet(name, docs, wantEndpoint) {
  for (const doc of docs) {
    check(`${name}: ${doc.kind} ${doc.metadata?.name} matches the Kubernetes schema`, () => {
      const Model = models[`${doc.apiVersion}/${doc.kind}`];
      if (!Model) throw new Error('no model for ' + doc.apiVersion + '/' + doc.kind);
      new (Model())(doc).validate();
    });
  }
  const ds = docs.find((d) => d.kind === 'DaemonSet');
  const cm = docs.find((d) => d.kind === 'ConfigMap');
  const pod = ds.spec.template.spec;
  const c = pod.containers[0];
  check(`${name}: hostPID, not privileged, exactly the capabilities of docs/SECURITY.md`, () =>
    pod.hostPID === true && c.securityContext.privileged === false &&
    JSON.stringify(c.securityContext.capabilities.add) ===
      JSON.stringify(['BPF', 'PERFMON', 'DAC_READ_SEARCH', 'SYS_PTRACE']) &&
    c.securityContext.capabilities.drop[0] === 'ALL');
  check(`${name}: mounts /sys/kernel/btf, /sys/kernel/tracing, debugfs, /sys/fs/cgroup`, () => {
    const host = new Set(pod.volumes.filter((v) => v.hostPath).map((v) => v.hostPath.path));
    return ['/sys/kernel/btf', '/sys/kernel/tracing', '/sys/kernel/debug', '/sys/fs/cgroup']
      .every((p) => host.has(p));
  });
  check(`${name}: requests and limits, a liveness probe on /metrics`, () =>
    c.resources.requests.memory && c.resources.limits.memory &&
    c.livenessProbe.httpGet.path === '/metrics');
  const config = YAML.parse(cm.data['config.yaml']);
  check(`${name}: the config's OTLP endpoint is ${wantEndpoint}`, () => config['otlp-endpoint'] === wantEndpoint);
  check(`${name}: the metrics port the probe uses is where the agent serves`, () =>
    config['metrics-addr'].endsWith(':' + c.ports.find((p) => p.name === 'metrics').containerPort));
  if (agent) {
    check(`${name}: the agent accepts the config (zerotrace --print-config)`, () => {
      const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'zt-validate-')), 'config.yaml');
      fs.writeFileSync(file, cm.data['config.yaml']);
      try {
        execFileSync(agent, ['--config', file, '--print-config'], { stdio: ['ignore', 'pipe', 'pipe'] });
      } finally {
        fs.rmSync(path.dirname(file), { recursive: true });
      }
    });
  }
}

async function main() {
  await loadModels();
  checkSet('manifest', docsOf(fs.readFileSync(path.join(here, 'kubernetes/zerotrace.yaml'), 'utf8')),
    'http://otel-collector.observability:4318');
  const chartDir = path.join(here, 'helm/zerotrace');
  checkSet('chart (defaults)', docsOf(renderChart(chartDir, {})), 'http://otel-collector.observability:4318');
  checkSet('chart (--set otlp.endpoint)', docsOf(renderChart(chartDir, {
    'otlp.endpoint': 'http://collector.example:4318', 'include': { port: [8080] },
    'extraConfig': { 'capture-bytes': 4096 } })), 'http://collector.example:4318');
  check('the renderer rejects what it does not know (a misspelled function)', () => {
    try { render('{{ .Values.x | qoute }}', { Values: { x: 1 } }); } catch (e) { return true; }
    return false;
  });
  console.log(`deploy: ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
main();
