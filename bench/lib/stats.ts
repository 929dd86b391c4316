// Round statistics. Every figure the harness reports is the median of
// several rounds plus its spread, never a single run: the machine is shared
// and a lone number would mostly measure the neighbours.

export interface Summary {
  median: number;
  min: number;
  max: number;
  p25: number;
  p75: number;
  n: number;
  rounds: number[];
}

/** Linear-interpolated quantile of an already sorted array (q in [0, 1]). */
function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export function summarize(values: number[]): Summary {
  const s = [...values].sort((a, b) => a - b);
  return {
    median: quantile(s, 0.5),
    min: s[0] ?? NaN,
    max: s[s.length - 1] ?? NaN,
    p25: quantile(s, 0.25),
    p75: quantile(s, 0.75),
    n: s.length,
    rounds: values,
  };
}

/**
 * subject / baseline. The median ratio is the ratio of the medians; the
 * spread is deliberately conservative (worst and best pairing of rounds),
 * because baseline and subject rounds are not always taken side by side.
 */
export function ratio(subject: Summary, baseline: Summary): Summary {
  const r = summarize([subject.median / baseline.median]);
  const lo = subject.min / baseline.max;
  const hi = subject.max / baseline.min;
  return { ...r, min: lo, max: hi, p25: lo, p75: hi, rounds: [] };
}

/**
 * subject - baseline (e.g. the latency a proxy adds), with the same
 * conservative spread as ratio(): worst and best pairing of rounds.
 */
export function difference(subject: Summary, baseline: Summary): Summary {
  const d = summarize([subject.median - baseline.median]);
  const lo = subject.min - baseline.max;
  const hi = subject.max - baseline.min;
  return { ...d, min: lo, max: hi, p25: lo, p75: hi, rounds: [] };
}

/** Sum of per-round figures of parallel sides (e.g. instances loaded at once), round by round. */
export function sumRounds(sides: number[][]): number[] {
  const n = Math.min(...sides.map((s) => s.length));
  return Array.from({ length: n }, (_, i) => sides.reduce((sum, s) => sum + s[i], 0));
}

/** Compact human form: 3 significant digits, thousands kept whole. */
export function fmt(x: number): string {
  if (!Number.isFinite(x)) return 'n/a';
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x).toString();
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  return x.toPrecision(2);
}

export function fmtSummary(s: Summary): string {
  return s.n > 1 || s.min !== s.max ? `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})` : fmt(s.median);
}
