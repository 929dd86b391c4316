import { createApp, migrateDatabase } from './app/compose';
import { loadConfig } from './config/load';
import { VitrineError } from './domain/errors';

/**
 * CLI entry: `vitrine [serve|migrate] [--config PATH]`. A bad configuration prints its
 * message (every bad key) and exits 1 without a stack trace.
 */
const USAGE = 'usage: vitrine [serve|migrate] [--config PATH]';

interface Cli {
  command: 'serve' | 'migrate';
  configPath?: string;
}

function parseArgs(args: readonly string[]): Cli {
  let command: Cli['command'] | undefined;
  let configPath: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--config') {
      configPath = args[++i];
      if (configPath === undefined) throw new UsageError('--config needs a path');
    } else if (arg.startsWith('--config=')) {
      configPath = arg.slice('--config='.length);
    } else if ((arg === 'serve' || arg === 'migrate') && command === undefined) {
      command = arg;
    } else if (arg === '--help' || arg === '-h') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else {
      throw new UsageError(`unexpected argument ${JSON.stringify(arg)}`);
    }
  }
  return { command: command ?? 'serve', configPath };
}

class UsageError extends Error {}

async function serve(configPath: string | undefined): Promise<void> {
  const config = loadConfig({ configPath });
  const app = await createApp(config);
  const url = await app.listen();
  app.logger.info({ url, graphql: `${url}/graphql`, mode: config.mode }, `Vitrine listening on ${url} (GraphQL at ${url}/graphql)`);

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    app.logger.info({ signal }, 'shutting down');
    app.close().then(
      () => process.exit(0),
      (err: unknown) => {
        app.logger.error({ err }, 'error while shutting down');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

async function main(): Promise<void> {
  const cli = parseArgs(process.argv.slice(2));
  if (cli.command === 'migrate') {
    const config = loadConfig({ configPath: cli.configPath });
    await migrateDatabase(config);
    process.stdout.write(`${config.database.driver} database is up to date\n`);
    return;
  }
  await serve(cli.configPath);
}

main().catch((err: unknown) => {
  if (err instanceof UsageError) {
    process.stderr.write(`${err.message}\n${USAGE}\n`);
    process.exit(2);
  }
  if (err instanceof VitrineError && err.code === 'CONFIG_INVALID') {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
  process.stderr.write(`Vitrine failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
