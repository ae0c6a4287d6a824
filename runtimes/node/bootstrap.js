'use strict';
/**
 * Kindling's Node.js runtime bootstrap.
 *
 * Runs inside one execution environment: loads the user's handler (CommonJS
 * or ES module), then loops forever over the AWS Lambda Runtime API (version
 * 2018-06-01), calling the handler once per invocation. No npm dependencies;
 * Node.js 18 or newer.
 *
 * Launch command (Kindling must use exactly this):
 *
 *     <node> /path/to/runtimes/node/bootstrap.js [HANDLER]
 *
 *     <node>     a real node binary (no nvm/volta shim).
 *     HANDLER    optional; overrides _HANDLER (useful for container images).
 *     Working directory: LAMBDA_TASK_ROOT (as on AWS, where it is /var/task).
 *
 * Environment read:
 *     AWS_LAMBDA_RUNTIME_API      host:port of the Runtime API (required)
 *     _HANDLER                    "[dir/]file.export[.nested]"; file is tried as
 *                                 given, then .js, .mjs, .cjs (as on AWS)
 *     LAMBDA_TASK_ROOT            function code directory (default: cwd)
 *     NODE_PATH                   if unset, set to the AWS default:
 *                                 /opt/nodejs/node<major>/node_modules:/opt/nodejs/node_modules:<task root>
 *     AWS_LAMBDA_FUNCTION_NAME, AWS_LAMBDA_FUNCTION_VERSION,
 *     AWS_LAMBDA_FUNCTION_MEMORY_SIZE, AWS_LAMBDA_LOG_GROUP_NAME,
 *     AWS_LAMBDA_LOG_STREAM_NAME  copied into each context object
 *     AWS_LAMBDA_LOG_LEVEL        hides console methods below this level
 *     AWS_LAMBDA_LOG_FORMAT       JSON: console lines become JSON records
 *                                 {"timestamp","level","requestId","message"} (+ errorType,
 *                                 errorMessage, stackTrace for errors), as AWS's runtime writes
 *     KINDLING_IDENTITY_FD        pre-initialized start: wait at this descriptor for the
 *                                 function's environment (see receiveIdentity)
 * Environment written: _X_AMZN_TRACE_ID (per invocation, from the trace header).
 *
 * Behaviour follows AWS's Node.js runtime: async handlers (result = the
 * settled promise), callback handlers (event, context, callback) honouring
 * context.callbackWaitsForEmptyEventLoop, context.succeed/fail/done, error
 * payloads {"errorType", "errorMessage", "trace"}, Runtime.* init errors,
 * console lines "<ISO time>\t<request id>\t<LEVEL>\t<message>". Differences,
 * on purpose:
 *   - Every /error and /init/error POST carries Lambda-Runtime-Function-Error-Type
 *     set to the payload's errorType (AWS omits it on invocation errors).
 *   - A result that JSON.stringify rejects is reported as
 *     Runtime.JSONStringifyError instead of crashing the process.
 *   - The JSON log format is not implemented.
 *
 * Response streaming as on AWS: the global `awslambda.streamifyResponse(handler)`
 * marks a handler `(event, responseStream, context)`; its responseStream is a
 * Writable whose bytes go to POST /response in streaming mode
 * (Lambda-Runtime-Function-Response-Mode: streaming, chunked, flushed per write,
 * back-pressure through the socket) once the first byte is written or the
 * handler settles. `responseStream.setContentType()` works until then.
 * `awslambda.HttpResponseStream.from(stream, {statusCode, headers, cookies})`
 * sets the function URL prelude (the JSON, then 8 NUL bytes), sent with the
 * first byte of the body as on AWS. A handler that
 * fails before writing posts /error; after, the error goes in the trailers
 * Lambda-Runtime-Function-Error-Type / -Error-Body (base64 of the payload).
 */

const fs = require('fs');
const http = require('http');
const path = require('path');
const { Writable } = require('stream');
const util = require('util');

const RUNTIME_PATH = '/2018-06-01/runtime';
const USER_AGENT = `kindling-node-runtime/1 (node ${process.version})`;
const ERROR_TYPE_HEADER = 'Lambda-Runtime-Function-Error-Type';
const TRACE_ENV = '_X_AMZN_TRACE_ID';
const STREAMING_SYMBOL = Symbol.for('aws.lambda.runtime.handler.streaming');
const HIGH_WATER_MARK_SYMBOL = Symbol.for('aws.lambda.runtime.handler.streaming.highWaterMark');
const HTTP_INTEGRATION_CONTENT_TYPE = 'application/vnd.awslambda.http-integration-response';
// Shared with libraries that read the current request id, as on AWS.
const REQUEST_ID_SYMBOL = Symbol.for('aws.lambda.runtime.requestId');

