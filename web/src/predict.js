/*
 * predict.js - the panel that asks a model for predictions: rows pasted as
 * CSV (with a header; prefilled from the data set's first rows without
 * the target) or a CSV file, sent to POST /v1/models/{id}/predict, and the
 * answer shown as a table of predictions and class probabilities.
 */
import { api } from './api.js';
import { field, fill, fmtNum, h, tableWrap, uid } from './dom.js';
import { errorBox } from './ui.js';

/* A CSV line with fields quoted where needed. */
function csvLine(values) {
    return values.map((v) => (/[",\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v)).join(',');
}

/* Sample rows for the text area: the data set's first rows minus target. */
export async function sampleRows(datasetId, target) {
    if (!datasetId) return '';
    try {
        const pv = await api(`/v1/datasets/${datasetId}/preview?rows=3`);
        if (!pv.columns) return '';
        const keep = pv.columns.map((c, i) => (c === target ? -1 : i)).filter((i) => i >= 0);
        return [csvLine(keep.map((i) => pv.columns[i])), ...pv.rows.map((r) => csvLine(keep.map((i) => r[i])))].join('\n');
    } catch {
        return '';
    }
}

export function predictPanel(modelId, { datasetId, target, title = 'Predict' } = {}) {
    const id = uid('predict');
    const text = h('textarea', { rows: 6, spellcheck: 'false', name: 'rows', class: 'mono' });
    const rows = field('Rows as CSV, with a header line', text, 'The training columns by name, in any order; the target is ignored.');
    const file = h('input', { type: 'file', accept: '.csv,text/csv', name: 'file' });
    const fileRow = field('Or a CSV file', file);
    const button = h('button', { type: 'submit', text: 'Predict' });
    const out = h('div', { class: 'predict-out', 'aria-live': 'polite' });
    const form = h('form', { class: 'card predict', 'aria-labelledby': `${id}-title` },
        h('h2', { id: `${id}-title`, text: title }), rows.row, fileRow.row, button, out);

    sampleRows(datasetId, target).then((csv) => {
        if (!text.value) text.value = csv;
    });

    form.addEventListener('submit', async (e) => {
        e.preventDefault();
        fill(out);
        const body = file.files[0] ? await file.files[0].text() : text.value;
        if (!body.trim()) {
            rows.err.textContent = 'Paste some rows or choose a file.';
            text.focus();
            return;
        }
        rows.err.textContent = '';
        button.disabled = true;
        try {
            const res = await api(`/v1/models/${modelId}/predict`, { method: 'POST', raw: body, contentType: 'text/csv', accept: 'application/json' });
            fill(out, resultTable(res));
        } catch (err) {
            fill(out, errorBox(err));
        } finally {
            button.disabled = false;
        }
    });
    return form;
}

function resultTable(res) {
    const preds = res.predictions || [];
    const classes = res.classes || [];
    const probs = res.probabilities || [];
    const table = h('table', { class: 'data predictions' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'Row' }), h('th', { scope: 'col', text: 'Prediction' }),
            classes.map((c) => h('th', { scope: 'col', text: `P(${c})` })))),
        h('tbody', {}, preds.map((p, i) => h('tr', {},
            h('td', { text: String(i + 1) }),
            h('th', { scope: 'row', text: typeof p === 'number' ? fmtNum(p, 4) : String(p) }),
            classes.map((c, j) => h('td', { text: probs[i] ? fmtNum(probs[i][j], 3) : '–' }))))));
    return [h('p', { text: `${preds.length} prediction${preds.length === 1 ? '' : 's'}` }), tableWrap('Predictions', table)];
}
