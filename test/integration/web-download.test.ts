import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import { VitrineError } from '../../src/domain/errors';
import { checkImportUrl, DEFAULT_URL_FILTER, openWebDownload, type UrlFilter, type WebDownloadOptions } from '../../src/backends/native/web-download';

/**
 * The web-download fetcher against real HTTP servers on loopback: Glance's URL filter
 * (schemes, hosts, ports, numeric shorthands), the private-address refusal and its
 * exceptions, redirects re-checked hop by hop, size caps, stalls, upstream errors and
 * aborts. An injected `lookup` stands in for DNS only where a name must resolve to a
 * chosen address (fault injection); everything else goes through the real resolver.
 */

interface TestServer {
  port: number;
  /** `http://<host>:<port><path>` */
  url: (path: string) => string;
  /** Paths requested, in order. */
  hits: string[];
  /** Host headers received, in order. */
  hosts: string[];
  close: () => Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse, server: TestServer) => void;

const servers: TestServer[] = [];

async function serve(handler: Handler, host = '127.0.0.1', port = 0): Promise<TestServer> {
  const http: Server = createServer();
  http.listen(port, host);
  await once(http, 'listening');
  const bound = (http.address() as AddressInfo).port;
  const literal = host.includes(':') ? `[${host}]` : host;
  const server: TestServer = {
    port: bound,
    url: (path) => `http://${literal}:${bound}${path}`,
    hits: [],
    hosts: [],
    close: () =>
      new Promise<void>((resolve) => {
        http.closeAllConnections();
        http.close(() => resolve());
      }),
  };
  http.on('request', (req, res) => {
    server.hits.push(req.url ?? '');
    server.hosts.push(req.headers.host ?? '');
    handler(req, res, server);
  });
  servers.push(server);
  return server;
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** Loopback servers listen on random ports: no port list, private addresses allowed. */
function filter(overrides: Partial<UrlFilter> = {}): UrlFilter {
  return { ...DEFAULT_URL_FILTER, allowedPorts: [], allowPrivate: true, ...overrides };
}

function options(overrides: Partial<WebDownloadOptions> = {}): WebDownloadOptions {
  return { filter: filter(), maxBytes: 64 * 1024 * 1024, connectTimeoutMs: 2000, idleTimeoutMs: 2000, maxRedirects: 5, ...overrides };
}

function bytes(n: number, seed = 7): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 131 + seed + (i >> 12)) & 0xff;
  return b;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Reads a body to its end: its bytes, or the error it failed with. */
async function drain(body: Readable): Promise<{ data: Buffer; error?: unknown }> {
  const parts: Buffer[] = [];
  try {
    for await (const chunk of body) parts.push(chunk as Buffer);
    return { data: Buffer.concat(parts) };
  } catch (error) {
    return { data: Buffer.concat(parts), error };
  }
}

/** Sends `data` in pieces, letting the event loop turn between them (a streamed body). */
function streamOut(res: ServerResponse, data: Buffer, piece = 64 * 1024): void {
  let at = 0;
  const more = () => {
    while (at < data.length) {
      const ok = res.write(data.subarray(at, at + piece));
      at += piece;
      if (!ok) return void res.once('drain', more);
    }
    res.end();
  };
  more();
}

async function refusal(work: Promise<unknown>): Promise<VitrineError> {
  const error = await work.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(VitrineError);
  return error as VitrineError;
}

// ---- streaming -----------------------------------------------------------------------------

