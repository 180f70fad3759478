/*
 * jobs.js - the job pages: the team's jobs, and one job live (live.js):
 * its state and progress with elapsed and remaining time, the leaderboard
 * filling in (sortable, the best model marked), the best score over time,
 * the learning curves of the trials ticked in the leaderboard, every trial
 * with its failure reason, and download and predict for the best model.
 * NAS cells and LR-finder curves appear only for jobs that carry them; an
 * LR-finder job (strategy lr_find) shows the server's chart of its range
 * test and the suggested learning rate instead of models.
 */
import { api, getFresh } from './api.js';
import { lineChart, PALETTE } from './charts.js';
import { fill, fmtBytes, fmtDate, fmtNum, fmtParams, fmtScore, fmtSeconds, h, shortId, tableWrap } from './dom.js';
import { isFinal, watchJob } from './live.js';
import { predictPanel } from './predict.js';
import { curvePoints, downloadModel, genotypeSection, lrFindSection } from './trial.js';
import { errorBox, stateBadge, toast } from './ui.js';

/* --- the list ---------------------------------------------------------------- */

export async function jobsView(main, params, ctx) {
    const listEl = h('div', {}, h('p', { class: 'muted', text: 'Loading…' }));
    main.append(h('h1', { text: 'Jobs' }), listEl);
    let names = new Map();
    try {
        const ds = await api('/v1/datasets?limit=500');
        names = new Map(ds.items.map((d) => [d.id, d.name]));
    } catch {
        /* names are a nicety */
    }
    let timer = null;
    ctx.onLeave(() => clearTimeout(timer));
    async function load() {
        const { data, changed } = await getFresh('/v1/jobs?limit=100');
        if (changed) render(data.items || []);
        if ((data.items || []).some((j) => !isFinal(j))) timer = setTimeout(() => load().catch(() => {}), 3000);
    }
    function render(items) {
        if (items.length === 0) {
            fill(listEl, h('p', { class: 'muted' }, 'No jobs yet. Open a ', h('a', { href: '#/datasets', text: 'data set' }), ' to start one.'));
            return;
        }
        const table = h('table', { class: 'data' },
            h('thead', {}, h('tr', {}, ['Job', 'State', 'Data set', 'Metric', 'Best', 'Trials', 'Created'].map((t) => h('th', { scope: 'col', text: t })))),
            h('tbody', {}, items.map((j) => h('tr', {},
                h('th', { scope: 'row' }, h('a', { href: `#/jobs/${j.id}`, text: shortId(j.id), 'aria-label': `Job ${shortId(j.id)}` })),
                h('td', {}, stateBadge(j.state)),
                h('td', {}, j.dataset_id ? h('a', { href: `#/datasets/${j.dataset_id}`, text: names.get(j.dataset_id) || shortId(j.dataset_id) }) : '–'),
                h('td', { text: j.metric }),
                h('td', { text: j.best ? `${fmtScore(j.best.score)} (${j.best.family})` : '–' }),
                h('td', { text: j.progress ? `${j.progress.trials} / ${j.budget?.max_trials ?? '?'}` : '–' }),
                h('td', { text: fmtDate(j.created_at) })))));
        fill(listEl, tableWrap('Jobs', table));
    }
    await load();
}

/* --- one job, live ------------------------------------------------------------ */

const COLUMNS = [
    ['rank', 'Rank', (r) => r.rank],
    ['family', 'Family', (r) => r.family],
    ['score', 'Score', (r) => r.score],
    ['score_std', '± std', (r) => r.score_std],
    ['fit_seconds', 'Fit time', (r) => r.fit_seconds],
    ['predict_us_per_row', 'µs / row', (r) => r.predict_us_per_row],
    ['model_bytes', 'Size', (r) => r.model_bytes],
];

