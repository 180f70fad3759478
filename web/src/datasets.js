/*
 * datasets.js - the data set pages: the list with the upload drop zone
 * (multipart upload with a progress bar), and one data set's profile
 * (column types, missing values, histograms, classes; image sets' classes
 * with thumbnails of their sample images) with the form that starts a job
 * on it, and the small one that starts a learning-rate finder
 * (POST /v1/lr-find).
 */
import { api, ApiError, session, uploadDataset } from './api.js';
import { barList, histogramSvg } from './charts.js';
import { field, fill, fmtBytes, fmtDate, fmtNum, h, tableWrap } from './dom.js';
import { errorBox, go, toast } from './ui.js';

const FAMILIES = [
    ['linear', 'Linear'], ['rf', 'Random forest'], ['extratrees', 'Extra trees'], ['gbm', 'Gradient boosting'],
    ['knn', 'k nearest neighbours'], ['nb', 'Naive Bayes'], ['mlp', 'Neural network (MLP)'],
];
const METRICS = {
    classification: ['accuracy', 'balanced_accuracy', 'logloss', 'roc_auc', 'f1_macro'],
    regression: ['rmse', 'mae', 'r2'],
};

/* --- the list and the upload --------------------------------------------- */

export async function datasetsView(main) {
    const listEl = h('div', { 'aria-live': 'polite' }, h('p', { class: 'muted', text: 'Loading…' }));
    main.append(
        h('h1', { text: 'Data sets' }),
        uploadCard(),
        h('section', { 'aria-labelledby': 'ds-list-title' }, h('h2', { id: 'ds-list-title', text: 'Your data sets' }), listEl),
    );
    await loadList(listEl);
}

function uploadCard() {
    const input = h('input', { type: 'file', id: 'upload-file', accept: '.csv,.tsv,.txt,.gz,.zip,.tar,.tgz,text/csv,application/zip,application/gzip,application/x-tar' });
    const name = field('Name (optional)', h('input', { type: 'text', name: 'name', maxlength: 200, autocomplete: 'off' }),
        'Defaults to the file name.');
    const progress = h('progress', { max: 100, value: 0, 'aria-label': 'Upload progress', hidden: true });
    const status = h('p', { class: 'upload-status', 'aria-live': 'polite' });
    const zone = h('div', { class: 'dropzone', id: 'dropzone' },
        h('p', {}, h('strong', { text: 'Drop a file here' }), ' — a CSV (or .csv.gz), or an image archive (zip, tar, tar.gz with one folder per class).'),
        h('label', { for: 'upload-file', class: 'file-label' }, 'Or choose a file: '),
        input);

    let busy = false;
    async function send(file) {
        if (!file || busy) return;
        busy = true;
        input.disabled = true;
        zone.classList.add('busy');
        progress.hidden = false;
        progress.value = 0;
        status.textContent = `Uploading ${file.name} (${fmtBytes(file.size)})…`;
        const stem = file.name.replace(/\.(csv|tsv|txt)(\.gz)?$|\.(zip|tar|tgz|tar\.gz|gz)$/i, '');
        try {
            const ds = await uploadDataset(file, name.input.value.trim() || stem, (sent, total) => {
                progress.value = Math.round((100 * sent) / total);
                status.textContent = sent < total
                    ? `Uploading ${file.name}: ${fmtBytes(sent)} of ${fmtBytes(total)}`
                    : `Uploaded ${file.name}; profiling…`;
            });
            progress.value = 100;
            status.textContent = `${ds.name}: ${ds.content_reused ? 'the same bytes as an earlier upload; ' : ''}profiled.`;
            toast(`Uploaded ${ds.name}`);
            go(`#/datasets/${ds.id}`);
        } catch (err) {
            progress.hidden = true;
            const p = err.problem || {};
            const where = p.line ? ` (line ${p.line}${p.column ? `, column ${p.column}` : ''})` : '';
            status.textContent = `Upload failed: ${err.message}${where}`;
            status.classList.add('field-error');
        } finally {
            busy = false;
            input.disabled = false;
            input.value = '';
            zone.classList.remove('busy');
        }
    }

    input.addEventListener('change', () => send(input.files[0]));
    for (const type of ['dragenter', 'dragover']) {
        zone.addEventListener(type, (e) => {
            e.preventDefault();
            zone.classList.add('over');
        });
    }
    for (const type of ['dragleave', 'drop']) zone.addEventListener(type, () => zone.classList.remove('over'));
    zone.addEventListener('drop', (e) => {
        e.preventDefault();
        const files = e.dataTransfer?.files;
        if (files && files.length > 1) {
            status.textContent = 'One file at a time, please.';
            return;
        }
        send(files && files[0]);
    });

    return h('section', { class: 'card', 'aria-labelledby': 'upload-title' },
        h('h2', { id: 'upload-title', text: 'Upload' }), name.row, zone, progress, status);
}

