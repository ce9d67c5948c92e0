#!/usr/bin/env node
// Generates docs/BENCHMARKS.md and the SVG charts in docs/bench/ from one bench result JSON.
//
//   node bench/report/make-benchmarks-md.mjs                 # newest full run in bench/results/
//   node bench/report/make-benchmarks-md.mjs --latest        # newest file, even a partial (--only) run
//   node bench/report/make-benchmarks-md.mjs path/to/x.json  # that file
//   ... --out=/tmp/x                                          # write /tmp/x/BENCHMARKS.md + /tmp/x/bench/*.svg
//
// No dependencies. The layout adapts to whatever workloads and systems the JSON holds: rows are
// grouped by `workload` (split further by record size / N when a workload mixes them); workloads
// whose name contains "growth" are drawn as line charts over N (`records`), one line per system.
// Ends with a self-check that every SVG written is well-formed; exits 1 if not.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const RESULTS_DIR = path.join(ROOT, 'bench', 'results');
// --out=<dir> writes <dir>/BENCHMARKS.md and <dir>/bench/*.svg instead of docs/ (for trying things out).
const OUT_ARG = process.argv.find((a) => a.startsWith('--out='));
const DOCS_DIR = OUT_ARG ? path.resolve(OUT_ARG.slice(6)) : path.join(ROOT, 'docs');
const SVG_DIR = path.join(DOCS_DIR, 'bench');
const MD_PATH = path.join(DOCS_DIR, 'BENCHMARKS.md');

// A tie: a seglog row above a peer, but by less than this factor.
const TIE_FACTOR = 1.1;

// ---------------------------------------------------------------------------------------------
// input

function pickResultFile(argv) {
  const args = argv.slice(2);
  const file = args.find((a) => !a.startsWith('--'));
  if (file) return path.resolve(file);
  const latest = args.includes('--latest');
  const files = fs
    .readdirSync(RESULTS_DIR)
    .filter((f) => f.endsWith('.json'))
    .map((f) => path.join(RESULTS_DIR, f));
  if (files.length === 0) throw new Error(`no result JSON in ${RESULTS_DIR}`);
  const parsed = files
    .map((f) => {
      try {
        const j = JSON.parse(fs.readFileSync(f, 'utf8'));
        const t = Date.parse(j?.meta?.date ?? '') || fs.statSync(f).mtimeMs;
        return { f, t, only: j?.meta?.only ?? null };
      } catch {
        return null;
      }
    })
    .filter(Boolean)
    .sort((a, b) => b.t - a.t);
  if (parsed.length === 0) throw new Error(`no readable result JSON in ${RESULTS_DIR}`);
  if (latest) return parsed[0].f;
  // A run restricted with --only holds a few rows; prefer the newest complete run.
  const full = parsed.find((p) => p.only == null);
  if (!full) return parsed[0].f;
  if (full !== parsed[0]) {
    console.error(
      `note: newest file ${path.basename(parsed[0].f)} is a partial run (--only=${parsed[0].only}); ` +
        `using the newest full run ${path.basename(full.f)} (pass --latest to override)`,
    );
  }
  return full.f;
}

// ---------------------------------------------------------------------------------------------
// helpers