export async function jobView(main, [jobId], ctx) {
    const job0 = await api(`/v1/jobs/${jobId}`);
    const state = {
        job: job0, trials: [], board: null,
        sort: { key: 'rank', dir: 1 },
        selected: new Set(),          /* trials whose learning curves are shown */
        picked: false,                /* the user ticked or unticked one: stop following the best */
        curves: new Map(),            /* trial id -> GET /v1/trials/{id} (final ones kept) */
        fetchedAt: performance.now(),
        mode: '',
    };
    const charts = [];
    ctx.onLeave(() => charts.splice(0).forEach((c) => c.destroy()));

    const els = {
        head: h('div', { class: 'job-head' }),
        progress: h('section', { class: 'card', 'aria-labelledby': 'prog-title' }),
        board: h('section', { class: 'card', 'aria-labelledby': 'board-title' }),
        best: h('section', { class: 'card chart-card', 'aria-labelledby': 'best-title' }),
        curves: h('section', { class: 'card chart-card', 'aria-labelledby': 'curves-title' }),
        trials: h('section', { class: 'card', 'aria-labelledby': 'trials-title' }),
        extra: h('div'),
        predict: h('div'),
        error: h('div', { 'aria-live': 'polite' }),
    };
    const tbody = h('tbody');
    const sortButtons = new Map();
    const boardTable = h('table', { class: 'data leaderboard', id: 'job-leaderboard' },
        h('thead', {}, h('tr', {},
            h('th', { scope: 'col' }, h('span', { class: 'sr-only', text: 'Show learning curve' })),
            COLUMNS.map(([key, label]) => {
                const b = h('button', { type: 'button', class: 'sort', text: label, 'data-sort': key });
                b.addEventListener('click', () => {
                    state.sort = { key, dir: state.sort.key === key ? -state.sort.dir : 1 };
                    renderBoard();
                });
                const th = h('th', { scope: 'col' }, b);
                sortButtons.set(key, th);
                return th;
            }),
            h('th', { scope: 'col', text: 'Params' }),
            h('th', { scope: 'col' }, h('span', { class: 'sr-only', text: 'Details' })))),
        tbody);
    const boardEmpty = h('p', { class: 'muted', text: 'No model has finished yet; the leaderboard fills in as trials succeed.' });
    fill(els.board, h('h2', { id: 'board-title', text: 'Leaderboard' }), boardEmpty, tableWrap('Leaderboard', boardTable));

    main.append(
        h('p', { class: 'crumbs' }, h('a', { href: '#/jobs', text: 'Jobs' }), ' / '),
        els.head, els.error, els.progress, els.board,
        h('div', { class: 'two' }, els.best, els.curves),
        els.trials, els.extra, els.predict);

    /* Keep the keyboard where it was across a re-render. */
    function keepFocus(fn) {
        const key = document.activeElement?.dataset?.focusKey;
        fn();
        if (key) main.querySelector(`[data-focus-key="${CSS.escape(key)}"]`)?.focus();
    }

    function renderHead() {
        const j = state.job;
        const final = isFinal(j);
        const cancel = !final && !j.cancel_requested
            ? h('button', { type: 'button', class: 'danger', text: 'Cancel job', onclick: cancelJob })
            : null;
        const best = j.best;
        const dl = best && j.strategy !== 'lr_find' ? h('button', { type: 'button', id: 'download-best', text: 'Download best model', onclick: () => downloadModel(best.model_id, best.family) }) : null;
        fill(els.head,
            h('h1', {}, `Job ${shortId(j.id)} `, stateBadge(j.state)),
            h('p', { class: 'muted' },
                'Data set ', j.dataset_id ? h('a', { href: `#/datasets/${j.dataset_id}`, text: state.datasetName || shortId(j.dataset_id) }) : '–',
                ` · target ${j.target} · ${j.task} · metric ${j.metric} (${j.higher_is_better ? 'higher' : 'lower'} is better) · ${j.strategy} · `,
                h('span', { class: 'live', id: 'live-mode', text: state.mode === 'events' ? 'live: events' : state.mode === 'polling' ? 'live: polling' : state.mode === 'finished' ? 'finished' : '' })),
            j.error ? h('div', { class: 'alert', role: 'alert', text: `The job failed: ${j.error}` }) : null,
            h('div', { class: 'toolbar' }, dl, cancel,
                j.dataset_id ? h('a', { class: 'button secondary', href: `#/leaderboards/${j.dataset_id}`, text: 'Team leaderboard' }) : null));
    }

    function renderProgress() {
        const j = state.job;
        const p = j.progress || {};
        const b = j.budget || {};
        const running = !isFinal(j) && j.state === 'running';
        const since = running ? (performance.now() - state.fetchedAt) / 1000 : 0;
        const elapsed = (p.elapsed_seconds ?? 0) + since;
        const remaining = p.remaining_seconds !== undefined && p.remaining_seconds !== null ? Math.max(0, p.remaining_seconds - since) : null;
        const done = (p.succeeded ?? 0) + (p.failed ?? 0) + (p.cancelled ?? 0);
        const byTrials = b.max_trials ? done / b.max_trials : 0;
        const byTime = b.max_seconds ? elapsed / b.max_seconds : 0;
        const frac = isFinal(j) ? 1 : Math.min(0.99, Math.max(byTrials, byTime));
        fill(els.progress,
            h('h2', { id: 'prog-title', text: 'Progress' }),
            h('progress', { max: 100, value: Math.round(frac * 100), 'aria-label': 'Job progress', id: 'job-progress' }),
            h('p', { class: 'progress-text' },
                h('span', { text: `${done} trial${done === 1 ? '' : 's'} done, budget ${b.max_trials ?? '?'}` }), ' · ',
                h('span', { text: `${p.running ?? 0} running, ${p.succeeded ?? 0} succeeded, ${p.failed ?? 0} failed` }), ' · ',
                h('span', { id: 'elapsed', text: j.started_at ? `elapsed ${fmtSeconds(elapsed)}` : 'not started' }),
                remaining !== null && !isFinal(j) ? [' · ', h('span', { text: `at most ${fmtSeconds(remaining)} left` })] : null),
            j.state === 'queued' ? h('p', { class: 'muted', text: 'Queued: waiting for a scheduler to pick it up.' }) : null);
    }

    function sortedRows() {
        const items = [...(state.board?.items || [])];
        const col = COLUMNS.find((c) => c[0] === state.sort.key);
        items.sort((a, b) => {
            const x = col[2](a);
            const y = col[2](b);
            if (x === y) return a.rank - b.rank;
            if (x === null || x === undefined) return 1;
            if (y === null || y === undefined) return -1;
            return (x < y ? -1 : 1) * state.sort.dir;
        });
        return items;
    }

    function renderBoard() {
        const items = sortedRows();
        boardEmpty.hidden = items.length > 0;
        boardTable.hidden = items.length === 0;
        for (const [key, th] of sortButtons) {
            if (key === state.sort.key) th.setAttribute('aria-sort', state.sort.dir > 0 ? 'ascending' : 'descending');
            else th.removeAttribute('aria-sort');
        }
        const bestId = state.job.best?.model_id;
        keepFocus(() => fill(tbody, items.map((r) => {
            const isBest = r.model_id === bestId;
            const box = h('input', {
                type: 'checkbox', checked: state.selected.has(r.model_id), 'data-focus-key': `curve-${r.model_id}`,
                'aria-label': `Show the learning curve of ${r.family} ${shortId(r.model_id)}`,
            });
            box.addEventListener('change', () => {
                state.picked = true;
                if (box.checked) state.selected.add(r.model_id);
                else state.selected.delete(r.model_id);
                renderCurves();
            });
            return h('tr', { class: isBest ? 'best' : null, 'data-model': r.model_id },
                h('td', {}, box),
                h('td', { text: String(r.rank) }),
                h('th', { scope: 'row' }, r.family, isBest ? [' ', h('span', { class: 'tag best-tag', text: '★ best' })] : null),
                h('td', { class: 'num', text: fmtScore(r.score) }),
                h('td', { class: 'num', text: fmtScore(r.score_std) }),
                h('td', { class: 'num', text: fmtSeconds(r.fit_seconds) }),
                h('td', { class: 'num', text: fmtNum(r.predict_us_per_row, 2) }),
                h('td', { class: 'num', text: fmtBytes(r.model_bytes) }),
                h('td', { class: 'params', text: fmtParams(r.params), title: JSON.stringify(r.params) }),
                h('td', {}, h('a', { href: `#/trials/${r.model_id}`, text: 'Details', 'data-focus-key': `details-${r.model_id}`, 'aria-label': `Details of ${r.family} ${shortId(r.model_id)}` })));
        })));
    }

    function renderBestOverTime() {
        charts.filter((c) => c.kind === 'best').forEach((c) => c.destroy());
        const j = state.job;
        const t0 = Date.parse(j.started_at || j.created_at);
        const done = state.trials.filter((t) => t.state === 'succeeded' && t.score !== null && t.finished_at && t.family !== 'ensemble');
        done.sort((a, b) => Date.parse(a.finished_at) - Date.parse(b.finished_at));
        const better = j.higher_is_better ? (a, b) => a > b : (a, b) => a < b;
        let best = null;
        const bestPts = [];
        const allPts = [];
        for (const t of done) {
            const x = Math.max(0, (Date.parse(t.finished_at) - t0) / 1000);
            allPts.push([x, t.score]);
            if (best === null || better(t.score, best)) best = t.score;
            bestPts.push([x, best]);
        }
        const chart = lineChart({
            title: `Best ${j.metric} so far`,
            xLabel: 'seconds since start',
            yLabel: j.metric,
            series: [
                { label: 'best so far', points: bestPts, stepped: true, color: PALETTE[0] },
                { label: 'each trial', points: allPts, dots: true, color: '#9ca3af' },
            ],
        });
        chart.kind = 'best';
        charts.push(chart);
        fill(els.best, h('h2', { id: 'best-title', text: 'Best score over time' }), chart.el);
    }

    async function renderCurves() {
        const best = state.job.best?.model_id;
        if (!state.picked && best && !(state.selected.size === 1 && state.selected.has(best))) {
            state.selected = new Set([best]);
            renderBoard();
        }
        const ids = [...state.selected];
        const details = await Promise.all(ids.map(async (id) => {
            const kept = state.curves.get(id);
            if (kept) return kept;
            try {
                const t = await api(`/v1/trials/${id}`);
                if (t.state !== 'running') state.curves.set(id, t);
                return t;
            } catch {
                return null;
            }
        }));
        charts.filter((c) => c.kind === 'curves').forEach((c) => c.destroy());
        const series = [];
        details.filter(Boolean).forEach((t, i) => {
            const pts = curvePoints(t.learning_curve);
            if (pts.length) series.push({ label: `${t.family} ${shortId(t.id)}`, points: pts, color: PALETTE[i % PALETTE.length] });
        });
        const heading = h('h2', { id: 'curves-title', text: 'Learning curves' });
        if (series.length === 0) {
            fill(els.curves, heading, h('p', { class: 'muted', text: ids.length ? 'The selected trials reported no curve.' : 'Tick trials in the leaderboard to compare their learning curves.' }));
            return;
        }
        const metric = details.find((t) => t?.learning_curve?.length)?.learning_curve.find((p) => p.metric)?.metric || 'value';
        const chart = lineChart({ title: `Final fit: ${metric} by iteration`, xLabel: 'iteration', yLabel: metric, series });
        chart.kind = 'curves';
        charts.push(chart);
        fill(els.curves, heading, chart.el);
    }

    function renderTrials() {
        const items = [...state.trials].sort((a, b) => a.seq - b.seq);
        const table = h('table', { class: 'data trials' },
            h('thead', {}, h('tr', {}, ['#', 'Family', 'State', 'Score', 'Progress', 'Params', 'Failure', ''].map((t) => h('th', { scope: 'col', text: t })))),
            h('tbody', {}, items.map((t) => {
                const pr = t.progress;
                const progress = t.state === 'running' && pr && pr.total
                    ? h('progress', { max: pr.total, value: pr.iteration || 0, 'aria-label': `Trial ${t.seq} progress` })
                    : '';
                return h('tr', { class: `trial-${t.state}` },
                    h('td', { text: String(t.seq) }),
                    h('th', { scope: 'row', text: t.family }),
                    h('td', {}, stateBadge(t.state)),
                    h('td', { class: 'num', text: fmtScore(t.score) }),
                    h('td', {}, progress),
                    h('td', { class: 'params', text: fmtParams(t.params) }),
                    h('td', { class: 'failure', text: t.failure_reason || '' }),
                    h('td', {}, h('a', { href: `#/trials/${t.id}`, text: 'Details', 'data-focus-key': `trial-${t.id}`, 'aria-label': `Details of trial ${t.seq}` })));
            })));
        keepFocus(() => fill(els.trials, h('h2', { id: 'trials-title', text: `Trials (${items.length})` }),
            items.length ? tableWrap('Trials', table) : h('p', { class: 'muted', text: 'No trial has started yet.' })));
    }

    /* Sections that only some jobs have (NAS, LR finder): drawn only when
     * the job or a trial carries the data. */
    function renderExtra() {
        const j = state.job;
        if (j.strategy === 'lr_find') {
            renderLrFind();
            return;
        }
        // the best architecture: the job's, else its best-scoring trial's
        // (cnn and darts trials report theirs in details.genotype)
        const genoOf = (x) => x.genotype || x.details?.genotype;
        const better = (a, b) => (j.higher_is_better ? a.score > b.score : a.score < b.score);
        const withGenotype = genoOf(j) ? j : state.trials
            .filter((t) => genoOf(t) && t.state === 'succeeded' && t.score != null)
            .reduce((best, t) => (!best || better(t, best) ? t : best), null);
        const lrOf = (x) => x.lr_find || x.details?.lr_find;
        const withLr = lrOf(j) ? j : state.trials.find(lrOf);
        charts.filter((c) => c.kind === 'lr').forEach((c) => c.destroy());
        const lr = withLr ? lrFindSection(lrOf(withLr)) : null;
        if (lr?.chart) {
            lr.chart.kind = 'lr';
            charts.push(lr.chart);
        }
        fill(els.extra, withGenotype ? genotypeSection(genoOf(withGenotype)) : null, lr ? lr.el : null);
    }

    /* An LR-finder job: drawn once running, again once it has ended. */
    let lrShown = null;
    let lrUrl = null;
    ctx.onLeave(() => lrUrl && URL.revokeObjectURL(lrUrl));
    async function renderLrFind() {
        const j = state.job;
        const phase = j.state === 'succeeded' ? 'done' : isFinal(j) ? 'ended' : 'running';
        if (lrShown === phase) return;
        lrShown = phase;
        try {
            const sec = await lrFindJobSection(j);
            if (lrUrl) URL.revokeObjectURL(lrUrl);
            lrUrl = sec.url || null;
            fill(els.extra, sec.el);
        } catch (err) {
            lrShown = null;
            fill(els.extra, errorBox(err));
        }
    }

    let predictFor = null;
    function renderPredict() {
        const best = state.job.best;
        if (state.job.strategy === 'lr_find') return;   /* its trial is no model */
        if (!best || best.model_id === predictFor) return;
        predictFor = best.model_id;
        fill(els.predict, predictPanel(best.model_id, {
            datasetId: state.job.dataset_id, target: state.job.target, title: `Predict with the best model (${best.family})`,
        }));
    }

    async function cancelJob() {
        try {
            state.job = await api(`/v1/jobs/${jobId}/cancel`, { method: 'POST' });
            renderHead();
            toast('Cancelling the job');
        } catch (err) {
            toast(err.message, 'error');
        }
    }

    let lastTrialsKey = '';
    function update({ job, trials, leaderboard }) {
        fill(els.error);
        const bestChanged = state.job.best?.model_id !== job.best?.model_id;
        state.job = job;
        state.trials = trials;
        state.board = leaderboard;
        state.fetchedAt = performance.now();
        renderHead();
        renderProgress();
        renderBoard();
        const key = trials.map((t) => `${t.id}:${t.state}`).join(',');
        if (key !== lastTrialsKey || bestChanged) {
            lastTrialsKey = key;
            renderBestOverTime();
            renderCurves();
        }
        renderTrials();
        renderExtra();
        renderPredict();
    }

    renderHead();
    renderProgress();
    fill(els.best, h('h2', { id: 'best-title', text: 'Best score over time' }), h('p', { class: 'muted', text: 'Drawn when the first trial finishes.' }));
    fill(els.curves, h('h2', { id: 'curves-title', text: 'Learning curves' }), h('p', { class: 'muted', text: 'Tick trials in the leaderboard to compare their learning curves.' }));
    if (job0.dataset_id) {
        api(`/v1/datasets/${job0.dataset_id}`).then((d) => {
            state.datasetName = d.name;
            renderHead();
        }, () => {});
    }
    const stop = watchJob(jobId, {
        onUpdate: update,
        onMode: (mode) => {
            state.mode = mode;
            const el = document.getElementById('live-mode');
            if (el) el.textContent = mode === 'events' ? 'live: events' : mode === 'polling' ? 'live: polling' : 'finished';
        },
        onError: (err) => fill(els.error, errorBox(err)),
    });
    /* Elapsed and remaining time tick between updates. */
    const tick = setInterval(() => {
        if (state.job.state === 'running') renderProgress();
    }, 1000);
    ctx.onLeave(() => {
        stop();
        clearInterval(tick);
    });
}

