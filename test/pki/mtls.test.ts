import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { connect, createServer, type SecureVersion, type TLSSocket } from 'node:tls';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { initDevPki, issueClientCertificate, pkiPaths, type IssuedClient } from '../../src/pki/index.js';
import { removeTempDirs, tempDir } from './helpers.js';

interface Outcome {
  /** The server completed the handshake (secureConnection fired). */
  accepted: boolean;
  authorized?: boolean;
  authorizationError?: string;
  peerCN?: string;
  protocol?: string | null;
  serverError?: Error;
  clientError?: Error;
  clientData: string;
}

interface ServerFiles {
  key: string;
  cert: string;
  ca: string;
  /** Only for diagnosing why a client would be refused; kmipd always rejects. */
  rejectUnauthorized?: boolean;
}

/** One connection against a server configured the way kmipd's listener will be. */
async function handshake(
  server: ServerFiles,
  client: { key?: string; cert?: string; ca: string; servername?: string },
  version: SecureVersion,
): Promise<Outcome> {
  const outcome: Outcome = { accepted: false, clientData: '' };
  const srv = createServer({
    key: server.key,
    cert: server.cert,
    ca: server.ca,
    requestCert: true,
    rejectUnauthorized: server.rejectUnauthorized ?? true,
    minVersion: 'TLSv1.2',
  });
  const serverDone = new Promise<void>((resolve) => {
    srv.on('secureConnection', (socket: TLSSocket) => {
      outcome.accepted = true;
      outcome.authorized = socket.authorized;
      outcome.authorizationError = socket.authorizationError?.toString();
      const cn = socket.getPeerCertificate().subject?.CN; // string[] if the cert has several CNs
      outcome.peerCN = Array.isArray(cn) ? cn.join(',') : cn;
      outcome.protocol = socket.getProtocol();
      socket.end(`hello ${outcome.peerCN}\n`);
      resolve();
    });
    srv.on('tlsClientError', (err) => {
      outcome.serverError = err;
      resolve();
    });
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as AddressInfo;
  try {
    const clientDone = new Promise<void>((resolve) => {
      const sock = connect({
        host: '127.0.0.1',
        port,
        ca: client.ca,
        key: client.key,
        cert: client.cert,
        servername: client.servername,
        minVersion: version,
        maxVersion: version,
      });
      sock.setEncoding('utf8');
      sock.on('data', (d: string) => (outcome.clientData += d));
      sock.on('error', (err) => (outcome.clientError = err));
      sock.on('close', () => resolve());
    });
    await Promise.all([serverDone, clientDone]);
    return outcome;
  } finally {
    await new Promise<void>((resolve) => srv.close(() => resolve()));
  }
}

afterAll(removeTempDirs);

describe.each(['TLSv1.2', 'TLSv1.3'] as const)('mutual TLS over %s', (version) => {
  let server: ServerFiles;
  let enrolled: IssuedClient;
  let foreign: IssuedClient;
  let foreignCa: string;

  beforeAll(async () => {
    const [dir, otherDir] = await Promise.all([tempDir(), tempDir()]);
    const { paths } = await initDevPki(dir);
    server = {
      key: await readFile(paths.serverKey, 'utf8'),
      cert: await readFile(paths.serverCert, 'utf8'),
      ca: await readFile(paths.caCert, 'utf8'),
    };
    enrolled = await issueClientCertificate(dir, 'vcenter-01');
    // A second, unrelated dev PKI: its clients must not get in.
    await initDevPki(otherDir);
    foreign = await issueClientCertificate(otherDir, 'vcenter-01');
    foreignCa = await readFile(pkiPaths(otherDir).caCert, 'utf8');
  });

  it('accepts an enrolled client and sees its CN', async () => {
    const o = await handshake(server, { key: enrolled.keyPem, cert: enrolled.certPem, ca: enrolled.caPem }, version);
    expect(o.serverError).toBeUndefined();
    expect(o.clientError).toBeUndefined();
    expect(o.accepted).toBe(true);
    expect(o.authorized).toBe(true);
    expect(o.peerCN).toBe('vcenter-01');
    expect(o.protocol).toBe(version);
    expect(o.clientData).toBe('hello vcenter-01\n');
  });

  it('matches the server certificate by DNS name too', async () => {
    const o = await handshake(
      server,
      { key: enrolled.keyPem, cert: enrolled.certPem, ca: enrolled.caPem, servername: 'localhost' },
      version,
    );
    expect(o.clientError).toBeUndefined();
    expect(o.authorized).toBe(true);
  });

  it('refuses a client certificate from a different CA', async () => {
    // The client trusts our server; only its own certificate is foreign.
    const o = await handshake(server, { key: foreign.keyPem, cert: foreign.certPem, ca: server.ca }, version);
    expect(o.accepted).toBe(false);
    expect(o.serverError).toBeDefined();
    expect(o.clientData).toBe('');
    // Same connection with verification made non-fatal shows why: the chain does not lead to our CA.
    const diag = await handshake(
      { ...server, rejectUnauthorized: false },
      { key: foreign.keyPem, cert: foreign.certPem, ca: server.ca },
      version,
    );
    expect(diag.accepted).toBe(true);
    expect(diag.authorized).toBe(false);
    expect(diag.peerCN).toBe('vcenter-01');
    expect(diag.authorizationError).toMatch(/ISSUER|SIGNATURE|SELF_SIGNED/);
  });

  it('refuses a client without a certificate', async () => {
    const o = await handshake(server, { ca: server.ca }, version);
    expect(o.accepted).toBe(false);
    expect(o.serverError).toBeDefined();
    expect(o.clientData).toBe('');
  });

  it('a client that trusts another CA rejects our server', async () => {
    const o = await handshake(server, { key: foreign.keyPem, cert: foreign.certPem, ca: foreignCa }, version);
    expect(o.accepted).toBe(false);
    expect(o.clientError).toBeDefined();
    expect(o.clientData).toBe('');
  });
});
