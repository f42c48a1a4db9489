/// <reference types="wink-nlp" />
import { kmeans } from 'ml-kmeans';
import bm25Vectorizer from 'wink-nlp/utilities/bm25-vectorizer';

/** Most terms a vector has: the most frequent ones (document frequency), so 10,000 nodes stay a small matrix. */
export const MAX_TERMS = 128;
/** Most nodes K-Means and the silhouette run on; beyond, an evenly spaced sample, every node then joins its nearest centroid. */
export const SAMPLE_SIZE = 500;
/** K is chosen between these (and at most the number of nodes less one). */
export const MIN_K = 3;
export const MAX_K = 10;
/** Below this silhouette the clustering comes with a warning: the groups are not well separated. */
export const WEAK_SILHOUETTE = 0.3;
/** The seed of K-Means' initialisation (k-means++): the same canvas always gives the same groups. */
const SEED = 42;

export interface ClusteringOptions {
  /** Most groups (1–20); K is chosen up to it (the default range stops at 10). */
  maxGroups?: number;
  /** Called between candidate Ks: lets the event loop breathe during a large plan. */
  pause?: () => Promise<void>;
}

export interface Clustering {
  /** Each document's group, 0-based, groups numbered in the order of their first document. */
  assignments: number[];
  k: number;
  /** Mean silhouette (cosine distance) of the chosen K; null when no K was chosen (too few documents, one group). */
  silhouette: number | null;
  warning?: string;
  /** Each group's top terms (summed BM25 weight, then alphabetical), for its name. */
  topTerms: string[][];
}

type Sparse = { idx: number[]; val: number[] };

/**
 * Groups documents (token lists) by topic: BM25 (TF-IDF) vectors from wink-nlp, K-Means from ml-kmeans, K chosen by
 * the best mean silhouette (cosine distance) over [3, min(10, n − 1)] (or up to `maxGroups`). Deterministic: a
 * sorted vocabulary, a seeded initialisation, an evenly spaced sample. Fewer than 4 documents, or `maxGroups` 1:
 * one group (the caller may split it otherwise), silhouette null.
 */
export async function clusterDocuments(
  docs: readonly string[][],
  options: ClusteringOptions = {},
): Promise<Clustering> {
  const n = docs.length;
  const { vectors, terms } = vectorize(docs);
  const maxK = Math.min(options.maxGroups ?? MAX_K, n - 1);
  const one = (warning: string): Clustering => ({
    assignments: docs.map(() => 0),
    k: 1,
    silhouette: null,
    warning,
    topTerms: [
      topTerms(
        vectors,
        terms,
        docs.map(() => 0),
        0,
      ),
    ],
  });
  if (options.maxGroups === 1) return one('max_groups is 1: one group');
  if (maxK < 2) return one(`too few nodes (${n}) to cluster: one group`);
  const distinct = new Set(vectors.map((v) => v.idx.join(',') + ':' + v.val.join(','))).size;
  if (distinct < 2) return one('every node has the same words: one group');

  const sampleIdx = sampleOf(n);
  const dims = terms.length;
  const dense = sampleIdx.map((i) => toDense(vectors[i], dims));
  const distances = pairwise(sampleIdx.map((i) => vectors[i]));
  const hi = Math.min(maxK, distinct);
  const lo = Math.min(MIN_K, hi);
  let best: { k: number; score: number; centroids: number[][] } | undefined;
  for (let k = lo; k <= hi; k++) {
    await options.pause?.();
    const run = kmeans(dense, k, { seed: SEED, initialization: 'kmeans++', maxIterations: 50 });
    const score = silhouette(distances, run.clusters);
    // ties keep the smaller K
    if (!best || score > best.score + 1e-9) best = { k, score, centroids: run.centroids };
  }
  const chosen = best!;
  // every document joins its nearest centroid (the sample's own assignment is the same)
  const raw = vectors.map((v) => nearest(v, chosen.centroids));
  const assignments = renumber(raw);
  const k = Math.max(...assignments) + 1;
  const score = Math.round(chosen.score * 1000) / 1000;
  return {
    assignments,
    k,
    silhouette: score,
    ...(score < WEAK_SILHOUETTE && {
      warning: `silhouette ${score} is below ${WEAK_SILHOUETTE}: the groups are not well separated`,
    }),
    topTerms: Array.from({ length: k }, (_, g) => topTerms(vectors, terms, assignments, g)),
  };
}

