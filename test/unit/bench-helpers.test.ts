import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { runLoad } from '../../bench/lib/load';
import { consoleTable } from '../../bench/lib/report';
import { difference, summarize, sumRounds } from '../../bench/lib/stats';
import { rotated } from '../../bench/scenarios/proxy-streams';
import { addedLatencyRow } from '../../bench/scenarios/types';
import type { Measurement } from '../../bench/lib/context';

/** The benchmark harness's own arithmetic and its exact latency sampling. */
describe('bench helpers', () => {
  it('difference: the medians subtracted, the spread pairs the worst and best rounds', () => {
    const d = difference(summarize([10, 12, 14]), summarize([9, 10, 11]));
    expect(d.median).toBe(2);
    expect(d.min).toBe(10 - 11);
    expect(d.max).toBe(14 - 9);
  });

  it('sumRounds adds parallel sides round by round, up to the shortest', () => {
    expect(sumRounds([[1, 2, 3], [10, 20, 30], [100, 200]])).toEqual([111, 222]);
  });

  it('rotated starts each round with another side and keeps every side once', () => {
    expect([0, 1, 2, 3].map((r) => rotated(['a', 'b', 'c'], r).join(''))).toEqual(['abc', 'bca', 'cab', 'abc']);
  });

  it('an added-latency row shows the signed difference and judges the target on its median', () => {
    const m = (label: string, medians: number[]): Measurement => ({ label, medianMs: summarize(medians) }) as Measurement;
    const row = addedLatencyRow('proxy.show', 'added median latency', m('proxy', [3.5, 4, 4.5]), m('direct', [2, 2.5, 3]), 2);
    expect(row.difference?.median).toBe(1.5);
    expect(row.target).toEqual({ text: '< 2 ms added', met: true });
    expect(consoleTable([row])).toContain('+1.50 ms (+0.50 – +2.50)');
    const slower = addedLatencyRow('proxy.show', 'added median latency', m('proxy', [9]), m('direct', [2]), 2);
    expect(slower.target?.met).toBe(false);
  });

  describe('runLoad', () => {
    let server: Server;
    let status = 200;
    const delayMs = 4;
    let url = '';

    beforeAll(async () => {
      server = createServer((_req, res) => setTimeout(() => res.writeHead(status).end('ok'), delayMs));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });

    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

    it.each([false, true])('takes the median of the 2xx response times, fresh connections: %s', async (fresh) => {
      status = 200;
      const r = await runLoad({ url, method: 'GET', path: '/', connections: 2, fresh }, 1);
      expect(r.requests).toBeGreaterThan(0);
      // Every answer waited for the server's timer, so no response time is below it.
      expect(r.latencyMedianMs).toBeGreaterThanOrEqual(delayMs - 1);
      expect(Number.isFinite(r.latencyMedianMs)).toBe(true);
    });

    it('has no median when nothing succeeded', async () => {
      status = 503;
      const r = await runLoad({ url, method: 'GET', path: '/', connections: 1, fresh: false }, 1);
      expect(r.non2xx).toBeGreaterThan(0);
      expect(r.latencyMedianMs).toBeNaN();
    });
  });
});
