/**
 * The dispatcher suite of dispatcher.test.ts again, delivering through the sender thread (the
 * default --trigger-sender) instead of in-process: the same behaviour either way.
 */
import { useSender } from './setup.js';

useSender('thread');
await import('./dispatcher.test.js');