async function loadList(listEl, cursor, table) {
    const q = cursor ? `?limit=50&cursor=${encodeURIComponent(cursor)}` : '?limit=50';
    const page = await api(`/v1/datasets${q}`);
    if (!table) {
        if (page.items.length === 0) {
            fill(listEl, h('p', { class: 'muted', text: 'No data sets yet: upload one above.' }));
            return;
        }
        table = h('table', { class: 'data' },
            h('thead', {}, h('tr', {}, ['Name', 'Kind', 'Size', 'Target', 'Task', 'Uploaded', ''].map((t) => h('th', { scope: 'col', text: t })))),
            h('tbody'));
        fill(listEl, tableWrap('Data sets', table));
    }
    const body = table.tBodies[0];
    for (const d of page.items) {
        const s = d.summary || {};
        const shape = d.kind === 'images' ? `${s.images ?? '?'} images, ${s.classes ?? '?'} classes` : `${s.rows ?? '?'} × ${s.columns ?? '?'}`;
        body.append(h('tr', {},
            h('th', { scope: 'row' }, h('a', { href: `#/datasets/${d.id}`, text: d.name })),
            h('td', { text: d.kind }),
            h('td', {}, shape, h('br'), h('small', { class: 'muted', text: fmtBytes(d.size) })),
            h('td', { text: s.target || '–' }),
            h('td', { text: s.task || '–' }),
            h('td', { text: fmtDate(d.created_at) }),
            h('td', { class: 'actions' },
                h('a', { href: `#/leaderboards/${d.id}`, text: 'Leaderboard', 'aria-label': `Team leaderboard of ${d.name}` }))));
    }
    listEl.querySelector('.more')?.remove();
    if (page.next_cursor) {
        listEl.append(h('button', {
            type: 'button', class: 'secondary more', text: 'Load more',
            onclick: () => loadList(listEl, page.next_cursor, table),
        }));
    }
}

/* --- one data set ---------------------------------------------------------- */

export async function datasetView(main, [id]) {
    const [ds, preview] = await Promise.all([
        api(`/v1/datasets/${id}`),
        api(`/v1/datasets/${id}/preview?rows=10`).catch(() => null),
    ]);
    const p = ds.profile || {};
    const del = h('button', { type: 'button', class: 'danger', text: 'Delete' });
    del.addEventListener('click', async () => {
        if (!confirm(`Delete the data set ${ds.name}?`)) return;
        try {
            await api(`/v1/datasets/${id}`, { method: 'DELETE' });
            toast(`Deleted ${ds.name}`);
            go('#/datasets');
        } catch (err) {
            toast(err.message, 'error');
        }
    });
    main.append(...[
        h('p', { class: 'crumbs' }, h('a', { href: '#/datasets', text: 'Data sets' }), ' / '),
        h('h1', { text: ds.name }),
        h('div', { class: 'toolbar' },
            h('a', { class: 'button secondary', href: `#/leaderboards/${id}`, text: 'Team leaderboard' }),
            del),
        summaryCard(ds, p),
        ds.kind === 'tabular' ? jobForm(ds, p) : h('p', { class: 'muted', text: 'Search jobs run on tables today; image sets are profiled and stored.' }),
        lrFindForm(ds, p),
        ds.kind === 'tabular' ? columnsCard(p) : imagesCard(p, preview),
        ds.kind === 'tabular' && preview ? previewCard(preview) : null,
    ].filter(Boolean));   /* (append would write a null as the text "null") */
}

