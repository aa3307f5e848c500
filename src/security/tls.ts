/** TLS and mutual-TLS listener options, read from PEM files and re-read on SIGHUP. */
import { readFileSync } from 'node:fs';
import type { Server as HttpsServer, ServerOptions as HttpsServerOptions } from 'node:https';
import { createSecureContext } from 'node:tls';
import { ConfigError } from '../config.js';

export interface TlsFiles {
  cert: string;
  key: string;
  /** Client CA (mutual TLS). */
  ca?: string | undefined;
}

export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
}

function read(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new ConfigError(`${what}: cannot read '${path}': ${(e as Error).message}`);
  }
}

/** Reads the files and checks they make a usable context (key matches certificate, PEM parses). */
export function readTlsMaterial(files: TlsFiles): TlsMaterial {
  const material: TlsMaterial = {
    cert: read(files.cert, '--tls-cert'),
    key: read(files.key, '--tls-key'),
    ...(files.ca === undefined ? {} : { ca: read(files.ca, '--tls-client-ca') }),
  };
  try {
    createSecureContext(material);
  } catch (e) {
    throw new ConfigError(`TLS certificate/key/CA files are not usable: ${(e as Error).message}`);
  }
  return material;
}

/**
 * Options for https.createServer. With a client CA the server asks every client for a
 * certificate but does not abort the handshake without one (`rejectUnauthorized: false`): each
 * API group's guard decides, so probes, docs and unprotected groups still answer.
 */
export function httpsOptions(files: TlsFiles): HttpsServerOptions {
  const material = readTlsMaterial(files);
  return {
    ...material,
    minVersion: 'TLSv1.2',
    ...(material.ca ? { requestCert: true, rejectUnauthorized: false } : {}),
  };
}

/** Re-reads the files into the running server; new connections use them, open ones are kept. */
export function reloadTls(server: HttpsServer, files: TlsFiles): void {
  server.setSecureContext({ ...readTlsMaterial(files), minVersion: 'TLSv1.2' });
}