const xml = (s) =>
  String(s ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
const mdCell = (s) =>
  String(s ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/\|/g, '\\|')
    .replace(/\r?\n/g, ' ');
const isNum = (v) => typeof v === 'number' && Number.isFinite(v);

function fmtInt(v) {
  return isNum(v) ? Math.round(v).toLocaleString('en-US') : '–';
}
function fmtShort(v) {
  if (!isNum(v)) return '–';
  const a = Math.abs(v);
  if (a >= 1e9) return `${(v / 1e9).toPrecision(3)} G`;
  if (a >= 1e6) return `${(v / 1e6).toPrecision(3)} M`;
  if (a >= 1e3) return `${(v / 1e3).toPrecision(3)} k`;
  return a >= 100 ? v.toFixed(0) : v.toPrecision(3);
}
function fmtRatio(v) {
  if (!isNum(v)) return '–';
  return v >= 100 ? `${v.toFixed(0)}×` : v >= 10 ? `${v.toFixed(1)}×` : `${v.toFixed(2)}×`;
}
function fmtN(n) {
  if (!isNum(n) || n <= 0) return String(n ?? '–');
  const e = Math.log10(n);
  return Math.abs(e - Math.round(e)) < 1e-9 ? `10^${Math.round(e)}` : fmtInt(n);
}
/** "10^6" -> "10⁶" for SVG text (DejaVu/Verdana have the superscript digits). */
const sup = (s) => String(s).replace(/10\^(\d+)/g, (_, d) => `10${d.replace(/\d/g, (c) => '⁰¹²³⁴⁵⁶⁷⁸⁹'[c])}`);
const fmtNsvg = (n) => sup(fmtN(n));
function fmtTargetValue(v) {
  if (!isNum(v)) return String(v ?? '–');
  if (Number.isInteger(v) && Math.abs(v) >= 1000) return fmtInt(v);
  return Math.abs(v) < 100 ? `${+v.toFixed(3)}` : fmtInt(v);
}
function slugify(s, used) {
  let base =
    String(s)
      .toLowerCase()
      .replace(/\^/g, 'e')
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 60)
      .replace(/-+$/g, '') || 'chart';
  let slug = base;
  for (let i = 2; used.has(slug); i++) slug = `${base}-${i}`;
  used.add(slug);
  return slug;
}
function truncate(s, max) {
  s = String(s);
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/** seglog's own code paths (seglog, SegmentedLog, Topic producer, consumer group) vs peers. */
function isSeglog(row) {
  const s = String(row.system ?? '');
  return /seglog|segmentedlog/i.test(s) || /^(topic|consumer)\b/i.test(s) || /seglog/i.test(String(row.id ?? ''));
}
/** Reference rows (baselines, ceilings, floors, diagnostics) as opposed to competing engines. */
function isReference(row) {
  const s = String(row.system ?? '');
  return /\[(baseline|design floor|diagnostic|ceiling)\]|\bbaseline\b|design floor|naive|^raw\b/i.test(s);
}
/** Open/recovery rows: ops/s is opens per second; a time per op reads better there. */
const isTimed = (row) => /\bopen|recover|startup/i.test(String(row.workload ?? '')) && unitOf(row) === 'ops/s';
const fmtMs = (opsPerSec) => {
  if (!isNum(opsPerSec) || opsPerSec <= 0) return '–';
  const ms = 1000 / opsPerSec;
  return ms >= 100 ? `${ms.toFixed(0)} ms` : ms >= 10 ? `${ms.toFixed(1)} ms` : ms >= 0.1 ? `${ms.toFixed(2)} ms` : `${(ms * 1000).toFixed(1)} µs`;
};
const isGrowth = (row) => /growth/i.test(String(row.workload ?? ''));
const median = (r) => (isNum(r.rounds?.median) ? r.rounds.median : isNum(r.opsPerSec) ? r.opsPerSec : NaN);
/** "… 1000 concurrent writers", "… 100 writer(s)" -> 1000 / 100; null when the name has no writer count. */
function writersOf(row) {
  const m = String(row.system ?? '').match(/\b(\d[\d,]*)\s+(?:concurrent\s+)?writers?(?:\(s\))?/i);
  return m ? Number(m[1].replace(/,/g, '')) : null;
}
const lowerIsBetter = (r) => r.lowerIsBetter === true;
const unitOf = (r) => r.unit ?? 'ops/s';

/** Growth family: the workload name without its "N=10^k" part, so all N share one chart. */
function growthFamily(workload) {
  const stripped = String(workload)
    .replace(/[,;:]?\s*\(?\bN\s*=\s*[0-9][0-9^.,_eE×x]*\)?/g, '')
    .replace(/\s+/g, ' ')
    .replace(/[\s,;:]+$/, '')
    .trim();
  return stripped || String(workload);
}

// ---------------------------------------------------------------------------------------------
// grouping

function groupRows(results) {
  const plain = new Map(); // key -> { title, rows }
  const growth = new Map(); // family -> rows
  for (const r of results) {
    if (isGrowth(r)) {
      const fam = growthFamily(r.workload) + (r.recordBytes != null ? `\u0000${r.recordBytes}` : '');
      if (!growth.has(fam)) growth.set(fam, []);
      growth.get(fam).push(r);
    } else {
      const k = String(r.workload);
      if (!plain.has(k)) plain.set(k, []);
      plain.get(k).push(r);
    }
  }
  // Split plain workloads that mix record sizes or N, so each chart compares like with like.
  const groups = [];
  for (const [workload, rows] of plain) {
    const sizes = new Set(rows.map((r) => r.recordBytes ?? null));
    const ns = new Set(rows.map((r) => r.records ?? null));
    // Durable-append workloads put several writer counts in one workload: one chart per count.
    const writerCounts = [...new Set(rows.map(writersOf).filter((w) => w != null))].sort((a, b) => a - b);
    const splitWriters = writerCounts.length > 1;
    const sub = new Map();
    for (const r of rows) {
      const parts = [];
      if (splitWriters) {
        const w = writersOf(r) ?? writerCounts[0];
        parts.push(`${w.toLocaleString('en-US')} writer${w === 1 ? '' : 's'}`);
      }
      if (sizes.size > 1) parts.push(`${r.recordBytes ?? '?'} B records`);
      if (ns.size > 1 && !rows.every((x) => /^append|sync/i.test(String(x.id ?? '')))) parts.push(`N=${fmtN(r.records)}`);
      const k = parts.join(', ');
      if (!sub.has(k)) sub.set(k, []);
      sub.get(k).push(r);
    }
    const keys = [...sub.keys()];
    if (splitWriters) keys.sort((a, b) => parseInt(a.replace(/,/g, ''), 10) - parseInt(b.replace(/,/g, ''), 10));
    for (const k of keys) groups.push({ title: k ? `${workload} (${k})` : workload, rows: sub.get(k) });
  }
  const growthGroups = [];
  const famNames = new Map();
  for (const [fam, rows] of growth) {
    let title = fam.split('\u0000')[0];
    const bytes = fam.split('\u0000')[1];
    famNames.set(title, (famNames.get(title) ?? 0) + 1);
    growthGroups.push({ title, bytes, rows });
  }
  for (const g of growthGroups) if (famNames.get(g.title) > 1 && g.bytes) g.title += ` (${g.bytes} B records)`;
  return { groups, growthGroups };
}

// ---------------------------------------------------------------------------------------------
// SVG: horizontal bars with min–max whiskers

const FONT = 'font-family="DejaVu Sans, Verdana, Arial, Helvetica, sans-serif"';
const C_SEGLOG = '#d9480f';
const C_SEGLOG_WHISKER = '#7a2305';
const C_PEER = '#7b8da6';
const C_REF = '#b8c2d0';
const C_WHISKER = '#2b3340';
// Line colours: seglog systems get the warm colours (solid, thick), other systems cool ones (dashed, thin).
const SEGLOG_PALETTE = ['#e8590c', '#c2255c', '#a61e1e', '#f59f00'];
const PALETTE = ['#1c7ed6', '#2f9e44', '#7048e8', '#0c8599', '#495057', '#5c940d', '#3b5bdb', '#ae3ec9'];

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function ratioText(r) {
  if (!r.ratio || !isNum(r.ratio.value)) return '';
  if (r.ratio.toId && r.ratio.toId === r.id) return 'baseline';
  return truncate(`${fmtRatio(r.ratio.value)} ${r.ratio.toId ?? ''}`.trim(), 34);
}

function barChart({ title, subtitle, rows }) {
  const W = 800;
  const padL = 16;
  const padR = 16;
  const valueW = 150; // room right of the longest bar for its label
  const plotX = padL;
  const plotW = W - padL - padR - valueW;
  const headerH = 78;
  const rowH = 44;
  const axisH = 34;
  const H = headerH + rows.length * rowH + axisH + 8;
  const vmax = niceMax(Math.max(0, ...rows.map((r) => Math.max(median(r) || 0, r.rounds?.max || 0))));
  const x = (v) => plotX + (Math.max(0, v) / vmax) * plotW;
  const unit = unitOf(rows[0]);
  const out = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" ${FONT} font-size="13">`,
  );
  out.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${padL}" y="24" font-size="17" font-weight="bold" fill="#111">${xml(sup(truncate(title, 85)))}</text>`);
  if (subtitle) out.push(`<text x="${padL}" y="44" font-size="12" fill="#444">${xml(sup(truncate(subtitle, 120)))}</text>`);
  // legend
  const ly = 62;
  out.push(`<rect x="${padL}" y="${ly - 10}" width="14" height="12" fill="${C_SEGLOG}"/>`);
  out.push(`<text x="${padL + 20}" y="${ly}" font-size="12" fill="#222">seglog</text>`);
  out.push(`<rect x="${padL + 80}" y="${ly - 10}" width="14" height="12" fill="${C_PEER}"/>`);
  out.push(`<text x="${padL + 100}" y="${ly}" font-size="12" fill="#222">other system</text>`);
  out.push(`<rect x="${padL + 205}" y="${ly - 10}" width="14" height="12" fill="${C_REF}"/>`);
  out.push(`<text x="${padL + 225}" y="${ly}" font-size="12" fill="#222">baseline / reference</text>`);
  out.push(
    `<line x1="${padL + 375}" y1="${ly - 4}" x2="${padL + 405}" y2="${ly - 4}" stroke="${C_WHISKER}" stroke-width="1.5"/>` +
      `<line x1="${padL + 375}" y1="${ly - 9}" x2="${padL + 375}" y2="${ly + 1}" stroke="${C_WHISKER}" stroke-width="1.5"/>` +
      `<line x1="${padL + 405}" y1="${ly - 9}" x2="${padL + 405}" y2="${ly + 1}" stroke="${C_WHISKER}" stroke-width="1.5"/>`,
  );
  out.push(`<text x="${padL + 412}" y="${ly}" font-size="12" fill="#222">min–max over rounds</text>`);
  out.push(`<text x="${W - padR}" y="${ly}" font-size="11.5" fill="#555" text-anchor="end">ratio to baseline</text>`);
  // grid
  const gridTop = headerH - 4;
  const gridBot = headerH + rows.length * rowH;
  for (let i = 0; i <= 5; i++) {
    const v = (vmax * i) / 5;
    const gx = x(v).toFixed(1);
    out.push(`<line x1="${gx}" y1="${gridTop}" x2="${gx}" y2="${gridBot}" stroke="#e3e7ee" stroke-width="1"/>`);
    out.push(`<text x="${gx}" y="${gridBot + 18}" font-size="12" fill="#444" text-anchor="middle">${xml(fmtShort(v))}</text>`);
  }
  out.push(`<text x="${plotX + plotW}" y="${gridBot + 32}" font-size="11" fill="#666" text-anchor="end">median ${xml(unit)} (linear scale from 0)</text>`);
  rows.forEach((r, i) => {
    const y0 = headerH + i * rowH;
    const seg = isSeglog(r);
    const ref = !seg && isReference(r);
    const fill = seg ? C_SEGLOG : ref ? C_REF : C_PEER;
    const m = median(r);
    const label = `${r.system}`;
    const rt = ratioText(r);
    out.push(
      `<text x="${plotX}" y="${y0 + 13}" font-size="12.5" fill="#111"${seg ? ' font-weight="bold"' : ''}>${xml(sup(truncate(label, rt ? 78 : 110)))}</text>`,
    );
    if (rt) out.push(`<text x="${W - padR}" y="${y0 + 13}" font-size="11.5" fill="#555" text-anchor="end">${xml(sup(rt))}</text>`);
    const by = y0 + 18;
    const bh = 16;
    if (!isNum(m)) {
      out.push(`<text x="${plotX}" y="${by + 12.5}" font-size="12.5" fill="#a61e1e" font-style="italic">no result in this run</text>`);
      return;
    }
    out.push(`<rect x="${plotX}" y="${by}" width="${Math.max(1, x(m) - plotX).toFixed(1)}" height="${bh}" fill="${fill}"/>`);
    const lo = r.rounds?.min;
    const hi = r.rounds?.max;
    let labelX = x(m);
    if (isNum(lo) && isNum(hi)) {
      const wc = seg ? C_SEGLOG_WHISKER : C_WHISKER;
      const cy = by + bh / 2;
      out.push(
        `<line x1="${x(lo).toFixed(1)}" y1="${cy}" x2="${x(hi).toFixed(1)}" y2="${cy}" stroke="${wc}" stroke-width="1.5"/>` +
          `<line x1="${x(lo).toFixed(1)}" y1="${by + 2}" x2="${x(lo).toFixed(1)}" y2="${by + bh - 2}" stroke="${wc}" stroke-width="1.5"/>` +
          `<line x1="${x(hi).toFixed(1)}" y1="${by + 2}" x2="${x(hi).toFixed(1)}" y2="${by + bh - 2}" stroke="${wc}" stroke-width="1.5"/>`,
      );
      labelX = Math.max(labelX, x(hi));
    }
    const vl = isTimed(r) ? `${fmtShort(m)}/s = ${fmtMs(m)} each` : `${fmtShort(m)}`;
    const estW = vl.length * 7.3; // 12.5 px sans: ~7.3 px per character, generous
    const barW = x(m) - plotX;
    if (labelX + 6 + estW > W - padR && barW > estW + 12) {
      // would run off the right edge: write it inside the bar instead
      out.push(`<text x="${(plotX + 6).toFixed(1)}" y="${by + 12.5}" font-size="12.5" font-weight="bold" fill="#ffffff">${xml(vl)}</text>`);
    } else {
      out.push(`<text x="${(labelX + 6).toFixed(1)}" y="${by + 12.5}" font-size="12.5" fill="#111">${xml(vl)}</text>`);
    }
  });
  out.push('</svg>');
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------
// SVG: growth lines (x = N, log scale; y = median ops/s)

function lineChart({ title, subtitle, rows }) {
  const systems = [...new Set(rows.map((r) => r.system))];
  const W = 800;
  const padL = 74;
  const padR = 78; // room for the end-of-line value labels
  const top = 64;
  const plotH = 300;
  const legendRowH = 20;
  const H = top + plotH + 48 + systems.length * legendRowH + 10;
  const plotW = W - padL - padR;
  const ns = rows.map((r) => r.records).filter((n) => isNum(n) && n > 0);
  let lmin = Math.floor(Math.log10(Math.min(...ns)));
  let lmax = Math.ceil(Math.log10(Math.max(...ns)));
  if (lmin === lmax) {
    lmin -= 1;
    lmax += 1;
  }
  const vmax = niceMax(Math.max(0, ...rows.map((r) => Math.max(median(r) || 0, r.rounds?.max || 0))));
  const x = (n) => padL + ((Math.log10(n) - lmin) / (lmax - lmin)) * plotW;
  const y = (v) => top + plotH - (Math.max(0, v) / vmax) * plotH;
  const unit = unitOf(rows[0]);
  const out = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" ${FONT} font-size="13">`,
  );
  out.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="16" y="24" font-size="17" font-weight="bold" fill="#111">${xml(sup(truncate(title, 85)))}</text>`);
  if (subtitle) out.push(`<text x="16" y="44" font-size="12" fill="#444">${xml(sup(truncate(subtitle, 120)))}</text>`);
  // y grid
  for (let i = 0; i <= 5; i++) {
    const v = (vmax * i) / 5;
    const gy = y(v).toFixed(1);
    out.push(`<line x1="${padL}" y1="${gy}" x2="${padL + plotW}" y2="${gy}" stroke="#e3e7ee" stroke-width="1"/>`);
    out.push(`<text x="${padL - 8}" y="${(+gy + 4).toFixed(1)}" font-size="12" fill="#444" text-anchor="end">${xml(fmtShort(v))}</text>`);
  }
  // x grid (decades)
  for (let e = lmin; e <= lmax; e++) {
    const gx = x(10 ** e).toFixed(1);
    out.push(`<line x1="${gx}" y1="${top}" x2="${gx}" y2="${top + plotH}" stroke="#e3e7ee" stroke-width="1"/>`);
    out.push(`<text x="${gx}" y="${top + plotH + 18}" font-size="12" fill="#444" text-anchor="middle">${xml(fmtNsvg(10 ** e))}</text>`);
  }
  out.push(
    `<rect x="${padL}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#9aa4b2" stroke-width="1"/>`,
  );
  out.push(
    `<text x="${padL + plotW / 2}" y="${top + plotH + 36}" font-size="12" fill="#333" text-anchor="middle">N = records in the log (log scale)</text>`,
  );
  out.push(
    `<text x="16" y="${top + plotH / 2}" font-size="12" fill="#333" text-anchor="middle" transform="rotate(-90 16 ${top + plotH / 2})">median ${xml(unit)}</text>`,
  );
  // series: seglog systems first in the palette
  const ordered = [...systems].sort((a, b) => {
    const sa = isSeglog(rows.find((r) => r.system === a));
    const sb = isSeglog(rows.find((r) => r.system === b));
    return sa === sb ? systems.indexOf(a) - systems.indexOf(b) : sa ? -1 : 1;
  });
  const seglogCount = ordered.filter((s) => isSeglog(rows.find((r) => r.system === s))).length;
  const peerPalette = PALETTE;
  const seglogPalette = SEGLOG_PALETTE;
  const colorOf = new Map(
    ordered.map((s, i) => [s, i < seglogCount ? seglogPalette[i % seglogPalette.length] : peerPalette[(i - seglogCount) % peerPalette.length]]),
  );
  const dashes = ['6 4', '2 3', '10 3 2 3', '12 4', '4 2 1 2', '1 4'];
  const endLabels = [];
  ordered.forEach((s, si) => {
    const pts = rows
      .filter((r) => r.system === s && isNum(r.records) && r.records > 0 && isNum(median(r)))
      .sort((a, b) => a.records - b.records);
    const seg = si < seglogCount;
    const col = colorOf.get(s);
    const dash = seg ? '' : dashes[(si - seglogCount) % dashes.length];
    const poly = pts.map((r) => `${x(r.records).toFixed(1)},${y(median(r)).toFixed(1)}`).join(' ');
    if (pts.length > 1)
      out.push(
        `<polyline points="${poly}" fill="none" stroke="${col}" stroke-width="${seg ? 3 : 2}"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`,
      );
    for (const r of pts) {
      const px = x(r.records).toFixed(1);
      if (isNum(r.rounds?.min) && isNum(r.rounds?.max))
        out.push(
          `<line x1="${px}" y1="${y(r.rounds.min).toFixed(1)}" x2="${px}" y2="${y(r.rounds.max).toFixed(1)}" stroke="${col}" stroke-width="1.5"/>`,
        );
      out.push(`<circle cx="${px}" cy="${y(median(r)).toFixed(1)}" r="${seg ? 4.5 : 3.5}" fill="${col}" stroke="#fff" stroke-width="1"/>`);
    }
    // value label at the last point (placed after all series, without overlaps)
    const last = pts[pts.length - 1];
    if (last) endLabels.push({ lx: x(last.records), y: y(median(last)) + 4, col, text: fmtShort(median(last)) });
    // legend row
    const ly = top + plotH + 62 + si * legendRowH;
    out.push(
      `<line x1="16" y1="${ly - 4}" x2="52" y2="${ly - 4}" stroke="${col}" stroke-width="${seg ? 3 : 2}"${dash ? ` stroke-dasharray="${dash}"` : ''}/>` +
        `<circle cx="34" cy="${ly - 4}" r="3.5" fill="${col}"/>`,
    );
    const legend = pts.length ? s : `${s} (no result in this run)`;
    out.push(`<text x="60" y="${ly}" font-size="12.5" fill="#111"${seg ? ' font-weight="bold"' : ''}>${xml(sup(truncate(legend, 110)))}</text>`);
  });
  // end labels right of each line's last point; lines ending at the same N share a column, so keep
  // those labels at least 14 px apart vertically
  endLabels.sort((a, b) => a.lx - b.lx || a.y - b.y);
  for (let i = 1; i < endLabels.length; i++)
    if (Math.abs(endLabels[i].lx - endLabels[i - 1].lx) < 1 && endLabels[i].y - endLabels[i - 1].y < 14)
      endLabels[i].y = endLabels[i - 1].y + 14;
  for (const l of endLabels) {
    out.push(
      `<text x="${(l.lx + 8).toFixed(1)}" y="${l.y.toFixed(1)}" font-size="11.5" font-weight="bold" fill="${l.col}" stroke="#ffffff" stroke-width="3" paint-order="stroke">${xml(l.text)}</text>`,
    );
  }
  out.push('</svg>');
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------
// self-check: balanced tags, quoted attributes, no stray '<' or '&' in text

function checkWellFormed(svg) {
  const errors = [];
  const stack = [];
  const re = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*(\/?)>/g;
  let last = 0;
  let m;
  const checkText = (t, at) => {
    if (/</.test(t)) errors.push(`stray '<' near offset ${at}`);
    const amp = t.match(/&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/);
    if (amp) errors.push(`unescaped '&' near offset ${at}`);
  };
  const body = svg.replace(/^<\?xml[^>]*\?>\s*/, '');
  while ((m = re.exec(body))) {
    checkText(body.slice(last, m.index), last);
    last = re.lastIndex;
    const [, close, name, , selfClose] = m;
    if (close) {
      const top = stack.pop();
      if (top !== name) errors.push(`</${name}> closes <${top ?? 'nothing'}> at offset ${m.index}`);
    } else if (!selfClose) stack.push(name);
    const attrs = m[3];
    const names = [...attrs.matchAll(/([\w:.-]+)\s*=/g)].map((a) => a[1]);
    if (new Set(names).size !== names.length) errors.push(`duplicate attribute in <${name}> at offset ${m.index}`);
  }
  checkText(body.slice(last), last);
  if (stack.length) errors.push(`unclosed: ${stack.join(' > ')}`);
  if (!/^\s*<svg\b/.test(body)) errors.push('does not start with <svg>');
  return errors;
}

// ---------------------------------------------------------------------------------------------
// markdown

function machineLines(meta) {
  const m = meta ?? {};
  const lines = [];
  const row = (k, v) => v != null && v !== '' && lines.push(`| ${k} | ${mdCell(v)} |`);
  row('CPU', m.cpu != null ? `${m.cpu}${m.cores != null ? ` (${m.cores} cores)` : ''}` : null);
  row('OS', m.os);
  row('Node.js', m.node);
  row('run date', m.date);
  row('mode', m.quick == null ? null : m.quick ? 'quick (`npm run bench:quick`)' : 'full (`npm run bench`)');
  row('rounds × passes', m.rounds != null ? `${m.rounds} × ${m.passes ?? 1}` : null);
  row('only', m.only);
  row('duration', m.durationS != null ? `${m.durationS} s` : null);
  row('seed', m.seed);
  if (m.git) row('git', `${m.git.commit ?? '?'}${m.git.srcDirty ? ' (src/ had uncommitted changes)' : ''}`);
  const known = new Set(['cpu', 'cores', 'os', 'node', 'date', 'quick', 'rounds', 'passes', 'only', 'durationS', 'seed', 'git']);
  for (const [k, v] of Object.entries(m)) if (!known.has(k) && v != null && typeof v !== 'object') row(k, String(v));
  for (const [k, v] of Object.entries(m)) if (!known.has(k) && v != null && typeof v === 'object') row(k, `\`${JSON.stringify(v)}\``);
  return ['| | |', '|---|---|', ...lines];
}

