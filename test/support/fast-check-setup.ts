import fc from 'fast-check';

// Property tests explore new random cases on every local run. In CI they replay a fixed seed, so a landing never
// depends on luck; set FC_SEED to replay any seed a failure printed.
const seed = process.env.FC_SEED ?? (process.env.CI ? '20261126' : undefined);
if (seed !== undefined) fc.configureGlobal({ seed: Number(seed) });
