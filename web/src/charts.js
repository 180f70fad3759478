/*
 * charts.js - the dashboard's charts.
 *
 * Lines and points over a numeric axis (the best score over time, learning
 * curves, the LR finder) are uPlot charts, resized with their container.
 * Small fixed pictures (a column's histogram, class counts, a NAS cell)
 * are SVG built here: a few rectangles do not need a library.
 */
import uPlot from './vendor/uPlot.esm.js';
import { fmtNum, h } from './dom.js';

export const PALETTE = ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#db2777', '#0891b2', '#65a30d'];

/* A uPlot line chart in a <figure>. series: [{label, points: [[x, y], ...],
 * color, dots (points only, no line), stepped}]. Returns {el, destroy}. */
export function lineChart({ title, xLabel, yLabel, series, xLog = false, height = 240 }) {
    const plotEl = h('div', { class: 'chart-plot' });
    const el = h('figure', { class: 'chart' }, h('figcaption', { text: title }), plotEl);
    const tables = series.map((s) => {
        const pts = [...s.points].filter((p) => Number.isFinite(p[0]) && Number.isFinite(p[1]));
        pts.sort((a, b) => a[0] - b[0]);
        return [pts.map((p) => p[0]), pts.map((p) => p[1])];
    });
    if (tables.every((t) => t[0].length === 0)) {
        plotEl.append(h('p', { class: 'muted', text: 'No points yet.' }));
        return { el, destroy() {} };
    }
    const data = tables.length === 1 ? tables[0] : uPlot.join(tables);
    const opts = {
        width: 600,
        height,
        scales: { x: { time: false, distr: xLog ? 3 : 1 } },
        axes: [
            { label: xLabel, stroke: '#555', grid: { stroke: '#eee' }, values: (u, vals) => vals.map((v) => (v === null ? '' : fmtNum(v))) },
            { label: yLabel, stroke: '#555', grid: { stroke: '#eee' }, values: (u, vals) => vals.map((v) => fmtNum(v)) },
        ],
        legend: { show: true },
        series: [
            { label: xLabel, value: (u, v) => (v === null ? '–' : fmtNum(v)) },
            ...series.map((s, i) => ({
                label: s.label,
                stroke: s.color || PALETTE[i % PALETTE.length],
                width: s.dots ? 0 : 2,
                spanGaps: true,
                points: { show: s.dots || tables[i][0].length < 30, size: s.dots ? 7 : 5 },
                paths: s.stepped ? uPlot.paths.stepped({ align: 1 }) : undefined,
                value: (u, v) => (v === null ? '–' : fmtNum(v, 4)),
            })),
        ],
    };
    let plot = null;
    let observer = null;
    /* Draw once the figure is in the page and has a width. */
    requestAnimationFrame(() => {
        if (!el.isConnected) return;
        opts.width = Math.max(240, plotEl.clientWidth || 600);
        plot = new uPlot(opts, data, plotEl);
        observer = new ResizeObserver(() => {
            const w = Math.max(240, plotEl.clientWidth);
            if (plot && Math.abs(w - plot.width) > 4) plot.setSize({ width: w, height });
        });
        observer.observe(plotEl);
    });
    return {
        el,
        destroy() {
            if (observer) observer.disconnect();
            if (plot) plot.destroy();
        },
    };
}

/* A histogram from a profile's {edges, counts} as a small SVG. */
export function histogramSvg(hist, label) {
    const counts = hist?.counts || [];
    const edges = hist?.edges || [];
    const W = 120;
    const H = 32;
    const max = Math.max(1, ...counts);
    const bw = counts.length ? W / counts.length : W;
    const svg = h('svg:svg', { viewBox: `0 0 ${W} ${H}`, class: 'spark', role: 'img', 'aria-label': label });
    counts.forEach((c, i) => {
        const bh = (c / max) * (H - 2);
        const rect = h('svg:rect', { x: i * bw + 0.5, y: H - bh, width: Math.max(1, bw - 1), height: bh });
        const lo = edges[i];
        const hi = edges[i + 1];
        rect.append(h('svg:title', { text: `${fmtNum(lo)} – ${fmtNum(hi)}: ${c}` }));
        svg.append(rect);
    });
    return svg;
}

/* Horizontal bars for [{label, value}], e.g. class counts or top values. */
export function barList(items, label) {
    const max = Math.max(1, ...items.map((i) => i.value));
    return h('ul', { class: 'bars', 'aria-label': label },
        items.map((i) => h('li', {},
            h('span', { class: 'bar-label', text: i.label }),
            h('meter', { min: 0, max, value: i.value, 'aria-label': `${i.label}: ${i.value}` }),
            h('span', { class: 'bar-value', text: String(i.value) }))));
}

