// Interop (2.1 §6.1.25) and Log (2.1 §6.1.28): test-harness framing used by the 2.1 baseline
// profile (BL-M-*). Interop Begin/End/Reset marks a test case; Log asks the server to log a line.
// Neither touches any object; both are recorded in the service log.
import { ResultReason, Tag, InteropFunction } from '../kmip/registry/generated.js';
import { KmipError } from '../kmip/errors.js';
import type { OperationHandler } from './context.js';

export const interop: OperationHandler = async (ctx, payload) => {
  const fn = payload.requiredEnumeration(Tag.InteropFunction);
  const name = Object.entries(InteropFunction).find(([, v]) => v === fn)?.[0];
  if (!name) throw new KmipError(ResultReason.InvalidField, `unknown Interop Function ${fn}`);
  ctx.log.info({ client: ctx.client.commonName, interop: name, id: payload.text(Tag.InteropIdentifier) }, 'interop');
  return [];
};

export const log: OperationHandler = async (ctx, payload) => {
  // The text is the client's: logged as a bounded string field, never interpreted.
  ctx.log.info({ client: ctx.client.commonName, clientLog: payload.requiredText(Tag.LogMessage).slice(0, 1024) }, 'client log message');
  return [];
};