// ---------------------------------------------------------------------------
// Runtime API client
// ---------------------------------------------------------------------------

/**
 * The four Runtime API calls, over one keep-alive connection with TCP_NODELAY.
 * GET /next is a long poll: no timeout is ever set on it. The agent's idle
 * socket is unref'd by Node, so it never keeps the event loop alive by itself
 * (which callbackWaitsForEmptyEventLoop depends on).
 */
class RuntimeApiClient {
  constructor(address) {
    const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(address || '');
    if (!match) {
      throw new Error(`AWS_LAMBDA_RUNTIME_API must be host:port, got ${JSON.stringify(address)}`);
    }
    this.host = match[1];
    this.port = Number(match[2]);
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  }

  async nextInvocation() {
    const response = await this.request('GET', `${RUNTIME_PATH}/invocation/next`);
    if (response.status !== 200) {
      throw new Error(describeFailure('GET /invocation/next', response));
    }
    return new Invocation(response.headers, response.body.toString('utf8'));
  }

  postResponse(requestId, body) {
    const target = `${RUNTIME_PATH}/invocation/${encodeURIComponent(requestId)}/response`;
    return this.post(target, body, { 'Content-Type': 'application/json' });
  }

  /**
   * Opens a streamed POST /response. Resolves `posted` once the platform answered
   * (or the exchange broke: the platform then ends the invocation itself, and the
   * next /next tells whether the API is still there).
   */
  openStream(requestId, contentType) {
    const target = `${RUNTIME_PATH}/invocation/${encodeURIComponent(requestId)}/response`;
    const request = http.request({
      host: this.host,
      port: this.port,
      method: 'POST',
      path: target,
      agent: this.agent,
      headers: {
        'User-Agent': USER_AGENT,
        'Content-Type': contentType,
        'Lambda-Runtime-Function-Response-Mode': 'streaming',
        'Transfer-Encoding': 'chunked',
        Trailer: `${ERROR_TYPE_HEADER}, Lambda-Runtime-Function-Error-Body`,
      },
    });
    request.on('socket', (socket) => socket.setNoDelay(true));
    const posted = new Promise((resolve) => {
      request.on('response', (response) => {
        const chunks = [];
        response.on('data', (chunk) => chunks.push(chunk));
        response.on('error', () => resolve());
        response.on('end', () => {
          const answer = { status: response.statusCode, body: Buffer.concat(chunks) };
          if (answer.status >= 300) {
            process.stderr.write(
              `[WARNING] Runtime API refused the streamed result: ${describeFailure(`POST ${target}`, answer)}\n`,
            );
          }
          resolve();
        });
      });
      request.on('error', (err) => {
        process.stderr.write(`[WARNING] streamed response interrupted: ${err.message}\n`);
        resolve();
      });
    });
    return { request, posted };
  }

  postInvocationError(requestId, payload) {
    return this.postError(`${RUNTIME_PATH}/invocation/${encodeURIComponent(requestId)}/error`, payload);
  }

  postInitError(payload) {
    return this.postError(`${RUNTIME_PATH}/init/error`, payload);
  }

  postError(target, payload) {
    const headers = {
      'Content-Type': 'application/json',
      [ERROR_TYPE_HEADER]: headerSafe(payload.errorType),
    };
    return this.post(target, JSON.stringify(payload), headers);
  }

  async post(target, body, headers) {
    await outputFlushed();
    const response = await this.request('POST', target, headers, body);
    if (response.status >= 500) {
      throw new Error(describeFailure(`POST ${target}`, response));
    }
    if (response.status >= 300) {
      // The platform refused this result (too large, or the invocation already
      // timed out) and has failed the invocation itself. Carry on.
      process.stderr.write(`[WARNING] Runtime API refused the result: ${describeFailure(`POST ${target}`, response)}\n`);
    }
  }

  /** One HTTP exchange; retried once if a reused keep-alive socket was already closed. */
  async request(method, target, headers = {}, body) {
    try {
      return await this.exchange(method, target, headers, body);
    } catch (err) {
      if (!err.reusedSocket || !['ECONNRESET', 'EPIPE'].includes(err.code)) {
        throw err;
      }
      return this.exchange(method, target, headers, body);
    }
  }