describe('streaming', () => {
  it('streams several MiB with the exact bytes, announcing the length and type', async () => {
    const data = bytes(5 * 1024 * 1024 + 123);
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-qemu-disk', 'content-length': data.length });
      streamOut(res, data);
    });
    const download = await openWebDownload(server.url('/disk.qcow2?v=1'), options());
    expect(download).toMatchObject({ size: data.length, contentType: 'application/x-qemu-disk', finalUrl: server.url('/disk.qcow2?v=1') });
    const got = await drain(download.body);
    expect(got.error).toBeUndefined();
    expect(got.data.length).toBe(data.length);
    expect(sha256(got.data)).toBe(sha256(data));
    expect(server.hits).toEqual(['/disk.qcow2?v=1']);
  });

  it('streams a chunked body without a length (size null)', async () => {
    const data = bytes(3 * 1024 * 1024, 3);
    const server = await serve((_req, res) => {
      res.writeHead(200);
      streamOut(res, data, 10_000);
    });
    const download = await openWebDownload(server.url('/x'), options());
    expect(download.size).toBeNull();
    const got = await drain(download.body);
    expect(got.error).toBeUndefined();
    expect(sha256(got.data)).toBe(sha256(data));
  });

  it('does not count a slow reader as a stalled server', async () => {
    const data = bytes(4 * 1024 * 1024, 5);
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': data.length });
      streamOut(res, data);
    });
    const download = await openWebDownload(server.url('/x'), options({ idleTimeoutMs: 150 }));
    const first = await new Promise<Buffer>((resolve) => download.body.once('readable', () => resolve(download.body.read() as Buffer)));
    // The reader holds back for longer than the idle timeout while the server has sent everything.
    await new Promise((r) => setTimeout(r, 450));
    const rest = await drain(download.body);
    expect(rest.error).toBeUndefined();
    expect(sha256(Buffer.concat([first, rest.data]))).toBe(sha256(data));
  });
});

// ---- private addresses ------------------------------------------------------------------

describe('private and loopback addresses', () => {
  it('refuses a loopback server by default, saying why, before connecting', async () => {
    const server = await serve((_req, res) => res.end('secret'));
    const defaults = { ...DEFAULT_URL_FILTER, allowedPorts: [] };
    const checked = await refusal(checkImportUrl(server.url('/'), defaults));
    expect(checked.code).toBe('URL_FORBIDDEN');
    expect(checked.status).toBe(400);
    expect(checked.message).toBe('URI for web-download does not pass filtering: host 127.0.0.1 is a loopback address; only public addresses are fetched unless the configuration allows private ones or lists the host');
    const opened = await refusal(openWebDownload(server.url('/'), options({ filter: defaults })));
    expect(opened.message).toBe(checked.message);
    expect(server.hits).toEqual([]);
  });

  it('refuses a name that resolves to a private address, or to any private one among several', async () => {
    const ten = async () => ['10.0.0.1'];
    const mixed = async () => ['93.184.215.14', '192.168.1.20'];
    const defaults = DEFAULT_URL_FILTER;
    expect((await refusal(checkImportUrl('http://images.example.com/a.img', defaults, ten))).message).toContain('host images.example.com resolves to 10.0.0.1, a private address');
    expect((await refusal(checkImportUrl('http://images.example.com/a.img', defaults, mixed))).message).toContain('resolves to 192.168.1.20, a private address');
    const mapped = async () => ['::ffff:127.0.0.1'];
    expect((await refusal(checkImportUrl('https://images.example.com/a.img', defaults, mapped))).message).toContain('a loopback address');
    // A public answer passes the check (nothing is fetched here).
    expect((await checkImportUrl('https://images.example.com/a.img', defaults, async () => ['93.184.215.14'])).hostname).toBe('images.example.com');
  });

  it('accepts a name that does not resolve (yet), as Glance does, and refuses to fetch from it', async () => {
    const nowhere = async () => {
      throw Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' });
    };
    expect((await checkImportUrl('http://images.example.com/a.img', DEFAULT_URL_FILTER, nowhere)).hostname).toBe('images.example.com');
    expect((await checkImportUrl('http://images.example.com/a.img', DEFAULT_URL_FILTER, async () => [])).hostname).toBe('images.example.com');
    const error = await refusal(openWebDownload('http://images.example.com/a.img', options({ lookup: nowhere })));
    expect(error).toMatchObject({ code: 'URL_FORBIDDEN', message: 'URI for web-download does not pass filtering: host images.example.com does not resolve' });
  });

  it('fetches from loopback when allowPrivate is set', async () => {
    const server = await serve((_req, res) => res.end('hello'));
    const download = await openWebDownload(server.url('/'), options({ filter: filter({ allowPrivate: true }) }));
    expect((await drain(download.body)).data.toString()).toBe('hello');
  });

  it('fetches from a host listed in allowedHosts even though it is loopback', async () => {
    const server = await serve((_req, res) => res.end('listed'));
    const download = await openWebDownload(server.url('/'), options({ filter: filter({ allowPrivate: false, allowedHosts: ['127.0.0.1'] }) }));
    expect((await drain(download.body)).data.toString()).toBe('listed');
  });

  it('refuses ::1 by default and fetches from it when listed', async () => {
    const server = await serve((_req, res) => res.end('six'), '::1');
    expect(server.url('/')).toBe(`http://[::1]:${server.port}/`);
    const refused = await refusal(openWebDownload(server.url('/'), options({ filter: filter({ allowPrivate: false }) })));
    expect(refused.message).toContain('host ::1 is a loopback address');
    for (const entry of ['::1', '[::1]', '0:0:0:0:0:0:0:1']) {
      const download = await openWebDownload(server.url('/'), options({ filter: filter({ allowPrivate: false, allowedHosts: [entry] }) }));
      expect((await drain(download.body)).data.toString()).toBe('six');
    }
  });

  it('connects to the address it checked, without asking DNS again', async () => {
    const server = await serve((_req, res) => res.end('pinned'));
    const asked: string[] = [];
    // The name does not exist in DNS: the download works only if the connection uses the checked address.
    const lookup = async (host: string) => {
      asked.push(host);
      return ['127.0.0.1'];
    };
    const url = `http://images.vitrine.invalid:${server.port}/a.img`;
    const download = await openWebDownload(url, options({ lookup }));
    expect((await drain(download.body)).data.toString()).toBe('pinned');
    expect(asked).toEqual(['images.vitrine.invalid']);
    expect(server.hosts).toEqual([`images.vitrine.invalid:${server.port}`]);
  });

  it('keeps a name that resolves differently the second time on the first answer', async () => {
    const first = await serve((_req, res) => res.end('checked'), '127.0.0.1');
    const second = await serve((_req, res) => res.end('rebound'), '127.0.0.2', first.port);
    const answers = [['127.0.0.1'], ['127.0.0.2']];
    const lookup = async () => answers.shift() ?? [];
    const download = await openWebDownload(`http://rebind.vitrine.invalid:${first.port}/`, options({ lookup }));
    expect((await drain(download.body)).data.toString()).toBe('checked');
    expect(second.hits).toEqual([]);
  });
});

