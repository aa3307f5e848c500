/**
 * The one seam for where manager calls run (--trigger-sender): in a worker thread of their own
 * (sender-thread.ts), so that a burst of calls does not take the request handlers' event loop,
 * or inline on the server's event loop (manager-client.ts), the simple path.
 */
import type { TriggerSender } from './dispatcher.js';
import type { ManagerClientOptions } from './manager-client.js';

export type TriggerSenderMode = 'thread' | 'inline';

export interface ClosableTriggerSender extends TriggerSender {
  close(): Promise<void>;
}

export async function openTriggerSender(
  mode: TriggerSenderMode,
  opts: ManagerClientOptions,
): Promise<ClosableTriggerSender> {
  // Imported on demand: the bundle then keeps each in a chunk of its own, and the trigger thread
  // loads only its chunk (it runs that module), not the whole server.
  if (mode === 'inline') {
    const { ManagerClient } = await import('./manager-client.js');
    return new ManagerClient(opts);
  }
  const { ThreadedSender } = await import('./sender-thread.js');
  return new ThreadedSender(opts);
}