  exchange(method, target, headers, body) {
    const payload = body === undefined ? undefined : Buffer.from(body, 'utf8');
    const allHeaders = { 'User-Agent': USER_AGENT, ...headers };
    if (payload !== undefined) {
      allHeaders['Content-Length'] = payload.length;
    }
    return new Promise((resolve, reject) => {
      const request = http.request(
        { host: this.host, port: this.port, method, path: target, headers: allHeaders, agent: this.agent },
        (response) => {
          const chunks = [];
          response.on('data', (chunk) => chunks.push(chunk));
          response.on('error', reject);
          response.on('end', () =>
            resolve({ status: response.statusCode, headers: response.headers, body: Buffer.concat(chunks) }),
          );
        },
      );
      request.on('socket', (socket) => socket.setNoDelay(true));
      request.on('error', (err) => {
        err.reusedSocket = request.reusedSocket;
        reject(err);
      });
      request.end(payload);
    });
  }
}

function describeFailure(what, response) {
  return `${what} answered HTTP ${response.status}: ${response.body.toString('utf8').slice(0, 1000)}`;
}

function headerSafe(value) {
  return String(value).replace(/[^\x20-\x7e]/g, '') || 'Unhandled';
}

/** One event from GET /next, with its headers already lower-cased by Node. */
class Invocation {
  constructor(headers, body) {
    this.requestId = headers['lambda-runtime-aws-request-id'];
    this.deadlineMs = Number(headers['lambda-runtime-deadline-ms']);
    this.invokedFunctionArn = headers['lambda-runtime-invoked-function-arn'];
    this.traceId = headers['lambda-runtime-trace-id'];
    this.clientContext = headers['lambda-runtime-client-context'];
    this.cognitoIdentity = headers['lambda-runtime-cognito-identity'];
    this.tenantId = headers['lambda-runtime-aws-tenant-id'];
    this.body = body;
  }
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

function runtimeError(name, message) {
  const error = new Error(message);
  error.name = `Runtime.${name}`;
  // The stack's first line was rendered with the old name; keep them in step.
  error.stack = error.stack.replace(/^Error/, error.name);
  return error;
}

/**
 * Resolves once what was written to stdout and stderr is in the platform's pipes. Node.js
 * writes to a pipe asynchronously once it is full; Lambda's runtimes log synchronously, so a
 * result is posted only after the output before it, which is then logged before END.
 */
function outputFlushed() {
  const pending = [process.stdout, process.stderr].filter((stream) => stream.writableLength > 0);
  return Promise.all(pending.map((stream) => new Promise((resolve) => stream.write('', resolve))));
}

/** The payload posted to /error or /init/error, shaped as AWS's Node runtime does. */
function errorPayload(error) {
  try {
    if (util.types.isNativeError(error) || looksLikeError(error)) {
      return { errorType: error.name, errorMessage: error.message, trace: error.stack.split('\n') };
    }
    return { errorType: typeof error, errorMessage: String(error), trace: [] };
  } catch (_) {
    return {
      errorType: 'handled',
      errorMessage:
        'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack',
    };
  }
}

function looksLikeError(value) {
  return Boolean(value) && ['name', 'message', 'stack'].every((key) => typeof value[key] === 'string' && value[key]);
}

/** `\t{json}` rendering of an error used in the runtime's own ERROR log lines. */
function formatErrorForLog(error) {
  const asError = error instanceof Error ? error : new Error(error);
  try {
    return '\t' + JSON.stringify(asError, (_key, value) => expandError(value));
  } catch (_) {
    return '\t' + JSON.stringify(errorPayload(asError));
  }
}

function expandError(value) {
  if (!(value instanceof Error)) {
    return value;
  }
  const expanded = { errorType: value.name, errorMessage: value.message, code: value.code, ...value };
  if (typeof value.stack === 'string') {
    expanded.stack = value.stack.split('\n');
  }
  return expanded;
}

// ---------------------------------------------------------------------------
// Console: AWS's text log line format
// ---------------------------------------------------------------------------

const LOG_LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'];

let JSON_LOGS = (process.env.AWS_LAMBDA_LOG_FORMAT || '').toUpperCase() === 'JSON';

function writeLogLine(level, args) {
  if (JSON_LOGS) {
    process.stdout.write(formatJsonLine(level, args) + '\n');
    return;
  }
  const message = util.format(...args);
  const line = `${new Date().toISOString()}\t${globalThis[REQUEST_ID_SYMBOL]}\t${level}\t${message}`;
  process.stdout.write(line.replace(/\n/g, '\r') + '\n');
}

/** Errors as JSON: their name, message and stack (JSON.stringify drops them otherwise). */
function jsonErrorReplacer(_key, value) {
  if (value instanceof Error) {
    return Object.assign(
      { errorType: value?.constructor?.name ?? 'UnknownError', errorMessage: value.message, stackTrace: typeof value.stack === 'string' ? value.stack.split('\n') : value.stack },
      value,
    );
  }
  return value;
}

/** AWS_LAMBDA_LOG_FORMAT=JSON: one JSON record per call, as Lambda's Node.js runtime writes it. */
function formatJsonLine(level, args) {
  const result = { timestamp: new Date().toISOString(), level, requestId: globalThis[REQUEST_ID_SYMBOL] };
  if (args.length === 1) {
    result.message = args[0];
    try {
      return JSON.stringify(result, jsonErrorReplacer);
    } catch (_) {
      result.message = util.format(result.message);
      return JSON.stringify(result);
    }
  }
  result.message = util.format(...args);
  for (const param of args) {
    if (param instanceof Error) {
      result.errorType = param?.constructor?.name ?? 'UnknownError';
      result.errorMessage = param.message;
      result.stackTrace = typeof param.stack === 'string' ? param.stack.split('\n') : [];
      break;
    }
  }
  return JSON.stringify(result);
}

function patchConsole() {
  const threshold = Math.max(0, LOG_LEVELS.indexOf((process.env.AWS_LAMBDA_LOG_LEVEL || '').toUpperCase()));
  const method = (level) =>
    LOG_LEVELS.indexOf(level) >= threshold ? (...args) => writeLogLine(level, args) : () => {};
  console.trace = method('TRACE');
  console.debug = method('DEBUG');
  console.info = method('INFO');
  console.log = console.info;
  console.warn = method('WARN');
  console.error = method('ERROR');
  console.fatal = (...args) => writeLogLine('FATAL', args);
}

function logError(title, error) {
  console.error(title, formatErrorForLog(error));
}

// ---------------------------------------------------------------------------
// Loading the user's handler
// ---------------------------------------------------------------------------

/** Make layer packages requirable by bare name, as AWS's default NODE_PATH does. */
function configureNodePath(taskRoot) {
  if (process.env.NODE_PATH !== undefined) {
    return;
  }
  const major = process.versions.node.split('.')[0];
  process.env.NODE_PATH = [`/opt/nodejs/node${major}/node_modules`, '/opt/nodejs/node_modules', taskRoot].join(
    path.delimiter,
  );
  const Module = require('module');
  if (typeof Module._initPaths === 'function') {
    Module._initPaths();
  }
}

/** "dir/sub/app.obj.fn" -> { moduleRoot: "dir/sub/", moduleName: "app", handlerPath: "obj.fn" } */
function parseHandlerName(fullName) {
  if (fullName.includes('..')) {
    throw runtimeError(
      'MalformedHandlerName',
      `'${fullName}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`,
    );
  }
  const base = path.basename(fullName);
  const moduleRoot = fullName.slice(0, fullName.length - base.length);
  const match = /^([^.]*)\.(.*)$/.exec(base);
  if (!match) {
    throw runtimeError('MalformedHandlerName', 'Bad handler');
  }
  return { moduleRoot, moduleName: match[1], handlerPath: match[2] };
}

/** Nearest package.json decides whether ".js" means ES module (stops at node_modules). */
function isInEsmPackage(directory) {
  for (let dir = directory; ; dir = path.dirname(dir)) {
    if (dir.endsWith(`${path.sep}node_modules`)) {
      return false;
    }
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest)) {
      try {
        return JSON.parse(fs.readFileSync(manifest, 'utf8')).type === 'module';
      } catch (err) {
        console.warn(`${manifest} cannot be read, it will be ignored for ES module detection purposes.`, err);
        return false;
      }
    }
    if (dir === path.dirname(dir)) {
      return false;
    }
  }
}

