-- Kindling state, version 3: the trace header an Event invocation was accepted with, so that
-- every attempt (and the function destinations it reaches) continues the same trace.

ALTER TABLE async_events ADD COLUMN trace_header TEXT;
