/**
 * GET /ztp/client.sh and /ztp/client.py: the POSIX sh and Python device clients for devices
 * without Node.js, with this server's URL filled in, so `curl -fsS http://server:8080/ztp/client.sh | sh`
 * registers a Linux box. Not behind authentication: they hold no secret, and devices fetch them
 * before they have any.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { PYTHON_CLIENT } from '../client/python-script.js';
import { SHELL_CLIENT } from '../client/shell-script.js';

const PLACEHOLDER = '@@ZTP_SERVER@@';
/** Host header forms that are safe inside the script's single quotes. */
const SAFE_HOST = /^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/;

/** The URL the script was fetched from (scheme and host), or '' when the Host header is unusable. */
/**
 * The Python client with this server's URL and, for a device that presented one when fetching
 * it, its device token filled in (token syntax is safe inside the script's single quotes).
 */
export function pythonClientFor(server: string, token: string | undefined): string {
  return PYTHON_CLIENT.replace(PLACEHOLDER, server).replace('@@ZTP_TOKEN@@', token ?? '');
}

export function servedFrom(request: FastifyRequest): string {
  const host = request.host;
  return SAFE_HOST.test(host) ? `${request.protocol}://${host}` : '';
}

export async function clientScriptApi(app: FastifyInstance): Promise<void> {
  app.get(
    '/ztp/client.sh',
    {
      schema: {
        tags: ['registration'],
        summary: 'The POSIX sh device client (curl -fsS {server}/ztp/client.sh | sh)',
        description:
          'Registers the device it runs on with this server (the script has the URL it was fetched from filled in; ZTP_SERVER or --server override it). Same options and exit codes as `ztp register`.',
        response: {
          200: {
            description: 'The script',
            content: { 'text/x-shellscript': { schema: Type.String() } },
          },
        },
      },
    },
    async (request, reply) =>
      reply
        .type('text/x-shellscript; charset=utf-8')
        .header('cache-control', 'no-cache')
        .send(SHELL_CLIENT.replace(PLACEHOLDER, servedFrom(request))),
  );

  // The same for network operating systems that run ZTP scripts in Python (2.7 and 3). The
  // SAFE_HOST characters are as safe inside the script's Python string literal.
  app.get(
    '/ztp/client.py',
    {
      schema: {
        tags: ['registration'],
        summary: 'The Python device client (stdlib only, Python 2.7 and 3.6+)',
        description:
          'Registers the device it runs on with this server (the script has the URL it was fetched from filled in; ZTP_SERVER or --server override it). Same options and exit codes as `ztp register`.',
        response: {
          200: {
            description: 'The script',
            content: { 'text/x-python': { schema: Type.String() } },
          },
        },
      },
    },
    async (request, reply) =>
      reply
        .type('text/x-python; charset=utf-8')
        .header('cache-control', 'no-cache')
        .send(pythonClientFor(servedFrom(request), undefined)),
  );
}