function requireIfExists(file) {
  return fs.existsSync(file) ? require(file) : undefined;
}

async function importIfExists(file) {
  if (!fs.existsSync(file)) {
    return undefined;
  }
  const { pathToFileURL } = require('url');
  esmNodePath();
  return import(pathToFileURL(file).href);
}

/**
 * ES modules ignore NODE_PATH; on AWS an ES module handler still imports the runtime's bundled
 * AWS SDK and layer packages by bare name. A resolve hook (Node 20.6+) retries a bare specifier
 * that normal resolution cannot find from each NODE_PATH "node_modules" directory, in order,
 * after the module's own node_modules (so the function's own copy wins).
 */
let esmNodePathDone = false;
function esmNodePath() {
  if (esmNodePathDone) {
    return;
  }
  esmNodePathDone = true;
  const Module = require('module');
  const { pathToFileURL } = require('url');
  const parents = (process.env.NODE_PATH || '')
    .split(path.delimiter)
    .filter((dir) => path.basename(dir) === 'node_modules' && fs.existsSync(dir))
    .map((dir) => pathToFileURL(path.join(path.dirname(dir), 'kindling-esm-parent.mjs')).href);
  if (typeof Module.register !== 'function' || parents.length === 0) {
    return;
  }
  const hook = `
const PARENTS = ${JSON.stringify(parents)};
const bare = (s) => !/^(\\.{0,2}\\/|\\/|[a-zA-Z][a-zA-Z0-9+.-]*:)/.test(s);
export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (err) {
    if (!err || err.code !== 'ERR_MODULE_NOT_FOUND' || !bare(specifier)) throw err;
    for (const parentURL of PARENTS) {
      try {
        return await next(specifier, { ...context, parentURL });
      } catch (_) {}
    }
    throw err;
  }
}`;
  Module.register(`data:text/javascript,${encodeURIComponent(hook)}`);
}

