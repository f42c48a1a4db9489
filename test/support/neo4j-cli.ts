/**
 * The Neo4j test launcher from the command line (used by .ci/run; handy locally):
 *
 *   node -r @swc-node/register test/support/neo4j-cli.ts build
 *   node -r @swc-node/register test/support/neo4j-cli.ts start [--port N] [--data DIR] [--write-env FILE]
 *
 * `start` builds the launcher if needed, starts Neo4j, prints NEO4J_URI/NEO4J_USER/NEO4J_PASSWORD lines (also into
 * --write-env once ready, for `source`), and runs until SIGTERM/SIGINT, when it stops Neo4j cleanly.
 */
import { writeFileSync } from 'node:fs';
import { buildLauncher, launcherBuilt, Neo4jServer } from './neo4j';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const command = process.argv[2];
  if (command === 'build') {
    const t = Date.now();
    buildLauncher();
    process.stdout.write(`neo4j launcher built in ${((Date.now() - t) / 1000).toFixed(1)} s\n`);
    return;
  }
  if (command !== 'start') {
    process.stderr.write('usage: neo4j-cli.ts build | start [--port N] [--data DIR] [--write-env FILE]\n');
    process.exit(2);
  }
  if (!launcherBuilt()) buildLauncher();
  const port = arg('--port');
  const server = await Neo4jServer.start({
    port: port ? Number(port) : undefined,
    dataDir: arg('--data'),
  });
  const env =
    `NEO4J_URI=${server.uri}\nNEO4J_USER=${server.user}\nNEO4J_PASSWORD=${server.password}\n` +
    `NEO4J_STARTUP_MS=${server.startupMs}\n`;
  process.stdout.write(env);
  const envFile = arg('--write-env');
  if (envFile) writeFileSync(envFile, env.replace(/^/gm, 'export ').replace(/export $/, ''));
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    server.dispose().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