/* An LR-finder job's section: while it runs, a note; once it succeeded,
 * the server's chart (GET /v1/jobs/{id}/lr-find.svg, fetched with the API
 * key and shown through a blob: URL, which the CSP's img-src allows and
 * in which no script can run) and the suggested learning rate. {el, url}:
 * the caller revokes url. */
export async function lrFindJobSection(job) {
    const sec = h('section', { class: 'card', id: 'lr-find', 'aria-labelledby': 'lr-title' },
        h('h2', { id: 'lr-title', text: 'Learning rate finder' }));
    if (job.state !== 'succeeded') {
        sec.append(h('p', { class: 'muted', text: isFinal(job)
            ? 'The range test ended without a result.'
            : 'The range test is running; its chart appears here when it has finished.' }));
        return { el: sec };
    }
    const [res, svg] = await Promise.all([
        api(`/v1/jobs/${job.id}/lr-find`),
        api(`/v1/jobs/${job.id}/lr-find.svg`, { accept: 'image/svg+xml', asResponse: true }).then((r) => r.blob()),
    ]);
    const url = URL.createObjectURL(new Blob([svg], { type: 'image/svg+xml' }));
    const sg = res.suggestion || {};
    const all = res.suggestions || {};
    const others = Object.entries(all).filter(([m]) => m !== sg.method)
        .map(([m, v]) => `${m === 'minimum' ? 'minimum / 10' : m} ${fmtNum(v)}`).join(', ');
    sec.append(
        h('img', { id: 'lr-find-chart', class: 'lr-chart', src: url, width: 640, height: 400,
            alt: `Loss by learning rate (log scale), raw and smoothed; the ${sg.method} suggestion ${fmtNum(sg.lr)} marked` }),
        h('p', { id: 'lr-suggestion' }, `Suggested learning rate (${sg.method}): `, h('strong', { text: fmtNum(sg.lr) })),
        h('p', { class: 'muted', text: `Other suggestions: ${others || '–'}. ${res.iterations} steps` +
            `${res.stopped_early ? ', stopped when the loss diverged' : ''}.` }));
    return { el: sec, url };
}