/**
 * Load the module the way AWS's runtime does: the exact file, then ".js"
 * (required, or imported inside a "type": "module" package), ".mjs"
 * (imported), ".cjs" (required), and finally Node's own resolution from the
 * task root (node_modules packages).
 */
async function loadUserModule(taskRoot, moduleRoot, moduleName) {
  const base = path.resolve(taskRoot, moduleRoot, moduleName);
  const esm = isInEsmPackage(path.dirname(base));
  const loaded =
    requireIfExists(base) ||
    (!esm && requireIfExists(`${base}.js`)) ||
    (esm && (await importIfExists(`${base}.js`))) ||
    (await importIfExists(`${base}.mjs`)) ||
    requireIfExists(`${base}.cjs`);
  if (loaded) {
    return loaded;
  }
  return require(require.resolve(moduleName, { paths: [taskRoot, path.join(taskRoot, moduleRoot)] }));
}

async function loadHandler(taskRoot, fullName) {
  const { moduleRoot, moduleName, handlerPath } = parseHandlerName(fullName);
  let userModule;
  try {
    userModule = await loadUserModule(taskRoot, moduleRoot, moduleName);
  } catch (err) {
    if (err instanceof SyntaxError) {
      throw runtimeError('UserCodeSyntaxError', String(err));
    }
    if (err && err.code === 'MODULE_NOT_FOUND') {
      throw runtimeError('ImportModuleError', String(err));
    }
    throw err;
  }
  const handler = handlerPath.split('.').reduce((object, key) => object && object[key], userModule);
  if (!handler) {
    throw runtimeError('HandlerNotFound', `${fullName} is undefined or not exported`);
  }
  if (typeof handler !== 'function') {
    throw runtimeError('HandlerNotFound', `${fullName} is not a function`);
  }
  return handler;
}

// ---------------------------------------------------------------------------
// One invocation: context, callback, completion
// ---------------------------------------------------------------------------

/**
 * Settles one invocation exactly once. Errors are posted at once; a callback
 * result waits for the event loop to drain when callbackWaitsForEmptyEventLoop
 * is true (AWS's default), otherwise it is posted at once; a promise result is
 * posted as soon as it resolves.
 */
class Completion {
  constructor(api, requestId, onPosted) {
    this.api = api;
    this.requestId = requestId;
    this.onPosted = onPosted;
    this.settled = false;
    this.waitsForEmptyEventLoop = true;
    this.onEmptyEventLoop = null;
  }

  /** Node-style callback given to the handler as its third argument. */
  callback(error, result) {
    if (!this.claim()) return;
    if (error !== undefined && error !== null) {
      this.postError(error);
    } else if (this.waitsForEmptyEventLoop) {
      this.onEmptyEventLoop = () => this.postResult(result);
    } else {
      this.postResult(result);
    }
  }

  /** Used for promise results and context.succeed/fail/done: never waits. */
  done(error, result) {
    if (!this.claim()) return;
    if (error !== undefined && error !== null) {
      this.postError(error);
    } else {
      this.postResult(result);
    }
  }