function dl(pairs) {
    return h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', { text: k }), h('dd', {}, v)]));
}

function summaryCard(ds, p) {
    const pairs = ds.kind === 'tabular'
        ? [
            ['Rows', String(p.n_rows ?? '?')], ['Columns', String(p.n_columns ?? '?')],
            ['Suggested target', p.target || 'none'], ['Task', p.task || '–'],
            ['Missing values', String(p.missing_total ?? 0)],
            p.constant_columns?.length ? ['Constant columns', p.constant_columns.join(', ')] : null,
            p.identifier_columns?.length ? ['Identifier columns', p.identifier_columns.join(', ')] : null,
        ]
        : [
            ['Images', String(p.images ?? '?')], ['Classes', String(p.classes?.length ?? '?')],
            ['Layout', p.layout || '–'], ['Channels', channelsText(p.channels)],
            p.sizes ? ['Sizes', `${sizeText(p.sizes.min)} to ${sizeText(p.sizes.max)}, mostly ${sizeText(p.sizes.most_common)}`] : null,
        ];
    pairs.push(['Format', `${ds.format} · ${fmtBytes(ds.size)}`], ['Uploaded', fmtDate(ds.created_at)]);
    const classes = p.class_counts ? Object.entries(p.class_counts).map(([label, value]) => ({ label, value })) : null;
    return h('section', { class: 'card', 'aria-labelledby': 'sum-title' },
        h('h2', { id: 'sum-title', text: 'Profile' }),
        dl(pairs),
        classes && classes.length ? [h('h3', { text: `Classes of ${p.target}` }), barList(classes.slice(0, 30), 'Class counts')] : null);
}

/* The profile's {"1": N, "3": M}: images by channel count. */
function channelsText(c) {
    if (!c || typeof c !== 'object') return String(c ?? '–');
    const names = { 1: 'grey', 2: 'grey + alpha', 3: 'RGB', 4: 'RGBA' };
    return Object.entries(c).map(([k, n]) => `${names[k] || `${k} channels`}: ${n}`).join(', ') || '–';
}

function sizeText(s) {
    if (!s) return '?';
    if (Array.isArray(s)) return s.join('×');
    if (typeof s === 'object') return `${s.width ?? s.w ?? '?'}×${s.height ?? s.h ?? '?'}`;
    return String(s);
}

function columnsCard(p) {
    const cols = p.columns || [];
    const table = h('table', { class: 'data columns' },
        h('thead', {}, h('tr', {}, ['Column', 'Type', 'Missing', 'Distinct', 'Range / top values', 'Histogram'].map((t) => h('th', { scope: 'col', text: t })))),
        h('tbody', {}, cols.map((c) => {
            const num = c.numeric;
            const range = num
                ? `${fmtNum(num.min)} … ${fmtNum(num.max)}, mean ${fmtNum(num.mean)} ± ${fmtNum(num.std)}`
                : (c.top || []).slice(0, 4).map((t) => `${t.value} (${t.count})`).join(', ');
            const flags = [c.name === p.target ? 'target' : null, c.constant ? 'constant' : null, c.identifier ? 'identifier' : null].filter(Boolean);
            return h('tr', { class: c.name === p.target ? 'is-target' : null },
                h('th', { scope: 'row' }, c.name, flags.map((f) => [' ', h('span', { class: 'tag', text: f })])),
                h('td', { text: c.type }),
                h('td', { class: c.missing ? 'warn' : null, text: String(c.missing ?? 0) }),
                h('td', { text: `${c.distinct ?? '?'}${c.distinct_estimated ? ' (est.)' : ''}` }),
                h('td', { text: range || '–' }),
                h('td', {}, c.histogram ? histogramSvg(c.histogram, `Histogram of ${c.name}`) : '–'));
        })));
    return h('section', { class: 'card', 'aria-labelledby': 'cols-title' },
        h('h2', { id: 'cols-title', text: 'Columns' }), tableWrap('Columns', table));
}

