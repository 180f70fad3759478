/*
 * app.js - the dashboard's entry point: sign-in, the header, and a router
 * over the URL's hash (#/datasets, #/datasets/ID, #/jobs, #/jobs/ID,
 * #/trials/ID, #/leaderboards, #/leaderboards/ID), so every page has a
 * link of its own and the server only ever serves index.html.
 *
 * A view is a function (main, params, ctx) that fills main; what it must
 * stop when the page changes (timers, live streams, charts) it hands to
 * ctx.onLeave.
 */
import { api, session } from './api.js';
import { field, fill, h } from './dom.js';
import { errorBox } from './ui.js';
import { datasetsView, datasetView } from './datasets.js';
import { jobsView, jobView } from './jobs.js';
import { trialView } from './trial.js';
import { leaderboardView } from './leaderboard.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
const team = document.getElementById('team');

const routes = [
    [/^#\/datasets\/([0-9a-f-]{36})$/, datasetView, 'datasets'],
    [/^#\/datasets$/, datasetsView, 'datasets'],
    [/^#\/jobs\/([0-9a-f-]{36})$/, jobView, 'jobs'],
    [/^#\/jobs$/, jobsView, 'jobs'],
    [/^#\/trials\/([0-9a-f-]{36})$/, trialView, 'jobs'],
    [/^#\/leaderboards(?:\/([0-9a-f-]{36}))?$/, leaderboardView, 'leaderboards'],
];

let leaving = [];

function leave() {
    for (const fn of leaving) {
        try {
            fn();
        } catch (err) {
            console.warn('leaving the page:', err);
        }
    }
    leaving = [];
}

async function render() {
    leave();
    if (!session.key) return signInView();
    nav.hidden = false;
    who.hidden = false;
    const hash = location.hash || '#/datasets';
    let match = null;
    for (const [re, view, section] of routes) {
        const m = re.exec(hash);
        if (m) {
            match = { view, params: m.slice(1), section };
            break;
        }
    }
    if (!match) {
        location.replace('#/datasets');
        return;
    }
    for (const a of nav.querySelectorAll('a')) {
        if (a.dataset.nav === match.section) a.setAttribute('aria-current', 'page');
        else a.removeAttribute('aria-current');
    }
    fill(main);
    const ctx = { onLeave: (fn) => leaving.push(fn) };
    try {
        await match.view(main, match.params, ctx);
    } catch (err) {
        if (err.name === 'AbortError' || !session.key) return;   /* left, or signed out */
        main.append(errorBox(err));
    }
    /* Move the keyboard and screen reader to the new page's heading. */
    const heading = main.querySelector('h1');
    if (heading && !main.contains(document.activeElement)) {
        heading.tabIndex = -1;
        heading.focus({ preventScroll: true });
    }
}

function signInView() {
    nav.hidden = true;
    who.hidden = true;
    const key = h('input', { type: 'password', autocomplete: 'off', required: true, spellcheck: 'false', name: 'api-key' });
    const f = field('API key', key, 'pdm_ followed by 64 hex digits; make run prints one. Kept in this tab only.');
    const status = h('p', { class: 'field-error', role: 'alert' });
    const form = h('form', { class: 'card narrow', 'aria-labelledby': 'signin-title' },
        h('h1', { id: 'signin-title', text: 'Sign in' }),
        f.row,
        h('button', { type: 'submit', text: 'Sign in' }),
        status);
    form.addEventListener('submit', async (e) => {
        e.preventDefault();
        status.textContent = '';
        const value = key.value.trim();
        /* Checked before it is kept, so a refused key signs nothing out. */
        try {
            const resp = await fetch('/v1/me', { headers: { Authorization: `Bearer ${value}` }, cache: 'no-store' });
            if (!resp.ok) {
                status.textContent = resp.status === 401 ? 'That key was not accepted.' : `The server answered ${resp.status}.`;
                key.focus();
                return;
            }
            session.signIn(value);
            showMe(await resp.json());
        } catch (err) {
            status.textContent = `The server cannot be reached: ${err.message}`;
            return;
        }
        if (!location.hash || location.hash === '#/') location.hash = '#/datasets';
        else render();
    });
    fill(main, form);
    key.focus();
}

function showMe(me) {
    team.textContent = `${me.team.name} · ${me.key.name || me.key.prefix}`;
}

async function loadMe() {
    showMe(await api('/v1/me'));
}

document.getElementById('sign-out').addEventListener('click', () => {
    session.signOut();
});
session.onSignOut(() => {
    leave();
    team.textContent = '';
    signInView();
});
window.addEventListener('hashchange', render);

(async () => {
    if (session.key) {
        try {
            await loadMe();
        } catch (err) {
            if (err.status !== 401) main.append(errorBox(err));
            return;
        }
    }
    render();
})();