  /** The event loop drained before the handler settled. */
  eventLoopEmpty(handlerIsAsync) {
    if (this.onEmptyEventLoop) {
      const post = this.onEmptyEventLoop;
      this.onEmptyEventLoop = null;
      post();
    } else if (this.claim()) {
      // A sync handler that never called back succeeds with null; an async
      // one whose promise can no longer settle fails.
      if (handlerIsAsync) {
        // Error type as on AWS; the message wording there is not confirmed.
        this.postError(runtimeError('NodeJsExit', 'Runtime exited without providing a reason'));
      } else {
        this.postResult(null);
      }
    }
  }

  claim() {
    if (this.settled) return false;
    this.settled = true;
    return true;
  }

  postResult(result) {
    let body;
    try {
      body = JSON.stringify(result === undefined ? null : result);
    } catch (_) {
      this.postError(runtimeError('JSONStringifyError', 'Unable to stringify response body'));
      return;
    }
    this.api.postResponse(this.requestId, body).then(this.onPosted, exitOnRuntimeApiFailure);
  }

  postError(error) {
    logError('Invoke Error', error);
    this.api.postInvocationError(this.requestId, errorPayload(error)).then(this.onPosted, exitOnRuntimeApiFailure);
  }
}

function buildContext(invocation, completion) {
  const env = process.env;
  const deadlineMs = invocation.deadlineMs;
  return {
    get callbackWaitsForEmptyEventLoop() {
      return completion.waitsForEmptyEventLoop;
    },
    set callbackWaitsForEmptyEventLoop(value) {
      completion.waitsForEmptyEventLoop = value;
    },
    succeed: (result) => completion.done(null, result),
    fail: (error) => completion.done(error === undefined || error === null ? 'handled' : error),
    done: (error, result) => completion.done(error, result),
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
    functionName: env.AWS_LAMBDA_FUNCTION_NAME,
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    clientContext: parseJsonHeader(invocation.clientContext, 'ClientContext'),
    identity: parseJsonHeader(invocation.cognitoIdentity, 'CognitoIdentity'),
    invokedFunctionArn: invocation.invokedFunctionArn,
    awsRequestId: invocation.requestId,
    tenantId: invocation.tenantId,
    getRemainingTimeInMillis: () => deadlineMs - Date.now(),
  };
}

function parseJsonHeader(value, name) {
  if (value === undefined) {
    return undefined;
  }
  try {
    return JSON.parse(value);
  } catch (err) {
    throw new Error(`Cannot parse ${name} as json: ${err.toString()}`);
  }
}

function exportTraceId(traceId) {
  if (traceId) {
    process.env[TRACE_ENV] = traceId;
  } else {
    delete process.env[TRACE_ENV];
  }
}

function isPromise(value) {
  return Boolean(value) && typeof value.then === 'function';
}

// ---------------------------------------------------------------------------
// Response streaming
// ---------------------------------------------------------------------------

/**
 * The responseStream a streaming handler writes to. The POST starts with the
 * first byte (or at the end), so the content type may be set until then; each
 * write is handed to the socket at once and the write callback waits for the
 * socket to drain (back-pressure from the platform reaches the handler).
 */
class ResponseStream extends Writable {
  constructor(api, requestId, highWaterMark) {
    super(highWaterMark ? { highWaterMark } : {});
    this.api = api;
    this.requestId = requestId;
    this.contentType = 'application/octet-stream';
    this.exchange = null;
    this.failure = null;
    this.prelude = null;
  }

  setContentType(contentType) {
    if (this.exchange) {
      throw new Error('The content type cannot be set after the response started');
    }
    this.contentType = String(contentType);
  }

  get started() {
    return this.exchange !== null;
  }

  /** Opens the POST (once), with the HTTP prelude first if one is pending. */
  start() {
    if (!this.exchange) {
      this.exchange = this.api.openStream(this.requestId, this.contentType);
    }
    if (this.prelude) {
      this.exchange.request.write(this.prelude);
      this.prelude = null;
    }
    return this.exchange.request;
  }

  _write(chunk, _encoding, callback) {
    const request = this.start();
    if (request.destroyed) {
      callback();
    } else if (request.write(chunk)) {
      callback();
    } else {
      request.once('drain', () => callback());
    }
  }

  _final(callback) {
    const request = this.start();
    if (this.failure) {
      request.addTrailers({
        [ERROR_TYPE_HEADER]: headerSafe(this.failure.errorType),
        'Lambda-Runtime-Function-Error-Body': Buffer.from(JSON.stringify(this.failure)).toString('base64'),
      });
    }
    request.end();
    callback();
  }

