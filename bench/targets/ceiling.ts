// Starts the bare Fastify ceiling server (servers/ceiling-server.ts) in its
// own process, so it never shares an event loop with the load generator.
import { join } from 'node:path';
import { BenchContext } from '../lib/context';
import { requestJson } from '../lib/http';
import { startService, waitForHttp } from '../lib/proc';

export interface CeilingTarget {
  url: string;
  pid: number;
  /** Serves `body` (exact bytes) for the named route from now on. */
  setFixture(name: string, body: string, status?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startCeiling(ctx: BenchContext): Promise<CeilingTarget> {
  const port = ctx.opts.ceilingPort;
  const url = `http://127.0.0.1:${port}`;
  ctx.log(`starting the bare Fastify ceiling on ${url}`);
  const svc = startService({
    name: 'ceiling',
    command: process.execPath,
    args: ['--import', 'tsx', join(__dirname, '..', 'servers', 'ceiling-server.ts'), String(port)],
    cwd: ctx.opts.repoRoot,
    env: { ...process.env, NODE_ENV: 'production' },
    logFile: join(ctx.workDir, 'ceiling.log'),
  });
  await waitForHttp(`${url}/healthz`, 20_000, svc);
  return {
    url,
    pid: svc.pid,
    async setFixture(name, body, status = 200) {
      const res = await requestJson(`${url}/__fixtures/${name}`, { method: 'PUT', body: { body, status } });
      if (res.status !== 200) throw new Error(`ceiling fixture ${name}: HTTP ${res.status}`);
    },
    stop: () => svc.stop(),
  };
}
