/**
 * What an app plugin (console, metrics, live events, client script) is given by buildApp
 * (src/app.ts): the guards of the API groups, to protect its routes like theirs, and a feed of
 * every answered request.
 */
import type { FastifyInstance } from 'fastify';
import type { ApiGroup, Guard } from './auth.js';

/** Called once per answered request, from Fastify's onResponse hook. */
export type AnswerListener = (
  method: string,
  route: string,
  status: number,
  seconds: number,
) => void;

export interface PluginContext {
  guards: Partial<Record<ApiGroup, Guard>>;
  /** Observe every answered request (metrics). */
  onAnswer: (listener: AnswerListener) => void;
}

/** Registered on the root instance after the core API. */
export type AppPlugin = (app: FastifyInstance, ctx: PluginContext) => Promise<void>;