  /** Resolves once the platform answered the streamed POST. */
  posted() {
    this.start();
    return this.exchange.posted;
  }
}

class HttpResponseStream {
  /**
   * Prepares `stream` for a function URL: the content type of the HTTP
   * integration and the prelude (status, headers, cookies) before the body.
   */
  static from(stream, prelude) {
    stream.setContentType(HTTP_INTEGRATION_CONTENT_TYPE);
    // Sent with the first byte of the body (or at the end): a handler that fails before
    // writing anything still posts a plain error.
    stream.prelude = Buffer.concat([Buffer.from(JSON.stringify(prelude || {})), Buffer.alloc(8)]);
    return stream;
  }
}

function installAwsLambdaGlobal() {
  globalThis.awslambda = {
    streamifyResponse(handler, options) {
      handler[STREAMING_SYMBOL] = 'response';
      if (options && Number.isInteger(options.highWaterMark) && options.highWaterMark > 0) {
        handler[HIGH_WATER_MARK_SYMBOL] = options.highWaterMark;
      }
      return handler;
    },
    HttpResponseStream,
  };
}

/** Runs a streaming handler once: the stream ends when its promise settles. */
function runStreaming(api, handler, invocation, completion, event) {
  const stream = new ResponseStream(api, invocation.requestId, handler[HIGH_WATER_MARK_SYMBOL]);
  const finish = (error) => {
    if (!completion.claim()) return;
    if (error !== undefined) {
      if (!stream.started) {
        completion.postError(error);
        return;
      }
      logError('Invoke Error', error);
      if (stream.writableEnded) {
        process.stderr.write('[WARNING] the handler failed after its response stream ended\n');
      } else {
        stream.failure = errorPayload(error);
      }
    }
    if (!stream.writableEnded) {
      stream.end();
    }
    stream.posted().then(completion.onPosted, exitOnRuntimeApiFailure);
  };
  stream.on('error', (err) => finish(err || 'handled'));
  let result;
  try {
    result = handler(event, stream, buildContext(invocation, completion));
  } catch (err) {
    finish(err === undefined || err === null ? 'handled' : err);
    return;
  }
  if (isPromise(result)) {
    result.then(
      () => finish(undefined),
      (err) => finish(err === undefined || err === null ? 'handled' : err),
    );
  } else {
    // A handler that is not async ends its stream itself.
    stream.on('finish', () => finish(undefined));
  }
}

// ---------------------------------------------------------------------------
// The invocation loop
// ---------------------------------------------------------------------------

class InvocationLoop {
  constructor(api, handler) {
    this.api = api;
    this.handler = handler;
    this.handlerIsAsync = handler.constructor && handler.constructor.name === 'AsyncFunction';
    this.completion = null; // the latest invocation's, settled or not
    process.on('beforeExit', () => this.completion && this.completion.eventLoopEmpty(this.handlerIsAsync));
  }

  scheduleNext() {
    setImmediate(() => this.runOnce().catch(exitOnRuntimeApiFailure));
  }

  async runOnce() {
    const invocation = await this.api.nextInvocation();
    globalThis[REQUEST_ID_SYMBOL] = invocation.requestId;
    exportTraceId(invocation.traceId);
    const completion = new Completion(this.api, invocation.requestId, () => this.scheduleNext());
    this.completion = completion;
    if (this.handler[STREAMING_SYMBOL] === 'response') {
      let event;
      try {
        event = JSON.parse(invocation.body);
      } catch (err) {
        completion.callback(err);
        return;
      }
      runStreaming(this.api, this.handler, invocation, completion, event);
      return;
    }
    try {
      const context = buildContext(invocation, completion);
      const result = this.handler(JSON.parse(invocation.body), context, (error, value) =>
        completion.callback(error, value),
      );
      if (isPromise(result)) {
        result.then(
          (value) => completion.done(null, value),
          (error) => completion.done(error === undefined || error === null ? 'handled' : error),
        );
      }
    } catch (err) {
      completion.callback(err);
    }
  }

  /** The invocation a crash is reported against (undefined before the first one). */
  get currentRequestId() {
    return this.completion ? this.completion.requestId : undefined;
  }
}

// ---------------------------------------------------------------------------
// Process-level failures
// ---------------------------------------------------------------------------