// ---- Glance's filter ----------------------------------------------------------------------

describe('schemes, hosts and ports', () => {
  it('refuses schemes outside allowed_schemes, and those it cannot fetch', async () => {
    const defaults = DEFAULT_URL_FILTER;
    expect((await refusal(checkImportUrl('ftp://mirror.example.com/a.img', defaults))).message).toBe('URI for web-download does not pass filtering: scheme ftp is not in allowed_schemes (http, https)');
    expect((await refusal(checkImportUrl('file:///etc/passwd', defaults))).message).toContain('scheme file is not in allowed_schemes');
    const withFtp = { ...defaults, allowedSchemes: ['http', 'https', 'ftp'] };
    expect((await refusal(checkImportUrl('ftp://mirror.example.com/a.img', withFtp))).message).toContain('scheme ftp cannot be fetched; only http and https can');
    const noHttp = { ...defaults, allowedSchemes: [], disallowedSchemes: ['http'] };
    expect((await refusal(checkImportUrl('http://mirror.example.com/a.img', noHttp))).message).toContain('scheme http is in disallowed_schemes');
    expect((await refusal(checkImportUrl('mirror.example.com/a.img', defaults))).message).toContain('it is not an absolute URL');
    expect((await refusal(checkImportUrl('http://mirror.example.com/a\n.img', defaults))).message).toContain('spaces or control characters');
  });

  it('checks a port only when the URL names it; the allow list wins over the deny list', async () => {
    const server = await serve((_req, res) => res.end('ok'));
    const glanceDefaults = { ...DEFAULT_URL_FILTER, allowPrivate: true };
    expect((await refusal(openWebDownload(server.url('/'), options({ filter: glanceDefaults })))).message).toBe(`URI for web-download does not pass filtering: port ${server.port} is not in allowed_ports (80, 443)`);
    const denied = filter({ allowedPorts: [], disallowedPorts: [server.port] });
    expect((await refusal(openWebDownload(server.url('/'), options({ filter: denied })))).message).toContain(`port ${server.port} is in disallowed_ports`);
    const both = filter({ allowedPorts: [server.port], disallowedPorts: [server.port] });
    expect((await drain((await openWebDownload(server.url('/'), options({ filter: both }))).body)).data.toString()).toBe('ok');
    // A default port written out is still written out (the URL parser would hide it).
    const no80 = { ...DEFAULT_URL_FILTER, allowedPorts: [], disallowedPorts: [80] };
    const publicName = async () => ['93.184.215.14'];
    expect((await refusal(checkImportUrl('http://mirror.example.com:80/a.img', no80, publicName))).message).toContain('port 80 is in disallowed_ports');
    expect((await checkImportUrl('http://mirror.example.com/a.img', no80, publicName)).host).toBe('mirror.example.com');
  });

  it('applies allowed_hosts and disallowed_hosts to the host as written, trailing dot or not', async () => {
    const publicName = async () => ['93.184.215.14'];
    const only = { ...DEFAULT_URL_FILTER, allowedHosts: ['mirror.example.com'], disallowedHosts: ['mirror.example.com'] };
    expect((await checkImportUrl('http://MIRROR.example.com/a.img', only, publicName)).hostname).toBe('mirror.example.com');
    expect((await refusal(checkImportUrl('http://other.example.com/a.img', only, publicName))).message).toContain('host other.example.com is not in allowed_hosts');
    const deny = { ...DEFAULT_URL_FILTER, disallowedHosts: ['evil.example.com'] };
    for (const url of ['http://evil.example.com/a', 'http://EVIL.example.com./a']) {
      expect((await refusal(checkImportUrl(url, deny, publicName))).message).toContain('host evil.example.com is in disallowed_hosts');
    }
  });

  it('refuses numeric shorthand hosts, even when loopback is allowed and listed', async () => {
    const server = await serve((_req, res) => res.end('reached'));
    const lenient = filter({ allowPrivate: true, allowedHosts: ['127.0.0.1'] });
    for (const host of ['2130706433', '127.1', '0x7f.1', '0x7f000001', '0177.0.0.1', '127.0.1', '127.0.0.1.', '%31%32%37.0.0.1']) {
      const error = await refusal(openWebDownload(`http://${host}:${server.port}/`, options({ filter: lenient })));
      expect(error.code).toBe('URL_FORBIDDEN');
      expect(error.message).toContain('is a numeric shorthand for 127.0.0.1');
    }
    expect(server.hits).toEqual([]);
    expect((await drain((await openWebDownload(server.url('/'), options({ filter: lenient }))).body)).data.toString()).toBe('reached');
  });

  it('refuses credentials in the URL without repeating them', async () => {
    const error = await refusal(checkImportUrl('http://admin:hunter2@mirror.example.com/a.img', DEFAULT_URL_FILTER, async () => ['93.184.215.14']));
    expect(error.message).toBe('URI for web-download does not pass filtering: the URL must not carry credentials (user:password@)');
    expect(error.message).not.toContain('hunter2');
  });
});

