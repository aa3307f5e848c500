/** TLS and mutual-TLS listener options, read from PEM files and re-read on SIGHUP. */
import { readFileSync } from 'node:fs';
import type { Server as HttpsServer, ServerOptions as HttpsServerOptions } from 'node:https';
import type { Socket } from 'node:net';
import { createSecureContext, type Server as TlsServer } from 'node:tls';
import { ConfigError } from '../errors.js';
import { problemBody } from '../http/problem.js';

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

/** A TLS connection opens with a handshake record (0x16); an ASCII capital opens an HTTP request. */
const TLS_HANDSHAKE_RECORD = 0x16;
const isHttpMethodLetter = (byte: number | undefined) =>
  byte !== undefined && byte >= 0x41 && byte <= 0x5a;

const PLAIN_HTTP_ANSWER = (() => {
  const problem = problemBody('https_required', 'this port speaks HTTPS only: use an https:// URL');
  const body = JSON.stringify(problem);
  return (
    `HTTP/1.1 ${problem.status} ${problem.title}\r\nContent-Type: application/problem+json; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
  );
})();

/**
 * Puts a check in front of the TLS server's handshake: a client must send its first byte within
 * `firstByteTimeout` (node waits 120 s, so connections that never send a ClientHello held a
 * descriptor each that long; the server's `handshakeTimeout` bounds the handshake from there),
 * and a plain HTTP request gets a short `400` telling it to use https:// instead of a dropped
 * connection. The first bytes are put back for the TLS socket, which reads what is buffered.
 * Returns the server.
 */
export function checkBeforeHandshake<S extends TlsServer>(server: S, firstByteTimeout: number): S {
  // tls.Server starts the handshake from its one 'connection' listener.
  const startTls = server.listeners('connection')[0] as ((socket: Socket) => void) | undefined;
  if (!startTls) throw new Error('the TLS server has no connection listener');
  server.removeListener('connection', startTls);
  server.on('connection', (socket: Socket) => {
    // A reset before the first byte would otherwise be an unhandled 'error'.
    socket.on('error', () => socket.destroy());
    socket.setTimeout(firstByteTimeout, () => socket.destroy());
    socket.once('data', (first: Buffer) => {
      socket.pause();
      socket.unshift(first);
      if (first[0] !== TLS_HANDSHAKE_RECORD && isHttpMethodLetter(first[0])) {
        // Answer, then read and drop the rest until the client closes (no reset under its
        // feet), within the same timeout.
        socket.end(PLAIN_HTTP_ANSWER);
        socket.resume();
        return;
      }
      socket.setTimeout(0);
      startTls.call(server, socket);
    });
  });
  return server;
}
