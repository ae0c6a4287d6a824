'use strict';
// Streaming handlers for the response-streaming suite (Kindling's Node bootstrap, as on AWS:
// the global `awslambda`). The event says what to do:
//   {chunks, size, delay_ms}   `chunks` chunks of `size` bytes (letters a, b, c...), pausing
//                              `delay_ms` between them (default 3 x 16, no pause)
//   {fail_after}               throw after that many chunks (0: before writing anything)
//   {sleep_ms}                 sleep that long after the chunks (to run into the timeout)
//   {http: {statusCode, headers, cookies}}  write the function URL prelude first
//   {content_type}             set the stream's content type
//   {pipeline: true}           write through stream.pipeline from a Readable
const { Readable } = require('stream');
const { pipeline } = require('stream/promises');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function* pieces(event) {
  const chunks = event.chunks === undefined ? 3 : event.chunks;
  const size = event.size === undefined ? 16 : event.size;
  for (let i = 0; i < chunks; i++) {
    yield Buffer.alloc(size, String.fromCharCode(97 + (i % 26)));
  }
}

// Through a function URL the instructions are the JSON body of the HTTP request.
function instructions(event) {
  if (event && event.requestContext && typeof event.body === 'string') {
    const text = event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString() : event.body;
    return JSON.parse(text || '{}');
  }
  return event;
}

exports.handler = awslambda.streamifyResponse(async (request, responseStream, context) => {
  const event = instructions(request);
  if (event.content_type) {
    responseStream.setContentType(event.content_type);
  }
  if (event.http) {
    responseStream = awslambda.HttpResponseStream.from(responseStream, event.http);
  }
  if (event.pipeline) {
    await pipeline(Readable.from(pieces(event)), responseStream);
    return;
  }
  let i = 0;
  for (const piece of pieces(event)) {
    if (event.fail_after === i) {
      throw new Error(`failed after ${i} chunks`);
    }
    if (i > 0 && event.delay_ms) {
      await sleep(event.delay_ms);
    }
    // Honour back-pressure as a well-behaved writer does.
    if (!responseStream.write(piece)) {
      await new Promise((resolve) => responseStream.once('drain', resolve));
    }
    i++;
  }
  if (event.fail_after === i) {
    throw new Error(`failed after ${i} chunks`);
  }
  if (event.sleep_ms) {
    await sleep(event.sleep_ms);
  }
  console.log(`streamed ${i} chunks for ${context.awsRequestId}`);
  responseStream.end();
});

// A plain (buffered) handler in the same package, for comparison.
exports.buffered = async (event) => ({ echo: event });