function ratioCell(r) {
  if (!r.ratio || !isNum(r.ratio.value)) return '–';
  if (r.ratio.toId && r.ratio.toId === r.id) return '1 (baseline)';
  return `${fmtRatio(r.ratio.value)} ${r.ratio.toId ?? r.ratio.to ?? ''}`.trim();
}

function workloadTable(rows) {
  const hasLat = rows.some((r) => isNum(r.p50Us) || isNum(r.p99Us));
  const hasMb = rows.some((r) => isNum(r.mbPerSec));
  const seg = rows.filter((r) => isSeglog(r) && isNum(median(r)));
  const others = rows.filter((r) => !isSeglog(r));
  const vsSeglog = seg.length > 0 && others.length > 0;
  const best = seg.length ? seg.reduce((a, b) => (median(a) >= median(b) ? a : b)) : null;
  const unit = unitOf(rows[0]);
  const head = ['system', `median ${unit}`, 'min', 'max', 'rounds'];
  const timed = rows.every(isTimed);
  if (timed) head.push('time per op (from median)');
  if (hasMb) head.push('MB/s');
  if (hasLat) head.push('p50 µs', 'p99 µs');
  head.push('ratio to baseline');
  if (vsSeglog) head.push('best seglog ÷ this');
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((h, i) => (i === 0 ? '---' : '---:')).join('|')}|`];
  for (const r of rows) {
    const name = isSeglog(r) ? `**${mdCell(r.system)}**` : mdCell(r.system);
    const cells = [name, fmtInt(median(r)), fmtInt(r.rounds?.min), fmtInt(r.rounds?.max), r.rounds?.count ?? '–'];
    if (timed) cells.push(fmtMs(median(r)));
    if (hasMb) cells.push(isNum(r.mbPerSec) ? r.mbPerSec.toFixed(1) : '–');
    if (hasLat) cells.push(isNum(r.p50Us) ? r.p50Us.toFixed(0) : '–', isNum(r.p99Us) ? r.p99Us.toFixed(0) : '–');
    cells.push(mdCell(ratioCell(r)));
    if (vsSeglog) {
      if (isSeglog(r)) cells.push(r === best ? '1 (best seglog)' : '–');
      else {
        const v = lowerIsBetter(r) ? median(r) / median(best) : median(best) / median(r);
        cells.push(isNum(v) ? fmtRatio(v) : '–');
      }
    }
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines;
}

function growthTable(rows) {
  const ns = [...new Set(rows.map((r) => r.records))].filter(isNum).sort((a, b) => a - b);
  const systems = [...new Set(rows.map((r) => r.system))];
  const unit = unitOf(rows[0]);
  const head = ['system', ...ns.map((n) => `N=${fmtN(n)}`)];
  if (ns.length > 1) head.push(`N=${fmtN(ns[ns.length - 1])} ÷ N=${fmtN(ns[0])}`);
  const lines = [
    `Median ${unit} (min–max over rounds) per log size N.`,
    '',
    `| ${head.join(' | ')} |`,
    `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
  ];
  for (const s of systems) {
    const bys = new Map(rows.filter((r) => r.system === s).map((r) => [r.records, r]));
    const probe = rows.find((r) => r.system === s);
    const cells = [isSeglog(probe) ? `**${mdCell(s)}**` : mdCell(s)];
    for (const n of ns) {
      const r = bys.get(n);
      cells.push(r ? `${fmtInt(median(r))} (${fmtShort(r.rounds?.min)}–${fmtShort(r.rounds?.max)})` : '–');
    }
    if (ns.length > 1) {
      const a = bys.get(ns[0]);
      const b = bys.get(ns[ns.length - 1]);
      cells.push(a && b ? fmtRatio(median(b) / median(a)) : '–');
    }
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines;
}

