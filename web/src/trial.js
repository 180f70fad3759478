/*
 * trial.js - one trial: its parameters, cross-validated metrics fold by
 * fold, learning curve, timings, failure reason and the tail of the
 * trainer's stderr; for a succeeded trial (a model) the download and
 * predict buttons. A running trial refreshes itself until it ends.
 *
 * Also the guarded sections the job page shares: a NAS cell diagram when
 * a job or trial carries `genotype`, an LR-finder chart when it carries
 * `lr_find` (a trial's `details.lr_find`: the record a range test left,
 * trainers/lrtest.h). Without the data nothing is drawn. An LR-finder
 * trial is no model: no download or predict for it.
 */
import { api, download, getFresh } from './api.js';
import { genotypeCells, genotypeSvg, lineChart, lrFindPoints, PALETTE } from './charts.js';
import { fill, fmtBytes, fmtDate, fmtNum, fmtScore, fmtSeconds, h, shortId, tableWrap } from './dom.js';
import { predictPanel } from './predict.js';
import { errorBox, stateBadge, toast } from './ui.js';

/* The points of a learning curve to compare trials by: the final fit's if
 * there is one, else the first fold's, as [iteration, value]. */
export function curvePoints(curve) {
    if (!Array.isArray(curve) || curve.length === 0) return [];
    const final = curve.filter((p) => p.stage === 'final');
    const pick = final.length ? final : curve.filter((p) => (p.fold ?? 0) === 0);
    return pick.filter((p) => Number.isFinite(p.value)).map((p) => [p.iteration, p.value]);
}

export async function downloadModel(modelId, family) {
    try {
        const n = await download(`/v1/models/${modelId}/artifact`, `${family}-${shortId(modelId)}.pdm`);
        toast(`Downloaded ${fmtBytes(n)}`);
    } catch (err) {
        toast(`Download failed: ${err.message}`, 'error');
    }
}

export function genotypeSection(genotype) {
    const cells = genotypeCells(genotype);
    return h('section', { class: 'card', 'aria-labelledby': 'nas-title' },
        h('h2', { id: 'nas-title', text: 'Architecture (NAS cell)' }),
        cells
            ? cells.map((c) => h('figure', { class: 'cell' }, h('figcaption', { text: `${c.name} cell` }), genotypeSvg(c)))
            : h('pre', { class: 'mono', text: JSON.stringify(genotype, null, 2) }));
}

/* {el, chart}: the chart must be destroyed with the page. */
export function lrFindSection(lrFind) {
    const pts = lrFindPoints(lrFind);
    const heading = h('h2', { id: 'lr-title', text: 'Learning rate finder' });
    if (pts.length === 0) {
        return { el: h('section', { class: 'card', 'aria-labelledby': 'lr-title' }, heading, h('pre', { class: 'mono', text: JSON.stringify(lrFind, null, 2) })) };
    }
    const chart = lineChart({ title: 'Loss by learning rate', xLabel: 'learning rate', yLabel: 'loss', xLog: true, series: [{ label: 'loss', points: pts }] });
    /* {method, lr} as the API gives it, or a bare number */
    const sg = lrFind.suggestion;
    const suggestion = sg && typeof sg === 'object' ? sg.lr : sg ?? lrFind.suggested_lr ?? lrFind.lr;
    return {
        chart,
        el: h('section', { class: 'card chart-card', 'aria-labelledby': 'lr-title' }, heading, chart.el,
            Number.isFinite(suggestion) ? h('p', { text: `Suggested learning rate: ${fmtNum(suggestion)}` }) : null),
    };
}