const THUMB_CLASSES = 40;   /* classes whose thumbnails are shown */
const THUMB_AT_ONCE = 4;    /* sample requests in flight */

function imagesCard(p, preview) {
    const classes = preview?.classes || p.classes || [];
    const unreadable = p.unreadable?.count
        ? h('div', { class: 'alert' }, `${p.unreadable.count} unreadable files were skipped: `,
            (p.unreadable.files || []).slice(0, 10).join(', '))
        : null;
    const shown = classes.slice(0, THUMB_CLASSES);
    const queue = [];
    const rows = shown.map((c) => {
        const urls = c.sample_urls || [];
        const names = c.samples || [];
        const thumbs = urls.map((url, k) => {
            const what = names[k] ? `Class ${c.name}: ${names[k]}` : `Class ${c.name}, sample ${k + 1}`;
            const img = h('img', { class: 'thumb', alt: what, title: names[k] || what, width: 64, height: 64, 'data-class': c.name });
            queue.push({ url, img });
            return h('span', { class: 'thumb-box' }, img);
        });
        return h('li', {},
            h('strong', { class: 'thumb-class', text: c.name }),
            thumbs.length ? h('div', { class: 'thumbs' }, thumbs)
                : h('span', { class: 'muted', text: (names.slice(0, 5).join(', ') || '–') }));
    });
    /* once the card is on the page (the view appends it after we return) */
    setTimeout(() => {
        for (let i = 0; i < THUMB_AT_ONCE; i++) loadThumbs(queue);
    }, 0);
    return h('section', { class: 'card', 'aria-labelledby': 'cls-title' },
        h('h2', { id: 'cls-title', text: 'Classes' }),
        barList(classes.map((c) => ({ label: c.name, value: c.count })), 'Images per class'),
        h('h3', { text: 'Samples' }),
        classes.length > shown.length
            ? h('p', { class: 'muted', text: `The first ${shown.length} of ${classes.length} classes.` }) : null,
        h('ul', { class: 'samples' }, rows),
        unreadable);
}

/* A thumbnail, asked again (up to 3 times, after its Retry-After) while the
 * server answers 503: it makes at most a few at once from stored archives. */
async function fetchThumb(url) {
    for (let attempt = 0; ; attempt++) {
        const resp = await fetch(url, { headers: { Authorization: `Bearer ${session.key}` } });
        if (resp.status !== 503 || attempt === 3) return resp;
        const wait = Number(resp.headers.get('Retry-After')) || 1;
        await new Promise((done) => setTimeout(done, Math.min(wait, 10) * 1000));
    }
}

/* Take thumbnails off the queue one at a time: each is fetched with the
 * key (an <img src> cannot send it) and shown from a blob: URL. Not api():
 * that asks for no-store, and these may come from the browser's cache
 * (revalidated with their ETag). */
async function loadThumbs(queue) {
    for (let item = queue.shift(); item; item = queue.shift()) {
        const { url, img } = item;
        if (!img.isConnected) {   /* the page was left: drop the rest */
            queue.length = 0;
            return;
        }
        try {
            const resp = await fetchThumb(url);
            if (!resp.ok) throw new Error(`${resp.status}`);
            const src = URL.createObjectURL(await resp.blob());
            await new Promise((done) => {
                img.addEventListener('load', done, { once: true });
                img.addEventListener('error', done, { once: true });
                img.src = src;
            });
            URL.revokeObjectURL(src);
            img.classList.add('thumb-loaded');
            /* tiny images (8x8 digits) are enlarged with sharp pixels */
            if (img.naturalWidth && img.naturalWidth < 32 && img.naturalHeight < 32) img.classList.add('thumb-small');
        } catch {
            img.classList.add('thumb-loaded', 'thumb-missing');
            img.alt = `${img.alt} (not available)`;
        }
    }
}

function previewCard(preview) {
    const table = h('table', { class: 'data' },
        h('thead', {}, h('tr', {}, preview.columns.map((c) => h('th', { scope: 'col', text: c })))),
        h('tbody', {}, preview.rows.map((r) => h('tr', {}, r.map((v) => h('td', { text: v }))))));
    return h('section', { class: 'card', 'aria-labelledby': 'prev-title' },
        h('h2', { id: 'prev-title', text: 'First rows' }), tableWrap('First rows', table));
}

