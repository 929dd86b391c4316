// What a scenario is, and helpers that turn measurements into report rows.
// Adding a scenario = one file exporting a Scenario + one line in index.ts.
import type { BenchContext, Measurement } from '../lib/context';
import type { Row } from '../lib/report';
import { difference, fmt, ratio, summarize, sumRounds } from '../lib/stats';

export interface Scenario {
  /** Stable id used by --only, e.g. "graphql.list". */
  name: string;
  description: string;
  run(ctx: BenchContext): Promise<Row[]>;
}

/**
 * A throughput comparison row: subject req/s over baseline req/s. `atLeast`
 * is the target ratio (met when the median ratio reaches it).
 */
export function rpsRow(scenario: string, metric: string, subject: Measurement, baseline: Measurement, atLeast?: number): Row {
  const r = ratio(subject.rps, baseline.rps);
  return {
    scenario,
    metric,
    unit: 'req/s',
    subject: { label: subject.label, value: subject.rps },
    baseline: { label: baseline.label, value: baseline.rps },
    ratio: r,
    target: atLeast === undefined ? undefined : { text: `>= ${atLeast}x`, met: r.median >= atLeast },
  };
}

/**
 * The latency a subject adds over its baseline: the difference of the
 * per-round medians measured with sub-millisecond resolution. `below` is the
 * target (met when the median difference is under it).
 */
export function addedLatencyRow(scenario: string, metric: string, subject: Measurement, baseline: Measurement, below?: number): Row {
  const d = difference(subject.medianMs, baseline.medianMs);
  return {
    scenario,
    metric,
    unit: 'ms',
    subject: { label: subject.label, value: subject.medianMs },
    baseline: { label: baseline.label, value: baseline.medianMs },
    // Not a ratio: the column shows the difference (subject - baseline), in ms.
    difference: d,
    target: below === undefined ? undefined : { text: `< ${below} ms added`, met: d.median < below },
  };
}

/**
 * CPU milliseconds per request: every process the subject's load kept busy
 * (e.g. Vitrine + the Glance behind it) against the baseline's (Glance
 * alone). Unlike a rate, this hardly depends on what else the machine runs;
 * on a machine whose cores are all busy, the rates follow it.
 */
export function cpuRow(scenario: string, metric: string, subject: Measurement, baseline: Measurement): Row {
  const total = (m: Measurement) => summarize(sumRounds(Object.values(m.cpuMsPerRequest ?? {}).map((x) => x.rounds)));
  const parts = (m: Measurement) => Object.entries(m.cpuMsPerRequest ?? {}).filter(([, x]) => x.median > 0).map(([name, x]) => `${name} ${fmt(x.median)}`).join(' + ');
  const [s, b] = [total(subject), total(baseline)];
  return {
    scenario,
    metric: `${metric} (lower is better)`,
    unit: 'CPU ms/request',
    subject: { label: `${subject.label} (${parts(subject)})`, value: s },
    baseline: { label: `${baseline.label} (${parts(baseline)})`, value: b },
    ratio: ratio(s, b),
  };
}