/** BM25 vectors (L2-normalised, sparse) over the `MAX_TERMS` most frequent terms, sorted alphabetically. */
function vectorize(docs: readonly string[][]): { vectors: Sparse[]; terms: string[] } {
  const df = new Map<string, number>();
  for (const doc of docs) for (const t of new Set(doc)) df.set(t, (df.get(t) ?? 0) + 1);
  const kept = [...df.entries()]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .slice(0, MAX_TERMS)
    .map(([t]) => t)
    .sort();
  const index = new Map(kept.map((t, i) => [t, i]));
  const bm25 = bm25Vectorizer({ k: 1, k1: 1.2, b: 0.75, norm: 'l2' });
  for (const doc of docs) bm25.learn(doc.filter((t) => index.has(t)));
  const vectors = docs.map((_, i) => {
    // `out()` without a helper returns the document's weighted bag of words (term → weight), the sparse vector
    const bow = (bm25.doc(i).out as (f?: unknown) => Record<string, number>)();
    const entries = Object.entries(bow)
      .map(([t, w]) => [index.get(t)!, w] as const)
      .sort((a, b) => a[0] - b[0]);
    return { idx: entries.map(([i]) => i), val: entries.map(([, w]) => w) };
  });
  return { vectors, terms: kept };
}

/** Evenly spaced document indexes, at most `SAMPLE_SIZE` (all of them below). */
function sampleOf(n: number): number[] {
  if (n <= SAMPLE_SIZE) return Array.from({ length: n }, (_, i) => i);
  return Array.from({ length: SAMPLE_SIZE }, (_, i) => Math.floor((i * n) / SAMPLE_SIZE));
}

function toDense(v: Sparse, dims: number): number[] {
  const out = new Array<number>(dims).fill(0);
  for (let j = 0; j < v.idx.length; j++) out[v.idx[j]] = v.val[j];
  return out;
}

function dot(a: Sparse, b: Sparse): number {
  let s = 0;
  for (let i = 0, j = 0; i < a.idx.length && j < b.idx.length;) {
    if (a.idx[i] === b.idx[j]) s += a.val[i++] * b.val[j++];
    else if (a.idx[i] < b.idx[j]) i++;
    else j++;
  }
  return s;
}

/** Cosine distances between the vectors (unit length, or empty: distance 1 to everything). */
function pairwise(vs: Sparse[]): Float64Array[] {
  const m = vs.length;
  const rows = Array.from({ length: m }, () => new Float64Array(m));
  for (let i = 0; i < m; i++)
    for (let j = i + 1; j < m; j++) {
      const d = Math.min(2, Math.max(0, 1 - dot(vs[i], vs[j])));
      rows[i][j] = d;
      rows[j][i] = d;
    }
  return rows;
}

/**
 * Mean silhouette: for each point, a = mean distance to its own cluster's other points, b = the smallest mean
 * distance to another cluster's points, s = (b − a) / max(a, b); a point alone in its cluster scores 0.
 */
export function silhouette(distances: readonly ArrayLike<number>[], clusters: readonly number[]): number {
  const m = clusters.length;
  const labels = renumber(clusters);
  const k = labels.length ? Math.max(...labels) + 1 : 0;
  if (k < 2) return 0;
  const size = new Float64Array(k);
  for (const c of labels) size[c] += 1;
  const sums = new Float64Array(k);
  let total = 0;
  for (let i = 0; i < m; i++) {
    const own = labels[i];
    if (size[own] < 2) continue;
    sums.fill(0);
    const row = distances[i];
    for (let j = 0; j < m; j++) sums[labels[j]] += row[j];
    // the point's distance to itself is 0: the own sum is over the others already
    const a = sums[own] / (size[own] - 1);
    let b = Number.POSITIVE_INFINITY;
    for (let c = 0; c < k; c++) if (c !== own && size[c] > 0) b = Math.min(b, sums[c] / size[c]);
    const denom = Math.max(a, b);
    total += denom > 0 ? (b - a) / denom : 0;
  }
  return total / m;
}

/** The centroid nearest `v` (squared Euclidean, as K-Means measures); ties keep the lower index. */
function nearest(v: Sparse, centroids: readonly number[][]): number {
  let best = 0;
  let bestD = Number.POSITIVE_INFINITY;
  for (let c = 0; c < centroids.length; c++) {
    const ct = centroids[c];
    // |v − c|² = |v|² − 2 v·c + |c|²: |v|² is the same for every centroid
    let cc = 0;
    for (const x of ct) cc += x * x;
    let vc = 0;
    for (let j = 0; j < v.idx.length; j++) vc += v.val[j] * ct[v.idx[j]];
    const d = cc - 2 * vc;
    if (d < bestD - 1e-12) {
      best = c;
      bestD = d;
    }
  }
  return best;
}

/** Cluster labels as 0, 1, 2 … in the order of their first document; empty clusters disappear. */
function renumber(labels: readonly number[]): number[] {
  const map = new Map<number, number>();
  return labels.map((l) => {
    if (!map.has(l)) map.set(l, map.size);
    return map.get(l)!;
  });
}

/** A group's three heaviest terms (summed weight, ties alphabetical). */
function topTerms(vectors: Sparse[], terms: string[], assignments: number[], group: number): string[] {
  const weight = new Map<number, number>();
  vectors.forEach((v, i) => {
    if (assignments[i] !== group) return;
    v.idx.forEach((t, j) => weight.set(t, (weight.get(t) ?? 0) + v.val[j]));
  });
  return [...weight.entries()]
    .sort((a, b) => b[1] - a[1] || a[0] - b[0])
    .slice(0, 3)
    .map(([t]) => terms[t]);
}