/* --- the new job form ------------------------------------------------------ */

function select(name, options, value) {
    return h('select', { name }, options.map(([v, label]) => h('option', { value: v, text: label, selected: v === value })));
}

function jobForm(ds, p) {
    const cols = (p.columns || []).map((c) => c.name);
    const target = field('Target', select('target', cols.map((c) => [c, c]), p.target || cols[cols.length - 1]),
        p.target ? `Suggested by the profile: ${p.target}` : 'The column to predict.');
    const task = field('Task', select('task', [['auto', 'auto (from the target)'], ['classification', 'classification'], ['regression', 'regression']], 'auto'));
    const metric = field('Metric', select('metric', []), 'Scores on the cross-validation folds rank the models.');
    function fillMetrics() {
        const t = task.input.value === 'auto' ? (target.input.value === p.target ? p.task : null) : task.input.value;
        const list = t ? METRICS[t] || [] : [...METRICS.classification, ...METRICS.regression];
        const dflt = t === 'regression' ? 'rmse' : t === 'classification' ? 'logloss' : 'logloss or rmse';
        const keep = metric.input.value;
        fill(metric.input, h('option', { value: '', text: `default (${dflt})` }),
            list.map((m) => h('option', { value: m, text: m, selected: m === keep })));
    }
    fillMetrics();
    task.input.addEventListener('change', fillMetrics);
    target.input.addEventListener('change', fillMetrics);

    const boxes = FAMILIES.map(([v, label]) => {
        const box = h('input', { type: 'checkbox', name: 'models', value: v, checked: true, id: `fam-${v}` });
        return { v, box, el: h('label', { class: 'check', for: `fam-${v}` }, box, ` ${label}`) };
    });
    const famErr = h('small', { class: 'field-error', id: 'fam-err', 'aria-live': 'polite' });
    const families = h('fieldset', { class: 'field families' },
        h('legend', { text: 'Model families' }), boxes.map((b) => b.el), famErr);

    const strategy = field('Search strategy', select('strategy', [
        ['random', 'random search'], ['tpe', 'TPE (Bayesian)'], ['asha', 'ASHA (successive halving)']], 'random'));
    const maxSeconds = field('Time budget (seconds)', h('input', { type: 'number', name: 'max_seconds', min: 1, max: 604800, value: 600, required: true }),
        'No trial starts after it.');
    const maxTrials = field('Most trials', h('input', { type: 'number', name: 'max_trials', min: 1, max: 100000, value: 20, required: true }));
    const parallelism = field('Trials at once', h('input', { type: 'number', name: 'parallelism', min: 1, max: 1024, value: 2, required: true }));
    const folds = field('Cross-validation folds', h('input', { type: 'number', name: 'folds', min: 2, max: 20, value: 5, required: true }));
    const status = h('div', { 'aria-live': 'polite' });
    const submit = h('button', { type: 'submit', text: 'Start job' });

    const byField = {
        target: target.err, task: task.err, metric: metric.err, models: famErr, strategy: strategy.err,
        'budget.max_seconds': maxSeconds.err, 'budget.max_trials': maxTrials.err, parallelism: parallelism.err,
        'cv.folds': folds.err, cv: folds.err,
    };

    const form = h('form', { class: 'card job-form', 'aria-labelledby': 'job-title', novalidate: true },
        h('h2', { id: 'job-title', text: 'New job' }),
        h('div', { class: 'grid' }, target.row, task.row, metric.row, strategy.row, maxSeconds.row, maxTrials.row, parallelism.row, folds.row),
        families, submit, status);
    form.addEventListener('submit', async (e) => {
        e.preventDefault();
        for (const el of Object.values(byField)) el.textContent = '';
        fill(status);
        const chosen = boxes.filter((b) => b.box.checked).map((b) => b.v);
        if (chosen.length === 0) {
            famErr.textContent = 'Choose at least one family.';
            boxes[0].box.focus();
            return;
        }
        const spec = {
            dataset_id: ds.id,
            target: target.input.value,
            task: task.input.value,
            strategy: strategy.input.value,
            parallelism: Number(parallelism.input.value),
            cv: { folds: Number(folds.input.value) },
            budget: { max_seconds: Number(maxSeconds.input.value), max_trials: Number(maxTrials.input.value) },
        };
        if (metric.input.value) spec.metric = metric.input.value;
        if (chosen.length < boxes.length) spec.models = chosen;
        submit.disabled = true;
        try {
            const job = await api('/v1/jobs', { method: 'POST', json: spec });
            toast('Job started');
            go(`#/jobs/${job.id}`);
        } catch (err) {
            const errors = err instanceof ApiError && Array.isArray(err.problem.errors) ? err.problem.errors : [];
            let placed = 0;
            for (const fe of errors) {
                const slot = byField[fe.field] || byField[String(fe.field).split('[')[0]];
                if (slot) {
                    slot.textContent = fe.detail;
                    placed += 1;
                }
            }
            if (placed < errors.length || errors.length === 0) status.append(errorBox(err));
            form.querySelector('.field-error:not(:empty)')?.closest('.field')?.querySelector('input, select')?.focus();
        } finally {
            submit.disabled = false;
        }
    });
    return form;
}

