/**
 * In-process bus of committed changes. Emitted only after the write that caused the event has
 * committed. Consumers: the SSE stream (/ztp/mng/events), metrics. With several replicas each one
 * sees its own registrations' events and the trigger changes it makes itself.
 */
import { EventEmitter } from 'node:events';
import type { DeviceEvent } from '../devices/events.js';
import type { ReportEvent } from '../reports/store.js';
import type { TriggerEvent } from '../triggers/outbox.js';

/**
 * Every feature's events (each feature defines its own: devices/events.ts, triggers/outbox.ts,
 * reports/store.ts).
 */
export type RegistryEvent = DeviceEvent | TriggerEvent | ReportEvent;

export class EventBus {
  private readonly emitter = new EventEmitter();

  constructor() {
    // Every SSE client is one listener; the SSE layer bounds how many it accepts.
    this.emitter.setMaxListeners(0);
  }

  emit(event: RegistryEvent): void {
    this.emitter.emit('event', event);
  }

  subscribe(listener: (event: RegistryEvent) => void): () => void {
    this.emitter.on('event', listener);
    return () => this.emitter.off('event', listener);
  }

  listenerCount(): number {
    return this.emitter.listenerCount('event');
  }
}
