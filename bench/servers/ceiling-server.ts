// Baseline (b): a bare Fastify server answering the same routes with the
// same JSON bytes, held in memory. It does no work beyond HTTP and JSON body
// parsing, so it is the practical ceiling for request rates on this machine
// with this load generator. Fixtures are loaded by the harness at run time:
//   PUT /__fixtures/<name>  {"body": "<exact response text>", "status": 200}
// Usage: node --import tsx bench/servers/ceiling-server.ts PORT
import Fastify from 'fastify';

interface Fixture {
  body: string;
  status: number;
}

const fixtures = new Map<string, Fixture>();
const app = Fastify({ logger: false, bodyLimit: 16 * 1024 * 1024 });

function send(name: string, reply: import('fastify').FastifyReply): void {
  const f = fixtures.get(name);
  if (!f) {
    void reply.code(404).send({ error: `no fixture ${name}` });
    return;
  }
  void reply.code(f.status).header('content-type', 'application/json; charset=utf-8').send(f.body);
}

app.put<{ Params: { name: string }; Body: Fixture }>('/__fixtures/:name', async (req) => {
  fixtures.set(req.params.name, { body: req.body.body, status: req.body.status ?? 200 });
  return { ok: true };
});
app.get('/healthz', async () => ({ ok: true }));

// Glance v2 shapes.
app.get('/v2/images', (_req, reply) => send('glance.list', reply));
app.get('/v2/images/:id', (_req, reply) => send('glance.show', reply));
app.post('/v2/images', (_req, reply) => send('glance.create', reply));

// Vitrine's Glance v2 facade: the same routes under /facade, its own bytes.
app.get('/facade/v2/images', (_req, reply) => send('facade.list', reply));
app.get('/facade/v2/images/:id', (_req, reply) => send('facade.show', reply));
app.post('/facade/v2/images', (_req, reply) => send('facade.create', reply));

// GraphQL: the body is parsed (as any GraphQL server must) and the answer
// picked by operationName.
app.post<{ Body: { operationName?: string } }>('/graphql', (req, reply) => send(`graphql.${req.body?.operationName ?? ''}`, reply));

const port = Number(process.argv[2] ?? 19390);
app.listen({ host: '127.0.0.1', port }).catch((err) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => void app.close().then(() => process.exit(0)));