// ---- redirects ------------------------------------------------------------------------------

describe('redirects', () => {
  /** /hop/N redirects to /hop/N-1 (statuses cycling through the redirect codes); /hop/0 serves. */
  function chain(): Handler {
    const codes = [301, 302, 303, 307, 308];
    return (req, res) => {
      const n = Number(/^\/hop\/(\d+)/.exec(req.url ?? '')?.[1]);
      if (n > 0) {
        res.writeHead(codes[n % codes.length], { location: `/hop/${n - 1}` });
        res.end('moved');
      } else {
        res.end('arrived');
      }
    };
  }

  it('follows a chain within the limit, checking every hop', async () => {
    const server = await serve(chain());
    const download = await openWebDownload(server.url('/hop/5'), options({ maxRedirects: 5 }));
    expect(download.finalUrl).toBe(server.url('/hop/0'));
    expect((await drain(download.body)).data.toString()).toBe('arrived');
    expect(server.hits).toEqual(['/hop/5', '/hop/4', '/hop/3', '/hop/2', '/hop/1', '/hop/0']);
  });

  it('refuses one redirect more than allowed', async () => {
    const server = await serve(chain());
    const error = await refusal(openWebDownload(server.url('/hop/3'), options({ maxRedirects: 2 })));
    expect(error).toMatchObject({ code: 'IMPORT_FETCH_FAILED', status: 502 });
    expect(error.message).toBe(`${server.url('/hop/1')} redirects once more after 2 redirects, the most allowed`);
    expect(server.hits).toEqual(['/hop/3', '/hop/2', '/hop/1']);
    const none = await refusal(openWebDownload(server.url('/hop/1'), options({ maxRedirects: 0 })));
    expect(none.code).toBe('IMPORT_FETCH_FAILED');
  });

  it('refuses a redirect from an allowed host to localhost or 127.0.0.2, naming the hop', async () => {
    const elsewhere = await serve((_req, res) => res.end('must not be reached'), '127.0.0.2');
    let target = '';
    const server = await serve((req, res) => {
      res.writeHead(302, { location: req.url === '/first' ? '/second' : target });
      res.end();
    });
    const onlyLoopback = filter({ allowPrivate: false, allowedHosts: ['127.0.0.1'] });

    target = `http://localhost:${elsewhere.port}/image?token=s3cr3t`;
    const toName = await refusal(openWebDownload(server.url('/first'), options({ filter: onlyLoopback })));
    expect(toName.code).toBe('URL_FORBIDDEN');
    expect(toName.message).toBe(`redirect 2 (to http://localhost:${elsewhere.port}/image) does not pass filtering: host localhost is not in allowed_hosts`);
    expect(toName.message).not.toContain('s3cr3t');

    target = `http://127.0.0.2:${elsewhere.port}/image`;
    const toAddress = await refusal(openWebDownload(server.url('/first'), options({ filter: onlyLoopback })));
    expect(toAddress.message).toBe(`redirect 2 (to http://127.0.0.2:${elsewhere.port}/image) does not pass filtering: host 127.0.0.2 is not in allowed_hosts`);

    // Without a host list, the private-address check refuses the hop (the first host is a trusted name).
    const lookup = async (host: string) => (host === 'mirror.vitrine.invalid' ? ['127.0.0.1'] : ['127.0.0.2']);
    target = `http://other.vitrine.invalid:${elsewhere.port}/image`;
    const trusted = filter({ allowPrivate: false, allowedHosts: ['mirror.vitrine.invalid', 'other.vitrine.invalid'] });
    const viaName = await openWebDownload(`http://mirror.vitrine.invalid:${server.port}/first`, options({ filter: trusted, lookup }));
    expect((await drain(viaName.body)).data.toString()).toBe('must not be reached');
    elsewhere.hits.length = 0;
    const untrusted = filter({ allowPrivate: false, allowedHosts: ['mirror.vitrine.invalid'] });
    expect((await refusal(openWebDownload(`http://mirror.vitrine.invalid:${server.port}/first`, options({ filter: untrusted, lookup })))).message).toContain('host other.vitrine.invalid is not in allowed_hosts');
    const open = filter({ allowPrivate: false });
    expect((await refusal(openWebDownload(server.url('/first'), options({ filter: open, lookup })))).message).toContain('host 127.0.0.1 is a loopback address');
    expect(elsewhere.hits).toEqual([]);
  });

  it('refuses a redirect to a disallowed port or scheme, or one with credentials', async () => {
    let target = '';
    const server = await serve((_req, res) => {
      res.writeHead(301, { location: target });
      res.end();
    });
    const ports = filter({ allowedPorts: [server.port] });
    target = `http://127.0.0.1:${server.port + 1}/x`;
    expect((await refusal(openWebDownload(server.url('/'), options({ filter: ports })))).message).toBe(`redirect 1 (to ${target}) does not pass filtering: port ${server.port + 1} is not in allowed_ports (${server.port})`);
    target = 'file:///etc/shadow';
    expect((await refusal(openWebDownload(server.url('/'), options({ filter: ports })))).message).toContain('scheme file is not in allowed_schemes');
    target = `http://user:pa55@127.0.0.1:${server.port}/x`;
    const creds = await refusal(openWebDownload(server.url('/'), options({ filter: ports })));
    expect(creds.message).toContain('must not carry credentials');
    expect(creds.message).not.toContain('pa55');
    for (const shorthand of [`http://2130706433:${server.port}/x`, `//127.1:${server.port}/x`, `https:0x7f.1:${server.port}/x`]) {
      target = shorthand;
      expect((await refusal(openWebDownload(server.url('/'), options({ filter: ports })))).message).toContain('is a numeric shorthand for 127.0.0.1');
    }
    expect(server.hits.every((path) => path === '/')).toBe(true);
  });

  it('follows relative Locations on the checked host, however they are written', async () => {
    const server = await serve((req, res) => {
      const next: Record<string, string> = { '/': 'http:/127.1', '/127.1': '//127.0.0.1:PORT/2130706433', '/2130706433': '../final?x=1' };
      const location = next[req.url ?? '']?.replace('PORT', String(server.port));
      if (location) {
        res.writeHead(307, { location });
        res.end();
      } else res.end(`at ${req.url}`);
    });
    const download = await openWebDownload(server.url('/'), options({ filter: filter({ allowedPorts: [server.port] }) }));
    expect((await drain(download.body)).data.toString()).toBe('at /final?x=1');
    expect(server.hits).toEqual(['/', '/127.1', '/2130706433', '/final?x=1']);
  });

  it('fails a redirect without a Location', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(302);
      res.end();
    });
    expect((await refusal(openWebDownload(server.url('/'), options()))).message).toBe(`${server.url('/')} answered 302 without a Location`);
  });
});