/** Every (seglog row, peer row) pair in a comparison group where seglog loses or ties. */
function findLosses(compareGroups) {
  const out = [];
  for (const g of compareGroups) {
    const seg = g.rows.filter(isSeglog);
    const peers = g.rows.filter((r) => !isSeglog(r));
    for (const s of seg) {
      for (const p of peers) {
        const ms = median(s);
        const mp = median(p);
        if (!isNum(ms) || !isNum(mp) || mp <= 0 || ms <= 0) continue;
        const better = lowerIsBetter(s) ? mp / ms : ms / mp; // > 1: seglog wins
        if (better < 1) out.push({ g, s, p, better, kind: 'loses' });
        else if (better < TIE_FACTOR) out.push({ g, s, p, better, kind: 'ties' });
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// main

function main() {
  const file = pickResultFile(process.argv);
  const data = JSON.parse(fs.readFileSync(file, 'utf8'));
  const meta = data.meta ?? {};
  const results = (data.results ?? []).filter((r) => r && r.system != null && r.workload != null);
  if (results.length === 0) throw new Error(`${file}: no results`);
  const { groups, growthGroups } = groupRows(results);

  fs.mkdirSync(SVG_DIR, { recursive: true });
  for (const f of fs.readdirSync(SVG_DIR)) if (f.endsWith('.svg')) fs.unlinkSync(path.join(SVG_DIR, f));
  const used = new Set();
  const written = [];
  const writeSvg = (slug, svg) => {
    const p = path.join(SVG_DIR, `${slug}.svg`);
    fs.writeFileSync(p, `${svg}\n`);
    written.push(p);
    return `bench/${slug}.svg`;
  };
  const rel = path.relative(ROOT, file);
  const runTag = `${meta.quick ? 'quick' : 'full'} run ${meta.date ?? ''}, ${meta.cores ?? '?'}-core ${meta.cpu ?? ''}`.trim();

  const md = [];
  md.push('# seglog benchmarks');
  md.push('');
  md.push(
    `_Generated by \`node bench/report/make-benchmarks-md.mjs\` from \`${rel}\`. Do not edit by hand: re-run the bench and the generator._`,
  );
  md.push('');
  md.push('## How to reproduce');
  md.push('');
  md.push('```sh');
  md.push('npm run bench:quick                         # smaller suite, a few minutes');
  md.push('npm run bench                               # full suite, more rounds, N up to 10^7');
  md.push('node bench/report/make-benchmarks-md.mjs    # rewrite this file and docs/bench/*.svg from the newest full result');
  md.push('node bench/report/make-benchmarks-md.mjs bench/results/<file>.json   # ... from a given result file');
  md.push('```');
  md.push('');
  md.push('Results are written to `bench/results/storage-<date>.json`; see `bench/README.md` for every workload and flag.');
  md.push('');
  md.push('## Method');
  md.push('');
  md.push(
    '- **Fresh process per system and workload.** Every job (one system on one workload) runs in its own child process, so JIT and GC state never leak from one measurement into the next.',
  );
  md.push(
    `- **Rounds.** Each child runs a discarded warm-up round and then ${meta.rounds ?? 'several'} measured rounds` +
      (meta.passes > 1 ? `; the whole block of jobs runs ${meta.passes} times, interleaved, and the rounds are pooled` : '') +
      '. Setup (fixtures, random offsets, reopening) is untimed.',
  );
  md.push(
    '- **Spread.** Every figure is the **median** over rounds with its **min** and **max**; charts draw the median as a bar (or point) and min–max as a whisker.',
  );
  md.push(
    '- **Ratios, not absolutes.** Each row is also given as a ratio to a baseline or peer measured **in the same run**. The machine is a shared, noisy 2-core VM whose absolute rates drift by up to 2× between runs; compare ratios across runs, not ops/s.',
  );
  md.push(
    `- **Columns.** "ratio to baseline" is the bench's own ratio (this median ÷ the named baseline's median). "best seglog ÷ this" is the fastest seglog row's median ÷ this row's median in the same workload: above 1 seglog is faster. Bold rows and orange bars are seglog.`,
  );
  md.push('');
  md.push('## Machine');
  md.push('');
  md.push(...machineLines(meta));
  md.push('');

  if (Array.isArray(data.targets) && data.targets.length) {
    md.push('## Targets');
    md.push('');
    for (const t of data.targets) {
      const tag = t.pass === true ? '**PASS**' : t.pass === false ? '**MISS**' : 'INFO';
      md.push(`- ${tag} ${mdCell(t.target)}: ${fmtTargetValue(t.value)}`);
    }
    md.push('');
  }

  md.push('## Results by workload');
  md.push('');
  for (const g of groups) {
    const key = (r) => (isNum(median(r)) ? (lowerIsBetter(r) ? -median(r) : median(r)) : -Infinity);
    const rows = [...g.rows].sort((a, b) => key(b) - key(a));
    const r0 = rows[0];
    const facts = [];
    if (r0.recordBytes != null) facts.push(`${r0.recordBytes} B records`);
    if (r0.records != null && rows.every((r) => r.records === r0.records)) facts.push(`${fmtInt(r0.records)} records`);
    const counts = [...new Set(rows.map((r) => r.rounds?.count).filter((c) => c != null))];
    if (counts.length) facts.push(`${counts.join('/')} rounds`);
    const slug = slugify(g.title, used);
    const src = writeSvg(slug, barChart({ title: g.title, subtitle: `${facts.join(', ')} · ${runTag}`, rows }));
    md.push(`### ${g.title}`);
    md.push('');
    if (facts.length) md.push(`_${facts.join(', ')}._`);
    md.push('');
    md.push(...workloadTable(rows));
    md.push('');
    md.push(`![${mdCell(g.title).replace(/[[\]]/g, '')}: median ops/s per system with min–max](${src})`);
    md.push('');
  }

  const growthCompare = [];
  if (growthGroups.length) {
    md.push('## Growth');
    md.push('');
    md.push(
      'Each line is one system; x is the number of records N already in the store (log scale), y the median rate at that N, with the min–max whisker. A flat line means the cost does not grow with the data.',
    );
    md.push('');
    for (const g of growthGroups) {
      if (!g.rows.some((r) => isNum(r.records) && r.records > 0 && isNum(median(r)))) continue;
      const slug = slugify(`growth ${g.title.replace(/^.*growth[:\s]*/i, '')}`, used);
      const ns = [...new Set(g.rows.map((r) => r.records))].filter(isNum);
      const sub = `${g.rows[0].recordBytes != null ? `${g.rows[0].recordBytes} B records, ` : ''}${ns.length} sizes · ${runTag}`;
      const src = writeSvg(slug, lineChart({ title: g.title, subtitle: sub, rows: g.rows }));
      md.push(`### ${g.title}`);
      md.push('');
      md.push(...growthTable(g.rows));
      md.push('');
      md.push(`![${mdCell(g.title).replace(/[[\]]/g, '')}: median ops/s against N, one line per system](${src})`);
      md.push('');
      for (const n of ns) growthCompare.push({ title: `${g.title}, N=${fmtN(n)}`, rows: g.rows.filter((r) => r.records === n) });
    }
  }

  md.push('## Where seglog loses or ties, and why');
  md.push('');
  // The explanation is written by hand in bench/report/losses.md (kept across regenerations).
  const explanation = path.join(HERE, 'losses.md');
  if (fs.existsSync(explanation)) md.push(fs.readFileSync(explanation, 'utf8').trim(), '');
  md.push(
    '_The lists below are generated from this run: every seglog row whose median is below ' +
      "another system's median in the same workload (for growth: the same N), and every tie (seglog ahead by less than " +
      `${Math.round((TIE_FACTOR - 1) * 100)} %)._`,
  );
  md.push('');
  const losses = findLosses([...groups, ...growthCompare]);
  const vsPeers = losses.filter((l) => !isReference(l.p));
  const vsRefs = losses.filter((l) => isReference(l.p));
  md.push('### Against other systems');
  md.push('');
  if (vsPeers.length === 0) {
    const anyPeer = results.some((r) => !isSeglog(r) && !isReference(r));
    md.push(
      anyPeer
        ? `- None: in every workload each seglog row is ahead of every other system by at least ${Math.round((TIE_FACTOR - 1) * 100)} %.`
        : '- This run measured no other systems (only seglog and its baselines).',
    );
  } else {
    md.push('| workload | seglog row | seglog median | other system | its median | seglog ÷ other | |');
    md.push('|---|---|---:|---|---:|---:|---|');
    for (const l of vsPeers)
      md.push(
        `| ${mdCell(l.g.title)} | ${mdCell(l.s.system)} | ${fmtInt(median(l.s))} | ${mdCell(l.p.system)} | ${fmtInt(median(l.p))} | ${fmtRatio(l.better)} | ${l.kind} |`,
      );
  }
  md.push('');
  md.push('### Against baselines and references');
  md.push('');
  md.push(
    "_Baselines (naive loop, raw reads, design floor) do only the bare minimum; these rows show what seglog's own work costs over it, not a loss to a competitor._",
  );
  md.push('');
  if (vsRefs.length === 0) md.push('- None.');
  else {
    md.push('| workload | seglog row | seglog median | baseline | its median | seglog ÷ baseline | |');
    md.push('|---|---|---:|---|---:|---:|---|');
    for (const l of vsRefs)
      md.push(
        `| ${mdCell(l.g.title)} | ${mdCell(l.s.system)} | ${fmtInt(median(l.s))} | ${mdCell(l.p.system)} | ${fmtInt(median(l.p))} | ${fmtRatio(l.better)} | ${l.kind} |`,
      );
  }
  md.push('');

  fs.writeFileSync(MD_PATH, `${md.join('\n')}\n`);

  // self-check
  let bad = 0;
  for (const p of written) {
    const errs = checkWellFormed(fs.readFileSync(p, 'utf8'));
    if (errs.length) {
      bad++;
      console.error(`SVG check FAILED ${path.relative(ROOT, p)}:\n  ${errs.slice(0, 10).join('\n  ')}`);
    }
  }
  const mdText = fs.readFileSync(MD_PATH, 'utf8');
  for (const m of mdText.matchAll(/!\[[^\]]*\]\(([^)]+)\)/g)) {
    if (!fs.existsSync(path.join(DOCS_DIR, m[1]))) {
      bad++;
      console.error(`missing chart referenced by BENCHMARKS.md: ${m[1]}`);
    }
  }
  console.log(
    `read ${rel}: ${results.length} rows, ${groups.length} workloads, ${growthGroups.length} growth charts; ` +
      `wrote ${path.relative(ROOT, MD_PATH)} and ${written.length} SVGs in ${path.relative(ROOT, SVG_DIR)}/; ` +
      `self-check ${bad ? `FAILED (${bad})` : 'ok'}`,
  );
  if (bad) process.exit(1);
}

try {
  main();
} catch (err) {
  console.error(err?.stack ?? err);
  process.exit(1);
}
