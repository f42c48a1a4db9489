/**
 * Preloaded into a service process by a test (NODE_OPTIONS=--require …): on SIGUSR2 it takes every thread of libuv's
 * file pool with an `open` of a FIFO no one writes to — what a hung network drive under the vault does to the
 * service's file calls. The FIFOs are named by WEDGE_FIFOS (comma-separated).
 */
import { promises as fs } from 'node:fs';

process.on('SIGUSR2', () => {
  for (const fifo of (process.env.WEDGE_FIFOS ?? '').split(',').filter(Boolean)) {
    fs.open(fifo, 'r').catch(() => undefined);
  }
});