/* A NAS cell (DARTS-style genotype) as an SVG diagram: the cell's two
 * inputs c_{k-2} and c_{k-1}, its intermediate nodes, each fed by the
 * operations listed for it ([op, input_index] pairs, two per node unless
 * the genotype says otherwise), and the output concatenating them.
 * Accepted: {normal: [[op, i], ...], normal_concat: [...]} (and reduce),
 * or a cell given directly as an array of [op, i]. Anything else: null,
 * and the caller shows the data as text. */
export function genotypeCells(genotype) {
    if (!genotype || typeof genotype !== 'object') return null;
    const cells = Array.isArray(genotype) ? { cell: genotype } : genotype;
    const out = [];
    for (const [name, ops] of Object.entries(cells)) {
        if (name.endsWith('_concat') || !Array.isArray(ops)) continue;
        const ok = ops.every((o) => Array.isArray(o) && typeof o[0] === 'string' && Number.isInteger(o[1]));
        if (!ok || ops.length === 0) return null;
        out.push({ name, ops, concat: cells[`${name}_concat`] });
    }
    return out.length ? out : null;
}

export function genotypeSvg(cell) {
    const perNode = 2;
    const nodes = Math.ceil(cell.ops.length / perNode);
    const W = 160 + nodes * 150;
    const H = Math.max(200, 70 * nodes + 60);
    const pos = [];
    pos[0] = { x: 50, y: H / 3 };
    pos[1] = { x: 50, y: (2 * H) / 3 };
    for (let n = 0; n < nodes; n++) pos[n + 2] = { x: 190 + n * 140, y: 40 + ((H - 80) * (n + 0.5)) / nodes };
    const outPos = { x: W - 40, y: H / 2 };
    const svg = h('svg:svg', { viewBox: `0 0 ${W} ${H}`, class: 'cell-diagram', role: 'img', 'aria-label': `${cell.name} cell` });
    svg.append(h('svg:defs', {}, h('svg:marker', { id: `arrow-${cell.name}`, viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 6, markerHeight: 6, orient: 'auto-start-reverse' },
        h('svg:path', { d: 'M 0 0 L 10 5 L 0 10 z' }))));
    cell.ops.forEach(([op, from], i) => {
        const to = Math.floor(i / perNode) + 2;
        const a = pos[from];
        const b = pos[to];
        if (!a || !b) return;
        svg.append(h('svg:line', { x1: a.x + 24, y1: a.y, x2: b.x - 24, y2: b.y, class: 'edge', 'marker-end': `url(#arrow-${cell.name})` }));
        svg.append(h('svg:text', { x: a.x + 24 + (b.x - a.x - 48) * 0.45, y: a.y + (b.y - a.y) * 0.45 - 5, class: 'edge-label', text: op }));
    });
    const concat = Array.isArray(cell.concat) ? cell.concat : pos.map((_, i) => i).slice(2);
    for (const n of concat) {
        const a = pos[n];
        if (a) svg.append(h('svg:line', { x1: a.x + 24, y1: a.y, x2: outPos.x - 24, y2: outPos.y, class: 'edge concat' }));
    }
    const node = (p, label, cls) => svg.append(h('svg:g', { class: `node ${cls}` },
        h('svg:rect', { x: p.x - 24, y: p.y - 14, width: 48, height: 28, rx: 6 }),
        h('svg:text', { x: p.x, y: p.y + 4, text: label })));
    node(pos[0], 'c_{k-2}', 'input');
    node(pos[1], 'c_{k-1}', 'input');
    for (let n = 0; n < nodes; n++) node(pos[n + 2], String(n), 'inner');
    node(outPos, 'c_{k}', 'output');
    return svg;
}

/* An LR finder's curve as [[lr, loss], ...] from the shapes a trainer may
 * report: {lrs: [...], losses: [...]} or [{lr, loss}, ...]. */
export function lrFindPoints(lrFind) {
    if (!lrFind) return [];
    if (Array.isArray(lrFind)) return lrFind.filter((p) => p && p.lr > 0).map((p) => [p.lr, p.loss]);
    if (Array.isArray(lrFind.lrs) && Array.isArray(lrFind.losses)) {
        return lrFind.lrs.map((lr, i) => [lr, lrFind.losses[i]]).filter((p) => p[0] > 0);
    }
    if (Array.isArray(lrFind.points)) return lrFindPoints(lrFind.points);
    return [];
}