export async function trialView(main, [trialId], ctx) {
    const body = h('div');
    main.append(body);
    const charts = [];
    ctx.onLeave(() => charts.splice(0).forEach((c) => c.destroy()));
    let timer = null;
    let stopped = false;
    ctx.onLeave(() => {
        stopped = true;
        clearTimeout(timer);
    });
    let job = null;
    let predictShown = false;
    const predictEl = h('div');

    async function load() {
        const { data: t, changed } = await getFresh(`/v1/trials/${trialId}`);
        if (stopped) return;
        if (!job) job = await api(`/v1/jobs/${t.job_id}`).catch(() => null);
        if (changed) render(t);
        if (t.state === 'running') timer = setTimeout(() => load().catch((err) => body.append(errorBox(err))), 1500);
    }

    function render(t) {
        charts.splice(0).forEach((c) => c.destroy());
        const metric = job?.metric;
        const lrData = t.lr_find || t.details?.lr_find;
        const ok = t.state === 'succeeded' && !t.details?.lr_find;
        const facts = [
            ['Score', t.score !== null ? `${fmtScore(t.score)} ± ${fmtScore(t.score_std)}${metric ? ` (${metric})` : ''}` : '–'],
            ['Fit time (final model)', fmtSeconds(t.fit_seconds)],
            ['Prediction', t.predict_us_per_row !== null ? `${fmtNum(t.predict_us_per_row, 2)} µs per row` : '–'],
            ['Model size', fmtBytes(t.model_bytes)],
            ['Attempts', String(t.attempts ?? 1)],
            ['Started', fmtDate(t.started_at)],
            ['Finished', fmtDate(t.finished_at)],
        ];
        const foldRows = Object.entries(t.metrics || {}).map(([name, m]) => h('tr', { class: name === metric ? 'best' : null },
            h('th', { scope: 'row', text: name }),
            h('td', { class: 'num', text: fmtScore(m.mean) }),
            h('td', { class: 'num', text: fmtScore(m.std) }),
            h('td', { class: 'mono', text: (m.folds || []).map((v) => fmtNum(v, 4)).join('  ') })));
        const params = Object.entries(t.params || {});
        const curve = t.learning_curve || [];
        const groups = new Map();
        for (const p of curve) {
            const key = p.stage === 'final' ? 'final fit' : `fold ${p.fold ?? 0}`;
            if (!groups.has(key)) groups.set(key, []);
            if (Number.isFinite(p.value)) groups.get(key).push([p.iteration, p.value]);
        }
        let curveChart = null;
        if ([...groups.values()].some((g) => g.length)) {
            const yLabel = curve.find((p) => p.metric)?.metric || 'value';
            curveChart = lineChart({
                title: `${yLabel} by iteration`, xLabel: 'iteration', yLabel,
                series: [...groups.entries()].map(([label, points], i) => ({ label, points, color: PALETTE[i % PALETTE.length] })),
            });
            charts.push(curveChart);
        }
        const lr = lrData ? lrFindSection(lrData) : null;
        if (lr?.chart) charts.push(lr.chart);

        fill(body,
            h('p', { class: 'crumbs' }, h('a', { href: '#/jobs', text: 'Jobs' }), ' / ',
                h('a', { href: `#/jobs/${t.job_id}`, text: `Job ${shortId(t.job_id)}` }), ' / '),
            h('h1', {}, `Trial ${t.seq}: ${t.family} `, stateBadge(t.state)),
            ok ? h('div', { class: 'toolbar' },
                h('button', { type: 'button', id: 'download-model', text: 'Download model', onclick: () => downloadModel(t.id, t.family) })) : null,
            t.failure_reason ? h('div', { class: 'alert', role: 'alert' }, h('strong', { text: 'Failed: ' }), t.failure_reason) : null,
            h('section', { class: 'card', 'aria-labelledby': 'facts-title' }, h('h2', { id: 'facts-title', text: 'Result' }),
                h('dl', { class: 'facts' }, facts.map(([k, v]) => [h('dt', { text: k }), h('dd', { text: v })]))),
            h('div', { class: 'two' },
                h('section', { class: 'card', 'aria-labelledby': 'params-title' }, h('h2', { id: 'params-title', text: 'Parameters' }),
                    params.length
                        ? tableWrap('Parameters', h('table', { class: 'data' }, h('tbody', {}, params.map(([k, v]) => h('tr', {},
                            h('th', { scope: 'row', text: k }),
                            h('td', { class: 'mono', text: Array.isArray(v) && k === 'members' ? v.map(shortId).join(', ') : typeof v === 'number' ? fmtNum(v, 6) : JSON.stringify(v) }))))))
                        : h('p', { class: 'muted', text: 'The family\'s defaults.' })),
                h('section', { class: 'card chart-card', 'aria-labelledby': 'curve-title' }, h('h2', { id: 'curve-title', text: 'Learning curve' }),
                    curveChart ? curveChart.el : h('p', { class: 'muted', text: 'No curve reported.' }))),
            foldRows.length ? h('section', { class: 'card', 'aria-labelledby': 'metrics-title' }, h('h2', { id: 'metrics-title', text: 'Cross-validation' }),
                tableWrap('Metrics by fold', h('table', { class: 'data' },
                    h('thead', {}, h('tr', {}, ['Metric', 'Mean', 'Std', 'Folds'].map((x) => h('th', { scope: 'col', text: x })))),
                    h('tbody', {}, foldRows)))) : null,
            t.stderr_tail ? h('section', { class: 'card', 'aria-labelledby': 'stderr-title' }, h('h2', { id: 'stderr-title', text: 'Trainer output (stderr, last lines)' }),
                h('pre', { class: 'mono log', tabindex: '0', text: t.stderr_tail })) : null,
            (t.genotype || t.details?.genotype) ? genotypeSection(t.genotype || t.details.genotype) : null,
            lr ? lr.el : null,
            predictEl);
        if (ok && !predictShown) {
            predictShown = true;
            fill(predictEl, predictPanel(t.id, { datasetId: job?.dataset_id, target: job?.target, title: 'Predict with this model' }));
        }
    }

    await load();
}
