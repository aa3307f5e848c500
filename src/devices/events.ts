/**
 * The events the device features publish after a commit, and what they publish them to (the
 * app's EventBus, events/bus.ts, fits). Defined here, by the publisher, so that devices/ needs
 * nothing of events/ (which imports these types: no cycle between the folders).
 */
import type { TriggerEvent } from '../triggers/outbox.js';
import type { Device } from './store.js';

export type DeviceEvent =
  | { type: 'registered'; device: Device; created: boolean }
  | { type: 'edited'; device: Device }
  | { type: 'deleted'; device: Device };

export interface DeviceEventSink {
  emit(event: DeviceEvent | TriggerEvent): void;
}
