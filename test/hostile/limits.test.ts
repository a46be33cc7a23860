// The limit plumbing on its own: configuration values checked, attribute counting, the request
// screen's answers per version, and the per-connection timers (driven by fake timers: no waiting).
import { afterEach, describe, expect, it, vi } from 'vitest';
import { enumeration, integer, structure, textString } from '../../src/ttlv/index.js';
import { Operation, ResultReason, Tag } from '../../src/kmip/registry/generated.js';
import { parseRequest } from '../../src/kmip/message.js';
import { DEFAULT_LIMITS, resolveLimits } from '../../src/server/limits.js';
import { countAttributes, requestScreen } from '../../src/server/request-limits.js';
import { ClientConnectionCounter, ConnectionTimers, type Expiry } from '../../src/server/connection-guard.js';
import { requestMessage } from '../helpers/kmip-client.js';

describe('resolveLimits', () => {
  it('fills in defaults and keeps given values', () => {
    expect(resolveLimits(undefined)).toEqual(DEFAULT_LIMITS);
    expect(resolveLimits({ idleTimeoutMs: 1500, maxBatchItems: undefined })).toEqual({ ...DEFAULT_LIMITS, idleTimeoutMs: 1500 });
  });

  it.each([
    [{ maxMessageSize: 8 }, /maxMessageSize must be an integer of at least 64/],
    [{ maxConnections: 0 }, /at least 1/],
    [{ readTimeoutMs: 1.5 }, /integer/],
    [{ idleTimeoutMs: '1000' }, /integer/],
    [{ maxConections: 5 }, /unknown limit "maxConections"/],
  ])('refuses %j', (partial, message) => {
    expect(() => resolveLimits(partial)).toThrow(message);
  });
});

describe('countAttributes', () => {
  const a1 = (name: string) => structure(Tag.Attribute, [textString(Tag.AttributeName, name), textString(Tag.AttributeValue, 'v')]);
  it('counts 1.x Attribute structures, 2.x attribute lists, names and references', () => {
    const v1 = structure(Tag.RequestPayload, [enumeration(Tag.ObjectType, 2), structure(Tag.TemplateAttribute, [a1('a'), a1('b'), a1('c')])]);
    expect(countAttributes(v1)).toBe(3);
    const v2 = structure(Tag.RequestPayload, [structure(Tag.Attributes, [integer(Tag.CryptographicLength, 256), enumeration(Tag.CryptographicAlgorithm, 3)])]);
    expect(countAttributes(v2)).toBe(2);
    const names = structure(Tag.RequestPayload, [textString(Tag.UniqueIdentifier, 'x'), textString(Tag.AttributeName, 'State'), textString(Tag.AttributeName, 'Name')]);
    expect(countAttributes(names)).toBe(2);
    expect(countAttributes(undefined)).toBe(0);
  });

  it('stops early on a huge payload', () => {
    const many = structure(Tag.RequestPayload, Array.from({ length: 5000 }, (_, i) => a1(`x-${i}`)));
    expect(countAttributes(many, 10)).toBe(11);
  });
});

describe('requestScreen', () => {
  const screen = requestScreen({ maxBatchItems: 2, maxAttributes: 3 });
  const discover = { operation: Operation.DiscoverVersions, payload: [] };

  it('lets a request within the limits through', () => {
    expect(screen(parseRequest(requestMessage({ major: 1, minor: 4 }, [discover, discover])))).toBeUndefined();
  });

  it('answers Invalid Message in 1.x and Server Limit Exceeded in 2.x', () => {
    expect(screen(parseRequest(requestMessage({ major: 1, minor: 2 }, [discover, discover, discover])))?.reason).toBe(ResultReason.InvalidMessage);
    expect(screen(parseRequest(requestMessage({ major: 2, minor: 0 }, [discover, discover, discover])))?.reason).toBe(ResultReason.ServerLimitExceeded);
    const payload = [structure(Tag.Attributes, [1, 2, 3, 4].map((n) => integer(Tag.CryptographicLength, n)))];
    expect(screen(parseRequest(requestMessage({ major: 2, minor: 1 }, [{ operation: Operation.Create, payload }])))?.message).toMatch(/batch item 1 holds more than 3 attributes/);
  });
});

describe('ClientConnectionCounter', () => {
  it('admits up to the limit per fingerprint and frees on release', () => {
    const c = new ClientConnectionCounter(2);
    expect([c.tryAcquire('a'), c.tryAcquire('a'), c.tryAcquire('a'), c.tryAcquire('b')]).toEqual([true, true, false, true]);
    c.release('a');
    expect(c.tryAcquire('a')).toBe(true);
    c.release('a');
    c.release('a');
    expect(c.count('a')).toBe(0);
  });
});

describe('ConnectionTimers', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  function timers() {
    vi.useFakeTimers();
    const fired: Expiry[] = [];
    const t = new ConnectionTimers({ idleTimeoutMs: 1000, readTimeoutMs: 300 }, (why) => fired.push(why));
    return { t, fired };
  }

  it('closes a silent connection after the idle timeout', () => {
    const { fired } = timers();
    vi.advanceTimersByTime(999);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(fired).toEqual(['idle']);
  });

  it('does not count idle time while a request is being answered', () => {
    const { t, fired } = timers();
    t.received(0, 1); // a whole request arrived
    vi.advanceTimersByTime(5000); // a slow HSM
    expect(fired).toEqual([]);
    t.answered();
    vi.advanceTimersByTime(1000);
    expect(fired).toEqual(['idle']);
  });

  it('gives a started request an absolute read deadline, however the bytes trickle in', () => {
    const { t, fired } = timers();
    for (let i = 1; i <= 5; i++) {
      t.received(i, 0); // one more byte of the same request
      vi.advanceTimersByTime(60);
    }
    expect(fired).toEqual(['read']);
  });

  it('restarts the read deadline for each request and stops it while reading is paused', () => {
    const { t, fired } = timers();
    t.received(10, 0);
    vi.advanceTimersByTime(250);
    t.received(4, 1); // the first request completed, the next one started
    vi.advanceTimersByTime(250);
    expect(fired).toEqual([]);
    t.setPaused(true); // backpressure: the missing bytes are ours to read
    vi.advanceTimersByTime(10_000);
    expect(fired).toEqual([]);
    t.setPaused(false);
    vi.advanceTimersByTime(300);
    expect(fired).toEqual(['read']);
  });

  it('fires nothing once stopped', () => {
    const { t, fired } = timers();
    t.received(3, 0);
    t.stop();
    vi.advanceTimersByTime(10_000);
    expect(fired).toEqual([]);
  });
});