// ---- sizes, failures, timeouts ----------------------------------------------------------------

describe('limits and failures', () => {
  it('refuses an announced length above maxBytes before reading the body', async () => {
    let wrote = 0;
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': 10 * 1024 * 1024 });
      wrote += 1024;
      res.write(Buffer.alloc(1024));
    });
    const error = await refusal(openWebDownload(server.url('/big?sig=abc'), options({ maxBytes: 1024 * 1024 })));
    expect(error).toMatchObject({ code: 'BLOB_TOO_LARGE', status: 413, details: { limit: 1024 * 1024 } });
    expect(error.message).toBe(`${server.url('/big')} announces 10485760 bytes, more than the 1048576 allowed`);
    expect(wrote).toBe(1024);
  });

  it('fails the body with BLOB_TOO_LARGE when a chunked body grows past maxBytes', async () => {
    let sent = 0;
    const server = await serve((_req, res) => {
      res.writeHead(200);
      const piece = Buffer.alloc(64 * 1024, 1);
      const more = () => {
        while (!res.destroyed && sent < 64 * 1024 * 1024) {
          sent += piece.length;
          if (!res.write(piece)) return void res.once('drain', more);
        }
        res.end();
      };
      more();
    });
    const download = await openWebDownload(server.url('/'), options({ maxBytes: 1_000_000 }));
    expect(download.size).toBeNull();
    const got = await drain(download.body);
    expect(got.error).toMatchObject({ code: 'BLOB_TOO_LARGE', message: 'the download is larger than the 1000000 bytes allowed' });
    expect(got.data.length).toBeLessThanOrEqual(1_000_000);
    // The connection went with the error: the server stopped long before its 64 MiB.
    await new Promise((r) => setTimeout(r, 100));
    expect(sent).toBeLessThan(16 * 1024 * 1024);
  });

  it('accepts a body of exactly maxBytes', async () => {
    const data = bytes(100_000);
    const server = await serve((_req, res) => {
      res.writeHead(200);
      streamOut(res, data, 7000);
    });
    const got = await drain((await openWebDownload(server.url('/'), options({ maxBytes: data.length }))).body);
    expect(got.error).toBeUndefined();
    expect(got.data.equals(data)).toBe(true);
  });

  it('fails the body when the server stalls mid-body', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': 200_000 });
      res.write(Buffer.alloc(50_000, 2));
    });
    const download = await openWebDownload(server.url('/'), options({ idleTimeoutMs: 300 }));
    const got = await drain(download.body);
    expect(got.data.length).toBe(50_000);
    expect(got.error).toMatchObject({ code: 'IMPORT_FETCH_FAILED', message: 'the download stalled: no data for 300 ms after 50000 bytes' });
  });

  it('fails when the server does not answer in time', async () => {
    const server = await serve(() => undefined);
    const error = await refusal(openWebDownload(server.url('/slow'), options({ idleTimeoutMs: 300 })));
    expect(error).toMatchObject({ code: 'IMPORT_FETCH_FAILED', message: `${server.url('/slow')} did not answer within 300 ms` });
  });

  it('fails the body when the connection breaks before the announced length', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': 100_000 });
      res.write(Buffer.alloc(10_000, 3), () => setTimeout(() => res.socket?.destroy(), 50));
    });
    const got = await drain((await openWebDownload(server.url('/'), options())).body);
    expect(got.error).toBeInstanceOf(VitrineError);
    expect((got.error as VitrineError).code).toBe('IMPORT_FETCH_FAILED');
  });

  it.each([404, 500, 403])('fails on a %i answer, naming the status but not the query', async (status) => {
    const server = await serve((_req, res) => {
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end('nope');
    });
    const error = await refusal(openWebDownload(server.url('/missing.img?X-Amz-Signature=deadbeef'), options()));
    expect(error).toMatchObject({ code: 'IMPORT_FETCH_FAILED', status: 502, details: { upstreamStatus: status } });
    expect(error.message).toBe(`${server.url('/missing.img')} answered ${status}; a download needs a 2xx answer`);
    expect(error.message).not.toContain('deadbeef');
  });

  it('fails when nothing listens', async () => {
    const server = await serve(() => undefined);
    const url = server.url('/');
    await server.close();
    const error = await refusal(openWebDownload(url, options()));
    expect(error).toMatchObject({ code: 'IMPORT_FETCH_FAILED', message: `fetching ${url} failed (ECONNREFUSED)` });
  });
});

