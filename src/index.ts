// The package's root entry point (`import … from 'canvas-batch'`): the public surfaces of the folders a host uses,
// the same ones package.json "exports" names as subpaths. OrchestratorModule is the way in; the rest are its ports
// (AgentRunner, MemoryStore, TaskStore, EventLog, Dispatcher), the services it exports and their types, plus the HTTP
// edge for a host that serves the module's routes. Nothing here loads the standalone server (main.ts, bootstrap.ts,
// app.module.ts) or the CLI.
export * from './orchestrator';
export * from './agent';
export * from './session';
export * from './memory';
export * from './canvas';
export * from './planning';
export { configureHttpEdge, type HttpEdge, type HttpEdgeOptions } from './common';
