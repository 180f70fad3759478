/*
 * leaderboard.js - the team leaderboard of one data set: every model the
 * team trained on it, across jobs (GET /v1/leaderboards?dataset_id=),
 * ranked by the latest job's metric, best first, with a CSV export (the
 * same request with Accept: text/csv: every model, streamed by the server).
 * The board comes a page at a time (the server's default, 100 models):
 * "Show more" follows the page's `next` link and appends the next page, so
 * a board of 100,000 models opens as fast as one of ten.
 */
import { api, download } from './api.js';
import { field, fill, fmtBytes, fmtDate, fmtParams, fmtScore, fmtSeconds, h, shortId, tableWrap } from './dom.js';
import { errorBox, go, toast } from './ui.js';

export async function leaderboardView(main, [datasetId]) {
    const list = await api('/v1/datasets?limit=500');
    const sets = list.items.filter((d) => d.kind === 'tabular');
    const pick = h('select', { name: 'dataset' },
        h('option', { value: '', text: 'Choose a data set', disabled: true, selected: !datasetId }),
        sets.map((d) => h('option', { value: d.id, text: d.name, selected: d.id === datasetId })));
    const chooser = field('Data set', pick);
    pick.addEventListener('change', () => go(`#/leaderboards/${pick.value}`));
    const out = h('div', { 'aria-live': 'polite' });
    main.append(h('h1', { text: 'Team leaderboard' }), h('div', { class: 'card narrow' }, chooser.row), out);
    if (!datasetId) {
        if (sets.length === 0) out.append(h('p', { class: 'muted', text: 'Upload a table first.' }));
        return;
    }
    const ds = list.items.find((d) => d.id === datasetId);
    const name = ds ? ds.name : shortId(datasetId);
    let board;
    try {
        board = await api(`/v1/leaderboards?dataset_id=${encodeURIComponent(datasetId)}`);
    } catch (err) {
        out.append(errorBox(err));
        return;
    }
    const items = board.items || [];
    const total = board.total ?? items.length;
    const exportBtn = h('button', { type: 'button', id: 'export-csv', text: 'Export CSV', disabled: total === 0 });
    exportBtn.addEventListener('click', async () => {
        try {
            await download(`/v1/leaderboards?dataset_id=${encodeURIComponent(datasetId)}`, `leaderboard-${name}.csv`, 'text/csv');
        } catch (err) {
            toast(`Export failed: ${err.message}`, 'error');
        }
    });
    const row = (r) => h('tr', { class: r.rank === 1 ? 'best' : null, 'data-model': r.model_id },
        h('td', { text: String(r.rank) }),
        h('th', { scope: 'row' }, h('a', { href: `#/trials/${r.model_id}`, text: r.family, 'aria-label': `${r.family} ${shortId(r.model_id)}` }),
            r.rank === 1 ? [' ', h('span', { class: 'tag best-tag', text: '★ best' })] : null),
        h('td', { class: 'num', text: fmtScore(r.score) }),
        h('td', { class: 'num', text: fmtScore(r.score_std) }),
        h('td', {}, h('a', { href: `#/jobs/${r.job_id}`, text: shortId(r.job_id), 'aria-label': `Job ${shortId(r.job_id)}` })),
        h('td', { class: 'num', text: fmtSeconds(r.fit_seconds) }),
        h('td', { class: 'num', text: fmtBytes(r.model_bytes) }),
        h('td', { class: 'params', text: fmtParams(r.params), title: JSON.stringify(r.params) }),
        h('td', { text: fmtDate(r.trained_at) }));
    const tbody = h('tbody', {}, items.map(row));
    const table = h('table', { class: 'data leaderboard', id: 'team-leaderboard' },
        h('thead', {}, h('tr', {}, ['Rank', 'Family', `Score (${board.metric || '?'})`, '± std', 'Job', 'Fit time', 'Size', 'Params', 'Trained'].map((t) => h('th', { scope: 'col', text: t })))),
        tbody);
    // The next page: the server's `next` link (keyset, so a page never
    // repeats or skips a model even while jobs add models).
    let next = board.next || null;
    let shown = items.length;
    const status = h('p', { class: 'muted', id: 'team-board-shown', 'aria-live': 'polite' });
    const moreBtn = h('button', { type: 'button', id: 'more-models', class: 'secondary', text: 'Show more' });
    const update = () => {
        status.textContent = `Showing ${shown} of ${total}.`;
        moreBtn.style.display = next ? '' : 'none';   // (the stylesheet's display beats [hidden])
    };
    moreBtn.addEventListener('click', async () => {
        if (!next) return;
        moreBtn.disabled = true;
        try {
            const page = await api(next);
            tbody.append(...(page.items || []).map(row));
            shown += (page.items || []).length;
            next = page.next || null;
            update();
        } catch (err) {
            toast(`Could not load more: ${err.message}`, 'error');
        } finally {
            moreBtn.disabled = false;
        }
    });
    update();
    fill(out,
        h('section', { class: 'card', 'aria-labelledby': 'team-board-title' },
            h('h2', { id: 'team-board-title', text: `${name}: ${total} model${total === 1 ? '' : 's'}` }),
            h('p', { class: 'muted', text: `Target ${board.target || '?'}, ranked by ${board.metric || '?'} across the team's jobs.` }),
            h('div', { class: 'toolbar' }, exportBtn, h('a', { class: 'button secondary', href: `#/datasets/${datasetId}`, text: 'Data set and new job' })),
            items.length ? [tableWrap('Team leaderboard', table), h('div', { class: 'toolbar' }, status, moreBtn)]
                : h('p', { class: 'muted', text: 'No models on this data set yet.' })));
}