/* --- the learning-rate finder form ------------------------------------------ */

/* POST /v1/lr-find: the range test for an mlp (or, on images, a cnn) with
 * its default parameters; the job page shows the chart. */
function lrFindForm(ds, p) {
    const images = ds.kind !== 'tabular';
    const family = field('Model', select('lr-family', images ? [['cnn', 'CNN'], ['mlp', 'Neural network (MLP)']] : [['mlp', 'Neural network (MLP)']],
        images ? 'cnn' : 'mlp'));
    const cols = (p.columns || []).map((c) => c.name);
    const target = images ? null : field('Column to predict', select('lr-target', cols.map((c) => [c, c]), p.target || cols[cols.length - 1]));
    const iterations = field('Steps', h('input', { type: 'number', name: 'lr-iterations', min: 10, max: 1000, value: 100, required: true }),
        'The rate grows from 1e-7 to 10 over these training steps.');
    const suggestion = field('Suggestion', select('lr-suggestion', [['valley', 'valley'], ['steep', 'steepest descent'], ['minimum', 'minimum / 10']], 'valley'));
    const status = h('div', { 'aria-live': 'polite' });
    const submit = h('button', { type: 'submit', text: 'Find a learning rate' });
    const byField = {
        'model.family': family.err, target: target?.err, 'options.iterations': iterations.err,
        'options.suggestion': suggestion.err,
    };
    const form = h('form', { class: 'card job-form', id: 'lr-find-form', 'aria-labelledby': 'lr-form-title', novalidate: true },
        h('h2', { id: 'lr-form-title', text: 'Learning-rate finder' }),
        h('p', { class: 'muted', text: 'A short training run at growing learning rates; it suggests one to train with.' }),
        h('div', { class: 'grid' }, family.row, target?.row, iterations.row, suggestion.row),
        submit, status);
    form.addEventListener('submit', async (e) => {
        e.preventDefault();
        for (const el of Object.values(byField)) if (el) el.textContent = '';
        fill(status);
        const spec = {
            dataset_id: ds.id,
            model: { family: family.input.value },
            options: { iterations: Number(iterations.input.value), suggestion: suggestion.input.value },
        };
        if (target) spec.target = target.input.value;
        submit.disabled = true;
        try {
            const job = await api('/v1/lr-find', { method: 'POST', json: spec });
            toast('Learning-rate finder started');
            go(`#/jobs/${job.id}`);
        } catch (err) {
            const errors = err instanceof ApiError && Array.isArray(err.problem.errors) ? err.problem.errors : [];
            let placed = 0;
            for (const fe of errors) {
                const slot = byField[fe.field];
                if (slot) {
                    slot.textContent = fe.detail;
                    placed += 1;
                }
            }
            if (placed < errors.length || errors.length === 0) status.append(errorBox(err));
        } finally {
            submit.disabled = false;
        }
    });
    return form;
}
