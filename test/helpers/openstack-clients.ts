import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

/**
 * The real OpenStack clients from Debian (python3-glanceclient 4.1, python3-openstackclient
 * 6.0; scripts/install-clients), run against a Vitrine started by the test, without
 * Keystone: glance with --os-image-url/--os-auth-token, openstack with the admin_token
 * plugin (it sends the token as X-Auth-Token). A missing client fails the suite.
 */
export const GLANCE = '/usr/bin/glance';
export const OPENSTACK = '/usr/bin/openstack';

export function requireClients(): void {
  for (const client of [GLANCE, OPENSTACK]) {
    if (!existsSync(client)) throw new Error(`${client} is missing: run scripts/install-clients (python3-glanceclient, python3-openstackclient)`);
  }
}

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The client's environment: nothing from ours that could point it elsewhere; `home` holds its caches. */
function clientEnv(home: string, extra: Record<string, string>): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: home, LANG: 'C.UTF-8', PYTHONWARNINGS: 'ignore', NO_PROXY: '127.0.0.1,localhost', no_proxy: '127.0.0.1,localhost', ...extra };
}

/**
 * glanceclient runs with stdin *closed* (`<&-`), not empty: it uploads stdin whenever it is
 * not a terminal, so an open /dev/null would turn every create into a 0-byte upload.
 * openstackclient 6.0 crashes on a closed stdin, so it gets /dev/null and always --file.
 */
export function runClient(home: string, command: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  const script = command === GLANCE ? 'exec "$0" "$@" <&-' : 'exec "$0" "$@"';
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', script, command, ...args], { env: clientEnv(home, env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

export async function runClientOk(home: string, command: string, args: string[]): Promise<string> {
  const result = await runClient(home, command, args);
  if (result.code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.code}\n${result.stderr}\n${result.stdout}`);
  return result.stdout;
}

/** glanceclient's "Property | Value" table as an object (wrapped values re-joined). */
export function parseTable(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let last: string | undefined;
  for (const line of text.split('\n')) {
    if (!line.startsWith('|')) continue;
    const [, key, value] = line.split('|').map((cell) => cell.trim());
    if (key === 'Property' || key === 'ID') continue;
    if (key) out[(last = key)] = value;
    else if (last) out[last] += value;
  }
  return out;
}

/** Rows of a glanceclient list table, as arrays of cells. */
export function parseRows(text: string): string[][] {
  return text.split('\n').filter((l) => l.startsWith('|')).map((l) => l.split('|').slice(1, -1).map((c) => c.trim())).slice(1);
}