function exitOnRuntimeApiFailure(err) {
  process.stderr.write(`kindling node runtime: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
}

/**
 * An uncaught exception or unhandled rejection ends the process, after being
 * reported against the running invocation, or as an init error before that.
 */
function installCrashHandlers(api, getLoop) {
  const crash = (title, error, exitCode) => {
    logError(title, error);
    const loop = getLoop();
    const requestId = loop ? loop.currentRequestId : undefined;
    const payload = errorPayload(error);
    const report = requestId ? api.postInvocationError(requestId, payload) : api.postInitError(payload);
    report.then(
      () => process.exit(exitCode),
      () => process.exit(exitCode),
    );
  };
  process.on('uncaughtException', (error) => crash('Uncaught Exception', error, 129));
  process.on('unhandledRejection', (reason) => {
    const error = runtimeError('UnhandledPromiseRejection', String(reason));
    error.reason = reason;
    crash('Unhandled Promise Rejection', error, 128);
  });
}

/**
 * Pre-initialized start: wait at `fd` for the function this process is to run.
 *
 * Kindling started Node (and loaded this file) before any function was chosen, with a neutral
 * environment, in an environment of its own (namespaces, cgroup, user, /tmp). When a function's
 * first invocation arrives, Kindling attaches its code at /var/task and /opt and writes the
 * function's complete environment here as NUL-separated KEY=VALUE entries, then closes the pipe.
 * Nothing of another function was ever in this process: it runs one function, then ends.
 * Returns false when the pipe closed empty (the environment is discarded unused).
 */
function receiveIdentity(fd) {
  const chunks = [];
  const buffer = Buffer.alloc(65536);
  for (;;) {
    let n;
    try {
      n = fs.readSync(fd, buffer, 0, buffer.length, null);
    } catch (err) {
      if (err.code === 'EAGAIN' || err.code === 'EINTR') continue;
      throw err;
    }
    if (n === 0) break;
    chunks.push(Buffer.from(buffer.subarray(0, n)));
  }
  fs.closeSync(fd);
  const data = Buffer.concat(chunks);
  if (data.length === 0) return false;
  for (const key of Object.keys(process.env)) delete process.env[key];
  for (const entry of data.toString('utf8').split('\0')) {
    const eq = entry.indexOf('=');
    if (eq > 0) process.env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  JSON_LOGS = (process.env.AWS_LAMBDA_LOG_FORMAT || '').toUpperCase() === 'JSON';
  showEnvironment(data);
  // The process started in the empty mount point; the code is mounted over it since.
  process.chdir(process.env.LAMBDA_TASK_ROOT || '/var/task');
  // Node read NODE_PATH at its start: read it again.
  const Module = require('module');
  if (typeof Module._initPaths === 'function') Module._initPaths();
  return true;
}

/**
 * Make /proc/<pid>/environ (the process's initial environment, which tools on the host and in
 * the function read) show the function's environment: it is written over the initial one,
 * which Kindling made large enough (and which nothing uses any longer).
 */
function showEnvironment(data) {
  try {
    const stat = fs.readFileSync('/proc/self/stat', 'latin1');
    const fields = stat.slice(stat.lastIndexOf(')') + 1).trim().split(/\s+/);
    const start = Number(fields[47]);
    const end = Number(fields[48]); // env_start, env_end (fields 50, 51)
    if (!(end > start) || data.length > end - start) return;
    const block = Buffer.alloc(end - start);
    data.copy(block);
    const mem = fs.openSync('/proc/self/mem', 'r+');
    try {
      fs.writeSync(mem, block, 0, block.length, start);
    } finally {
      fs.closeSync(mem);
    }
  } catch (err) {
    // Cosmetic only: the function's environment is in effect either way.
  }
}

async function main() {
  const identityFd = process.env.KINDLING_IDENTITY_FD;
  if (identityFd !== undefined && !receiveIdentity(Number(identityFd))) {
    process.exit(0);
  }
  patchConsole();
  installAwsLambdaGlobal();
  globalThis[REQUEST_ID_SYMBOL] = undefined;
  let api;
  try {
    api = new RuntimeApiClient(process.env.AWS_LAMBDA_RUNTIME_API);
  } catch (err) {
    exitOnRuntimeApiFailure(err);
    return;
  }
  let loop = null;
  installCrashHandlers(api, () => loop);
  const taskRoot = process.env.LAMBDA_TASK_ROOT || process.cwd();
  configureNodePath(taskRoot);
  let handler;
  try {
    handler = await loadHandler(taskRoot, process.argv[2] || process.env._HANDLER || '');
  } catch (err) {
    logError('Uncaught Exception', err);
    await api.postInitError(errorPayload(err)).catch(() => {});
    process.exit(129);
  }
  loop = new InvocationLoop(api, handler);
  loop.scheduleNext();
}

main();