// ---- aborts -------------------------------------------------------------------------------------

describe('abort', () => {
  it('rejects a pending open with the signal\'s reason', async () => {
    const server = await serve(() => undefined);
    const controller = new AbortController();
    const reason = new Error('import cancelled');
    const opening = openWebDownload(server.url('/'), options({ signal: controller.signal }));
    await new Promise((r) => setTimeout(r, 100));
    expect(server.hits).toEqual(['/']);
    controller.abort(reason);
    await expect(opening).rejects.toBe(reason);
  });

  it('rejects at once when the signal is already aborted', async () => {
    const server = await serve((_req, res) => res.end('x'));
    const reason = new Error('already cancelled');
    await expect(openWebDownload(server.url('/'), options({ signal: AbortSignal.abort(reason) }))).rejects.toBe(reason);
    expect(server.hits).toEqual([]);
  });

  it('fails an open body with the signal\'s reason and closes the connection', async () => {
    let closed = false;
    const server = await serve((req, res) => {
      res.writeHead(200);
      res.write(Buffer.alloc(1000));
      req.socket.on('close', () => (closed = true));
    });
    const controller = new AbortController();
    const download = await openWebDownload(server.url('/'), options({ signal: controller.signal }));
    const reading = drain(download.body);
    await new Promise((r) => setTimeout(r, 50));
    const reason = new Error('image deleted');
    controller.abort(reason);
    const got = await reading;
    expect(got.error).toBe(reason);
    await new Promise((r) => setTimeout(r, 50));
    expect(closed).toBe(true);
  });
});
